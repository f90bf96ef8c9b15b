#!/usr/bin/env python3
"""Writes single-node cases of the data-movement, Resize / Upsample and normalization ops with
ONNX Runtime's outputs as the reference (CPU), as OUT/<name>/model.onnx + test_data_set_0: every
Resize mode x coordinate transform x nearest_mode on up- / down- / non-integer scales and sizes,
N-D linear, antialias (linear / cubic, every transform, exclude_outside, up / down, keep_aspect_ratio_policy),
opset 10 Resize and Upsample, LayerNormalization on several axes with Mean /
InvStdDev, GroupNormalization 18 / 21, InstanceNormalization, 60 random Slices (negative axes,
steps, INT64 sentinels), Tile, Expand, DepthToSpace / SpaceToDepth, ScatterND / ScatterElements
with every reduction, GatherElements. Fixed seed; configurations ONNX Runtime rejects (e.g. cubic
on non-outer scales) are left out, so case names stay stable.

usage: generate_op_cases.py OUT_DIR
"""
import itertools
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

root = sys.argv[1]
shutil.rmtree(root, ignore_errors=True)
rng = np.random.default_rng(0)
count = 0


def case(name, node, inputs, inits, opset):
    global count
    g = helper.make_graph([node], name,
                          [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                           for k, v in inputs.items()],
                          [onnx.ValueInfoProto(name=o) for o in node.output if o],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        s = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        outs = s.run(None, inputs)
    except Exception:  # a configuration ONNX Runtime does not implement
        return
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(m, os.path.join(d, "model.onnx"))
    for i, (k, v) in enumerate(inputs.items()):
        onnx.save_tensor(numpy_helper.from_array(v, k), os.path.join(d, "test_data_set_0", f"input_{i}.pb"))
    for i, (o, v) in enumerate(zip([o for o in node.output if o], outs)):
        onnx.save_tensor(numpy_helper.from_array(v, o), os.path.join(d, "test_data_set_0", f"output_{i}.pb"))
    count += 1


x4 = lambda *s: rng.standard_normal(s).astype(np.float32)
i = 0
for mode, trans, nm in itertools.chain(
        itertools.product(["nearest"], ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn", "half_pixel_symmetric"],
                          ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]),
        itertools.product(["linear", "cubic"], ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"], ["round_prefer_floor"])):
    for sc in ([1, 1, 2, 2], [1, 1, 0.5, 0.5], [1, 1, 1.7, 0.6], [1, 1, 1, 3], [1, 1, 2.5, 1]):
        for opset in (13, 19):
            if trans == "half_pixel_symmetric" and opset < 19: continue
            n = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode, coordinate_transformation_mode=trans, nearest_mode=nm)
            case(f"resize_{i}", n, {"x": x4(2, 3, 5, 7)}, {"scales": np.array(sc, np.float32)}, opset); i += 1
    for sz in ([2, 3, 9, 4], [2, 3, 1, 13]):
        n = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, coordinate_transformation_mode=trans, nearest_mode=nm)
        case(f"resize_{i}", n, {"x": x4(2, 3, 5, 7)}, {"sizes": np.array(sz, np.int64)}, 13); i += 1
for sc in ([1, 1, 2, 2, 2], [1, 1, 0.5, 2, 1.5]):
    for trans in ["half_pixel", "align_corners", "asymmetric"]:
        n = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear", coordinate_transformation_mode=trans)
        case(f"resize_{i}", n, {"x": x4(1, 2, 3, 4, 5)}, {"scales": np.array(sc, np.float32)}, 13); i += 1
for mode in ["nearest", "linear"]:
    for sc in ([1, 1, 2, 2], [1, 1, 0.5, 3]):
        n = helper.make_node("Resize", ["x", "scales"], ["y"], mode=mode)
        case(f"resize10_{mode}_{sc[3]}", n, {"x": x4(1, 2, 4, 6)}, {"scales": np.array(sc, np.float32)}, 10)
        n = helper.make_node("Upsample", ["x", "scales"], ["y"], mode=mode)
        if sc[2] >= 1: case(f"upsample9_{mode}_{sc[3]}", n, {"x": x4(1, 2, 4, 6)}, {"scales": np.array(sc, np.float32)}, 9)
for axis in [-1, -2, 1, 0]:
    for bias in [True, False]:
        shp = (2, 5, 16)
        ns = shp[(axis % 3):]
        n = helper.make_node("LayerNormalization", ["x", "s", "b"] if bias else ["x", "s"], ["y", "m", "v"], axis=axis, epsilon=1e-5)
        ini = {"s": x4(*ns)}
        if bias: ini["b"] = x4(*ns)
        case(f"layernorm_{axis}_{bias}", n, {"x": x4(*shp) * 3 + 1}, ini, 17)
for opset in (18, 21):
    for G in (1, 2, 4, 8):
        n = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=G, epsilon=1e-5)
        k = G if opset == 18 else 8
        case(f"groupnorm_{opset}_{G}", n, {"x": x4(2, 8, 3, 5)}, {"s": x4(k), "b": x4(k)}, opset)
n = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-5)
case("instancenorm", n, {"x": x4(2, 8, 3, 5) * 2 + 3}, {"s": x4(8), "b": x4(8)}, 13)
for j in range(60):
    shp = tuple(rng.integers(1, 6, size=rng.integers(1, 5)))
    r = len(shp)
    axes = list(rng.permutation(r)[: rng.integers(1, r + 1)])
    starts = [int(rng.integers(-7, 7)) for _ in axes]
    ends = [int(rng.choice([rng.integers(-7, 7), 2**63 - 1, -2**63])) for _ in axes]
    steps = [int(rng.choice([1, 2, -1, -2, 3])) for _ in axes]
    n = helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])
    case(f"slice_{j}", n, {"x": x4(*shp)}, {"st": np.array(starts, np.int64), "en": np.array(ends, np.int64),
         "ax": np.array([a - r if rng.random() < 0.5 else a for a in axes], np.int64), "sp": np.array(steps, np.int64)}, 13)
