#!/usr/bin/env python3
"""Model test (issue 17): `act_algo: entropy` on a small ReLU CNN keeps up with ONNX Runtime's
entropy calibrator, and `minmax` with ORT's MinMax.

The model is resnet-like in what mattered: every Conv after the first reads a post-ReLU tensor
(half exact zeros, long right tail: random weights, a random per-channel scale and bias as a
folded BatchNorm). amctq's default config with act_algo entropy used to clip every such input
to 1/4 of its range (the zero spike made any window wider than 2 x levels bins lose), and its
output SQNR fell far below ORT's.

Checks: amctq entropy SQNR >= ORT Entropy (2048 bins, 128 quantized bins) - 1 dB, amctq minmax
SQNR >= ORT MinMax - 1 dB; ORT quantize_static: QDQ, per-channel int8 weights, int8
activations, Conv only. Fails (never skips) without onnx or onnxruntime.

usage: entropy_model.py AMCTQ_BIN WORKDIR
"""
import json
import os
import subprocess
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
except ImportError as e:
    sys.exit(f"entropy_model.py: needs numpy, onnx and onnxruntime ({e}); run scripts/setup.sh")

MARGIN_DB = 1.0


def build_model(path, rng):
    nodes, inits = [], []
    chans = [3, 16, 32, 32, 32]
    x = "x"
    for i in range(len(chans) - 1):
        cin, cout = chans[i], chans[i + 1]
        w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        # a folded BatchNorm with random statistics: per-channel gain and shift
        w *= rng.uniform(0.3, 2.0, (cout, 1, 1, 1)).astype(np.float32)
        b = rng.normal(0.0, 0.5, cout).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        x = f"r{i}"
    wf = (rng.standard_normal((10, chans[-1], 1, 1)) * 0.2).astype(np.float32)
    inits.append(numpy_helper.from_array(wf, "wf"))
    nodes.append(helper.make_node("Conv", [x, "wf"], ["y"], name="head"))
    g = helper.make_graph(nodes, "relu_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 24, 24])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10, 24, 24])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


class Reader(CalibrationDataReader):
    def __init__(self, x):
        self.items = [{"x": x}]

    def get_next(self):
        return self.items.pop() if self.items else None


def run(path, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def sqnr(y, yq):
    y, yq = y.astype(np.float64), yq.astype(np.float64)
    return 10.0 * np.log10(np.sum(y ** 2) / np.sum((y - yq) ** 2))


def ort_sqnr(model, calib, test, y, method, work):
    # quantize_static takes no histogram size; its calibrator factory does (ORT's default for
    # Entropy is 128 bins): pass 2048 bins / 128 quantized bins through it.
    qmod = sys.modules["onnxruntime.quantization.quantize"]
    orig = qmod.create_calibrator

    def with_bins(*a, **k):
        eo = dict(k.get("extra_options") or {})
        eo.update({"num_bins": 2048, "num_quantized_bins": 128})
        k["extra_options"] = eo
        return orig(*a, **k)

    qmod.create_calibrator = with_bins
    out = os.path.join(work, f"ort_{method.name}.onnx")
    stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # ORT prints its progress
    try:
        quantize_static(model, out, Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                        calibrate_method=method, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"])
    finally:
        sys.stdout = stdout
        qmod.create_calibrator = orig
    return sqnr(y, run(out, test))


def amctq_sqnr(amctq, model, calib_path, test, y, algo, work):
    cfg = os.path.join(work, f"{algo}.json")
    with open(cfg, "w") as f:
        json.dump({"version": 1, "activation": {"act_algo": algo}}, f)
    out = os.path.join(work, f"amctq_{algo}")
    r = subprocess.run([amctq, "quantize", "--model", model, "--calib", calib_path, "--config", cfg, "--out", out,
                        "--quiet"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: amctq quantize ({algo}): {r.stderr.strip()}")
    return sqnr(y, run(os.path.join(out, "model_fake_quant_model.onnx"), test))


def main():
    amctq, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(17)
    model = os.path.join(work, "model.onnx")
    build_model(model, rng)
    calib = rng.standard_normal((16, 3, 24, 24)).astype(np.float32)
    test = rng.standard_normal((16, 3, 24, 24)).astype(np.float32)
    calib_path = os.path.join(work, "calib.npz")
    np.savez(calib_path, x=calib)
    y = run(model, test)
    failures = []
    for algo, method in (("entropy", CalibrationMethod.Entropy), ("minmax", CalibrationMethod.MinMax)):
        a = amctq_sqnr(amctq, model, calib_path, test, y, algo, work)
        o = ort_sqnr(model, calib, test, y, method, work)
        print(f"{algo}: amctq {a:.2f} dB, ONNX Runtime {method.name} {o:.2f} dB")
        if not a >= o - MARGIN_DB:
            failures.append(f"{algo}: amctq {a:.2f} dB < ONNX Runtime {method.name} {o:.2f} dB - {MARGIN_DB} dB")
    for f in failures:
        print("FAIL:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
