"""Accuracy of amctq against ONNX Runtime's and PyTorch's post-training quantizers on a bundled
Fashion-MNIST model, same calibration images, same 10k test set:
  --model cnn   models/fmnist_cnn.onnx (default): Conv/BN/ReLU, depthwise, pointwise, two Gemm
  --model vit   models/fmnist_vit.onnx: the small vision transformer of models/train_fmnist_vit.py

usage: python bench/compare_accuracy.py --amctq BUILD/tools/amctq/amctq [--model cnn|vit] [--work DIR]
                                        [--settings W8A8,W4A8,W8A4] [--methods ifmr,mse,...]
                                        [--wts-algo arq,adaround] [--weight-presets amct,pytorch] [--no-peers]

Settings W8A8, W4A8, W8A4 by default; W3A8, W2A8, W4A4, W2A4 on request (weights per channel,
symmetric; activations as each tool does them):
  amctq      every activation method (ifmr, hfmg, entropy, mse, percentile, minmax) with ARQ
             weights (--wts-algo adaround: learned rounding too, one run each, it is the slow one),
             each with AMCT's weight scale rule and with weights.preset = pytorch
             ("w:pytorch": max|w| / (2^(b-1) - 0.5) on the full signed grid); the deploy model
             (integer ops) and the fake-quant model both run in ORT
  ORT        onnxruntime.quantization.quantize_static, QDQ format, per-channel weights, MinMax /
             Entropy with 2048 bins (ranges from ORT's entropy calibrater, passed in through
             quantize_static's calibration cache) / Percentile; QInt4 / QUInt4 for 4 bits
  PyTorch    PTQ (fbgemm), MinMaxObserver / HistogramObserver activations,
             PerChannelMinMaxObserver weights; 4-bit via quant_min / quant_max on the observers;
             the model is rebuilt with the training script's make_model and loaded from the ONNX
             initializers (torch_from_onnx). CNN: eager mode (BatchNorm kept separate in the ONNX,
             fused here by fuse_modules). ViT: FX graph mode (prepare_fx / convert_fx with the
             engine's default QConfigMapping, the qconfig above wherever it had the default):
             Conv, Linear, LayerNorm, the adds, the attention matmuls and Softmax run
             quantized, GELU in float; the split is printed (torch_vit, fx_op_counts)
amctq's float_layers.json count (layers quantized of layers found) is printed per model.
Calibration uses the same 256 images (models/fmnist_calib.npy) as one batch for every tool.
Calibration time (fastest of 3 runs; ORT's 2048-bin Entropy runs once): amctq = the whole
`amctq quantize` process (read, calibrate, save both models); ORT = the quantize_static call.
Printed as a table.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))
import fmnist_data  # noqa: E402  (models/fmnist_data.py: loader and normalisation)
CALIB = os.path.join(ROOT, "models", "fmnist_calib.npy")
SETTINGS = {"W8A8": (8, 8), "W4A8": (4, 8), "W8A4": (8, 4), "W3A8": (3, 8), "W2A8": (2, 8), "W4A4": (4, 4),
            "W2A4": (2, 4)}
DEFAULT_SETTINGS = "W8A8,W4A8,W8A4"
METHODS = ("ifmr", "hfmg", "entropy", "mse", "percentile", "minmax")
REPEATS = 3


def fastest(runs, work):
    """work()'s last result and its fastest wall time over `runs` runs (the machine is shared)."""
    best, result = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - t0)
    return result, best


def predict_onnx(path, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])


def run_amctq(tool, work, model, wbits, abits, method, x, weight_preset="amct", wts_algo="arq"):
    """Deploy and fake-quant outputs on x, the `amctq quantize` wall time, its stderr on failure,
    and float_layers.json's count ("quantized" of "layers")."""
    cfg_path = os.path.join(work, "base_config.json")
    if not os.path.exists(cfg_path):
        subprocess.run([tool, "config", "--model", model, "--out", cfg_path], check=True)
    cfg = json.load(open(cfg_path))
    cfg["weights"]["num_bits"] = wbits
    cfg["activation"]["num_bits"] = abits
    cfg["activation"]["act_algo"] = method
    cfg["weights"]["preset"] = weight_preset
    cfg["weights"]["wts_algo"] = wts_algo
    out = os.path.join(work, f"amctq_{method}_{weight_preset}_{wts_algo}_w{wbits}a{abits}")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "config.json")
    json.dump(cfg, open(path, "w"))
    r, dt = fastest(1 if wts_algo == "adaround" else REPEATS, lambda: subprocess.run([tool, "quantize", "--model", model, "--calib", CALIB, "--config",
                                                     path, "--out", out, "--quiet"], capture_output=True, text=True))
    if r.returncode != 0:
        return None, dt, r.stderr.strip(), None
    stem = os.path.join(out, os.path.splitext(os.path.basename(model))[0])
    counts = json.load(open(os.path.join(out, "float_layers.json")))
    return {"deploy": predict_onnx(stem + "_deploy_model.onnx", x),
            "fake-quant": predict_onnx(stem + "_fake_quant_model.onnx", x)}, dt, "", counts


