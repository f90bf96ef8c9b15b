// The quantization config as JSON (docs/pipeline.md, "Config keys"): Vitis-style "global" switches, "overall" /
// "weights" / "activation" / "bias" defaults, "layer_type" and "layers" (by node name)
// overrides, plus AMCT's skip_layers, batch_num, activation_offset, act_algo / wts_algo and
// their parameters, dmq_balancer_param. A layer entry inherits, in order, from the defaults,
// from its layer_type and then sets its own keys; the writer emits only what a layer changes,
// so editing a default in the file takes effect for every layer that did not override it.
// Reading is strict: an unknown key, a wrong type or an out-of-range value is an amctq::error
// whose message starts with the key path, e.g.
//   "config.layers./conv1/Conv.activation.search_step: must be in (0, 0.6], got 2".
#ifndef AMCTQ_IO_CONFIG_JSON_HPP
#define AMCTQ_IO_CONFIG_JSON_HPP

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "amctq/error.hpp"
#include "amctq/graph/quant_config.hpp"
#include "amctq/io/atomic_file.hpp"
#include "amctq/io/detail/quote.hpp"

namespace amctq::io {

namespace detail {

using ojson = nlohmann::ordered_json;

/// Arrays and objects nested deeper than this are refused (a config needs about 5 levels).
inline constexpr std::size_t config_max_depth = 256;

[[noreturn]] inline void key_error(const std::string& key, const std::string& msg) {
  AMCTQ_THROW(errc::invalid_argument, "config", key, ": ", msg);
}

inline void allow_keys(const ojson& j, const std::string& path, std::initializer_list<const char*> keys) {
  if (!j.is_object()) key_error(path, std::string("must be an object, got ") + j.type_name());
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* k : keys) ok = ok || it.key() == k;
    if (!ok) key_error(path + "." + clip(it.key()), "unknown key");
  }
}

// JSON lets a key appear twice in one object and nlohmann keeps the last; in a config that is
// almost always an editing slip (two entries for one layer), so it is refused, naming the key
// path, before anything is read. Memory stays linear in the text: each open level keeps only
// its own keys and the step into its current child (the path is built when an error names
// it), and nesting deeper than config_max_depth is refused as soon as it is seen.
inline ojson parse_unique_keys(const std::string& text) {
  struct level {
    bool array = false;
    std::size_t index = 0;                 // arrays: the element being read
    std::string key;                       // objects: the last key read
    std::unordered_set<std::string> keys;  // objects: the keys read so far
  };
  std::vector<level> open;
  // "config" and the steps down to the current child of open[0..n), each key quoted short,
  // the whole cut after about 400 characters.
  auto path_of = [&](std::size_t n) {
    std::string p = "config";
    for (std::size_t i = 0; i < n; ++i) {
      if (p.size() > 4 * quote_limit) return p + "...";
      p += open[i].array ? "[" + std::to_string(open[i].index) + "]" : "." + clip(open[i].key);
    }
    return p;
  };
  auto element_done = [&]() {
    if (!open.empty() && open.back().array) ++open.back().index;
  };
  auto check = [&](int, ojson::parse_event_t event, ojson& parsed) {
    switch (event) {
      case ojson::parse_event_t::object_start:
      case ojson::parse_event_t::array_start:
        if (open.size() >= config_max_depth)
          key_error(path_of(open.size()), "nested deeper than " + std::to_string(config_max_depth) +
                                              " levels of arrays and objects (the limit)");
        open.emplace_back();
        open.back().array = event == ojson::parse_event_t::array_start;
        break;
      case ojson::parse_event_t::object_end:
      case ojson::parse_event_t::array_end:
        open.pop_back();
        element_done();
        break;
      case ojson::parse_event_t::key: {
        level& up = open.back();
        up.key = parsed.get<std::string>();
        if (!up.keys.insert(up.key).second)
          key_error(path_of(open.size()), "appears twice in one object; JSON readers keep only one of them");
        break;
      }
      case ojson::parse_event_t::value: element_done(); break;
    }
    return true;
  };
  return ojson::parse(text, check);
}

/// At most quote_limit characters of a JSON value, for error messages.
inline std::string quoted(const ojson& j) { return clip(j.dump()); }

