"""`amctq calib` end to end: --help lists every method and option with its default; the JSON
object has the promised fields (arrays per channel); batches given as separate files give what
one file of the same values gives; NaN is an error naming the file, or counted when skipped,
however it is laid out; failures are one line on stderr, exit status 1 for bad input and 2 for a
bad command line.

usage: cli_calib.py AMCTQ_TOOL WORKDIR
"""
import json
import os
import subprocess
import sys

from tally import Tally

try:
    import numpy as np
except ImportError as e:
    sys.exit(f"cli_calib: {e}; run scripts/setup.sh to install the Python peers")

METHODS = ["minmax", "moving_average", "percentile", "entropy", "mse", "ifmr", "hfmg",
           "aciq_laplace", "aciq_gaussian", "pot_diffs"]
OPTIONS = ["--method", "--bits", "--symmetric", "--asymmetric", "--unsigned", "--narrow-range", "--axis",
           "--preset", "--skip-nonfinite", "--percentile", "--bins", "--levels", "--max-rounds",
           "--max-percentile", "--min-percentile", "--search-range", "--search-step", "--search-points",
           "--refine-points", "--averaging-constant", "--scope", "--max-fix-pos", "--statistic",
           "--torch-int-range", "--histogram-capacity", "--tail-capacity"]
FIELDS = {"method", "preset", "bits", "symmetric", "axis", "min", "max", "scale", "zero_point", "qmin", "qmax",
          "batches", "nonfinite"}

tally = Tally("cli_calib")
check = tally.check


def calib(tool, *args):
    r = subprocess.run([tool, "calib", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def ok(tool, *args):
    rc, out, err = calib(tool, *args)
    check(rc == 0, f"calib {' '.join(args)} exit {rc}: {err}")
    return json.loads(out)


def fails(tool, needle, *args, status=1):
    """Exit status 1 for bad input, 2 for a bad command line; one line on stderr."""
    rc, out, err = calib(tool, *args)
    lines = [l for l in err.splitlines() if l.strip()]
    check(rc == status and len(lines) == 1 and needle in lines[0] and not out,
          f"calib {' '.join(args)}: want exit {status} and one line with '{needle}', got {rc} {err!r}")
    return lines[0]


def save(work, name, a):
    path = os.path.join(work, name)
    np.save(path, a.astype(np.float32))
    return path


def main():
    tool, work = sys.argv[1:3]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(3)

    rc, out, _ = calib(tool, "--help")
    check(rc == 0, "--help exits 0")
    for word in METHODS + OPTIONS:
        check(word in out, f"--help lists {word}")

    x = rng.normal(0.2, 1.0, size=(64, 8, 5)).astype(np.float32)
    whole = save(work, "whole.npy", x)
    parts = [save(work, f"part{i}.npy", x[i * 16:(i + 1) * 16]) for i in range(4)]

    j = ok(tool, "--method", "minmax", whole)
    check(set(j) == FIELDS, f"fields {sorted(j)}")
    check(j["min"] == float(x.min()) and j["max"] == float(x.max()), "minmax is the data's min and max")
    check(abs(j["scale"] - (float(x.max()) - float(x.min())) / 255) < 1e-7, "8-bit asymmetric scale")
    check(j["qmin"] == -128 and j["qmax"] == 127 and j["batches"] == 1 and j["axis"] is None, "grid fields")

    j = ok(tool, "--method", "mse", "--axis", "1", whole)
    check(j["axis"] == 1 and all(len(j[k]) == 8 for k in ("min", "max", "scale", "zero_point")),
          "per-channel fields are arrays of 8")

    # Separate batch files give what one file of the same values gives (order independence).
    for m in ("percentile", "entropy", "mse", "ifmr", "hfmg", "aciq_laplace"):
        a = ok(tool, "--method", m, whole)
        b = ok(tool, "--method", m, *reversed(parts))
        check(b["batches"] == 4, "four batches counted")
        check((a["min"], a["max"], a["scale"], a["zero_point"]) == (b["min"], b["max"], b["scale"], b["zero_point"]),
              f"{m}: four batch files in reverse order give the one-file result")

    # NaN filling whole SIMD widths, inside the data's range: an error naming the file, or counted.
    y = rng.normal(size=200_000).astype(np.float32)
    y[160_000:161_000] = np.nan
    dirty = save(work, "dirty.npy", y)
    clean = save(work, "clean.npy", y[np.isfinite(y)])
    for m in METHODS:
        line = fails(tool, "dirty.npy", "--method", m, dirty)
        check("NaN" in line, f"{m}: the error says NaN: {line}")
        a = ok(tool, "--method", m, "--skip-nonfinite", dirty)
        check(a["nonfinite"] == 1000, f"{m}: 1000 NaN counted, got {a['nonfinite']}")
        b = ok(tool, "--method", m, clean)
        check(a["scale"] == b["scale"] and a["zero_point"] == b["zero_point"],
              f"{m}: skipping NaN gives the clean data's result")

    # A batch, or a channel, with no finite value at all, skipped. No finite value anywhere is
    # an error naming the data (it used to print scale 1.0 with exit 0).
    allnan = save(work, "allnan.npy", np.full((4, 10), np.nan))
    onerow = np.ones((4, 10), np.float32)
    onerow[2] = np.inf
    onerow = save(work, "onerow.npy", onerow)
    for m in METHODS:
        fails(tool, f"tensor '{allnan}' has no data to calibrate: all 40 values were NaN/inf (skipped)",
              "--method", m, "--skip-nonfinite", allnan)
        j = ok(tool, "--method", m, "--skip-nonfinite", "--axis", "0", onerow, allnan)
        check(j["nonfinite"] == 50 and j["min"][2] == 0 and j["max"][2] == 0, f"{m}: an all-inf channel gives [0, 0]")

    # Options: each tunes its own method only; values are checked.
    ok(tool, "--method", "entropy", "--bins", "8", "--levels", "4", whole)
    ok(tool, "--method", "percentile", "--preset", "onnxruntime", "--bins", "10", whole)
    ok(tool, "--method", "mse", "--refine-points", "8", "--max-rounds", "2", whole)
    ok(tool, "--method", "pot_diffs", "--max-fix-pos", "10", "--statistic", "median", whole)
    fails(tool, "does not apply to --method mse", "--method", "mse", "--bins", "64", whole, status=2)
    fails(tool, "does not apply to --method ifmr", "--method", "ifmr", "--percentile", "99", whole, status=2)
    fails(tool, "count", "--method", "ifmr", "--tail-capacity", "-1", whole, status=2)
    fails(tool, "integer", "--bits", "1e12", whole, status=2)
    fails(tool, "bits", "--bits", "1", whole, status=2)
    fails(tool, "unknown option", "--colour", whole, status=2)
    fails(tool, "unknown method", "--method", "kl", whole, status=2)
    fails(tool, "no .npy file", "--method", "mse", status=2)
    fails(tool, "missing.npy", os.path.join(work, "missing.npy"))
    tally.done()


if __name__ == "__main__":
    main()
