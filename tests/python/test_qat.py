"""amctq.qat: the LSQ / ULQ kernels against PyTorch's learnable fake quantization and AMCT's ULQ
formula, and the retrain flow on a small module: wrapping, training steps, the saved models in
ONNX Runtime (the deploy model bit-exact with `amctq run`, amctq's integer simulation)."""

import json
import warnings

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import amctq  # noqa: E402
import amctq.qat  # noqa: E402
from amctq import _core  # noqa: E402


def _lsq(x, dy, s, z, bits, axis, g=1.0):
    dx = np.empty_like(x)
    ds, dz = _core._lsq_backward(x, dy, dx, list(map(float, s)), list(map(int, z)), bits, axis, g, "half_even")
    return dx, np.array(ds), np.array(dz)


@pytest.mark.parametrize("axis", [None, 0, 1, 3])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_lsq_backward_equals_torch_learnable_fake_quantize(axis, bits):
    # Same formula as torch's; torch multiplies by 1/s where amctq divides by s (ONNX's rule),
    # and sums in another order: dx and the forward are exact, d scale / d zero_point agree to
    # 1e-5 of the largest per-element term sum. torch's zero point is a float rounded to int.
    g = torch.Generator().manual_seed(bits * 10 + (axis or 0))
    x = torch.randn(4, 3, 5, 6, generator=g) * 2
    dy = torch.randn(4, 3, 5, 6, generator=g)
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    c = 1 if axis is None else x.shape[axis]
    s = torch.rand(c, generator=g) * 0.3 + 0.1
    z = torch.randint(qmin // 2, qmax // 2 + 1, (c,), generator=g).float()
    xr, sr, zr = x.clone().requires_grad_(), s.clone().requires_grad_(), z.clone().requires_grad_()
    if axis is None:
        y = torch._fake_quantize_learnable_per_tensor_affine(xr, sr, zr, qmin, qmax, 0.5)
    else:
        y = torch._fake_quantize_learnable_per_channel_affine(xr, sr, zr, axis, qmin, qmax, 0.5)
    y.backward(dy)
    dx, ds, dz = _lsq(x.numpy(), dy.numpy(), s.numpy(), z.numpy(), bits, axis, 0.5)
    ours = amctq.fake_quantize(x.numpy(), s.tolist(), z.int().tolist(), bits=bits, axis=axis)
    np.testing.assert_array_equal(ours, y.detach().numpy())
    np.testing.assert_array_equal(dx, xr.grad.numpy())
    scale_terms = (dy.abs() * (qmax - qmin)).sum().item()
    np.testing.assert_allclose(ds, sr.grad.numpy(), rtol=0, atol=1e-6 * scale_terms)
    np.testing.assert_allclose(dz, zr.grad.numpy(), rtol=0, atol=1e-6 * scale_terms)


def _ulq_reference(x, dy, cmin, cmax, bits):
    """AMCT's ULQ backward as docs/qat.md states it, in float64 numpy (ties excluded by the data)."""
    s, z, qmin, qmax = _core._ulq_params([cmin], [cmax], bits, False)
    s, z = s[0], z[0]
    code = np.round(x / np.float32(s)) + z
    up, lo = code > qmax, code < qmin
    xt = np.where(up, cmax, np.where(lo, cmin, x)).astype(np.float64)
    v = xt / s
    e = (np.round(v) - v) / (2 ** bits - 1)
    return (dy * (e + up)).sum(), (dy * (lo - e)).sum(), np.where(up | lo, 0, dy)


def test_ulq_autograd_equals_amct_formula():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (8, 16)).astype(np.float32)
    dy = rng.normal(0, 1, (8, 16)).astype(np.float32)
    for bits in (4, 8):
        cmin = torch.tensor([-1.23], requires_grad=True)
        cmax = torch.tensor([1.71], requires_grad=True)
        xt = torch.from_numpy(x).requires_grad_()
        amctq.qat.ulq_fake_quantize(xt, cmin, cmax, bits).backward(torch.from_numpy(dy))
        gmax, gmin, gx = _ulq_reference(x, dy, -1.23, 1.71, bits)
        assert cmax.grad.item() == pytest.approx(gmax, rel=1e-4, abs=1e-4)
        assert cmin.grad.item() == pytest.approx(gmin, rel=1e-4, abs=1e-4)
        np.testing.assert_array_equal(xt.grad.numpy(), gx)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AvgPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.head = nn.Linear(4 * 16 * 16, 5)
        self.unused = nn.ConvTranspose1d(2, 2, 3)  # a kind the retrain model cannot wrap

    def forward(self, x):
        return self.head(torch.relu(self.up(self.features(x))).flatten(1))


def _trained(bits_w, bits_a, act_algo="ulq_quantize", steps=3):
    torch.manual_seed(0)
    net = Net()
    for m in net.modules():  # BatchNorm statistics other than the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(16, 1, 16, 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = amctq.qat.create_quant_retrain_model(
            net, [x], {"weights": {"num_bits": bits_w}, "activation": {"num_bits": bits_a, "retrain_algo": act_algo}})
    assert any("unused (ConvTranspose1d)" in str(w.message) for w in caught)
    assert q.amctq_float_layers == ["unused (ConvTranspose1d)"]
    opt = torch.optim.Adam(q.parameters(), lr=1e-4)
    y = torch.randint(0, 5, (16,))
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(q(x), y).backward()
        opt.step()
    return q, x


