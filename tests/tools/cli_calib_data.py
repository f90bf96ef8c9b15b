"""`amctq quantize` on a model with two inputs of different dtypes (int64 token ids into a Gather
embedding, float32 features), a MatMul between two activations (quantized on both inputs) and a
MatMul whose left operand is a constant (which stays float): calibration data as one .npz
(numpy.savez) or as NAME=FILE.npy per input gives byte-identical outputs; the run says how many
layers were quantized and names the float one with its reason, float_layers.json lists it, and
--strict refuses it; both saved models run in ONNX Runtime close to the float model. Bad data is
one line naming the input and the file: a missing or unknown input, float data for token ids,
rows that differ between inputs, numpy.savez_compressed, a truncated archive. float64 data for a
float32 input is converted with a note.

usage: cli_calib_data.py AMCTQ_TOOL WORKDIR
"""
import json
import os
import subprocess
import sys

from tally import Tally

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import onnxruntime as ort
except ImportError as e:
    sys.exit(f"cli_calib_data: {e}; run scripts/setup.sh to install the Python peers")

tally = Tally("cli_calib_data")
check = tally.check
VOCAB, T, D = 50, 6, 8


def make_model(path):
    rng = np.random.default_rng(0)
    emb = numpy_helper.from_array(rng.normal(size=(VOCAB, D)).astype(np.float32), "emb")
    w = numpy_helper.from_array(rng.normal(size=(D, 5)).astype(np.float32), "w")
    mix = numpy_helper.from_array(rng.normal(size=(T, T)).astype(np.float32), "mix_w")
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], name="embed"),
        helper.make_node("Add", ["e", "feat"], ["h"], name="add"),
        helper.make_node("MatMul", ["h", "w"], ["y"], name="proj"),
        helper.make_node("Transpose", ["h"], ["ht"], name="ht", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["h", "ht"], ["scores"], name="scores"),
        helper.make_node("MatMul", ["mix_w", "h"], ["mixed"], name="mix"),
    ]
    g = helper.make_graph(
        nodes, "two_inputs",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n", T]),
         helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["n", T, D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", T, 5]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", T, T]),
         helper.make_tensor_value_info("mixed", TensorProto.FLOAT, ["n", T, D])],
        [emb, w, mix])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)


def quantize(tool, model, out, *calib, extra=()):
    args = [tool, "quantize", "--model", model, "--out", out]
    for c in calib:
        args += ["--calib", c]
    return subprocess.run(args + list(extra), capture_output=True, text=True)


def one_line_error(r, what, *needles):
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1, f"{what}: one line, exit 1 (got {r.returncode}: {r.stderr!r})")
    for n in needles:
        check(n in r.stderr, f"{what}: the error says {n!r} (got {r.stderr.strip()!r})")


