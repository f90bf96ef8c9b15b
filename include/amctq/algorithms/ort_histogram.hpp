// ONNX Runtime's HistogramCollector.collect_value (onnxruntime/quantization/calibrate.py), batch
// by batch, for the onnxruntime preset's entropy search.
//
// Why not the pow2_histogram: ORT's windows are cut from the counts numpy.histogram gives over
// [-t, t] in `bins` equal bins (t = absmax of the first batch), and no re-binning of another
// histogram reproduces those counts: a source bin that straddles a target edge must go to one
// side or be split, and on a sparse tail (a few outliers at 7x the body) the KL minimum moved
// by tens of bins with that choice. So this keeps ORT's own state, computed ORT's way:
//  - first batch: numpy.histogram(x, bins, range=(-t, t)) with t = max(|min|, |max|) (float32);
//  - a later batch with absmax <= t: histogrammed over the same range and added;
//  - one with absmax > t: the range grows by whole old bins on both sides (ORT's
//    half_increased_bins = floor((t' - t) / stride) + 1), so the bin count grows too, the batch
//    is histogrammed over the new range and the old counts are added to the middle bins;
//  - numpy's index arithmetic literally (numpy 1.x promotion: the first range in float32, a
//    grown one in float64; float32 offsets and scale; the ±1 correction against float32 edges
//    that numpy.linspace computes in float64).
// The result depends on batch order, as ORT's does: the same values split differently give a
// different histogram (hence activation_observer::merge refuses two non-empty ones).
#ifndef AMCTQ_ALGORITHMS_ORT_HISTOGRAM_HPP
#define AMCTQ_ALGORITHMS_ORT_HISTOGRAM_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "amctq/error.hpp"

namespace amctq {

/// Plain data that restores an ort_histogram exactly.
struct ort_histogram_state {
  std::vector<std::uint64_t> counts;  ///< empty: no batch yet
  double threshold = 0.0;             ///< the range is [-threshold, threshold]
  bool threshold_f32 = true;          ///< numpy type of the threshold: float32 (first batch) or float64 (grown)
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
};

class ort_histogram {
 public:
  explicit ort_histogram(std::size_t bins = 2048) : bins_(bins) {
    AMCTQ_CHECK(bins >= 1, errc::invalid_argument, "ort_histogram", "bins must be >= 1");
  }

  bool empty() const noexcept { return counts_.empty(); }
  std::size_t bins() const noexcept { return counts_.empty() ? bins_ : counts_.size(); }
  const std::vector<std::uint64_t>& counts() const noexcept { return counts_; }
  double threshold() const noexcept { return threshold_; }
  float min() const noexcept { return min_; }
  float max() const noexcept { return max_; }

  /// Edge k of the current range as numpy gives it (float32 values of the float64 linspace).
  float edge(std::size_t k) const noexcept {
    const auto [lo, hi] = outer_edges();
    const std::size_t n = counts_.size();
    if (k >= n) return static_cast<float>(hi);
    return static_cast<float>(static_cast<double>(k) * ((hi - lo) / static_cast<double>(n)) + lo);
  }

