"""quantize_model and create_quant_config: the pipeline of ``amctq quantize`` / ``amctq config``."""

import json
import os
import warnings

import numpy as np

from . import _core
from ._errors import Error


def _is_batch(x):
    # An array (numpy or DLPack, e.g. a torch.Tensor) or a dict of them; anything else is an
    # iterable of batches.
    return isinstance(x, (np.ndarray, dict)) or hasattr(x, "__dlpack__")


def _as_inputs(batch):
    # "" stands for the model's one input, as a lone X.npy on the command line.
    if isinstance(batch, dict):
        return {str(k): np.asarray(v) for k, v in batch.items()}
    return {"": np.asarray(batch)}


def _config_args(config):
    if isinstance(config, dict):
        return "", json.dumps(config)
    return ("", "") if config is None else (os.fspath(config), "")


def _batches_of(calib):
    split = _is_batch(calib)
    return ([_as_inputs(calib)] if split else [_as_inputs(b) for b in calib]), split


def report(model_path, calib, config=None, out="report.html"):
    """Calibrate as :func:`quantize_model` does and write ``amctq report``'s HTML page to ``out``
    (no model is written). Returns ``[(layer, output SQNR dB, cosine), ...]``, worst layer first,
    the page's summary table."""
    model_path = os.fspath(model_path)
    config_path, config_text = _config_args(config)
    batches, split = _batches_of(calib)
    return [tuple(r) for r in _core._report(model_path, config_path, config_text, batches, split, os.fspath(out))]


def quantize_model(model_path, calib, config=None, out_dir=".", stem=None):
    """Quantize an ONNX model as ``amctq quantize`` does and return its record (record.json as a dict).

    ``calib`` is an array (the model's one input), a dict of arrays by input name (cut into the
    config's batch_num batches along their first axis, as ``--calib`` is), or an iterable of
    such arrays / dicts, each one batch. ``config`` is None (the default config), a dict (as
    :func:`create_quant_config` returns, or a Vitis AI config) or the path of a JSON file.
    Writes ``out_dir/<stem>_fake_quant_model.onnx``, ``<stem>_deploy_model.onnx``,
    ``record.json``, ``float_layers.json`` and ``amctq_manifest.json``; ``stem`` defaults to
    the model's file name without ``.onnx``.
    """
    model_path = os.fspath(model_path)
    config_path, config_text = _config_args(config)
    batches, split = _batches_of(calib)
    if stem is None:
        stem = os.path.splitext(os.path.basename(model_path))[0]
    paths = _core._quantize_model(model_path, config_path, config_text, batches, split, os.fspath(out_dir), stem)
    for note in paths["notes"]:  # what `amctq quantize` prints as "note:" (conversions, deploy exactness)
        warnings.warn(f"amctq.quantize_model: {note}", stacklevel=2)
    with open(paths["record"], encoding="utf-8") as f:
        return json.load(f)


def _merge(base, overrides):
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def create_quant_config(model_path, skip_layers=(), batch_num=1, activation_offset=True, **overrides):
    """The default quantization config of a model (``amctq config``) as a dict.

    ``skip_layers``, ``batch_num`` and ``activation_offset`` are those of ``amctq config``; any
    other keyword is a config key merged in (dicts merge key by key), e.g.
    ``activation={"algo": "mse"}``. The result has been read back by amctq, so an unknown key or
    a bad value raises :class:`amctq.Error` naming it.
    """
    model_path = os.fspath(model_path)
    text = _core._create_quant_config(model_path, list(skip_layers), int(batch_num), bool(activation_offset))
    if not overrides:
        return json.loads(text)
    config = json.loads(text)
    _merge(config, overrides)
    return json.loads(_core._canonical_config(model_path, json.dumps(config)))
