"""Observer and calibrate: amctq's activation_observer, every calibration method."""

import threading

import numpy as np

from . import _core
from ._arrays import as_array
from ._errors import Error


class Observer:
    """A streaming, exactly mergeable activation observer (any of amctq's calibration methods).

    ``Observer(method="ifmr", bits=8, symmetric=False, axis=None, preset="amct", threads=0, **options)``;
    options are ``amctq calib``'s with ``_`` for ``-`` (bins, levels, percentile, max_percentile,
    search_range=(a, b), statistic, ...) plus signed, narrow_range, skip_nonfinite and name (the
    tensor named in errors). ``observe(x)`` folds in one batch (a float32 array or buffer, read in
    place, without the GIL); ``merge(other)`` adds another observer's data; ``result()`` returns
    the dict ``amctq calib`` prints. ``threads`` splits a large per-tensor batch (4M values and
    up) across that many threads, each observing a part, merged exactly: the result is the same
    for any count (0, the default: one per core, at most 8; 1: the calling thread only;
    moving_average, pot_diffs and the onnxruntime preset's histograms always use one). Pickling
    carries the serialised state, so shards calibrated in other processes merge into exactly the
    one-pass result (except moving_average and pot_diffs, which depend on the batching by
    definition).
    """

    def __init__(self, method="ifmr", bits=8, symmetric=False, axis=None, preset="amct", threads=0, **options):
        self._args = dict(method=method, bits=bits, symmetric=symmetric, axis=axis, preset=preset, threads=threads,
                          **options)
        self._core = _core._Observer(method, bits, symmetric, axis, preset, options, threads)
        self._batches = 0
        self._count_lock = threading.Lock()  # observe() may run in several threads at once

    def observe(self, x):
        """Fold one batch in; returns self."""
        self._core.observe(as_array(x, "x", "Observer.observe"))
        with self._count_lock:
            self._batches += 1
        return self

    def merge(self, other):
        """Add another observer's data (same method, axis and capacities); returns self."""
        if not isinstance(other, Observer):
            raise Error("[amctq.invalid_argument] activation_observer::merge: can merge only another amctq.Observer")
        self._core.merge(other._core)
        with self._count_lock:
            self._batches += other._batches
        return self

    def result(self):
        """The calibrated range and params: the fields ``amctq calib`` prints."""
        r = self._core.result()
        nonfinite = r.pop("nonfinite")
        r["batches"] = self._batches
        r["nonfinite"] = nonfinite
        return r

    def __getstate__(self):
        return {"args": self._args, "batches": self._batches, "state": self._core.state()}

    def __setstate__(self, state):
        self.__init__(**state["args"])
        self._core.set_state(state["state"])
        self._batches = state["batches"]

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._args.items())
        return f"amctq.Observer({args}; {self._batches} batches)"


def _batches(x):
    # One array (numpy, DLPack or buffer) is one batch; anything else is an iterable of them.
    if isinstance(x, np.ndarray) or hasattr(x, "__dlpack__"):
        return [x]
    try:
        memoryview(x)
        return [x]
    except TypeError:
        return x


def calibrate(x, method="ifmr", bits=8, symmetric=False, axis=None, preset="amct", **options):
    """Calibrate one tensor and return ``amctq calib``'s fields: method, preset, bits, symmetric,
    axis, min, max, scale, zero_point (lists when per-channel), qmin, qmax, batches, nonfinite.

    ``x`` is a float32 array (or buffer), or an iterable of them, each one batch (as each .npy
    file is one batch on the command line). A negative axis counts from the end of the first
    batch's shape. See :class:`Observer` for the options.
    """
    batches = _batches(x)
    ob = None
    for b in batches:
        b = as_array(b, "x", "calibrate")
        if ob is None:
            if axis is not None and axis < 0:
                axis += b.ndim
            ob = Observer(method, bits, symmetric, axis, preset, **options)
        ob.observe(b)
    if ob is None:
        raise Error("[amctq.invalid_argument] calibrate: no batch given")
    return ob.result()
