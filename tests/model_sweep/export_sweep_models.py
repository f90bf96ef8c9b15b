"""Exports the models of the wide sweep (issue 16) with random weights, fixed seeds, opset 17.

usage: export_sweep_models.py OUT_DIR [--set light|full] [--only NAME[,NAME...]]

For each model: OUT_DIR/<name>/model.onnx (torch.onnx.export, batch axis dynamic),
OUT_DIR/<name>/calib.npz (16 samples, one array per model input, by input name: what
`amctq quantize --calib` and ONNX Runtime's calibration reader both read) and
OUT_DIR/<name>/test.npz (64 other samples, same layout) on which the sweep measures.

Every BatchNorm gets random running statistics and affine parameters before export
(mean ~ N(0, 0.1), var ~ U(0.5, 2), gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1)) and every model is
exported in eval() mode: with torchvision's default initialisation several classifiers
(mobilenet_v3, mnasnet, efficientnet) give logits around 1e-7, on which an SQNR means nothing.

Models:
  torchvision classification (0.14): every builder of torchvision.models whose float ONNX file
    is under 100 MiB (104,857,600 bytes; the eval-mode file, so inception_v3 counts without
    its training-only AuxLogits branch: 90.9 MiB). Left out, larger than that: alexnet,
    convnext_tiny/small/base/large, densenet161, efficientnet_b5/b6/b7, efficientnet_v2_m/l,
    maxvit_t, regnet_x_8gf/16gf/32gf, regnet_y_8gf/16gf/32gf/128gf, resnet101, resnet152,
    resnext101_32x8d, resnext101_64x4d, swin_t/s/b, swin_v2_t/s/b, vgg11/13/16/19 (and _bn),
    vit_b_16, vit_b_32, vit_l_16, vit_l_32, vit_h_14, wide_resnet50_2, wide_resnet101_2.
    Inputs 96x96 (all of them accept it; inception_v3 needs at least 75x75).
  vit:   torchvision VisionTransformer, 32x32 image, patch 8, 2 layers, 4 heads, hidden 64, MLP 128
         (the head, which torchvision initialises to zeros, gets N(0, 1/64) weights).
  swin:  torchvision SwinTransformer, 32x32 image, patch 2, embed 32, depths (2, 2), heads (2, 4),
         window 4 (shifted windows, relative position bias, patch merging).
  bert:  a BERT encoder as HuggingFace writes it: int64 input_ids and attention_mask, word +
         position + token-type embeddings (Gather), additive mask (1 - mask) * finfo.min, LayerNorm,
         Q/K/V Linear, MatMul Q K^T, Softmax, MatMul with V, erf GELU, residual Adds, 2 layers, pooler.
  gpt2:  a GPT-2 block stack: Conv1D-style addmm (Gemm with a [in, out] weight), causal mask
         from a torch.tril buffer through torch.where, new-GELU (tanh, pow), ln_f, an untied LM head.
  yolo:  a YOLOv8-style detector: Conv+BN+SiLU, C2f (split / concat), SPPF (MaxPool 5 three
         times), nearest Upsample (Resize), Concat, three detect heads with DFL (Softmax + a
         fixed 1x1 Conv), 128x128 input.
  unet:  a U-Net, Conv+BN+ReLU, MaxPool, bilinear Resize up (align_corners False on two levels,
         True on one), skip Concat, 64x64 input.

The light set (a few minutes in the sweep) covers every family: resnet18, mobilenet_v3_small,
efficientnet_b0, vit, swin, bert, gpt2, yolo, unet. The full set adds every torchvision model.
"""
import argparse
import math
import os
import sys

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
except ImportError as e:
    print(f"FAIL: the model sweep needs torch and torchvision: {e}", file=sys.stderr)
    sys.exit(1)

OPSET = 17
# 64 test samples: on 8 (80 logits for a 10-class model) the SQNR of two nearly equal
# quantizations moved by 2 dB with the rounding noise of a few values.
N_CALIB, N_TEST = 16, 64
MAX_BYTES = 100 * 1024 * 1024

# torchvision classification builders left out because their float file is 100 MiB or more
# (checked by the export: a model in TORCHVISION whose file reaches MAX_BYTES fails it).
TOO_LARGE = {
    "alexnet", "convnext_tiny", "convnext_small", "convnext_base", "convnext_large", "densenet161",
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_m", "efficientnet_v2_l",
    "maxvit_t", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf", "regnet_y_8gf", "regnet_y_16gf",
    "regnet_y_32gf", "regnet_y_128gf", "resnet101", "resnet152", "resnext101_32x8d", "resnext101_64x4d",
    "swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b", "vgg11", "vgg11_bn", "vgg13",
    "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32",
    "vit_h_14", "wide_resnet50_2", "wide_resnet101_2",
}