inline bool get_bool(const ojson& j, const std::string& path) {
  if (!j.is_boolean()) key_error(path, std::string("must be true or false, got ") + quoted(j));
  return j.get<bool>();
}
inline int get_int(const ojson& j, const std::string& path) {
  if (!j.is_number_integer() || j.get<long long>() < -2147483647LL || j.get<long long>() > 2147483647LL)
    key_error(path, "must be an integer, got " + quoted(j));
  return static_cast<int>(j.get<long long>());
}
inline float get_float(const ojson& j, const std::string& path) {
  if (!j.is_number()) key_error(path, "must be a number, got " + quoted(j));
  return j.get<float>();
}
inline std::string get_string(const ojson& j, const std::string& path) {
  if (!j.is_string()) key_error(path, "must be a string, got " + quoted(j));
  return j.get<std::string>();
}

inline calib_method parse_act_algo(const ojson& j, const std::string& path) {
  const std::string s = get_string(j, path);
  std::string names;
  for (calib_method m : all_calib_methods) {
    if (s == to_string(m)) return m;
    names += (names.empty() ? "" : ", ") + std::string(to_string(m));
  }
  key_error(path, "must be one of " + names + ", got \"" + clip(s) + "\"");
}
inline batch_statistic parse_batch_statistic(const ojson& j, const std::string& path) {
  const std::string s = get_string(j, path);
  for (batch_statistic b : {batch_statistic::modal, batch_statistic::max, batch_statistic::mean, batch_statistic::median})
    if (s == to_string(b)) return b;
  key_error(path, "must be one of modal, max, mean, median, got \"" + clip(s) + "\"");
}
inline scale_type parse_scale_type(const ojson& j, const std::string& path) {
  const std::string s = get_string(j, path);
  if (s == "float") return scale_type::float32;
  if (s == "power_of_two") return scale_type::power_of_two;
  key_error(path, "must be float or power_of_two, got \"" + clip(s) + "\"");
}
inline round_mode parse_round_mode(const ojson& j, const std::string& path) {
  const std::string s = get_string(j, path);
  for (round_mode m : {round_mode::half_even, round_mode::half_away, round_mode::half_up, round_mode::half_down})
    if (s == to_string(m)) return m;
  key_error(path, "must be half_even, half_away, half_up or half_down, got \"" + clip(s) + "\"");
}
inline const char* scale_type_name(scale_type t) { return t == scale_type::float32 ? "float" : "power_of_two"; }
inline graph::wts_algo parse_wts_algo(const ojson& j, const std::string& path) {
  const std::string s = get_string(j, path);
  if (s == "arq" || s == "arq_quantize") return graph::wts_algo::arq;
  if (s == "nuq" || s == "nuq_quantize") return graph::wts_algo::nuq;
  if (s == "adaround" || s == "ada_quantize") return graph::wts_algo::adaround;
  key_error(path, "must be arq, nuq or adaround, got \"" + clip(s) + "\"");
}

// Applies the keys present in j onto a (partial objects override only what they name).
inline void apply_activation(const ojson& j, graph::activation_quant& a, const std::string& path) {
  allow_keys(j, path, {"num_bits", "asymmetric", "channel_wise", "act_algo", "skip_nonfinite", "max_percentile",
                       "min_percentile", "search_range", "search_step", "num_of_bins", "hist_bins", "percentile",
                       "averaging_constant", "diffs_scope", "calib_statistic_method", "scale_type", "round_mode", "signed",
                       "narrow_range"});
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = it.key(), p = path + "." + k;
    if (k == "num_bits") a.num_bits = get_int(*it, p);
    else if (k == "asymmetric") a.asymmetric = get_bool(*it, p);
    else if (k == "channel_wise") a.channel_wise = get_bool(*it, p);
    else if (k == "act_algo") a.algo = parse_act_algo(*it, p);
    else if (k == "skip_nonfinite") a.skip_nonfinite = get_bool(*it, p);
    else if (k == "max_percentile") a.max_percentile = get_float(*it, p);
    else if (k == "min_percentile") a.min_percentile = get_float(*it, p);
    else if (k == "search_range") {
      if (!it->is_array() || it->size() != 2) key_error(p, "must be [start, end], got " + quoted(*it));
      a.search_range_start = get_float((*it)[0], p + "[0]");
      a.search_range_end = get_float((*it)[1], p + "[1]");
    } else if (k == "search_step") a.search_step = get_float(*it, p);
    else if (k == "num_of_bins") a.num_of_bins = get_int(*it, p);
    else if (k == "hist_bins") a.hist_bins = get_int(*it, p);
    else if (k == "percentile") a.percentile = get_float(*it, p);
    else if (k == "averaging_constant") a.averaging_constant = get_float(*it, p);
    else if (k == "diffs_scope") a.diffs_scope = get_int(*it, p);
    else if (k == "calib_statistic_method") a.calib_statistic_method = parse_batch_statistic(*it, p);
    else if (k == "scale_type") a.scale_kind = parse_scale_type(*it, p);
    else if (k == "round_mode") a.rounding = parse_round_mode(*it, p);
    else if (k == "signed") a.is_signed = get_bool(*it, p);
    else if (k == "narrow_range") a.narrow_range = get_bool(*it, p);
  }
}

