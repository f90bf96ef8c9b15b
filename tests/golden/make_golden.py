#!/usr/bin/env python3
"""Reference calibration thresholds from the real peers, for tests/algorithms/test_activation_golden.cpp.

Data: four distributions from a generator both this script and the C++ test implement
(splitmix64 -> uniform doubles -> Box-Muller / inverse CDF, computed with scalar libm calls in
double, then rounded to float32), so no data file is needed.

Peers (single batch, so every peer histograms exactly the data):
  * ONNX Runtime calibrate.HistogramCollector: entropy (2048 bins, 128 quantized bins, the
    EntropyCalibrater's symmetric=False collection) and percentile (2048 bins, 99.99, symmetric
    |x| and asymmetric two-sided); quant_utils.compute_scale_zp on the min/max range.
  * PyTorch: MinMaxObserver (quint8 affine, qint8 symmetric) and HistogramObserver (bins=2048,
    quint8 affine) -> its _non_linear_param_search range and qparams.

A second PyTorch (--torch2 PYTHON, an interpreter with another torch release) adds its
HistogramObserver numbers as "pytorch_2". Debian 12's torch 1.13 histograms its first batch over
[int(min), int(max)]; torch 2.x over [min, max], which is what amctq's pytorch preset does
unless told to emulate 1.13. The stored file was made with Debian's torch 1.13.0a0 and PyPI's
torch 2.5.1 (installed only for this, in a scratch venv; CI does not need it):

  python3 -m venv /tmp/t2 && /tmp/t2/bin/pip install torch==2.5.1 numpy
  .venv/bin/python tests/golden/make_golden.py --torch2 /tmp/t2/bin/python > tests/golden/activation_golden.json

Without --torch2 the "pytorch_2" entries are left out (the C++ test then skips those checks).
"""
import json
import math
import sys

import numpy as np

MASK = (1 << 64) - 1
N = 20000


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):  # in (0, 1)
        return ((self.next() >> 11) + 0.5) * (1.0 / 9007199254740992.0)

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def dataset(name):
    g = SplitMix64({"normal": 1, "laplace_outliers": 2, "relu": 3, "bimodal": 4}[name])
    out = []
    for i in range(N):
        if name == "normal":
            x = g.normal()
        elif name == "laplace_outliers":
            u = g.uniform() - 0.5
            x = -0.5 * math.copysign(1.0, u) * math.log(1.0 - 2.0 * abs(u))
            if i % 997 == 0:
                x = math.copysign(8.0 + 8.0 * g.uniform(), u)
        elif name == "relu":
            x = max(0.2 + g.normal(), 0.0)
        else:
            x = -2.0 + 0.5 * g.normal() if g.uniform() < 0.4 else 3.0 + 0.8 * g.normal()
        out.append(x)
    return np.array(out, dtype=np.float32)


def ort_results(x):
    from onnxruntime.quantization.calibrate import HistogramCollector
    from onnxruntime.quantization.quant_utils import compute_scale_zp

    res = {}
    c = HistogramCollector("entropy", False, 2048, 128, 99.99, "same")
    c.collect({"t": [x]})
    lo, hi = c.compute_collection_result()["t"][:2]
    res["entropy"] = [float(lo), float(hi)]
    for sym in (True, False):
        c = HistogramCollector("percentile", sym, 2048, 128, 99.99, "same")
        c.collect({"t": [x]})
        lo, hi = c.compute_collection_result()["t"][:2]
        res["percentile_symmetric" if sym else "percentile_asymmetric"] = [float(lo), float(hi)]
    mn, mx = np.float32(x.min()), np.float32(x.max())
    zp, s = compute_scale_zp(mn, mx, np.uint8(0), np.uint8(255), symmetric=False)
    res["minmax_uint8"] = {"scale": float(s), "zero_point": int(zp)}
    zp, s = compute_scale_zp(mn, mx, np.int8(-127), np.int8(127), symmetric=True)
    res["minmax_int8_symmetric"] = {"scale": float(s), "zero_point": int(zp)}
    return res


def torch_results(x):
    import torch
    from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver

    t = torch.from_numpy(x)
    res = {}
    o = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    o(t)
    s, z = o.calculate_qparams()
    res["minmax_quint8"] = {"scale": float(s), "zero_point": int(z)}
    o = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    o(t)
    s, z = o.calculate_qparams()
    res["minmax_qint8_symmetric"] = {"scale": float(s), "zero_point": int(z)}
    h = HistogramObserver(bins=2048, dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    h(t)
    lo, hi = h._non_linear_param_search()
    s, z = h.calculate_qparams()
    res["histogram"] = {"min": float(lo), "max": float(hi), "scale": float(s), "zero_point": int(z),
                        "data_min": float(h.min_val), "data_max": float(h.max_val)}
    return res


DATASETS = ("normal", "laplace_outliers", "relu", "bimodal")


def torch_only():
    """--torch-only: this interpreter's torch version and HistogramObserver results, as JSON."""
    import torch
    json.dump({"torch_version": torch.__version__,
               "datasets": {name: torch_results(dataset(name))["histogram"] for name in DATASETS}}, sys.stdout)


def main():
    import subprocess
    if sys.argv[1:] == ["--torch-only"]:
        return torch_only()
    second = None
    if len(sys.argv) == 3 and sys.argv[1] == "--torch2":
        second = json.loads(subprocess.run([sys.argv[2], __file__, "--torch-only"], capture_output=True, text=True,
                                           check=True).stdout)
    elif len(sys.argv) != 1:
        sys.exit("usage: make_golden.py [--torch2 PYTHON] > activation_golden.json")
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the peers print progress on stdout
    import onnxruntime
    import torch
    out = {"n": N, "generator": "splitmix64 (see make_golden.py)", "onnxruntime_version": onnxruntime.__version__,
           "torch_version": torch.__version__, "datasets": {}}
    if second:
        out["torch_2_version"] = second["torch_version"]
    for name in DATASETS:
        x = dataset(name)
        out["datasets"][name] = {
            "min": float(x.min()), "max": float(x.max()), "sum_first_100": float(np.sum(x[:100], dtype=np.float64)),
            "onnxruntime": ort_results(x), "pytorch": torch_results(x)}
        if second:
            out["datasets"][name]["pytorch_2"] = {"histogram": second["datasets"][name]}
        print(name, "done", file=sys.stderr)
    json.dump(out, real_stdout, indent=1)
    real_stdout.write("\n")


if __name__ == "__main__":
    main()
