"""`amctq config --format vitis` and `amctq quantize --config` with Vitis AI (vai_q_pytorch) configs.

usage: cli_vitis_config.py AMCTQ MODEL.onnx CALIB.npy WORKDIR
Checks: config --format vitis writes the guide's default (diffs, std_round, symmetric, per-tensor,
signed, power_of_two, modal, CLE and bias correction on) and quantize runs it as written (the logits
quantized where they are made, 8-bit power-of-two biases); a key amctq does not honour is refused
with exit 1 and one line naming it; a Vitis config of keys amctq honours (with
layer_type and layer_name entries) quantizes and both saved models run in ONNX Runtime, with
record.json showing the per-layer settings (per-channel Conv weights, 4-bit weights by name); a
layer_name matching no layer and an entry with both layer_type and layer_name exit 1 naming the entry.
"""
import json
import os
import subprocess
import sys

from tally import Tally

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    sys.exit(f"cli_vitis_config: {e}; run scripts/setup.sh to install the Python peers")

tally = Tally("cli_vitis_config")
check = tally.check


def one_line_error(r, part, what):
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1 and part in lines[0],
          f"{what}: expected exit 1 and one line with {part!r}, got {r.returncode}: {r.stderr.strip()}")


def tool(*args):
    return subprocess.run([AMCTQ, *args], capture_output=True, text=True)


