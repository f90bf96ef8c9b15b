#!/usr/bin/env python3
"""Checks amctq's params_from_range presets against the peers' own Python, bit for bit.

Usage: check_presets.py PATH_TO_amctq_print_params

preset::onnxruntime is compared with onnxruntime.quantization.quant_utils.compute_scale_zp on the
range get_qmin_qmax_for_qType gives (int8 symmetric is [-127, 127] there, so amctq's spec sets
narrow_range), for int8, uint8, int16, uint16, int4 and uint4, symmetric and asymmetric.
preset::pytorch is compared with torch.ao.quantization MinMaxObserver and
PerChannelMinMaxObserver (calculate_qparams after observing the range), for qint8 and quint8,
symmetric and affine, plus qint8 on the customized range [-127, 127].
Scales must be equal as float32 bit patterns and zero points equal. Where a peer's scale is not
finite (a float32 range wider than FLT_MAX), amctq must refuse the range instead.
"""
import struct
import subprocess
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime
    import torch
    from onnxruntime.quantization.quant_utils import compute_scale_zp, get_qmin_qmax_for_qType
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver
except ImportError as e:  # CI installs the peers with scripts/setup.sh; a missing one is a failure
    sys.exit(f"check_presets.py: cannot import a peer ({e}); run scripts/setup.sh")

F32 = np.float32
FLT_MAX = float(np.finfo(F32).max)
TP = onnx.TensorProto


def f32(v):
    return F32(v)


def bits(v):
    return struct.unpack("<I", struct.pack("<f", float(v)))[0]


def make_ranges(rng, qspan):
    """(lo, hi) float32 pairs with lo <= hi: random, one-signed, degenerate, tiny, huge, and
    ranges whose asymmetric zero point is an exact .5 tie for a grid of qspan steps."""
    r = []
    for _ in range(120):
        a, b = sorted(rng.standard_normal(2) * 10.0 ** rng.uniform(-3, 3))
        r.append((a, b))
    for _ in range(30):
        a, b = sorted(np.abs(rng.standard_normal(2)) * 10.0 ** rng.uniform(-4, 4))
        r.append((a, b))          # all positive
        r.append((-b, -a))        # all negative
    for v in (0.0, 1.0, -1.0, 3.5, -2.25, 1e-30, -1e-30, 1e20):
        r.append((v, v))          # zero range
    for _ in range(10):
        a, b = sorted(rng.uniform(-1, 1, 2) * 10.0 ** rng.uniform(-45, -30))
        r.append((a, b))          # tiny, subnormal: under FLT_MIN and eps floors
    for lo, hi in ((-1e-7, 2e-7), (0.0, 1e-5), (-3e-5, 0.0), (-1e-38, 1e-38), (-1.4e-45, 1.4e-45),
                   (-1e38, 1e38), (-FLT_MAX, 0.0), (0.0, FLT_MAX), (-FLT_MAX, FLT_MAX), (-3e38, 2e38),
                   (-1.0, 1.0), (-1.0, 2.0), (-2.0, 1.0), (-0.0, 0.0), (-5.0, 5.0)):
        r.append((lo, hi))
    for k in list(range(0, 12)) + [int(v) for v in rng.integers(0, max(qspan - 1, 1), 20)]:
        if 2 * k + 1 >= 2 * qspan:
            continue
        e = 2.0 ** int(rng.integers(-20, 20))
        # s = 2 * qspan * e / qspan = 2e exactly, and -lo / s = k + 0.5
        r.append((-(2 * k + 1) * e, (2 * qspan - (2 * k + 1)) * e))
    for _ in range(30):  # symmetric-looking ranges (absmax from either side)
        a = abs(rng.standard_normal()) * 10.0 ** rng.uniform(-3, 3)
        r.append((-a, a * rng.uniform(0.5, 1.0)))
        r.append((-a * rng.uniform(0.5, 1.0), a))
    return [(f32(lo), f32(hi)) for lo, hi in r]


def finite_span(ranges):
    """Ranges whose float32 width max(hi, 0) - min(lo, 0) is finite. Per-channel queries use only
    these: one refused channel makes amctq refuse the whole call, so the wide ones are checked
    per tensor only."""
    with np.errstate(over="ignore"):
        return [(lo, hi) for lo, hi in ranges if np.isfinite(max(hi, F32(0)) - min(lo, F32(0)))]


def run_amctq(exe, queries):
    """queries: (preset, bits, signed, symmetric, narrow, [(lo, hi), ...]); returns per query a
    list of (scale_f32, zp) or the error text."""
    lines = []
    for preset, nbits, signed, sym, narrow, ranges in queries:
        parts = [preset, str(nbits), str(int(signed)), str(int(sym)), str(int(narrow)), str(len(ranges))]
        for lo, hi in ranges:
            parts += [float(lo).hex(), float(hi).hex()]
        lines.append(" ".join(parts))
    out = subprocess.run([exe], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True).stdout
    results = []
    for line in out.splitlines():
        if line.startswith("error"):
            results.append(line)
            continue
        tok = line.split()[1:]
        results.append([(f32(float.fromhex(tok[i])), int(tok[i + 1])) for i in range(0, len(tok), 2)])
    if len(results) != len(queries):
        sys.exit(f"check_presets.py: {exe} answered {len(results)} lines for {len(queries)} queries")
    return results


def ort_params(qtype, symmetric, lo, hi):
    qmin, qmax = get_qmin_qmax_for_qType(qtype, symmetric=symmetric)
    zp, scale = compute_scale_zp(np.array(lo, F32), np.array(hi, F32), qmin, qmax, symmetric=symmetric)
    return f32(scale), int(zp), int(qmin), int(qmax)