inline void apply_bias(const ojson& j, graph::bias_quant& b, const std::string& path) {
  allow_keys(j, path, {"num_bits", "round_mode", "scale_type", "diffs_scope"});
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = it.key(), p = path + "." + k;
    if (k == "num_bits") b.num_bits = get_int(*it, p);
    else if (k == "round_mode") b.rounding = parse_round_mode(*it, p);
    else if (k == "scale_type") b.scale_kind = parse_scale_type(*it, p);
    else if (k == "diffs_scope") b.diffs_scope = get_int(*it, p);
  }
}

inline void apply_adaround(const ojson& j, adaround_options& a, const std::string& path) {
  allow_keys(j, path, {"iterations", "batch", "columns", "reg_param", "beta_range", "warm_start", "learning_rate",
                       "drop_prob", "seed"});
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = it.key(), p = path + "." + k;
    if (k == "iterations") a.iterations = get_int(*it, p);
    else if (k == "batch") a.batch = get_int(*it, p);
    else if (k == "columns") a.columns = get_int(*it, p);
    else if (k == "reg_param") a.reg_param = get_float(*it, p);
    else if (k == "beta_range") {
      if (!it->is_array() || it->size() != 2) key_error(p, "must be [start, end], got " + quoted(*it));
      a.beta_start = get_float((*it)[0], p + "[0]");
      a.beta_end = get_float((*it)[1], p + "[1]");
    } else if (k == "warm_start") a.warm_start = get_float(*it, p);
    else if (k == "learning_rate") a.learning_rate = get_float(*it, p);
    else if (k == "drop_prob") a.drop_prob = get_float(*it, p);
    else if (k == "seed") {
      const int seed = get_int(*it, p);
      if (seed < 0) key_error(p, "must be >= 0, got " + std::to_string(seed));
      a.seed = static_cast<std::uint64_t>(seed);
    }
  }
}

inline void apply_weights(const ojson& j, graph::weight_quant& w, const std::string& path) {
  allow_keys(j, path, {"num_bits", "channel_wise", "wts_algo", "num_steps", "num_of_iteration", "preset", "scale_type",
                       "diffs_scope", "round_mode", "adaround", "narrow_range"});
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = it.key(), p = path + "." + k;
    if (k == "num_bits") w.num_bits = get_int(*it, p);
    else if (k == "channel_wise") w.channel_wise = get_bool(*it, p);
    else if (k == "wts_algo") w.algo = parse_wts_algo(*it, p);
    else if (k == "num_steps") w.num_steps = get_int(*it, p);
    else if (k == "num_of_iteration") w.num_of_iteration = get_int(*it, p);
    else if (k == "scale_type") w.scale_kind = parse_scale_type(*it, p);
    else if (k == "diffs_scope") w.diffs_scope = get_int(*it, p);
    else if (k == "round_mode") w.rounding = parse_round_mode(*it, p);
    else if (k == "narrow_range") w.narrow_range = get_bool(*it, p);
    else if (k == "adaround") {
      if (!it->is_object()) key_error(p, "must be an object, got " + quoted(*it));
      apply_adaround(*it, w.adaround, p);
    } else if (k == "preset") {
      const std::string name = get_string(*it, p);
      if (!preset_from_string(name, w.how)) key_error(p, "must be amct, onnxruntime or pytorch, got \"" + clip(name) + "\"");
    }
  }
}

