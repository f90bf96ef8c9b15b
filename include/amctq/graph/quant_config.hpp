// quant_config: the quantization configuration of one model as plain C++ values — Vitis-style
// global settings, the hierarchical defaults (overall -> weights / activation / bias -> per
// layer type -> per layer name) and AMCT's per-layer algorithm choice, resolved to one entry
// per quantizable layer. io/config_json.hpp reads and writes it as JSON; validate() checks every
// value and names the offending key path, so a hand-edited config fails with the key, not later.
#ifndef AMCTQ_GRAPH_QUANT_CONFIG_HPP
#define AMCTQ_GRAPH_QUANT_CONFIG_HPP

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "amctq/algorithms/adaround.hpp"
#include "amctq/algorithms/observer.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/layers/table.hpp"
#include "amctq/quant_spec.hpp"

namespace amctq::graph {

enum class wts_algo { arq, nuq, adaround };

inline const char* to_string(wts_algo a) noexcept {
  switch (a) {
    case wts_algo::arq: return "arq";
    case wts_algo::nuq: return "nuq";
    case wts_algo::adaround: return "adaround";
  }
  return "?";
}

/// Activation (layer input) quantization of one layer: which activation_observer method runs
/// and its parameters. Only the parameters of `algo` are used; the others keep their defaults so
/// switching method in an edited config just works.
struct activation_quant {
  int num_bits = 8;             ///< 4, 8 or 16 (AMCT ACT_SUPPORT_NUM_BITS)
  bool asymmetric = true;       ///< with an offset (zero point); global activation_offset by default
  bool channel_wise = false;    ///< one scale per channel of the layer input (the layer kind's channel axis)
  calib_method algo = calib_method::ifmr;  ///< any observer method (config key act_algo)
  bool skip_nonfinite = false;  ///< ignore NaN / inf in the calibration activations instead of failing
  // IFMR
  float max_percentile = 0.999999f;  ///< (0.5, 1]
  float min_percentile = 0.999999f;  ///< (0.5, 1]
  float search_range_start = 0.7f;   ///< 0 < start < end
  float search_range_end = 1.3f;
  float search_step = 0.01f;         ///< (0, 0.6] and <= end - start
  // HFMG
  int num_of_bins = 4096;            ///< {1024, 2048, 4096, 8192}
  // entropy / percentile histograms (ONNX Runtime defaults)
  int hist_bins = 2048;              ///< [128, 65536]
  float percentile = 99.999f;        ///< (50, 100], percent as ONNX Runtime's PercentileCalibrater
  // moving_average
  float averaging_constant = 0.01f;  ///< (0, 1], PyTorch MovingAverageMinMaxObserver's default
  // pot_diffs (Vitis AI diffs)
  int diffs_scope = 5;               ///< power-of-two positions tried, [1, 64]
  batch_statistic calib_statistic_method = batch_statistic::modal;  ///< across batches
  /// power_of_two: the method's scale rounded up to 2^k (pot_diffs gives one anyway).
  scale_type scale_kind = scale_type::float32;
  /// How x / s rounds in the saved models; other than half_even, per tensor only.
  round_mode rounding = round_mode::half_even;
  /// false: the unsigned grid [0, 2^b - 1] (Vitis `signed: false`), stored as int8 with the zero
  /// point moved down by 2^(b-1), which represents the same values exactly.
  bool is_signed = true;
  bool narrow_range = false;  ///< drop the lowest code (int8: [-127, 127])
};

/// Weight quantization of one layer.
struct weight_quant {
  int num_bits = 8;          ///< 2..8 (int8 storage)
  bool channel_wise = true;  ///< one scale per output channel
  wts_algo algo = wts_algo::arq;
  int num_steps = 32;        ///< NUQ levels kept, {16, 32}
  int num_of_iteration = 1;  ///< NUQ refinement passes, 0..5
  adaround_options adaround; ///< learned rounding (wts_algo adaround), starting from ARQ's scales
  /// The range -> scale rule (arq_options::how). amct: AMCT's 127/128 rule, 2^(b-1) - 1 steps
  /// on the dominant side; pytorch / onnxruntime: max|w| / (2^(b-1) - 0.5) on the full
  /// [-2^(b-1), 2^(b-1) - 1] grid, a finer step that pays at 4 bits.
  preset how = preset::amct;
  /// power_of_two: scales 2^k, ARQ's rounded up (or, with diffs_scope > 0, Vitis diffs').
  scale_type scale_kind = scale_type::float32;
  /// > 0: Vitis diffs chooses the power-of-two scale among this many positions, per tensor.
  int diffs_scope = 0;
  round_mode rounding = round_mode::half_even;  ///< how w / s rounds to the int8 codes
  bool narrow_range = false;  ///< drop the lowest code (int8: [-127, 127])
};

/// Bias quantization of one layer. 32 bits: the int32 code on the accumulator's grid s_d · s_w
/// that every ONNX integer op takes. 2..8 bits (Vitis): first onto a grid of its own, one
/// symmetric power-of-two or float scale for the whole bias (min/max, or diffs' search), and
/// the int32 accumulator code made from that value.
struct bias_quant {
  int num_bits = 32;
  round_mode rounding = round_mode::half_even;  ///< how b / s rounds on the bias grid (or onto int32)
  scale_type scale_kind = scale_type::float32;  ///< of the bias grid (num_bits < 32)
  int diffs_scope = 0;  ///< > 0: diffs chooses the bias grid's power-of-two scale
};

/// The part of a layer's settings that layer_type / layer_name overrides may change.
struct layer_settings {
  bool quant_enable = true;
  activation_quant activation;
  weight_quant weights;
  bias_quant bias;
  /// The grid of the layer's output where outputs are quantized (global quantize_outputs);
  /// unset: the layer's activation settings.
  std::optional<activation_quant> output;
  std::optional<float> dmq_balancer_param;  ///< DMQ / SmoothQuant migration strength, [0.2, 0.8]
};

/// One quantizable layer as found in the graph, with its resolved settings.
struct layer_config {
  std::string name;     ///< ONNX node name (the record.json key)
  std::string op_type;  ///< a layer kind of layers/table.hpp
  layer_settings settings;
};

/// Vitis AI global switches.
struct global_settings {
  bool include_cle = false;                     ///< cross-layer equalisation before quantization
  bool include_bias_corr = false;               ///< bias correction after weight quantization
  bool convert_relu6_to_relu = false;
  bool keep_first_last_layer_accuracy = false;  ///< leave the first and last quantizable layer in float
  /// false: Add and Concat inputs and outputs are quantized too, with the top-level activation
  /// settings (graph/tensor_points.hpp).
  bool keep_add_layer_accuracy = true;
  /// Every quantized layer's output is quantized too (Vitis `activation`), where no quantized
  /// layer reads it already: before a residual Add, a model output, ...
  bool quantize_outputs = false;
  std::string target = "onnxruntime";           ///< deploy target: "onnxruntime" (QLinear* ops)
};

struct quant_config {
  int version = 1;
  global_settings global;
  int batch_num = 1;               ///< calibration batches required (> 0)
  bool activation_offset = true;   ///< default asymmetric activations
  std::vector<std::string> skip_layers;
  int overall_num_bits = 8;        ///< "overall": the bit width weights and activations start from
  activation_quant activation;     ///< "activation": defaults of every layer's activation
  weight_quant weights;            ///< "weights": defaults of every layer's weights
  bias_quant bias;                 ///< "bias": defaults of every layer's bias
  std::map<std::string, layer_settings> layer_type;  ///< per op type overrides, resolved
  std::vector<layer_config> layers;                  ///< every quantizable layer, resolved

