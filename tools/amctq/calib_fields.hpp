// The fields `amctq calib` prints for a calibration result, written into any object with
// operator[](const char*) (nlohmann::json for the tool, a Python dict for the amctq package), so
// both report the same fields from the same code.
#ifndef AMCTQ_TOOLS_CALIB_FIELDS_HPP
#define AMCTQ_TOOLS_CALIB_FIELDS_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "amctq/algorithms/observer.hpp"

namespace amctq::cli {

/// method, preset, bits, symmetric, axis (null per-tensor), min, max, scale, zero_point (one
/// value per-tensor, a list per channel), qmin, qmax, nonfinite; the caller adds batches.
template <class Object, class Null>
void put_calib_fields(Object& j, const Null& null, const observer_options& o, const calib_result& r,
                      std::uint64_t nonfinite) {
  const bool per_channel = o.spec.axis != per_tensor;
  j["method"] = std::string(to_string(o.method));
  j["preset"] = std::string(to_string(o.how));
  j["bits"] = o.spec.bits;
  j["symmetric"] = o.spec.symmetric;
  if (per_channel) j["axis"] = o.spec.axis;
  else j["axis"] = null;
  auto field = [&](const char* key, auto get) {
    std::vector<decltype(get(0))> v;
    for (std::size_t c = 0; c < r.ranges.size(); ++c) v.push_back(get(c));
    if (per_channel) j[key] = v;
    else j[key] = v.at(0);
  };
  field("min", [&](std::size_t c) { return r.ranges[c].min; });
  field("max", [&](std::size_t c) { return r.ranges[c].max; });
  field("scale", [&](std::size_t c) { return r.params.scale[c]; });
  field("zero_point", [&](std::size_t c) { return r.params.zero_point[c]; });
  j["qmin"] = r.params.qmin;
  j["qmax"] = r.params.qmax;
  j["nonfinite"] = nonfinite;
}

}  // namespace amctq::cli

#endif  // AMCTQ_TOOLS_CALIB_FIELDS_HPP