LIGHT = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "vit", "swin", "bert", "gpt2", "yolo", "unet"]
CUSTOM = ["vit", "swin", "bert", "gpt2", "yolo", "unet"]


def torchvision_classifiers():
    return sorted(n for n in torchvision.models.list_models(module=torchvision.models) if n not in TOO_LARGE)


def randomise_batchnorm(model, gen):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=gen) * 0.1)


# ---------------------------------------------------------------- transformer blocks

class BertLayer(nn.Module):
    def __init__(self, hidden, heads, inter):
        super().__init__()
        self.heads, self.dh = heads, hidden // heads
        self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.attn_out, self.attn_norm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate, self.output = nn.Linear(hidden, inter), nn.Linear(inter, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=1e-12)

    def split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.dh).permute(0, 2, 1, 3)

    def forward(self, h, ext_mask):
        q, k, v = self.split(self.query(h)), self.split(self.key(h)), self.split(self.value(h))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + ext_mask
        ctx = torch.matmul(nn.functional.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        ctx = ctx.view(ctx.shape[0], ctx.shape[1], -1)
        h = self.attn_norm(self.attn_out(ctx) + h)
        return self.out_norm(self.output(F.gelu(self.intermediate(h))) + h)


class Bert(nn.Module):
    def __init__(self, vocab=1000, max_pos=64, hidden=64, heads=4, inter=128, layers=2):
        super().__init__()
        self.word, self.position = nn.Embedding(vocab, hidden), nn.Embedding(max_pos, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.register_buffer("position_ids", torch.arange(max_pos).expand(1, -1))
        self.register_buffer("token_type_ids", torch.zeros(1, max_pos, dtype=torch.long))
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, inter) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)

    def forward(self, input_ids, attention_mask):
        s = input_ids.shape[1]
        h = self.word(input_ids) + self.token_type(self.token_type_ids[:, :s]) + self.position(self.position_ids[:, :s])
        h = self.norm(h)
        ext = attention_mask[:, None, None, :].to(torch.float32)
        ext = (1.0 - ext) * torch.finfo(torch.float32).min
        for layer in self.layers:
            h = layer(h, ext)
        return h, torch.tanh(self.pooler(h[:, 0]))


