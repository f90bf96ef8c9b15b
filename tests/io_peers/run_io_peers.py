"""ONNX Runtime loads and runs what amctq's ONNX writer produced, with the same outputs.

For every model in the onnx pip package's backend test data, and for external-data models
made here with the onnx package, onnx_roundtrip_tool reads the model, writes it (inline, all
external, external by threshold), reads it back and checks the IR; then ONNX Runtime runs the
original and the copy on the same inputs and the outputs must be bit-identical. Models that
ONNX Runtime cannot run in their original form are counted and skipped; everything else must
pass. Exits non-zero, loudly, if onnx or onnxruntime is missing.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    import onnxruntime as ort
except ImportError as e:  # fail loudly: CI must have the peers (scripts/setup.sh)
    print(f"io_peers: FAILED - missing Python peer: {e}. Run scripts/setup.sh.", file=sys.stderr)
    sys.exit(1)

ort.set_default_logger_severity(3)


def feeds_for(sess, model_dir, rng):
    """Inputs from test_data_set_0 when the model ships them, else random ones."""
    ds = os.path.join(model_dir, "test_data_set_0")
    inputs = sess.get_inputs()
    if os.path.isdir(ds):
        files = sorted(glob.glob(os.path.join(ds, "input_*.pb")))
        if len(files) == len(inputs):
            out = {}
            for i, f in zip(inputs, files):
                t = TensorProto()
                with open(f, "rb") as fh:
                    t.ParseFromString(fh.read())
                out[i.name] = numpy_helper.to_array(t)
            return out
    types = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8,
             "tensor(int8)": np.int8, "tensor(float16)": np.float16}
    out = {}
    for i in inputs:
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        dt = types[i.type]
        out[i.name] = (rng.standard_normal(shape) * 2).astype(dt) if dt != np.bool_ else rng.random(shape) > 0.5
    return out


def run(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def same(a, b):
    def eq(x, y):
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        return np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
    return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b))


def make_external_models(work):
    """Small Conv + Gemm models saved by the onnx package with external data."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "conv_w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "conv_b")
    g = numpy_helper.from_array(rng.standard_normal((8 * 6 * 6, 10)).astype(np.float32), "fc_w")
    s = numpy_helper.from_array(np.array([1, 8 * 6 * 6], dtype=np.int64), "shape")
    nodes = [helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "fc_w"], ["y"])]
    graph = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [w, b, g, s])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="io_peers")
    model.ir_version = 8
    made = []
    for name, kw in [("one_file", dict(all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)),
                     ("per_tensor", dict(all_tensors_to_one_file=False, size_threshold=256))]:
        d = os.path.join(work, "ext_" + name)
        os.makedirs(d, exist_ok=True)
        onnx.save_model(model, os.path.join(d, "model.onnx"), save_as_external_data=True, **kw)
        made.append(os.path.join(d, "model.onnx"))
    return made


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    models = sorted(glob.glob(os.path.join(data, "*", "**", "*.onnx"), recursive=True))
    external = make_external_models(args.work)
    rng = np.random.default_rng(0)
    checked = skipped = 0
    ext_checked = [0]
    ort_needs_inline = [0]
    failures = []
    modes = [("inline", []), ("all_external", ["--all-external", "w.data"]), ("threshold", ["--threshold", "1024"])]
    for src in models + external:
        try:
            sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
            feeds = feeds_for(sess, os.path.dirname(src), rng)
            want = run(src, feeds)
        except Exception as e:  # the original itself does not run in this ONNX Runtime
            skipped += 1
            continue
        # Big light models: only inline, to keep CI time down; small ones in every mode.
        use = modes if os.path.getsize(src) < 200_000 or src in external else modes[:1]
        if src in external:
            use = use + [("keep_external", [])]
        for mode, flags in use:
            out_dir = os.path.join(args.work, "out", f"{checked}_{mode}")
            os.makedirs(out_dir)
            dst = os.path.join(out_dir, "model.onnx")
            r = subprocess.run([args.tool, src, dst] + flags, capture_output=True, text=True)
            if r.returncode != 0:
                failures.append(f"{src} [{mode}]: amctq round trip: {r.stderr.strip()}")
                continue
            try:
                onnx.checker.check_model(dst)
                got = run(dst, feeds)
            except Exception as e:
                if mode == "all_external" and "Cannot parse data from external tensors" in str(e):
                    # ONNX Runtime's shape inference needs shape tensors (Reshape, ConstantOfShape
                    # inputs) inline; that is why onnx's own converter defaults to a 1 KiB threshold.
                    ort_needs_inline[0] += 1
                    continue
                failures.append(f"{src} [{mode}]: ONNX Runtime/checker rejected amctq's file: {e}")
                continue
            if not same(want, got):
                failures.append(f"{src} [{mode}]: outputs differ")
            if mode == "all_external":
                # Every non-empty, non-string initializer must now live in w.data.
                src_m = onnx.load(src)
                want_ext = sum(1 for t in src_m.graph.initializer
                               if t.data_type != TensorProto.STRING and numpy_helper.to_array(t).size > 0)
                got_m = onnx.load(dst, load_external_data=False)
                got_ext = sum(1 for t in got_m.graph.initializer if t.data_location == TensorProto.EXTERNAL)
                if got_ext != want_ext or (want_ext and not os.path.exists(os.path.join(out_dir, "w.data"))):
                    failures.append(f"{src} [{mode}]: {got_ext} external initializers, expected {want_ext}")
                ext_checked[0] += got_ext
        checked += 1
    print(f"io_peers: {checked} models run through amctq and ONNX Runtime, "
          f"{skipped} skipped (the original does not run in ONNX Runtime {ort.__version__}), "
          f"{ext_checked[0]} initializers checked in external data, "
          f"{ort_needs_inline[0]} all-external copies refused by ONNX Runtime for want of inline shape tensors, "
          f"{len(failures)} failures")
    for f in failures:
        print("  " + f)
    if checked < 100 or failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
