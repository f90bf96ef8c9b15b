"""Quantization-aware training of the bundled Fashion-MNIST CNN with amctq.qat (docs/qat.md).

For each width pair (W4A4, W2A4 by default): the float model's test accuracy; PTQ with amctq's
pipeline (ARQ, and AdaRound) on models/fmnist_calib.npy, evaluated in ONNX Runtime; then QAT:
create_quant_retrain_model (initialised by the same PTQ calibration), one epoch of Adam at 1/100
of the training script's learning rate, save_quant_retrain_model, and the saved fake-quant and
deploy models evaluated in ONNX Runtime, with their top-1 agreement.

Usage: python examples/qat_fmnist.py [--widths 4,4 2,4] [--train-limit N] [--out DIR]
(the amctq package on PYTHONPATH; torch, onnxruntime; Debian dataset-fashion-mnist)
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))
from fmnist_data import load  # noqa: E402
from train_fmnist_cnn import make_model, train_epoch  # noqa: E402

import amctq  # noqa: E402
import amctq.qat  # noqa: E402

MODEL = os.path.join(ROOT, "models", "fmnist_cnn.onnx")
CALIB = os.path.join(ROOT, "models", "fmnist_calib.npy")
TRAIN_LR = 2e-3  # models/train_fmnist_cnn.py's Adam learning rate


def float_model():
    """make_model() with the bundled ONNX model's weights (its initializers keep torch's names)."""
    m = make_model()
    state = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(MODEL).graph.initializer}
    m.load_state_dict(state, strict=False)  # BatchNorm's num_batches_tracked is not exported
    return m.eval()


def ort_predict(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1000]})[0].argmax(1) for i in range(0, len(x), 1000)])


def torch_predict(m, x):
    m.eval()
    with torch.no_grad():
        return torch.cat([m(torch.from_numpy(x[i:i + 1000])).argmax(1) for i in range(0, len(x), 1000)]).numpy()


def ptq(wb, ab, algo, xte, yte, out):
    config = amctq.create_quant_config(MODEL, weights={"num_bits": wb, "wts_algo": algo},
                                       activation={"num_bits": ab})
    amctq.quantize_model(MODEL, np.load(CALIB), config=config, out_dir=out, stem="fmnist_cnn")
    fq = ort_predict(os.path.join(out, "fmnist_cnn_fake_quant_model.onnx"), xte)
    dp = ort_predict(os.path.join(out, "fmnist_cnn_deploy_model.onnx"), xte)
    return {"fake_quant": float((fq == yte).mean()), "deploy": float((dp == yte).mean()),
            "agreement": float((fq == dp).mean())}


def qat(wb, ab, xtr, ytr, xte, yte, out, train_limit, seed=0):
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    m = amctq.qat.create_quant_retrain_model(
        float_model(), [torch.from_numpy(np.load(CALIB))],
        {"weights": {"num_bits": wb}, "activation": {"num_bits": ab}})
    before = float((torch_predict(m, xte) == yte).mean())
    opt = torch.optim.Adam(m.parameters(), lr=TRAIN_LR / 100)
    order = rng.permutation(len(xtr))[:train_limit]
    t0 = time.time()
    train_epoch(m, opt, xtr, ytr, order)
    seconds = time.time() - t0
    after = float((torch_predict(m, xte) == yte).mean())
    amctq.qat.save_quant_retrain_model(m, torch.from_numpy(xte[:8]), out, "fmnist_cnn_qat")
    fq = ort_predict(os.path.join(out, "fmnist_cnn_qat_fake_quant_model.onnx"), xte)
    dp = ort_predict(os.path.join(out, "fmnist_cnn_qat_deploy_model.onnx"), xte)
    return {"torch_before": before, "torch_after": after, "fake_quant": float((fq == yte).mean()),
            "deploy": float((dp == yte).mean()), "agreement": float((fq == dp).mean()),
            "train_images": int(len(order)), "train_seconds": round(seconds, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", nargs="+", default=["4,4", "2,4"], help="W,A pairs")
    ap.add_argument("--train-limit", type=int, default=60000, help="training images in the one epoch")
    ap.add_argument("--no-adaround", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    result = {"float": float((torch_predict(float_model(), xte) == yte).mean()), "runs": []}
    print(f"float: {result['float']:.4f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        for pair in args.widths:
            wb, ab = (int(v) for v in pair.split(","))
            row = {"W": wb, "A": ab, "ptq_arq": ptq(wb, ab, "arq", xte, yte, os.path.join(out, f"w{wb}a{ab}_arq"))}
            print(json.dumps(row), flush=True)
            if not args.no_adaround:
                row["ptq_adaround"] = ptq(wb, ab, "adaround", xte, yte, os.path.join(out, f"w{wb}a{ab}_ada"))
                print(json.dumps(row["ptq_adaround"]), flush=True)
            row["qat"] = qat(wb, ab, xtr, ytr, xte, yte, os.path.join(out, f"w{wb}a{ab}_qat"), args.train_limit)
            lost = result["float"] - row["ptq_arq"]["deploy"]
            row["recovered_of_arq_loss"] = (row["qat"]["deploy"] - row["ptq_arq"]["deploy"]) / lost if lost > 0 else None
            print(json.dumps(row), flush=True)
            result["runs"].append(row)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
