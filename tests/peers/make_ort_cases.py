#!/usr/bin/env python3
"""Writes ONNX Runtime's QuantizeLinear -> DequantizeLinear results for test_ort_exact.

Usage: make_ort_cases.py OUT_DIR

For each integer type ONNX Runtime supports (int8, uint8, int16, uint16, int4, uint4) it builds
one model per case (QuantizeLinear, DequantizeLinear on the quantized tensor, and the codes as a
second graph output), runs it on the CPU execution provider with one thread and graph
optimizations off (so the two kernels themselves run, not a fused rewrite), and writes raw
little-endian files next to a manifest.

Manifest (OUT_DIR/manifest.txt): '#' lines are comments; every other line is one case of
space-separated key=value fields:
  name=  dtype=int8|uint8|int16|uint16|int4|uint4  axis=-1 (per-tensor) or the channel axis
  shape=D0xD1xD2  nan=0|1 (1: the NaN probe, whose inputs include NaNs)
  x=  scale=  zp=  q=  y=   file names inside OUT_DIR
Files: x and y float32; scale float32 (1 or one per channel); zp int32 (one per scale); q the
codes, one element per value in the type's own width (int16/uint16: 2 bytes), with int4 and
uint4 unpacked to one int8 / uint8 per value (ONNX Runtime returns 4-bit tensors only through
a Cast to 8 bits, which is exact for these values).
"""
import sys
from pathlib import Path

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError as e:  # CI installs these with scripts/setup.sh; a missing peer is a failure
    sys.exit(f"make_ort_cases.py: cannot import the ONNX Runtime peer ({e}); run scripts/setup.sh")

F32_MAX = float(np.finfo(np.float32).max)

# name: (onnx type, qmin, qmax, numpy code type, opset, onnx type of the code output)
DTYPES = {
    "int8": (TensorProto.INT8, -128, 127, np.int8, 13, TensorProto.INT8),
    "uint8": (TensorProto.UINT8, 0, 255, np.uint8, 13, TensorProto.UINT8),
    "int16": (TensorProto.INT16, -32768, 32767, np.int16, 21, TensorProto.INT16),
    "uint16": (TensorProto.UINT16, 0, 65535, np.uint16, 21, TensorProto.UINT16),
    "int4": (TensorProto.INT4, -8, 7, np.int8, 21, TensorProto.INT8),
    "uint4": (TensorProto.UINT4, 0, 15, np.uint8, 21, TensorProto.UINT8),
}

# Per-tensor cases: (scale, zero point as a fraction of [qmin, qmax]; None = 0 for signed types,
# the middle for unsigned ones). The scales mix awkward non-powers of two, exact powers of two
# (every tie exact), a tiny normal scale and a subnormal one (subnormal inputs land on the
# grid), and a huge one (1e30-sized inputs land on the grid).
PER_TENSOR = [
    ("s0123", 0.0123, None),
    ("s37e4", 3.7e-3, 0.03),
    ("third", 1.0 / 3.0, 0.61),
    ("quarter", 0.25, 0.97),
    ("tiny", 1.1e-38, 0.0),
    ("subnormal", 3.0e-39, 1.0),
    ("huge", 7.5e29, 0.37),
]
PER_TENSOR_SHAPE = (3, 50, 1000)  # 7 x 150,000 = 1,050,000 >= 2^20 values per type

# Per-channel cases: (name, shape, axis). Odd sizes leave a half-filled last int4 byte and SIMD
# tails; the [.., 7] case exercises short innermost channel axes.
PER_CHANNEL = [
    ("axis0", (24, 64, 72), 0),
    ("axis1", (9, 37, 301), 1),
    ("axis2", (40, 50, 53), 2),
    ("axis2_c7", (128, 100, 7), 2),
]


