"""amctq.calibrate against `amctq calib`: every method, the same fields and
the same numbers, on the same batches."""

import numpy as np
import pytest

import amctq

METHODS = ["minmax", "moving_average", "percentile", "entropy", "mse", "ifmr", "hfmg", "aciq_laplace",
           "aciq_gaussian", "pot_diffs"]


def _batches():
    # Skewed, heavy-tailed data with a few outliers, in three batches of different sizes.
    rng = np.random.default_rng(20)
    out = []
    for n in (3000, 5000, 1200):
        x = np.concatenate([rng.laplace(0.3, 1.0, n), rng.normal(-2.0, 0.5, n // 4)])
        x[rng.integers(0, x.size, 3)] *= 12.0
        out.append(x.astype(np.float32).reshape(-1, 5)[: (x.size // 5)])
    return out


def _same(py, cli):
    # The CLI prints each float32 value as the double it converts to, so json reads back exactly
    # the Python float amctq returns: plain equality, floats included.
    assert sorted(py) == sorted(cli), "fields differ"
    for k, c in cli.items():
        assert py[k] == c and type(py[k]) is type(c), (k, py[k], c)


CASES = [(m, {}, []) for m in METHODS] + [
    ("ifmr", {"symmetric": True, "bits": 4}, ["--symmetric", "--bits", "4"]),
    ("entropy", {"symmetric": True, "bins": 1024}, ["--symmetric", "--bins", "1024"]),
    ("entropy", {"preset": "onnxruntime", "symmetric": True}, ["--preset", "onnxruntime", "--symmetric"]),
    ("percentile", {"preset": "onnxruntime", "percentile": 99.9}, ["--preset", "onnxruntime", "--percentile", "99.9"]),
    ("hfmg", {"preset": "pytorch", "signed": False}, ["--preset", "pytorch", "--unsigned"]),
    ("mse", {"axis": 1, "search_points": 64}, ["--axis", "1", "--search-points", "64"]),
    ("ifmr", {"axis": 1, "search_range": (0.8, 1.2), "search_step": 0.02},
     ["--axis", "1", "--search-range", "0.8,1.2", "--search-step", "0.02"]),
    ("minmax", {"axis": -1, "narrow_range": True, "symmetric": True}, ["--axis", "1", "--narrow-range", "--symmetric"]),
    ("pot_diffs", {"statistic": "max", "symmetric": True}, ["--statistic", "max", "--symmetric"]),
    ("moving_average", {"averaging_constant": 0.3}, ["--averaging-constant", "0.3"]),
]


@pytest.fixture(scope="module")
def batch_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("calib")
    files = []
    for i, b in enumerate(_batches()):
        files.append(d / f"b{i}.npy")
        np.save(files[-1], b)
    return files


@pytest.mark.parametrize("method,kwargs,flags", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_calibrate_equals_cli(cli, batch_files, method, kwargs, flags):
    expected = cli("calib", "--method", method, *flags, *batch_files, as_json=True)
    got = amctq.calibrate([np.load(f) for f in batch_files], method=method, **kwargs)
    _same(got, expected)


def test_one_array_is_one_batch(cli, batch_files):
    expected = cli("calib", "--method", "mse", batch_files[0], as_json=True)
    _same(amctq.calibrate(np.load(batch_files[0]), method="mse"), expected)


def test_strided_batch_reads_in_place(batch_files):
    # A non-contiguous view gives what its contiguous copy gives.
    x = np.load(batch_files[1])
    view = x[::2, 1:4]
    assert not view.flags.c_contiguous
    for method in ("ifmr", "entropy"):
        assert amctq.calibrate(view, method=method) == amctq.calibrate(np.ascontiguousarray(view), method=method)
