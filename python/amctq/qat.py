"""amctq.qat: quantization-aware training on PyTorch modules, AMCT's retrain flow.

``create_quant_retrain_config(module)`` -> a config dict; ``create_quant_retrain_model(module,
calib_batches, config)`` wraps Conv1d/2d/3d, ConvTranspose2d, Linear and AvgPool2d layers with
amctq quantizers (torch autograd functions whose forward is amctq's fused fake-quant kernel and
whose backward is algorithms/lsq.hpp: LSQ / LSQ+ / ULQ), initialised by amctq's PTQ calibration
(ARQ weights, IFMR or the config's activation method); train it as any module; then
``save_quant_retrain_model`` writes ``<stem>_fake_quant_model.onnx``, ``<stem>_deploy_model.onnx``
and ``record.json`` through the PTQ pipeline's writers with the learned parameters. docs/qat.md.
"""

import copy
import json
import math
import os
import tempfile
import warnings

import numpy as np
import torch
from torch import nn

from . import _core
from ._errors import Error
from ._kernels import fake_quantize
from ._observer import calibrate
from ._pipeline import _merge, create_quant_config

__all__ = ["create_quant_retrain_config", "create_quant_retrain_model", "save_quant_retrain_model"]

# torch kind -> (ONNX op type of its node, weight channel axis or None for weightless kinds)
_KINDS = {nn.Conv1d: ("Conv", 0), nn.Conv2d: ("Conv", 0), nn.Conv3d: ("Conv", 0),
          nn.ConvTranspose2d: ("ConvTranspose", 1), nn.Linear: ("Gemm", 0), nn.AvgPool2d: ("AveragePool", None)}
# Kinds with learned weights amctq.qat cannot wrap: named, left float, listed.
_UNWRAPPABLE = (nn.ConvTranspose1d, nn.ConvTranspose3d, nn.Embedding, nn.EmbeddingBag, nn.MultiheadAttention,
                nn.RNNBase, nn.Bilinear)

_WEIGHT_ALGOS = ("ulq_retrain", "arq_retrain")          # learned scale (LSQ) / ARQ each step, STE
_ACT_ALGOS = ("ulq_quantize", "lsq", "lsq_plus")        # learned clips / learned scale / scale + offset
_DEFAULTS = {
    "batch_num": 1,
    "skip_layers": [],
    "weights": {"num_bits": 8, "channel_wise": True, "wts_algo": "arq", "retrain_algo": "ulq_retrain"},
    "activation": {"num_bits": 8, "act_algo": "ifmr", "retrain_algo": "ulq_quantize", "fixed_min": None},
}


def _kind_of(m):
    for k, v in _KINDS.items():
        if type(m) is k:
            return v
    return None


def _layers(module):
    """(name, module, kind) of every wrappable layer, and the names of unwrappable ones."""
    found, left = [], []
    for name, m in module.named_modules():
        if _kind_of(m) is not None:
            found.append((name, m))
        elif isinstance(m, _UNWRAPPABLE):
            left.append(f"{name} ({type(m).__name__})")
    return found, left


def create_quant_retrain_config(module, **overrides):
    """The retrain config of ``module`` as a dict: global ``batch_num``, ``skip_layers``,
    ``weights`` / ``activation`` settings, and ``layers`` (module name -> layer type and
    ``retrain_enable``), with ``overrides`` merged in (dicts key by key). An unknown key or a bad
    value raises :class:`amctq.Error` naming it.
    """
    config = copy.deepcopy(_DEFAULTS)
    found, _ = _layers(module)
    config["layers"] = {name: {"layer_type": type(m).__name__, "retrain_enable": True} for name, m in found}
    _merge(config, copy.deepcopy(overrides))
    _check_config(config, {name for name, _ in found})
    return config


def _bad(key, what):
    raise Error(f"[amctq.invalid_argument] retrain config: {key}: {what}")