inline void apply_layer(const ojson& j, graph::layer_settings& s, const std::string& path, bool with_op_type) {
  if (with_op_type)
    allow_keys(j, path, {"op_type", "quant_enable", "activation", "weights", "bias", "output", "dmq_balancer_param"});
  else
    allow_keys(j, path, {"quant_enable", "activation", "weights", "bias", "output", "dmq_balancer_param"});
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string k = it.key(), p = path + "." + k;
    if (k == "quant_enable") s.quant_enable = get_bool(*it, p);
    else if (k == "activation") apply_activation(*it, s.activation, p);
    else if (k == "weights") apply_weights(*it, s.weights, p);
    else if (k == "bias") apply_bias(*it, s.bias, p);
    else if (k == "output") {
      if (it->is_null()) {
        s.output.reset();
      } else {
        if (!s.output) s.output = s.activation;  // a partial object overrides the input's settings
        apply_activation(*it, *s.output, p);
      }
    } else if (k == "dmq_balancer_param") {
      if (it->is_null()) s.dmq_balancer_param.reset();
      else s.dmq_balancer_param = get_float(*it, p);
    }
  }
}

// The shortest decimal that reads back as the same float, so 0.999999f is written as
// 0.999999 and not 0.99999898672103882.
inline double short_float(float v) {
  char buf[32];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}

inline ojson activation_json(const graph::activation_quant& a) {
  return ojson{{"num_bits", a.num_bits},
               {"asymmetric", a.asymmetric},
               {"channel_wise", a.channel_wise},
               {"act_algo", to_string(a.algo)},
               {"skip_nonfinite", a.skip_nonfinite},
               {"max_percentile", short_float(a.max_percentile)},
               {"min_percentile", short_float(a.min_percentile)},
               {"search_range", {short_float(a.search_range_start), short_float(a.search_range_end)}},
               {"search_step", short_float(a.search_step)},
               {"num_of_bins", a.num_of_bins},
               {"hist_bins", a.hist_bins},
               {"percentile", short_float(a.percentile)},
               {"averaging_constant", short_float(a.averaging_constant)},
               {"diffs_scope", a.diffs_scope},
               {"calib_statistic_method", to_string(a.calib_statistic_method)},
               {"scale_type", scale_type_name(a.scale_kind)},
               {"round_mode", to_string(a.rounding)},
               {"signed", a.is_signed},
               {"narrow_range", a.narrow_range}};
}
inline ojson bias_json(const graph::bias_quant& b) {
  return ojson{{"num_bits", b.num_bits},
               {"round_mode", to_string(b.rounding)},
               {"scale_type", scale_type_name(b.scale_kind)},
               {"diffs_scope", b.diffs_scope}};
}
inline ojson weights_json(const graph::weight_quant& w) {
  ojson j{{"num_bits", w.num_bits},
          {"channel_wise", w.channel_wise},
          {"wts_algo", graph::to_string(w.algo)},
          {"num_steps", w.num_steps},
          {"num_of_iteration", w.num_of_iteration},
          {"preset", to_string(w.how)},
          {"scale_type", scale_type_name(w.scale_kind)},
          {"diffs_scope", w.diffs_scope},
          {"round_mode", to_string(w.rounding)},
          {"narrow_range", w.narrow_range}};
  // Only where it is used: every layer of a default config would otherwise carry nine keys.
  if (w.algo == graph::wts_algo::adaround) {
    const adaround_options& a = w.adaround;
    j["adaround"] = ojson{{"iterations", a.iterations},
                          {"batch", a.batch},
                          {"columns", a.columns},
                          {"reg_param", short_float(a.reg_param)},
                          {"beta_range", {short_float(a.beta_start), short_float(a.beta_end)}},
                          {"warm_start", short_float(a.warm_start)},
                          {"learning_rate", short_float(a.learning_rate)},
                          {"drop_prob", short_float(a.drop_prob)},
                          {"seed", a.seed}};
  }
  return j;
}
inline ojson layer_json(const graph::layer_settings& s) {
  ojson j{{"quant_enable", s.quant_enable}, {"activation", activation_json(s.activation)},
          {"weights", weights_json(s.weights)}, {"bias", bias_json(s.bias)}};
  if (s.output) j["output"] = activation_json(*s.output);
  if (s.dmq_balancer_param) j["dmq_balancer_param"] = short_float(*s.dmq_balancer_param);
  return j;
}