def run_ort(work, model, wbits, abits, method):
    from onnxruntime.quantization import CalibrationDataReader

    class reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"image": np.load(CALIB)}])

        def get_next(self):
            return next(self.batches, None)

    out = os.path.join(work, f"ort_{method}_w{wbits}a{abits}.onnx")
    # 2048-bin Entropy takes seconds per run; the quick methods get the fastest of REPEATS runs.
    _, dt = fastest(1 if method == "Entropy" else REPEATS,
                    lambda: quantize_ort(work, model, wbits, abits, method, out, reader))
    return out, dt


def quantize_ort(work, model, wbits, abits, method, out, reader):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    if wbits not in (4, 8) or abits not in (4, 8):
        raise ValueError(f"quantize_static has 4- and 8-bit types only, not W{wbits}A{abits}")
    calib_method = getattr(CalibrationMethod, method)
    cache = None
    if method == "Entropy":
        # quantize_static forwards no bin count to its entropy calibrater (default 128 bins), so
        # the 2048-bin ranges are computed by ORT's own calibrater and handed to quantize_static
        # through its calibration cache (ORT >= 1.32); the timing includes that calibration.
        from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
        cache = os.path.join(work, f"ort_entropy2048_w{wbits}a{abits}.json")
        cal = create_calibrator(model, [], augmented_model_path=os.path.join(work, "ort_augmented.onnx"),
                                calibrate_method=calib_method, extra_options={"num_bins": 2048})
        cal.collect_data(reader())
        save_tensors_data(cal.compute_data(), cache)
    quantize_static(model, out, None if cache else reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8 if abits == 8 else QuantType.QUInt4,
                    weight_type=QuantType.QInt8 if wbits == 8 else QuantType.QInt4,
                    calibrate_method=calib_method, calibration_cache_path=cache)


