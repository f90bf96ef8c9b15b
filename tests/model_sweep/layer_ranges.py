"""Per layer input of one sweep model: the range each amctq method chose (record.json of a
method_sweep.py run) against ONNX Runtime's calibrators, and the SQNR of that tensor alone
quantized on each range (asymmetric int8, round half to even), on the calibration data (issue 17:
which tensors entropy clips).

usage: layer_ranges.py WORKDIR MODEL [--methods M[,M...]] [--ort C[,C...]]
WORKDIR is a method_sweep.py work folder that holds MODEL's amctq_<method>/record.json.
"""
import argparse
import contextlib
import io
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from method_sweep import ORT  # noqa: E402
from sweep import QUANTIZED_KINDS, Reader, onnx, run_ort, with_every_tensor_out  # noqa: E402
from onnxruntime.quantization.calibrate import create_calibrator  # noqa: E402


def ort_ranges(model_path, calib, label, work):
    method, options = ORT[label]
    with contextlib.redirect_stdout(io.StringIO()):
        c = create_calibrator(model_path, list(QUANTIZED_KINDS), augmented_model_path=os.path.join(work, "augmented.onnx"),
                              calibrate_method=method, extra_options=options or {})
        c.collect_data(Reader(calib))
        data = c.compute_data()
    return {k: tuple(float(x) for x in v.range_value) for k, v in data.data.items()}


def record_range(r):
    """A record.json layer's activation range: the int8 grid's ends."""
    return (-128 - r["offset_d"]) * r["scale_d"], (127 - r["offset_d"]) * r["scale_d"]


def tensor_sqnr(x, lo, hi):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    s = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = np.round(-128 - lo / s)
    y = (np.clip(np.round(x / s) + zp, -128, 127) - zp) * s
    noise = np.sum((x.astype(np.float64) - y) ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / noise)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work")
    ap.add_argument("model")
    ap.add_argument("--methods", default="entropy,minmax")
    ap.add_argument("--ort", default="Entropy,MinMax")
    a = ap.parse_args()
    folder = os.path.join(a.work, "models", a.model)
    model_path = os.path.join(folder, "model.onnx")
    model = onnx.load(model_path)
    calib = dict(np.load(os.path.join(folder, "calib.npz")))
    scratch = os.path.join(a.work, a.model, "layer_ranges")
    os.makedirs(scratch, exist_ok=True)
    every = os.path.join(scratch, "every_tensor.onnx")
    onnx.save(with_every_tensor_out(model), every)
    values = dict(zip([o.name for o in onnx.load(every).graph.output], run_ort(every, calib, optimize=False)))
    values.update(calib)
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    methods, labels = a.methods.split(","), a.ort.split(",")
    records = {m: json.load(open(os.path.join(a.work, a.model, f"amctq_{m}", "record.json"))) for m in methods}
    ort = {k: ort_ranges(model_path, calib, k, scratch) for k in labels}
    print("layer (input's producer) | values | min | max | " + " | ".join(methods + [f"ORT {k}" for k in labels])
          + "   (each: range, tensor SQNR dB)")
    for n in model.graph.node:
        if n.op_type not in QUANTIZED_KINDS:
            continue
        x = values[n.input[0]].ravel()
        ranges = [record_range(records[m][n.name]) if n.name in records[m] else None for m in methods]
        ranges += [ort[k].get(n.input[0]) for k in labels]
        cells = ["-" if r is None else f"[{r[0]:.3f}, {r[1]:.3f}] {tensor_sqnr(x, *r):.1f}" for r in ranges]
        print(f"{n.name} ({producer.get(n.input[0], 'input')}) | {x.size} | {x.min():.3f} | {x.max():.3f} | "
              + " | ".join(cells))


if __name__ == "__main__":
    main()