def _check_config(c, names):
    for k in c:
        if k not in ("batch_num", "skip_layers", "weights", "activation", "layers"):
            _bad(k, "unknown key (batch_num, skip_layers, weights, activation, layers)")
    for part, allowed in (("weights", _DEFAULTS["weights"]), ("activation", _DEFAULTS["activation"])):
        for k in c[part]:
            if k not in allowed:
                _bad(f"{part}.{k}", f"unknown key ({', '.join(allowed)})")
    w, a = c["weights"], c["activation"]
    if not (isinstance(w["num_bits"], int) and 2 <= w["num_bits"] <= 8):
        _bad("weights.num_bits", f"must be an integer in [2, 8], got {w['num_bits']!r}")
    if not (isinstance(a["num_bits"], int) and 2 <= a["num_bits"] <= 8):
        _bad("activation.num_bits", f"must be an integer in [2, 8], got {a['num_bits']!r}")
    if w["retrain_algo"] not in _WEIGHT_ALGOS:
        _bad("weights.retrain_algo", f"must be one of {_WEIGHT_ALGOS}, got {w['retrain_algo']!r}")
    if a["retrain_algo"] not in _ACT_ALGOS:
        _bad("activation.retrain_algo", f"must be one of {_ACT_ALGOS}, got {a['retrain_algo']!r}")
    if w["wts_algo"] != "arq":
        _bad("weights.wts_algo", f"retraining starts from ARQ's scales ('arq'), got {w['wts_algo']!r}")
    if a["fixed_min"] not in (None, True, False):
        _bad("activation.fixed_min", "must be true, false or null (null: true where the calibration input is >= 0)")
    if not (isinstance(c["batch_num"], int) and c["batch_num"] >= 1):
        _bad("batch_num", f"must be an integer >= 1, got {c['batch_num']!r}")
    for n in c["skip_layers"]:
        if n not in names:
            _bad("skip_layers", f"'{n}' is not a layer the retrain model can wrap")
    for n, lc in c["layers"].items():
        if n not in names:
            _bad(f"layers.{n}", "no wrappable layer of that name")
        for k in lc:
            if k not in ("layer_type", "retrain_enable"):
                _bad(f"layers.{n}.{k}", "unknown key (layer_type, retrain_enable)")


# ---------------------------------------------------------------------------------------------
# Autograd functions: forward = amctq.fake_quantize, backward = the C++ QAT kernels.

def _np(t):
    return t.detach().contiguous().numpy()


def _rethrow(name, e):
    raise Error(f"{e} (layer '{name}')") from None


class _LsqFn(torch.autograd.Function):
    """x̂ = fake_quantize(x, scale, round(clamp(zero_point))); LSQ / LSQ+ gradients."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, bits, axis, grad_scale, name):
        qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        s = scale.detach().reshape(-1).tolist()
        z = [int(min(max(round(v), qmin), qmax)) for v in zero_point.detach().reshape(-1).tolist()]
        xc = x.detach().contiguous()
        y = torch.empty_like(xc)
        try:
            fake_quantize(xc.numpy(), s, z, bits=bits, axis=axis, out=y.numpy())
        except Error as e:
            _rethrow(name, e)
        ctx.save_for_backward(xc)
        ctx.grid = (s, z, bits, axis, grad_scale, name)
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        s, z, bits, axis, g, name = ctx.grid
        dx = torch.empty_like(x)
        try:
            ds, dz = _core._lsq_backward(x.numpy(), _np(dy), dx.numpy(), s, z, bits, axis, g, "half_even")
        except Error as e:
            _rethrow(name, e)
        return dx, torch.tensor(ds), torch.tensor(dz), None, None, None, None


class _UlqFn(torch.autograd.Function):
    """x̂ = fake_quantize(x, ulq_params(clip_min, clip_max)); AMCT ULQ gradients."""

    @staticmethod
    def forward(ctx, x, clip_min, clip_max, bits, fixed_min, name):
        cmin, cmax = clip_min.detach().reshape(-1).tolist(), clip_max.detach().reshape(-1).tolist()
        xc = x.detach().contiguous()
        y = torch.empty_like(xc)
        try:
            s, z, _, _ = _core._ulq_params(cmin, cmax, bits, fixed_min)
            fake_quantize(xc.numpy(), s, z, bits=bits, out=y.numpy())
        except Error as e:
            _rethrow(name, e)
        ctx.save_for_backward(xc)
        ctx.grid = (cmin, cmax, bits, fixed_min, name)
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        cmin, cmax, bits, fixed_min, name = ctx.grid
        dx = torch.empty_like(x)
        try:
            dmin, dmax = _core._ulq_backward(x.numpy(), _np(dy), dx.numpy(), cmin, cmax, bits, fixed_min, None, 1.0)
        except Error as e:
            _rethrow(name, e)
        return dx, torch.tensor(dmin), torch.tensor(dmax), None, None, None


def lsq_fake_quantize(x, scale, zero_point, bits, axis=None, grad_scale=1.0):
    """Differentiable ``fake_quantize`` with LSQ / LSQ+ gradients for ``scale`` and ``zero_point``."""
    return _LsqFn.apply(x, scale, zero_point, bits, axis, grad_scale, "lsq_fake_quantize")


def ulq_fake_quantize(x, clip_min, clip_max, bits, fixed_min=False):
    """Differentiable ULQ fake quantization (AMCT ulq_quantize) with gradients for the clips."""
    return _UlqFn.apply(x, clip_min, clip_max, bits, fixed_min, "ulq_fake_quantize")


# ---------------------------------------------------------------------------------------------
# Quantizers and the wrapped layer.

def _arq_scales(w, bits, axis):
    """AMCT ARQ (symmetric, quant_params.hpp amct_formula) per channel along axis, or per tensor."""
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    a = w.detach().float()
    if axis is None:
        hi, lo = a.max().reshape(1), a.min().reshape(1)
    else:
        flat = a.transpose(0, axis).reshape(a.shape[axis], -1)
        hi, lo = flat.max(1).values, flat.min(1).values
    t = torch.where(hi.abs() > lo.abs(), hi, lo)
    s = torch.where(t > 0, t / qmax, t / qmin)
    return torch.where(s >= np.finfo(np.float32).eps, s, torch.ones_like(s))


def _positive(scale):
    """The scale a learned parameter stands for: |s|, at least FLT_EPSILON (an optimizer step may
    take s through 0; AMCT records |scale_w| too)."""
    return scale.abs().clamp_min(float(np.finfo(np.float32).eps))


def _weight_axis(layer, channel_wise):
    """The weight's output-channel axis, or None for per-tensor scales."""
    axis = _kind_of(layer)[1]
    if axis == 1 and getattr(layer, "groups", 1) != 1:
        axis = None  # a grouped ConvTranspose's output channels span two axes: per tensor
    return axis if channel_wise else None


