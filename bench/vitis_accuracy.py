"""Vitis AI configs on the bundled Fashion-MNIST models: accuracy of amctq's saved models (ONNX
Runtime, 10k test images) under vai_q_pytorch's default config as the guide writes it, UG1414's
example config, and a grid of method x scale type x round mode in the default's form.

usage: python bench/vitis_accuracy.py --amctq BUILD/tools/amctq/amctq [--model cnn|vit|both] [--work DIR]

Calibration: the 256 bundled images (models/fmnist_calib.npy) in one batch. Every config
quantizes weights, biases (8 bits), the graph input, every layer output and, as the default
does, Add / Concat inputs and outputs (keep_add_layer_accuracy false). Prints accuracy and the
fake-quant / deploy agreement; the deploy model's accuracy is checked equal to the fake-quant
model's only through the columns printed (both are shown).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))
import fmnist_data  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "pipeline_peers"))
from vitis_configs import default, example  # noqa: E402

CALIB = os.path.join(ROOT, "models", "fmnist_calib.npy")
MODELS = {"cnn": ("fmnist_cnn.onnx", "/0/Conv"), "vit": ("fmnist_vit.onnx", None)}

def grid():
    """The default's form with one method for activations and input (weights and bias: diffs on
    power-of-two grids, maxmin on float ones), each scale type, the guide's rounding
    (std_round, activations half_up) or half_even everywhere."""
    for method in ("diffs", "maxmin", "percentile", "mse", "entropy"):
        for scale in ("power_of_two", "float"):
            if method == "diffs" and scale == "float":
                continue  # diffs searches power-of-two positions only
            for rounding in ("guide", "half_even"):
                c = default()
                o = c["overall_quantize_config"]
                o["scale_type"] = scale
                o["method"] = "diffs" if scale == "power_of_two" else "maxmin"
                o["round_mode"] = "std_round" if rounding == "guide" else "half_even"
                act = {"method": method, "round_mode": "half_up" if rounding == "guide" else "half_even"}
                c["tensor_quantize_config"] = {"activation": act, "input": {"method": method}}
                yield f"{method} / {scale} / {'std_round, act half_up' if rounding == 'guide' else 'half_even'}", c


def predict(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])


def first_layer(tool, model):
    out = subprocess.run([tool, "inspect", model], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("Conv", "Gemm", "MatMul") and len(parts) > 1:
            return parts[1]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--amctq", required=True)
    ap.add_argument("--model", default="both", choices=("cnn", "vit", "both"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "vitis_accuracy"))
    ap.add_argument("--quick", action="store_true", help="the default and example configs only")
    args = ap.parse_args()
    x, labels = fmnist_data.load("t10k")
    for key in (("cnn", "vit") if args.model == "both" else (args.model,)):
        model = os.path.join(ROOT, "models", MODELS[key][0])
        float_acc = float(np.mean(np.argmax(predict(model, x), 1) == labels))
        first = MODELS[key][1] or first_layer(args.amctq, model)
        configs = [("the guide's default", default()), ("UG1414's example", example(first))]
        if not args.quick:
            configs += list(grid())
        print(f"\n{key}: float accuracy {float_acc:.4f}, {len(x)} test images, first layer {first}")
        print(f"{'config':<44} {'fake-quant':>10} {'deploy':>8} {'vs float':>9} {'quantize s':>10}")
        for label, cfg in configs:
            work = os.path.join(args.work, key, label.replace(" ", "_").replace("/", "").replace(",", "").replace("'", ""))
            os.makedirs(work, exist_ok=True)
            path = os.path.join(work, "config.json")
            with open(path, "w") as f:
                json.dump(cfg, f, indent=2)
            t0 = time.perf_counter()
            r = subprocess.run([args.amctq, "quantize", "--model", model, "--calib", CALIB, "--config", path,
                                "--out", work, "--quiet"], capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if r.returncode != 0:
                print(f"{label:<44} failed: {r.stderr.strip().splitlines()[-1:]}")
                continue
            stem = os.path.splitext(os.path.basename(model))[0]
            acc = [float(np.mean(np.argmax(predict(os.path.join(work, f"{stem}_{k}_model.onnx"), x), 1) == labels))
                   for k in ("fake_quant", "deploy")]
            print(f"{label:<44} {acc[0]:>10.4f} {acc[1]:>8.4f} {acc[0] - float_acc:>+9.4f} {dt:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
