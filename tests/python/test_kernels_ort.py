"""amctq.quantize / dequantize / fake_quantize against ONNX Runtime's QuantizeLinear and
DequantizeLinear, bit for bit, and the buffer contract: out= written in place, views read in
place, no silent conversion, the GIL released while a kernel runs."""

import array
import sys
import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import amctq

CODE = {np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8, np.int16: TensorProto.INT16,
        np.uint16: TensorProto.UINT16}


def _session(nodes, x_type, y_type, shape, scale, zp, axis):
    inits = [helper.make_tensor("s", TensorProto.FLOAT, scale.shape, scale.ravel().tolist()),
             helper.make_tensor("z", CODE[zp.dtype.type], zp.shape, zp.ravel().tolist())]
    g = helper.make_graph(nodes(axis), "g", [helper.make_tensor_value_info("x", x_type, shape)],
                          [helper.make_tensor_value_info("y", y_type, shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def _q(axis, out="y"):
    kw = {} if axis is None else {"axis": axis}
    return [helper.make_node("QuantizeLinear", ["x", "s", "z"], [out], **kw)]


def _dq(axis, inp="x"):
    kw = {} if axis is None else {"axis": axis}
    return [helper.make_node("DequantizeLinear", [inp, "s", "z"], ["y"], **kw)]


def _case(code, axis, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((4, 3, 33, 17)) * 3.0).astype(np.float32)
    info = np.iinfo(code)
    n = 1 if axis is None else x.shape[axis]
    scale = (rng.uniform(0.005, 0.05, n)).astype(np.float32)
    zp = rng.integers(max(info.min, -20), min(info.max, 20) + 1, n).astype(code)
    if info.min == 0:
        zp = (zp.astype(np.int64) + 128).astype(code)
    # Exact ties k + 0.5 steps from zero: the rounding mode shows there.
    flat = x.reshape(-1)
    s0 = scale[0]
    flat[::7] = (np.arange(flat[::7].size) % 200 - 100 + 0.5).astype(np.float32) * s0
    if axis is None:
        scale, zp = scale.reshape(()), zp.reshape(())
    return x, scale, zp


BITS = {np.int8: (8, True), np.uint8: (8, False), np.int16: (16, True), np.uint16: (16, False)}
PARAMS = [(c, a) for c in CODE for a in (None, 1, 3)]


@pytest.mark.parametrize("code,axis", PARAMS, ids=[f"{c.__name__}-axis{a}" for c, a in PARAMS])
def test_bit_exact_with_onnxruntime(code, axis):
    x, scale, zp = _case(code, axis, seed=hash((code.__name__, axis)) % 1000)
    bits, signed = BITS[code]
    shape = list(x.shape)
    elem = CODE[code]
    q_ort = _session(_q, TensorProto.FLOAT, elem, shape, scale, zp, axis).run(None, {"x": x})[0]
    dq_ort = _session(_dq, elem, TensorProto.FLOAT, shape, scale, zp, axis).run(None, {"x": q_ort})[0]
    fq = lambda a: _q(a, "q") + _dq(a, "q")
    fq_ort = _session(fq, TensorProto.FLOAT, TensorProto.FLOAT, shape, scale, zp, axis).run(None, {"x": x})[0]

    q = amctq.quantize(x, scale, zp, bits=bits, signed=signed, axis=axis)
    assert q.dtype == code and np.array_equal(q, q_ort)
    y = amctq.dequantize(q_ort, scale, zp, axis=axis)
    assert np.array_equal(y.view(np.uint32), dq_ort.view(np.uint32))
    f = amctq.fake_quantize(x, scale, zp, bits=bits, signed=signed, axis=axis)
    assert np.array_equal(f.view(np.uint32), fq_ort.view(np.uint32))


def test_out_is_written_in_place():
    x, scale, zp = _case(np.int8, 1, seed=3)
    expected = amctq.fake_quantize(x, scale, zp, axis=1)
    out = np.full_like(x, np.nan)
    got = amctq.fake_quantize(x, scale, zp, axis=1, out=out)
    assert got is out and np.array_equal(out, expected)
    codes = np.zeros(x.shape, np.int32)  # any code type the caller chooses
    assert amctq.quantize(x, scale, zp, axis=1, out=codes) is codes
    assert np.array_equal(codes, amctq.quantize(x, scale, zp, axis=1))
    y = x.copy()
    assert amctq.fake_quantize(y, scale, zp, axis=1, out=y) is y  # in place over the input
    assert np.array_equal(y, expected)


def test_strided_views_and_buffers_are_read_in_place():
    x, _, _ = _case(np.int8, None, seed=4)
    view = x[:, ::2, 3:, ::-3]  # negative and non-unit strides
    out = np.empty((2 * view.shape[0],) + view.shape[1:], np.float32)[::2]  # a strided output too
    amctq.fake_quantize(view, 0.02, -3, out=out)
    assert np.array_equal(out, amctq.fake_quantize(np.ascontiguousarray(view), 0.02, -3))
    buf = array.array("f", x.ravel()[:1000].tolist())
    assert np.array_equal(amctq.fake_quantize(buf, 0.02, 0), amctq.fake_quantize(x.ravel()[:1000], 0.02, 0))


def test_mask_marks_values_inside_the_grid():
    x, _, _ = _case(np.int8, None, seed=5)
    y, mask = amctq.fake_quantize(x, 0.01, 0, mask=True)
    r = np.round(x / np.float32(0.01))  # float32 division, half to even, as the kernel
    bits = np.unpackbits(mask, bitorder="little")[: x.size].astype(bool)
    assert mask.dtype == np.uint8 and mask.size == (x.size + 7) // 8
    assert np.array_equal(bits, ((r >= -128) & (r <= 127)).ravel())
    assert not bits.all() and bits.any()


def test_wrong_dtype_is_an_error_not_a_copy():
    with pytest.raises(amctq.Error, match=r"^\[amctq.invalid_argument\] fake_quantize: x has dtype float64"):
        amctq.fake_quantize(np.zeros(4), 0.1, 0)
    with pytest.raises(amctq.Error, match="out has dtype float64"):
        amctq.fake_quantize(np.zeros(4, np.float32), 0.1, 0, out=np.zeros(4))
    frozen = np.zeros(4, np.float32)
    frozen.setflags(write=False)
    assert amctq.fake_quantize(frozen, 0.1, 0).shape == (4,)  # read-only input: fine
    with pytest.raises(amctq.Error, match="fake_quantize: out is read-only"):
        amctq.fake_quantize(frozen, 0.1, 0, out=frozen)
    with pytest.raises(amctq.Error, match="out must have the shape of the input"):
        amctq.fake_quantize(np.zeros((2, 3), np.float32), 0.1, 0, out=np.zeros((3, 2), np.float32))


def _progress_while(call):
    """How often another Python thread ran while `call` was inside C++. With the GIL held and a
    long switch interval, the other thread cannot run at all."""
    count, stop, started = [0], threading.Event(), threading.Event()

    def spin():
        started.set()
        while not stop.is_set():
            count[0] += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.25)
    t = threading.Thread(target=spin)
    try:
        t.start()
        started.wait()
        before = count[0]
        call()
        after = count[0]
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    return after - before


def test_gil_is_released_while_kernels_and_observers_run():
    x = np.random.default_rng(6).standard_normal(1 << 22).astype(np.float32)
    out = np.empty_like(x)

    def fake_quantize_many():
        for _ in range(4):
            amctq.fake_quantize(x, 0.02, 0, out=out)

    def observe_many():
        ob = amctq.Observer("entropy")
        for _ in range(4):
            ob.observe(x)

    assert _progress_while(lambda: sum(range(1_000_000))) == 0  # the probe: a call that holds the GIL
    assert _progress_while(fake_quantize_many) > 0
    assert _progress_while(observe_many) > 0


def test_torch_tensors_are_read_and_written_in_place():
    torch = pytest.importorskip("torch")  # Debian's python3-torch, installed by scripts/setup.sh
    t = torch.from_numpy(_case(np.int8, None, seed=8)[0].copy())
    expected = amctq.fake_quantize(t.numpy(), 0.03, 1)
    assert np.array_equal(amctq.fake_quantize(t, 0.03, 1), expected)  # read through DLPack
    assert amctq.calibrate(t, method="mse") == amctq.calibrate(t.numpy(), method="mse")
    amctq.fake_quantize(t, 0.03, 1, out=t)  # written in place: the tensor itself changes
    assert np.array_equal(t.numpy(), expected)
    with pytest.raises(amctq.Error, match="x has dtype float64"):
        amctq.fake_quantize(t.double(), 0.03, 1)


@pytest.mark.parametrize("mode,rule", [
    ("half_even", np.round),
    ("half_away", lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)),
    ("half_up", lambda v: np.floor(v + 0.5)),
    ("half_down", lambda v: np.ceil(v - 0.5)),
])
def test_round_modes_on_ties(mode, rule):
    # Exact ties k + 0.5 (scale a power of two, so x / scale is exact) tell the modes apart.
    v = np.arange(-20, 20, dtype=np.float32) + np.float32(0.5)
    x = v * np.float32(0.25)
    q = amctq.quantize(x, 0.25, 0, round_mode=mode)
    assert np.array_equal(q, rule(v.astype(np.float64)).astype(np.int8))
    assert np.array_equal(amctq.fake_quantize(x, 0.25, 0, round_mode=mode), q.astype(np.float32) * np.float32(0.25))
