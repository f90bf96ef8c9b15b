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

Usage: .venv/bin/python tests/golden/make_golden.py > tests/golden/activation_golden.json
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


def main():
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the peers print progress on stdout
    import onnxruntime
    import torch
    out = {"n": N, "generator": "splitmix64 (see make_golden.py)", "onnxruntime_version": onnxruntime.__version__,
           "torch_version": torch.__version__, "datasets": {}}
    for name in ("normal", "laplace_outliers", "relu", "bimodal"):
        x = dataset(name)
        out["datasets"][name] = {
            "min": float(x.min()), "max": float(x.max()), "sum_first_100": float(np.sum(x[:100], dtype=np.float64)),
            "onnxruntime": ort_results(x), "pytorch": torch_results(x)}
        print(name, "done", file=sys.stderr)
    json.dump(out, real_stdout, indent=1)
    real_stdout.write("\n")


if __name__ == "__main__":
    main()
