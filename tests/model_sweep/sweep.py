"""The wide model sweep (issue 16): torchvision classifiers, a ViT, a Swin, BERT- and GPT-2-style
blocks, a YOLO-style detector and a U-Net quantize end to end with the amctq tool.

usage: sweep.py AMCTQ_BIN WORKDIR [--set light|full] [--only NAME[,NAME...]] [--keep]

Exports the set (export_sweep_models.py) into WORKDIR/models, then for every model:
 (a) `amctq run` on the float model against ONNX Runtime (CPU EP, one thread): every output
     within 1e-4 of its largest magnitude;
 (b) `amctq quantize` with the default config: every Conv / Gemm / MatMul node of the model is
     a quantized layer (record.json); one left in float is named with float_layers.json's reason
     and fails the model (MatMuls of two activations, attention's Q K^T and A V, included);
 (c) both saved models run in ONNX Runtime on test.npz;
 (d) `amctq run` (graph::simulation_ops) on both, against ORT (graph optimisations off):
     - tensor by tensor on two test samples: every QuantizeLinear / DequantizeLinear /
       QLinearConv / ConvInteger / MatMulInteger, fed ORT's own inputs, equals ORT's output
       bit for bit; the first tensor where the two runs part is a float op (ORT computes
       Sigmoid, Erf, LayerNormalization, GlobalAveragePool, Resize, float Conv / MatMul with
       its own approximations or summation order) and is off by float rounding (1e-5);
     - the deploy model's outputs (ORT optimisations off and on) equal amctq's bit for bit,
       unless such a float op parted the runs; then, as the fake-quant model's outputs, no
       sample further off than 5% of the output magnitude (a value that sits on a
       QuantizeLinear tie moves one level on one side, and that step spreads downstream);
 (e) SQNR = 10 log10(sum y^2 / sum (y - yq)^2) over the test set and every output, y the float
     model's output in ORT, yq the fake-quant model's in ORT (QDQ ops as written), against ONNX
     Runtime's quantize_static on the same calibration data (QDQ, per-channel, MinMax,
     op_types_to_quantize Conv / Gemm / MatMul, so both tools quantize the same layer kinds).
     amctq must reach ORT's SQNR minus SQNR_MARGIN_DB. ORT with its default op types is printed
     for information.
The files of a model that passes are deleted (--keep keeps them). Prints a table (also
WORKDIR/sweep_table.md). Exit status 1 on any failure, each named by
model and check. Without torch, torchvision, onnx or onnxruntime it fails, never skips.
"""
import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pipeline_peers"))
sys.path.insert(0, HERE)

try:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
except ImportError as e:
    print(f"FAIL: the model sweep needs onnx and onnxruntime: {e}", file=sys.stderr)
    sys.exit(1)

import export_sweep_models  # noqa: E402  (fails loudly without torch / torchvision)
from peer_common import compare_bit_exact, compare_within_rounding, session  # noqa: E402

# amctq's SQNR may trail ONNX Runtime's by this much. The two tools choose activation ranges
# differently on purpose (amctq: IFMR, a clipping search; ORT: MinMax, the whole range), which on
# a model whose outputs are all range can cost a few tenths of a dB either way, and the SQNR is
# measured on only 8 test samples of random data, on which an estimate moves by that much.
SQNR_MARGIN_DB = 0.5
QUANTIZED_KINDS = ("Conv", "Gemm", "MatMul")
RUN_TIMEOUT = 3600


class Reader(CalibrationDataReader):
    """The whole calibration set as one batch, as amctq's default config (batch_num 1) reads it."""

    def __init__(self, data):
        self.items = [dict(data)]

    def get_next(self):
        return self.items.pop() if self.items else None


