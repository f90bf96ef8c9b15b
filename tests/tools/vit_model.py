"""The bundled vision transformer (models/fmnist_vit.onnx, opset 17: LayerNormalization, Softmax,
Erf-GELU, MatMul between two activations, ReduceMean) through the amctq tool, on the 256 bundled
calibration images:
  - `amctq run` (the float reference executor) gives ONNX Runtime's logits within 1e-4;
  - `amctq quantize` with the default config quantizes every layer with a weight (the patch Conv,
    the 18 Linear MatMuls, the head Gemm); a layer left float can only be a MatMul between two
    activations (Q K^T, A V: float before amctq quantized that form), and float_layers.json says so; both saved models run in
    ONNX Runtime with top-1 agreement >= 0.9 with the float model.
Takes a few seconds.

usage: vit_model.py AMCTQ_TOOL MODEL.onnx CALIB.npy WORKDIR
"""
import json
import os
import subprocess
import sys

from tally import Tally

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as e:
    sys.exit(f"vit_model: {e}; run scripts/setup.sh to install the Python peers")

tally = Tally("vit_model")
check = tally.check


def ort_run(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def main():
    tool, model, calib, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    x = np.load(calib)
    ref = ort_run(model, x)

    out = os.path.join(work, "logits.npy")
    r = subprocess.run([tool, "run", "--model", model, "--input", calib, "--output", out], capture_output=True, text=True)
    check(r.returncode == 0, f"amctq run exits 0 ({r.stderr.strip()})")
    diff = float(np.abs(np.load(out) - ref).max())
    print(f"amctq run vs ONNX Runtime: max |diff| {diff:.2e} over {ref.size} logits")
    check(diff <= 1e-4, f"amctq run agrees with ONNX Runtime within 1e-4 (max |diff| {diff:.2e})")

    qdir = os.path.join(work, "quantized")
    r = subprocess.run([tool, "quantize", "--model", model, "--calib", calib, "--out", qdir, "--quiet"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"amctq quantize exits 0 ({r.stderr.strip()})")
    report = json.load(open(os.path.join(qdir, "float_layers.json")))
    graph = onnx.load(model).graph
    inits = {i.name for i in graph.initializer}
    weighted = [n.name for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and n.input[1] in inits]
    print(f"{report['quantized']} of {report['layers']} layers quantized; float: {sorted(report['float'])}")
    check(len(weighted) == 20, f"the model has 20 layers with a weight ({len(weighted)})")
    check(not set(weighted) & set(report["float"]), "every layer with a weight is quantized")
    check(report["quantized"] >= len(weighted), f"float_layers.json counts {report['quantized']} quantized layers")
    by_name = {n.name: n for n in graph.node}
    for name, v in report["float"].items():
        n = by_name.get(name)
        check(n is not None and n.op_type == "MatMul" and n.input[1] not in inits,
              f"float layer {name} is a MatMul between two activations ({v})")
    stem = os.path.join(qdir, os.path.splitext(os.path.basename(model))[0])
    for kind in ("fake_quant", "deploy"):
        y = ort_run(f"{stem}_{kind}_model.onnx", x)
        agree = float(np.mean(y.argmax(1) == ref.argmax(1)))
        print(f"{kind} model: top-1 agreement with float {agree:.4f}")
        check(agree >= 0.9, f"{kind} model top-1 agreement with float >= 0.9 ({agree:.4f})")
    tally.done()


if __name__ == "__main__":
    main()
