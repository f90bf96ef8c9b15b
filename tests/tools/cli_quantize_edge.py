"""`amctq quantize` on legal but unusual models and on failures: what it writes must load and run
in ONNX Runtime and stay close to the float model; what it refuses must be refused before the
long part, with one line on stderr, nothing written and no folder created; and it must never
touch the files of the model it reads.

usage: cli_quantize_edge.py AMCTQ_TOOL WORKDIR
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

from tally import Tally

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    sys.exit(f"cli_quantize_edge: {e}; run scripts/setup.sh to install the Python peers")

rng = np.random.default_rng(7)
ort.set_default_logger_severity(3)  # the odd source models draw ORT warnings that are the point of the test
tally = Tally("cli_quantize_edge")
check = tally.check


def init(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def gemm_chain(opset=17, alpha=1.0, bias=None, extra_outputs=(), inputs_list_inits=False, dropout=False):
    """x[16,8] -> Gemm g1 -> Relu -> Gemm g2 -> y, with variations."""
    inits = [init("w1", rng.normal(size=(8, 8)) * 0.5), init("b1", rng.normal(size=8) * 0.1),
             init("w2", rng.normal(size=(8, 4)) * 0.5),
             init("b2", bias if bias is not None else rng.normal(size=4) * 0.1)]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="g1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu")]
    mid = "r"
    if dropout:
        nodes.append(helper.make_node("Dropout", ["r"], ["d"], name="drop"))
        mid = "d"
    nodes.append(helper.make_node("Gemm", [mid, "w2", "b2"], ["y"], name="g2", alpha=alpha))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 4])]
    for name in extra_outputs:
        inits.append(init(name, rng.normal(size=3)))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [3]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 8])]
    if inputs_list_inits:
        inputs += [helper.make_tensor_value_info(i.name, TensorProto.FLOAT, list(i.dims)) for i in inits]
    g = helper.make_graph(nodes, "chain", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def conv_chain(between):
    """x[2,3,8,8] -> Conv c1 -> <between> -> Conv c2 -> y."""
    inits = [init("w1", rng.normal(size=(4, 3, 3, 3)) * 0.3), init("b1", rng.normal(size=4) * 0.1),
             init("w2", rng.normal(size=(5, 4, 3, 3)) * 0.3)]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="c1", pads=[1, 1, 1, 1])]
    if between == "dropout":
        nodes.append(helper.make_node("Dropout", ["h"], ["m"], name="drop"))
    else:  # Pad whose value comes from a Constant node
        nodes.append(helper.make_node("Constant", [], ["padv"], name="padv",
                                      value=numpy_helper.from_array(np.array(0.25, np.float32))))
        inits.append(numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"))
        nodes.append(helper.make_node("Pad", ["h", "pads", "padv"], ["m"], name="pad"))
    nodes.append(helper.make_node("Conv", ["m", "w2"], ["y"], name="c2"))
    g = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def quantize(tool, model_path, calib_path, out, *extra):
    return subprocess.run([tool, "quantize", "--model", model_path, "--calib", calib_path, "--out", out, "--quiet",
                           *extra], capture_output=True, text=True)


def cpu_has_vnni():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return False
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


# With all optimisations ORT fuses a fake-quant model's QDQ pairs into integer kernels; on plain
# AVX2 its u8s8 GEMM multiplies with vpmaddubsw, which saturates pairs of products in int16 (a
# known ORT limit, docs/pipeline.md), so there the fused result says nothing about the model.
# Disabled optimisations run the QDQ semantics as written, on every CPU.
OPT_LEVELS = [ort.GraphOptimizationLevel.ORT_DISABLE_ALL]
if cpu_has_vnni():
    OPT_LEVELS.append(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
else:
    print("cli_quantize_edge: note: no VNNI on this CPU; quantized models run with ORT optimisations off")


def run(path, x, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def close_to(path, x, want):
    """The largest error, over the meaningful optimisation levels, relative to want's range."""
    return max(float(np.abs(run(path, x, level) - want).max() / np.abs(want).max()) for level in OPT_LEVELS)


def quantizes_close(tool, work, name, model, x, *extra, max_err=0.06):
    """Saves model, quantizes it, checks both outputs run in ORT close to the float model."""
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "m.onnx")
    onnx.save(model, path)
    calib = os.path.join(d, "calib.npy")
    np.save(calib, x)
    r = quantize(tool, path, calib, os.path.join(d, "out"), *extra)
    check(r.returncode == 0, f"{name}: quantize exit {r.returncode}: {r.stderr}")
    want = run(path, x)
    for kind in ("fake_quant", "deploy"):
        err = close_to(os.path.join(d, "out", f"m_{kind}_model.onnx"), x, want)
        check(err < max_err, f"{name}: {kind} model differs from float by {err:.3g} of the range")
    return d, r


