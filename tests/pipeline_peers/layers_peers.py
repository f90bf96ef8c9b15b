"""Every layer kind amctq quantizes, end to end against ONNX Runtime (issue #6).

usage: layers_peers.py DRIVER WORKDIR
Exports small random-weight torch models (opset 13), one per case: Conv2d + Relu + Linear (Gemm),
depthwise Conv2d + pointwise Conv2d, Conv3d, ConvTranspose2d (stride / padding / output_padding,
with and without groups; and a decoder-sized one whose codes are summed in two parts), MatMul
on a 3-D activation [B, T, C] x [C, K] (nn.Linear on 3-D input), Gemm with transB (nn.Linear on
2-D input), AveragePool 2d, two-head self-attention (Q·Kᵀ and A·V: MatMuls of two activations), a
residual block with a Concat, and a model in which two layers share one weight initializer.
Quantizes each with amctq's pipeline driver (default config: W8A8, per-channel ARQ weights, IFMR
asymmetric activations) and checks:
  - the deploy model's outputs in ORT (CPU EP, graph optimisations off and all on) are
    bit-identical to amctq's integer simulation;
  - the fake-quant model in ORT (optimisations off) equals amctq's fake-quant simulation within
    1e-4 of the output magnitude (all but a few samples whose QuantizeLinear input lies within
    float rounding of a tie; none further off than 5%: see peer_common.compare_fake_quant);
  - both are close to the float model: relative L2 error ||y_q - y_float|| / ||y_float|| below
    REL_ERR_MAX, printed per case;
  - under Vitis AI's default config (power-of-two grids, 8-bit biases, every layer output and every
    Add / Concat input and output quantized where it is made), the same, and every tensor
    record.json lists is quantized where it is made in both models;
  - the shared-weight model is refused with a message naming the shared initializer.
Fails (exit 1) when torch or onnxruntime is missing or any check fails.
"""
import json
import os
import sys

import numpy as np

import vitis_configs
from peer_common import compare_deploy, compare_fake_quant, run_driver, session

try:
    import torch
    from torch import nn
except ImportError:
    print("FAIL: torch is not importable (Debian python3-torch); the layer peer test exports its models with it",
          file=sys.stderr)
    sys.exit(1)

# 8-bit weights and activations on random weights and Gaussian inputs: the measured errors are
# 0.2-2% (printed); 5% leaves room for other seeds and ORT versions while still catching a wrong
# scale, axis or layout, which gives errors of order 1.
REL_ERR_MAX = 0.05
# 4-bit weights and activations (16 levels): measured 5-22%; a wrong scale or layout is still ~1.
REL_ERR_MAX_4BIT = 0.3
CALIB_ROWS, TEST_ROWS = 64, 192
# Vitis' default: per-tensor power-of-two grids (up to twice the step of a float scale) on
# weights, biases, inputs and every layer output: measured 1.1-2.7% (2026-12-07).
REL_ERR_MAX_VITIS = 0.1


class ConvReluLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


class DepthwisePointwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.pw = nn.Conv2d(6, 4, 1)

    def forward(self, x):
        return self.pw(torch.relu(self.dw(x)))


class Conv3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv3d(2, 4, 3, padding=1)
        self.b = nn.Conv3d(4, 3, (1, 3, 3), stride=(1, 2, 2))

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class ConvTranspose(nn.Module):
    # A Conv first, so the ConvTranspose reads a tensor another integer layer produced; the
    # second ConvTranspose has groups (per-tensor weights: no ONNX axis holds its output channel).
    # Wide enough (48 input channels) that summing dequantized floats in ORT's order and in
    # amctq's gives different last bits: the deploy model must sum integer codes instead.
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.up = nn.ConvTranspose2d(48, 16, 4, stride=2, padding=1)
        self.up_grouped = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=0, output_padding=1, groups=4)

    def forward(self, x):
        return self.up_grouped(torch.relu(self.up(torch.relu(self.conv(x)))))


class DecoderConvTranspose(nn.Module):
    # 512 input channels x a 4x4 kernel: a code sum can pass 2^24, so the deploy model sums the
    # weight codes as 16 * high + low in two exact ConvTransposes (lower_qoperator.hpp).
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 512, 3, padding=1)
        self.up = nn.ConvTranspose2d(512, 8, 4, stride=2, padding=1)

    def forward(self, x):
        return self.up(torch.relu(self.conv(x)))


