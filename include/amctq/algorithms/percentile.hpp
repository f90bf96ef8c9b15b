// Percentile calibration. The amct rule (the first step of AMCT's IFMR): the clipping max is the
// k-th largest value with k = N - floor(p * N) (k = 1 when p is 1 within DBL_EPSILON), the min the
// k-th smallest; both are exact while k fits the extreme_values buffer and otherwise read from the
// histogram with linear interpolation inside the bin. The onnxruntime preset is ORT's
// PercentileCalibrater (HistogramCollector.compute_percentile): threshold = lower edge of the bin
// where the CDF first reaches the percentile (asymmetric: (100 - p) / 200 cut per side), clipped
// to the data's [min, max]. The observer gives it ORT's own histogram (ort_histogram.hpp: |x| for
// symmetric specs, x over [-absmax, absmax] otherwise), which makes it ORT's bit for bit; on
// another histogram it re-bins to ORT's grid first, an approximation.
#ifndef AMCTQ_ALGORITHMS_PERCENTILE_HPP
#define AMCTQ_ALGORITHMS_PERCENTILE_HPP

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <utility>

#include "amctq/algorithms/calib_range.hpp"
#include "amctq/algorithms/histogram.hpp"
#include "amctq/algorithms/extreme_values.hpp"
#include "amctq/algorithms/ort_histogram.hpp"

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

namespace detail {

// ORT's np.searchsorted(np.cumsum(hist / total), q): the first bin whose cumulative fraction
// reaches q (the bin count when rounding keeps the sum below q).
template <class Counts>
std::size_t cdf_search(const Counts& counts, double total, double q) {
  double cum = 0.0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cum += static_cast<double>(counts[i]) / total;
    if (cum >= q) return i;
  }
  return counts.size();
}

// compute_percentile's bins: the range is [edge(first), edge(second)], or +-edge(second) for the
// |x| histogram (symmetric). The cut per side is computed as ORT writes it, in percent.
template <class Counts>
std::pair<std::size_t, std::size_t> ort_percentile_bins(const Counts& counts, double total, double percentile,
                                                        bool symmetric) {
  if (symmetric) return {0, cdf_search(counts, total, percentile / 100.0)};
  const double cut = (100.0 - percentile) / 200.0;
  return {cdf_search(counts, total, cut), cdf_search(counts, total, 1.0 - cut)};
}

}  // namespace detail

inline calib_range percentile_range(extreme_values& tails, const binned_histogram& h, const quant_spec& spec,
                                    preset how = preset::amct, const percentile_options& o = {}) {
  validate(o);
  if (h.total == 0.0) return {0.0f, 0.0f};
  const double p = o.percentile / 100.0;
  if (how == preset::onnxruntime) {  // an approximation: the observer keeps ORT's own histogram (below)
    const float amax = std::fmax(std::fabs(h.min), std::fabs(h.max));
    if (amax == 0.0f) return {h.min, h.max};
    const auto bins = static_cast<std::size_t>(o.bins);
    const binned_histogram a =
        spec.symmetric ? resample(h, 0.0, amax, bins, true) : resample(h, -amax, amax, bins);
    const auto [lo, hi] = detail::ort_percentile_bins(a.counts, a.total, o.percentile, spec.symmetric);
    const auto t = static_cast<float>(a.edge(hi));
    const calib_range r{spec.symmetric ? -t : static_cast<float>(a.edge(lo)), t};
    return {std::fmax(r.min, h.min), std::fmin(r.max, h.max)};
  }
  const auto n = static_cast<std::uint64_t>(h.total);
  const std::uint64_t k = amct_rank(p, n);
  return {rank_value(tails, h, k, false), rank_value(tails, h, k, true)};
}

/// The onnxruntime preset on ORT's own histogram (ort_histogram.hpp): PercentileCalibrater
/// exactly. The collector decides the rule: |x| histogram (ORT's symmetric) or x's.
inline calib_range percentile_range(const ort_histogram& h, const percentile_options& o = {}) {
  validate(o);
  if (h.empty()) return {0.0f, 0.0f};
  const bool symmetric = h.collect() == ort_collect::magnitudes;
  double total = 0.0;
  for (const std::uint64_t c : h.counts()) total += static_cast<double>(c);
  const auto [lo, hi] = detail::ort_percentile_bins(h.counts(), total, o.percentile, symmetric);
  const float t = h.edge(hi);
  return {std::fmax(symmetric ? -t : h.edge(lo), h.min()), std::fmin(t, h.max())};
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_PERCENTILE_HPP