def sqnr_db(ys, yqs):
    y = np.concatenate([a.astype(np.float64).ravel() for a in ys])
    yq = np.concatenate([a.astype(np.float64).ravel() for a in yqs])
    noise = float(np.sum((y - yq) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(float(np.sum(y ** 2)) / noise)


def run_ort(path, feeds, optimize=True):
    return session(path, optimize).run(None, feeds)


def float_outputs(model):
    return [o.name for o in model.graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]


def stem_of(name):
    """The file stem `amctq run --output-dir` gives an output name (cmd_run.cpp file_stem_for)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in (name or "output"))


def amctq_run(amctq, model_path, input_files, out_dir, output_names):
    """`amctq run` on the model; returns (outputs in graph order, seconds) or raises with its stderr."""
    cmd = [amctq, "run", "--model", model_path, "--output-dir", out_dir]
    for name, f in input_files.items():
        cmd += ["--input", f"{name}={f}"]
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit status {r.returncode}")
    return [np.load(os.path.join(out_dir, stem_of(n) + ".npy")) for n in output_names], time.time() - t


# The ops amctq's simulation computes as ONNX Runtime does (graph::simulation_ops). The deploy
# model's other ops are float ops; those ORT computes with its own approximations or summation
# order (MLAS Sigmoid / Erf / Tanh, LayerNormalization, a float MatMul of two activations, ...)
# can differ from amctq's executor in the last bit, and such a difference moves downstream
# values across a rounding boundary now and then.
INTEGER_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger"}


def with_every_tensor_out(model):
    """A copy of `model` whose graph outputs are its own followed by every node output."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in m.graph.node:
        for o in n.output:
            if o and o not in have:
                m.graph.output.append(onnx.ValueInfoProto(name=o))
                have.add(o)
    return m


def in_detail(amctq, path, feeds, work):
    """Where a saved model's ORT run and amctq's simulation part, tensor by tensor.

    Runs the model with every tensor an output in ORT (no graph optimisation) and in `amctq run`
    and finds the first node (in graph order) whose output differs in any bit, with that
    output's largest difference relative to its magnitude. The ops of INTEGER_OPS are then also
    run in isolation: one model holding only them, each fed ORT's own values of its inputs, so
    every one is checked bit for bit, also downstream of a float op that differed.
    Returns (first differing node or None, its relative difference, differing integer-op
    outputs, number of integer ops)."""
    os.makedirs(work, exist_ok=True)
    model = onnx.load(path)
    full = with_every_tensor_out(model)
    names = [o.name for o in full.graph.output]
    full_path = os.path.join(work, "every_tensor.onnx")
    onnx.save(full, full_path)
    sess = session(full_path, False)
    ort_vals = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    ort_vals.update(feeds)
    inputs = {}
    for k, v in feeds.items():
        inputs[k] = os.path.join(work, f"feed_{stem_of(k)}.npy")
        np.save(inputs[k], v)
    sim, _ = amctq_run(amctq, full_path, inputs, os.path.join(work, "every_tensor"), names)
    sim = dict(zip(names, sim))
    first, rel = None, 0.0
    for n in model.graph.node:
        differ = [o for o in n.output if o and ort_vals[o].tobytes() != sim[o].tobytes()]
        if differ:
            first = n
            a, b = ort_vals[differ[0]], sim[differ[0]]
            if a.shape == b.shape and a.size and a.dtype.kind == "f":
                rel = float(np.abs(a.astype(np.float64) - b).max()) / max(float(np.abs(a).max()), 1e-30)
            else:
                rel = float("inf")
            break

    # The integer ops in isolation, on ORT's inputs.
    iso = onnx.helper.make_graph([], "integer_ops", [], [])
    inits = {i.name: i for i in model.graph.initializer}
    iso_inputs = {}
    for k, n in enumerate(x for x in model.graph.node if x.op_type in INTEGER_OPS):
        node = onnx.NodeProto()
        node.CopyFrom(n)
        del node.input[:]
        for j, t in enumerate(n.input):
            if not t or t in inits:
                node.input.append(t)
                if t and t not in {i.name for i in iso.initializer}:
                    iso.initializer.append(inits[t])
                continue
            fresh = f"iso{k}_{j}"
            path = os.path.join(work, f"{fresh}.npy")
            np.save(path, ort_vals[t])
            iso_inputs[fresh] = path
            iso.input.append(onnx.helper.make_tensor_value_info(
                fresh, onnx.helper.np_dtype_to_tensor_dtype(ort_vals[t].dtype), ort_vals[t].shape))
            node.input.append(fresh)
        iso.node.append(node)
        iso.output.extend(onnx.ValueInfoProto(name=o) for o in n.output if o)
    iso_model = onnx.helper.make_model(iso, opset_imports=model.opset_import)
    iso_path = os.path.join(work, "integer_ops.onnx")
    onnx.save(iso_model, iso_path)
    iso_names = [o.name for o in iso.output]
    bad = []
    if iso_names:
        got, _ = amctq_run(amctq, iso_path, iso_inputs, os.path.join(work, "integer_ops"), iso_names)
        bad = [nm for nm, g in zip(iso_names, got) if g.tobytes() != ort_vals[nm].tobytes() or g.shape != ort_vals[nm].shape]
    return first, rel, bad, len(iso.node)


def check_layers(label, model, out_dir, failures):
    """(b): every Conv / Gemm / MatMul node a quantized layer. Returns (quantized, total)."""
    record = json.load(open(os.path.join(out_dir, "record.json")))
    floats = json.load(open(os.path.join(out_dir, "float_layers.json")))["float"]
    nodes = [n for n in model.graph.node if n.op_type in QUANTIZED_KINDS]
    quantized = 0
    for n in nodes:
        if not n.name:
            failures.append(f"[{label}] (b) a {n.op_type} node has no name; record.json cannot name it")
        elif n.name in record:
            quantized += 1
        else:
            why = floats.get(n.name, {}).get("reason", "not in record.json nor in float_layers.json")
            failures.append(f"[{label}] (b) {n.op_type} {n.name} is not quantized: {why}")
    return quantized, len(nodes)


def ort_quantize(model_path, calib, out_path, op_types, method=CalibrationMethod.MinMax, calib_options=None):
    """ONNX Runtime's quantize_static: QDQ, per-channel int8 weights, int8 activations calibrated
    by `method` (MinMax by default). `calib_options` go to ORT's calibrator factory, since
    quantize_static passes it no histogram size (its Entropy default is 128 bins, not 2048)."""
    kwargs = {"op_types_to_quantize": list(op_types)} if op_types else {}
    qmod = sys.modules[quantize_static.__module__]
    factory = qmod.create_calibrator

    def with_options(*a, **k):
        k["extra_options"] = {**(k.get("extra_options") or {}), **calib_options}
        return factory(*a, **k)

    if calib_options:
        qmod.create_calibrator = with_options
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress
            quantize_static(model_path, out_path, Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                            calibrate_method=method, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, **kwargs)
    finally:
        qmod.create_calibrator = factory
    return out_path


def sweep_model(amctq, name, models_dir, work, failures, row):
    """Checks (a)-(e) on one exported model; fills `row` (the table's) as it goes."""
    label = name
    folder = os.path.join(models_dir, name)
    model_path = os.path.join(folder, "model.onnx")
    model = onnx.load(model_path)
    calib = dict(np.load(os.path.join(folder, "calib.npz")))
    test = dict(np.load(os.path.join(folder, "test.npz")))
    mwork = os.path.join(work, name)
    os.makedirs(mwork, exist_ok=True)
    input_files = {}
    for k, v in test.items():
        input_files[k] = os.path.join(mwork, f"test_{stem_of(k)}.npy")
        np.save(input_files[k], v)
    outs = [o.name for o in model.graph.output]
    fouts = float_outputs(model)
    n_fail = len(failures)

    # (a) the float model: amctq's executor against ORT
    t = time.time()
    y_ort = run_ort(model_path, test)
    row["t_ort"] = time.time() - t
    try:
        y_amctq, row["t_run"] = amctq_run(amctq, model_path, input_files, os.path.join(mwork, "float_run"), outs)
        err = max(float(np.abs(a.astype(np.float64) - b).max()) / max(float(np.abs(b).max()), 1e-30)
                  for a, b in zip(y_amctq, y_ort))
        row["exec_err"] = err
        if not err <= 1e-4:
            failures.append(f"[{label}] (a) amctq run differs from ONNX Runtime on the float model: "
                            f"max error {err:.3g} of the output magnitude (limit 1e-4)")
    except Exception as e:
        failures.append(f"[{label}] (a) amctq run cannot run the float model: {e}")
    y_float = [y for o, y in zip(outs, y_ort) if o in fouts]

    # (b) amctq quantize, default config
    qdir = os.path.join(mwork, "amctq")
    t = time.time()
    r = subprocess.run([amctq, "quantize", "--model", model_path, "--calib", os.path.join(folder, "calib.npz"),
                        "--out", qdir, "--quiet"], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    row["t_quant"] = time.time() - t
    if r.returncode != 0:
        failures.append(f"[{label}] (b) amctq quantize failed: {r.stderr.strip()}")
        return
    row["layers"] = check_layers(label, model, qdir, failures)

    # (c) + (d) both saved models in ORT and in amctq's simulation
    fq_path = os.path.join(qdir, "model_fake_quant_model.onnx")
    dp_path = os.path.join(qdir, "model_deploy_model.onnx")
    try:
        sim_fq, _ = amctq_run(amctq, fq_path, input_files, os.path.join(mwork, "fake-quant_run"), outs)
        sim_dp, _ = amctq_run(amctq, dp_path, input_files, os.path.join(mwork, "deploy_run"), outs)
    except Exception as e:
        failures.append(f"[{label}] (d) amctq run cannot simulate a saved model: {e}")
        return
    # Tensor by tensor (on the first two test samples): the first difference must be a float op
    # that ORT computes in another order or with its own approximation, off by float rounding;
    # every QuantizeLinear / DequantizeLinear / integer op equals ORT's bit for bit on ORT's inputs.
    # Then the outputs: the deploy model's bit for bit unless such a float op came first; else, as
    # the fake-quant model's, no sample further off than 5% of the output magnitude (a QuantizeLinear
    # tie that one side rounds up and the other down moves a value one level, and that step then
    # spreads downstream: in a deep model on most samples, so how many samples stay exact says
    # nothing).
    few = {k: v[:2] for k, v in test.items()}
    n_before = len(failures)
    for what, path, sim in (("fake-quant", fq_path, sim_fq), ("deploy", dp_path, sim_dp)):
        detail = os.path.join(mwork, f"{what}_detail")
        first, rel, bad, n_int = in_detail(amctq, path, few, detail)
        shutil.rmtree(detail)  # every tensor of two samples: large, and read above
        row[f"int_ops_{what}"] = (n_int - len(bad), n_int)
        for nm in bad:
            failures.append(f"[{label}] (d) {what}: {nm} differs from ORT's on the same inputs")
        if first is not None and (first.op_type in INTEGER_OPS or not rel <= 1e-5):
            failures.append(f"[{label}] (d) {what}: amctq and ORT first differ at {first.op_type} {first.name} "
                            f"(relative difference {rel:.3g}), not at a float op within float rounding")
        elif first is not None:
            print(f"[{label}] (d) {what}: ORT and amctq first differ at float op {first.op_type} {first.name} "
                  f"by {rel:.2g} of its magnitude (ORT's own float kernel); every integer op is bit-exact")
        if what == "fake-quant":
            yq = compare_within_rounding(label, what, path, sim, test, failures, min_exact=0.0)
            if yq is not None:
                row["sqnr_amctq"] = sqnr_db(y_float, [y for o, y in zip(outs, yq) if o in fouts])
            continue
        dp = compare_bit_exact(label, path, sim, test, [])
        if dp is None:
            failures.append(f"[{label}] (c) ORT cannot run the deploy model")
            continue
        row["sqnr_deploy"] = sqnr_db(y_float, [y for o, y in zip(outs, dp) if o in fouts])
        if all(a.tobytes() == b.tobytes() for a, b in zip(dp, sim)):
            row["deploy_exact"] = "yes"
        elif first is None or first.op_type in INTEGER_OPS:
            failures.append(f"[{label}] (d) the deploy model is not bit-identical to amctq's integer simulation")
            row["deploy_exact"] = "NO"
        else:
            row["deploy_exact"] = f"no: {first.op_type}"
            compare_within_rounding(label, what, path, sim, test, failures, min_exact=0.0)
    row["detail_ok"] = len(failures) == n_before

    # (e) ONNX Runtime's quantize_static on the same calibration data
    for key, op_types in (("sqnr_ort", QUANTIZED_KINDS), ("sqnr_ort_default", None)):
        t = time.time()
        try:
            q = ort_quantize(model_path, calib, os.path.join(mwork, f"ort_{key}.onnx"), op_types)
            row[key] = sqnr_db(y_float, [y for o, y in zip(outs, run_ort(q, test, optimize=False)) if o in fouts])
        except Exception as e:
            print(f"[{label}] note: ONNX Runtime's quantize_static ({key}) failed: {str(e).strip().splitlines()[-1]}")
        if key == "sqnr_ort":
            row["t_ort_quant"] = time.time() - t
    if "sqnr_amctq" in row and "sqnr_ort" in row and row["sqnr_amctq"] < row["sqnr_ort"] - SQNR_MARGIN_DB:
        failures.append(f"[{label}] (e) SQNR {row['sqnr_amctq']:.2f} dB is below ONNX Runtime's "
                        f"{row['sqnr_ort']:.2f} dB by more than {SQNR_MARGIN_DB} dB")
    row["ok"] = len(failures) == n_fail


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows):
    head = ("| model | layers quantized | executor max err | deploy bit-exact (else: first op apart) | Q/DQ/integer ops bit-exact "
            "| SQNR amctq (dB) | SQNR deploy (dB) | SQNR ORT (dB) | amctq - ORT (dB) | SQNR ORT default ops (dB) "
            "| quantize s (amctq / ORT) | result |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        layers = r.get("layers")
        ints = [r[k] for k in ("int_ops_fake-quant", "int_ops_deploy") if k in r]
        ints = (sum(i[0] for i in ints), sum(i[1] for i in ints)) if ints else None
        lq = "-" if not layers else f"{layers[0]}/{layers[1]}"
        diff = r["sqnr_amctq"] - r["sqnr_ort"] if "sqnr_amctq" in r and "sqnr_ort" in r else None
        lines.append(f"| {r['model']} | {lq} | {fmt(r.get('exec_err'), '.1e')} | {r.get('deploy_exact', '-')} | "
                     f"{f'{ints[0]}/{ints[1]}' if ints else '-'} | "
                     f"{fmt(r.get('sqnr_amctq'), '.2f')} | {fmt(r.get('sqnr_deploy'), '.2f')} | {fmt(r.get('sqnr_ort'), '.2f')} | "
                     f"{fmt(diff, '+.2f')} | {fmt(r.get('sqnr_ort_default'), '.2f')} | "
                     f"{fmt(r.get('t_quant'), '.1f')} / {fmt(r.get('t_ort_quant'), '.1f')} | {'ok' if r.get('ok') else 'FAIL'} |")
    return "\n".join(lines)


def arguments(description):
    """The command line every sweep over the exported models takes: tool, work folder, set, --only."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("amctq")
    ap.add_argument("work")
    ap.add_argument("--set", choices=["light", "full"], default="light")
    ap.add_argument("--only", default="", help="comma-separated model names (default: the whole set)")
    return ap


def chosen_models(a):
    return a.only.split(",") if a.only else export_sweep_models.model_names(a.set)


def main():
    ap = arguments(__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the files of models that pass (default: only of those that fail)")
    a = ap.parse_args()
    if not os.path.exists(a.amctq):
        print(f"FAIL: the amctq tool was not built at {a.amctq}", file=sys.stderr)
        sys.exit(1)
    export_sweep_models.torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # torch.onnx.export's tracer warnings, one per model
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's advice to pre-process, per model
    names = chosen_models(a)
    models_dir = os.path.join(a.work, "models")
    failures, rows = [], []
    t0 = time.time()
    for name in names:
        t = time.time()
        try:
            export_sweep_models.export(name, models_dir)
        except Exception as e:
            failures.append(f"[{name}] export failed: {type(e).__name__}: {e}")
            rows.append({"model": name, "ok": False})
            continue
        row = {"model": name}
        try:
            sweep_model(a.amctq, name, models_dir, a.work, failures, row)
        except Exception as e:  # a crash in one model's checks must name it and let the rest run
            failures.append(f"[{name}] sweep crashed: {type(e).__name__}: {e}")
            row["ok"] = False
        rows.append(row)
        if row.get("ok") and not a.keep:  # the full set would otherwise leave gigabytes behind
            shutil.rmtree(os.path.join(a.work, name), ignore_errors=True)
            shutil.rmtree(os.path.join(models_dir, name), ignore_errors=True)
        print(f"== {name}: {'ok' if row.get('ok') else 'FAIL'} in {time.time() - t:.1f} s", flush=True)
    text = table(rows)
    print(text)
    with open(os.path.join(a.work, "sweep_table.md"), "w") as f:
        f.write(text + "\n")
    print(f"{len(rows)} models in {time.time() - t0:.0f} s; SQNR margin against ONNX Runtime {SQNR_MARGIN_DB} dB")
    if failures:
        print(f"FAIL: {len(failures)} check(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"FAIL: {f}", file=sys.stderr)
        sys.exit(1)
    print(f"model sweep ({a.set}): {len(rows)} models passed")


if __name__ == "__main__":
    main()
