// MSE calibration: the clipping range whose quantizer (under the chosen preset's range formula,
// so the scored grid is exactly the exported one) has the least L2 error over the histogram.
// Symmetric specs scale both ends together; asymmetric specs search the two ends alternately
// until neither moves.
#ifndef AMCTQ_ALGORITHMS_MSE_HPP
#define AMCTQ_ALGORITHMS_MSE_HPP

#include <cmath>

#include "amctq/algorithms/calib_range.hpp"
#include "amctq/algorithms/detail/grid_search.hpp"
#include "amctq/algorithms/histogram_moments.hpp"

namespace amctq {

struct mse_options {
  int search_points = 128;  ///< coarse candidates over (0, 1] x the data's extent
  int refine_points = 32;   ///< fine candidates around the best coarse one
  int max_rounds = 4;       ///< asymmetric: alternations of the two ends
};

/// L2 error of the quantizer params_from_range(r) over the histogram.
inline double quantization_loss(const histogram_moments& m, calib_range r, const quant_spec& spec, preset how) {
  const auto sz = detail::params_of(r, spec, how, "mse");
  const qrange q = integer_range(spec);
  const double s = sz.scale;
  return m.loss((static_cast<double>(q.qmin) - sz.zero_point) * s, s, static_cast<std::int64_t>(q.qmax) - q.qmin + 1);
}

inline void validate(const mse_options& o, const char* where = "mse_options") {
  AMCTQ_CHECK(o.search_points >= 2 && o.search_points <= 1 << 20, errc::invalid_argument, where,
              "search_points must be in [2, 2^20], got ", o.search_points);
  AMCTQ_CHECK(o.refine_points >= 1 && o.refine_points <= 1 << 20, errc::invalid_argument, where,
              "refine_points must be in [1, 2^20], got ", o.refine_points);
  AMCTQ_CHECK(o.max_rounds >= 1 && o.max_rounds <= 1000, errc::invalid_argument, where,
              "max_rounds must be in [1, 1000], got ", o.max_rounds);
}

inline calib_range mse_range(const binned_histogram& h, const quant_spec& spec, preset how = preset::amct,
                             const mse_options& o = {}) {
  validate(o);
  if (h.total == 0.0) return {0.0f, 0.0f};
  const calib_range full = detail::with_zero({h.min, h.max});
  if (full.min == full.max) return full;
  const histogram_moments m(h);
  const double lo_floor = 1.0 / o.search_points;  // a zero-width range is never the answer
  if (spec.symmetric) {
    auto f = [&](double t) {
      return quantization_loss(m, {static_cast<float>(full.min * t), static_cast<float>(full.max * t)}, spec, how);
    };
    const double t = detail::grid_minimize(f, lo_floor, 1.0, o.search_points, o.refine_points).x;
    return {static_cast<float>(full.min * t), static_cast<float>(full.max * t)};
  }
  calib_range r = full;
  for (int round = 0; round < o.max_rounds; ++round) {
    const calib_range before = r;
    if (full.max > 0.0f) {
      auto fmax = [&](double t) { return quantization_loss(m, {r.min, static_cast<float>(full.max * t)}, spec, how); };
      r.max = static_cast<float>(full.max * detail::grid_minimize(fmax, lo_floor, 1.0, o.search_points, o.refine_points).x);
    }
    if (full.min < 0.0f) {
      auto fmin = [&](double t) { return quantization_loss(m, {static_cast<float>(full.min * t), r.max}, spec, how); };
      r.min = static_cast<float>(full.min * detail::grid_minimize(fmin, lo_floor, 1.0, o.search_points, o.refine_points).x);
    }
    if (r.min == before.min && r.max == before.max) break;
  }
  return r;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_MSE_HPP
