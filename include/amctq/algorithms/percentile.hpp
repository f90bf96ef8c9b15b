// Percentile calibration. The amct rule (the first step of AMCT's IFMR): the clipping max is the
// k-th largest value with k = N - floor(p * N) (k = 1 when p is 1 within DBL_EPSILON), the min the
// k-th smallest; both are exact while k fits the extreme_values buffer and otherwise read from the
// histogram with linear interpolation inside the bin. The onnxruntime preset repeats ORT's
// PercentileCalibrater on a histogram of `bins` bins: |x| over [0, absmax] for symmetric specs, x
// over [-absmax, absmax] otherwise, threshold = lower edge of the bin where the CDF first reaches
// the percentile, clipped to the data's [min, max].
#ifndef AMCTQ_ALGORITHMS_PERCENTILE_HPP
#define AMCTQ_ALGORITHMS_PERCENTILE_HPP

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "amctq/algorithms/calib_range.hpp"
#include "amctq/algorithms/histogram.hpp"
#include "amctq/algorithms/extreme_values.hpp"

namespace amctq {

struct percentile_options {
  double percentile = 99.999;  ///< in percent, (0, 100]; amct's IFMR default 0.999999 is 99.9999
  int bins = 2048;             ///< onnxruntime preset: histogram bins
};

inline void validate(const percentile_options& o, const char* where = "percentile_options") {
  AMCTQ_CHECK(o.percentile > 0.0 && o.percentile <= 100.0, errc::invalid_argument, where,
              "percentile must be in (0, 100], got ", o.percentile);
  AMCTQ_CHECK(o.bins >= 2, errc::invalid_argument, where, "bins must be >= 2, got ", o.bins);
}

/// AMCT's rank: k = N - floor(fraction * N), or 1 when the fraction is 1.
inline std::uint64_t amct_rank(double fraction, std::uint64_t n) {
  if (std::fabs(fraction - 1.0) < DBL_EPSILON) return 1;
  const auto k = n - static_cast<std::uint64_t>(std::floor(fraction * static_cast<double>(n)));
  return k < 1 ? 1 : (k > n ? n : k);
}

/// Value at 1-based rank k from the top (from_top) or bottom of the histogram, linearly
/// interpolated within its bin and kept inside [min, max].
inline float histogram_rank_value(const binned_histogram& h, double k, bool from_top) {
  double seen = 0.0;
  const std::size_t n = h.bins();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t b = from_top ? n - 1 - i : i;
    const double c = h.counts[b];
    if (c > 0.0 && seen + c >= k) {
      const double frac = (k - seen - 0.5) / c;  // the k-th value's position inside the bin
      const double t = from_top ? 1.0 - std::fmax(frac, 0.0) : std::fmax(frac, 0.0);
      const double v = h.edge(b) + t * h.width;
      return static_cast<float>(std::fmin(std::fmax(v, h.min), h.max));
    }
    seen += c;
  }
  return from_top ? h.min : h.max;
}

/// k-th largest (from_top) or smallest finite value: exact from the tails when they hold it.
inline float rank_value(extreme_values& tails, const binned_histogram& h, std::uint64_t k, bool from_top) {
  if (k <= tails.held()) return from_top ? tails.kth_largest(k) : tails.kth_smallest(k);
  return histogram_rank_value(h, static_cast<double>(k), from_top);
}

/// ORT's searchsorted(cdf, q): index of the first bin whose cumulative fraction reaches q.
inline std::size_t cdf_search(const binned_histogram& h, double q) {
  double cum = 0.0;
  for (std::size_t i = 0; i < h.bins(); ++i) {
    cum += h.counts[i] / h.total;
    if (cum >= q) return i;
  }
  return h.bins();
}

inline calib_range percentile_range(extreme_values& tails, const binned_histogram& h, const quant_spec& spec,
                                    preset how = preset::amct, const percentile_options& o = {}) {
  validate(o);
  if (h.total == 0.0) return {0.0f, 0.0f};
  const double p = o.percentile / 100.0;
  if (how == preset::onnxruntime) {
    const float amax = std::fmax(std::fabs(h.min), std::fabs(h.max));
    if (amax == 0.0f) return {h.min, h.max};
    calib_range r;
    if (spec.symmetric) {
      const binned_histogram a = resample(h, 0.0, amax, static_cast<std::size_t>(o.bins), true);
      const auto t = static_cast<float>(a.edge(cdf_search(a, p)));
      r = {-t, t};
    } else {
      const binned_histogram a = resample(h, -amax, amax, static_cast<std::size_t>(o.bins));
      const double cut = (1.0 - p) / 2.0;
      r = {static_cast<float>(a.edge(cdf_search(a, cut))), static_cast<float>(a.edge(cdf_search(a, 1.0 - cut)))};
    }
    return {std::fmax(r.min, h.min), std::fmin(r.max, h.max)};
  }
  const auto n = static_cast<std::uint64_t>(h.total);
  const std::uint64_t k = amct_rank(p, n);
  return {rank_value(tails, h, k, false), rank_value(tails, h, k, true)};
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_PERCENTILE_HPP
