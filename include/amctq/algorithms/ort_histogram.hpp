// ONNX Runtime's HistogramCollector (onnxruntime/quantization/calibrate.py), batch by batch, for
// the onnxruntime preset's entropy and percentile searches. Two collectors, as ORT has:
//  - collect_value (entropy; percentile with an asymmetric range): x over [-t, t];
//  - collect_absolute_value (percentile with a symmetric range): |x| over [min |x|, max |x|].
//
// Why not the pow2_histogram: ORT's windows and percentiles are cut from the counts
// numpy.histogram gives on ORT's grid, and no re-binning of another histogram reproduces those
// counts: a source bin that straddles a target edge must go to one side or be split, and on a
// sparse tail (a few outliers at 7x the body) the KL minimum moved by tens of bins with that
// choice. So this keeps ORT's own state, computed ORT's way:
//  - values, first batch: numpy.histogram(x, bins, range=(-t, t)) with t = max(|min|, |max|)
//    (float32); a later batch with absmax <= t: histogrammed over the same range and added; one
//    with absmax > t: the range grows by whole old bins on both sides (ORT's
//    half_increased_bins = floor((t' - t) / stride) + 1), so the bin count grows too, the batch
//    is histogrammed over the new range and the old counts are added to the middle bins;
//  - magnitudes, first batch: numpy.histogram(|x|, bins) (numpy's own range, the data's);
//    a later batch: histogrammed on the kept edges (searchsorted, values outside dropped), after
//    appending np.arange(last + w, max|x| + w, w) (w = the first bin's width) when max |x| is
//    beyond the last edge; the old counts are added to the first bins; edges stored as float32;
//  - numpy's arithmetic literally (numpy 1.x promotion: a float32 range stays float32, a grown or
//    widened-empty one is float64; float32 offsets and scale; the ±1 correction against float32
//    edges that numpy.linspace computes in float64; np.arange of float32 scalars: length and
//    second element in float32, the rest start + i * delta in float64).
// The result depends on batch order, as ORT's does: the same values split differently give a
// different histogram (hence activation_observer::merge refuses two non-empty ones).
#ifndef AMCTQ_ALGORITHMS_ORT_HISTOGRAM_HPP
#define AMCTQ_ALGORITHMS_ORT_HISTOGRAM_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "amctq/error.hpp"

namespace amctq {

/// Which HistogramCollector collector an ort_histogram follows.
enum class ort_collect : std::uint8_t {
  values,      ///< collect_value: x over [-t, t] (entropy; percentile, asymmetric)
  magnitudes,  ///< collect_absolute_value: |x| over [min |x|, max |x|] (percentile, symmetric)
};

/// Plain data that restores an ort_histogram exactly.
struct ort_histogram_state {
  std::vector<std::uint64_t> counts;  ///< empty: no batch yet
  double threshold = 0.0;             ///< values: the range is [-threshold, threshold]
  bool threshold_f32 = true;          ///< values: numpy type of the threshold: float32 (first batch) or float64 (grown)
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  std::vector<float> edges;  ///< magnitudes: the bin edges as ORT keeps them (counts.size() + 1)
};

namespace detail {

// Edge k of numpy.histogram's n equal bins over [lo, hi]: the float32 value of numpy.linspace's
// float64 k * ((hi - lo) / n) + lo, the last one hi itself.
inline float numpy_edge(std::size_t k, std::size_t n, double lo, double hi) noexcept {
  if (k >= n) return static_cast<float>(hi);
  return static_cast<float>(static_cast<double>(k) * ((hi - lo) / static_cast<double>(n)) + lo);
}

// numpy.histogram(x, out.size(), range=(lo, hi)) added to out: the uniform-bin path. Operand
// types as numpy 1.x promotes them: data float32, range scalars cast to float32 in the
// comparisons and the subtraction; the scale n / (hi - lo) is float64 (int over a float32 or
// float64 scalar; the span in the range's own type, `range_f32`), cast to float32 in the
// multiplication.
inline void numpy_count_uniform(const float* x, std::size_t n, double lo, double hi, bool range_f32,
                                std::vector<std::uint64_t>& out) {
  const std::size_t nb = out.size();
  const float lo32 = static_cast<float>(lo), hi32 = static_cast<float>(hi);
  const double span = range_f32 ? static_cast<double>(hi32 - lo32) : hi - lo;
  const auto norm = static_cast<float>(static_cast<double>(nb) / span);
  std::vector<float> edges(nb + 1);
  for (std::size_t k = 0; k <= nb; ++k) edges[k] = numpy_edge(k, nb, lo, hi);
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

// numpy.histogram(x, bins=edges) added to out (edges.size() - 1 bins): the searchsorted path,
// bin k = [edges[k], edges[k + 1]), the last one closed; values outside are dropped.
inline void numpy_count_edges(const float* x, std::size_t n, const std::vector<double>& edges,
                              std::vector<std::uint64_t>& out) {
  const std::size_t nb = edges.size() - 1;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (!(v >= edges.front() && v <= edges.back())) continue;
    const auto k = static_cast<std::size_t>(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin());
    ++out[std::min(k, nb) - 1];
  }
}

}  // namespace detail

class ort_histogram {
 public:
  explicit ort_histogram(std::size_t bins = 2048, ort_collect how = ort_collect::values) : bins_(bins), how_(how) {
    AMCTQ_CHECK(bins >= 1, errc::invalid_argument, "ort_histogram", "bins must be >= 1");
  }

