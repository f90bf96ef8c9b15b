"""The main job: quantize the bundled Fashion-MNIST CNN with the amctq tool and compare float,
fake-quant and deploy accuracy on the 10k test set (Debian dataset-fashion-mnist).

usage: python scripts/quantize_fmnist.py --amctq BUILD/tools/amctq/amctq [--out DIR] [--config C.json]

Runs `amctq quantize --model models/fmnist_cnn.onnx --calib models/fmnist_calib.npy` (256 training
images, one batch), then runs the float model and both exported models in ONNX Runtime and prints
test accuracy, top-1 agreement with the float model and the logits' SQNR.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))
import fmnist_data  # noqa: E402  (models/fmnist_data.py: loader and normalisation)


def predict(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--amctq", required=True, help="path of the built amctq tool")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "fmnist_quantized"))
    ap.add_argument("--config", help="optional quantization config (amctq config --model ... --out C.json)")
    args = ap.parse_args()
    model = os.path.join(ROOT, "models", "fmnist_cnn.onnx")
    calib = os.path.join(ROOT, "models", "fmnist_calib.npy")
    cmd = [args.amctq, "quantize", "--model", model, "--calib", calib, "--out", args.out]
    if args.config:
        cmd += ["--config", args.config]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    if subprocess.run(cmd).returncode != 0:
        sys.exit(1)
    print(f"amctq quantize took {time.perf_counter() - t0:.2f} s", flush=True)
    x, y = fmnist_data.load("t10k")
    ref = predict(model, x)
    rows = [("float", model)] + [(k, os.path.join(args.out, f"fmnist_cnn_{k}_model.onnx"))
                                 for k in ("fake_quant", "deploy")]
    print(f"\nFashion-MNIST test set, {len(x)} images")
    print(f"{'model':<12} {'accuracy':>9} {'top-1 agreement':>16} {'logit SQNR dB':>14}")
    for label, path in rows:
        out = ref if label == "float" else predict(path, x)
        sqnr = 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - out) ** 2), 1e-30))
        print(f"{label:<12} {np.mean(out.argmax(1) == y):>9.4f} {np.mean(out.argmax(1) == ref.argmax(1)):>16.4f} "
              f"{'inf' if label == 'float' else f'{sqnr:.1f}':>14}")


if __name__ == "__main__":
    main()
