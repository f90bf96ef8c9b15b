"""C++ errors arrive as amctq.Error (a ValueError) carrying the C++ message unchanged."""

import numpy as np
import pytest

import amctq


def test_error_classes():
    assert issubclass(amctq.Error, ValueError)
    assert issubclass(amctq.FileError, amctq.Error) and issubclass(amctq.FileError, OSError)
    assert issubclass(amctq.UnsupportedError, amctq.Error)


def test_kernel_argument_errors_keep_the_cpp_text():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(amctq.Error) as e:
        amctq.fake_quantize(x, 0.0, 0)
    assert str(e.value) == "[amctq.invalid_argument] fake_quantize: scale[0] must be finite and > 0, got 0"
    assert e.value.code == "invalid_argument"
    with pytest.raises(amctq.Error) as e:
        amctq.fake_quantize(x, [0.1, 0.2], [0, 0], axis=1)
    assert e.value.code == "shape_mismatch" and "fake_quantize" in str(e.value)
    with pytest.raises(amctq.Error, match=r"^\[amctq.invalid_argument\] fake_quantize: axis 2 is out of range"):
        amctq.fake_quantize(x, 0.1, 0, axis=2)
    with pytest.raises(amctq.Error, match=r"zero_point\[0\] = 300 lies outside \[-128, 127\]"):
        amctq.quantize(x, 0.1, 300)


def test_calibration_errors_keep_the_cpp_text():
    x = np.ones(10, np.float32)
    x[3] = np.nan
    with pytest.raises(amctq.Error) as e:
        amctq.calibrate(x, method="mse", name="act0")
    assert str(e.value) == ("[amctq.non_finite] activation_observer::observe: tensor 'act0' has 1 NaN/Inf value(s); "
                            "clean the data or set skip_nonfinite to ignore them")
    assert amctq.calibrate(x, method="mse", skip_nonfinite=True)["nonfinite"] == 1
    with pytest.raises(amctq.Error, match="option bins does not apply to method ifmr; it tunes entropy, percentile, hfmg"):
        amctq.calibrate(x, method="ifmr", bins=100)
    with pytest.raises(amctq.Error, match=r"^\[amctq.invalid_argument\] activation_observer: bits"):
        amctq.Observer(bits=1)


def test_pipeline_errors(tmp_path):
    with pytest.raises(amctq.FileError, match=r"^\[amctq.io\] quantize_model: model .*nowhere.onnx: no such file"):
        amctq.quantize_model(tmp_path / "nowhere.onnx", np.zeros((1, 1, 28, 28), np.float32))
