#!/usr/bin/env python3
"""Writes ONNX's backend node tests (model.onnx + test_data_set_*/input_*.pb, output_*.pb) to a folder.

The onnx wheel ships the generators (onnx/backend/test/case/node/*.py) but not the generated
data, and its `backend-test-tools generate-data` only writes the model tests. This does for the
node tests what that tool does for model tests. Cases whose inputs or outputs are not plain
tensors (sequences, optionals, maps) are skipped: the amctq executor has no such values.
onnx_version.txt records the onnx version the tests came from.

usage: generate_node_data.py OUTPUT_DIR
"""
import os
import sys
import shutil

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
import onnx.backend.test.case.node as node_cases


def tensor_only(model: onnx.ModelProto) -> bool:
    return all(v.type.HasField("tensor_type") for v in list(model.graph.input) + list(model.graph.output))


def write_tensor(path: str, value, name: str) -> None:
    proto = value if isinstance(value, TensorProto) else numpy_helper.from_array(np.asarray(value), name)
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())


def main() -> int:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    written = skipped = 0
    for case in node_cases.collect_testcases(None):
        if case.kind != "node" or case.model is None or not tensor_only(case.model):
            skipped += 1
            continue
        case_dir = os.path.join(out, case.name)
        if os.path.exists(case_dir):
            shutil.rmtree(case_dir)
        os.makedirs(case_dir)
        with open(os.path.join(case_dir, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(case_dir, f"test_data_set_{i}")
            os.makedirs(ds)
            for j, v in enumerate(inputs):
                write_tensor(os.path.join(ds, f"input_{j}.pb"), v, case.model.graph.input[j].name)
            for j, v in enumerate(outputs):
                write_tensor(os.path.join(ds, f"output_{j}.pb"), v, case.model.graph.output[j].name)
        written += 1
    # The node tests differ between onnx versions; the runner names this one when the pinned
    # list of unsupported tests was made from another.
    with open(os.path.join(out, "onnx_version.txt"), "w") as f:
        f.write(onnx.__version__ + "\n")
    print(f"generate_node_data: wrote {written} node tests, skipped {skipped} with non-tensor values", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
