"""The Python package against its peers, in one run on the same arrays (issue 20's targets):
amctq.fake_quantize on 16M floats vs torch.fake_quantize_per_tensor_affine (goal: at least 5x),
and amctq.calibrate(method="entropy") vs ONNX Runtime's entropy calibrator (HistogramCollector,
what EntropyCalibrater runs; goal: at least 100x). Prints medians of process CPU time and ratios,
one thread each; then amctq's entropy calibration with its default threads (one per core), in wall
time, against ONNX Runtime's wall time (numpy's min / max / histogram run on one thread).

usage: PYTHONPATH=<dir holding amctq> .venv/bin/python bench/python_peers.py [--n 16777216] [--reps 7]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
from onnxruntime.quantization.calibrate import HistogramCollector

import amctq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_calibration_bench import cpu_median  # noqa: E402  (importing it also sets one thread for torch and OpenMP)
import torch  # noqa: E402


def wall_median(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ort_entropy(x, bins, levels):
    c = HistogramCollector("entropy", False, bins, levels, 99.999, "same")
    c.collect({"t": [x]})
    return c.compute_collection_result()["t"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1 << 24)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--ort-reps", type=int, default=3, help="ORT's calibrator takes seconds per run")
    a = ap.parse_args()
    x = np.random.default_rng(0).standard_normal(a.n).astype(np.float32)
    xt = torch.from_numpy(x)
    out = np.empty_like(x)
    scale = 0.02
    rows = []

    def row(name, seconds, base=None, peer=""):
        rows.append((name, seconds, None if base is None else f"{base / seconds:8.1f}x {peer}"))

    t_torch = cpu_median(lambda: torch.fake_quantize_per_tensor_affine(xt, scale, 0, -128, 127), a.reps)
    row("torch.fake_quantize_per_tensor_affine", t_torch)
    row("amctq.fake_quantize (new output)", cpu_median(lambda: amctq.fake_quantize(x, scale, 0), a.reps), t_torch, "torch")
    row("amctq.fake_quantize (out=)", cpu_median(lambda: amctq.fake_quantize(x, scale, 0, out=out), a.reps), t_torch, "torch")
    # Both sides compute the same thing: amctq with ONNX Runtime's preset equals ORT's range bit for bit
    # (tests/tools/ort_entropy_property.py); amctq's own entropy (amct preset) is listed too.
    t_ort = cpu_median(lambda: ort_entropy(x, 2048, 128), a.ort_reps)
    row("onnxruntime HistogramCollector('entropy', 2048 bins, 128 levels)", t_ort)
    row("amctq.calibrate(method='entropy', preset='onnxruntime')",
        cpu_median(lambda: amctq.calibrate(x, method="entropy", preset="onnxruntime", bins=2048, levels=128, threads=1),
                       a.reps), t_ort, "ONNX Runtime")
    row("amctq.calibrate(method='entropy')", cpu_median(lambda: amctq.calibrate(x, method="entropy", threads=1), a.reps),
        t_ort, "ONNX Runtime")
    # ORT's entropy threshold is symmetric (|x| <= T); amctq's default window is asymmetric.
    row("amctq.calibrate(method='entropy', symmetric=True)",
        cpu_median(lambda: amctq.calibrate(x, method="entropy", symmetric=True, threads=1), a.reps), t_ort,
        "ONNX Runtime")

    # Where the time goes: one pass over the data (histogram) and the threshold search.
    collector = HistogramCollector("entropy", False, 2048, 128, 99.999, "same")
    t_collect = cpu_median(lambda: collector.collect({"t": [x]}), a.ort_reps)
    t_search = cpu_median(collector.compute_collection_result, a.ort_reps)
    row("  onnxruntime: collect (histogram)", t_collect)
    row("  onnxruntime: compute_collection_result (search)", t_search)
    ob = amctq.Observer("entropy")
    row("  amctq: Observer.observe (histogram)",
        cpu_median(lambda: amctq.Observer("entropy", threads=1).observe(x), a.reps), t_collect, "ONNX Runtime's collect")
    ob.observe(x)
    row("  amctq: Observer.result (search)", cpu_median(ob.result, a.reps), t_search, "ONNX Runtime's search")

    print(f"{a.n} float32 values; CPU-time medians of {a.reps} runs ({a.ort_reps} for ONNX Runtime); one thread each")
    for name, s, ratio in rows:
        print(f"  {name:<68} {s * 1e3:10.2f} ms" + ("" if ratio is None else f"   {ratio}"))

    # Wall time: amctq's default threads (the batch split across cores, merged exactly).
    rows.clear()
    w_ort = wall_median(lambda: ort_entropy(x, 2048, 128), a.ort_reps)
    row("onnxruntime HistogramCollector('entropy', 2048 bins, 128 levels)", w_ort)
    row("amctq.calibrate(method='entropy')", wall_median(lambda: amctq.calibrate(x, method="entropy"), a.reps),
        w_ort, "ONNX Runtime")
    w_collect = wall_median(lambda: collector.collect({"t": [x]}), a.ort_reps)
    row("  onnxruntime: collect (histogram)", w_collect)
    row("  amctq: Observer.observe (histogram)", wall_median(lambda: amctq.Observer("entropy").observe(x), a.reps),
        w_collect, "ONNX Runtime's collect")
    print(f"wall-time medians; amctq with threads=0 ({os.cpu_count()} cores, at most 8 threads), ONNX Runtime on one")
    for name, s, ratio in rows:
        print(f"  {name:<68} {s * 1e3:10.2f} ms" + ("" if ratio is None else f"   {ratio}"))


if __name__ == "__main__":
    main()
