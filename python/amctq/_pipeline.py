"""quantize_model and create_quant_config: the pipeline of ``amctq quantize`` / ``amctq config``."""

import abc
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


def _pipeline_args(model_path, calib, config, out_dir, stem):
    # The model path and (config_path, config_text, batches, split, out_dir, stem) of _core's calls.
    model_path = os.fspath(model_path)
    config_path, config_text = "", ""
    if isinstance(config, dict):
        config_text = json.dumps(config)
    elif config is not None:
        config_path = os.fspath(config)
    split = _is_batch(calib)
    batches = [_as_inputs(calib)] if split else [_as_inputs(b) for b in calib]
    if stem is None:
        stem = os.path.splitext(os.path.basename(model_path))[0]
    return model_path, (config_path, config_text, batches, split, os.fspath(out_dir), stem)


def report(model_path, calib, config=None, out="report.html"):
    """Calibrate as :func:`quantize_model` does and write ``amctq report``'s HTML page to ``out``
    (no model is written). Returns ``[(layer, output SQNR dB, cosine), ...]``, worst layer first,
    the page's summary table."""
    model_path, args = _pipeline_args(model_path, calib, config, ".", "")
    config_path, config_text, batches, split = args[:4]
    return [tuple(r) for r in _core._report(model_path, config_path, config_text, batches, split, os.fspath(out))]


def quantize_model(model_path, calib, config=None, out_dir=".", stem=None, threads=None):
    """Quantize an ONNX model as ``amctq quantize`` does and return its record (record.json as a dict).

    ``calib`` is an array (the model's one input), a dict of arrays by input name (cut into the
    config's batch_num batches along their first axis, as ``--calib`` is), or an iterable of
    such arrays / dicts, each one batch. ``config`` is None (the default config), a dict (as
    :func:`create_quant_config` returns, or a Vitis AI config) or the path of a JSON file.
    Writes ``out_dir/<stem>_fake_quant_model.onnx``, ``<stem>_deploy_model.onnx``,
    ``record.json``, ``float_layers.json`` and ``amctq_manifest.json``; ``stem`` defaults to
    the model's file name without ``.onnx``. ``threads`` executors calibrate at once (None: one
    per core, as ``amctq quantize --threads``); the files are byte-identical for every count.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"amctq.quantize_model: threads must be a whole number >= 1 or None, got {threads!r}")
    model_path, args = _pipeline_args(model_path, calib, config, out_dir, stem)
    paths = _core._quantize_model(model_path, *args, threads=threads or 0)
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


class AutoEvaluatorBase(abc.ABC):
    """The evaluator of :func:`auto_quantize` (AMCT's ``AutoNuqEvaluatorBase``)."""

    @abc.abstractmethod
    def eval_model(self, model_path, batch_num):
        """The metric of the ONNX model at ``model_path`` (higher is better)."""

    @abc.abstractmethod
    def is_satisfied(self, original_metric, new_metric):
        """Whether ``new_metric`` is close enough to the float model's ``original_metric``."""


def auto_quantize(model_path, calib, evaluator, config=None, out_dir=".", strategy="fallback", max_evals=0,
                  stem=None):
    """``amctq auto`` with a Python evaluator (docs/auto_search.md): per-layer fallback to float,
    NUQ 16 / 32 / uniform, or W4A4 / W4A8 / W8A8, searched by sensitivity and binary search.

    ``calib``, ``config``, ``out_dir`` and ``stem`` are those of :func:`quantize_model`;
    ``evaluator`` is an :class:`AutoEvaluatorBase`; ``strategy`` is "fallback", "nuq" or
    "mixed"; ``max_evals`` (0: no limit) bounds the evaluations of quantized models. Returns a
    dict: original_metric, final_metric, evaluations, budget_exhausted, weight_bytes and the
    paths written (fake_quant_model, deploy_model, record, final_config, ranking_info,
    auto_search). Raises :class:`amctq.Error` when no candidate satisfies (no model is written).
    """
    if not isinstance(evaluator, AutoEvaluatorBase):
        raise TypeError("auto_quantize: evaluator must be an amctq.AutoEvaluatorBase")
    model_path, args = _pipeline_args(model_path, calib, config, out_dir, stem)
    result = _core._auto_quantize(model_path, *args, str(strategy), int(max_evals), evaluator)
    for note in result.pop("notes"):
        warnings.warn(f"amctq.auto_quantize: {note}", stacklevel=2)
    with open(result["auto_search"], encoding="utf-8") as f:
        log = json.load(f)
    for key in ("original_metric", "final_metric", "evaluations", "budget_exhausted", "weight_bytes"):
        result[key] = log[key]
    return result