// The keys of `full` whose values differ from `base`, recursing into objects.
inline ojson diff_objects(const ojson& full, const ojson& base) {
  ojson out = ojson::object();
  for (auto it = full.begin(); it != full.end(); ++it) {
    const auto b = base.find(it.key());
    if (b == base.end()) {
      out[it.key()] = *it;
    } else if (it->is_object() && b->is_object()) {
      ojson d = diff_objects(*it, *b);
      if (!d.empty()) out[it.key()] = std::move(d);
    } else if (*it != *b) {
      out[it.key()] = *it;
    }
  }
  for (auto b = base.begin(); b != base.end(); ++b)  // an optional the layer dropped
    if (full.find(b.key()) == full.end()) out[b.key()] = nullptr;
  return out;
}

inline graph::layer_settings defaults_of(const graph::quant_config& c) {
  graph::layer_settings s;
  s.activation = c.activation;
  s.weights = c.weights;
  s.bias = c.bias;
  return s;
}

}  // namespace detail

/// The config as JSON text (2-space indented).
inline std::string write_config_json(const graph::quant_config& c) {
  using detail::ojson;
  ojson j;
  j["version"] = c.version;
  j["batch_num"] = c.batch_num;
  j["activation_offset"] = c.activation_offset;
  j["skip_layers"] = c.skip_layers;
  j["global"] = ojson{{"include_cle", c.global.include_cle},
                      {"include_bias_corr", c.global.include_bias_corr},
                      {"convert_relu6_to_relu", c.global.convert_relu6_to_relu},
                      {"keep_first_last_layer_accuracy", c.global.keep_first_last_layer_accuracy},
                      {"keep_add_layer_accuracy", c.global.keep_add_layer_accuracy},
                      {"quantize_outputs", c.global.quantize_outputs},
                      {"target", c.global.target}};
  j["overall"] = ojson{{"num_bits", c.overall_num_bits}};
  j["weights"] = detail::weights_json(c.weights);
  j["activation"] = detail::activation_json(c.activation);
  j["bias"] = detail::bias_json(c.bias);
  const graph::layer_settings base = detail::defaults_of(c);
  const ojson base_json = detail::layer_json(base);
  ojson types = ojson::object();
  for (const auto& [type, s] : c.layer_type) types[type] = detail::diff_objects(detail::layer_json(s), base_json);
  j["layer_type"] = types;
  ojson layers = ojson::object();
  for (const auto& l : c.layers) {
    const auto t = c.layer_type.find(l.op_type);
    const ojson parent = t == c.layer_type.end() ? base_json : detail::layer_json(t->second);
    ojson e{{"op_type", l.op_type}};
    const ojson own = detail::diff_objects(detail::layer_json(l.settings), parent);
    for (auto it = own.begin(); it != own.end(); ++it) e[it.key()] = *it;
    layers[l.name] = std::move(e);
  }
  j["layers"] = layers;
  return j.dump(2) + "\n";
}