def main():
    tool, work = sys.argv[1:3]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    x = rng.normal(size=(16, 8)).astype(np.float32)
    xc = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)

    # 1. External data beside the model, output into the same folder: the source stays intact.
    d = os.path.join(work, "external")
    os.makedirs(d)
    src = os.path.join(d, "m.onnx")
    onnx.save_model(gemm_chain(), src, save_as_external_data=True, location="weights.bin", size_threshold=0)
    calib = os.path.join(d, "calib.npy")
    np.save(calib, x)
    digest = hashlib.sha256(open(os.path.join(d, "weights.bin"), "rb").read()).hexdigest()
    want = run(src, x)
    r = quantize(tool, src, calib, d)
    check(r.returncode == 0, f"external: exit {r.returncode}: {r.stderr}")
    check(hashlib.sha256(open(os.path.join(d, "weights.bin"), "rb").read()).hexdigest() == digest,
          "external: the source model's weights.bin is untouched")
    check(np.array_equal(run(src, x), want), "external: the source model still runs as before")
    for kind in ("fake_quant", "deploy"):
        err = close_to(os.path.join(d, f"m_{kind}_model.onnx"), x, want)
        check(err < 0.06, f"external: {kind} model runs close to float ({err:.3g} of the range)")

    # 2. Old-style model listing every initializer as a graph input; 3. an initializer as output.
    quantizes_close(tool, work, "inits_as_inputs", gemm_chain(inputs_list_inits=True), x)
    quantizes_close(tool, work, "init_output", gemm_chain(extra_outputs=("k",)), x)
    # 4. Dropout and 5. a Pad whose value is a Constant node, between two int8 convolutions.
    quantizes_close(tool, work, "conv_dropout_conv", conv_chain("dropout"), xc)
    d, _ = quantizes_close(tool, work, "conv_pad_constant_conv", conv_chain("pad"), xc)
    for kind in ("fake_quant", "deploy"):
        g = onnx.load(os.path.join(d, "out", f"m_{kind}_model.onnx")).graph
        reads = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n.name for n in g.node if n.op_type == "Constant" and not set(n.output) & reads]
        check(not dead, f"pad: the {kind} model keeps no unread Constant node (found {dead})")
    # 6. A one-element Gemm bias (broadcast).
    quantizes_close(tool, work, "scalar_bias", gemm_chain(bias=[0.3]), x)
    # 7. Gemm with alpha != 1 stays in float; 8. a minimal config that only skips a layer.
    _, r = quantizes_close(tool, work, "gemm_alpha", gemm_chain(alpha=0.5), x)
    cfg = os.path.join(work, "skip.json")
    with open(cfg, "w") as f:
        json.dump({"skip_layers": ["g2"]}, f)
    quantizes_close(tool, work, "minimal_config", gemm_chain(), x, "--config", cfg)
    with open(cfg, "w") as f:
        json.dump({"skip_layers": ["g1", "g2"]}, f)
    _, r = quantizes_close(tool, work, "nothing_quantized", gemm_chain(), x, "--config", cfg, max_err=1e-6)
    check("warning: no layer is quantized" in r.stderr, f"nothing quantized: warned, got {r.stderr!r}")

    # Refusals: one line, exit 1, no output folder created, nothing written.
    def refused(name, model, needle, *extra, out_name="out", prepare=None):
        d = os.path.join(work, name)
        os.makedirs(d)
        path = os.path.join(d, "m.onnx")
        onnx.save(model, path)
        np.save(os.path.join(d, "calib.npy"), x)
        out = os.path.join(d, out_name)
        if prepare:
            prepare(out)
        before = sorted(os.listdir(d))
        r = quantize(tool, path, os.path.join(d, "calib.npy"), out, *extra)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode == 1 and len(lines) == 1 and needle in lines[0],
              f"{name}: want exit 1 and one line with '{needle}', got {r.returncode}: {r.stderr!r}")
        check(sorted(os.listdir(d)) == before, f"{name}: nothing written ({sorted(os.listdir(d))} vs {before})")
        if prepare:
            check(os.listdir(out) == ["record.json"], f"{name}: the output folder holds only what it held")

    refused("opset11", gemm_chain(opset=11), "opset 11")
    refused("record_is_a_folder", gemm_chain(), "record.json' exists and is not a regular file",
            prepare=lambda out: os.makedirs(os.path.join(out, "record.json")))
    with open(cfg, "w") as f:
        json.dump({"skip_layers": ["nope"]}, f)
    refused("skip_unknown", gemm_chain(), "config.skip_layers: names 'nope'", "--config", cfg)
    tally.done()


if __name__ == "__main__":
    main()