def session(model):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def build_model(dtype, shape, axis, scale, zp):
    qtype, _, _, _, opset, code_out = DTYPES[dtype]
    kw = {} if axis < 0 else {"axis": axis}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["q"], **kw),
        helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["y"], **kw),
    ]
    code_name = "q"
    if code_out != qtype:
        nodes.append(helper.make_node("Cast", ["q"], ["q8"], to=code_out))
        code_name = "q8"
    dims = [] if axis < 0 else [len(scale)]
    inits = [
        helper.make_tensor("scale", TensorProto.FLOAT, dims, [float(v) for v in np.ravel(scale)]),
        helper.make_tensor("zp", qtype, dims, [int(v) for v in np.ravel(zp)]),
    ]
    graph = helper.make_graph(
        nodes, f"qdq_{dtype}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(code_name, code_out, list(shape)),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def broadcast(per_channel, shape, axis):
    if axis < 0:
        return np.full(shape, per_channel[0])
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(np.asarray(per_channel).reshape(view), shape)


def make_inputs(rng, shape, axis, scale, zp, qmin, qmax):
    """Inputs that stress the rounding and clamping: exact .5 ties and their float neighbours,
    grid points, saturation at both ends, subnormals, signed zeros, huge and infinite values,
    normal data and arbitrary finite bit patterns."""
    n = int(np.prod(shape))
    s64 = broadcast(scale.astype(np.float64), shape, axis).ravel()
    s32 = s64.astype(np.float32)
    z = broadcast(zp.astype(np.float64), shape, axis).ravel()
    lo_k = qmin - z - 3  # x/s from just below the grid to just above it
    hi_k = qmax - z + 3
    k = np.floor(lo_k + rng.random(n) * (hi_k - lo_k + 1))
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        tie = ((k + 0.5) * s64).astype(np.float32)
        grid_pt = (k * s64).astype(np.float32)
        spread = (qmax - qmin) / 4.0
        normal = ((rng.standard_normal(n) * spread + (qmin + qmax) / 2.0 - z) * s64).astype(np.float32)
        over = rng.random(n) * (qmax - qmin) * 4.0 + 1.0
        saturating = np.where(rng.random(n) < 0.5, (qmax - z + over) * s64, (qmin - z - over) * s64).astype(np.float32)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    subnormal = (rng.integers(1, 1 << 23, n, dtype=np.uint32)).view(np.float32) * sign
    bits = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    bits[(bits & 0x7F800000) == 0x7F800000] &= 0xFF7FFFFF  # keep the arbitrary patterns finite
    arbitrary = bits.view(np.float32)
    specials = np.array([0.0, -0.0, 1e30, -1e30, F32_MAX, -F32_MAX, np.inf, -np.inf,
                         np.finfo(np.float32).tiny, -np.finfo(np.float32).tiny,
                         np.float32(1e-45), np.float32(-1e-45), 1.0, -1.0, 0.5, -0.5], dtype=np.float32)
    special = specials[rng.integers(0, len(specials), n)]

    kinds = [  # (share, values); ties and their neighbours dominate
        (0.28, tie),
        (0.10, np.nextafter(tie, np.float32(np.inf))),
        (0.10, np.nextafter(tie, np.float32(-np.inf))),
        (0.07, grid_pt),
        (0.10, saturating),
        (0.05, subnormal),
        (0.05, special),
        (0.20, normal),
        (0.05, arbitrary),
    ]
    choice = rng.choice(len(kinds), size=n, p=[w for w, _ in kinds])
    x = np.empty(n, dtype=np.float32)
    for i, (_, values) in enumerate(kinds):
        sel = choice == i
        x[sel] = values[sel]
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        exact_ties = int(np.count_nonzero(np.abs(np.float32(x / s32) - np.trunc(np.float32(x / s32))) == 0.5))
    return x.reshape(shape), exact_ties


def nan_inputs(rng, shape):
    """Quiet and signalling NaNs of both signs, with payloads, at every position modulo 64, among
    ordinary values."""
    n = int(np.prod(shape))
    x = (rng.standard_normal(n) * 50.0).astype(np.float32)
    patterns = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FC12345, 0x7FFFFFFF,
                         0xFFFFFFFF, 0x7FA00000], dtype=np.uint32)
    idx = np.arange(n)
    mask = (idx % 3 == 0) | (idx % 64 == 63)
    x.view(np.uint32)[mask] = patterns[idx[mask] % len(patterns)]
    return x.reshape(shape)


def zero_point_at(frac, signed, qmin, qmax):
    if frac is None:
        return 0 if signed else (qmin + qmax + 1) // 2
    return int(qmin + round(frac * (qmax - qmin)))


def write_case(out, manifest, name, dtype, axis, x, scale, zp, q, y, nan):
    _, _, _, code_t, _, _ = DTYPES[dtype]
    files = {"x": f"{name}.x.f32", "scale": f"{name}.scale.f32", "zp": f"{name}.zp.i32",
             "q": f"{name}.q.{dtype}", "y": f"{name}.y.f32"}
    x.astype("<f4").tofile(out / files["x"])
    np.asarray(scale, dtype="<f4").tofile(out / files["scale"])
    np.asarray(zp, dtype="<i4").tofile(out / files["zp"])
    np.asarray(q, dtype=np.dtype(code_t).newbyteorder("<")).tofile(out / files["q"])
    y.astype("<f4").tofile(out / files["y"])
    shape = "x".join(str(d) for d in x.shape)
    manifest.append(f"name={name} dtype={dtype} axis={axis} shape={shape} nan={int(nan)} "
                    + " ".join(f"{k}={v}" for k, v in files.items()))