class MatMul3d(nn.Module):
    # nn.Linear on [B, T, C] exports MatMul with a constant [C, K] weight + Add.
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 12)
        self.b = nn.Linear(12, 5)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class GemmTransB(nn.Module):
    # nn.Linear on [B, C] exports Gemm(transB=1) with the [K, C] weight.
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(20, 16)
        self.b = nn.Linear(16, 6)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class AvgPool(nn.Module):
    # The first AveragePool requantizes into the Conv after it (QLinearConv); the last one feeds
    # a Linear through Flatten (Conv integer path with a float output).
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 2 * 2, 5)

    def forward(self, x):
        y = nn.functional.avg_pool2d(torch.relu(self.a(x)), 2)
        y = nn.functional.avg_pool2d(torch.relu(self.b(y)), 2)
        return self.fc(torch.flatten(y, 1))


class Attention(nn.Module):
    # Two-head self-attention on [B, T, C]: Q·Kᵀ ([B, H, T, d] x [B, H, d, T]) and A·V are MatMuls
    # of two activations, quantized on both inputs (MatMulInteger of two int8 tensors, batch dims
    # broadcast), besides the four Linear layers.
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads, self.d = heads, dim // heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        b, t, c = x.shape
        split = lambda y: y.reshape(b, t, self.heads, self.d).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        a = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / self.d ** 0.5, dim=-1)
        return self.o(torch.matmul(a, v).transpose(1, 2).reshape(b, t, c))


class ResidualConcat(nn.Module):
    # A residual block (Conv -> Relu -> Conv, Add, Relu) and a Concat of two branches before the
    # head: what Vitis' keep_add_layer_accuracy false and output quantization reach. (No Sigmoid:
    # its float result is MLAS's own approximation, outside the bit-exactness claim.)
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(4, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.side = nn.Conv2d(4, 2, 1)
        self.fc = nn.Linear(6 * 5 * 5, 5)

    def forward(self, x):
        r = torch.relu(x + self.c2(torch.relu(self.c1(x))))
        y = torch.cat([r, torch.relu(self.side(x))], dim=1)
        return self.fc(torch.flatten(y, 1))


class SharedWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


CASES = [
    ("conv2d-relu-linear", ConvReluLinear, (3, 6, 6)),
    ("depthwise-pointwise", DepthwisePointwise, (6, 7, 7)),
    ("conv3d", Conv3d, (2, 4, 6, 6)),
    ("convtranspose2d", ConvTranspose, (3, 6, 6)),
    ("convtranspose2d-decoder", DecoderConvTranspose, (3, 4, 4)),
    ("matmul-3d", MatMul3d, (7, 16)),
    ("gemm-transb", GemmTransB, (20,)),
    ("averagepool2d", AvgPool, (3, 8, 8)),
    ("attention", Attention, (7, 16)),
    ("residual-concat", ResidualConcat, (4, 5, 5)),
]
# Cases whose record must hold this many layers with a second quantized activation (scale_d_b).
TWO_ACTIVATION_LAYERS = {"attention": 2}


def export(module, shape, path):
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, torch.zeros((1,) + shape), path, opset_version=13, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})


def rel_err(y, ref):
    return float(np.linalg.norm((y - ref).ravel()) / np.linalg.norm(ref.ravel()))


def check_config(label, driver, model, calib, x, work, config, ref, max_err, failures):
    r = run_driver(driver, model, calib, x, work, config)
    if r.returncode != 0:
        failures.append(f"[{label}] the driver failed: {r.stderr.strip()}")
        return
    with open(os.path.join(work, "record.json")) as f:
        two = sum("scale_d_b" in e for e in json.load(f).values())
    want = TWO_ACTIVATION_LAYERS.get(label.split(" ")[0], 0)
    if two != want:
        failures.append(f"[{label}] {two} layers quantize two activations, expected {want}")
    fq = compare_fake_quant(label, work, x, failures)
    dp = compare_deploy(label, work, x, failures)
    errs = {k: rel_err(y, ref) for k, y in (("fake-quant", fq), ("deploy", dp)) if y is not None}
    print(f"[{label}] relative error vs float: " + ", ".join(f"{k} {v:.4f}" for k, v in errs.items()))
    for k, v in errs.items():
        if not v < max_err:
            failures.append(f"[{label}] {k} relative error {v:.4f} vs float exceeds {max_err}")


