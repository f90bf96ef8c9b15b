#!/usr/bin/env python3
"""`amctq quantize` at scale (issue 19): threads, memory-bounded slices, progress, MPI.

usage: cli_scale.py AMCTQ CNN.onnx VIT.onnx CALIB.npy WORKDIR [--mpirun MPIRUN]

- --threads 1 / 2 / 3 write byte-identical files (CNN and ViT, sliced and whole batches, and
  moving_average / pot_diffs, which observe whole batches, with batch_num 4);
- slices change no parameter beyond float rounding: a sliced run's activation scales equal the
  whole-batch run's within 1e-5 relative;
- a memory bound that not even one row fits is an error that says what would, and writes nothing;
- bad --threads / --max-memory values are usage errors;
- progress: a bar redrawn with \\r on a terminal, plain lines in a pipe, nothing with --quiet;
- with --mpirun: `mpirun -np 2` writes the files of one process byte for byte, and a rank that
  fails (NaN in its rows only) stops both, with its error, writing nothing.
"""
import filecmp
import json
import os
import pty
import re
import shutil
import subprocess
import sys

import numpy as np

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def same_dir(a, b):
    if not (os.path.isdir(a) and os.path.isdir(b)):
        return False
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    return all(filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False) for n in names)


def quantize(tool, model, calib, out, *extra, launcher=()):
    shutil.rmtree(out, ignore_errors=True)
    r = run(list(launcher) + [tool, "quantize", "--model", model, "--calib", calib, "--out", out, "--quiet", *extra])
    if r.returncode != 0:
        print(r.stderr)
    return r


def threads_agree(tool, model, calib, work, label, *extra, threads=(1, 2)):
    """Quantizes with each thread count; checks each exits 0 and all write the same bytes."""
    outs = []
    for t in threads:
        out = os.path.join(work, f"{label.replace(' ', '_').replace(',', '')}_t{t}")
        r = quantize(tool, model, calib, out, "--threads", str(t), *extra)
        check(r.returncode == 0, f"{label}, --threads {t}: exit 0")
        outs.append(out)
    check(all(same_dir(outs[0], o) for o in outs[1:]),
          f"{label}: --threads {', '.join(map(str, threads))} write the same bytes")
    return outs[0]


def act_scales(out):
    with open(os.path.join(out, "record.json")) as f:
        rec = json.load(f)
    layers = rec["layers"] if isinstance(rec.get("layers"), dict) else rec
    scales = {}
    for name, layer in layers.items():
        if isinstance(layer, dict) and "scale_d" in layer:
            scales[name] = float(np.asarray(layer["scale_d"]).ravel()[0])
    return scales