class Conv1D(nn.Module):
    """HuggingFace GPT-2's Conv1D: y = x W + b with W stored [in, out], through addmm."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.randn(nf) * 0.02)
        self.nf = nf

    def forward(self, x):
        shape = x.size()[:-1] + (self.nf,)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(shape)


def new_gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Block(nn.Module):
    def __init__(self, hidden, heads, max_pos):
        super().__init__()
        self.heads, self.dh = heads, hidden // heads
        self.ln_1, self.ln_2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.c_attn, self.c_proj = Conv1D(3 * hidden, hidden), Conv1D(hidden, hidden)
        self.c_fc, self.mlp_proj = Conv1D(4 * hidden, hidden), Conv1D(hidden, 4 * hidden)
        self.register_buffer("bias", torch.tril(torch.ones(max_pos, max_pos, dtype=torch.bool)).view(1, 1, max_pos, max_pos))

    def split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.dh).permute(0, 2, 1, 3)

    def forward(self, x):
        q, k, v = self.c_attn(self.ln_1(x)).split(x.shape[-1], dim=2)
        q, k, v = self.split(q), self.split(k), self.split(v)
        w = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], v.size(-1) ** 0.5, dtype=q.dtype)
        ql, kl = q.size(-2), k.size(-2)
        causal = self.bias[:, :, kl - ql:kl, :kl]
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        a = torch.matmul(nn.functional.softmax(w, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        a = a.view(a.shape[0], a.shape[1], -1)
        x = x + self.c_proj(a)
        return x + self.mlp_proj(new_gelu(self.c_fc(self.ln_2(x))))


class GPT2(nn.Module):
    def __init__(self, vocab=1000, max_pos=64, hidden=64, heads=4, layers=2):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, hidden), nn.Embedding(max_pos, hidden)
        self.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0))
        self.blocks = nn.ModuleList(GPT2Block(hidden, heads, max_pos) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, input_ids):
        h = self.wte(input_ids) + self.wpe(self.position_ids[:, :input_ids.shape[1]])
        for b in self.blocks:
            h = b(h)
        return self.lm_head(self.ln_f(h))


# ---------------------------------------------------------------- YOLO-style detector

class ConvBnSilu(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)

    def forward(self, x):
        return F.silu(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut=True):
        super().__init__()
        self.cv1, self.cv2, self.add = ConvBnSilu(c, c, 3), ConvBnSilu(c, c, 3), shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=False):
        super().__init__()
        self.c = c2 // 2
        self.cv1 = ConvBnSilu(c1, 2 * self.c, 1)
        self.cv2 = ConvBnSilu((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).split((self.c, self.c), 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1, self.cv2 = ConvBnSilu(c1, c_, 1), ConvBnSilu(c_ * 4, c2, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Detect(nn.Module):
    def __init__(self, nc, ch, reg_max=16):
        super().__init__()
        self.nc, self.reg_max = nc, reg_max
        c2, c3 = max(16, ch[0] // 4, reg_max * 4), max(ch[0], nc)
        self.box = nn.ModuleList(nn.Sequential(ConvBnSilu(x, c2, 3), ConvBnSilu(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch)
        self.cls = nn.ModuleList(nn.Sequential(ConvBnSilu(x, c3, 3), ConvBnSilu(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        self.dfl.weight.data[:] = torch.arange(reg_max, dtype=torch.float).view(1, reg_max, 1, 1)

    def forward(self, xs):
        b = xs[0].shape[0]
        out = torch.cat([torch.cat((self.box[i](x), self.cls[i](x)), 1).view(b, 4 * self.reg_max + self.nc, -1)
                         for i, x in enumerate(xs)], 2)
        box, cls = out.split((4 * self.reg_max, self.nc), 1)
        a = box.shape[2]
        dist = self.dfl(box.view(b, 4, self.reg_max, a).transpose(2, 1).softmax(1)).view(b, 4, a)
        return torch.cat((dist, cls.sigmoid()), 1)


class Yolo(nn.Module):
    def __init__(self, nc=8, w=(16, 32, 64, 128, 128)):
        super().__init__()
        self.stem = nn.Sequential(ConvBnSilu(3, w[0], 3, 2), ConvBnSilu(w[0], w[1], 3, 2), C2f(w[1], w[1], 1, True))
        self.p3 = nn.Sequential(ConvBnSilu(w[1], w[2], 3, 2), C2f(w[2], w[2], 2, True))
        self.p4 = nn.Sequential(ConvBnSilu(w[2], w[3], 3, 2), C2f(w[3], w[3], 2, True))
        self.p5 = nn.Sequential(ConvBnSilu(w[3], w[4], 3, 2), C2f(w[4], w[4], 1, True), SPPF(w[4], w[4]))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.n4 = C2f(w[4] + w[3], w[3])
        self.n3 = C2f(w[3] + w[2], w[2])
        self.d3 = ConvBnSilu(w[2], w[2], 3, 2)
        self.n4b = C2f(w[2] + w[3], w[3])
        self.d4 = ConvBnSilu(w[3], w[3], 3, 2)
        self.n5b = C2f(w[3] + w[4], w[4])
        self.detect = Detect(nc, (w[2], w[3], w[4]))

    def forward(self, x):
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        t4 = self.n4(torch.cat((self.up(p5), p4), 1))
        o3 = self.n3(torch.cat((self.up(t4), p3), 1))
        o4 = self.n4b(torch.cat((self.d3(o3), t4), 1))
        o5 = self.n5b(torch.cat((self.d4(o4), p5), 1))
        return self.detect([o3, o4, o5])


# ---------------------------------------------------------------- U-Net

class DoubleConv(nn.Sequential):
    def __init__(self, c1, c2):
        super().__init__(nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
                         nn.Conv2d(c2, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, cin=3, ncls=2, w=(16, 32, 64, 128)):
        super().__init__()
        self.inc = DoubleConv(cin, w[0])
        self.downs = nn.ModuleList(DoubleConv(w[i], w[i + 1]) for i in range(3))
        self.ups = nn.ModuleList(DoubleConv(w[i + 1] + w[i], w[i]) for i in reversed(range(3)))
        self.align = [False, True, False]  # per decoder level, deepest first
        self.outc = nn.Conv2d(w[0], ncls, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for d in self.downs:
            skips.append(d(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up, align in zip(self.ups, self.align):
            s = skips.pop()
            y = F.interpolate(y, size=s.shape[-2:], mode="bilinear", align_corners=align)
            y = up(torch.cat((s, y), 1))
        return self.outc(y)


# ---------------------------------------------------------------- building and data

def build(name):
    """(model, {input name: (shape without batch, dtype or token range)}) for one sweep model."""
    tv = torchvision.models
    if name == "vit":
        m = tv.vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4,
                                                     hidden_dim=64, mlp_dim=128, num_classes=10)
        nn.init.normal_(m.heads.head.weight, std=64 ** -0.5)  # torchvision zeroes the head: outputs would be 0
        return m, {"x": ("image", (3, 32, 32))}
    if name == "swin":
        m = tv.swin_transformer.SwinTransformer(patch_size=[2, 2], embed_dim=32, depths=[2, 2], num_heads=[2, 4],
                                                window_size=[4, 4], stochastic_depth_prob=0.0, num_classes=10)
        return m, {"x": ("image", (3, 32, 32))}
    if name == "bert":
        return Bert(), {"input_ids": ("tokens", (16,), 1000), "attention_mask": ("mask", (16,))}
    if name == "gpt2":
        return GPT2(), {"input_ids": ("tokens", (16,), 1000)}
    if name == "yolo":
        return Yolo(), {"images": ("image", (3, 128, 128))}
    if name == "unet":
        return UNet(), {"x": ("image", (3, 64, 64))}
    # inception_v3 keeps PyTorch's default initialisation: torchvision's init_weights (truncated
    # normal, std 0.1) makes its random logits about 1e9, on which both tools reach only ~21-23 dB.
    kwargs = {"init_weights": name == "googlenet"} if name in ("googlenet", "inception_v3") else {}
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
    return tv.get_model(name, weights=None, **kwargs), {"x": ("image", (3, 96, 96))}


def make_data(spec, n, rng):
    data = {}
    for name, s in spec.items():
        kind, shape = s[0], s[1]
        if kind == "image":
            data[name] = rng.standard_normal((n,) + shape).astype(np.float32)
        elif kind == "tokens":
            data[name] = rng.integers(0, s[2], size=(n,) + shape).astype(np.int64)
        else:  # attention mask: ones, then zeros after a random length (padding)
            lengths = rng.integers(shape[0] // 2, shape[0] + 1, size=n)
            data[name] = (np.arange(shape[0])[None, :] < lengths[:, None]).astype(np.int64)
    return data


def export(name, out_dir, seed=0):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model, spec = build(name)
    randomise_batchnorm(model, gen)
    model.eval()
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed + 2)
    calib, test = make_data(spec, N_CALIB, rng), make_data(spec, N_TEST, rng)
    args = tuple(torch.from_numpy(test[k][:2]) for k in spec)
    path = os.path.join(folder, "model.onnx")
    with torch.no_grad():
        outs = model(*args)
    n_out = len(outs) if isinstance(outs, (tuple, list)) else 1
    out_names = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
    dyn = {k: {0: "batch"} for k in list(spec) + out_names}
    torch.onnx.export(model, args, path, opset_version=OPSET, input_names=list(spec), output_names=out_names,
                      dynamic_axes=dyn, do_constant_folding=True)
    size = os.path.getsize(path)
    if size >= MAX_BYTES:
        raise RuntimeError(f"{name}: the float file is {size / 2**20:.1f} MiB, not under 100 MiB")
    np.savez(os.path.join(folder, "calib.npz"), **calib)
    np.savez(os.path.join(folder, "test.npz"), **test)
    return path, size


def model_names(which):
    return LIGHT if which == "light" else torchvision_classifiers() + CUSTOM


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--set", choices=["light", "full"], default="light")
    ap.add_argument("--only", default="", help="comma-separated model names (default: the whole set)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    names = a.only.split(",") if a.only else model_names(a.set)
    failed = []
    for name in names:
        try:
            path, size = export(name, a.out_dir)
            print(f"exported {name}: {path} ({size / 2**20:.1f} MiB)", flush=True)
        except Exception as e:  # one model's export failing must not hide the others
            failed.append(name)
            print(f"FAIL: export of {name}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                  file=sys.stderr, flush=True)
    if failed:
        print(f"FAIL: {len(failed)} export(s) failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
