"""fake_quantize, quantize, dequantize: the C++ kernels on caller-owned buffers."""

import numpy as np

from . import _core
from ._arrays import as_array, grid_values
from ._errors import Error

_CODE_TYPES = {(8, True): np.int8, (8, False): np.uint8, (16, True): np.int16, (16, False): np.uint16}


def _code_dtype(bits, signed):
    # Widths below a storage type's share it (int4 codes in int8), as ONNX Runtime stores them unpacked.
    width = 8 if bits <= 8 else 16
    return _CODE_TYPES[(width, bool(signed))]


def _output(out, shape, dtype, where):
    if out is None:
        return np.empty(shape, dtype=dtype)
    out = as_array(out, "out", where, writable=True)
    if not out.flags.writeable:
        raise Error(f"[amctq.invalid_argument] {where}: out is read-only")
    return out


def fake_quantize(x, scale, zero_point, bits=8, signed=True, axis=None, round_mode="half_even", out=None,
                  mask=False, narrow_range=False):
    """Fake-quantize float32 ``x``: ``(clamp(round(x/scale) + zero_point, qmin, qmax) - zero_point) * scale``.

    ``axis`` picks per-channel params (one scale / zero point per index of that axis). Writes
    into ``out`` when given (it may be ``x`` itself) and returns it. With ``mask=True`` returns
    ``(y, mask)``, mask a uint8 array of ``ceil(x.size/8)`` bytes, bit k (LSB first, row-major)
    set where element k lay inside the grid before clamping (where a straight-through gradient
    passes): ``numpy.unpackbits(mask, bitorder="little")[:x.size]``.
    """
    xa = as_array(x, "x", "fake_quantize")
    y = _output(out, xa.shape, np.float32, "fake_quantize")
    bits_out = np.zeros((xa.size + 7) // 8, dtype=np.uint8) if mask else None
    s, z = grid_values(scale, zero_point)
    _core._fake_quantize(xa, y, s, z, bits, signed, narrow_range, axis, round_mode, bits_out)
    return (y, bits_out) if mask else y


def quantize(x, scale, zero_point, bits=8, signed=True, axis=None, round_mode="half_even", out=None,
             narrow_range=False):
    """Integer codes ``clamp(round(x/scale) + zero_point, qmin, qmax)`` of float32 ``x``.

    The codes are int8 / uint8 up to 8 bits, int16 / uint16 up to 16 (or ``out``'s dtype: int8,
    uint8, int16, uint16, int32). Equals ONNX QuantizeLinear for 8 and 16 bits.
    """
    xa = as_array(x, "x", "quantize")
    q = _output(out, xa.shape, _code_dtype(bits, signed), "quantize")
    s, z = grid_values(scale, zero_point)
    _core._quantize(xa, q, s, z, bits, signed, narrow_range, axis, round_mode)
    return q


def dequantize(q, scale, zero_point, axis=None, out=None, bits=None, signed=None, narrow_range=False):
    """Float32 ``(q - zero_point) * scale`` of integer codes ``q`` (int8, uint8, int16, uint16, int32).

    ``bits`` / ``signed`` (default: those of q's dtype; 16 and signed for int32) only bound the
    zero point, which must lie on the grid.
    """
    qa = as_array(q, "q", "dequantize")
    if bits is None or signed is None:
        kind = np.dtype(qa.dtype)
        if kind.kind not in "iu":
            raise Error(f"[amctq.invalid_argument] dequantize: q has dtype {kind}; codes are int8, uint8, int16, "
                        "uint16 or int32")
        bits = bits if bits is not None else min(kind.itemsize * 8, 16)
        signed = signed if signed is not None else kind.kind == "i"
    y = _output(out, qa.shape, np.float32, "dequantize")
    s, z = grid_values(scale, zero_point)
    _core._dequantize(qa, y, s, z, bits, signed, narrow_range, axis)
    return y