def torch_from_onnx(module, path):
    """`module` (eval mode) with its parameters taken from the ONNX initializers of the model it
    was exported as. Initializers named like a parameter are copied (reshaped: the ONNX may store
    a BatchNorm or bias flat); a Linear applied to a 3-d tensor is exported as MatMul with an
    anonymous transposed weight followed by Add of "<name>.bias", so that weight is found through
    its Add; Identity nodes (the exporter's de-duplicated equal initializers) are followed."""
    import torch
    graph = onnx.load(path).graph
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    consumers = {t: n for n in graph.node for t in n.input}
    for n in graph.node:
        add = consumers.get(n.output[0])
        if n.op_type == "MatMul" and n.input[1] in inits and add is not None and add.op_type == "Add":
            bias = next((t for t in add.input if t.endswith(".bias") and t in inits), None)
            if bias:
                inits[bias[:-len("bias")] + "weight"] = inits[n.input[1]].T
    state = module.state_dict()
    missing = [k for k in state if k not in inits and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{path}: no initializer for {missing}")
    for k in state:
        if k in inits:
            state[k] = torch.from_numpy(np.array(inits[k])).reshape(state[k].shape)
    module.load_state_dict(state)
    return module.eval()


def torch_cnn(model, qconfig):
    """Eager-mode PTQ: BatchNorm and ReLU fused into the convolutions, QuantStub / DeQuantStub around."""
    from torch import nn
    from torch.ao import quantization as tq
    from train_fmnist_cnn import make_model
    base = torch_from_onnx(make_model(), model)
    tq.fuse_modules(base, [["0", "1", "2"], ["4", "5", "6"], ["7", "8", "9"], ["11", "12", "13"], ["16", "17"]],
                    inplace=True)
    m = nn.Sequential(tq.QuantStub(), base, tq.DeQuantStub()).eval()
    m.qconfig = qconfig
    return tq.prepare(m), lambda prepared: tq.convert(prepared)


def torch_vit(model, qconfig):
    """FX graph-mode PTQ with the engine's default QConfigMapping, its default qconfig replaced.
    In torch 1.13 that quantizes far more than the Linear layers: Conv, every Linear, LayerNorm,
    the position-embedding and residual adds, Q K^T and A V (quantized::matmul), the score
    scaling and Softmax (fixed output grid 1/256) run on quantized tensors; only GELU runs in
    float between a dequantize and a quantize (fx_op_counts prints the split)."""
    import torch
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    from train_fmnist_vit import make_model
    base = torch_from_onnx(make_model(), model)
    mapping = get_default_qconfig_mapping(torch.backends.quantized.engine)
    default = mapping.global_qconfig
    # The default mapping names Conv, Linear, ReLU, BatchNorm with the same qconfig object as its
    # global one, and LayerNorm with its activation observer (and a float weight); all of them
    # take the bench's qconfig, else set_global alone would leave them at fbgemm's default.
    # The fixed-grid ops (Softmax, Sigmoid, Tanh, ...) keep their fixed 8-bit output grids.
    for kind, qc in list(mapping.object_type_qconfigs.items()):
        if qc is default:
            mapping.set_object_type(kind, qconfig)
        elif qc is not None and qc.activation is default.activation:
            mapping.set_object_type(kind, QConfig(activation=qconfig.activation, weight=qc.weight))
    mapping.set_global(qconfig)
    return prepare_fx(base, mapping, (torch.from_numpy(np.load(CALIB)[:1]),)), convert_fx


def fx_op_counts(gm):
    """Ops of a converted FX graph that run on quantized tensors and those that run on floats
    (a quantized tensor is the output of quantize_per_tensor or of an op fed one, up to the next
    dequantize), as two Counters of module class / function names."""
    import collections
    import torch
    mods = dict(gm.named_modules())
    quantized, counts = set(), {True: collections.Counter(), False: collections.Counter()}
    for n in gm.graph.nodes:
        if n.op not in ("call_module", "call_function", "call_method"):
            continue
        name = type(mods[n.target]).__name__ if n.op == "call_module" else getattr(n.target, "__name__", n.target)
        if n.target is torch.quantize_per_tensor:
            quantized.add(n)
        elif name != "dequantize":
            q = any(a in quantized for a in n.args if isinstance(a, torch.fx.Node))
            counts[q][name] += 1
            if q:
                quantized.add(n)
    return counts[True], counts[False]


MODELS = {  # per model: file, description, PyTorch PTQ builder (prepared module, convert function)
    "cnn": ("fmnist_cnn.onnx", "Fashion-MNIST CNN", torch_cnn),
    "vit": ("fmnist_vit.onnx", "Fashion-MNIST ViT", torch_vit),
}


def run_torch(model, build, wbits, abits, observer, x):
    import torch
    from torch.ao import quantization as tq
    engines = torch.backends.quantized.supported_engines
    torch.backends.quantized.engine = next(e for e in ("fbgemm", "x86", "onednn", "qnnpack") if e in engines)
    act = tq.MinMaxObserver if observer == "MinMax" else tq.HistogramObserver
    amax = 2 ** abits - 1
    wmax = 2 ** (wbits - 1) - 1
    qconfig = tq.QConfig(
        activation=act.with_args(dtype=torch.quint8, quant_min=0, quant_max=amax),
        weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                                     quant_min=-wmax - 1, quant_max=wmax))
    prepared, convert = build(model, qconfig)
    t0 = time.perf_counter()
    with torch.no_grad():
        prepared(torch.from_numpy(np.load(CALIB)))
    dt = time.perf_counter() - t0
    converted = convert(prepared)
    with torch.no_grad():
        y = torch.cat([converted(torch.from_numpy(x[i:i + 1000])) for i in range(0, len(x), 1000)]).numpy()
    return y, dt, converted


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--amctq", required=True)
    ap.add_argument("--model", choices=sorted(MODELS), default="cnn")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS, help="comma-separated subset of " + ", ".join(SETTINGS))
    ap.add_argument("--methods", default=",".join(METHODS), help="amctq activation methods, comma-separated")
    ap.add_argument("--wts-algo", default="arq", help="amctq weight algorithms, comma-separated: arq, adaround, nuq")
    ap.add_argument("--weight-presets", default="amct,pytorch", help="amctq weight scale rules, comma-separated")
    ap.add_argument("--no-peers", action="store_true", help="amctq rows only")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    file, title, build_torch = MODELS[args.model]
    model = os.path.join(ROOT, "models", file)
    settings = {s: SETTINGS[s] for s in args.settings.split(",")}
    work = args.work or tempfile.mkdtemp(prefix="amctq_bench_")
    os.makedirs(work, exist_ok=True)
    x, y = fmnist_data.load("t10k")
    ref = predict_onnx(model, x)
    rows, notes = [], {}

    def add(tool, method, setting, out, dt, note=""):
        if out is None:
            rows.append((tool, method, setting, float("nan"), float("nan"), dt, note))
        else:
            rows.append((tool, method, setting, np.mean(out.argmax(1) == y), np.mean(out.argmax(1) == ref.argmax(1)),
                         dt, note))

    add("float", "-", "-", ref, 0.0)
    for setting, (wb, ab) in settings.items():
        for weight_preset, wts_algo, method in itertools.product(args.weight_presets.split(","),
                                                                 args.wts_algo.split(","), args.methods.split(",")):
            outs, dt, err, counts = run_amctq(args.amctq, work, model, wb, ab, method, x, weight_preset, wts_algo)
            label = (method + ("" if weight_preset == "amct" else " w:pytorch")
                     + ("" if wts_algo == "arq" else " " + wts_algo))
            if outs is None:
                add("amctq", label, setting, None, dt, err)
            else:
                notes["amctq"] = (f"{counts['quantized']} of {counts['layers']} layers quantized; float: "
                                  + (", ".join(f"{k} ({v['op_type']})" for k, v in counts["float"].items())
                                     or "none"))
                add("amctq deploy", label, setting, outs["deploy"], dt)
                add("amctq fake-q", label, setting, outs["fake-quant"], dt)
        for method in () if args.no_peers else ("MinMax", "Entropy", "Percentile"):
            try:
                path, dt = run_ort(work, model, wb, ab, method)
                add("ORT qstatic", method, setting, predict_onnx(path, x), dt)
            except Exception as e:  # noqa: BLE001 - report, keep the table going
                add("ORT qstatic", method, setting, None, float("nan"), str(e).splitlines()[0][:80])
        for obs in () if args.no_peers else ("MinMax", "Histogram"):
            try:
                out, dt, converted = run_torch(model, build_torch, wb, ab, obs, x)
                add("PyTorch PTQ", obs, setting, out, dt)
                if hasattr(converted, "graph"):
                    quant, flt = fx_op_counts(converted)
                    notes["PyTorch FX"] = f"on quantized tensors: {dict(quant)}; on floats: {dict(flt)}"
            except Exception as e:  # noqa: BLE001
                add("PyTorch PTQ", obs, setting, None, float("nan"), str(e).splitlines()[0][:80])
        print(f"{setting} done", file=sys.stderr, flush=True)

    print(f"{title}, {len(x)} test images, calibration: 256 images in 1 batch; onnxruntime "
          f"{ort.__version__}")
    for tool, note in notes.items():
        print(f"{tool}: {note}")
    print(f"{'tool':<13} {'method':<16} {'setting':<7} {'accuracy':>8} {'top1-agree':>10} {'calib s':>8}  note")
    for t, m, s, acc, agr, dt, note in rows:
        print(f"{t:<13} {m:<16} {s:<7} {acc:>8.4f} {agr:>10.4f} {dt:>8.3f}  {note}")
    print("\nbest per setting (accuracy):")
    for setting in settings:
        for tool in ("amctq deploy", "amctq fake-q", "ORT qstatic", "PyTorch PTQ"):
            cand = [r for r in rows if r[0] == tool and r[2] == setting and r[3] == r[3]]
            if cand:
                b = max(cand, key=lambda r: r[3])
                print(f"  {setting} {tool:<13} {b[1]:<16} acc {b[3]:.4f} agree {b[4]:.4f}")
    print("\ncalibration wall time, same method against quantize_static (s, fastest of the runs):")
    for setting in settings:
        for mine, theirs in (("minmax", "MinMax"), ("percentile", "Percentile"), ("entropy", "Entropy")):
            a = [r[5] for r in rows if r[0] == "amctq deploy" and r[1] == mine and r[2] == setting]
            o = [r[5] for r in rows if r[0] == "ORT qstatic" and r[1] == theirs and r[2] == setting and r[5] == r[5]]
            if a and o:
                print(f"  {setting} {mine:<11} amctq {a[0]:.3f}  ORT {o[0]:.3f}  ratio {a[0] / o[0]:.2f}")


if __name__ == "__main__":
    main()