def supported(dtype):
    """ONNX Runtime builds without some 4/16-bit kernels exist; probe with a tiny model."""
    qtype, qmin, qmax, _, _, _ = DTYPES[dtype]
    try:
        model = build_model(dtype, (2,), -1, np.array([1.0], np.float32), np.array([0], np.int32))
        session(model).run(None, {"x": np.array([1.0, -2.0], np.float32)})
        return True, ""
    except Exception as e:  # report the reason; the C++ test prints that the type is absent
        return False, str(e).splitlines()[0]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_ort_cases.py OUT_DIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        if old.is_file():
            old.unlink()
    rng = np.random.default_rng(20240521)
    manifest = [f"# onnxruntime {ort.__version__} onnx {onnx.__version__} numpy {np.__version__}"]
    totals = {}
    for dtype, (qtype, qmin, qmax, code_t, opset, _) in DTYPES.items():
        ok, why = supported(dtype)
        if not ok:
            print(f"make_ort_cases: SKIP {dtype}: this onnxruntime cannot run it: {why}")
            manifest.append(f"# skipped {dtype}: {why}")
            continue
        signed = qmin < 0
        cases = []
        for tag, s, frac in PER_TENSOR:
            zp = zero_point_at(frac, signed, qmin, qmax)
            cases.append((f"{dtype}_pt_{tag}", PER_TENSOR_SHAPE, -1,
                          np.array([s], np.float32), np.array([zp], np.int32), False))
        for tag, shape, axis in PER_CHANNEL:
            c = shape[axis]
            # log-uniform non-power-of-two scales, plus the fixed awkward ones
            s = np.exp(rng.uniform(np.log(1e-4), np.log(10.0), c)).astype(np.float32)
            s[: min(c, 3)] = np.array([0.0123, 3.7e-3, 1.0 / 3.0], np.float32)[: min(c, 3)]
            zp = rng.integers(qmin, qmax + 1, c).astype(np.int32)
            zp[0], zp[-1] = qmin, qmax  # zero points at both ends of the grid
            if c > 2:
                zp[1] = 0 if signed else (qmin + qmax + 1) // 2
            cases.append((f"{dtype}_pc_{tag}", shape, axis, s, zp, False))
        # NaN probes: zero points above and below 0 (for unsigned types both are > qmin), since
        # a NaN converted to an integer before adding the zero point behaves differently for each.
        for tag, frac in (("zhigh", 0.7), ("zlow", 0.2)):
            nan_zp = zero_point_at(frac, signed, qmin, qmax)
            cases.append((f"{dtype}_nan_pt_{tag}", (2, 8, 65), -1, np.array([0.05], np.float32),
                          np.array([nan_zp], np.int32), True))
        cases.append((f"{dtype}_nan_pc", (4, 9, 65), 2,
                      np.linspace(0.01, 2.0, 65).astype(np.float32),
                      rng.integers(qmin, qmax + 1, 65).astype(np.int32), True))
        for name, shape, axis, s, zp, nan in cases:
            if nan:
                x, ties = nan_inputs(rng, shape), 0
            else:
                x, ties = make_inputs(rng, shape, axis, s, zp, qmin, qmax)
            q, y = session(build_model(dtype, shape, axis, s, zp)).run(None, {"x": x})
            write_case(out, manifest, name, dtype, axis, x, s, zp, q, y, nan)
            totals[dtype] = totals.get(dtype, 0) + x.size
            extra = ""
            if nan:
                isnan = np.isnan(x)
                codes = np.unique(np.asarray(q).ravel()[isnan.ravel()])
                extra = f", NaN inputs {int(isnan.sum())} -> codes {codes.tolist()} (qmin {qmin})"
            print(f"make_ort_cases: {name}: {x.size} values, {ties} exact ties{extra}")
    (out / "manifest.txt").write_text("\n".join(manifest) + "\n")
    for dtype, n in totals.items():
        print(f"make_ort_cases: {dtype}: {n} values in total")
    print(f"make_ort_cases: onnxruntime {ort.__version__}, {len(manifest) - 1} cases written to {out}")


if __name__ == "__main__":
    main()
