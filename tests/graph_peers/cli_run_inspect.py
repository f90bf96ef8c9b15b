"""`amctq run` and `amctq inspect` end to end on the bundled model: run's output must match ONNX
Runtime's to 1e-4 (relative to the output's largest value), inspect must report what the model
holds, and both must fail with a one-line error and a non-zero exit on a missing or truncated
model.

usage: cli_run_inspect.py AMCTQ_TOOL MODEL.onnx INPUT.npy WORKDIR
"""
import os
import subprocess
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    sys.exit(f"cli_run_inspect: {e}; run scripts/setup.sh to install the Python peers")


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def main():
    tool, model, inputs, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    x = np.load(inputs)[:32]
    xin = os.path.join(work, "x.npy")
    np.save(xin, x)
    out = os.path.join(work, "y.npy")
    r = run(tool, "run", "--model", model, "--input", xin, "--output", out)
    assert r.returncode == 0, f"amctq run failed: {r.stderr}"
    got = np.load(out)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == want.shape, (got.shape, want.shape)
    err = float(np.abs(got - want).max() / np.abs(want).max())
    assert err <= 1e-4, f"amctq run differs from ONNX Runtime: max error {err:.3g} of the output range"
    print(f"run: {got.shape} matches ONNX Runtime, max error {err:.2g} of the output range")

    r = run(tool, "inspect", model)
    assert r.returncode == 0, f"amctq inspect failed: {r.stderr}"
    text = r.stdout
    for needle in ("opset", "image", "logits", "Conv", "Gemm", "BatchNormalization"):
        assert needle in text, f"inspect output lacks '{needle}':\n{text}"
    print("inspect: reports opset, inputs/outputs, op counts")

    truncated = os.path.join(work, "truncated.onnx")
    with open(model, "rb") as f, open(truncated, "wb") as g:
        g.write(f.read()[:1000])
    for args in (("run", "--model", truncated, "--input", xin, "--output", out), ("inspect", truncated),
                 ("run", "--model", os.path.join(work, "missing.onnx"), "--input", xin)):
        r = run(tool, *args)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode != 0 and len(lines) == 1, f"{args}: rc {r.returncode}, stderr {r.stderr!r}"
        print(f"{args[0]} on a bad model: exit {r.returncode}: {lines[0]}")
    # Two outputs whose names map to the same file stem must both be written.
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["a:b"]), helper.make_node("Identity", ["x"], ["a_b"])], "two",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in ("a:b", "a_b")])
    two = os.path.join(work, "two.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), two)
    xv = os.path.join(work, "xv.npy")
    np.save(xv, np.array([-1.0, 0.5, 2.0], np.float32))
    outdir = os.path.join(work, "two_out")
    r = run(tool, "run", "--model", two, "--input", xv, "--output-dir", outdir)
    assert r.returncode == 0, f"amctq run --output-dir failed: {r.stderr}"
    got = {f: np.load(os.path.join(outdir, f)).tolist() for f in sorted(os.listdir(outdir))}
    assert got == {"a_b.npy": [0.0, 0.5, 2.0], "a_b_2.npy": [-1.0, 0.5, 2.0]}, got
    print("run --output-dir: colliding output names get distinct files")
    print("cli_run_inspect: 6 passed, 0 failed")


if __name__ == "__main__":
    main()
