"""Runs amctq's exported models in ONNX Runtime and compares them with amctq's own simulation.

usage: pipeline_peers.py DRIVER MODEL.onnx CALIB.npy WORKDIR
Inputs: the calibration images plus the first 1000 Fashion-MNIST test images
(/usr/share/datasets/fashion-mnist, Debian dataset-fashion-mnist), normalised like training.
Checks, for the default config and for variants that exercise every lowering path (symmetric
activations -> int8 Max for Relu, 4-bit activations -> int8 Clip after QLinearConv, a skipped layer
-> ConvInteger + float rescale, per-tensor weights, minmax over 4 batches):
  - the deploy model's outputs from ORT, with graph optimisations disabled and with the default
    (all) optimisations, are bit-identical to amctq's integer simulation;
  - the fake-quant model equals amctq's fake-quant simulation within float rounding.
Fails (exit 1) when onnxruntime or the dataset is missing, a model is not written, or any check fails.
"""
import copy
import gzip
import json
import os
import subprocess
import sys

import numpy as np

try:
    import onnxruntime as ort
except ImportError:
    print("FAIL: onnxruntime is not installed; the pipeline peer test needs it", file=sys.stderr)
    sys.exit(1)

DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
MEAN, STD = 0.2860, 0.3530


def session(path, optimize):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def check(label, driver, model, calib, x, work, config, ref, failures):
    os.makedirs(work, exist_ok=True)
    inputs = os.path.join(work, "inputs.npy")
    np.save(inputs, x)
    cmd = [driver, model, calib, inputs, work]
    if config is not None:
        path = os.path.join(work, "config.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        cmd.append(path)
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    name = session(model, True).get_inputs()[0].name

    fq_path = os.path.join(work, "model_fake_quant_model.onnx")
    # Without graph optimisations ONNX Runtime runs the QDQ ops as written, in float: the
    # fake-quant semantics amctq simulates.
    fq = session(fq_path, False).run(None, {name: x})[0]
    sim = np.load(os.path.join(work, "fake_quant_sim.npy"))
    # Float convolutions sum in a different order in ORT (MLAS) and amctq (Eigen); a value that
    # lands within rounding of a QuantizeLinear tie moves one level and that step propagates to
    # the sample's logits. So: most samples equal within float rounding, none far off.
    tol = 1e-4 * max(1.0, np.abs(fq).max())
    row_err = np.abs(fq - sim).max(axis=1)
    exact = np.mean(row_err <= tol)
    agree = np.mean(fq.argmax(1) == sim.argmax(1))
    print(f"[{label}] fake-quant: {exact:.4f} of samples equal amctq's simulation within {tol:.3g}; "
          f"max diff {row_err.max():.3g}; top-1 ORT vs amctq {agree:.4f}; "
          f"top-1 agreement with float {np.mean(fq.argmax(1) == ref.argmax(1)):.4f}")
    if not (exact >= 0.9 and agree >= 0.98 and row_err.max() <= 0.05 * np.abs(fq).max()):
        failures.append(f"[{label}] fake-quant model differs from amctq's simulation beyond float rounding")
    session(fq_path, True).run(None, {name: x})  # ORT fuses QDQ into integer kernels; it must still run

    dp_path = os.path.join(work, "model_deploy_model.onnx")
    dsim_path = os.path.join(work, "deploy_sim.npy")
    if not (os.path.exists(dp_path) and os.path.exists(dsim_path)):
        failures.append(f"[{label}] no deploy model or no deploy simulation was written")
        return
    dsim = np.load(dsim_path)
    for optimize in (False, True):
        dp = session(dp_path, optimize).run(None, {name: x})[0]
        same = dp.shape == dsim.shape and np.array_equal(dp.view(np.uint32), dsim.view(np.uint32))
        bad = int(np.sum(dp.view(np.uint32) != dsim.view(np.uint32))) if dp.shape == dsim.shape else -1
        print(f"[{label}] deploy (ORT {'optimised' if optimize else 'no optimisation'}): bit-identical to "
              f"amctq's integer simulation: {same} ({bad} differing values of {dsim.size}); "
              f"top-1 agreement with float {np.mean(dp.argmax(1) == ref.argmax(1)):.4f}")
        if not same:
            failures.append(f"[{label}] deploy model output (optimisations {'on' if optimize else 'off'}) is not "
                            f"bit-identical to amctq's integer simulation")
    ops = sorted({n.op_type for n in __import__("onnx").load(dp_path).graph.node})
    print(f"[{label}] deploy ops: {', '.join(ops)}")


def main():
    driver, model, calib, work = sys.argv[1:5]
    if not os.path.exists(DATA):
        print(f"FAIL: {DATA} is missing (Debian package dataset-fashion-mnist)", file=sys.stderr)
        sys.exit(1)
    with gzip.open(DATA) as f:
        test = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:1000]
    test = ((test.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)
    x = np.concatenate([np.load(calib), test]).astype(np.float32)
    name = session(model, True).get_inputs()[0].name
    ref = session(model, True).run(None, {name: x})[0]
    failures = []
    check("default", driver, model, calib, x, os.path.join(work, "default"), None, ref, failures)
    with open(os.path.join(work, "default", "config_used.json")) as f:
        base = json.load(f)
    variants = {}
    c = copy.deepcopy(base)
    c["activation_offset"] = False
    c["activation"]["asymmetric"] = False
    variants["symmetric-act"] = c
    c = copy.deepcopy(base)
    c["activation"]["num_bits"] = 4
    c["weights"]["num_bits"] = 4
    variants["w4a4"] = c
    c = copy.deepcopy(base)
    c["skip_layers"] = ["/7/Conv"]
    c["weights"]["channel_wise"] = False
    c["batch_num"] = 4
    c["activation"]["act_algo"] = "minmax"
    variants["skip-pertensor-minmax"] = c
    for label, cfg in variants.items():
        check(label, driver, model, calib, x, os.path.join(work, label), cfg, ref, failures)
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
