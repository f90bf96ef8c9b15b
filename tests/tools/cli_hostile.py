"""Hostile input to the amctq tool (issue 15): configs nested deep or holding huge values,
external data behind symbolic links, FIFOs and device nodes, duplicate names, stdout on a full
device, saves killed part way, calibration without data, empty paths, opsets past the writer's.
Each refusal must be one line on stderr with a non-zero status; each save must leave either a
complete set (amctq_manifest.json matching every file) or no manifest.

usage: cli_hostile.py AMCTQ_TOOL WORKDIR
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

from tally import Tally

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    sys.exit(f"cli_hostile: {e}; run scripts/setup.sh to install the Python peers")
try:
    import onnxruntime as ort
    ort.set_default_logger_severity(3)
except ImportError:
    ort = None

rng = np.random.default_rng(15)
tally = Tally("cli_hostile")
check = tally.check
TOOL = ""


def amctq(*args, stdout=subprocess.PIPE, timeout=120):
    return subprocess.run([TOOL, *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout)


def one_line_error(r, status, needle, what):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(r.returncode == status and len(lines) == 1 and needle in lines[0],
          f"{what}: want status {status} and one line with {needle!r}, got {r.returncode}: {r.stderr[:2000]!r}")
    return lines[0] if lines else ""


def gemm_model(width=8, opset=17, names=("g1", "g2"), init_names=("w1", "b1", "w2", "b2"), input_dims=(16, 8)):
    w1, b1, w2, b2 = init_names
    inits = [numpy_helper.from_array((rng.normal(size=(input_dims[1], width)) * 0.3).astype(np.float32), w1),
             numpy_helper.from_array((rng.normal(size=width) * 0.1).astype(np.float32), b1),
             numpy_helper.from_array((rng.normal(size=(width, 4)) * 0.3).astype(np.float32), w2),
             numpy_helper.from_array((rng.normal(size=4) * 0.1).astype(np.float32), b2)]
    nodes = [helper.make_node("Gemm", ["x", w1, b1], ["h"], name=names[0]),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", w2, b2], ["y"], name=names[1])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [input_dims[0], 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def save(model, d, name="m.onnx", **kw):
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    onnx.save_model(model, path, **kw)
    return path


def manifest_state(out):
    """'none' without a manifest, 'complete' when every listed file matches, else what differs."""
    mpath = os.path.join(out, "amctq_manifest.json")
    if not os.path.exists(mpath):
        return "none"
    m = json.load(open(mpath))
    for f in m["files"]:
        p = os.path.join(out, f["name"])
        if not os.path.exists(p):
            return f"{f['name']} missing"
        data = open(p, "rb").read()
        if len(data) != f["bytes"] or hashlib.sha256(data).hexdigest() != f["sha256"]:
            return f"{f['name']} differs"
    return "complete"


def child_peak_rss_mb(args):
    """Runs args in a child of a fresh Python and returns (status, stderr, that child's peak RSS in MB)."""
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "sys.stderr.write(r.stderr)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    status, kb = r.stdout.split()
    return int(status), r.stderr, int(kb) / 1024


def nested_config(work, x):
    """Item 1: nesting is limited to 256 levels, memory stays linear in the config's size."""
    d = os.path.join(work, "nested")
    model = save(gemm_model(), d)
    calib = os.path.join(d, "calib.npy")
    np.save(calib, x)
    # 255 objects nested under 8000-character keys (2 MB): keeping the whole key path per open
    # level took sum(i * 8 kB) = 261 MB; the keys themselves are 2 MB.
    def refused_config(name, text, needle):
        """quantize with this config text: one short line with needle; returns (peak RSS MB, seconds)."""
        cfg = os.path.join(d, f"{name}.json")
        open(cfg, "w").write(text)
        t0 = time.monotonic()
        status, err, rss = child_peak_rss_mb([TOOL, "quantize", "--model", model, "--calib", calib, "--config", cfg,
                                              "--out", os.path.join(d, "out"), "--quiet"])
        lines = err.strip().splitlines()
        check(status == 1 and len(lines) == 1 and needle in lines[0] and len(lines[0]) < 700,
              f"{name}: one short line with {needle!r}, got {status}: {err[:800]!r}")
        return rss, time.monotonic() - t0

    key = "k" * 8000
    rss, took = refused_config("deep_keys", "".join('{"' + key + str(i) + '": ' for i in range(255)) + "1" + "}" * 255,
                               "unknown key")
    check(rss < 80, f"deep keys: 2 MB config read in {rss:.0f} MB (want < 80; quadratic: > 260)")
    print(f"cli_hostile: 2 MB config of 255 nested 8 kB keys: peak RSS {rss:.1f} MB, {took:.2f} s")
    # 100 000 nested '[' (the 200 kB file: 17 GB and 72 s before): refused at level 257.
    for name, text in (("deep_arrays", "[" * 100000 + "]" * 100000),
                       ("deep_objects", '{"a": ' * 100000 + "1" + "}" * 100000)):
        rss, took = refused_config(name, text, "nested deeper than 256 levels")
        check(rss < 60 and took < 10, f"{name}: refused in {rss:.0f} MB, {took:.1f} s")
    # A bad value is quoted short, however long it is.
    cfg = os.path.join(d, "long_value.json")
    json.dump({"batch_num": "x" * 100000, "activation": {"act_algo": "y" * 100000}}, open(cfg, "w"))
    r = amctq("quantize", "--model", model, "--calib", calib, "--config", cfg, "--out", os.path.join(d, "out"))
    line = one_line_error(r, 1, "config.batch_num: must be an integer, got \"xxx", "long value")
    check(len(line) < 300 and "(100002 bytes)" in line, f"long value: quoted short with its size, got {len(line)} chars")
    check(not os.path.exists(os.path.join(d, "out")), "nested: nothing written")


def external_data(work, x):
    """Item 2: external data that resolves outside the model's folder, or is not a regular file."""
    base = os.path.join(work, "external")
    outside = os.path.join(base, "outside")
    os.makedirs(outside)
    xin = os.path.join(base, "x.npy")
    np.save(xin, x)

    def model_dir(name):
        d = os.path.join(base, name)
        save(gemm_model(), d, save_as_external_data=True, location="w.bin", size_threshold=0)
        return d

    def run(d):
        return amctq("run", "--model", os.path.join(d, "m.onnx"), "--input", xin, "--output", os.path.join(base, "y.npy"),
                     timeout=30)

    ok = model_dir("plain")
    r = run(ok)
    check(r.returncode == 0, f"external plain: runs, got {r.returncode}: {r.stderr}")
    # A file symlink to a copy outside: the bytes are the same, the location still escapes.
    d = model_dir("file_link")
    shutil.move(os.path.join(d, "w.bin"), os.path.join(outside, "w.bin"))
    os.symlink(os.path.join("..", "outside", "w.bin"), os.path.join(d, "w.bin"))
    one_line_error(run(d), 1, "outside the model's folder", "external file symlink")
    # A folder symlink: location "sub/w.bin" with sub -> ../outside.
    d = os.path.join(base, "dir_link")
    os.makedirs(os.path.join(d, "sub"))
    save(gemm_model(), d, save_as_external_data=True, location="sub/w.bin", size_threshold=0)
    os.makedirs(os.path.join(outside, "sub"))
    shutil.move(os.path.join(d, "sub", "w.bin"), os.path.join(outside, "sub", "w.bin"))
    os.rmdir(os.path.join(d, "sub"))
    os.symlink(os.path.join(outside, "sub"), os.path.join(d, "sub"))
    one_line_error(run(d), 1, "outside the model's folder", "external folder symlink")
    # A symlink that stays inside the folder is fine.
    d = model_dir("inner_link")
    os.rename(os.path.join(d, "w.bin"), os.path.join(d, "real.bin"))
    os.symlink("real.bin", os.path.join(d, "w.bin"))
    r = run(d)
    check(r.returncode == 0, f"external inner symlink: runs, got {r.returncode}: {r.stderr}")
    # A FIFO (reading it would block) and a folder.
    d = model_dir("fifo")
    os.remove(os.path.join(d, "w.bin"))
    os.mkfifo(os.path.join(d, "w.bin"))
    one_line_error(run(d), 1, "'w.bin' is not a regular file", "external FIFO")
    d = model_dir("folder")
    os.remove(os.path.join(d, "w.bin"))
    os.mkdir(os.path.join(d, "w.bin"))
    one_line_error(run(d), 1, "'w.bin' is not a regular file", "external folder")


def duplicates(work, x):
    """Item 3: duplicate node or initializer names are refused up front, naming the name."""
    for what, model, needle in (
            ("nodes", gemm_model(names=("dup", "dup")), "node[0] and node[2] are both named 'dup'"),
            ("initializers", gemm_model(init_names=("w", "b", "w2", "b")), "initializer[1] and initializer[3] are both named 'b'")):
        d = os.path.join(work, "dup_" + what)
        path = save(model, d)
        np.save(os.path.join(d, "calib.npy"), x)
        before = sorted(os.listdir(d))
        r = amctq("quantize", "--model", path, "--calib", os.path.join(d, "calib.npy"), "--out", os.path.join(d, "out"))
        one_line_error(r, 1, needle, f"duplicate {what}")
        check(sorted(os.listdir(d)) == before, f"duplicate {what}: nothing written")
        one_line_error(amctq("inspect", path), 1, needle, f"duplicate {what}: inspect")
    # An unnamed Gemm's layer takes its output's name, here the name of the other Gemm.
    collide = gemm_model(names=("", "h"))
    d = os.path.join(work, "dup_layers")
    path = save(collide, d)
    np.save(os.path.join(d, "calib.npy"), x)
    r = amctq("quantize", "--model", path, "--calib", os.path.join(d, "calib.npy"), "--out", os.path.join(d, "out"))
    one_line_error(r, 1, "two layers are named 'h' (Gemm and Gemm;", "layer names alike")
    check(not os.path.exists(os.path.join(d, "out")) and not re.search(r"calibration \d+/\d+ rows", r.stderr),
          "layer names alike: refused before calibrating, nothing written")


def lost_stdout(work, x):
    """Item 4: stdout on a full device is an error, not exit 0."""
    d = os.path.join(work, "stdout")
    path = save(gemm_model(), d)
    np.save(os.path.join(d, "x.npy"), x)
    with open("/dev/full", "w") as full:
        for args in (["config", "--model", path], ["calib", "--method", "minmax", os.path.join(d, "x.npy")],
                     ["inspect", path], ["run", "--model", path, "--input", os.path.join(d, "x.npy")], ["--help"]):
            r = amctq(*args, stdout=full)
            one_line_error(r, 1, "cannot write to stdout: No space left on device", f"/dev/full: amctq {args[0]}")


def saves(work, x):
    """Item 5: the three files replace the old set as a whole; stale temporaries are removed;
    only regular files are replaced."""
    d = os.path.join(work, "saves")
    path = save(gemm_model(width=2048, input_dims=(16, 2048)), d)
    xs = rng.normal(size=(16, 2048)).astype(np.float32)
    calib = os.path.join(d, "calib.npy")
    np.save(calib, xs)
    out = os.path.join(d, "out")
    os.makedirs(out)
    # Temporaries of killed runs: dead pid, the older naming; a live pid and others' files stay.
    stale = [".m_deploy_model.onnx.tmp.999999999.aBcDeF", ".record.json.tmp.Q1w2E3"]
    kept = [f".record.json.tmp.{os.getpid()}.zZzZzZ", ".notes.txt.tmp.Q1w2E3", ".record.json.tmp.1.2.3"]
    for name in stale + kept:
        open(os.path.join(out, name), "wb").write(b"\0" * 1000)
    t0 = time.monotonic()
    r = amctq("quantize", "--model", path, "--calib", calib, "--out", out, "--quiet")
    took = time.monotonic() - t0
    check(r.returncode == 0, f"saves: quantize, got {r.returncode}: {r.stderr}")
    files = sorted(os.listdir(out))
    check(all(n not in files for n in stale) and all(n in files for n in kept),
          f"saves: stale temporaries removed, others kept: {files}")
    for n in kept:
        os.remove(os.path.join(out, n))
    m = json.load(open(os.path.join(out, "amctq_manifest.json")))
    check(sorted(f["name"] for f in m["files"]) == ["float_layers.json", "m_deploy_model.onnx", "m_fake_quant_model.onnx", "record.json"]
          and m["set"] == "m", f"saves: the manifest lists the set: {m}")
    check(manifest_state(out) == "complete", f"saves: the set verifies ({manifest_state(out)})")

    # Kill runs at times spread over the later part of a run (the save is its last tenth or so
    # on this model; where a kill lands is up to the scheduler, the unit test test_file_set
    # interrupts between two renames deterministically): whatever is left is a complete set or
    # has no manifest, and after a run that finishes, no temporary is left.
    states = {}
    for k in range(16):
        p = subprocess.Popen([TOOL, "quantize", "--model", path, "--calib", calib, "--out", out, "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(took * (0.3 + 0.8 * k / 16))
        p.send_signal(signal.SIGKILL)
        p.wait()
        s = manifest_state(out)
        states[s] = states.get(s, 0) + 1
        check(s in ("none", "complete"), f"saves: after a kill at {0.3 + 0.8 * k / 16:.2f} of a run the set is {s}")
    print(f"cli_hostile: sets after 16 kills (first run {took:.2f} s): {states}")
    r = amctq("quantize", "--model", path, "--calib", calib, "--out", out, "--quiet")
    check(r.returncode == 0 and manifest_state(out) == "complete", f"saves: a full run after the kills: {r.stderr}")
    check(not [n for n in os.listdir(out) if ".tmp." in n], f"saves: no temporary left: {os.listdir(out)}")

    # Only regular files are replaced: a FIFO, a symlink to a device node, a folder.
    cfg_dir = os.path.join(d, "cfg")
    os.makedirs(cfg_dir)
    fifo = os.path.join(cfg_dir, "fifo.json")
    os.mkfifo(fifo)
    link = os.path.join(cfg_dir, "null.json")
    os.symlink("/dev/null", link)
    for target in (fifo, link):
        r = amctq("config", "--model", path, "--out", target)
        one_line_error(r, 1, "exists and is not a regular file", f"config --out {os.path.basename(target)}")
    check(stat.S_ISFIFO(os.stat(fifo).st_mode) and os.path.islink(link) and os.readlink(link) == "/dev/null",
          "saves: the FIFO and the symlink are untouched")
    q_out = os.path.join(d, "manifest_is_a_folder")
    os.makedirs(os.path.join(q_out, "amctq_manifest.json"))
    r = amctq("quantize", "--model", path, "--calib", calib, "--out", q_out, "--quiet")
    one_line_error(r, 1, "amctq_manifest.json' exists and is not a regular file", "manifest is a folder")
    check(os.listdir(q_out) == ["amctq_manifest.json"], "manifest is a folder: nothing written")


def no_data(work):
    """Item 6: calibration without a finite value is an error naming the data."""
    d = os.path.join(work, "no_data")
    os.makedirs(d)
    empty, nan = os.path.join(d, "empty.npy"), os.path.join(d, "nan.npy")
    np.save(empty, np.zeros((0, 3), np.float32))
    np.save(nan, np.full((4, 3), np.nan, np.float32))
    one_line_error(amctq("calib", "--method", "minmax", empty), 1, f"tensor '{empty}' has no data to calibrate",
                   "calib on 0 values")
    for method in ("ifmr", "pot_diffs", "entropy"):
        one_line_error(amctq("calib", "--method", method, "--skip-nonfinite", nan, nan), 1,
                       f"tensor '{nan} and 1 more' has no data to calibrate: all 24 values were NaN/inf",
                       f"calib {method} on all-NaN data")
    one_line_error(amctq("calib", "--method", "minmax", "--axis", "1", "--skip-nonfinite", nan), 1,
                   "has no data to calibrate", "per-channel calib on all-NaN data")


def smaller(work, x):
    """Item 7: empty paths, pot_diffs near FLT_MAX, opsets past the writer's, negative dims."""
    d = os.path.join(work, "smaller")
    path = save(gemm_model(), d)
    calib = os.path.join(d, "calib.npy")
    np.save(calib, x)
    for args in (["config", "--model", path, "--out", ""],
                 ["quantize", "--model", path, "--calib", calib, "--out", ""],
                 ["run", "--model", path, "--input", calib, "--output", ""],
                 ["run", "--model", path, "--input", calib, "--output-dir", ""]):
        one_line_error(amctq(*args), 2, "needs a non-empty path", f"amctq {args[0]} {args[-2]} ''")
    big = os.path.join(d, "big.npy")
    np.save(big, np.array([-3e38, 3e38, 1.0], np.float32))
    r = amctq("calib", "--method", "pot_diffs", "--symmetric", big)
    check(r.returncode == 0, f"pot_diffs near FLT_MAX: symmetric works, got {r.stderr}")
    if r.returncode == 0:
        j = json.loads(r.stdout)
        check(np.isfinite(j["min"]) and np.isfinite(j["max"]) and j["min"] <= -3e38 and j["max"] >= 3e38 * 0.99 and
              j["scale"] == 2.0 ** 121, f"pot_diffs near FLT_MAX: a finite range and scale 2^121, got {j}")
    r = amctq("calib", "--method", "pot_diffs", big)
    line = one_line_error(r, 1, "gives a scale that is not finite", "pot_diffs asymmetric near FLT_MAX")
    check("inf" not in line, f"pot_diffs: the range quoted is finite: {line}")
    # Opsets: the newest the writer knows works, one past it is refused before calibrating.
    newest = 22
    for opset, ok in ((newest, True), (newest + 1, False)):
        q = os.path.join(d, f"opset{opset}")
        p = save(gemm_model(opset=opset), q)
        r = amctq("quantize", "--model", p, "--calib", calib, "--out", os.path.join(q, "out"), "--quiet")
        if ok:
            check(r.returncode == 0, f"opset {opset}: quantizes, got {r.stderr}")
            for kind in ("fake_quant", "deploy"):
                written = os.path.join(q, "out", f"m_{kind}_model.onnx")
                try:
                    onnx.checker.check_model(onnx.load(written), full_check=True)
                    if ort is not None:
                        ort.InferenceSession(written, providers=["CPUExecutionProvider"]).run(None, {"x": x})
                    problem = ""
                except Exception as e:  # checker or ORT refusing the file
                    problem = str(e)
                check(not problem, f"opset {opset}: the {kind} model passes onnx.checker and runs in ORT: {problem}")
        else:
            one_line_error(r, 1, f"imports opset {opset} of the default domain; amctq writes quantized models up to "
                                 f"opset {newest}", f"opset {opset}")
            check(not os.path.exists(os.path.join(q, "out")), f"opset {opset}: nothing written")
    neg = gemm_model()
    neg.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -3
    p = save(neg, os.path.join(d, "negdim"))
    one_line_error(amctq("inspect", p), 1,
                   "ModelProto.graph.input[0].type.tensor_type.shape.dim[0]: Dimension.dim_value -3 is negative",
                   "negative dim")


def main():
    global TOOL
    TOOL, work = sys.argv[1:3]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    x = rng.normal(size=(16, 8)).astype(np.float32)
    nested_config(work, x)
    external_data(work, x)
    duplicates(work, x)
    lost_stdout(work, x)
    saves(work, x)
    no_data(work)
    smaller(work, x)
    tally.done()


if __name__ == "__main__":
    main()