/// Parses and validates config JSON text. Every key is checked; see the file comment.
inline graph::quant_config read_config_json_text(const std::string& text) {
  using detail::ojson;
  ojson j;
  try {
    j = detail::parse_unique_keys(text);
  } catch (const nlohmann::json::exception& e) {  // syntax errors, and numbers past double (1e400)
    AMCTQ_THROW(errc::parse, "config", "not valid JSON: ", e.what());
  }
  detail::allow_keys(j, "config", {"version", "batch_num", "activation_offset", "skip_layers", "global", "overall",
                                   "weights", "activation", "bias", "layer_type", "layers"});
  graph::quant_config c;
  if (j.contains("version")) c.version = detail::get_int(j["version"], "config.version");
  if (j.contains("batch_num")) c.batch_num = detail::get_int(j["batch_num"], "config.batch_num");
  if (j.contains("activation_offset"))
    c.activation_offset = detail::get_bool(j["activation_offset"], "config.activation_offset");
  c.activation.asymmetric = c.activation_offset;
  if (j.contains("skip_layers")) {
    const auto& s = j["skip_layers"];
    if (!s.is_array()) detail::key_error("config.skip_layers", "must be an array of layer names");
    for (std::size_t i = 0; i < s.size(); ++i)
      c.skip_layers.push_back(detail::get_string(s[i], "config.skip_layers[" + std::to_string(i) + "]"));
  }
  if (j.contains("global")) {
    const auto& g = j["global"];
    detail::allow_keys(g, "config.global", {"include_cle", "include_bias_corr", "convert_relu6_to_relu",
                                            "keep_first_last_layer_accuracy", "keep_add_layer_accuracy",
                                            "quantize_outputs", "target"});
    for (auto it = g.begin(); it != g.end(); ++it) {
      const std::string k = it.key(), p = "config.global." + k;
      if (k == "include_cle") c.global.include_cle = detail::get_bool(*it, p);
      else if (k == "include_bias_corr") c.global.include_bias_corr = detail::get_bool(*it, p);
      else if (k == "convert_relu6_to_relu") c.global.convert_relu6_to_relu = detail::get_bool(*it, p);
      else if (k == "keep_first_last_layer_accuracy") c.global.keep_first_last_layer_accuracy = detail::get_bool(*it, p);
      else if (k == "keep_add_layer_accuracy") c.global.keep_add_layer_accuracy = detail::get_bool(*it, p);
      else if (k == "quantize_outputs") c.global.quantize_outputs = detail::get_bool(*it, p);
      else if (k == "target") c.global.target = detail::get_string(*it, p);
    }
  }
  if (j.contains("overall")) {
    detail::allow_keys(j["overall"], "config.overall", {"num_bits"});
    if (j["overall"].contains("num_bits")) {
      c.overall_num_bits = detail::get_int(j["overall"]["num_bits"], "config.overall.num_bits");
      c.activation.num_bits = c.overall_num_bits;
      c.weights.num_bits = c.overall_num_bits;
    }
  }
  if (j.contains("weights")) detail::apply_weights(j["weights"], c.weights, "config.weights");
  // overall.num_bits also sets the weights' width; say so where the user wrote it.
  const bool weights_width_from_overall =
      j.contains("overall") && j["overall"].contains("num_bits") &&
      !(j.contains("weights") && j["weights"].is_object() && j["weights"].contains("num_bits"));
  if (weights_width_from_overall && !(c.weights.num_bits >= 2 && c.weights.num_bits <= 8))
    graph::detail::config_fail("config.overall.num_bits",
                               amctq::detail::concat("sets the weights' width too, which must be in [2, 8] (int8 storage), got ",
                                              c.weights.num_bits, "; give weights.num_bits to keep 8-bit weights"));
  if (j.contains("activation")) detail::apply_activation(j["activation"], c.activation, "config.activation");
  if (j.contains("bias")) detail::apply_bias(j["bias"], c.bias, "config.bias");
  const graph::layer_settings base = detail::defaults_of(c);
  if (j.contains("layer_type")) {
    const auto& t = j["layer_type"];
    if (!t.is_object()) detail::key_error("config.layer_type", "must be an object keyed by op type");
    for (auto it = t.begin(); it != t.end(); ++it) {
      graph::layer_settings s = base;
      detail::apply_layer(*it, s, "config.layer_type." + detail::clip(it.key()), false);
      c.layer_type[it.key()] = s;
    }
  }
  if (j.contains("layers")) {
    const auto& ls = j["layers"];
    if (!ls.is_object()) detail::key_error("config.layers", "must be an object keyed by layer name");
    for (auto it = ls.begin(); it != ls.end(); ++it) {
      const std::string p = "config.layers." + detail::clip(it.key());
      if (!it->is_object() || !it->contains("op_type")) detail::key_error(p + ".op_type", "is required");
      graph::layer_config l;
      l.name = it.key();
      l.op_type = detail::get_string((*it)["op_type"], p + ".op_type");
      if (!graph::is_quantizable_op(l.op_type))
        detail::key_error(p + ".op_type", "must be one of " + graph::layer_kind_names() + ", got \"" + detail::clip(l.op_type) + "\"");
      const auto ty = c.layer_type.find(l.op_type);
      l.settings = ty == c.layer_type.end() ? base : ty->second;
      detail::apply_layer(*it, l.settings, p, true);
      c.layers.push_back(std::move(l));
    }
  }
  validate(c);
  return c;
}

/// The whole text of a config file.
inline std::string read_config_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  AMCTQ_CHECK(in.good(), errc::io, "read_config_json", "cannot open '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline graph::quant_config read_config_json(const std::string& path) { return read_config_json_text(read_config_text(path)); }

/// Writes the config atomically (a failed write leaves any existing file untouched).
inline void save_config_json(const graph::quant_config& c, const std::string& path) {
  graph::validate(c);
  const std::string text = write_config_json(c);
  write_file_atomic(path, text.data(), text.size());
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_CONFIG_JSON_HPP
