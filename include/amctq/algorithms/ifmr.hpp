// IFMR (AMCT's default activation calibration; docs/algorithms/activation.md, section 2):
// percentile initial range, then a scan of clipping ratios r = start + i * step scoring the L2
// error of the quantizer clip-then-round, without integer clamp, first argmin wins.
//
// Candidate count, where AMCT's C++ and Python disagree: the shipped C++ computes (unsigned)((end -
// start) / step + 1) in float, which gives 60 candidates (0.70 .. 1.29) for the defaults; the
// Python port gives 61. amctq follows the shipped binaries (ifmr_candidate_count).
//
// Differences from AMCT, on purpose: AMCT keeps every calibration value in memory and scores
// candidates on the data; amctq streams (histogram + exact tails) and scores on the
// histogram with uniform density inside each of >= 8192 bins, so its loss is exact up to that
// model and its result depends on the data only, never on batching. The percentile initial
// values are exact while the rank fits the tails buffer (extreme_values::capacity, 4096 by
// default: 4e9 values at the default percentile).
#ifndef AMCTQ_ALGORITHMS_IFMR_HPP
#define AMCTQ_ALGORITHMS_IFMR_HPP

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

#include "amctq/algorithms/calib_range.hpp"
#include "amctq/algorithms/histogram_moments.hpp"
#include "amctq/algorithms/percentile.hpp"

namespace amctq {

struct ifmr_options {
  double max_percentile = 0.999999;  ///< (0.5, 1]
  double min_percentile = 0.999999;  ///< (0.5, 1]
  double search_start = 0.7;
  double search_end = 1.3;
  double search_step = 0.01;
};

inline void validate(const ifmr_options& o, const char* where = "ifmr_options") {
  AMCTQ_CHECK(o.max_percentile > 0.5 && o.max_percentile <= 1.0, errc::invalid_argument, where,
              "max_percentile must be in (0.5, 1], got ", o.max_percentile);
  AMCTQ_CHECK(o.min_percentile > 0.5 && o.min_percentile <= 1.0, errc::invalid_argument, where,
              "min_percentile must be in (0.5, 1], got ", o.min_percentile);
  AMCTQ_CHECK(o.search_start > 0.0 && o.search_start < o.search_end, errc::invalid_argument, where,
              "search range must satisfy 0 < start < end, got [", o.search_start, ", ", o.search_end, "]");
  AMCTQ_CHECK(o.search_step > 0.0 && o.search_step <= o.search_end - o.search_start, errc::invalid_argument, where,
              "search_step must be in (0, end - start], got ", o.search_step);
  AMCTQ_CHECK((o.search_end - o.search_start) / o.search_step <= 1e6, errc::invalid_argument, where,
              "search range / step gives more than 1e6 candidates");
}

/// AMCT C++'s candidate count, evaluated in float as the shipped code does.
inline std::uint32_t ifmr_candidate_count(const ifmr_options& o) {
  const float n = (static_cast<float>(o.search_end) - static_cast<float>(o.search_start)) /
                  static_cast<float>(o.search_step) + 1.0f;
  return static_cast<std::uint32_t>(n);
}

namespace detail {
// AMCT's ProcessScale: scales below FLT_EPSILON become 1.
inline double process_scale(double s) { return s < FLT_EPSILON ? 1.0 : s; }
}  // namespace detail

inline calib_range ifmr_range(extreme_values& tails, const binned_histogram& h, const quant_spec& spec,
                              preset how = preset::amct, const ifmr_options& o = {}) {
  validate(o);
  (void)how;  // IFMR's search always uses AMCT's grid; the preset only maps the final range
  if (h.total == 0.0) return {0.0f, 0.0f};
  const auto n = static_cast<std::uint64_t>(h.total);
  const float max0 = std::fmax(0.0f, rank_value(tails, h, amct_rank(o.max_percentile, n), true));
  const float min0 = std::fmin(0.0f, rank_value(tails, h, amct_rank(o.min_percentile, n), false));
  const histogram_moments m(h);
  const std::uint32_t count = ifmr_candidate_count(o);
  const int b = spec.bits;
  auto ratio = [&](std::uint32_t i) { return o.search_start + static_cast<double>(i) * o.search_step; };
  auto round_away = [](double v) { return std::round(v); };
  // Clip ends are found in double; data near FLT_MAX times a ratio above 1 passes the float
  // range, and the range returned must stay finite (params_from_range then says whether a
  // scale exists).
  auto to_float = [](double v) { return static_cast<float>(std::fmin(v, std::numeric_limits<float>::max())); };
  std::uint32_t best = 0;
  double best_loss = INFINITY;
  if (spec.symmetric) {
    const float a = std::fabs(max0) > std::fabs(min0) ? max0 : min0;
    const double levels = a > 0.0f ? std::ldexp(1.0, b - 1) - 1.0 : std::ldexp(1.0, b - 1);
    const double A = std::fabs(static_cast<double>(a));
    for (std::uint32_t i = 0; i < count; ++i) {
      const double c = ratio(i) * A;
      const double s = detail::process_scale(c / levels);
      const double k = round_away(c / s);
      const double loss = m.loss(-k * s, s, static_cast<std::int64_t>(2 * k + 1));
      if (loss < best_loss) {
        best_loss = loss;
        best = i;
      }
    }
    const float c = to_float(ratio(best) * A);
    return a > 0.0f ? calib_range{0.0f, c} : calib_range{-c, 0.0f};
  }
  const double span = std::ldexp(1.0, b) - 1.0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const double c = ratio(i) * max0;
    const double s = detail::process_scale((c - min0) / span);
    const double k0 = round_away(min0 / s), k1 = round_away(c / s);
    const double loss = m.loss(k0 * s, s, static_cast<std::int64_t>(k1 - k0 + 1));
    if (loss < best_loss) {
      best_loss = loss;
      best = i;
    }
  }
  return {min0, to_float(ratio(best) * max0)};
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_IFMR_HPP
