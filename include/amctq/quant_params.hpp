// quant_params: the scale(s) and zero point(s) of an affine quantizer, and their derivation
// from a real range [min, max] under a quant_spec and a preset (AMCT, ONNX Runtime, PyTorch).
#ifndef AMCTQ_QUANT_PARAMS_HPP
#define AMCTQ_QUANT_PARAMS_HPP

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/quant_spec.hpp"
#include "amctq/rounding.hpp"

namespace amctq {

/// q = clamp(round(x / scale) + zero_point, qmin, qmax);  x_hat = (q - zero_point) * scale.
/// One scale/zero point per tensor (axis == per_tensor) or one per index of `axis`.
struct quant_params {
  std::vector<float> scale;
  std::vector<std::int32_t> zero_point;
  std::int32_t qmin = -128;
  std::int32_t qmax = 127;
  int axis = per_tensor;

  bool is_per_channel() const noexcept { return axis != per_tensor; }
  std::size_t channels() const noexcept { return scale.size(); }
};

/// Per-tensor params from a single scale and zero point.
inline quant_params make_params(float scale, std::int32_t zero_point, std::int32_t qmin, std::int32_t qmax) {
  quant_params p;
  p.scale = {scale};
  p.zero_point = {zero_point};
  p.qmin = qmin;
  p.qmax = qmax;
  return p;
}

/// Throws unless p is usable: matching sizes, qmin < qmax, every scale finite and > 0,
/// every zero point inside [qmin, qmax].
inline void validate(const quant_params& p, const char* where = "quant_params") {
  AMCTQ_CHECK(!p.scale.empty(), errc::invalid_argument, where, "scale is empty");
  AMCTQ_CHECK(p.scale.size() == p.zero_point.size(), errc::shape_mismatch, where, "scale has ",
              p.scale.size(), " entries but zero_point has ", p.zero_point.size());
  AMCTQ_CHECK(p.is_per_channel() || p.scale.size() == 1, errc::shape_mismatch, where,
              "per-tensor params need exactly one scale, got ", p.scale.size());
  AMCTQ_CHECK(p.axis >= per_tensor, errc::invalid_argument, where, "axis must be >= -1, got ", p.axis);
  AMCTQ_CHECK(p.qmin < p.qmax, errc::invalid_argument, where, "qmin (", p.qmin, ") must be below qmax (",
              p.qmax, ")");
  AMCTQ_CHECK(p.qmin >= -32768 && p.qmax <= 65535, errc::invalid_argument, where,
              "[qmin, qmax] must fit 16 bits, got [", p.qmin, ", ", p.qmax, "]");
  for (std::size_t c = 0; c < p.scale.size(); ++c) {
    AMCTQ_CHECK(std::isfinite(p.scale[c]) && p.scale[c] > 0.0f, errc::invalid_argument, where,
                "scale[", c, "] must be finite and > 0, got ", p.scale[c]);
    AMCTQ_CHECK(p.zero_point[c] >= p.qmin && p.zero_point[c] <= p.qmax, errc::invalid_argument, where,
                "zero_point[", c, "] = ", p.zero_point[c], " lies outside [", p.qmin, ", ", p.qmax, "]");
  }
}

namespace detail {

struct scale_zero {
  float scale;
  std::int32_t zero_point;
};

// All presets work on a grid shifted so that the symmetric zero sits at 0: for a signed grid
// that is the grid itself; for an unsigned one, [qmin - mid, qmax - mid] with mid its middle.
// This gives PyTorch's and ONNX Runtime's uint8 symmetric zero point of 128 and keeps one
// formula per preset.
inline std::int32_t symmetric_middle(const quant_spec& spec, qrange r) {
  return spec.is_signed ? 0 : (r.qmin + r.qmax + 1) / 2;
}

inline std::int32_t clamp_i32(double v, std::int32_t lo, std::int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : static_cast<std::int32_t>(v));
}

// AMCT (its C++ ARQ and ProcessScale; docs/quantization.md, presets): symmetric divides by the
// dominant side's end of the grid (127 when max dominates, 128 when min dominates or ties);
// asymmetric spans [min(min,0), max(max,0)] over 2^b-1 steps; scales below FLT_EPSILON become 1.
inline scale_zero amct_formula(float lo, float hi, const quant_spec& spec, qrange r) {
  if (spec.symmetric) {
    const std::int32_t mid = symmetric_middle(spec, r);
    const float t = std::fabs(hi) > std::fabs(lo) ? hi : lo;
    float s = t > 0.0f ? t / static_cast<float>(r.qmax - mid) : t / static_cast<float>(r.qmin - mid);
    if (!(s >= FLT_EPSILON)) s = 1.0f;
    return {s, mid};
  }
  hi = std::fmax(hi, 0.0f);
  lo = std::fmin(lo, 0.0f);
  float s = (hi - lo) / static_cast<float>(r.qmax - r.qmin);
  if (!(s >= FLT_EPSILON)) return {1.0f, r.qmin};
  const double zp = static_cast<double>(round_as<round_mode::half_away>(-lo / s)) + r.qmin;
  return {s, clamp_i32(zp, r.qmin, r.qmax)};
}

// ONNX Runtime (quant_utils.compute_scale_zp): range made to include 0, symmetric over
// [-absmax, absmax]; scale computed in double over (qmax - qmin) then stored as float;
// zero point round-half-even in double; a scale below FLT_MIN becomes 1 with zero point 0.
inline scale_zero onnxruntime_formula(float lo, float hi, const quant_spec& spec, qrange r) {
  double dlo = std::fmin(lo, 0.0f), dhi = std::fmax(hi, 0.0f);
  if (spec.symmetric) {
    const double a = std::fmax(std::fabs(dlo), std::fabs(dhi));
    dlo = -a;
    dhi = a;
  }
  const double s = (dhi - dlo) / (static_cast<double>(r.qmax) - r.qmin);
  // ORT's zero point is 0 here; clamped, so that a grid without 0 (unsigned narrow) stays valid.
  if (s < static_cast<double>(FLT_MIN)) return {1.0f, clamp_i32(0.0, r.qmin, r.qmax)};
  const double zp = spec.symmetric ? std::nearbyint((static_cast<double>(r.qmin) + r.qmax) / 2.0)
                                   : std::nearbyint(r.qmin - dlo / s);
  return {static_cast<float>(s), clamp_i32(zp, r.qmin, r.qmax)};
}

// PyTorch (MinMaxObserver._calculate_qparams), float32 throughout: symmetric divides
// absmax by (qmax - qmin) / 2 (127.5 for 8 bits); scales clamp up to FLT_EPSILON; the
// asymmetric zero point is qmin - round_half_even(min / s), clamped.
inline scale_zero pytorch_formula(float lo, float hi, const quant_spec& spec, qrange r) {
  const float neg = std::fmin(lo, 0.0f), pos = std::fmax(hi, 0.0f);
  if (spec.symmetric) {
    const float a = std::fmax(-neg, pos);
    const float s = std::fmax(a / (static_cast<float>(r.qmax - r.qmin) / 2.0f), FLT_EPSILON);
    return {s, symmetric_middle(spec, r)};
  }
  const float s = std::fmax((pos - neg) / static_cast<float>(r.qmax - r.qmin), FLT_EPSILON);
  const double zp = static_cast<double>(r.qmin) - std::nearbyint(neg / s);
  return {s, clamp_i32(zp, r.qmin, r.qmax)};
}

// Power-of-two scales round the scale up (so the range stays covered) and re-derive the
// asymmetric zero point on the new grid.
inline scale_zero to_power_of_two(scale_zero sz, float lo, const quant_spec& spec, qrange r) {
  // frexp, not ceil(log2(s)): log2 of a scale a few ulps above 2^e can round to exactly e.
  int e = 0;
  const float m = std::frexp(sz.scale, &e);  // scale = m * 2^e, m in [0.5, 1)
  const float p = m == 0.5f ? sz.scale : std::ldexp(1.0f, e);
  if (spec.symmetric) return {p, sz.zero_point};
  const double zp = static_cast<double>(round_as(-std::fmin(lo, 0.0f) / p, spec.rounding)) + r.qmin;
  return {p, clamp_i32(zp, r.qmin, r.qmax)};
}

inline scale_zero scale_zero_from_range(float lo, float hi, const quant_spec& spec, qrange r, preset how,
                                        const char* where, std::ptrdiff_t channel) {
  AMCTQ_CHECK(std::isfinite(lo) && std::isfinite(hi), errc::non_finite, where, "range",
              channel >= 0 ? concat("[", channel, "]") : std::string(), " is not finite: [", lo, ", ", hi, "]");
  AMCTQ_CHECK(lo <= hi, errc::invalid_argument, where, "range", channel >= 0 ? concat("[", channel, "]") : std::string(),
              " has min > max: [", lo, ", ", hi, "]");
  scale_zero sz{};
  switch (how) {
    case preset::amct: sz = amct_formula(lo, hi, spec, r); break;
    case preset::onnxruntime: sz = onnxruntime_formula(lo, hi, spec, r); break;
    case preset::pytorch: sz = pytorch_formula(lo, hi, spec, r); break;
  }
  AMCTQ_CHECK(std::isfinite(sz.scale) && sz.scale > 0.0f, errc::overflow, where, "range [", lo, ", ", hi,
              "] gives a scale that is not finite");
  if (spec.scale_kind == scale_type::power_of_two) {
    sz = to_power_of_two(sz, lo, spec, r);
    AMCTQ_CHECK(std::isfinite(sz.scale), errc::overflow, where, "range [", lo, ", ", hi,
                "] needs a power-of-two scale above the float range");
  }
  return sz;
}

}  // namespace detail

