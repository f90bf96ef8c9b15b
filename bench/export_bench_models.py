#!/usr/bin/env python3
"""Writes the executor benchmark's models, each as OUT/<name>/model.onnx +
test_data_set_0/{input_0.pb, output_0.pb} (the layout tests/graph_peers/export_models.py uses,
outputs from ONNX Runtime, one thread), with random weights (seed 0):

- torchvision_resnet18: torchvision's resnet18, batch 1, 3x224x224, opset 13;
- bert_encoder: a BERT-style encoder, 4 post-LayerNorm layers of hidden 256, 4 heads, FFN 1024
  (GELU), over 128 token ids (word + position embeddings via Gather), opset 17 so LayerNorm is
  one LayerNormalization node as recent exporters write it.

usage: export_bench_models.py OUT_DIR [name ...]
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "graph_peers"))
from export_models import export_module as export  # noqa: E402


class EncoderLayer(torch.nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int):
        super().__init__()
        self.heads = heads
        self.q = torch.nn.Linear(hidden, hidden)
        self.k = torch.nn.Linear(hidden, hidden)
        self.v = torch.nn.Linear(hidden, hidden)
        self.o = torch.nn.Linear(hidden, hidden)
        self.ln1 = torch.nn.LayerNorm(hidden)
        self.up = torch.nn.Linear(hidden, ffn)
        self.down = torch.nn.Linear(ffn, hidden)
        self.ln2 = torch.nn.LayerNorm(hidden)

    def forward(self, x):  # [N, S, H]
        n, s, h = x.shape
        d = h // self.heads

        def split(t):
            return t.reshape(n, s, self.heads, d).transpose(1, 2)  # [N, heads, S, d]

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        a = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d), dim=-1)
        ctx = torch.matmul(a, v).transpose(1, 2).reshape(n, s, h)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.down(torch.nn.functional.gelu(self.up(x))))


class BertEncoder(torch.nn.Module):
    def __init__(self, vocab=8000, seq=128, hidden=256, heads=4, ffn=1024, layers=4):
        super().__init__()
        self.word = torch.nn.Embedding(vocab, hidden)
        self.pos = torch.nn.Parameter(torch.randn(1, seq, hidden) * 0.02)
        self.ln = torch.nn.LayerNorm(hidden)
        self.layers = torch.nn.ModuleList(EncoderLayer(hidden, heads, ffn) for _ in range(layers))

    def forward(self, ids):  # [N, S] int64
        x = self.ln(self.word(ids) + self.pos)
        for layer in self.layers:
            x = layer(x)
        return x


def main() -> int:
    out = sys.argv[1]
    names = sys.argv[2:] or ["torchvision_resnet18", "bert_encoder"]
    os.makedirs(out, exist_ok=True)
    if "torchvision_resnet18" in names:
        import torchvision
        torch.manual_seed(0)
        x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32))
        export(out, "torchvision_resnet18", torchvision.models.resnet18(), x, 13)
    if "bert_encoder" in names:
        torch.manual_seed(0)
        ids = torch.from_numpy(np.random.default_rng(1).integers(0, 8000, (1, 128), dtype=np.int64))
        export(out, "bert_encoder", BertEncoder(), ids, 17)
    return 0


if __name__ == "__main__":
    sys.exit(main())