  bool empty() const noexcept { return counts_.empty(); }
  ort_collect collect() const noexcept { return how_; }
  std::size_t bins() const noexcept { return counts_.empty() ? bins_ : counts_.size(); }
  const std::vector<std::uint64_t>& counts() const noexcept { return counts_; }
  double threshold() const noexcept { return threshold_; }
  float min() const noexcept { return min_; }
  float max() const noexcept { return max_; }

  /// Edge k (0 ..= bins()) of the current histogram as numpy gives it.
  float edge(std::size_t k) const noexcept {
    if (how_ == ort_collect::magnitudes) return edges_.empty() ? 0.0f : edges_[std::min(k, edges_.size() - 1)];
    const auto [lo, hi] = outer_edges();
    return detail::numpy_edge(k, counts_.size(), lo, hi);
  }

  /// One batch (ORT's collect_value or collect_absolute_value). Non-finite values are not
  /// counted (as numpy.histogram drops NaN; the observer rejects them before unless told to
  /// skip them).
  void add(const float* x, std::size_t n) {
    float mn = std::numeric_limits<float>::infinity(), mx = -mn;
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) continue;
      mn = x[i] < mn ? x[i] : mn;
      mx = x[i] > mx ? x[i] : mx;
    }
    if (!(mn <= mx)) return;
    min_ = std::fmin(min_, mn);
    max_ = std::fmax(max_, mx);
    if (how_ == ort_collect::magnitudes) {
      add_magnitudes(x, n);
      return;
    }
    const float t = std::fmax(std::fabs(mn), std::fabs(mx));
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

  ort_histogram_state to_state() const { return {counts_, threshold_, threshold_f32_, min_, max_, edges_}; }

  static ort_histogram from_state(std::size_t bins, ort_collect how, const ort_histogram_state& s) {
    ort_histogram h(bins, how);
    if (s.counts.empty()) return h;
    const char* where = "ort_histogram::from_state";
    AMCTQ_CHECK(std::isfinite(s.threshold) && s.threshold >= 0.0 && s.min <= s.max, errc::parse, where,
                "threshold must be finite and >= 0 and min <= max");
    AMCTQ_CHECK(how == ort_collect::magnitudes ? s.edges.size() == s.counts.size() + 1 : s.edges.empty(), errc::parse,
                where, "edges must be one more than the counts for the |x| histogram and absent otherwise, got ",
                s.edges.size(), " edges for ", s.counts.size(), " counts");
    h.counts_ = s.counts;
    h.threshold_ = s.threshold;
    h.threshold_f32_ = s.threshold_f32;
    h.min_ = s.min;
    h.max_ = s.max;
    h.edges_ = s.edges;
    return h;
  }

