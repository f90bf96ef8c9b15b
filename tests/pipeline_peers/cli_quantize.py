"""CLI test of `amctq quantize` / `amctq config` on the bundled model.

usage: cli_quantize.py AMCTQ MODEL.onnx CALIB.npy WORKDIR
Checks: quantize writes the three files and both models load and run in ONNX Runtime; config
writes a config that quantize accepts; a config with an unknown key exits non-zero with one line
naming the key; too few calibration rows for batch_num exits non-zero saying how many are needed;
a missing model path exits non-zero with one line; --help documents every option; a config with
dmq_balancer_param (Conv, Gemm) and NUQ weights (Gemm) quantizes, both models run, the deploy
model holds the balance Mul nodes and only the NUQ centres, record.json the factors and centres.
"""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnx.numpy_helper

try:
    import onnxruntime as ort
except ImportError:
    print("FAIL: onnxruntime is not installed", file=sys.stderr)
    sys.exit(1)


def run(args):
    return subprocess.run(args, capture_output=True, text=True)


def main():
    amctq, model, calib, work = sys.argv[1:5]
    if not os.path.exists(amctq):
        print(f"FAIL: the amctq tool was not built at {amctq}", file=sys.stderr)
        sys.exit(1)
    os.makedirs(work, exist_ok=True)
    failures = []
    stem = os.path.splitext(os.path.basename(model))[0]

    out = os.path.join(work, "out")
    r = run([amctq, "quantize", "--model", model, "--calib", calib, "--out", out])
    if r.returncode != 0:
        failures.append(f"quantize failed: {r.stderr.strip()}")
    if "calibration 256/256 rows" not in r.stderr:
        failures.append("quantize printed no progress on stderr: " + r.stderr.strip()[-300:])
    x = np.load(calib)[:8]
    for f in (f"{stem}_fake_quant_model.onnx", f"{stem}_deploy_model.onnx", "record.json"):
        p = os.path.join(out, f)
        if not os.path.exists(p):
            failures.append(f"{f} was not written")
        elif f.endswith(".onnx"):
            s = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
            y = s.run(None, {s.get_inputs()[0].name: x})[0]
            if y.shape != (8, 10) or not np.all(np.isfinite(y)):
                failures.append(f"{f} ran in ORT but gave {y.shape}")
    if os.path.exists(os.path.join(out, "record.json")):
        rec = json.load(open(os.path.join(out, "record.json")))
        if "/0/Conv" not in json.dumps(rec):
            failures.append("record.json does not name layer /0/Conv")

    cfg = os.path.join(work, "config.json")
    r = run([amctq, "config", "--model", model, "--out", cfg])
    if r.returncode != 0 or not os.path.exists(cfg):
        failures.append(f"config failed: {r.stderr.strip()}")
    else:
        c = json.load(open(cfg))
        c["activation"]["act_algo"] = "hfmg"
        json.dump(c, open(cfg, "w"))
        r = run([amctq, "quantize", "--model", model, "--calib", calib, "--config", cfg, "--out",
                 os.path.join(work, "out2"), "--quiet"])
        if r.returncode != 0 or r.stderr.strip():
            failures.append(f"quantize with an edited config failed or was not quiet: {r.stderr.strip()}")
        # DMQ balance and NUQ through the tool: both models run, the record holds the factors
        # and the centres, the deploy weights only the centres.
        bal = dict(c, layer_type={"Conv": {"dmq_balancer_param": 0.5},
                                  "Gemm": {"dmq_balancer_param": 0.3, "weights": {"wts_algo": "nuq", "num_steps": 16}}})
        bal_cfg = os.path.join(work, "balance_nuq.json")
        json.dump(bal, open(bal_cfg, "w"))
        out4 = os.path.join(work, "out4")
        r = run([amctq, "quantize", "--model", model, "--calib", calib, "--config", bal_cfg, "--out", out4])
        if r.returncode != 0:
            failures.append(f"quantize with dmq_balancer_param and nuq failed: {r.stderr.strip()}")
        else:
            if "balance 256/256 rows" not in r.stderr or "calibration 256/256 rows" not in r.stderr:
                failures.append("a balanced quantize must run the batch twice (balance, then calibration)")
            for f in (f"{stem}_fake_quant_model.onnx", f"{stem}_deploy_model.onnx"):
                s = ort.InferenceSession(os.path.join(out4, f), providers=["CPUExecutionProvider"])
                y = s.run(None, {s.get_inputs()[0].name: x})[0]
                if y.shape != (8, 10) or not np.all(np.isfinite(y)):
                    failures.append(f"balanced {f} ran in ORT but gave {y.shape}")
            rec = json.load(open(os.path.join(out4, "record.json")))
            print("balanced record /7/Conv factors", rec["/7/Conv"]["tensor_balance_factor"][:4], "...; /16/Gemm clusters",
                  rec["/16/Gemm"]["clusters"])
            if len(rec["/7/Conv"]["tensor_balance_factor"]) != 32 or len(rec["/16/Gemm"]["clusters"]) != 16:
                failures.append("record.json lacks the balance factors of /7/Conv or the 16 NUQ centres of /16/Gemm")
            deploy = onnx.load(os.path.join(out4, f"{stem}_deploy_model.onnx"))
            muls = [n for n in deploy.graph.node if n.op_type == "Mul" and n.name.endswith("_balance")]
            w16 = [i for i in deploy.graph.initializer if i.name == "/16/Gemm_weight_quantized"]
            if len(muls) != 6:
                failures.append(f"the deploy model has {len(muls)} balance Mul nodes, expected 6 (4 Conv, 2 Gemm)")
            if not w16 or not {int(v) for v in onnx.numpy_helper.to_array(w16[0]).ravel()} <= set(rec["/16/Gemm"]["clusters"]):
                failures.append("the deploy weights of /16/Gemm are not all NUQ centres")
        # Every observer method, and per-channel activations, through the tool: both models run in
        # ORT and stay close to float; per-channel records hold one scale per input channel.
        xs = np.load(calib)[:64]
        fs = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        name = fs.get_inputs()[0].name
        ref = fs.run(None, {name: xs})[0]
        for method, per_channel in [(m, False) for m in ("minmax", "moving_average", "percentile", "entropy", "mse",
                                                          "ifmr", "hfmg", "aciq_laplace", "aciq_gaussian", "pot_diffs")] + \
                                   [("ifmr", True), ("mse", True)]:
            mc = copy.deepcopy(c)
            for l in [mc["activation"]] + [v.setdefault("activation", {}) for v in mc["layers"].values()]:
                l["act_algo"], l["channel_wise"] = method, per_channel
            mc_path = os.path.join(work, f"method_{method}_{per_channel}.json")
            json.dump(mc, open(mc_path, "w"))
            outm = os.path.join(work, f"method_{method}_{per_channel}")
            r = run([amctq, "quantize", "--model", model, "--calib", calib, "--config", mc_path, "--out", outm, "--quiet"])
            if r.returncode != 0:
                failures.append(f"act_algo {method} (channel_wise {per_channel}) failed: {r.stderr.strip()}")
                continue
            rec = json.load(open(os.path.join(outm, "record.json")))
            # one value per input channel: the image has 1, /7/Conv's input 32, the Gemm inputs 64 and more
            if per_channel and not (all(isinstance(v["scale_d"], list) for v in rec.values()) and
                                    len(rec["/7/Conv"]["scale_d"]) == 32 and len(rec["/0/Conv"]["scale_d"]) == 1):
                failures.append(f"channel_wise {method}: record.json scale_d is not one value per channel")
            for f in (f"{stem}_fake_quant_model.onnx", f"{stem}_deploy_model.onnx"):
                y = ort.InferenceSession(os.path.join(outm, f), providers=["CPUExecutionProvider"]).run(None, {name: xs})[0]
                agree = float(np.mean(y.argmax(1) == ref.argmax(1)))
                print(f"act_algo {method} channel_wise {per_channel} {f}: top-1 agreement with float {agree:.3f}")
                if agree < 0.75:
                    failures.append(f"act_algo {method} (channel_wise {per_channel}) {f}: top-1 agreement {agree:.3f} < 0.75")
        c["activation"]["bogus_key"] = 1
        bad = os.path.join(work, "bad.json")
        json.dump(c, open(bad, "w"))
        r = run([amctq, "quantize", "--model", model, "--calib", calib, "--config", bad, "--out",
                 os.path.join(work, "out3")])
        lines = r.stderr.strip().splitlines()
        print("bad key ->", r.returncode, lines)
        if r.returncode == 0 or len(lines) != 1 or "bogus_key" not in lines[0]:
            failures.append(f"a bad config key must give a non-zero exit and one line naming it, got "
                            f"{r.returncode} {lines}")
        if os.path.exists(os.path.join(work, "out3", f"{stem}_deploy_model.onnx")):
            failures.append("a failed quantize left a model behind")
        del c["activation"]["bogus_key"]
        c["batch_num"] = 1000
        json.dump(c, open(bad, "w"))
        r = run([amctq, "quantize", "--model", model, "--calib", calib, "--config", bad, "--out",
                 os.path.join(work, "out3")])
        lines = r.stderr.strip().splitlines()
        print("too few batches ->", r.returncode, lines)
        if r.returncode == 0 or len(lines) != 1 or "1000" not in lines[0]:
            failures.append(f"too few calibration rows must say how many batches are needed, got {lines}")

    r = run([amctq, "quantize", "--model", os.path.join(work, "missing.onnx"), "--calib", calib])
    lines = r.stderr.strip().splitlines()
    print("missing model ->", r.returncode, lines)
    if r.returncode == 0 or len(lines) != 1 or "missing.onnx" not in lines[0]:
        failures.append(f"a missing model must give one line naming it, got {lines}")
    for sub, opts in (("quantize", ["--model", "--calib", "--config", "--out", "--input", "--quiet"]),
                      ("config", ["--model", "--out", "--batch-num", "--skip", "--symmetric-activations"])):
        r = run([amctq, sub, "--help"])
        missing = [o for o in opts if o not in r.stdout]
        if r.returncode != 0 or missing:
            failures.append(f"amctq {sub} --help does not document {missing}")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    print("cli: all checks passed" if not failures else f"cli: {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