  /// One batch (ORT's collect_value). Non-finite values are not counted (as numpy.histogram
  /// drops NaN; the observer rejects them before unless told to skip them).
  void add(const float* x, std::size_t n) {
    float mn = std::numeric_limits<float>::infinity(), mx = -mn;
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) continue;
      mn = x[i] < mn ? x[i] : mn;
      mx = x[i] > mx ? x[i] : mx;
    }
    if (!(mn <= mx)) return;
    const float t = std::fmax(std::fabs(mn), std::fabs(mx));
    min_ = std::fmin(min_, mn);
    max_ = std::fmax(max_, mx);
    if (counts_.empty()) {
      threshold_ = t;
      threshold_f32_ = true;
      counts_.assign(bins_, 0);
      count(x, n);
      return;
    }
    if (static_cast<double>(t) <= threshold_) {
      count(x, n);
      return;
    }
    const std::vector<std::uint64_t> old = std::move(counts_);
    const std::size_t old_n = old.size();
    std::size_t half = 0;
    if (threshold_ != 0.0) {
      const double stride = 2.0 * threshold_ / static_cast<double>(old_n);
      // new - old in the threshold's numpy type (float32 - float32 stays float32).
      const double diff = threshold_f32_ ? static_cast<double>(t - static_cast<float>(threshold_))
                                         : static_cast<double>(t) - threshold_;
      half = static_cast<std::size_t>(floor_divide(diff, stride) + 1.0);
      threshold_ = static_cast<double>(half) * stride + threshold_;
      threshold_f32_ = false;
    } else {
      threshold_ = t;  // ORT histograms over the batch's own range, keeping the bin count
      threshold_f32_ = true;
    }
    counts_.assign(old_n + 2 * half, 0);
    count(x, n);
    for (std::size_t k = 0; k < old_n; ++k) counts_[half + k] += old[k];
  }

  ort_histogram_state to_state() const { return {counts_, threshold_, threshold_f32_, min_, max_}; }

  static ort_histogram from_state(std::size_t bins, const ort_histogram_state& s) {
    ort_histogram h(bins);
    if (s.counts.empty()) return h;
    AMCTQ_CHECK(std::isfinite(s.threshold) && s.threshold >= 0.0 && s.min <= s.max, errc::parse,
                "ort_histogram::from_state", "threshold must be finite and >= 0 and min <= max");
    h.counts_ = s.counts;
    h.threshold_ = s.threshold;
    h.threshold_f32_ = s.threshold_f32;
    h.min_ = s.min;
    h.max_ = s.max;
    return h;
  }

 private:
  // numpy's floor_divide on doubles (npy_divmod).
  static double floor_divide(double a, double b) {
    const double mod = std::fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
    if (div == 0.0) return std::copysign(0.0, a / b);
    double fl = std::floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return fl;
  }

  // numpy's _get_outer_edges for range=(-threshold, threshold): an empty range widens by 0.5.
  std::pair<double, double> outer_edges() const noexcept {
    if (threshold_ == 0.0) return {-0.5, 0.5};
    return {-threshold_, threshold_};
  }

  // numpy.histogram(x, bins(), range=(-threshold, threshold)) added to the counts.
  void count(const float* x, std::size_t n) {
    std::vector<std::uint64_t>& out = counts_;
    const std::size_t nb = out.size();
    const auto [lo, hi] = outer_edges();
    // Operand types as numpy 1.x promotes them: data float32, range scalars cast to float32 in
    // the comparisons and the subtraction; the scale n / (hi - lo) is float64 (int over a
    // float32 or float64 scalar), cast to float32 in the multiplication.
    const bool f32 = threshold_f32_ && threshold_ != 0.0;
    const float lo32 = static_cast<float>(lo), hi32 = static_cast<float>(hi);
    const double span = f32 ? static_cast<double>(hi32 - lo32) : hi - lo;
    const auto norm = static_cast<float>(static_cast<double>(nb) / span);
    std::vector<float> edges(nb + 1);
    for (std::size_t k = 0; k <= nb; ++k) edges[k] = edge(k);
    for (std::size_t i = 0; i < n; ++i) {
      const float v = x[i];
      if (!(v >= lo32 && v <= hi32)) continue;  // NaN too
      const float f = (v - lo32) * norm;
      auto k = static_cast<std::ptrdiff_t>(f);
      if (k == static_cast<std::ptrdiff_t>(nb)) --k;
      if (v < edges[static_cast<std::size_t>(k)]) --k;
      if (k != static_cast<std::ptrdiff_t>(nb) - 1 && v >= edges[static_cast<std::size_t>(k) + 1]) ++k;
      ++out[static_cast<std::size_t>(k)];
    }
  }

  std::size_t bins_;
  std::vector<std::uint64_t> counts_;
  double threshold_ = 0.0;
  bool threshold_f32_ = true;
  float min_ = std::numeric_limits<float>::infinity();
  float max_ = -std::numeric_limits<float>::infinity();
};

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_ORT_HISTOGRAM_HPP