for j in range(10):
    n = helper.make_node("Tile", ["x", "r"], ["y"])
    case(f"tile_{j}", n, {"x": x4(2, 3, 1)}, {"r": rng.integers(0, 4, size=3).astype(np.int64)}, 13)
    n = helper.make_node("Expand", ["x", "s"], ["y"])
    case(f"expand_{j}", n, {"x": x4(3, 1)}, {"s": np.array([[2, 1, 4], [3, 5], [1], [4, 3, 1]][j % 4], np.int64)}, 13)
for mode in ["DCR", "CRD"]:
    case(f"d2s_{mode}", helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode=mode), {"x": x4(2, 8, 3, 5)}, {}, 13)
case("s2d", helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2), {"x": x4(2, 3, 4, 6)}, {}, 13)
for red in ["none", "add", "mul", "max", "min"]:
    n = helper.make_node("ScatterND", ["x", "i", "u"], ["y"], reduction=red)
    case(f"scatternd_{red}", n, {"x": x4(4, 3, 2)}, {"i": np.array([[[1, 2]], [[3, 0]]], np.int64), "u": x4(2, 1, 2)}, 18)
    n = helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], reduction=red, axis=1)
    case(f"scatterel_{red}", n, {"x": x4(3, 4)}, {"i": np.array([[1, 3], [0, 0], [2, 1]], np.int64), "u": x4(3, 2)}, 18)
n = helper.make_node("GatherElements", ["x", "i"], ["y"], axis=-2)
case("gatherel", n, {"x": x4(3, 4, 2)}, {"i": rng.integers(-3, 3, size=(2, 4, 2)).astype(np.int64)}, 13)
# Resize antialias (opset 18 / 19): linear and cubic, every coordinate transform, exclude_outside,
# scales and sizes, shrinking (the kernel stretched), growing (no effect), both on different axes,
# 2-D / NHWC / 5-D inputs, keep_aspect_ratio_policy with axes, tf_crop_and_resize with a roi.
transforms = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric", "tf_crop_and_resize"]
for mode, trans, exclude in itertools.product(["linear", "cubic"], transforms, [0, 1]):
    tag = f"resize_aa_{mode}_{trans}_{exclude}"
    roi = {"roi": np.array([0, 0, 0.1, -0.2, 1, 1, 0.8, 1.1], np.float32)} if trans == "tf_crop_and_resize" else {}
    ins = ["x", "roi" if roi else ""]
    attrs = dict(mode=mode, coordinate_transformation_mode=trans, exclude_outside=exclude, antialias=1, extrapolation_value=-2.0)
    for k, sc in enumerate(([1, 1, 0.5, 0.5], [1, 1, 0.6, 0.3], [1, 1, 2, 0.7], [1, 1, 1.5, 2], [1, 1, 0.25, 0.45])):
        n = helper.make_node("Resize", ins + ["scales"], ["y"], **attrs)
        case(f"{tag}_scales{k}", n, {"x": x4(2, 2, 8, 11)}, {**roi, "scales": np.array(sc, np.float32)}, 18)
    for k, sz in enumerate(([2, 2, 3, 4], [2, 2, 5, 2], [2, 2, 12, 5], [2, 2, 1, 2])):
        n = helper.make_node("Resize", ins + ["", "sizes"], ["y"], **attrs)
        case(f"{tag}_sizes{k}", n, {"x": x4(2, 2, 8, 11)}, {**roi, "sizes": np.array(sz, np.int64)}, 18)
    if roi: continue
    n = helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)
    case(f"{tag}_2d", n, {"x": x4(9, 13)}, {"scales": np.array([0.45, 0.3], np.float32)}, 19)
    n = helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)
    case(f"{tag}_nhwc", n, {"x": x4(1, 10, 7, 3)}, {"scales": np.array([1, 0.4, 0.6, 1], np.float32)}, 19)
    n = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], **attrs)
    case(f"{tag}_2d_sizes", n, {"x": x4(9, 13)}, {"sizes": np.array([4, 20], np.int64)}, 19)
for mode, policy in itertools.product(["linear", "cubic"], ["not_larger", "not_smaller"]):
    n = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, antialias=1, axes=[2, 3],
                         keep_aspect_ratio_policy=policy)
    case(f"resize_aa_{mode}_{policy}", n, {"x": x4(1, 2, 10, 14)}, {"sizes": np.array([4, 9], np.int64)}, 18)
    n = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode, antialias=1, cubic_coeff_a=-0.5, axes=[-1, -2])
    case(f"resize_aa_{mode}_axes_a{policy == 'not_larger'}", n, {"x": x4(1, 2, 10, 14)},
         {"scales": np.array([0.3, 0.7] if policy == "not_larger" else [0.8, 0.15], np.float32)}, 18)
for trans in ["half_pixel", "align_corners"]:
    n = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear", antialias=1, coordinate_transformation_mode=trans)
    case(f"resize_aa_linear_5d_{trans}", n, {"x": x4(1, 2, 6, 7, 9)}, {"scales": np.array([1, 1, 0.5, 0.7, 0.35], np.float32)}, 18)
    case(f"resize_aa_linear_3d_{trans}", n, {"x": x4(6, 7, 9)}, {"scales": np.array([0.5, 1, 0.35], np.float32)}, 18)
print(f"generate_op_cases: wrote {count} cases to {root}", file=sys.stderr)
