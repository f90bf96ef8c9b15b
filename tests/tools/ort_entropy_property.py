#!/usr/bin/env python3
"""Property test (issue 17): `amctq calib --method entropy --preset onnxruntime` equals ONNX
Runtime's own HistogramCollector("entropy") bit for bit, on generated families of data where a
re-binned histogram used to drift from ORT's: outlier-heavy (Laplace body, a few values far out),
skewed (log-normal, one-sided exponential), multi-modal (two or three separated bumps),
mostly-zero (post-ReLU with 90-99 % exact zeros), constant blocks (long runs of one value among
noise, and an all-constant tensor), plus normal and half-normal. Each family is drawn with
several seeds, bin counts and level counts, as one batch and split into batches (ORT's merge:
the range grows by whole bins when a later batch exceeds it; amctq's ort_histogram must follow).

usage: ort_entropy_property.py AMCTQ_BIN WORKDIR [--cases N]
Fails (never skips) without numpy or onnxruntime.
"""
import json
import os
import subprocess
import sys

try:
    import numpy as np
    from onnxruntime.quantization.calibrate import HistogramCollector
except ImportError as e:
    sys.exit(f"ort_entropy_property.py: needs numpy and onnxruntime ({e}); run scripts/setup.sh")


def outliers(rng, n):
    x = rng.laplace(0.0, rng.uniform(0.5, 3.0), n).clip(-10, 10)
    k = int(rng.integers(1, 12))
    x[rng.choice(n, k, replace=False)] = rng.choice([-1.0, 1.0], k) * rng.uniform(30, 90, k)
    return x


def skewed(rng, n):
    if rng.random() < 0.5:
        return rng.lognormal(0.0, rng.uniform(0.5, 1.5), n) * rng.choice([-1.0, 1.0])
    return rng.exponential(rng.uniform(0.1, 5.0), n) - rng.uniform(0.0, 0.5)


def multimodal(rng, n):
    modes = rng.uniform(-20, 20, int(rng.integers(2, 4)))
    x = rng.normal(0.0, rng.uniform(0.2, 2.0), n) + rng.choice(modes, n)
    return x


def mostly_zero(rng, n):
    x = np.maximum(rng.standard_normal(n) * rng.uniform(0.5, 4.0), 0.0)
    x[rng.random(n) < rng.uniform(0.9, 0.99)] = 0.0
    return x


def constant_block(rng, n):
    if rng.random() < 0.2:
        return np.full(n, rng.choice([0.0, 1.5, -3.25]))
    x = rng.standard_normal(n) * rng.uniform(0.1, 3.0)
    for _ in range(int(rng.integers(1, 4))):
        s = int(rng.integers(0, n // 2))
        x[s:s + int(rng.integers(n // 10, n // 3))] = rng.uniform(-5, 5)
    return x


def normal(rng, n):
    return rng.standard_normal(n) * rng.uniform(0.1, 10.0)


def half_normal(rng, n):
    return np.abs(rng.standard_normal(n)) * rng.uniform(0.1, 10.0)


FAMILIES = [outliers, skewed, multimodal, mostly_zero, constant_block, normal, half_normal]


def ort_range(batches, bins, levels):
    c = HistogramCollector("entropy", False, bins, levels, 99.99, "same")
    for b in batches:  # one collect per batch: ORT's merge_histogram between them
        c.collect({"t": [b]})
    lo, hi = c.compute_collection_result()["t"][:2]
    return np.float32(lo), np.float32(hi)


def main():
    amctq, work = sys.argv[1], sys.argv[2]
    cases = int(sys.argv[sys.argv.index("--cases") + 1]) if "--cases" in sys.argv else 2
    os.makedirs(work, exist_ok=True)
    failures, total = [], 0
    devnull = open(os.devnull, "w")
    for fam in FAMILIES:
        for seed in range(cases):
            rng = np.random.default_rng([17, FAMILIES.index(fam), seed])
            n = int(rng.integers(2000, 40000))
            x = fam(rng, n).astype(np.float32)
            # ORT's search is Python loops, O(bins * levels): 2048 bins for the outlier family's
            # first draw (the reported case), fewer elsewhere to keep the test under a minute
            bins, levels = (2048, 128) if fam is outliers and seed == 0 else [(384, 64), (256, 32)][seed % 2]
            # one batch, then the same values in 2-4 batches (ascending absmax first when seed is
            # odd, so the range grows across batches)
            split = int(rng.integers(2, 5))
            parts = np.array_split(x if seed % 2 == 0 else x[np.argsort(np.abs(x), kind="stable")], split)
            for batches in ([x], parts):
                total += 1
                files = []
                for i, b in enumerate(batches):
                    files.append(os.path.join(work, f"b{i}.npy"))
                    np.save(files[-1], b)
                stdout = sys.stdout
                sys.stdout = devnull  # ORT prints its progress
                try:
                    want = ort_range(batches, bins, levels)
                finally:
                    sys.stdout = stdout
                r = subprocess.run([amctq, "calib", "--method", "entropy", "--preset", "onnxruntime", "--bins",
                                    str(bins), "--levels", str(levels)] + files, capture_output=True, text=True)
                label = f"{fam.__name__} seed {seed} ({n} values, {len(batches)} batch(es), bins {bins}, levels {levels})"
                if r.returncode != 0:
                    failures.append(f"{label}: amctq calib failed: {r.stderr.strip()}")
                    continue
                j = json.loads(r.stdout)
                got = (np.float32(j["min"]), np.float32(j["max"]))
                if got != want:
                    failures.append(f"{label}: amctq [{got[0]!r}, {got[1]!r}], ORT [{want[0]!r}, {want[1]!r}]")
    for f in failures:
        print("FAIL:", f)
    print(f"{total - len(failures)} / {total} cases equal ONNX Runtime's entropy range bit for bit")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
