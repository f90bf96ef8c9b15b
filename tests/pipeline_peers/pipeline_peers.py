"""Runs amctq's exported models in ONNX Runtime and compares them with amctq's own simulation.

usage: pipeline_peers.py DRIVER MODEL.onnx CALIB.npy WORKDIR
Fails loudly (exit 1) when onnxruntime is missing or any comparison fails.
"""
import os
import subprocess
import sys

import numpy as np

try:
    import onnxruntime as ort
except ImportError:
    print("FAIL: onnxruntime is not installed; the pipeline peer test needs it", file=sys.stderr)
    sys.exit(1)


def session(path, optimize):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def main():
    driver, model, calib, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    x = np.load(calib)[:64]
    inputs = os.path.join(work, "inputs.npy")
    np.save(inputs, x)
    subprocess.run([driver, model, calib, inputs, work], check=True)
    failures = []
    name = session(model, True).get_inputs()[0].name
    ref = session(model, True).run(None, {name: x})[0]

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
    print(f"fake-quant: {exact:.4f} of samples equal amctq's simulation within {tol:.3g}; max diff "
          f"{row_err.max():.3g}; top-1 agreement ORT vs amctq {agree:.4f}; "
          f"top-1 agreement with float {np.mean(fq.argmax(1) == ref.argmax(1)):.4f}")
    if not (exact >= 0.9 and agree >= 0.98 and row_err.max() <= 0.05 * np.abs(fq).max()):
        failures.append("fake-quant model differs from amctq's simulation beyond float rounding")
    # With optimisations ORT fuses QDQ into integer kernels; it must still run.
    fq_opt = session(fq_path, True).run(None, {name: x})[0]
    print(f"fake-quant (ORT optimised, integer kernels): top-1 agreement with amctq sim "
          f"{np.mean(fq_opt.argmax(1) == sim.argmax(1)):.4f}")

    dp_path = os.path.join(work, "model_deploy_model.onnx")
    if os.path.exists(dp_path):
        dp = session(dp_path, True).run(None, {name: x})[0]
        dsim = np.load(os.path.join(work, "deploy_sim.npy"))
        same = np.array_equal(dp.view(np.uint32), dsim.view(np.uint32))
        print(f"deploy: bit-identical to amctq's integer simulation: {same}; "
              f"max diff {np.abs(dp - dsim).max():.3g}")
        if not same:
            failures.append("deploy model output is not bit-identical to amctq's integer simulation")
    else:
        # Deploy lowering (lower_qoperator.hpp) has not landed; say so loudly, do not pass it off.
        print("NOT CHECKED: no deploy model was written (QOperator lowering not implemented yet)", file=sys.stderr)
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