def run(path, feeds):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def main():
    tool, work = sys.argv[1:3]
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "two_inputs.onnx")
    make_model(model)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, VOCAB, size=(16, T)).astype(np.int64)
    feat = rng.normal(size=(16, T, D)).astype(np.float32)
    npz = os.path.join(work, "calib.npz")
    np.savez(npz, ids=ids, feat=feat)
    ids_npy, feat_npy = os.path.join(work, "ids.npy"), os.path.join(work, "feat.npy")
    np.save(ids_npy, ids)
    np.save(feat_npy, feat)

    a = os.path.join(work, "from_npz")
    r = quantize(tool, model, a, npz)
    check(r.returncode == 0, f"quantize with an .npz: {r.stderr.strip()}")
    check("3 of 4 layers quantized" in r.stderr, f"the run counts the layers: {r.stderr!r}")
    check("float: mix (MatMul): its input operand is a constant" in r.stderr,
          f"the float layer is named with its reason: {r.stderr!r}")
    fl = json.load(open(os.path.join(a, "float_layers.json")))
    check(fl["quantized"] == 3 and fl["layers"] == 4 and list(fl["float"]) == ["mix"] and not fl["float"]["mix"]["asked"],
          f"float_layers.json lists the float layer: {fl}")
    rec = json.load(open(os.path.join(a, "record.json")))
    check(set(rec) == {"embed", "proj", "scores"} and len(rec["embed"]["scale_w"]) == VOCAB,
          f"record.json holds the embedding (one scale per row), the projection and the scores: {sorted(rec)}")
    check("scale_d_b" in rec["scores"] and "scale_d_b" not in rec["proj"] and rec["scores"]["scale_w"] == [],
          f"the scores MatMul has a second input grid and no weight: {rec.get('scores')}")

    b = os.path.join(work, "from_npy")
    r = quantize(tool, model, b, f"ids={ids_npy}", f"feat={feat_npy}")
    check(r.returncode == 0, f"quantize with NAME=FILE.npy: {r.stderr.strip()}")
    for f in ("two_inputs_fake_quant_model.onnx", "two_inputs_deploy_model.onnx", "record.json", "float_layers.json"):
        check(open(os.path.join(a, f), "rb").read() == open(os.path.join(b, f), "rb").read(),
              f"{f}: .npz and NAME=FILE.npy give the same bytes")

    feeds = {"ids": ids, "feat": feat}
    ref = run(model, feeds)
    for f in ("two_inputs_fake_quant_model.onnx", "two_inputs_deploy_model.onnx"):
        y = run(os.path.join(a, f), feeds)
        for k, (got, want) in enumerate(zip(y, ref)):
            err = float(np.abs(got - want).max() / np.abs(want).max())
            check(err < 0.05, f"{f} output {k} runs in ONNX Runtime within 5% of float (relative max error {err:.4f})")

    r = quantize(tool, model, os.path.join(work, "strict"), npz, extra=["--strict"])
    check(r.returncode == 1 and "--strict: 'mix' would stay float" in r.stderr, f"--strict refuses: {r.stderr!r}")
    check(not os.path.exists(os.path.join(work, "strict", "record.json")), "--strict writes nothing")

    f64 = os.path.join(work, "feat64.npy")
    np.save(f64, feat.astype(np.float64))
    r = quantize(tool, model, os.path.join(work, "f64"), f"ids={ids_npy}", f"feat={f64}")
    check(r.returncode == 0 and "holds float64, converted to float32" in r.stderr, f"float64 is converted: {r.stderr!r}")

    r = quantize(tool, model, os.path.join(work, "e1"), f"ids={ids_npy}")
    one_line_error(r, "missing input", "no data for input 'feat'")
    r = quantize(tool, model, os.path.join(work, "e2"), f"ids={ids_npy}", f"feat={feat_npy}", f"mask={feat_npy}")
    one_line_error(r, "unknown input", "'mask', which is not an input of the model")
    fid = os.path.join(work, "float_ids.npy")
    np.save(fid, ids.astype(np.float32))
    r = quantize(tool, model, os.path.join(work, "e3"), f"ids={fid}", f"feat={feat_npy}")
    one_line_error(r, "float token ids", "input 'ids' is int64", "float_ids.npy")
    short = os.path.join(work, "short.npy")
    np.save(short, feat[:8])
    r = quantize(tool, model, os.path.join(work, "e4"), f"ids={ids_npy}", f"feat={short}")
    one_line_error(r, "rows differ", "short.npy", "every input needs the same rows")
    r = quantize(tool, model, os.path.join(work, "e5"), ids_npy)
    one_line_error(r, "one .npy for two inputs", "the model has 2 inputs")
    comp = os.path.join(work, "compressed.npz")
    np.savez_compressed(comp, ids=ids, feat=feat)
    r = quantize(tool, model, os.path.join(work, "e6"), comp)
    one_line_error(r, "savez_compressed", "is compressed", "numpy.savez")
    data = open(npz, "rb").read()
    for cut in (10, len(data) // 2, len(data) - 30):
        bad = os.path.join(work, f"cut{cut}.npz")
        open(bad, "wb").write(data[:cut])
        r = quantize(tool, model, os.path.join(work, f"e7_{cut}"), bad)
        one_line_error(r, f"npz cut at {cut} bytes", f"cut{cut}.npz")
    wrong = os.path.join(work, "wrong_dim.npy")
    np.save(wrong, np.zeros((16, T, D + 1), np.float32))
    r = quantize(tool, model, os.path.join(work, "e8"), f"ids={ids_npy}", f"feat={wrong}")
    one_line_error(r, "wrong static dim", "input 'feat' dim 2 is 8", "wrong_dim.npy")
    tally.done()


if __name__ == "__main__":
    main()
