"""Activation methods against ONNX Runtime's calibrators on the sweep's models (issue 17).

usage: method_sweep.py AMCTQ_BIN WORKDIR [--set light|full] [--only NAME[,NAME...]]
                       [--methods M[,M...]] [--ort C[,C...]|none] [--test N] [--table]

For every model (export_sweep_models.py, 16 calibration samples), the output SQNR of the
fake-quant model against float, both in ONNX Runtime, on the first N test samples (default 16):
 - amctq quantize, the default config with `activation.act_algo` set to each method;
 - ORT quantize_static (sweep.py's ort_quantize: QDQ, per-channel int8 weights, int8 activations,
   Conv / Gemm / MatMul) with MinMax, Entropy (2048 bins, 128 quantized bins) and Percentile
   (its defaults: 2048 bins, 99.999, |x| histogram).
Target: entropy >= ORT Entropy - 1 dB; every other method >= ORT MinMax - 1 dB; percentile also
>= ORT Percentile - 1 dB. Prints one row per model as it finishes and a table at the end
(WORKDIR/method_table.md, rows also in WORKDIR/method_rows.json, where a rerun of some methods
or calibrators updates a model's row). Measures; exits 0 unless a tool fails.
"""
import json
import logging
import os
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep  # noqa: E402  (its imports fail loudly without onnx / onnxruntime / torch)
from sweep import CalibrationMethod, QUANTIZED_KINDS, export_sweep_models, float_outputs, onnx, ort_quantize, \
    run_ort, sqnr_db  # noqa: E402

METHODS = ("minmax", "entropy", "mse", "hfmg", "ifmr", "percentile")
ORT = {"MinMax": (CalibrationMethod.MinMax, None),
       "Entropy": (CalibrationMethod.Entropy, {"num_bins": 2048, "num_quantized_bins": 128}),
       "Percentile": (CalibrationMethod.Percentile, None)}
MARGIN_DB = 1.0


def targets(method):
    """The ORT calibrators a method is held against."""
    return {"entropy": ("Entropy",), "percentile": ("MinMax", "Percentile")}.get(method, ("MinMax",))


def amctq_quantize(amctq, model_path, calib_path, out, method):
    cfg = out + ".json"
    with open(cfg, "w") as f:
        json.dump({"version": 1, "activation": {"act_algo": method}}, f)
    r = subprocess.run([amctq, "quantize", "--model", model_path, "--calib", calib_path, "--config", cfg,
                        "--out", out, "--quiet"], capture_output=True, text=True, timeout=sweep.RUN_TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError(f"amctq quantize ({method}): {r.stderr.strip()}")
    return os.path.join(out, "model_fake_quant_model.onnx")


def measure(amctq, name, models_dir, work, methods, ort_methods, n_test):
    folder = os.path.join(models_dir, name)
    model_path = os.path.join(folder, "model.onnx")
    outs = [o.name for o in onnx.load(model_path).graph.output]
    fouts = float_outputs(onnx.load(model_path))
    calib = dict(np.load(os.path.join(folder, "calib.npz")))
    test = {k: v[:n_test] for k, v in np.load(os.path.join(folder, "test.npz")).items()}
    y = [v for o, v in zip(outs, run_ort(model_path, test, optimize=False)) if o in fouts]
    mwork = os.path.join(work, name)
    os.makedirs(mwork, exist_ok=True)

    def sqnr_of(path):
        return sqnr_db(y, [v for o, v in zip(outs, run_ort(path, test, optimize=False)) if o in fouts])

    row = {"model": name}
    for label in ort_methods:
        method, options = ORT[label]
        try:
            row[f"ort_{label}"] = sqnr_of(ort_quantize(model_path, calib, os.path.join(mwork, f"ort_{label}.onnx"),
                                                       QUANTIZED_KINDS, method, options))
        except Exception as e:
            print(f"[{name}] ORT {label} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else e}")
    for m in methods:
        row[m] = sqnr_of(amctq_quantize(amctq, model_path, os.path.join(folder, "calib.npz"),
                                        os.path.join(mwork, f"amctq_{m}"), m))
    return row


def misses(row, methods):
    return [f"{m} {row[m]:.2f} < ORT {t} {row[f'ort_{t}']:.2f} - {MARGIN_DB}" for m in methods if m in row
            for t in targets(m) if f"ort_{t}" in row and row[m] < row[f"ort_{t}"] - MARGIN_DB]


def table(rows, methods):
    cols = [f"ort_{k}" for k in ORT] + list(methods)
    head = "| model | " + " | ".join(c.replace("ort_", "ORT ") for c in cols) + " | misses (> 1 dB) |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for r in rows:
        cells = ["-" if c not in r else f"{r[c]:.2f}" for c in cols]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {'; '.join(misses(r, methods)) or 'none'} |")
    return "\n".join(lines)


def main():
    ap = sweep.arguments(__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--ort", default=",".join(ORT), help="ORT calibrators to run, or none")
    ap.add_argument("--test", type=int, default=16, help="test samples measured (default 16)")
    ap.add_argument("--table", action="store_true", help="only print the table of the rows measured so far")
    a = ap.parse_args()
    export_sweep_models.torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    methods = a.methods.split(",")
    names = sweep.chosen_models(a)
    models_dir = os.path.join(a.work, "models")
    rows_path = os.path.join(a.work, "method_rows.json")
    rows = json.load(open(rows_path)) if os.path.exists(rows_path) else []
    failed = False
    for name in [] if a.table else names:
        t = time.time()
        try:
            if not os.path.exists(os.path.join(models_dir, name, "model.onnx")):
                export_sweep_models.export(name, models_dir)
            ort_methods = [] if a.ort == "none" else a.ort.split(",")
            row = measure(a.amctq, name, models_dir, a.work, methods, ort_methods, a.test)
        except Exception as e:
            print(f"FAIL: [{name}] {type(e).__name__}: {e}", flush=True)
            failed = True
            continue
        row = {**next((r for r in rows if r["model"] == name), {}), **row}
        rows = [r for r in rows if r["model"] != name] + [row]
        with open(rows_path, "w") as f:
            json.dump(rows, f, indent=1)
        print(f"== {name} ({time.time() - t:.0f} s): " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k != "model")
              + f"; misses: {'; '.join(misses(row, METHODS)) or 'none'}", flush=True)
    text = table(rows, METHODS)
    print(text)
    with open(os.path.join(a.work, "method_table.md"), "w") as f:
        f.write(text + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