def check_points(label, work, failures):
    """Every tensor record.json lists as quantized where it is made is read, in both saved models,
    through a rounding chain or QuantizeLinear that writes it from '<tensor>_unquantized' (or,
    for a graph input, through its quantized copy); the model output is one of them."""
    import onnx
    with open(os.path.join(work, "record.json")) as f:
        points = json.load(f).get("quantized_tensors", {})
    if "y" not in points:
        failures.append(f"[{label}] the model output 'y' is not among the quantized tensors {sorted(points)}")
    for kind in ("fake_quant", "deploy"):
        g = onnx.load(os.path.join(work, f"model_{kind}_model.onnx")).graph
        made = {o for n in g.node for o in n.output}
        inputs = {i.name for i in g.input}
        for t in points:
            if t in inputs:
                continue
            if t + "_unquantized" not in made or t not in made:
                failures.append(f"[{label}] {kind}: tensor '{t}' is not quantized where it is made")
    print(f"[{label}] tensors quantized where they are made: {len(points)}")


def main():
    driver, work = sys.argv[1:3]
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    failures = []
    for label, cls, shape in CASES:
        case = os.path.join(work, label)
        os.makedirs(case, exist_ok=True)
        model = os.path.join(case, "float.onnx")
        export(cls(), shape, model)
        calib = os.path.join(case, "calib.npy")
        np.save(calib, rng.standard_normal((CALIB_ROWS,) + shape).astype(np.float32))
        x = np.concatenate([np.load(calib), rng.standard_normal((TEST_ROWS,) + shape).astype(np.float32)])
        ref = session(model, False).run(None, {"x": x})[0]
        check_config(label, driver, model, calib, x, case, None, ref, REL_ERR_MAX, failures)
        # The other lowering paths: symmetric activations (Relu -> int8 Max(q, zero point) after
        # QLinearConv) and 4-bit grids (int8 Clip after QLinearConv, Clip before QuantizeLinear).
        with open(os.path.join(case, "config_used.json")) as f:
            cfg = json.load(f)
        cfg["activation_offset"] = False
        cfg["activation"]["asymmetric"] = False
        cfg["activation"]["num_bits"] = cfg["weights"]["num_bits"] = 4
        check_config(label + " w4a4-sym", driver, model, calib, x, os.path.join(case, "w4a4"), cfg, ref,
                     REL_ERR_MAX_4BIT, failures)
        # Learned rounding on every kind's own weight columns (short run; the Gemm cases have one
        # column per calibration row).
        with open(os.path.join(case, "config_used.json")) as f:
            cfg = json.load(f)
        cfg["weights"].update(num_bits=4, preset="pytorch", wts_algo="adaround",
                              adaround={"iterations": 100, "batch": 16, "seed": 1})
        check_config(label + " w4a8-adaround", driver, model, calib, x, os.path.join(case, "adaround"), cfg, ref,
                     REL_ERR_MAX_4BIT, failures)
        # Vitis AI's default config as vai_q_pytorch's guide writes it: power-of-two diffs grids,
        # std_round (activations half up), 8-bit biases on their own grids, every layer output
        # and every Add / Concat input and output quantized where it is made.
        check_config(label + " vitis-default", driver, model, calib, x, os.path.join(case, "vitis"),
                     vitis_configs.default(), ref, REL_ERR_MAX_VITIS, failures)
        check_points(label + " vitis-default", os.path.join(case, "vitis"), failures)

    # Shared weights: quantizing one layer's copy would silently change the other's.
    case = os.path.join(work, "shared-weight")
    os.makedirs(case, exist_ok=True)
    model = os.path.join(case, "float.onnx")
    export(SharedWeight(), (8,), model)
    import onnx
    shared = [i.name for i in onnx.load(model).graph.initializer if list(i.dims) == [8, 8]]
    calib = os.path.join(case, "calib.npy")
    np.save(calib, rng.standard_normal((CALIB_ROWS, 8)).astype(np.float32))
    r = run_driver(driver, model, calib, np.load(calib), case)
    msg = r.stderr.strip()
    print(f"[shared-weight] exit {r.returncode}: {msg}")
    if len(shared) != 1:
        failures.append(f"[shared-weight] the export did not share one [8, 8] initializer: {shared}")
    elif r.returncode == 0 or "share the weight" not in msg or shared[0] not in msg:
        failures.append(f"[shared-weight] two layers sharing '{shared[0]}' must be refused naming it, got exit "
                        f"{r.returncode}: {msg}")
    if os.path.exists(os.path.join(case, "model_deploy_model.onnx")):
        failures.append("[shared-weight] a refused model still wrote a deploy model")

    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    print("layers: all checks passed" if not failures else f"layers: {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
