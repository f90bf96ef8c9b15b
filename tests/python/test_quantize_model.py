"""amctq.quantize_model and create_quant_config against `amctq quantize` / `amctq config` on the
bundled Fashion-MNIST CNN and its calibration slice: the same record and byte-identical models."""

import json

import numpy as np
import onnx
import pytest

import amctq

OUTPUTS = ["fmnist_cnn_fake_quant_model.onnx", "fmnist_cnn_deploy_model.onnx", "record.json", "float_layers.json"]


@pytest.fixture(scope="module")
def files(root):
    return root / "models" / "fmnist_cnn.onnx", root / "models" / "fmnist_calib.npy"


def _same_outputs(a, b):
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_default_config_equals_cli(cli, files):
    model, _ = files
    assert amctq.create_quant_config(model) == json.loads(cli("config", "--model", model))
    assert amctq.create_quant_config(model, batch_num=4, skip_layers=["/0/Conv"]) == json.loads(
        cli("config", "--model", model, "--batch-num", 4, "--skip", "/0/Conv"))


def test_record_and_models_equal_cli(cli, files, tmp_path):
    model, calib = files
    cli("quantize", "--model", model, "--calib", calib, "--out", tmp_path / "cli", "--quiet")
    record = amctq.quantize_model(model, np.load(calib), out_dir=tmp_path / "py")
    assert record == json.loads((tmp_path / "cli" / "record.json").read_text())
    assert len(record) > 3 and all("scale_d" in layer for layer in record.values())
    _same_outputs(tmp_path / "cli", tmp_path / "py")


def test_config_dict_and_named_inputs_equal_cli(cli, files, tmp_path):
    model, calib = files
    config = amctq.create_quant_config(model, batch_num=2, activation={"act_algo": "mse"})
    assert config["activation"]["act_algo"] == "mse"
    (tmp_path / "c.json").write_text(json.dumps(config))
    cli("quantize", "--model", model, "--calib", calib, "--config", tmp_path / "c.json", "--out", tmp_path / "cli",
        "--quiet")
    (name,) = [i.name for i in onnx.load(str(model)).graph.input]
    record = amctq.quantize_model(model, {name: np.load(calib)}, config=config, out_dir=tmp_path / "py")
    assert record == json.loads((tmp_path / "cli" / "record.json").read_text())
    _same_outputs(tmp_path / "cli", tmp_path / "py")


def test_iterable_of_batches(files, tmp_path):
    # Batches given one by one equal the same rows cut by batch_num; a tensor is one array.
    model, calib = files
    x = np.load(calib)
    config = amctq.create_quant_config(model, batch_num=2)
    cut = amctq.quantize_model(model, x, config=config, out_dir=tmp_path / "a")
    given = amctq.quantize_model(model, iter([x[:128], x[128:]]), config=config, out_dir=tmp_path / "b")
    assert cut == given
    torch = pytest.importorskip("torch")
    assert amctq.quantize_model(model, torch.from_numpy(x), config=config, out_dir=tmp_path / "c") == cut


def test_bad_override_names_the_key(files):
    model, _ = files
    with pytest.raises(amctq.Error, match=r"config.activation.act_algox: unknown key"):
        amctq.create_quant_config(model, activation={"act_algox": "mse"})


def test_float64_data_is_converted_with_a_note(files, tmp_path):
    # As `amctq quantize` does with a float64 .npy: converted to the input's float32, and said.
    model, calib = files
    x = np.load(calib)
    with pytest.warns(UserWarning, match="holds float64, converted to float32"):
        converted = amctq.quantize_model(model, x.astype(np.float64), out_dir=tmp_path / "a")
    assert converted == amctq.quantize_model(model, x, out_dir=tmp_path / "b")


def test_threads_write_the_same_bytes_as_the_cli(cli, files, tmp_path):
    model, calib = files
    cli("quantize", "--model", model, "--calib", calib, "--out", tmp_path / "cli", "--threads", 3, "--quiet")
    for t in (1, 2):
        amctq.quantize_model(model, np.load(calib), out_dir=tmp_path / f"py{t}", threads=t)
        for f in sorted(p.name for p in (tmp_path / "cli").iterdir()):
            assert (tmp_path / f"py{t}" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            amctq.quantize_model(model, np.load(calib), out_dir=tmp_path / "bad", threads=bad)