def torch_params(dtype, symmetric, ranges, qrange=None, per_channel=False):
    kw = {"dtype": dtype}
    if qrange is not None:
        kw["quant_min"], kw["quant_max"] = qrange
    if per_channel:
        kw["qscheme"] = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
        obs = PerChannelMinMaxObserver(ch_axis=0, **kw)
        obs(torch.tensor(np.array(ranges, dtype=F32)))
    else:
        kw["qscheme"] = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
        obs = MinMaxObserver(**kw)
        obs(torch.tensor(np.array(ranges[0], dtype=F32)))
    scale, zp = obs.calculate_qparams()
    return [(f32(s), int(z)) for s, z in zip(scale.tolist(), zp.tolist())]


class Tally:
    def __init__(self):
        self.rows = {}
        self.failures = []

    def add(self, key, ok, detail):
        n, bad = self.rows.get(key, (0, 0))
        self.rows[key] = (n + 1, bad + (0 if ok else 1))
        if not ok and len(self.failures) < 40:
            self.failures.append(f"{key}: {detail}")


def compare(tally, key, lo, hi, peer, mine):
    """peer: (scale, zp); mine: (scale, zp) or an error line."""
    ps, pz = peer
    if not np.isfinite(ps):
        tally.add(key, isinstance(mine, str), f"range [{lo!r}, {hi!r}]: peer scale {ps}, amctq {mine} (should refuse)")
        return
    if isinstance(mine, str):
        tally.add(key, False, f"range [{lo!r}, {hi!r}]: peer ({ps!r}, {pz}), amctq {mine}")
        return
    ms, mz = mine
    ok = bits(ps) == bits(ms) and pz == mz
    tally.add(key, ok, f"range [{float(lo).hex()}, {float(hi).hex()}]: peer scale {float(ps).hex()} zp {pz}, "
                       f"amctq scale {float(ms).hex()} zp {mz}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_presets.py PATH_TO_amctq_print_params")
    exe = sys.argv[1]
    rng = np.random.default_rng(7)
    tally = Tally()

    # ONNX Runtime, per tensor; per-channel ORT is the same function per channel.
    ort_types = [("int8", TP.INT8, 8, True), ("uint8", TP.UINT8, 8, False), ("int16", TP.INT16, 16, True),
                 ("uint16", TP.UINT16, 16, False), ("int4", TP.INT4, 4, True), ("uint4", TP.UINT4, 4, False)]
    for name, qtype, nbits, signed in ort_types:
        for sym in (False, True):
            qmin, qmax = (int(v) for v in get_qmin_qmax_for_qType(qtype, symmetric=sym))
            narrow = signed and qmin == -(1 << (nbits - 1)) + 1
            ranges = make_ranges(rng, qmax - qmin)
            peers = [ort_params(qtype, sym, lo, hi)[:2] for lo, hi in ranges]
            key = f"onnxruntime {name} {'symmetric' if sym else 'asymmetric'} [{qmin},{qmax}]"
            mine = run_amctq(exe, [("onnxruntime", nbits, signed, sym, narrow, [r]) for r in ranges])
            for (lo, hi), peer, m in zip(ranges, peers, mine):
                compare(tally, key, lo, hi, peer, m if isinstance(m, str) else m[0])
            # per-channel overload, 16 channels a query
            chunks = [ranges[i:i + 16] for i in range(0, len(ranges) - 15, 16)]
            mine = run_amctq(exe, [("onnxruntime", nbits, signed, sym, narrow, ch) for ch in chunks])
            for ch, m in zip(chunks, mine):
                for c, (lo, hi) in enumerate(ch):
                    peer = ort_params(qtype, sym, lo, hi)[:2]
                    compare(tally, key + " per-channel", lo, hi, peer, m if isinstance(m, str) else m[c])

    # PyTorch observers.
    torch_cases = [("qint8", torch.qint8, True, None), ("quint8", torch.quint8, False, None),
                   ("qint8 [-127,127]", torch.qint8, True, (-127, 127))]
    for name, dtype, signed, qrange in torch_cases:
        narrow = qrange is not None
        for sym in (False, True):
            ranges = make_ranges(rng, 254 if narrow else 255)
            key = f"pytorch {name} {'symmetric' if sym else 'affine'}"
            mine = run_amctq(exe, [("pytorch", 8, signed, sym, narrow, [r]) for r in ranges])
            for (lo, hi), m in zip(ranges, mine):
                peer = torch_params(dtype, sym, [(lo, hi)], qrange)[0]
                compare(tally, key, lo, hi, peer, m if isinstance(m, str) else m[0])
            narrow_ok = finite_span(ranges)
            chunks = [narrow_ok[i:i + 16] for i in range(0, len(narrow_ok) - 15, 16)]
            mine = run_amctq(exe, [("pytorch", 8, signed, sym, narrow, ch) for ch in chunks])
            for ch, m in zip(chunks, mine):
                peer = torch_params(dtype, sym, ch, qrange, per_channel=True)
                for c, (lo, hi) in enumerate(ch):
                    compare(tally, key + " per-channel", lo, hi, peer[c], m if isinstance(m, str) else m[c])

    print(f"check_presets: onnxruntime {onnxruntime.__version__}, torch {torch.__version__}")
    total = bad = 0
    for key, (n, b) in tally.rows.items():
        print(f"  {key:52s} ranges {n:4d}  mismatches {b}")
        total += n
        bad += b
    for f in tally.failures:
        print("  MISMATCH " + f)
    groups_bad = sum(1 for n, b in tally.rows.values() if b)
    print(f"check_presets: {total} ranges compared, {bad} mismatches")
    print(f"check_presets: {len(tally.rows) - groups_bad} passed, {groups_bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