  const layer_config* find(const std::string& name) const noexcept {
    for (const auto& l : layers)
      if (l.name == name) return &l;
    return nullptr;
  }
  layer_config* find(const std::string& name) noexcept {
    for (auto& l : layers)
      if (l.name == name) return &l;
    return nullptr;
  }
};

namespace detail {

// A float as the shortest text that reads back as the same float ("0.6", not "0.600000024").
inline std::string num(float v) {
  char buf[32];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return buf;
}

inline void config_fail(const std::string& key, const std::string& msg) {
  AMCTQ_THROW(errc::invalid_argument, "config", key, ": ", msg);
}

}  // namespace detail

/// Throws amctq::error naming the key path ("config.layers./conv1/Conv.activation.search_step")
/// of the first value out of its range.
inline void validate(const activation_quant& a, const std::string& path) {
  using detail::config_fail;
  using amctq::detail::concat;
  if (!(a.num_bits == 4 || a.num_bits == 8 || a.num_bits == 16))
    config_fail(path + ".num_bits", concat("must be 4, 8 or 16, got ", a.num_bits));
  auto in_half_open = [&](float v, float lo, float hi, const char* key) {
    if (!(std::isfinite(v) && v > lo && v <= hi))
      config_fail(path + "." + key, concat("must be in (", detail::num(lo), ", ", detail::num(hi), "], got ", detail::num(v)));
  };
  in_half_open(a.max_percentile, 0.5f, 1.0f, "max_percentile");
  in_half_open(a.min_percentile, 0.5f, 1.0f, "min_percentile");
  if (!(std::isfinite(a.search_range_start) && a.search_range_start > 0.0f))
    config_fail(path + ".search_range", concat("start must be > 0, got ", detail::num(a.search_range_start)));
  if (!(std::isfinite(a.search_range_end) && a.search_range_end > a.search_range_start))
    config_fail(path + ".search_range",
                concat("end must be > start (", detail::num(a.search_range_start), "), got ", detail::num(a.search_range_end)));
  in_half_open(a.search_step, 0.0f, 0.6f, "search_step");
  if (a.search_step > a.search_range_end - a.search_range_start + 1e-6f)
    config_fail(path + ".search_step", concat("must not exceed search_range end - start (",
                                              detail::num(a.search_range_end - a.search_range_start), "), got ", detail::num(a.search_step)));
  if (!(a.num_of_bins == 1024 || a.num_of_bins == 2048 || a.num_of_bins == 4096 || a.num_of_bins == 8192))
    config_fail(path + ".num_of_bins", concat("must be 1024, 2048, 4096 or 8192, got ", a.num_of_bins));
  if (!(a.hist_bins >= 128 && a.hist_bins <= 65536))
    config_fail(path + ".hist_bins", concat("must be in [128, 65536], got ", a.hist_bins));
  in_half_open(a.percentile, 50.0f, 100.0f, "percentile");
  in_half_open(a.averaging_constant, 0.0f, 1.0f, "averaging_constant");
  if (!(a.diffs_scope >= 1 && a.diffs_scope <= 64))
    config_fail(path + ".diffs_scope", concat("must be in [1, 64], got ", a.diffs_scope));
  // The saved models round a per-channel grid with QuantizeLinear, half to even.
  if (a.rounding != round_mode::half_even && a.channel_wise)
    config_fail(path + ".round_mode", concat(to_string(a.rounding), " needs per-tensor activations (channel_wise false)"));
  if (!a.is_signed && a.num_bits > 8)
    config_fail(path + ".signed", concat("false needs num_bits <= 8 (int8 storage), got ", a.num_bits));
}

inline void validate(const bias_quant& b, const std::string& path) {
  using detail::config_fail;
  using amctq::detail::concat;
  if (!(b.num_bits == 32 || (b.num_bits >= 2 && b.num_bits <= 8)))
    config_fail(path + ".num_bits", concat("must be 32 (the accumulator's grid) or in [2, 8], got ", b.num_bits));
  if (!(b.diffs_scope >= 0 && b.diffs_scope <= 64))
    config_fail(path + ".diffs_scope", concat("must be in [0, 64], got ", b.diffs_scope));
  if (b.num_bits == 32 && (b.diffs_scope > 0 || b.scale_kind != scale_type::float32))
    config_fail(path + ".num_bits", "32 puts the bias on its accumulator's grid s_d * s_w; scale_type and diffs_scope "
                                    "apply to a bias grid of 2 to 8 bits");
  if (b.diffs_scope > 0 && b.scale_kind != scale_type::power_of_two)
    config_fail(path + ".diffs_scope", "diffs searches power-of-two scales: needs scale_type power_of_two");
}

inline void validate(const weight_quant& w, const std::string& path) {
  using detail::config_fail;
  using amctq::detail::concat;
  if (!(w.num_bits >= 2 && w.num_bits <= 8)) config_fail(path + ".num_bits", concat("must be in [2, 8], got ", w.num_bits));
  if (!(w.num_steps == 16 || w.num_steps == 32))
    config_fail(path + ".num_steps", concat("must be 16 or 32, got ", w.num_steps));
  if (!(w.num_of_iteration >= 0 && w.num_of_iteration <= 5))
    config_fail(path + ".num_of_iteration", concat("must be in [0, 5], got ", w.num_of_iteration));
  if (!(w.diffs_scope >= 0 && w.diffs_scope <= 64))
    config_fail(path + ".diffs_scope", concat("must be in [0, 64], got ", w.diffs_scope));
  if (w.diffs_scope > 0 && (w.channel_wise || w.scale_kind != scale_type::power_of_two))
    config_fail(path + ".diffs_scope", "diffs searches one power-of-two scale per tensor: needs channel_wise false and "
                                       "scale_type power_of_two");
  if (w.algo == wts_algo::nuq && w.num_bits != 8)
    config_fail(path + ".num_bits", concat("NUQ selects levels of the 8-bit grid; num_bits must be 8, got ", w.num_bits));
  if (w.algo == wts_algo::adaround && w.rounding != round_mode::half_even)
    config_fail(path + ".round_mode", concat("AdaRound learns each weight's rounding; round_mode must stay half_even, got ",
                                             to_string(w.rounding)));
  const adaround_options& a = w.adaround;
  const std::string ap = path + ".adaround";
  if (!(a.iterations >= 1 && a.iterations <= 1000000))
    config_fail(ap + ".iterations", concat("must be in [1, 1000000], got ", a.iterations));
  if (!(a.batch >= 1 && a.batch <= 65536)) config_fail(ap + ".batch", concat("must be in [1, 65536], got ", a.batch));
  if (!(a.columns >= a.batch && a.columns <= (1 << 24)))
    config_fail(ap + ".columns", concat("must be in [batch (", a.batch, "), 16777216], got ", a.columns));
  if (!(std::isfinite(a.reg_param) && a.reg_param > 0.0f && a.reg_param < 1.0f))
    config_fail(ap + ".reg_param", concat("must be in (0, 1), got ", detail::num(a.reg_param)));
  if (!(std::isfinite(a.beta_start) && std::isfinite(a.beta_end) && a.beta_start > a.beta_end && a.beta_end > 0.0f))
    config_fail(ap + ".beta_range", concat("must be [start, end] with start > end > 0, got [", detail::num(a.beta_start),
                                           ", ", detail::num(a.beta_end), "]"));
  if (!(a.warm_start >= 0.0f && a.warm_start < 1.0f))
    config_fail(ap + ".warm_start", concat("must be in [0, 1), got ", detail::num(a.warm_start)));
  if (!(std::isfinite(a.learning_rate) && a.learning_rate > 0.0f && a.learning_rate <= 1.0f))
    config_fail(ap + ".learning_rate", concat("must be in (0, 1], got ", detail::num(a.learning_rate)));
  if (!(a.drop_prob >= 0.0f && a.drop_prob <= 1.0f))
    config_fail(ap + ".drop_prob", concat("must be in [0, 1], got ", detail::num(a.drop_prob)));
}

inline void validate(const layer_settings& s, const std::string& path) {
  validate(s.activation, path + ".activation");
  validate(s.weights, path + ".weights");
  validate(s.bias, path + ".bias");
  if (s.output) {
    validate(*s.output, path + ".output");
    if (s.output->channel_wise)
      detail::config_fail(path + ".output.channel_wise", "layer outputs are quantized per tensor");
  }
  if (s.dmq_balancer_param && !(*s.dmq_balancer_param >= 0.2f && *s.dmq_balancer_param <= 0.8f))
    detail::config_fail(path + ".dmq_balancer_param",
                        amctq::detail::concat("must be in [0.2, 0.8], got ", detail::num(*s.dmq_balancer_param)));
}

inline void validate(const quant_config& c) {
  using detail::config_fail;
  using amctq::detail::concat;
  if (c.version != 1) config_fail("config.version", concat("must be 1, got ", c.version));
  if (c.batch_num < 1) config_fail("config.batch_num", concat("must be >= 1, got ", c.batch_num));
  if (!(c.overall_num_bits >= 2 && c.overall_num_bits <= 16))
    config_fail("config.overall.num_bits", concat("must be in [2, 16], got ", c.overall_num_bits));
  validate(c.bias, "config.bias");
  if (c.global.target != "onnxruntime")
    config_fail("config.global.target", concat("must be \"onnxruntime\", got \"", c.global.target, "\""));
  validate(c.activation, "config.activation");
  validate(c.weights, "config.weights");
  for (const auto& [type, s] : c.layer_type) {
    if (!is_quantizable_op(type))
      config_fail("config.layer_type." + type, "is not a quantizable op type (" + layer_kind_names() + ")");
    validate(s, "config.layer_type." + type);
  }
  for (const auto& l : c.layers) validate(l.settings, "config.layers." + l.name);
  // A config that lists its layers (as `amctq config` writes it) must skip one of them; a
  // config without a list is checked against the model by the quantizer.
  for (const auto& s : c.skip_layers)
    if (!c.layers.empty() && !c.find(s))
      config_fail("config.skip_layers", concat("names '", s, "', which is not a quantizable layer of the model"));
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_QUANT_CONFIG_HPP
