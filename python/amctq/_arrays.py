"""Turning caller arguments into arrays the C++ side views in place."""

import numpy as np

from ._errors import Error


def _address(a):
    return a.__array_interface__["data"][0]


def as_array(x, name, where, writable=False):
    """x as a numpy array sharing its memory: arrays pass through, DLPack tensors (a CPU
    torch.Tensor) and buffers are wrapped. Anything else would need a copy and is refused."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__dlpack__"):
        try:
            view = np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError) as e:
            raise Error(f"[amctq.invalid_argument] {where}: {name} cannot be read in place: {e}") from None
        if not writable:
            return view
        # numpy marks DLPack imports read-only; the object's own __array__ (torch: .numpy()) is
        # writable, and taken only when it is the same memory.
        a = np.asarray(x)
        if a.flags.writeable and _address(a) == _address(view) and a.shape == view.shape:
            return a
        raise Error(f"[amctq.invalid_argument] {where}: {name} cannot be written in place")
    try:
        return np.asarray(memoryview(x))
    except TypeError:
        raise Error(f"[amctq.invalid_argument] {where}: {name} must be a numpy array, a buffer or a CPU DLPack "
                    f"tensor, got {type(x).__name__}") from None


def grid_values(scale, zero_point):
    """scale and zero point as the flat float32 / int32 lists the C++ params hold."""
    s = np.asarray(scale, dtype=np.float32).ravel()
    z = np.asarray(zero_point).ravel()
    if z.size and not np.issubdtype(z.dtype, np.integer):
        if not np.all(z == np.round(z)):
            raise Error(f"[amctq.invalid_argument] quant_params: zero_point must be integers, got {zero_point!r}")
    return s.tolist(), z.astype(np.int64).tolist()
