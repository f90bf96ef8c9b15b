"""amctq.auto_quantize with a Python evaluator (amctq.AutoEvaluatorBase) on the bundled CNN: a known
sensitive layer kept float, the same result as `amctq auto`, errors of the evaluator and of an
unsatisfiable search."""

import json

import numpy as np
import onnx
import pytest

import amctq


@pytest.fixture(scope="module")
def files(root):
    return root / "models" / "fmnist_cnn.onnx", root / "models" / "fmnist_calib.npy"


def _quantized_layers(path):
    g = onnx.load(path).graph
    made_by = {o: n for n in g.node for o in n.output}
    return {n.name for n in g.node
            if any(made_by.get(i) is not None and made_by[i].op_type == "DequantizeLinear" for i in n.input[1:2])}


class Sensitive(amctq.AutoEvaluatorBase):
    """80 when `layer` is quantized, else 90; satisfied within 0.5."""

    def __init__(self, layer):
        self.layer = layer
        self.calls = []

    def eval_model(self, model_path, batch_num):
        q = _quantized_layers(model_path)
        self.calls.append(sorted(q))
        return 80.0 if self.layer in q else 90.0

    def is_satisfied(self, original_metric, new_metric):
        return original_metric - new_metric <= 0.5


def test_sensitive_layer_kept_float(files, tmp_path):
    model, calib = files
    ev = Sensitive("/11/Conv")
    r = amctq.auto_quantize(model, np.load(calib), ev, out_dir=tmp_path)
    assert r["final_metric"] == 90.0 and r["original_metric"] == 90.0
    assert r["evaluations"] == len(ev.calls)
    rank = json.loads((tmp_path / "ranking_info.json").read_text())["layers"]
    at = [l["name"] for l in rank].index("/11/Conv")
    assert [l["chosen"] for l in rank] == ["float" if i <= at else "quantized" for i in range(len(rank))]
    cfg = json.loads((tmp_path / "final_config.json").read_text())
    assert cfg["layers"]["/11/Conv"]["quant_enable"] is False
    # The same search again: the same evaluations in the same order.
    again = Sensitive("/11/Conv")
    amctq.auto_quantize(model, np.load(calib), again, out_dir=tmp_path / "again")
    assert again.calls == ev.calls


def test_evaluator_errors(files, tmp_path):
    model, calib = files

    class Raises(Sensitive):
        def eval_model(self, model_path, batch_num):
            raise RuntimeError("evaluator broke")

    with pytest.raises(RuntimeError, match="evaluator broke"):
        amctq.auto_quantize(model, np.load(calib), Raises("x"), out_dir=tmp_path / "raises")
    with pytest.raises(TypeError):
        amctq.auto_quantize(model, np.load(calib), object(), out_dir=tmp_path / "plain")

    class Never(Sensitive):
        def eval_model(self, model_path, batch_num):
            return 100.0 if str(model_path) == str(model) else 0.0

    out = tmp_path / "never"
    with pytest.raises(amctq.Error, match="even with every searched layer"):
        amctq.auto_quantize(model, np.load(calib), Never("x"), out_dir=out)
    assert not out.exists() or not list(out.glob("*.onnx"))
