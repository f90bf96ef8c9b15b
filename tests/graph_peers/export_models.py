#!/usr/bin/env python3
"""Writes the peer models the reference executor is checked on, each as
OUT/<name>/model.onnx + test_data_set_0/{input_0.pb, output_0.pb}, where the outputs are
ONNX Runtime's (CPU, one thread) on a fixed-seed input:

- torchvision resnet18 and mobilenet_v2, random weights (seed 0), batch 1, 224x224, opset 13;
- a small model with ConvTranspose (groups, stride, output_padding) and Conv3d, opset 13;
- a small model of Resize / normalization / data movement as torch exports them, opset 17;
- ONNX's own light models (onnx/backend/test/data/light) except vgg19, fed the input ONNX's
  runner feeds them (arange / n). vgg19 is left out: its ConstantOfShape weights
  materialise 548 MB and the run would dominate CI time without covering a new op.

Fails loudly when torch, torchvision, onnx or onnxruntime is missing.

usage: export_models.py OUT_DIR
"""
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from onnx import numpy_helper

LIGHT_SKIP = {"light_vgg19"}


def write_case(out_dir: str, name: str, model_path: str, inputs: dict) -> None:
    case = os.path.join(out_dir, name)
    ds = os.path.join(case, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    if os.path.abspath(model_path) != os.path.abspath(os.path.join(case, "model.onnx")):
        shutil.copyfile(model_path, os.path.join(case, "model.onnx"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(case, "model.onnx"), opts, providers=["CPUExecutionProvider"])
    outputs = sess.run(None, inputs)
    for j, (n, v) in enumerate(inputs.items()):
        with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(v, n).SerializeToString())
    for j, (o, v) in enumerate(zip(sess.get_outputs(), outputs)):
        with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(v, o.name).SerializeToString())


class TransposeAnd3d(torch.nn.Module):
    """ConvTranspose2d (grouped, strided, output_padding) then a Conv3d over a lifted depth axis."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.up2 = torch.nn.ConvTranspose2d(6, 4, 2, stride=2, dilation=1)
        self.conv3d = torch.nn.Conv3d(1, 3, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), dilation=(1, 1, 1))

    def forward(self, x):
        y = torch.relu(self.up(x))
        y = self.up2(y)
        z = self.conv3d(y.unsqueeze(1))  # [N, 1, 4, H, W] -> [N, 3, 3, H/2, W/2]
        return torch.sigmoid(z)


class ResizeNormMovement(torch.nn.Module):
    """What U-Nets, detectors and transformers export around their convs: nn.Upsample /
    F.interpolate (nearest; bilinear with align_corners False and True, by scale and by size),
    GroupNorm (Reshape + InstanceNormalization), LayerNorm (LayerNormalization from opset 17),
    PixelShuffle (DepthToSpace), chunk and slicing with steps (Slice), repeat (Expand + Tile)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.gn = torch.nn.GroupNorm(4, 8)
        self.inorm = torch.nn.InstanceNorm2d(8, affine=True)
        self.ln = torch.nn.LayerNorm(8)
        self.shuffle = torch.nn.PixelShuffle(2)
        self.up = torch.nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):  # [N, 8, 6, 5]
        f = torch.nn.functional
        y = self.gn(self.conv(x)) + self.inorm(x)
        a = self.up(y)
        b = f.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        c = f.interpolate(y, size=(12, 10), mode="bilinear", align_corners=True)
        u = torch.cat([a, b, c], 1)                      # [N, 24, 12, 10]
        p, q, r = torch.chunk(u, 3, dim=1)
        s = self.shuffle(p + q) + r[:, ::4].repeat(1, 1, 2, 2)  # [N, 2, 24, 20]
        t = self.ln(u.permute(0, 2, 3, 1)[..., 1:9])     # [N, 12, 10, 8]
        return torch.cat([s[:, :, ::3, 1::2].flatten(1), t[:, -5:].flatten(1)], 1)


def export_torch(out_dir: str, name: str, module: torch.nn.Module, shape, opset: int = 13) -> None:
    x = torch.from_numpy(np.random.default_rng(1).standard_normal(shape, dtype=np.float32))
    export_module(out_dir, name, module, x, opset)


def export_module(out_dir: str, name: str, module: torch.nn.Module, x: torch.Tensor, opset: int) -> None:
    """OUT/<name>/ for `module` on input `x`: the model and its case files."""
    module.eval()
    case = os.path.join(out_dir, name)
    os.makedirs(case, exist_ok=True)
    path = os.path.join(case, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(module, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                          do_constant_folding=True)
    write_case(out_dir, name, path, {"input": x.numpy()})


def main() -> int:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    export_torch(out, "torchvision_resnet18", torchvision.models.resnet18(), (1, 3, 224, 224))
    torch.manual_seed(0)
    export_torch(out, "torchvision_mobilenet_v2", torchvision.models.mobilenet_v2(), (1, 3, 224, 224))
    torch.manual_seed(0)
    export_torch(out, "convtranspose_conv3d", TransposeAnd3d(), (2, 4, 9, 7))
    torch.manual_seed(0)
    export_torch(out, "resize_norm_movement", ResizeNormMovement(), (2, 8, 6, 5), opset=17)

    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    names = sorted(f[:-5] for f in os.listdir(light) if f.endswith(".onnx"))
    if not names:
        raise SystemExit(f"no light models under {light}")
    for name in names:
        if name in LIGHT_SKIP:
            continue
        path = os.path.join(light, name + ".onnx")
        model = onnx.load(path)
        inits = {i.name for i in model.graph.initializer}
        feeds = {}
        for vi in model.graph.input:
            if vi.name in inits:
                continue
            shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
            n = int(np.prod(shape))
            feeds[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)  # as onnx's runner does
        write_case(out, name, path, feeds)
    print(f"export_models: wrote {4 + len(names) - len(LIGHT_SKIP)} models to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
