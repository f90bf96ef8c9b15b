"""amctq.report against `amctq report` on the bundled Fashion-MNIST CNN: the same page, byte for
byte, and its summary returned worst layer first."""

import re

import numpy as np

import amctq


def test_report_equals_cli(cli, root, tmp_path):
    model, calib = root / "models" / "fmnist_cnn.onnx", root / "models" / "fmnist_calib.npy"
    cli("report", "--model", model, "--calib", calib, "--out", tmp_path / "cli.html", "--quiet")
    rows = amctq.report(model, np.load(calib), out=tmp_path / "py.html")
    assert (tmp_path / "py.html").read_bytes() == (tmp_path / "cli.html").read_bytes()
    assert len(rows) == 7
    sqnr = [r[1] for r in rows]
    assert sqnr == sorted(sqnr)
    page = (tmp_path / "py.html").read_text()
    names = re.findall(r'<tr><td><a href="#l\d+">([^<]+)</a>', page)
    assert names == [r[0] for r in rows]
    assert all(0.99 < r[2] <= 1.0 for r in rows)


def test_report_error_names_the_problem(root, tmp_path):
    model = root / "models" / "fmnist_cnn.onnx"
    try:
        amctq.report(model, np.zeros((4, 3, 28, 28), np.float32), out=tmp_path / "x.html")
    except amctq.Error as e:
        assert "image" in str(e)
    else:
        raise AssertionError("a wrong-shaped calibration array was accepted")
    assert not (tmp_path / "x.html").exists()
