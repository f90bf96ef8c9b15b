#!/usr/bin/env python3
"""Peak resident memory of `amctq quantize` on a model whose weights are large, against the
model's size: the issue's "a 2 GB-plus model with external data quantizes in at most ~1.5x
its size".

Builds an MLP (MatMul + Add + Relu per layer, `--layers` of `--width` x `--width` float32
weights, 32 x 4096 = 2.15 GB by default) with its weights in one external data file, written
tensor by tensor so that this script never holds the model, then runs `amctq quantize` on
`--rows` random rows per `--threads` value, prints its wall time and ru_maxrss beside the
model's bytes, and checks that every run wrote the first one's bytes. With --ort, ONNX Runtime's
quantize_static (QDQ, per-channel, MinMax) on the same model and rows, in the same run.

    .venv/bin/python bench/large_model_memory.py --amctq build/tools/amctq/amctq --work /tmp/large
"""
import argparse
import os
import shutil
import sys
import time

import numpy as np

from scale_peers import run_measured, same_files


def build_model(work, layers, width, seed):
    import onnx
    from onnx import TensorProto, helper

    path = os.path.join(work, "mlp.onnx")
    data_name = "mlp.onnx.data"
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    offset = 0
    with open(os.path.join(work, data_name), "wb") as f:
        def external(name, array):
            nonlocal offset
            raw = np.ascontiguousarray(array, dtype=np.float32).tobytes()
            f.write(raw)
            t = TensorProto()
            t.name = name
            t.data_type = TensorProto.FLOAT
            t.dims.extend(array.shape)
            t.data_location = TensorProto.EXTERNAL
            for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(len(raw)))):
                e = t.external_data.add()
                e.key, e.value = k, v
            offset += len(raw)
            return t

        x = "input"
        for i in range(layers):
            w = rng.standard_normal((width, width), dtype=np.float32) * np.float32(1.0 / np.sqrt(width))
            b = rng.standard_normal(width, dtype=np.float32) * np.float32(0.1)
            inits += [external(f"w{i}", w), external(f"b{i}", b)]
            nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"mm{i}"], name=f"fc{i}"),
                      helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"add{i}"], name=f"bias{i}")]
            last = i + 1 == layers
            y = "output" if last else f"relu{i}"
            if not last:
                nodes.append(helper.make_node("Relu", [f"add{i}"], [y], name=f"relu{i}"))
            else:
                nodes[-1].output[0] = y
            x = y
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", width])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", width])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    return path, os.path.getsize(path) + offset


def run(cmd):
    """Wall time and peak resident memory (ru_maxrss, KiB) of cmd, measured from a small launcher
    process (scale_peers.py says why)."""
    wall, mib = run_measured(cmd)
    return wall, round(mib * 1024)


ORT_CHILD = r"""
import sys, numpy as np
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType, CalibrationMethod
model, calib, out = sys.argv[1:4]
rows = np.load(calib)
class Reader(CalibrationDataReader):
    def __init__(self): self.it = iter([{"input": rows}])
    def get_next(self): return next(self.it, None)
quantize_static(model, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax, use_external_data_format=True)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--amctq", required=True, help="path of the amctq binary")
    ap.add_argument("--work", required=True, help="folder for the model, its rows and the outputs")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="amctq runs, one per value (none: ORT only)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--ort", action="store_true", help="also run ONNX Runtime's quantize_static")
    ap.add_argument("--keep", action="store_true", help="reuse a model already in --work")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    path = os.path.join(args.work, "mlp.onnx")
    if args.keep and os.path.exists(path):
        size = os.path.getsize(path) + os.path.getsize(path + ".data")
    else:
        t0 = time.perf_counter()
        path, size = build_model(args.work, args.layers, args.width, 7)
        print(f"built {path}: {size:,} bytes in {time.perf_counter() - t0:.1f} s", flush=True)
    calib = os.path.join(args.work, "calib.npy")
    np.save(calib, np.random.default_rng(3).standard_normal((args.rows, args.width), dtype=np.float32))
    print(f"{'run':<24}{'wall s':>10}{'peak KiB':>14}{'x model':>10}")
    first = None  # the first run's output folder: every later run must write the same bytes
    for t in args.threads:
        for r in range(args.runs):
            out = os.path.join(args.work, f"out_t{t}_{r}")
            shutil.rmtree(out, ignore_errors=True)
            wall, kib = run([args.amctq, "quantize", "--model", path, "--calib", calib, "--out", out,
                             "--threads", str(t), "--quiet"])
            print(f"{'amctq --threads ' + str(t):<24}{wall:>10.2f}{kib:>14,}{kib * 1024 / size:>10.2f}", flush=True)
            if first is None:
                first = out
                continue
            if not same_files(first, out):
                sys.exit(f"{out} differs from {first}")
            shutil.rmtree(out)
    if first:
        shutil.rmtree(first)
    if args.ort:
        out = os.path.join(args.work, "ort_qdq.onnx")
        wall, kib = run([sys.executable, "-c", ORT_CHILD, path, calib, out])
        print(f"{'ORT quantize_static':<24}{wall:>10.2f}{kib:>14,}{kib * 1024 / size:>10.2f}", flush=True)
        for f in (out, out + ".data"):
            if os.path.exists(f):
                os.remove(f)


if __name__ == "__main__":
    main()
