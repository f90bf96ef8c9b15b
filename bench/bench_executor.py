#!/usr/bin/env python3
"""Executor vs ONNX Runtime, one thread each (--threads N: N each), on the same model and input, in the same run.

Exports the models with bench/export_bench_models.py when a case folder does not exist yet,
then for each case (default: torchvision_resnet18 and bert_encoder) runs ONNX Runtime
(intra_op_num_threads=1, all graph optimisations on, the default) and the bench_executor binary,
and prints median times and the ratio executor / ORT. Issue 19's target: ratio <= 1.5 on both.
With --threads N, ORT gets intra_op_num_threads=N and the executor N intra-op threads (compare
wall times then: CPU time counts every thread).
The two alternate per round (ORT, then ours, --rounds times) so drifting load on a shared machine
hits both alike; the median of the rounds' medians is reported.

usage: bench_executor.py --binary build/bench/bench_executor [--models DIR] [--runs 20] [--threads 1] [case ...]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper, TensorProto

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ort_median_ms(case_dir: str, runs: int, warmup: int, threads: int) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(case_dir, "model.onnx"), opts, providers=["CPUExecutionProvider"])
    feeds = {}
    for j, inp in enumerate(sess.get_inputs()):
        t = TensorProto()
        with open(os.path.join(case_dir, "test_data_set_0", f"input_{j}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        feeds[inp.name] = numpy_helper.to_array(t)
    times, cpu = [], []
    for i in range(warmup + runs):
        c0, t0 = time.process_time(), time.perf_counter()
        sess.run(None, feeds)
        t1, c1 = time.perf_counter(), time.process_time()
        if i >= warmup:
            times.append((t1 - t0) * 1e3)
            cpu.append((c1 - c0) * 1e3)
    return float(np.median(times)), float(np.median(cpu))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--models", default=os.path.join(ROOT, "build-bench-models"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("cases", nargs="*", default=["torchvision_resnet18", "bert_encoder"])
    a = ap.parse_args()
    missing = [c for c in a.cases if not os.path.isdir(os.path.join(a.models, c))]
    if missing:
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "export_bench_models.py"), a.models] + missing,
                       check=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for case in a.cases:
        case_dir = os.path.join(a.models, case)
        ort_wall, ort_cpu, ours_wall, ours_cpu, diff = [], [], [], [], 0.0
        for _ in range(a.rounds):
            w, c = ort_median_ms(case_dir, a.runs, a.warmup, a.threads)
            ort_wall.append(w)
            ort_cpu.append(c)
            out = subprocess.run([a.binary, case_dir, str(a.runs), str(a.warmup), f"threads={a.threads}"], check=True,
                                 capture_output=True, text=True)
            ours = json.loads(out.stdout.strip().splitlines()[-1])
            ours_wall.append(ours["median_ms"])
            ours_cpu.append(ours["cpu_median_ms"])
            diff = max(diff, ours["max_abs_diff_vs_ort"])
        med = lambda v: float(np.median(v))  # noqa: E731
        print(f"{case} ({a.threads} thread{'s' if a.threads > 1 else ''} each, median of {a.rounds} rounds of {a.runs} runs; max |amctq - ORT| {diff:.2g}):\n"
              f"  wall: amctq executor {med(ours_wall):.2f} ms, onnxruntime {med(ort_wall):.2f} ms, "
              f"ratio {med(ours_wall) / med(ort_wall):.2f}x\n"
              f"  CPU:  amctq executor {med(ours_cpu):.2f} ms, onnxruntime {med(ort_cpu):.2f} ms, "
              f"ratio {med(ours_cpu) / med(ort_cpu):.2f}x (target <= 1.5x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
