"""Trains a small vision transformer (ViT) on Fashion-MNIST (Debian package dataset-fashion-mnist)
and exports it to ONNX (opset 17): the transformer that bench/compare_accuracy.py --model vit
quantizes with amctq, ONNX Runtime and PyTorch.

Model (plain PyTorch, written so that every op is visible in the ONNX graph):
  patch embedding  Conv 4x4 stride 4, 1 -> 64 channels: 7 x 7 = 49 tokens of width 64,
                   plus a learned position embedding [1, 49, 64]
  3 encoder blocks pre-LayerNorm: x + attention(LN(x)); x + MLP(LN(x))
    attention      4 heads of 16; Q, K, V and the output projection are nn.Linear (ONNX: MatMul
                   with a weight initializer + Add); Q K^T and A V are torch.matmul between two
                   activations (ONNX MatMul), scores scaled by 1/4 (Mul), Softmax on the last axis
    MLP            Linear 64 -> 128, GELU (ONNX: Div, Erf, Add, Mul, Mul), Linear 128 -> 64
  head             final LayerNorm, mean over the 49 tokens (ReduceMean), Linear 64 -> 10 (Gemm)
105 k parameters (0.44 MB ONNX). The input is the CNN's: "image" [N, 1, 28, 28] float32 with
fmnist_data's normalisation, so the CNN's calibration slice (fmnist_calib.npy, 256 training
images) serves this model unchanged; this script does not rewrite it.

Writes, next to this script:
  fmnist_vit.onnx          the float model, input "image" [N, 1, 28, 28], output "logits" [N, 10]
  fmnist_vit.json          training facts: seed, epochs, threads, time, float test accuracy

Meant to be deterministic for a given seed, thread count and BLAS: fixed seeds,
torch.use_deterministic_algorithms, no data augmentation, no dropout, one thread by default (on
the shared 2-core VMs a second OpenMP thread made steps slower, not faster, whenever another job
held a core). Two concurrent runs with --epochs 1 wrote byte-identical fmnist_vit.onnx files
(test accuracy 0.8285); a second full 10-epoch run has not been made.
Time: Debian's python3-torch calls whichever libblas.so.3 the system provides, by default the
reference BLAS (libblas3), with which an epoch takes ~440 s here; with OpenBLAS 55-60 s on an
idle core. The shipped model (10 epochs, 0.8922 float test accuracy; 0.766 after epoch 1, 0.857
after 5) took 1065 s, epochs 60-130 s as other jobs came and went on the 2-core VM. It was
trained with OpenBLAS without installing it system-wide:
  apt-get download libopenblas0-openmp && dpkg -x libopenblas0-openmp_*.deb blas
  LD_LIBRARY_PATH=$PWD/blas/usr/lib/x86_64-linux-gnu/openblas-openmp python models/train_fmnist_vit.py
(or `apt-get install libopenblas0`, which update-alternatives makes the system libblas.so.3).
fmnist_vit.json records the BLAS library that was loaded, the training time and the accuracy.

Usage: python models/train_fmnist_vit.py [--epochs 10] [--threads 1]   (torch from Debian's python3-torch)
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn

from fmnist_data import load  # noqa: E402  (this folder is on sys.path when run as a script)
from train_fmnist_cnn import accuracy  # noqa: E402  (test accuracy in batches of 1000, eval mode)

HERE = os.path.dirname(os.path.abspath(__file__))
DIM, HEADS, MLP, DEPTH, PATCH = 64, 4, 128, 3, 4
TOKENS = (28 // PATCH) ** 2


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim ** -0.5
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.softmax = nn.Softmax(dim=-1)

    def split(self, t):  # [N, T, C] -> [N, heads, T, head_dim]
        return t.reshape(-1, TOKENS, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        a = self.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale)
        return self.out(torch.matmul(a, v).transpose(1, 2).reshape(-1, TOKENS, self.heads * self.head_dim))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    def __init__(self, dim=DIM, heads=HEADS, mlp=MLP, depth=DEPTH, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, PATCH, stride=PATCH)
        self.pos = nn.Parameter(torch.randn(1, TOKENS, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos   # [N, 49, dim]
        return self.head(self.ln(self.blocks(x)).mean(1))


def make_model():
    return ViT()


def blas_library():
    """The BLAS shared library this process loaded (torch's matmuls run in it), from /proc/self/maps."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1]}
    return sorted(os.path.realpath(p) for p in libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05, foreach=True)
    steps = len(xtr) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = np.random.permutation(len(xtr))
        for i in range(steps):
            idx = order[i * args.batch:(i + 1) * args.batch]
            opt.zero_grad()
            loss = loss_fn(model(torch.from_numpy(xtr[idx])), torch.from_numpy(ytr[idx]))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, test accuracy {accuracy(model, xte, yte):.4f}, "
              f"{time.time() - t0:.0f} s", flush=True)
    train_s = time.time() - t0
    model.eval()
    acc = accuracy(model, xte, yte)
    onnx_path = os.path.join(HERE, "fmnist_vit.onnx")
    torch.onnx.export(model, torch.from_numpy(xte[:1]), onnx_path, opset_version=17, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    with open(os.path.join(HERE, "fmnist_vit.json"), "w") as f:
        json.dump({"seed": args.seed, "epochs": args.epochs, "threads": args.threads, "batch": args.batch,
                   "optimizer": f"AdamW lr {args.lr} one-cycle, weight decay 0.05, grad clip 1.0",
                   "dim": DIM, "heads": HEADS, "mlp": MLP, "depth": DEPTH, "patch": PATCH,
                   "parameters": sum(p.numel() for p in model.parameters()),
                   "train_seconds": round(train_s), "blas": [os.path.basename(p) for p in blas_library()], "float_test_accuracy": acc,
                   "torch": torch.__version__, "opset": 17}, f, indent=2)
    print(f"float test accuracy {acc:.4f}; {train_s:.0f} s; wrote {onnx_path}")


if __name__ == "__main__":
    main()
