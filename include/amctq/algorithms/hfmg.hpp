// HFMG (AMCT; docs/algorithms/activation.md, section 2) and PyTorch HistogramObserver's search:
// both score a window [left, right] of a histogram over [min, max] by the L2 error of re-quantizing
// it to 2^b equal cells (values outside clamp to the end cells); they differ in which windows they
// try.
//  - amct: greedy trimming, step = ceil(total / 1e5) counts from the sparser side until the
//    window is a quarter of the bins; every window is scored, first argmin wins. The loss uses
//    signed bin offsets (AMCT's C++ original computes them unsigned, so bins left of the
//    window wrap around; its Python port is signed, the evident intent).
//  - pytorch: Caffe2's NormMinimization walk with quantile step 1e-5, stopping at the first
//    window whose error increases (a local minimum, as PyTorch does).
// Scoring is O(levels) per window via histogram_moments, not PyTorch's O(bins).
#ifndef AMCTQ_ALGORITHMS_HFMG_HPP
#define AMCTQ_ALGORITHMS_HFMG_HPP

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "amctq/algorithms/calib_range.hpp"
#include "amctq/algorithms/histogram_moments.hpp"

namespace amctq {

struct hfmg_options {
  int bins = 0;  ///< 0: 4096 (amct) or 2048 (pytorch)
  /// pytorch preset: reproduce torch <= 1.13's HistogramObserver, whose first histogram is
  /// taken over [int(min), int(max)] (values outside dropped) but read as if it spanned
  /// [min, max] (torch.histc(x, bins, min=int(min_val), max=int(max_val)) in observer.py).
  bool torch_int_range = false;
};

inline void validate(const hfmg_options& o, const char* where = "hfmg_options") {
  AMCTQ_CHECK(o.bins == 0 || (o.bins >= 16 && o.bins <= 1 << 20), errc::invalid_argument, where,
              "bins must be 0 (default) or in [16, 2^20], got ", o.bins);
}

namespace detail {

struct window_scorer {
  const histogram_moments& m;
  const binned_histogram& h;
  std::int64_t levels;

  double operator()(std::size_t left, std::size_t right) const {
    const double dw = h.width * static_cast<double>(right - left + 1) / static_cast<double>(levels);
    if (dw < FLT_EPSILON) return 0.0;
    return m.loss(h.edge(left) + 0.5 * dw, dw, levels);
  }
};

inline void amct_hfmg_search(const binned_histogram& h, const window_scorer& score, std::size_t& best_l,
                             std::size_t& best_r) {
  const std::size_t n = h.bins();
  const double step = std::fmax(std::ceil(h.total / 100000.0), 1.0);
  const std::size_t min_bins = (n + 3) / 4;
  std::size_t left = 0, right = n - 1;
  double best = score(left, right);
  best_l = left;
  best_r = right;
  while (right - left > min_bins) {
    std::size_t tl = left;
    double acc = 0.0;
    while (tl < right && acc < step) acc += h.counts[tl++];
    std::size_t tr = right;
    acc = 0.0;
    while (tr > left && acc < step) acc += h.counts[tr--];
    if (right - tr >= tl - left) right = tr;
    else left = tl;
    if (right <= left) break;
    const double v = score(left, right);
    if (v < best) {
      best = v;
      best_l = left;
      best_r = right;
    }
  }
}

inline void pytorch_hfmg_search(const binned_histogram& h, const window_scorer& score, std::size_t& best_l,
                                std::size_t& best_r) {
  const std::size_t n = h.bins();
  std::vector<double> csum(n);
  double acc = 0.0;
  for (std::size_t i = 0; i < n; ++i) csum[i] = acc += h.counts[i];
  const double total = acc, stepsize = 1e-5;
  double alpha = 0.0, beta = 1.0, norm_min = INFINITY;
  std::size_t start = 0, end = n - 1;
  while (alpha < beta) {
    const double next_alpha = alpha + stepsize, next_beta = beta - stepsize;
    std::size_t l = start, r = end;
    while (l < end && csum[l] < next_alpha * total) ++l;
    while (r > start && csum[r] > next_beta * total) --r;
    std::size_t ns = start, ne = end;
    if (l - start > end - r) {
      ns = l;
      alpha = next_alpha;
    } else {
      ne = r;
      beta = next_beta;
    }
    if (ns == start && ne == end) continue;
    const double v = score(ns, ne);
    if (v > norm_min) break;
    norm_min = v;
    start = ns;
    end = ne;
  }
  best_l = start;
  best_r = end;
}

// torch 1.13's first-batch histogram: counts over [trunc(min), trunc(max)] (both 0 -> the data
// range, as torch.histc does), labelled with the true [min, max].
inline binned_histogram torch_int_range_histogram(const binned_histogram& fine, std::size_t bins) {
  double lo = std::trunc(static_cast<double>(fine.min)), hi = std::trunc(static_cast<double>(fine.max));
  if (!(hi > lo)) {
    lo = fine.min;
    hi = fine.max;
  }
  binned_histogram h;
  h.lo = fine.min;
  h.width = (static_cast<double>(fine.max) - fine.min) / static_cast<double>(bins);
  h.counts.assign(bins, 0.0);
  h.min = fine.min;
  h.max = fine.max;
  const double scale = static_cast<double>(bins) / (hi - lo);
  for (std::size_t k = 0; k < fine.bins(); ++k) {
    const double c = 0.5 * (fine.edge(k) + fine.edge(k + 1));
    if (fine.counts[k] == 0.0 || c < lo || c > hi) continue;
    const auto b = std::min(static_cast<std::size_t>((c - lo) * scale), bins - 1);
    h.counts[b] += fine.counts[k];
    h.total += fine.counts[k];
  }
  return h;
}

}  // namespace detail

/// h: the streaming histogram (any grid); it is resampled to `bins` bins over [min, max] first.
inline calib_range hfmg_range(const binned_histogram& fine, const quant_spec& spec, preset how = preset::amct,
                              const hfmg_options& o = {}) {
  validate(o);
  if (fine.total == 0.0) return {0.0f, 0.0f};
  if (!(fine.max > fine.min)) return {fine.min, fine.max};
  const std::size_t bins = o.bins ? static_cast<std::size_t>(o.bins) : (how == preset::pytorch ? 2048 : 4096);
  const binned_histogram h = how == preset::pytorch && o.torch_int_range
                                 ? detail::torch_int_range_histogram(fine, bins)
                                 : resample(fine, fine.min, fine.max, bins, false, how == preset::pytorch);
  const histogram_moments m(h);
  const qrange q = integer_range(spec);
  const detail::window_scorer score{m, h, static_cast<std::int64_t>(q.qmax) - q.qmin + 1};
  std::size_t l = 0, r = bins - 1;
  if (how == preset::pytorch) detail::pytorch_hfmg_search(h, score, l, r);
  else detail::amct_hfmg_search(h, score, l, r);
  return {static_cast<float>(h.edge(l)), static_cast<float>(h.edge(r + 1))};
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_HFMG_HPP