class _QuantLayer(nn.Module):
    """A float layer whose input (and weight) go through amctq quantizers."""

    def __init__(self, name, layer, wcfg, acfg, clip_min, clip_max, act_scale, act_zero, fixed_min):
        super().__init__()
        self.name, self.layer = name, layer
        self.w_bits, self.a_bits = wcfg["num_bits"], acfg["num_bits"]
        self.w_algo, self.a_algo = wcfg["retrain_algo"], acfg["retrain_algo"]
        self.fixed_min = fixed_min
        self.op_type = _kind_of(layer)[0]
        self.w_axis = _weight_axis(layer, wcfg["channel_wise"])
        self.has_weight = self.op_type != "AveragePool"
        if self.has_weight:
            s = _arq_scales(layer.weight, self.w_bits, self.w_axis)
            self.w_scale = nn.Parameter(s, requires_grad=self.w_algo == "ulq_retrain")
            self.register_buffer("w_zero", torch.zeros_like(s))
        self.clip_min = nn.Parameter(torch.tensor([clip_min], dtype=torch.float32))
        self.clip_max = nn.Parameter(torch.tensor([clip_max], dtype=torch.float32))
        self.a_scale = nn.Parameter(torch.tensor([act_scale], dtype=torch.float32))
        self.a_zero = nn.Parameter(torch.tensor([float(act_zero)]), requires_grad=self.a_algo == "lsq_plus")
        for p, used in ((self.clip_min, self.a_algo == "ulq_quantize" and not fixed_min),
                        (self.clip_max, self.a_algo == "ulq_quantize"), (self.a_scale, self.a_algo != "ulq_quantize")):
            p.requires_grad_(used)

    def quant_weight(self):
        """(fake-quantized weight, its scales)."""
        w = self.layer.weight
        if self.w_algo == "arq_retrain":
            s = _arq_scales(w, self.w_bits, self.w_axis)
            return _LsqFn.apply(w, s, torch.zeros_like(s), self.w_bits, self.w_axis, 1.0, self.name), s
        per = w.numel() // self.w_scale.numel()
        g = 1.0 / math.sqrt(per * ((1 << (self.w_bits - 1)) - 1))
        s = _positive(self.w_scale)
        return _LsqFn.apply(w, s, self.w_zero, self.w_bits, self.w_axis, g, self.name), s

    def quant_bias(self, w_scale, a_scale):
        """The bias on the int32 grid s_w·s_d the saved models store it on (arq.hpp quantize_bias,
        in double), straight-through: at 4 bits that grid is coarse enough to matter."""
        b = self.layer.bias
        if b is None:
            return None
        step = w_scale.detach().double().reshape(-1) * float(a_scale)
        q = torch.round(b.detach().double() / step) * step
        return b + (q.float() - b).detach()

    def act_params(self):
        """(scale, zero_point) of the layer input as the exported models use them."""
        if self.a_algo == "ulq_quantize":
            s, z, _, _ = _core._ulq_params([float(self.clip_min)], [float(self.clip_max)], self.a_bits, self.fixed_min)
            return s[0], z[0]
        qmin, qmax = -(1 << (self.a_bits - 1)), (1 << (self.a_bits - 1)) - 1
        return float(_positive(self.a_scale)), int(min(max(round(float(self.a_zero)), qmin), qmax))

    def weight_scales(self):
        if not self.has_weight:
            return None
        if self.w_algo == "arq_retrain":
            return _arq_scales(self.layer.weight, self.w_bits, self.w_axis).tolist()
        return _positive(self.w_scale).detach().reshape(-1).tolist()

    def forward(self, x):
        if self.a_algo == "ulq_quantize":
            xq = _UlqFn.apply(x, self.clip_min, self.clip_max, self.a_bits, self.fixed_min, self.name)
        else:
            g = 1.0 / math.sqrt(x[0].numel() * ((1 << (self.a_bits - 1)) - 1))
            xq = _LsqFn.apply(x, _positive(self.a_scale), self.a_zero, self.a_bits, None, g, self.name)
        L = self.layer
        if not self.has_weight:
            return L(xq)
        w, s_w = self.quant_weight()
        b = self.quant_bias(s_w, self.act_params()[0])
        if isinstance(L, nn.Linear):
            return nn.functional.linear(xq, w, b)
        if isinstance(L, nn.ConvTranspose2d):
            return nn.functional.conv_transpose2d(xq, w, b, L.stride, L.padding, L.output_padding, L.groups,
                                                  L.dilation)
        return L._conv_forward(xq, w, b)


