#!/usr/bin/env python3
"""Writes one-node models of the reduce, index and einsum op families, each as
OUT/<name>/model.onnx + test_data_set_0/{input_*.pb, output_*.pb} with ONNX Runtime's outputs
(CPU, one thread): the cases ONNX's node tests leave out (the axes attribute of opsets before
18, integer and double dtypes, ties, attention-shaped Einsum contractions, ellipsis
broadcasting, large sums and large log-sum-exp inputs), on fixed-seed inputs.

Fails loudly when onnx or onnxruntime is missing.

usage: export_reduce_index_cases.py OUT_DIR
"""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_models import write_case  # noqa: E402

rng = np.random.default_rng(0)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def i64(v):
    return np.array(v, np.int64)


def case(out_dir, name, op, inputs, attrs=None, opset=17, outputs=1):
    """One node of `op` on `inputs` (graph inputs in0, in1, ...), outputs out0, out1, ..."""
    names = [f"in{i}" for i in range(len(inputs))]
    outs = [f"out{i}" for i in range(outputs)]
    graph = helper.make_graph(
        [helper.make_node(op, names, outs, **(attrs or {}))], name,
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape) for n, x in zip(names, inputs)],
        [onnx.ValueInfoProto(name=o) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = os.path.join(out_dir, name, "model.onnx")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)
    write_case(out_dir, name, path, dict(zip(names, inputs)))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = sys.argv[1]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    einsums = [
        ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("bhqk,bhkd->bhqd", [(2, 3, 4, 6), (2, 3, 6, 5)]),
        ("bij,bjk->bik", [(3, 4, 5), (3, 5, 2)]), ("ij->ji", [(3, 4)]), ("...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 2)]),
        ("ii->i", [(4, 4)]), ("ij,jk", [(3, 4), (4, 5)]), ("i,j->ij", [(3,), (4,)]), ("ij,ij->i", [(3, 4), (3, 4)]),
        ("abc,cd->abd", [(2, 3, 4), (4, 5)]), ("bid,bjd->bij", [(2, 3, 4), (2, 5, 4)]),
        ("bqhd,bkhd->bhqk", [(2, 4, 3, 5), (2, 6, 3, 5)]), ("ij,jk->ik", [(3, 4), (1, 5)]), ("bij->b", [(2, 3, 4)]),
        ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]), ("i,i", [(5,), (5,)]), ("BIj,jK->BIK", [(2, 3, 4), (4, 2)]),
        ("...i,...i->...", [(2, 3, 4), (1, 3, 4)]), ("ji,jk->ik", [(4, 3), (4, 5)]),
        ("bdq,bdk->bqk", [(2, 4, 3), (2, 4, 5)]), ("bdq,bkd->bkq", [(2, 4, 3), (2, 5, 4)])]
    for i, (eq, shapes) in enumerate(einsums):
        case(out, f"einsum_{i}", "Einsum", [f32(*s) for s in shapes], {"equation": eq}, opset=13)
    case(out, "einsum_int64", "Einsum", [rng.integers(-5, 5, (3, 4)), rng.integers(-5, 5, (4, 2))],
         {"equation": "ij,jk->ik"}, opset=13)
    case(out, "einsum_double", "Einsum", [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 3))],
         {"equation": "bij,bjk->bik"}, opset=13)

    x = f32(2, 3, 4, 5)
    for op in ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceSumSquare", "ReduceLogSumExp"]:
        case(out, f"{op}_attr", op, [x], {"axes": [-1, 1], "keepdims": 0}, opset=11 if op == "ReduceSum" else 13)
        case(out, f"{op}_input", op, [x, i64([2, -4])], opset=18)
        case(out, f"{op}_all", op, [x], {"keepdims": 0}, opset=18)
        case(out, f"{op}_noop", op, [x, i64([])], {"noop_with_empty_axes": 1}, opset=18)
    case(out, "ReduceLogSum", "ReduceLogSum", [np.abs(x), i64([1])], opset=18)
    case(out, "ReduceLogSumExp_large", "ReduceLogSumExp", [x * 100, i64([1])], opset=18)
    case(out, "ReduceMean_long", "ReduceMean", [f32(4, 100000) + 3, i64([1])], opset=18)
    ints = rng.integers(-100, 100, (3, 4, 5))
    case(out, "ReduceSum_int64", "ReduceSum", [ints, i64([1])], opset=13)
    case(out, "ReduceSum_int32", "ReduceSum", [ints.astype(np.int32), i64([0, 2])], {"keepdims": 0}, opset=13)
    case(out, "ReduceMax_int64", "ReduceMax", [ints], {"axes": [1]}, opset=13)
    case(out, "ReduceMin_int32", "ReduceMin", [ints.astype(np.int32), i64([2])], opset=18)
    case(out, "ReduceMean_double", "ReduceMean", [rng.standard_normal((3, 4, 5)), i64([2])], opset=18)

    ties = rng.integers(0, 3, (3, 5, 4)).astype(np.float32)
    for op in ["ArgMax", "ArgMin"]:
        case(out, f"{op}_ties", op, [ties], {"axis": 1}, opset=11)
        case(out, f"{op}_ties_last", op, [ties], {"axis": -1, "keepdims": 0, "select_last_index": 1}, opset=13)
        case(out, f"{op}_int64", op, [ties.astype(np.int64)], {"axis": 0}, opset=13)
    case(out, "TopK_ties", "TopK", [ties, i64([3])], {"axis": 1}, opset=11, outputs=2)
    case(out, "TopK_ties_smallest", "TopK", [ties, i64([2])], {"axis": -1, "largest": 0}, opset=11, outputs=2)
    case(out, "TopK_int64", "TopK", [ties.astype(np.int64), i64([4])], {"axis": 2}, opset=11, outputs=2)
    case(out, "TopK_random", "TopK", [f32(2, 50, 3), i64([10])], {"axis": 1}, opset=11, outputs=2)
    case(out, "TopK_attr", "TopK", [f32(3, 10)], {"k": 4}, opset=1, outputs=2)
    case(out, "TopK_10", "TopK", [f32(3, 10), i64([4])], opset=10, outputs=2)

    case(out, "CumSum_reverse_exclusive", "CumSum", [f32(3, 4, 5), np.array(1, np.int32)],
         {"reverse": 1, "exclusive": 1}, opset=14)
    case(out, "CumSum_int64", "CumSum", [rng.integers(-9, 9, (3, 4)), i64(-1)], opset=14)
    case(out, "CumSum_double", "CumSum", [rng.standard_normal((3, 40)), i64(1)], {"reverse": 1}, opset=14)
    scalars = lambda t, *v: [np.array(e, t) for e in v]  # noqa: E731
    case(out, "Range_float", "Range", scalars(np.float32, 0.1, 10.3, 0.7), opset=11)
    case(out, "Range_int64", "Range", scalars(np.int64, 10, -7, -3), opset=11)
    case(out, "Range_empty", "Range", scalars(np.int64, 10, 7, 3), opset=11)
    case(out, "Range_int32", "Range", scalars(np.int32, 0, 12, 1), opset=11)
    case(out, "Trilu_lower", "Trilu", [f32(2, 4, 6), i64(-1)], {"upper": 0}, opset=14)
    case(out, "Trilu_upper_int64", "Trilu", [rng.integers(1, 9, (5, 3)), i64(2)], opset=14)
    case(out, "Trilu_upper", "Trilu", [f32(6, 6)], opset=14)
    case(out, "OneHot_axis1", "OneHot", [rng.integers(-4, 4, (2, 3)), np.array(4, np.float32),
                                         np.array([0, 1], np.float32)], {"axis": 1}, opset=11)
    case(out, "OneHot_int32", "OneHot", [rng.integers(0, 5, (4,)).astype(np.int32), np.array([5], np.float32),
                                         np.array([2, 7], np.float32)], opset=11)
    case(out, "NonZero_float", "NonZero", [ties - 1], opset=13)
    case(out, "NonZero_bool", "NonZero", [ties > 1], opset=13)
    case(out, "NonZero_int32", "NonZero", [ties.astype(np.int32)[0]], opset=13)
    print(f"export_reduce_index_cases: wrote {len(os.listdir(out))} cases to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