def main():
    global AMCTQ
    AMCTQ, model, calib, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    stem = os.path.splitext(os.path.basename(model))[0]

    default = os.path.join(work, "vitis_default.json")
    r = tool("config", "--model", model, "--format", "vitis", "--out", default)
    check(r.returncode == 0, f"config --format vitis failed: {r.stderr.strip()}")
    d = json.load(open(default))
    o = d.get("overall_quantize_config", {})
    want = {"method": "diffs", "round_mode": "std_round", "symmetry": True, "per_channel": False, "signed": True,
            "scale_type": "power_of_two", "calib_statistic_method": "modal", "bit_width": 8}
    check(all(o.get(k) == v for k, v in want.items()) and d.get("include_cle") is True
          and d.get("include_bias_corr") is True, f"config --format vitis wrote {d}, not the guide's default")
    r = tool("config", "--model", model, "--format", "onnx")
    check(r.returncode == 2, f"config --format onnx: expected usage error 2, got {r.returncode}")

    # The default runs as written: the logits (the last layer's output, which no layer reads) are
    # quantized where they are made, every bias on an 8-bit power-of-two grid of its own.
    as_written = os.path.join(work, "default")
    r = tool("quantize", "--model", model, "--calib", calib, "--config", default, "--out", as_written)
    check(r.returncode == 0, f"quantize with the guide's default failed: {r.stderr.strip()}")
    check("1 tensors quantized where they are made" in r.stderr, f"the default's output quantization: {r.stderr.strip()}")
    rec = json.load(open(os.path.join(as_written, "record.json"))) if r.returncode == 0 else {}
    points = rec.pop("quantized_tensors", {})
    check(list(points) == ["logits"] and points["logits"]["act_round_mode"] == "half_up",
          f"record.json quantized_tensors: {points}")
    biased = [v for v in rec.values() if "scale_bias" in v]
    check(len(biased) == 6 and all(v["bias_bits"] == 8 and np.log2(v["scale_bias"]) == round(np.log2(v["scale_bias"]))
                                   for v in biased), f"8-bit power-of-two biases: {biased}")
    d["convert_silu_to_hswish"] = True
    refused = os.path.join(work, "refused")
    silu = os.path.join(work, "silu.json")
    json.dump(d, open(silu, "w"))
    r = tool("quantize", "--model", model, "--calib", calib, "--config", silu, "--out", refused)
    one_line_error(r, "config.convert_silu_to_hswish: true", "quantize with convert_silu_to_hswish")
    check("[amctq.unsupported]" in r.stderr, f"the refusal is not an unsupported error: {r.stderr.strip()}")
    check(not os.path.exists(refused), "a refused config still created the output folder")

    cfg = {
        "convert_relu6_to_relu": False, "include_cle": True, "include_bias_corr": True,
        "keep_first_last_layer_accuracy": False, "keep_add_layer_accuracy": True, "target_device": "CPU",
        "quantizable_data_type": ["input", "weights", "bias", "activation"],
        "overall_quantize_config": {"bit_width": 8, "method": "maxmin", "round_mode": "half_even", "symmetry": True,
                                    "per_channel": False, "signed": True, "narrow_range": False,
                                    "scale_type": "float"},
        "tensor_quantize_config": {"bias": {"bit_width": 32},
                                   "activation": {"method": "diffs", "scale_type": "power_of_two",
                                                  "calib_statistic_method": "modal"}},
        "layer_quantize_config": [
            {"layer_type": "torch.nn.Conv2d", "quantizable_data_type": ["weights", "bias", "activation"],
             "overall_quantize_config": {"per_channel": True},
             "tensor_quantize_config": {"activation": {"per_channel": False}}},
            {"layer_name": "/16/Gemm", "quantizable_data_type": ["weights", "bias", "activation"],
             "overall_quantize_config": {"bit_width": 4},
             "tensor_quantize_config": {"bias": {"bit_width": 32}, "activation": {"bit_width": 8}}},
        ],
    }
    path = os.path.join(work, "vitis_ok.json")
    json.dump(cfg, open(path, "w"), indent=2)
    out = os.path.join(work, "out")
    r = tool("quantize", "--model", model, "--calib", calib, "--config", path, "--out", out)
    check(r.returncode == 0, f"quantize with an honoured Vitis config failed: {r.stderr.strip()}")
    x = np.load(calib)[:16]
    for f in (f"{stem}_fake_quant_model.onnx", f"{stem}_deploy_model.onnx"):
        s = ort.InferenceSession(os.path.join(out, f), providers=["CPUExecutionProvider"])
        y = s.run(None, {s.get_inputs()[0].name: x})[0]
        check(y.shape == (16, 10) and np.all(np.isfinite(y)), f"{f} gave {y.shape}")
    rec = json.load(open(os.path.join(out, "record.json")))
    check(len(rec["/0/Conv"]["scale_w"]) > 1 and len(rec["/16/Gemm"]["scale_w"]) == 1,
          "record.json: Conv weights not per channel, or Gemm weights not per tensor")
    # diffs activations: every layer input's scale a power of two, but /0/Conv's, which reads
    # the graph input (the "input" type: overall maxmin, float scale).
    # The logits, quantized where they are made (the last layer's diffs output grid), too.
    rec.update(rec.pop("quantized_tensors", {}))
    for name, v in rec.items():
        scales = v["scale_d"] if isinstance(v["scale_d"], list) else [v["scale_d"]]
        check(name == "/0/Conv" or all(s > 0 and 2.0 ** round(np.log2(s)) == s for s in scales),
              f"record.json: {name} scale_d {scales} is not a power of two")
    check("include_cle:" in r.stderr and "include_bias_corr:" in r.stderr,
          f"include_cle / include_bias_corr did not run: {r.stderr.strip()}")

    bad = dict(cfg, layer_quantize_config=[dict(cfg["layer_quantize_config"][1], layer_name="/99/Conv")])
    json.dump(bad, open(path, "w"))
    r = tool("quantize", "--model", model, "--calib", calib, "--config", path, "--out", os.path.join(work, "b"))
    one_line_error(r, "config.layer_quantize_config[0].layer_name: \"/99/Conv\" is not a quantizable layer",
                   "an unknown layer_name")
    bad = dict(cfg, layer_quantize_config=[dict(cfg["layer_quantize_config"][0], layer_name="/0/Conv")])
    json.dump(bad, open(path, "w"))
    r = tool("quantize", "--model", model, "--calib", calib, "--config", path, "--out", os.path.join(work, "b"))
    one_line_error(r, "config.layer_quantize_config[0]: gives both layer_type and layer_name",
                   "both layer_type and layer_name")
    tally.done()


if __name__ == "__main__":
    main()