def config_with(tool, model, work, name, **activation):
    r = run([tool, "config", "--model", model])
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    cfg["batch_num"] = activation.pop("batch_num", cfg["batch_num"])
    cfg["activation"].update(activation)
    path = os.path.join(work, name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def main():
    args = sys.argv[1:]
    mpirun = None
    if "--mpirun" in args:
        i = args.index("--mpirun")
        mpirun = args[i + 1]
        del args[i:i + 2]
    tool, cnn, vit, calib_src, work = args
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    calib = os.path.join(work, "calib.npy")
    x = np.load(calib_src)[:96].astype(np.float32)
    np.save(calib, x)

    # Threads: byte-identical files, whole batches (one slice each) and small slices.
    for model, tag in ((cnn, "cnn"), (vit, "vit")):
        whole = threads_agree(tool, model, calib, work, f"{tag}, whole batches", "--slice-rows", "1000000",
                              "--max-memory", "4G", threads=(1, 2, 3))
        sliced = threads_agree(tool, model, calib, work, f"{tag}, slices of 7 rows", "--slice-rows", "7",
                               threads=(1, 2, 3))
        whole, sliced = act_scales(whole), act_scales(sliced)
        check(whole.keys() == sliced.keys() and len(whole) > 0, f"{tag}: the same layers calibrated either way")
        worst = max(abs(whole[k] - sliced[k]) / whole[k] for k in whole)
        check(worst <= 1e-5, f"{tag}: slices change no activation scale beyond float rounding (worst {worst:.2e})")

    # Observers that keep a value per batch see each batch whole, whatever the thread count.
    for algo in ("moving_average", "pot_diffs"):
        cfg = config_with(tool, cnn, work, f"{algo}.json", act_algo=algo, batch_num=4)
        threads_agree(tool, cnn, calib, work, f"{algo}, batch_num 4", "--config", cfg, "--slice-rows", "5")

    # DMQ balance (sliced, on threads) and bias correction (whole batches) ahead of calibration.
    r = run([tool, "config", "--model", cnn])
    cfg = json.loads(r.stdout)
    for name in ("/4/Conv", "/7/Conv", "/16/Gemm"):
        cfg["layers"][name]["dmq_balancer_param"] = 0.5
    cfg["global"]["include_bias_corr"] = True
    cfg["batch_num"] = 2
    dmq = os.path.join(work, "dmq.json")
    with open(dmq, "w") as f:
        json.dump(cfg, f)
    threads_agree(tool, cnn, calib, work, "DMQ balance + bias correction", "--config", dmq, "--slice-rows", "5")

    # A model exported for batch 1 runs one row at a time, any number of rows.
    import onnx
    m = onnx.load(cnn)
    for v in list(m.graph.input) + list(m.graph.output):
        v.type.tensor_type.shape.dim[0].ClearField("dim_param")
        v.type.tensor_type.shape.dim[0].dim_value = 1
    batch1 = os.path.join(work, "cnn_batch1.onnx")
    onnx.save(m, batch1)
    threads_agree(tool, batch1, calib, work, "a model of batch size 1, 96 rows")

    # A bound not even one row fits.
    out = os.path.join(work, "too_small")
    r = quantize(tool, cnn, calib, out, "--max-memory", "1K")
    check(r.returncode == 1 and "raise the bound to at least" in r.stderr and "MiB" in r.stderr,
          "--max-memory 1K: exit 1 saying what bound would do: " + r.stderr.strip()[:200])
    check(not os.path.exists(out), "--max-memory 1K: nothing written")
    for opt, val in (("--threads", "0"), ("--threads", "two"), ("--max-memory", "lots"), ("--max-memory", "-1G"),
                     ("--slice-rows", "0")):
        r = quantize(tool, cnn, calib, os.path.join(work, "bad"), opt, val)
        check(r.returncode == 2 and opt in r.stderr, f"{opt} {val}: usage error naming the option")

    # Progress: plain lines in a pipe, a redrawn bar on a terminal, nothing with --quiet.
    base = [tool, "quantize", "--model", cnn, "--calib", calib, "--slice-rows", "8", "--threads", "1"]
    r = run(base + ["--out", os.path.join(work, "progress_pipe")])
    lines = [ln for ln in r.stderr.splitlines() if "calibration" in ln and "rows" in ln]
    check(r.returncode == 0 and 1 <= len(lines) <= 12 and "\r" not in r.stderr and "96/96 rows" in lines[-1],
          f"progress in a pipe: {len(lines)} plain lines ending at 96/96 rows")
    r = run(base + ["--out", os.path.join(work, "progress_quiet"), "--quiet"])
    check(r.returncode == 0 and "calibration" not in r.stderr, "--quiet: no progress")
    master, slave = pty.openpty()
    p = subprocess.Popen(base + ["--out", os.path.join(work, "progress_tty")], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    p.wait()
    os.close(master)
    tty = b"".join(chunks).decode(errors="replace")
    check(p.returncode == 0 and "\r" in tty and "[" in tty and "rows/s" in tty and "96/96 rows" in tty,
          "progress on a terminal: a bar redrawn in place with rows/s")

    if mpirun:
        launcher = [mpirun, "-np", "2", "--oversubscribe"] + (["--allow-run-as-root"] if os.getuid() == 0 else [])
        env_ok = run(launcher + ["true"])
        check(env_ok.returncode == 0, "mpirun -np 2 starts: " + env_ok.stderr.strip()[:200])
        for model, tag in ((cnn, "cnn"), (vit, "vit")):
            one = os.path.join(work, f"{tag}_mpi_ref")
            quantize(tool, model, calib, one, "--threads", "1", "--slice-rows", "7")
            out = os.path.join(work, f"{tag}_mpi")
            r = quantize(tool, model, calib, out, "--threads", "1", "--slice-rows", "7", launcher=launcher)
            check(r.returncode == 0, f"{tag}: mpirun -np 2 amctq quantize: exit 0")
            check(r.returncode == 0 and same_dir(one, out), f"{tag}: mpirun -np 2 writes one process's bytes")
        # NaN only in the last rows: whichever rank claims that slice fails.
        bad = x.copy()
        bad[-3:, 0, 0, 0] = np.nan
        bad_calib = os.path.join(work, "nan_tail.npy")
        np.save(bad_calib, bad)
        out = os.path.join(work, "mpi_fail")
        r = quantize(tool, cnn, bad_calib, out, "--threads", "1", "--slice-rows", "8", launcher=launcher)
        check(r.returncode != 0 and re.search(r"rank [01] of 2", r.stderr) is not None and "NaN" in r.stderr,
              "a rank that fails stops the job with its error: " + r.stderr.strip()[:300])
        check(not os.path.exists(out) or not os.listdir(out), "a failed MPI run writes nothing")

    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
