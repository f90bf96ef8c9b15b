// Vitis AI's vai_q_pytorch quantization config (UG1414, "Configuration of Quantization
// Strategy") read as written, detected by its `overall_quantize_config` key, and mapped onto
// amctq's quant_config for one model (docs/pipeline.md, "Vitis AI configs"). Two steps, because
// a layer_name can only be checked against a model: parse_vitis_config() checks the file's keys
// and values; to_quant_config() resolves the guide's hierarchy (overall, tensor, layer by type,
// layer by name) for every layer of the model and maps each setting onto what amctq's pipeline
// does. A value amctq cannot honour is an errc::unsupported error naming the key path that set
// it, never dropped: the user asked for it, and a model quantized otherwise would mislead.
#ifndef AMCTQ_IO_VITIS_CONFIG_JSON_HPP
#define AMCTQ_IO_VITIS_CONFIG_JSON_HPP

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/passes/lower_qoperator.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/graph/quant_config.hpp"
#include "amctq/io/config_json.hpp"

namespace amctq::io {

namespace vitis {

/// The guide's four tensor types, in its order.
enum tensor_type { input = 0, weights = 1, bias = 2, activation = 3 };
inline constexpr std::array<const char*, 4> tensor_type_names = {"input", "weights", "bias", "activation"};

/// One tensor type's quantize settings, with the key path that last set each of them, so that
/// an error names the line the user wrote (or says the value is the guide's default).
struct tensor_params {
  int bit_width = 8;
  std::string method = "diffs";
  std::string round_mode = "std_round";
  bool symmetry = true;
  bool per_channel = false;
  bool is_signed = true;
  bool narrow_range = false;
  std::string scale_type = "power_of_two";
  std::string calib_statistic_method = "modal";
  std::optional<float> percentage;
  std::map<std::string, std::string> from;  ///< key -> path that set it