/// Per-tensor params for the real range [min, max]; see docs/quantization.md for each preset.
/// Throws non_finite for a non-finite bound and invalid_argument for min > max.
inline quant_params params_from_range(float min, float max, const quant_spec& spec, preset how = preset::amct) {
  const qrange r = integer_range(spec);
  const auto sz = detail::scale_zero_from_range(min, max, spec, r, how, "params_from_range", -1);
  quant_params p = make_params(sz.scale, sz.zero_point, r.qmin, r.qmax);
  p.axis = per_tensor;
  return p;
}

/// Per-channel params, one per entry of mins/maxs, for channel axis spec.axis.
inline quant_params params_from_range(const std::vector<float>& mins, const std::vector<float>& maxs,
                                      const quant_spec& spec, preset how = preset::amct) {
  AMCTQ_CHECK(mins.size() == maxs.size(), errc::shape_mismatch, "params_from_range", "mins has ", mins.size(),
              " entries, maxs has ", maxs.size());
  AMCTQ_CHECK(spec.axis >= 0, errc::invalid_argument, "params_from_range",
              "per-channel ranges need spec.axis >= 0, got ", spec.axis);
  AMCTQ_CHECK(!mins.empty(), errc::invalid_argument, "params_from_range", "no channels");
  const qrange r = integer_range(spec);
  quant_params p;
  p.qmin = r.qmin;
  p.qmax = r.qmax;
  p.axis = spec.axis;
  p.scale.resize(mins.size());
  p.zero_point.resize(mins.size());
  for (std::size_t c = 0; c < mins.size(); ++c) {
    const auto sz = detail::scale_zero_from_range(mins[c], maxs[c], spec, r, how, "params_from_range",
                                                  static_cast<std::ptrdiff_t>(c));
    p.scale[c] = sz.scale;
    p.zero_point[c] = sz.zero_point;
  }
  return p;
}

}  // namespace amctq

#endif  // AMCTQ_QUANT_PARAMS_HPP