def _fold_batchnorms(module):
    """Folds each BatchNorm that directly follows a Conv in an nn.Sequential (eval statistics)."""
    for parent in module.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        keys = list(parent._modules)
        for a, b in zip(keys, keys[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and isinstance(bn, nn.modules.batchnorm._BatchNorm):
                parent._modules[a] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv.eval(), bn.eval())
                parent._modules[b] = nn.Identity()
    left = [n for n, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise Error("[amctq.unsupported] create_quant_retrain_model: BatchNorm " + ", ".join(left) +
                    " does not directly follow a Conv in an nn.Sequential; fold it first "
                    "(torch.nn.utils.fusion.fuse_conv_bn_eval)")


def _set_child(root, name, new):
    parent = root
    parts = name.split(".")
    for p in parts[:-1]:
        parent = getattr(parent, p)
    setattr(parent, parts[-1], new)


def create_quant_retrain_model(module, calib_batches, config=None):
    """``module`` (changed in place and returned) with its wrappable layers quantized for retraining.

    BatchNorm after a Conv is folded first (eval statistics). ``calib_batches`` is an iterable of
    input tensors (or one tensor) the float model runs to initialise the activation parameters
    with the config's ``act_algo`` (IFMR by default); weights start from ARQ's scales. ``config``
    is a dict of retrain-config keys, any subset (merged over the defaults). Layers of a kind the
    model cannot wrap are named in a warning, left float and listed in ``module.amctq_float_layers``.
    """
    if isinstance(calib_batches, torch.Tensor):
        calib_batches = [calib_batches]
    cfg = copy.deepcopy(_DEFAULTS)
    cfg["layers"] = {}
    _merge(cfg, copy.deepcopy(config or {}))
    module.eval()
    _fold_batchnorms(module)
    found, left = _layers(module)
    _check_config(cfg, {n for n, _ in found})
    enabled = [(n, m) for n, m in found
               if n not in cfg["skip_layers"] and cfg["layers"].get(n, {}).get("retrain_enable", True)]
    w, a = cfg["weights"], cfg["activation"]
    # As the PTQ pipeline does, the activations are calibrated on the model with ARQ weights.
    inputs = {n: [] for n, _ in enabled}
    hooks = [m.register_forward_pre_hook(lambda _m, args, n=n: inputs[n].append(_np(args[0])))
             for n, m in enabled]
    saved = {n: m.weight.detach().clone() for n, m in enabled if hasattr(m, "weight")}
    with torch.no_grad():
        for n, m in enabled:
            if n in saved:
                axis = _weight_axis(m, w["channel_wise"])
                s = _arq_scales(m.weight, w["num_bits"], axis).tolist()
                m.weight.copy_(torch.from_numpy(fake_quantize(_np(m.weight), s, [0] * len(s), bits=w["num_bits"],
                                                              axis=axis)))
        for i, b in enumerate(calib_batches):
            if i >= cfg["batch_num"]:
                break
            module(b)
        for n, m in enabled:
            if n in saved:
                m.weight.copy_(saved[n])
    for h in hooks:
        h.remove()
    for n, m in enabled:
        batches = inputs[n]
        if not batches:
            raise Error(f"[amctq.invalid_argument] create_quant_retrain_model: layer '{n}' saw no calibration input")
        lo = min(float(b.min()) for b in batches)
        fixed = a["fixed_min"] if a["fixed_min"] is not None else lo >= 0.0
        r = calibrate(batches, method=a["act_algo"], bits=a["num_bits"], symmetric=False)
        s, z, qmin, qmax = r["scale"], r["zero_point"], r["qmin"], r["qmax"]
        cmax, cmin = (qmax - z) * s, (qmin - z) * s
        if fixed:
            cmin, z = 0.0, qmin
        _set_child(module, n, _QuantLayer(n, m, w, a, cmin, cmax, s, z, fixed))
    on = {n for n, _ in enabled}
    module.amctq_float_layers = left + [f"{n} (skipped by the config)" for n, _ in found if n not in on]
    module.amctq_retrain_config = cfg
    if left:
        warnings.warn("amctq.qat: left float (a kind the retrain model cannot wrap): " + ", ".join(left), stacklevel=2)
    return module


def _float_copy(module):
    """A copy of module with every _QuantLayer replaced by its float layer (trained weights)."""
    f = copy.deepcopy(module)
    for n, m in list(f.named_modules()):
        if isinstance(m, _QuantLayer):
            _set_child(f, n, m.layer)
    return f


def _onnx_name(module_name, op_type, layer_names):
    """The ONNX node torch.onnx.export (1.13+) names after the module: '/a/a.b/<op>' for 'a.b'."""
    parts = module_name.split(".")
    exact = "/" + "/".join(".".join(parts[:i + 1]) for i in range(len(parts))) + "/" + op_type
    if exact in layer_names:
        return exact
    hits = [n for n in layer_names if n.endswith("/" + module_name + "/" + op_type)]
    return hits[0] if len(hits) == 1 else None


def save_quant_retrain_model(module, example_input, out_dir, stem):
    """Writes ``out_dir/<stem>_fake_quant_model.onnx``, ``<stem>_deploy_model.onnx`` and
    ``record.json`` with the learned parameters, through the PTQ pipeline's writers: the float
    module (trained weights) is exported to ONNX (opset 13), and amctq quantizes it with each
    layer's learned activation (scale, offset) and weight scales instead of calibrating them.
    Returns the record as a dict.
    """
    quant = [(n, m) for n, m in module.named_modules() if isinstance(m, _QuantLayer)]
    if not quant:
        raise Error("[amctq.invalid_argument] save_quant_retrain_model: the module has no amctq quantizer "
                    "(create_quant_retrain_model makes them)")
    a_bits = {m.a_bits for _, m in quant}
    w_bits = {m.w_bits for _, m in quant}
    w_axis = {m.w_axis is not None for _, m in quant if m.has_weight}
    if len(a_bits) != 1 or len(w_bits) != 1 or len(w_axis) > 1:
        raise Error("[amctq.unsupported] save_quant_retrain_model: layers with different widths or granularity")
    os.makedirs(out_dir, exist_ok=True)
    x = example_input.detach().float()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, stem + ".onnx")
        with torch.no_grad():
            torch.onnx.export(_float_copy(module).eval(), x, path, opset_version=13, input_names=["input"],
                              output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                              do_constant_folding=False)
        onnx_layers = create_quant_config(path)["layers"]
        given, wrapped = {}, set()
        for n, m in quant:
            name = _onnx_name(n, m.op_type, onnx_layers)
            if name is None:
                raise Error(f"[amctq.unsupported] save_quant_retrain_model: layer '{n}' has no single {m.op_type} "
                            "node in the exported model")
            s, z = m.act_params()
            given[name] = {"act": (s, z, m.a_bits), "wts_scale": m.weight_scales()}
            wrapped.add(name)
        skip = [n for n in onnx_layers if n not in wrapped]
        config = create_quant_config(path, skip_layers=skip, weights={"num_bits": w_bits.pop(),
                                     "channel_wise": bool(w_axis.pop()) if w_axis else True, "wts_algo": "arq"},
                                     activation={"num_bits": a_bits.pop(), "asymmetric": True})
        paths = _core._quantize_model(path, "", json.dumps(config), [{"": x.numpy()}], True, os.fspath(out_dir),
                                      stem, given)
    for note in paths["notes"]:
        warnings.warn(f"amctq.qat.save_quant_retrain_model: {note}", stacklevel=2)
    with open(paths["record"], encoding="utf-8") as f:
        return json.load(f)