  std::string origin(const std::string& key) const {
    const auto it = from.find(key);
    return it != from.end() ? it->second : "overall_quantize_config." + key + " (absent: the guide's default)";
  }
};

/// quantizable_data_type and the four types' settings at one level of the hierarchy.
struct settings {
  std::array<bool, 4> quantized{true, true, true, true};
  std::string quantized_from = "quantizable_data_type";
  std::array<tensor_params, 4> params;
};

/// One layer_quantize_config entry: the keys it names, applied on top of the level below it.
struct layer_entry {
  std::string path;        ///< "config.layer_quantize_config[2]"
  std::string layer_type;  ///< as written ("torch.nn.Conv2d")
  std::vector<std::string> op_types;  ///< the ONNX kinds it names
  std::string layer_name;
  io::detail::ojson body;  ///< quantizable_data_type, overall_quantize_config, tensor_quantize_config
};

struct config {
  bool convert_relu6_to_relu = false;
  bool include_cle = true;  // the guide's defaults
  bool include_bias_corr = true;
  bool keep_first_last_layer_accuracy = false;
  bool keep_add_layer_accuracy = false;
  std::string target_device = "DPU";
  settings global;
  std::vector<layer_entry> by_type, by_name;
};

namespace detail {

using io::detail::get_bool;
using io::detail::get_int;
using io::detail::get_string;
using io::detail::key_error;
using io::detail::ojson;

[[noreturn]] inline void unsupported(const std::string& key, const std::string& msg) {
  AMCTQ_THROW(errc::unsupported, "config", key, ": ", msg);
}

inline std::string one_of(const ojson& j, const std::string& path, std::initializer_list<const char*> allowed) {
  const std::string s = get_string(j, path);
  std::string names;
  for (const char* a : allowed) {
    if (s == a) return s;
    names += (names.empty() ? "" : ", ") + std::string(a);
  }
  key_error(path, "must be one of " + names + ", got \"" + io::detail::clip(s) + "\"");
}

// The guide's per-type defaults (vai_q_pytorch's DPU defaults): activations round half up,
// everything else std_round.
inline settings guide_defaults() {
  settings s;
  s.params[activation].round_mode = "half_up";
  return s;
}

// Applies the quantize-parameter keys of `j` onto p. calib_statistic_method only reaches the
// activation-like types, as in vai_q_pytorch.
inline void apply_params(const ojson& j, tensor_params& p, const std::string& path, tensor_type t) {
  io::detail::allow_keys(j, path, {"bit_width", "method", "round_mode", "symmetry", "per_channel", "signed",
                                   "narrow_range", "scale_type", "calib_statistic_method", "percentage"});
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = it.key(), kp = path + "." + k;
    if (k == "bit_width") p.bit_width = get_int(*it, kp);
    else if (k == "method") p.method = one_of(*it, kp, {"maxmin", "percentile", "entropy", "mse", "diffs"});
    else if (k == "round_mode") p.round_mode = one_of(*it, kp, {"half_even", "half_up", "half_down", "std_round"});
    else if (k == "symmetry") p.symmetry = get_bool(*it, kp);
    else if (k == "per_channel") p.per_channel = get_bool(*it, kp);
    else if (k == "signed") p.is_signed = get_bool(*it, kp);
    else if (k == "narrow_range") p.narrow_range = get_bool(*it, kp);
    else if (k == "scale_type") {
      // vai_q_pytorch's own spelling is "poweroftwo"; the guide writes "power_of_two".
      p.scale_type = one_of(*it, kp, {"float", "power_of_two", "poweroftwo"});
      if (p.scale_type == "poweroftwo") p.scale_type = "power_of_two";
    } else if (k == "calib_statistic_method") {
      if (t != activation && t != input) continue;
      p.calib_statistic_method = one_of(*it, kp, {"modal", "max", "mean", "median"});
    } else if (k == "percentage") {
      const float v = io::detail::get_float(*it, kp);
      if (!(v > 0.0f && v <= 100.0f)) key_error(kp, "must be in (0, 100], got " + io::detail::quoted(*it));
      p.percentage = v;
    }
    if (k != "calib_statistic_method" || t == activation || t == input) p.from[k] = kp;
  }
  // A percentage set below a level that changes the method away from percentile is stale there
  // (vai_q_pytorch reads it only with percentile); one given with such a method is an error.
  if (j.contains("method") && p.method != "percentile" && !j.contains("percentage")) p.percentage.reset();
}

inline std::array<bool, 4> parse_types(const ojson& j, const std::string& path) {
  if (!j.is_array()) key_error(path, "must be a list of input, weights, bias, activation, got " + io::detail::quoted(j));
  std::array<bool, 4> out{false, false, false, false};
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const std::string s = one_of(j[i], p, {"input", "weights", "bias", "activation"});
    for (std::size_t t = 0; t < 4; ++t)
      if (s == tensor_type_names[t]) {
        if (out[t]) key_error(p, "\"" + s + "\" is listed twice");
        out[t] = true;
      }
  }
  return out;
}

// One level of the hierarchy: `j` holds quantizable_data_type, overall_quantize_config and
// tensor_quantize_config (the top level or a layer entry); each overrides what it names.
inline void apply_level(const ojson& j, settings& s, const std::string& path) {
  if (j.contains("quantizable_data_type")) {
    s.quantized = parse_types(j["quantizable_data_type"], path + ".quantizable_data_type");
    s.quantized_from = path + ".quantizable_data_type";
  }
  if (j.contains("overall_quantize_config"))
    for (std::size_t t = 0; t < 4; ++t)
      if (s.quantized[t])
        apply_params(j["overall_quantize_config"], s.params[t], path + ".overall_quantize_config",
                     static_cast<tensor_type>(t));
  if (j.contains("tensor_quantize_config")) {
    const auto& tq = j["tensor_quantize_config"];
    io::detail::allow_keys(tq, path + ".tensor_quantize_config", {"input", "weights", "bias", "activation"});
    for (std::size_t t = 0; t < 4; ++t)
      if (tq.contains(tensor_type_names[t]))
        apply_params(tq[tensor_type_names[t]], s.params[t],
                     path + ".tensor_quantize_config." + tensor_type_names[t], static_cast<tensor_type>(t));
  }
}

// PyTorch module classes (the guide's layer_type) -> the ONNX kinds they export to. A Linear
// exports to Gemm on 2-D input and to MatMul (+ Add) otherwise.
inline std::vector<std::string> onnx_kinds(const std::string& layer_type) {
  const std::string cls = layer_type.substr(layer_type.rfind('.') == std::string::npos ? 0 : layer_type.rfind('.') + 1);
  static const std::map<std::string, std::vector<std::string>> torch = {
      {"Conv1d", {"Conv"}},          {"Conv2d", {"Conv"}},          {"Conv3d", {"Conv"}},
      {"ConvTranspose1d", {"ConvTranspose"}}, {"ConvTranspose2d", {"ConvTranspose"}},
      {"ConvTranspose3d", {"ConvTranspose"}}, {"Linear", {"Gemm", "MatMul"}},
      {"AvgPool1d", {"AveragePool"}}, {"AvgPool2d", {"AveragePool"}}, {"AvgPool3d", {"AveragePool"}},
      {"Embedding", {"Gather"}}};
  const auto it = torch.find(cls);
  if (it != torch.end()) return it->second;
  if (graph::is_quantizable_op(layer_type)) return {layer_type};
  return {};
}

}  // namespace detail

