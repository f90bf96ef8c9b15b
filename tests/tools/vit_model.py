"""The bundled vision transformer (models/fmnist_vit.onnx, opset 17: LayerNormalization, Softmax,
Erf-GELU, MatMul between two activations, ReduceMean) through the amctq tool, on the 256 bundled
calibration images:
  - `amctq run` (the float reference executor) gives ONNX Runtime's logits within 1e-4;
  - `amctq quantize` with the default config quantizes all 26 layers: the patch Conv, the 18
    Linear MatMuls, the head Gemm and the 6 MatMuls between two activations (Q K^T, A V), whose
    record entries carry the second input's grid (scale_d_b); float_layers.json lists none; both
    saved models run in ONNX Runtime with top-1 agreement >= 0.9 with the float model.
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
    # Intra-op threads share out MatMul, Softmax, LayerNorm and the elementwise ops: same bytes.
    for threads in ("1", "3"):
        out_t = os.path.join(work, f"logits_{threads}.npy")
        r = subprocess.run([tool, "run", "--model", model, "--input", calib, "--output", out_t, "--threads", threads],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"amctq run --threads {threads} exits 0 ({r.stderr.strip()})")
        check(open(out_t, "rb").read() == open(out, "rb").read(),
              f"amctq run --threads {threads} writes the bytes of the default run")
    r = subprocess.run([tool, "run", "--model", model, "--input", calib, "--output", out, "--threads", "0"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "--threads" in r.stderr, f"amctq run --threads 0 is refused ({r.stderr.strip()})")

    qdir = os.path.join(work, "quantized")
    r = subprocess.run([tool, "quantize", "--model", model, "--calib", calib, "--out", qdir, "--quiet"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"amctq quantize exits 0 ({r.stderr.strip()})")
    report = json.load(open(os.path.join(qdir, "float_layers.json")))
    graph = onnx.load(model).graph
    inits = {i.name for i in graph.initializer}
    weighted = [n.name for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and n.input[1] in inits]
    two = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[0] not in inits and n.input[1] not in inits]
    print(f"{report['quantized']} of {report['layers']} layers quantized; float: {sorted(report['float'])}")
    check(len(weighted) == 20 and len(two) == 6, f"the model has 20 layers with a weight ({len(weighted)}) and 6 "
          f"MatMuls of two activations ({len(two)})")
    check(report["quantized"] == 26 and report["layers"] == 26 and not report["float"],
          f"every layer is quantized: {report['quantized']} of {report['layers']}, float {sorted(report['float'])}")
    record = json.load(open(os.path.join(qdir, "record.json")))
    check(sorted(k for k, v in record.items() if "scale_d_b" in v) == sorted(two),
          "record.json gives the two-activation MatMuls, and only them, a second input grid (scale_d_b)")
    stem = os.path.join(qdir, os.path.splitext(os.path.basename(model))[0])
    for kind in ("fake_quant", "deploy"):
        y = ort_run(f"{stem}_{kind}_model.onnx", x)
        agree = float(np.mean(y.argmax(1) == ref.argmax(1)))
        print(f"{kind} model: top-1 agreement with float {agree:.4f}")
        check(agree >= 0.9, f"{kind} model top-1 agreement with float >= 0.9 ({agree:.4f})")
    tally.done()


if __name__ == "__main__":
    main()
