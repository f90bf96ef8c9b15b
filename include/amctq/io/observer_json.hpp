// JSON form of activation_observer's state, so shards calibrated in separate processes can be
// saved, shipped and merged: to_json(state) / observer_state_from_json(json). Floats are written
// with full precision (nlohmann_json round-trips float exactly), counts as integers; infinite
// min/max of empty channels are written as null.
#ifndef AMCTQ_IO_OBSERVER_JSON_HPP
#define AMCTQ_IO_OBSERVER_JSON_HPP

#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "amctq/algorithms/observer.hpp"
#include "amctq/error.hpp"

namespace amctq::io {

namespace detail {

inline nlohmann::json finite_or_null(float v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

template <class T>
T json_get(const nlohmann::json& j, const char* key, const std::string& where) {
  AMCTQ_CHECK(j.is_object() && j.contains(key), errc::parse, "observer_state_from_json", where, ": missing key '", key,
              "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    AMCTQ_THROW(errc::parse, "observer_state_from_json", where, ": key '", key, "' has the wrong type (", e.what(), ")");
  }
}

inline float json_float_or(const nlohmann::json& j, const char* key, float fallback, const std::string& where) {
  AMCTQ_CHECK(j.contains(key), errc::parse, "observer_state_from_json", where, ": missing key '", key, "'");
  return j.at(key).is_null() ? fallback : json_get<float>(j, key, where);
}

}  // namespace detail

inline nlohmann::json to_json(const observer_state& s) {
  nlohmann::json j;
  j["format"] = "amctq.observer_state/1";
  j["method"] = s.method;
  j["axis"] = s.axis;
  nlohmann::json chans = nlohmann::json::array();
  for (const channel_state& c : s.channels) {
    nlohmann::json cj;
    cj["min"] = detail::finite_or_null(c.min);
    cj["max"] = detail::finite_or_null(c.max);
    cj["nonfinite"] = c.nonfinite;
    cj["batches"] = c.batches;
    cj["average_min"] = c.average_min;
    cj["average_max"] = c.average_max;
    cj["histogram"] = {{"capacity", c.histogram.capacity}, {"exponent", c.histogram.exponent},
                       {"base", c.histogram.base},         {"counts", c.histogram.counts},
                       {"min", detail::finite_or_null(c.histogram.min)},
                       {"max", detail::finite_or_null(c.histogram.max)}};
    if (!c.ort_histogram.counts.empty())
      cj["ort_histogram"] = {{"counts", c.ort_histogram.counts}, {"threshold", c.ort_histogram.threshold},
                             {"threshold_f32", c.ort_histogram.threshold_f32}, {"min", c.ort_histogram.min},
                             {"max", c.ort_histogram.max}};
    if (!c.ort_histogram.edges.empty()) cj["ort_histogram"]["edges"] = c.ort_histogram.edges;
    cj["tails"] = {{"capacity", c.tails.capacity}, {"largest", c.tails.largest}, {"smallest", c.tails.smallest}};
    cj["batch_values"] = c.batch_values;
    chans.push_back(std::move(cj));
  }
  j["channels"] = std::move(chans);
  return j;
}

/// Throws errc::parse naming the key when j is not a state written by to_json.
inline observer_state observer_state_from_json(const nlohmann::json& j) {
  const std::string top = "state";
  AMCTQ_CHECK(detail::json_get<std::string>(j, "format", top) == "amctq.observer_state/1", errc::parse,
              "observer_state_from_json", "unknown format '", j.at("format").get<std::string>(), "'");
  observer_state s;
  s.method = detail::json_get<std::string>(j, "method", top);
  s.axis = detail::json_get<int>(j, "axis", top);
  const auto chans = detail::json_get<nlohmann::json>(j, "channels", top);
  AMCTQ_CHECK(chans.is_array(), errc::parse, "observer_state_from_json", "'channels' must be an array");
  constexpr float inf = std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < chans.size(); ++i) {
    const auto& cj = chans[i];
    const std::string where = "channels[" + std::to_string(i) + "]";
    channel_state c;
    c.min = detail::json_float_or(cj, "min", inf, where);
    c.max = detail::json_float_or(cj, "max", -inf, where);
    c.nonfinite = detail::json_get<std::uint64_t>(cj, "nonfinite", where);
    c.batches = detail::json_get<std::uint64_t>(cj, "batches", where);
    c.average_min = detail::json_get<float>(cj, "average_min", where);
    c.average_max = detail::json_get<float>(cj, "average_max", where);
    const auto h = detail::json_get<nlohmann::json>(cj, "histogram", where);
    const std::string hw = where + ".histogram";
    c.histogram.capacity = detail::json_get<std::uint32_t>(h, "capacity", hw);
    c.histogram.exponent = detail::json_get<int>(h, "exponent", hw);
    c.histogram.base = detail::json_get<std::int64_t>(h, "base", hw);
    c.histogram.counts = detail::json_get<std::vector<std::uint64_t>>(h, "counts", hw);
    c.histogram.min = detail::json_float_or(h, "min", inf, hw);
    c.histogram.max = detail::json_float_or(h, "max", -inf, hw);
    if (cj.contains("ort_histogram")) {  // entropy and percentile under the onnxruntime preset only
      const auto o = detail::json_get<nlohmann::json>(cj, "ort_histogram", where);
      const std::string ow = where + ".ort_histogram";
      c.ort_histogram.counts = detail::json_get<std::vector<std::uint64_t>>(o, "counts", ow);
      c.ort_histogram.threshold = detail::json_get<double>(o, "threshold", ow);
      c.ort_histogram.threshold_f32 = detail::json_get<bool>(o, "threshold_f32", ow);
      c.ort_histogram.min = detail::json_get<float>(o, "min", ow);
      c.ort_histogram.max = detail::json_get<float>(o, "max", ow);
      if (o.contains("edges")) c.ort_histogram.edges = detail::json_get<std::vector<float>>(o, "edges", ow);  // |x| only
    }
    const auto t = detail::json_get<nlohmann::json>(cj, "tails", where);
    const std::string tw = where + ".tails";
    c.tails.capacity = detail::json_get<std::uint32_t>(t, "capacity", tw);
    c.tails.largest = detail::json_get<std::vector<float>>(t, "largest", tw);
    c.tails.smallest = detail::json_get<std::vector<float>>(t, "smallest", tw);
    c.batch_values = detail::json_get<std::vector<double>>(cj, "batch_values", where);
    s.channels.push_back(std::move(c));
  }
  return s;
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_OBSERVER_JSON_HPP
