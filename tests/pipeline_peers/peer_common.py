"""Shared by the pipeline peer tests: run amctq's pipeline driver on a model and compare its
exported models in ONNX Runtime (CPU EP) with amctq's own simulation of them."""
import json
import os
import subprocess
import sys

import numpy as np

try:
    import onnxruntime as ort
except ImportError:
    print("FAIL: onnxruntime is not installed; the pipeline peer tests need it", file=sys.stderr)
    sys.exit(1)


def session(path, optimize):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def run_driver(driver, model, calib, x, work, config=None):
    """Quantizes `model` with the driver (calibrating on the `calib` .npy file), which saves the
    fake-quant and deploy models in `work` and amctq's simulation of each on `x`. Returns the
    driver's CompletedProcess (stderr captured, so a failure can be reported in one line)."""
    os.makedirs(work, exist_ok=True)
    inputs = os.path.join(work, "inputs.npy")
    np.save(inputs, x)
    cmd = [driver, model, calib, inputs, work]
    if config is not None:
        path = os.path.join(work, "config.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        cmd.append(path)
    return subprocess.run(cmd, capture_output=True, text=True)


def rows(y):
    """One row per sample, so per-sample errors read the same for any output rank."""
    return y.reshape(y.shape[0], -1)


def feeds_of(sess, x):
    """`x` as a session's feeds: a dict (by input name) as it is, an array for the first input."""
    return x if isinstance(x, dict) else {sess.get_inputs()[0].name: x}


def compare_within_rounding(label, what, path, sim, x, failures, min_exact=0.9):
    """Model `path` in ORT without graph optimisations (the QDQ ops run as written, in float: the
    semantics amctq simulates) against amctq's simulation `sim`. Float convolutions sum in a
    different order in ORT (MLAS) and amctq (Eigen); a value that lands within rounding of a
    QuantizeLinear tie moves one level and that step propagates to the sample's outputs. So: at
    least `min_exact` of the samples equal within 1e-4 of the output magnitude, none further off
    than 5% of it. `x` is the first input's array or a dict of feeds by name; `sim` the first
    output, or a list of every output (a sample's values of all outputs are then compared
    together). Returns ORT's output (like `sim`: an array or a list), or None when ORT cannot
    run the model."""
    try:
        sess = session(path, False)
        feeds = feeds_of(sess, x)
        outs = sess.run(None, feeds)
    except Exception as e:
        failures.append(f"[{label}] ORT cannot run the {what} model: {str(e).strip().splitlines()[-1]}")
        return None
    sims = sim if isinstance(sim, list) else [sim]
    ys = outs if isinstance(sim, list) else outs[:1]
    y = ys if isinstance(sim, list) else ys[0]
    if len(ys) != len(sims) or any(a.shape != b.shape for a, b in zip(ys, sims)):
        failures.append(f"[{label}] {what} outputs {[a.shape for a in ys]} but amctq's simulation "
                        f"{[b.shape for b in sims]}")
        return y
    ort_rows = np.concatenate([rows(a) for a in ys], axis=1)
    sim_rows = np.concatenate([rows(b) for b in sims], axis=1)
    tol = 1e-4 * max(1.0, float(np.abs(ort_rows).max()))
    row_err = np.abs(ort_rows - sim_rows).max(axis=1)
    exact = np.mean(row_err <= tol)
    print(f"[{label}] {what}: {exact:.4f} of samples equal amctq's simulation within {tol:.3g}; "
          f"max diff {row_err.max():.3g}")
    if not (exact >= min_exact and row_err.max() <= 0.05 * np.abs(ort_rows).max()):
        failures.append(f"[{label}] {what} model differs from amctq's simulation beyond float rounding")
    session(path, True).run(None, feeds)  # ORT fuses QDQ into integer kernels; it must still run
    return y


def compare_fake_quant(label, work, x, failures, min_exact=0.9):
    """The fake-quant model against the driver's fake_quant_sim.npy (compare_within_rounding)."""
    sim = np.load(os.path.join(work, "fake_quant_sim.npy"))
    return compare_within_rounding(label, "fake-quant", os.path.join(work, "model_fake_quant_model.onnx"), sim, x,
                                   failures, min_exact)


def compare_deploy(label, work, x, failures, exact=True):
    """The deploy model in ORT, with graph optimisations disabled and with all enabled, against
    the driver's deploy_sim.npy: every value must be bit-identical. With exact=False (layers with
    per-channel activations, which keep a float op in the deploy model) within float rounding as
    the fake-quant model. Returns ORT's output (the optimised run) or None when no deploy model
    was written."""
    dp_path = os.path.join(work, "model_deploy_model.onnx")
    dsim_path = os.path.join(work, "deploy_sim.npy")
    if not (os.path.exists(dp_path) and os.path.exists(dsim_path)):
        failures.append(f"[{label}] no deploy model or no deploy simulation was written")
        return None
    dsim = np.load(dsim_path)
    if not exact:
        return compare_within_rounding(label, "deploy", dp_path, dsim, x, failures)
    dp = compare_bit_exact(label, dp_path, dsim, x, failures)
    if dp is None:
        return None
    import onnx
    ops = sorted({n.op_type for n in onnx.load(dp_path).graph.node})
    print(f"[{label}] deploy ops: {', '.join(ops)}")
    return dp


def compare_bit_exact(label, dp_path, sim, x, failures):
    """The deploy model `dp_path` in ORT, with graph optimisations disabled and with all enabled,
    against amctq's integer simulation `sim`: every value bit-identical. `x` and `sim` as in
    compare_within_rounding (an array or feeds by name; the first output or a list of all).
    Returns ORT's output of the optimised run (like `sim`), or None when ORT cannot run it."""
    sims = sim if isinstance(sim, list) else [sim]
    dp = None
    for optimize in (False, True):
        try:
            sess = session(dp_path, optimize)
            outs = sess.run(None, feeds_of(sess, x))
        except Exception as e:  # ORT refusing an op form is a failure of this case, not of the run
            failures.append(f"[{label}] ORT cannot run the deploy model: {str(e).strip().splitlines()[-1]}")
            return None
        dp = outs if isinstance(sim, list) else outs[0]
        outs = outs if isinstance(sim, list) else outs[:1]
        shapes_ok = len(outs) == len(sims) and all(a.shape == b.shape for a, b in zip(outs, sims))
        bad = sum(int(np.sum(a.view(np.uint32) != b.view(np.uint32))) for a, b in zip(outs, sims)) if shapes_ok else -1
        same = bad == 0
        print(f"[{label}] deploy (ORT {'optimised' if optimize else 'no optimisation'}): bit-identical to "
              f"amctq's integer simulation: {same} ({bad} differing values of {sum(b.size for b in sims)})")
        if not same:
            failures.append(f"[{label}] deploy model output (optimisations {'on' if optimize else 'off'}) is not "
                            f"bit-identical to amctq's integer simulation")
    return dp


def top1(y, ref):
    return float(np.mean(rows(y).argmax(1) == rows(ref).argmax(1)))
