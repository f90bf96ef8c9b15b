#!/usr/bin/env python3
"""amctq quantize at scale, beside ONNX Runtime's quantize_static, in the same run.

Exports torchvision resnet18 (224x224, random weights: time and memory do not depend on them)
at opset 13 once, writes N random calibration images per case, then runs, each in its own
process so its peak memory is its own:

  amctq quantize --threads T  (T = 1, 2)             for N in --images (default 16 64 256)
  mpirun -np 2 amctq quantize --threads 1            (when --mpi and the tool has MPI)
  onnxruntime.quantization.quantize_static           (QDQ, per-channel, MinMax, its default threads)

and prints wall time (median of --runs), peak RSS, and the ratios the scale issue asks for:
--threads 2 / --threads 1, -np 2 / one process, amctq --threads 2 / ORT, peak(256) / peak(16).
It also checks that the files of every amctq run are byte-identical to --threads 1's.

usage: scale_peers.py --amctq build/tools/amctq/amctq [--images 16 64 256] [--runs 3] [--mpi] [--ort]
"""
import argparse
import filecmp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def export_resnet18(path: str) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.resnet18().eval()
    torch.onnx.export(m, torch.randn(1, 3, 224, 224), path, opset_version=13, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})


# Runs the measured command from a small process of its own: Linux starts a forked child's peak
# RSS at its parent's (exec records the copied address space's high-water mark), so measured
# straight from this script, every command would count this script's numpy arrays as its own.
LAUNCHER = r"""
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\nMEASURED {time.perf_counter() - t0} {usage.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of the largest process cmd started."""
    p = subprocess.run([sys.executable, "-S", "-c", LAUNCHER] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
    err = p.stderr.decode()
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    wall, kib = err.strip().splitlines()[-1].split()[1:3]
    return float(wall), int(kib) / 1024.0


ORT_SCRIPT = r"""
import sys, numpy as np
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType, CalibrationMethod
model, calib, out = sys.argv[1:4]
x = np.load(calib, mmap_mode="r")
class Reader(CalibrationDataReader):
    def __init__(self):
        self.i = 0
    def get_next(self):
        if self.i >= len(x):
            return None
        self.i += 1
        return {"image": np.ascontiguousarray(x[self.i - 1:self.i])}
quantize_static(model, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
"""


def same_files(a: str, b: str) -> bool:
    names = sorted(os.listdir(a))
    return names == sorted(os.listdir(b)) and all(filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False)
                                                   for n in names)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--amctq", required=True)
    ap.add_argument("--images", type=int, nargs="*", default=[16, 64, 256])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mpi", action="store_true", help="also mpirun -np 2")
    ap.add_argument("--ort", action="store_true", help="also ONNX Runtime quantize_static")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="amctq-scale-")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "resnet18.onnx")
    if not os.path.exists(model):
        export_resnet18(model)
    rng = np.random.default_rng(0)
    mpirun = ["mpirun", "-np", "2", "--oversubscribe"] + (["--allow-run-as-root"] if os.getuid() == 0 else [])
    rows = []
    for n in args.images:
        calib = os.path.join(work, f"calib{n}.npy")
        if not os.path.exists(calib):
            np.save(calib, rng.standard_normal((n, 3, 224, 224), dtype=np.float32))
        cases = [("amctq --threads 1", None, 1), ("amctq --threads 2", None, 2)]
        if args.mpi:
            cases.append(("mpirun -np 2 amctq --threads 1", mpirun, 1))
        ref = None
        for label, launcher, threads in cases:
            out = os.path.join(work, f"out{n}_{label.replace(' ', '_')}")
            cmd = (launcher or []) + [args.amctq, "quantize", "--model", model, "--calib", calib, "--out", out,
                                      "--threads", str(threads), "--quiet"]
            walls, peak = [], 0.0
            for _ in range(args.runs):
                w, rss = run_measured(cmd)
                walls.append(w)
                peak = max(peak, rss)
            same = "reference" if ref is None else ("yes" if same_files(ref, out) else "NO")
            ref = ref or out
            rows.append((n, label, statistics.median(walls), peak, same))
            print(f"{n:4d} images  {label:32s} {statistics.median(walls):7.2f} s  {peak:7.0f} MiB  identical: {same}",
                  flush=True)
        if args.ort:
            py = os.path.join(ROOT, ".venv", "bin", "python")
            walls, peak = [], 0.0
            for _ in range(args.runs):
                w, rss = run_measured([py, "-c", ORT_SCRIPT, model, calib, os.path.join(work, f"ort{n}.onnx")])
                walls.append(w)
                peak = max(peak, rss)
            rows.append((n, "ORT quantize_static", statistics.median(walls), peak, "-"))
            print(f"{n:4d} images  {'ORT quantize_static':32s} {statistics.median(walls):7.2f} s  {peak:7.0f} MiB",
                  flush=True)
    by = {(n, label): (w, p) for n, label, w, p, _ in rows}
    print("\nratios (wall):")
    for n in args.images:
        t1, t2 = by[(n, "amctq --threads 1")][0], by[(n, "amctq --threads 2")][0]
        print(f"  {n:4d} images: --threads 2 / --threads 1 = {t2 / t1:.2f}")
        if (n, "mpirun -np 2 amctq --threads 1") in by:
            print(f"  {n:4d} images: -np 2 / one process (1 thread) = {by[(n, 'mpirun -np 2 amctq --threads 1')][0] / t1:.2f}")
        if (n, "ORT quantize_static") in by:
            print(f"  {n:4d} images: amctq --threads 2 / ORT quantize_static = {t2 / by[(n, 'ORT quantize_static')][0]:.2f}")
    lo, hi = min(args.images), max(args.images)
    if lo != hi:
        print(f"peak RSS {hi} / {lo} images (--threads 1): "
              f"{by[(hi, 'amctq --threads 1')][1] / by[(lo, 'amctq --threads 1')][1]:.2f}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