/// True when `text` is a vai_q_pytorch config: a JSON object with `overall_quantize_config`.
/// Parsed with the config reader's own guards (depth, duplicate keys), which throw as it would;
/// text that is not JSON at all is left to the amctq reader to report.
inline bool is_vitis_config_text(const std::string& text) {
  try {
    const auto j = io::detail::parse_unique_keys(text);
    return j.is_object() && j.contains("overall_quantize_config");
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

/// Parses and checks a vai_q_pytorch config: every key known, every value of its type and
/// range, required keys present, layer entries with exactly one of layer_type / layer_name.
inline config parse_vitis_config(const std::string& text) {
  using detail::ojson;
  ojson j;
  try {
    j = io::detail::parse_unique_keys(text);
  } catch (const nlohmann::json::exception& e) {
    AMCTQ_THROW(errc::parse, "config", "not valid JSON: ", e.what());
  }
  io::detail::allow_keys(j, "config",
                         {"convert_relu6_to_relu", "convert_silu_to_hswish", "change_concat_input_fix",
                          "change_pool_input_fix", "include_cle", "include_bias_corr", "keep_first_last_layer_accuracy",
                          "keep_add_layer_accuracy", "target_device", "quantizable_data_type", "overall_quantize_config",
                          "tensor_quantize_config", "layer_quantize_config"});
  // vai_q_pytorch's other switches (the guide's example writes the first): accepted when off.
  for (const char* k : {"convert_silu_to_hswish", "change_concat_input_fix", "change_pool_input_fix"})
    if (j.contains(k) && detail::get_bool(j[k], std::string("config.") + k))
      detail::unsupported(std::string("config.") + k, "true is not supported (it changes the model or DPU fix "
                                                      "positions amctq does not model); set it to false");
  for (const char* req : {"target_device", "quantizable_data_type", "overall_quantize_config"})
    if (!j.contains(req)) detail::key_error(std::string("config.") + req, "is required in a Vitis AI config");
  config c;
  auto flag = [&](const char* k, bool& v) {
    if (j.contains(k)) v = detail::get_bool(j[k], std::string("config.") + k);
  };
  flag("convert_relu6_to_relu", c.convert_relu6_to_relu);
  flag("include_cle", c.include_cle);
  flag("include_bias_corr", c.include_bias_corr);
  flag("keep_first_last_layer_accuracy", c.keep_first_last_layer_accuracy);
  flag("keep_add_layer_accuracy", c.keep_add_layer_accuracy);
  c.target_device = detail::one_of(j["target_device"], "config.target_device", {"DPU", "CPU", "GPU"});
  c.global = detail::guide_defaults();
  detail::apply_level(j, c.global, "config");
  if (j.contains("layer_quantize_config")) {
    const auto& lq = j["layer_quantize_config"];
    if (!lq.is_array()) detail::key_error("config.layer_quantize_config", "must be a list of layer entries");
    for (std::size_t i = 0; i < lq.size(); ++i) {
      layer_entry e;
      e.path = "config.layer_quantize_config[" + std::to_string(i) + "]";
      const ojson& x = lq[i];
      io::detail::allow_keys(x, e.path, {"layer_type", "layer_name", "quantizable_data_type", "overall_quantize_config",
                                         "tensor_quantize_config"});
      // The guide's example writes the unused one as null.
      const bool by_type = x.contains("layer_type") && !x["layer_type"].is_null();
      const bool by_name = x.contains("layer_name") && !x["layer_name"].is_null();
      if (by_type == by_name)
        detail::key_error(e.path, by_type ? "gives both layer_type and layer_name; an entry names one"
                                          : "needs layer_type or layer_name");
      for (const char* req : {"quantizable_data_type", "overall_quantize_config"})
        if (!x.contains(req)) detail::key_error(e.path + "." + req, "is required in a layer entry");
      // Checked here, so that a bad value is reported even when no layer of the model matches.
      settings probe = c.global;
      detail::apply_level(x, probe, e.path);
      e.body = x;
      if (by_type) {
        e.layer_type = detail::get_string(x["layer_type"], e.path + ".layer_type");
        e.op_types = detail::onnx_kinds(e.layer_type);
        if (e.op_types.empty())
          detail::key_error(e.path + ".layer_type",
                            "\"" + io::detail::clip(e.layer_type) +
                                "\" is not a quantizable layer type (torch.nn.Conv1d/2d/3d, ConvTranspose1d/2d/3d, "
                                "Linear, AvgPool1d/2d/3d, Embedding, or an ONNX kind: " +
                                graph::layer_kind_names() + ")");
        c.by_type.push_back(std::move(e));
      } else {
        e.layer_name = detail::get_string(x["layer_name"], e.path + ".layer_name");
        c.by_name.push_back(std::move(e));
      }
    }
  }
  return c;
}

namespace detail {

// Vitis method names -> amctq's activation observers.
inline calib_method activation_method(const tensor_params& p) {
  if (p.method == "maxmin") return calib_method::minmax;
  if (p.method == "percentile") return calib_method::percentile;
  if (p.method == "entropy") return calib_method::entropy;
  if (p.method == "mse") return calib_method::mse;
  return calib_method::pot_diffs;
}

inline batch_statistic statistic_of(const std::string& s) {
  for (batch_statistic b : {batch_statistic::modal, batch_statistic::max, batch_statistic::mean, batch_statistic::median})
    if (s == to_string(b)) return b;
  return batch_statistic::modal;
}

// Vitis round modes -> amctq's; std_round is C's round(), half away from zero.
inline round_mode rounding_of(const tensor_params& p) {
  if (p.round_mode == "half_up") return round_mode::half_up;
  if (p.round_mode == "half_down") return round_mode::half_down;
  if (p.round_mode == "std_round") return round_mode::half_away;
  return round_mode::half_even;
}

// Unsigned grids hold non-negative values; weights and biases have both signs.
inline void check_signed(const tensor_params& p, const char* what) {
  if (!p.is_signed)
    unsupported(p.origin("signed"), std::string("unsigned ") + what + " are not supported (they hold both signs; "
                                                                       "unsigned grids are for activations)");
}

/// A layer input's grid: the activation observer method and its parameters.
inline graph::activation_quant to_activation(const tensor_params& p, const char* what) {
  graph::activation_quant a;
  if (p.bit_width != 4 && p.bit_width != 8)
    unsupported(p.origin("bit_width"), "bit_width " + std::to_string(p.bit_width) + " for " + what +
                                           " cannot be exported; amctq's activation grids are 4 or 8 bits (int8 storage)");
  a.num_bits = p.bit_width;
  a.algo = activation_method(p);
  a.asymmetric = !p.symmetry;
  a.channel_wise = p.per_channel;
  a.rounding = rounding_of(p);
  a.is_signed = p.is_signed;
  a.narrow_range = p.narrow_range;
  if (a.channel_wise && a.rounding != round_mode::half_even)
    unsupported(p.origin("round_mode"), "round_mode " + p.round_mode + " for per-channel " + what +
                                            " is not supported (per-tensor grids take every round mode)");
  a.scale_kind = p.scale_type == "float" ? scale_type::float32 : scale_type::power_of_two;
  if (a.algo == calib_method::pot_diffs) {
    if (p.scale_type != "power_of_two")
      unsupported(p.origin("scale_type"), std::string("method diffs searches power-of-two scales; scale_type float "
                                                      "cannot go with it for ") + what);
    a.calib_statistic_method = statistic_of(p.calib_statistic_method);
    // vai_q_pytorch tries a single position for graph inputs (the one whose grid covers them).
    if (std::string(what) == "input") a.diffs_scope = 1;
  } else if (a.algo == calib_method::minmax) {
    // amctq's maxmin is the range over every batch: the per-batch ranges' max. modal is the
    // guide's default for every method, and vai_q_pytorch reads it as that too.
    if (p.calib_statistic_method != "modal" && p.calib_statistic_method != "max")
      unsupported(p.origin("calib_statistic_method"),
                  "calib_statistic_method " + p.calib_statistic_method + " with method maxmin is not supported: "
                  "amctq's maxmin takes the range over all batches (max)");
  }
  // percentile, entropy, mse: one histogram over all batches, as in vai_q_pytorch, whatever the
  // statistic names.
  if (p.percentage) {
    if (a.algo != calib_method::percentile)
      unsupported(p.origin("percentage"), "percentage applies to method percentile only");
    a.percentile = *p.percentage;
  }
  return a;
}

inline graph::weight_quant to_weights(const tensor_params& p) {
  graph::weight_quant w;
  if (p.bit_width < 2 || p.bit_width > 8)
    unsupported(p.origin("bit_width"), "bit_width " + std::to_string(p.bit_width) +
                                           " for weights: amctq stores weights as int8, so 2 to 8 bits");
  w.num_bits = p.bit_width;
  if (p.method != "maxmin" && p.method != "diffs")
    unsupported(p.origin("method"), "method " + p.method + " for weights is not supported; amctq's weights use "
                                                           "maxmin (ARQ's min/max) or diffs");
  if (!p.symmetry) unsupported(p.origin("symmetry"), "asymmetric weights are not supported (ARQ is symmetric)");
  check_signed(p, "weights");
  w.channel_wise = p.per_channel;
  w.narrow_range = p.narrow_range;
  w.rounding = rounding_of(p);
  w.scale_kind = p.scale_type == "float" ? scale_type::float32 : scale_type::power_of_two;
  if (p.method == "diffs") {
    if (p.scale_type != "power_of_two")
      unsupported(p.origin("scale_type"), "method diffs searches power-of-two scales; scale_type float cannot go "
                                          "with it for weights");
    if (p.per_channel)
      unsupported(p.origin("per_channel"), "per-channel diffs weights are not supported yet (maxmin is)");
    w.diffs_scope = pot_options{}.scope;
  }
  return w;
}

// A bias of 32 bits goes straight onto its accumulator's grid s_d · s_w (the form every ONNX
// integer op takes); a narrower one onto a grid of its own first (graph::bias_quant).
inline graph::bias_quant to_bias(const tensor_params& p) {
  graph::bias_quant b;
  if (p.bit_width != 32 && (p.bit_width < 2 || p.bit_width > 8))
    unsupported(p.origin("bit_width"), "bias bit_width " + std::to_string(p.bit_width) +
                                           " is not supported: 2 to 8 (a grid of its own, int8 storage) or 32 (the "
                                           "accumulator's grid)");
  b.num_bits = p.bit_width;
  b.rounding = rounding_of(p);
  if (b.num_bits == 32) return b;  // the accumulator's scale is s_d · s_w: method and scale type have nothing to choose
  if (p.method != "maxmin" && p.method != "diffs")
    unsupported(p.origin("method"), "method " + p.method + " for the bias is not supported; maxmin or diffs");
  if (!p.symmetry) unsupported(p.origin("symmetry"), "an asymmetric bias is not supported");
  check_signed(p, "biases");
  if (p.narrow_range) unsupported(p.origin("narrow_range"), "a narrow_range bias is not supported");
  if (p.per_channel) unsupported(p.origin("per_channel"), "a per-channel bias grid is not supported");
  b.scale_kind = p.scale_type == "float" ? scale_type::float32 : scale_type::power_of_two;
  if (p.method == "diffs") {
    if (p.scale_type != "power_of_two")
      unsupported(p.origin("scale_type"), "method diffs searches power-of-two scales; scale_type float cannot go "
                                          "with it for the bias");
    b.diffs_scope = pot_options{}.scope;
  }
  return b;
}

// The quantized layer (if any) whose output `tensor` is, through ops that commute with
// quantization (Relu, MaxPool, Reshape, ...): Vitis quantizes that layer's output, which amctq
// quantizes where the next layer reads it.
inline const graph::quant_layer* producing_layer(const graph::model& m, const std::vector<graph::quant_layer>& layers,
                                                 const std::map<std::string, const graph::node*>& producer_of,
                                                 std::string tensor) {
  for (std::size_t guard = 0; guard <= m.main.nodes.size(); ++guard) {
    const auto p = producer_of.find(tensor);
    if (p == producer_of.end()) return nullptr;
    for (const auto& l : layers)
      if (l.output == tensor) return &l;
    if (!graph::detail::commutes_with_quantize(m.main, *p->second, m.opset())) return nullptr;
    tensor = p->second->inputs[0];
  }
  return nullptr;
}

inline bool is_graph_input(const graph::model& m, const std::string& tensor) {
  for (const auto& i : m.main.inputs)
    if (i.name == tensor) return true;
  return false;
}

}  // namespace detail

/// The quant_config of `model` under a parsed Vitis config. Every layer's settings: the top
/// level, then each layer_type entry naming its kind, then a layer_name entry naming it. A
/// layer's input grid is the "input" settings when it reads a graph input, else the
/// "activation" settings of the layer whose output it reads (Vitis quantizes outputs), else the
/// top level's. Throws errc::unsupported naming the key of any value amctq cannot honour.
inline graph::quant_config to_quant_config(const config& v, const graph::model& model) {
  using detail::unsupported;
  graph::quant_config c = graph::create_quant_config(model);
  c.global.keep_add_layer_accuracy = v.keep_add_layer_accuracy;
  c.global.quantize_outputs = v.global.quantized[vitis::activation];
  // The grid of outputs no layer's own settings decide (Add, Concat): the top level's.
  if (v.global.quantized[vitis::activation]) c.activation = detail::to_activation(v.global.params[vitis::activation], "activation");
  c.global.convert_relu6_to_relu = v.convert_relu6_to_relu;
  c.global.include_cle = v.include_cle;
  c.global.include_bias_corr = v.include_bias_corr;
  c.global.keep_first_last_layer_accuracy = v.keep_first_last_layer_accuracy;
  for (const auto& e : v.by_name) {
    if (!c.find(e.layer_name))
      detail::key_error(e.path + ".layer_name", "\"" + io::detail::clip(e.layer_name) +
                                                    "\" is not a quantizable layer of the model (amctq inspect lists them)");
  }
  // The layers as the quantizer finds them, for their input and output tensors.
  graph::model prepared = model;
  graph::prepare_float_model(prepared);
  const auto layers = graph::find_quant_layers(prepared.main);
  std::map<std::string, const graph::node*> producer_of;
  for (const auto& n : prepared.main.nodes)
    for (const auto& o : n.outputs)
      if (!o.empty()) producer_of[o] = &n;
  std::map<std::string, settings> resolved;
  for (const auto& l : layers) {
    settings s = v.global;
    for (const auto& e : v.by_type)
      for (const auto& k : e.op_types)
        if (k == l.op_type) detail::apply_level(e.body, s, e.path);
    for (const auto& e : v.by_name)
      if (e.layer_name == l.name) detail::apply_level(e.body, s, e.path);
    resolved[l.name] = s;
  }
  for (const auto& l : layers) {
    graph::layer_config* lc = c.find(l.name);
    if (!lc) continue;
    const settings& s = resolved[l.name];
    const auto& q = s.quantized;
    if (!q[vitis::weights] && !q[vitis::bias] && !q[vitis::activation] && !q[vitis::input]) {
      lc->settings.quant_enable = false;
      continue;
    }
    const bool has_weight = !l.weight.empty();
    if (has_weight && !q[vitis::weights])
      unsupported(s.quantized_from, "layer '" + l.name + "' leaves its weights float; amctq quantizes a layer's "
                                                          "weights with its input (list weights, or nothing to keep it float)");
    if (!l.bias.empty()) {
      if (!q[vitis::bias])
        unsupported(s.quantized_from, "layer '" + l.name + "' leaves its bias float; amctq quantizes it with the layer");
      lc->settings.bias = detail::to_bias(s.params[vitis::bias]);
    }
    if (has_weight) lc->settings.weights = detail::to_weights(s.params[vitis::weights]);
    if (c.global.quantize_outputs) {
      if (!q[vitis::activation])
        unsupported(s.quantized_from, "layer '" + l.name + "' leaves its output float while the top level quantizes "
                                                            "activations; amctq quantizes every layer's output then");
      lc->settings.output = detail::to_activation(s.params[vitis::activation], "activation");
      lc->settings.output->channel_wise = false;  // outputs are quantized per tensor
    }
    if (l.input.empty()) continue;  // weight-only kinds (Gather)
    // The grid of the layer's input: a graph input's, or the output grid of the layer it reads.
    const settings* from = &v.global;
    tensor_type t = vitis::activation;
    if (detail::is_graph_input(prepared, l.input)) {
      // A layer entry without "input" (the usual ["weights", "bias", "activation"]) keeps the
      // top level's grid for the graph input.
      from = s.quantized[vitis::input] ? &s : &v.global;
      t = vitis::input;
    } else if (const graph::quant_layer* p = detail::producing_layer(prepared, layers, producer_of, l.input)) {
      from = &resolved[p->name];
    }
    if (!from->quantized[t])
      unsupported(from->quantized_from, "leaves '" + l.input + "', the input of layer '" + l.name + "', float (no \"" +
                                            tensor_type_names[t] + "\"); amctq quantizes every quantized layer's input");
    const std::string what = t == vitis::input ? "input" : "activation";
    lc->settings.activation = detail::to_activation(from->params[t], what.c_str());
    // A second activation (attention's A·V) shares the layer's settings, as amctq does.
  }
  if (v.target_device == "DPU")
    for (const auto& l : c.layers) {
      if (!l.settings.quant_enable) continue;
      if (l.settings.activation.channel_wise)
        detail::key_error("config.target_device", "DPU takes per-tensor activations, but layer '" + l.name +
                                                      "' asks for per_channel ones");
    }
  graph::validate(c);
  return c;
}

}  // namespace vitis

/// Reads a quantization config in either format: a Vitis AI config (it has
/// overall_quantize_config) resolved for `model`, else amctq's own.
inline graph::quant_config read_quant_config(const std::string& path, const graph::model& model) {
  const std::string text = read_config_text(path);
  if (vitis::is_vitis_config_text(text)) return vitis::to_quant_config(vitis::parse_vitis_config(text), model);
  return read_config_json_text(text);
}

namespace vitis {

/// The guide's default config (vai_q_pytorch's DPU defaults): 8-bit symmetric signed
/// per-tensor power-of-two scales found by diffs, std_round (activations half_up), modal
/// statistic across batches, CLE and bias correction on.
inline std::string vitis_default_config_json() {
  using detail::ojson;
  ojson j;
  j["convert_relu6_to_relu"] = false;
  j["include_cle"] = true;
  j["include_bias_corr"] = true;
  j["keep_first_last_layer_accuracy"] = false;
  j["keep_add_layer_accuracy"] = false;
  j["target_device"] = "DPU";
  j["quantizable_data_type"] = {"input", "weights", "bias", "activation"};
  j["overall_quantize_config"] = ojson{{"bit_width", 8},         {"method", "diffs"},  {"round_mode", "std_round"},
                                       {"symmetry", true},       {"per_channel", false}, {"signed", true},
                                       {"narrow_range", false},  {"scale_type", "power_of_two"},
                                       {"calib_statistic_method", "modal"}};
  j["tensor_quantize_config"] = ojson{{"activation", ojson{{"method", "diffs"}, {"round_mode", "half_up"}}}};
  return j.dump(2) + "\n";
}

}  // namespace vitis

}  // namespace amctq::io

#endif  // AMCTQ_IO_VITIS_CONFIG_JSON_HPP