 private:
  // ORT grows the |x| histogram with np.arange, which would allocate without bound on a batch
  // far beyond the first one's range; past this many bins that is an error instead.
  static constexpr double max_grown_bins = double{1 << 26};

  // collect_absolute_value on one batch.
  void add_magnitudes(const float* x, std::size_t n) {
    std::vector<float> a;
    a.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
      if (std::isfinite(x[i])) a.push_back(std::fabs(x[i]));
    const float amin = *std::min_element(a.begin(), a.end()), amax = *std::max_element(a.begin(), a.end());
    if (counts_.empty()) {
      // numpy's own range; an empty one widens by 0.5 in float64 (float32 scalar - 0.5).
      const bool flat = amin == amax;
      const double lo = flat ? static_cast<double>(amin) - 0.5 : amin, hi = flat ? static_cast<double>(amax) + 0.5 : amax;
      counts_.assign(bins_, 0);
      detail::numpy_count_uniform(a.data(), a.size(), lo, hi, !flat, counts_);
      edges_.resize(bins_ + 1);
      for (std::size_t k = 0; k <= bins_; ++k) edges_[k] = detail::numpy_edge(k, bins_, lo, hi);
      return;
    }
    std::vector<double> edges(edges_.begin(), edges_.end());
    if (amax > edges_.back()) grow_edges(edges, amax);
    std::vector<std::uint64_t> counts(edges.size() - 1, 0);
    detail::numpy_count_edges(a.data(), a.size(), edges, counts);
    for (std::size_t k = 0; k < counts_.size(); ++k) counts[k] += counts_[k];
    counts_ = std::move(counts);
    edges_.assign(edges.begin(), edges.end());  // ORT: hist_edges.astype(float32)
  }

  // np.arange(last + w, amax + w, w) appended, w the first bin's width, all float32 scalars:
  // numpy computes the length and the second element in float32, fills start + i * delta in float64.
  void grow_edges(std::vector<double>& edges, float amax) const {
    const float w = edges_[1] - edges_[0], start = edges_.back() + w, stop = amax + w;
    AMCTQ_CHECK(w > 0.0f, errc::unsupported, "ort_histogram", "the |x| histogram cannot grow: its first bin is ",
                "empty in float32 (range [", edges_.front(), ", ", edges_.back(), "])");
    const double len = std::ceil(static_cast<double>((stop - start) / w));
    AMCTQ_CHECK(len <= max_grown_bins, errc::unsupported, "ort_histogram", "the |x| histogram would grow by ", len,
                " bins of width ", w, " to reach ", amax, " (more than 2^26)");
    if (!(len > 0.0)) return;
    edges.push_back(start);
    if (len < 2.0) return;
    const double next = static_cast<double>(start + w), delta = next - static_cast<double>(start);
    edges.push_back(next);
    for (std::size_t i = 2; static_cast<double>(i) < len; ++i)
      edges.push_back(static_cast<double>(start) + static_cast<double>(i) * delta);
  }

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
    const auto [lo, hi] = outer_edges();
    detail::numpy_count_uniform(x, n, lo, hi, threshold_f32_ && threshold_ != 0.0, counts_);
  }

  std::size_t bins_;
  ort_collect how_;
  std::vector<std::uint64_t> counts_;
  double threshold_ = 0.0;
  bool threshold_f32_ = true;
  float min_ = std::numeric_limits<float>::infinity();
  float max_ = -std::numeric_limits<float>::infinity();
  std::vector<float> edges_;
};

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_ORT_HISTOGRAM_HPP