@pytest.mark.parametrize("bits_w,bits_a,act_algo", [(8, 8, "ulq_quantize"), (4, 4, "lsq_plus"), (2, 4, "lsq")])
def test_retrain_save_runs_in_onnxruntime_and_deploy_equals_simulation(cli, tmp_path, bits_w, bits_a, act_algo):
    q, x = _trained(bits_w, bits_a, act_algo)
    wrapped = [n for n, m in q.named_modules() if type(m).__name__ == "_QuantLayer"]
    assert wrapped == ["features.0", "features.3", "features.4", "up", "head"]
    assert q.features[0].w_scale.grad is not None and q.features[0].w_scale.grad.abs().sum() > 0
    record = amctq.qat.save_quant_retrain_model(q, x[:4], tmp_path, "net")
    assert set(record) == {"/features/features.0/Conv", "/features/features.3/AveragePool",
                           "/features/features.4/Conv", "/up/ConvTranspose", "/head/Gemm"}
    # The record holds the learned parameters exactly.
    s, z = q.features[4].act_params()
    assert record["/features/features.4/Conv"]["scale_d"] == pytest.approx(s, rel=1e-7)
    assert record["/features/features.4/Conv"]["offset_d"] == z
    np.testing.assert_allclose(record["/features/features.4/Conv"]["scale_w"], q.features[4].weight_scales(), rtol=1e-7)
    xs = x.numpy()
    with torch.no_grad():
        ref = q(x).numpy()
    fq = ort.InferenceSession(str(tmp_path / "net_fake_quant_model.onnx")).run(None, {"input": xs})[0]
    dp = ort.InferenceSession(str(tmp_path / "net_deploy_model.onnx")).run(None, {"input": xs})[0]
    # The torch module (bias on the int32 grid too) and the fake-quant model differ by float
    # summation order only.
    assert np.abs(fq - ref).max() <= 1e-4 * np.abs(ref).max()
    np.save(tmp_path / "x.npy", xs)
    cli("run", "--model", tmp_path / "net_deploy_model.onnx", "--input", tmp_path / "x.npy", "--output",
        tmp_path / "sim.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "sim.npy"), dp)


def test_config_defaults_overrides_and_bad_keys():
    c = amctq.qat.create_quant_retrain_config(Net(), weights={"num_bits": 2})
    assert c["weights"]["num_bits"] == 2 and c["activation"]["retrain_algo"] == "ulq_quantize"
    assert c["layers"]["up"] == {"layer_type": "ConvTranspose2d", "retrain_enable": True}
    assert "unused" not in c["layers"]
    with pytest.raises(amctq.Error, match="weights.num_bit"):
        amctq.qat.create_quant_retrain_config(Net(), weights={"num_bit": 2})
    with pytest.raises(amctq.Error, match="activation.retrain_algo"):
        amctq.qat.create_quant_retrain_config(Net(), activation={"retrain_algo": "pact"})
    with pytest.raises(amctq.Error, match="skip_layers"):
        amctq.qat.create_quant_retrain_config(Net(), skip_layers=["nope"])


def test_skipped_layer_stays_float_in_module_and_saved_model(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 1, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = amctq.qat.create_quant_retrain_model(Net(), [x], {"skip_layers": ["head"]})
    assert isinstance(q.head, nn.Linear)
    assert "head (skipped by the config)" in q.amctq_float_layers
    record = amctq.qat.save_quant_retrain_model(q, x, tmp_path, "net")
    assert "/head/Gemm" not in record
    assert "/head/Gemm" in json.loads((tmp_path / "float_layers.json").read_text()).__repr__()


def test_nan_gradient_names_the_layer():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = amctq.qat.create_quant_retrain_model(Net(), [x])
    out = q(x)
    with pytest.raises(amctq.Error, match=r"layer 'head'"):
        (out * float("nan")).sum().backward()


@pytest.mark.parametrize("conv,shape", [(nn.Conv1d, (6, 2, 12)), (nn.Conv3d, (6, 2, 4, 5, 6))])
def test_conv1d_conv3d_retrain_and_save(tmp_path, conv, shape):
    torch.manual_seed(1)
    net = nn.Sequential(conv(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * int(np.prod(shape[2:])), 4))
    x = torch.randn(*shape)
    q = amctq.qat.create_quant_retrain_model(net, [x], {"weights": {"num_bits": 4}, "activation": {"num_bits": 8}})
    q(x).square().sum().backward()
    assert q[0].w_scale.grad.shape == (3,) and q[3].clip_max.grad is not None
    record = amctq.qat.save_quant_retrain_model(q, x, tmp_path, "c")
    assert set(record) == {"/0/Conv", "/3/Gemm"}
    with torch.no_grad():
        ref = q(x).numpy()
    fq = ort.InferenceSession(str(tmp_path / "c_fake_quant_model.onnx")).run(None, {"input": x.numpy()})[0]
    assert np.abs(fq - ref).max() <= 1e-4 * np.abs(ref).max()
