"""Trains the small CNN that amctq's main job quantizes, on Fashion-MNIST (Debian package
dataset-fashion-mnist), and exports it to ONNX (opset 13) with BatchNormalization kept as its
own node, so that the pipeline's BN folding runs on it.

Writes, next to this script:
  fmnist_cnn.onnx          the float model, input "image" [N, 1, 28, 28] float32, output "logits" [N, 10]
  fmnist_calib.npy         256 training images (float32, normalised) for calibration
  fmnist_cnn.json          training facts: seed, epochs, float test accuracy

Usage: python models/train_fmnist_cnn.py [--epochs 3]   (torch from Debian's python3-torch)
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn

from fmnist_data import load  # noqa: E402  (this folder is on sys.path when run as a script)

HERE = os.path.dirname(os.path.abspath(__file__))


def conv_bn_relu(cin, cout, k, groups=1):
    return [nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def make_model():
    return nn.Sequential(
        *conv_bn_relu(1, 32, 3), nn.MaxPool2d(2),            # 32 x 14 x 14
        *conv_bn_relu(32, 32, 3, groups=32),                  # depthwise
        *conv_bn_relu(32, 64, 1), nn.MaxPool2d(2),            # pointwise, 64 x 7 x 7
        *conv_bn_relu(64, 64, 3), nn.AvgPool2d(7),            # 64 x 1 x 1
        nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i:i + 1000])).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred.numpy() == y).mean())


def train_epoch(model, opt, x, y, order, after_step=None, batch=128):
    """One pass over x[order] in batches (the last partial batch dropped); returns the last loss."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    loss = None
    for i in range(0, len(order) - batch + 1, batch):
        idx = order[i:i + batch]
        opt.zero_grad()
        loss = loss_fn(model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
        loss.backward()
        opt.step()
        if after_step:
            after_step()
    return loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=args.epochs * (len(xtr) // 128))
    t0 = time.time()
    for epoch in range(args.epochs):
        loss = train_epoch(model, opt, xtr, ytr, np.random.permutation(len(xtr)), sched.step)
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, test accuracy {accuracy(model, xte, yte):.4f}, "
              f"{time.time() - t0:.0f} s", flush=True)
    model.eval()
    acc = accuracy(model, xte, yte)
    onnx_path = os.path.join(HERE, "fmnist_cnn.onnx")
    torch.onnx.export(model, torch.from_numpy(xte[:1]), onnx_path, opset_version=13, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    calib = xtr[np.random.RandomState(1).choice(len(xtr), 256, replace=False)]
    np.save(os.path.join(HERE, "fmnist_calib.npy"), calib)
    with open(os.path.join(HERE, "fmnist_cnn.json"), "w") as f:
        json.dump({"seed": args.seed, "epochs": args.epochs, "float_test_accuracy": acc,
                   "torch": torch.__version__, "opset": 13}, f, indent=2)
    print(f"float test accuracy {acc:.4f}; wrote {onnx_path}")


if __name__ == "__main__":
    main()
