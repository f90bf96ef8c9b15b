#!/usr/bin/env python3
"""Property test (issue 17): `amctq calib --preset onnxruntime` with `--method entropy` and with
`--method percentile` equals ONNX Runtime's own HistogramCollector ("entropy", "percentile") bit
for bit, on generated families of data where a re-binned histogram used to drift from ORT's:
outlier-heavy (Laplace body, a few values far out), skewed (log-normal, one-sided exponential),
multi-modal (two or three separated bumps), mostly-zero (post-ReLU with 90-99 % exact zeros),
constant blocks (long runs of one value among noise, and an all-constant tensor), plus normal and
half-normal. Each family is drawn with several seeds, bin counts and level counts, as one batch
and split into batches (ORT's merges: for x, the range grows by whole bins on both sides when a
later batch exceeds it; for percentile's symmetric |x| histogram, bins are appended with np.arange
and values below the first edge are dropped; amctq's ort_histogram must follow). Percentile runs
with symmetric (|x| histogram) and asymmetric (x histogram) ranges at 99.999, 99.9 and 99 %.

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


def ort_range(method, batches, bins, levels=128, percentile=99.99, symmetric=False):
    c = HistogramCollector(method, symmetric, bins, levels, percentile, "same")
    stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # ORT prints its progress
    try:
        for b in batches:  # one collect per batch: ORT's merge between them
            c.collect({"t": [b]})
        lo, hi = c.compute_collection_result()["t"][:2]
    finally:
        sys.stdout.close()
        sys.stdout = stdout
    return np.float32(lo), np.float32(hi)


def draw(fam, seed):
    """(values, the same values in 2-4 batches): ascending |x| when seed is odd, so the range
    grows across batches; in order otherwise."""
    rng = np.random.default_rng([17, FAMILIES.index(fam), seed])
    n = int(rng.integers(2000, 40000))
    x = fam(rng, n).astype(np.float32)
    split = int(rng.integers(2, 5))
    return x, np.array_split(x if seed % 2 == 0 else x[np.argsort(np.abs(x), kind="stable")], split)


def compare(amctq, work, batches, options, want, label, failures):
    files = []
    for i, b in enumerate(batches):
        files.append(os.path.join(work, f"b{i}.npy"))
        np.save(files[-1], b)
    r = subprocess.run([amctq, "calib", "--preset", "onnxruntime"] + options + files, capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"{label}: amctq calib failed: {r.stderr.strip()}")
        return
    j = json.loads(r.stdout)
    got = (np.float32(j["min"]), np.float32(j["max"]))
    if got != want:
        failures.append(f"{label}: amctq [{got[0]!r}, {got[1]!r}], ORT [{want[0]!r}, {want[1]!r}]")


def main():
    amctq, work = sys.argv[1], sys.argv[2]
    cases = int(sys.argv[sys.argv.index("--cases") + 1]) if "--cases" in sys.argv else 2
    os.makedirs(work, exist_ok=True)
    failures, total = [], {"entropy": 0, "percentile": 0}
    for fam in FAMILIES:
        for seed in range(cases + 1):
            x, parts = draw(fam, seed)
            for batches in ([x], parts):
                where = f"{fam.__name__} seed {seed} ({x.size} values, {len(batches)} batch(es)"
                # Percentile is one pass over the CDF: ORT's default 2048 bins everywhere, one
                # more seed than entropy.
                for sym in (True, False):
                    pct = (99.999, 99.9, 99.0)[(seed + sym) % 3]
                    total["percentile"] += 1
                    compare(amctq, work, batches, ["--method", "percentile", "--percentile", str(pct),
                                                   "--symmetric" if sym else "--asymmetric"],
                            ort_range("percentile", batches, 2048, percentile=pct, symmetric=sym),
                            f"percentile {pct} {'symmetric' if sym else 'asymmetric'} {where})", failures)
                if seed == cases:
                    continue
                # ORT's entropy search is Python loops, O(bins * levels): 2048 bins for the
                # outlier family's first draw (the reported case), fewer elsewhere to keep the
                # test under a minute.
                bins, levels = (2048, 128) if fam is outliers and seed == 0 else [(384, 64), (256, 32)][seed % 2]
                total["entropy"] += 1
                compare(amctq, work, batches, ["--method", "entropy", "--bins", str(bins), "--levels", str(levels)],
                        ort_range("entropy", batches, bins, levels),
                        f"entropy {where}, bins {bins}, levels {levels})", failures)
    for f in failures:
        print("FAIL:", f)
    print(f"{sum(total.values()) - len(failures)} / {sum(total.values())} cases ({total['entropy']} entropy, "
          f"{total['percentile']} percentile) equal ONNX Runtime's range bit for bit")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
