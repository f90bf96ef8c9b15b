"""Vitis AI (vai_q_pytorch) configs the tests and bench/vitis_accuracy.py run, as the user guide
UG1414 prints them: the default (what `amctq config --format vitis` writes) and the example
pytorch_quantize_config.json, whose layer_name entry (a vai_q_pytorch module name) names a
layer of the model at hand."""
import copy

DEFAULT = {
    "convert_relu6_to_relu": False, "include_cle": True, "include_bias_corr": True,
    "keep_first_last_layer_accuracy": False, "keep_add_layer_accuracy": False, "target_device": "DPU",
    "quantizable_data_type": ["input", "weights", "bias", "activation"],
    "overall_quantize_config": {"bit_width": 8, "method": "diffs", "round_mode": "std_round", "symmetry": True,
                                "per_channel": False, "signed": True, "narrow_range": False,
                                "scale_type": "power_of_two", "calib_statistic_method": "modal"},
    "tensor_quantize_config": {"activation": {"method": "diffs", "round_mode": "half_up"}}}

_EXAMPLE_OVERALL = {"bit_width": 8, "method": "maxmin", "round_mode": "half_even", "symmetry": True,
                    "per_channel": False, "signed": True, "narrow_range": False, "scale_type": "float",
                    "calib_statistic_method": "max"}


def default():
    return copy.deepcopy(DEFAULT)


def example(first_layer):
    """UG1414's example config; its layer_name entry names `first_layer`."""
    return copy.deepcopy({
        "convert_relu6_to_relu": False, "convert_silu_to_hswish": False, "include_cle": False,
        "keep_first_last_layer_accuracy": False, "keep_add_layer_accuracy": False, "include_bias_corr": False,
        "target_device": "CPU", "quantizable_data_type": ["input", "weights", "bias", "activation"],
        "overall_quantize_config": _EXAMPLE_OVERALL,
        "tensor_quantize_config": {"activation": {"method": "mse"}},
        "layer_quantize_config": [
            {"layer_type": "torch.nn.Conv2d", "layer_name": None,
             "quantizable_data_type": ["weights", "bias", "activation"], "overall_quantize_config": _EXAMPLE_OVERALL,
             "tensor_quantize_config": {"weights": {"per_channel": True}, "activation": {"method": "entropy"}}},
            {"layer_type": None, "layer_name": first_layer, "quantizable_data_type": ["weights", "bias", "activation"],
             "overall_quantize_config": _EXAMPLE_OVERALL,
             "tensor_quantize_config": {"activation": {"round_mode": "half_up"}}}]})
