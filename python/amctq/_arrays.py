"""Turning caller arguments into arrays the C++ side views in place."""

import numpy as np

from ._errors import Error


def as_array(x, name, where):
    """x as a numpy array sharing its memory: arrays pass through, buffers are wrapped."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(memoryview(x))
    except TypeError:
        raise Error(f"[amctq.invalid_argument] {where}: {name} must be a numpy array or a buffer, "
                    f"got {type(x).__name__}") from None


def grid_values(scale, zero_point):
    """scale and zero point as the flat float32 / int32 lists the C++ params hold."""
    s = np.asarray(scale, dtype=np.float32).ravel()
    z = np.asarray(zero_point).ravel()
    if z.size and not np.issubdtype(z.dtype, np.integer):
        if not np.all(z == np.round(z)):
            raise Error(f"[amctq.invalid_argument] quant_params: zero_point must be integers, got {zero_point!r}")
    return s.tolist(), z.astype(np.int64).tolist()
