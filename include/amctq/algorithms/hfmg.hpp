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
// Scoring is O(levels) per window via histogram_moments, not PyTorch's O(bins); amct's search
// scores only the windows whose O(1) lower bound does not exceed a score already found (the same
// pick as scoring all of them: tests/algorithms/test_hfmg_search.cpp).
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

// A lower bound, O(1) per window, of what window_scorer returns (the float result, not only the
// exact loss). With levels g_0 .. g_{L-1} spaced dw, the loss is the clamped tails, which the
// moments give in O(1), plus the interior integral of density * s(x), s the squared distance to
// the nearest level. s = dw^2/12 + (s - dw^2/12), and the second part integrates to
// Phi(x) = t^3/3 - t dw^2/12 (t the distance to the nearest level), periodic and |Phi| <=
// dw^3 / (18 sqrt 12); integrating by parts over the piecewise-constant density, the interior is
// mass * dw^2/12 within Phi_max * (density at both ends + total variation of the density). The
// float error of score() (prefix sums over the bins, cancellation of moments about the centre,
// the sum over the levels) is of the order of (bins + levels) * eps * total * range^2; `margin`
// is 64 times that, over 10^8 times the largest excess of the bound without it over score()
// seen on the tests' histograms.
struct window_bound {
  const histogram_moments& m;
  const binned_histogram& h;
  std::int64_t levels;
  std::vector<double> tv;  // tv[k]: sum over j in [1, k] of |density_j - density_{j-1}|
  double margin;

  window_bound(const histogram_moments& mm, const binned_histogram& hh, std::int64_t l)
      : m(mm), h(hh), levels(l), tv(hh.bins()) {
    double acc = 0.0;
    for (std::size_t k = 1; k < tv.size(); ++k) tv[k] = acc += std::fabs(m.density(k) - m.density(k - 1));
    const double range = h.width * static_cast<double>(h.bins());
    margin = 64.0 * DBL_EPSILON * (static_cast<double>(h.bins()) + static_cast<double>(levels) + 16.0) * m.total() *
             range * range;
  }

  std::size_t bin_of(double u) const noexcept {  // u local (about m.center())
    const double f = std::floor((u + m.center() - h.lo) / h.width);
    return static_cast<std::size_t>(std::clamp(f, 0.0, static_cast<double>(h.bins() - 1)));
  }

  double operator()(std::size_t left, std::size_t right) const noexcept {
    const double dw = h.width * static_cast<double>(right - left + 1) / static_cast<double>(levels);
    if (dw < FLT_EPSILON) return -INFINITY;  // score() is exactly 0
    const double lo = h.lo - m.center(), hi = lo + h.width * static_cast<double>(h.bins());
    const double a = h.edge(left) + 0.5 * dw - m.center(), b = a + static_cast<double>(levels - 1) * dw;
    double tails = 0.0;
    if (a > lo) {
      const histogram_moments::cum p = m.below_local(a);
      tails += p.c2 - 2.0 * a * p.c1 + a * a * p.c0;
    }
    if (b < hi) {
      const histogram_moments::cum p = m.below_local(b), all = m.below_local(INFINITY);
      const double c0 = all.c0 - p.c0, c1 = all.c1 - p.c1, c2 = all.c2 - p.c2;
      tails += c2 - 2.0 * b * c1 + b * b * c0;
    }
    double interior = 0.0;
    const double ia = std::max(a, lo), ib = std::min(b, hi);
    if (ib > ia) {
      const double mass = m.below_local(ib).c0 - m.below_local(ia).c0;
      const std::size_t ka = bin_of(ia), kb = bin_of(ib);
      const std::size_t k0 = ka > 0 ? ka - 1 : 0, k1 = std::min(kb + 1, h.bins() - 1);
      const double phi_max = 1.0001 * dw * dw * dw / (18.0 * std::sqrt(12.0));
      interior = mass * dw * dw / 12.0 - phi_max * (m.density(k0) + m.density(k1) + (tv[k1] - tv[k0]));
    }
    return tails + interior - margin;
  }
};

// The windows of amct's greedy trimming, in order. A side's scan depends only on its own end and
// stops early at the other end, so it is kept until its end moves or the other end passes it.
inline void amct_hfmg_windows(const binned_histogram& h, std::vector<std::size_t>& ls, std::vector<std::size_t>& rs) {
  const std::size_t n = h.bins();
  const double step = std::fmax(std::ceil(h.total / 100000.0), 1.0);
  const std::size_t min_bins = (n + 3) / 4;
  std::size_t left = 0, right = n - 1, tl = 0, tr = 0;
  bool tl_ok = false, tr_ok = false;
  ls.assign(1, left);
  rs.assign(1, right);
  while (right - left > min_bins) {
    if (!tl_ok || tl > right) {
      tl = left;
      double acc = 0.0;
      while (tl < right && acc < step) acc += h.counts[tl++];
      tl_ok = true;
    }
    if (!tr_ok || tr < left) {
      tr = right;
      double acc = 0.0;
      while (tr > left && acc < step) acc += h.counts[tr--];
      tr_ok = true;
    }
    if (right - tr >= tl - left) {
      right = tr;
      tr_ok = false;
    } else {
      left = tl;
      tl_ok = false;
    }
    if (right <= left) break;
    ls.push_back(left);
    rs.push_back(right);
  }
}

// amct's search: every window scored, the first argmin wins. Scoring is O(levels), so windows
// whose O(1) lower bound exceeds the best score found are skipped: they cannot be the minimum,
// and the windows scored are scored by the same function, so the choice is the exhaustive one.
inline void amct_hfmg_search(const binned_histogram& h, const window_scorer& score, std::size_t& best_l,
                             std::size_t& best_r) {
  std::vector<std::size_t> ls, rs;
  ls.reserve(h.bins());
  rs.reserve(h.bins());
  amct_hfmg_windows(h, ls, rs);
  const window_bound bound(score.m, h, score.levels);
  std::vector<double> lb(ls.size());
  std::size_t first = 0;
  for (std::size_t i = 0; i < ls.size(); ++i) {
    lb[i] = bound(ls[i], rs[i]);
    if (lb[i] < lb[first]) first = i;
  }
  // A window is skipped only if its bound exceeds a score: NaN bounds are scored.
  double cut = score(ls[first], rs[first]);
  double best = INFINITY;
  std::size_t best_i = 0;
  for (std::size_t i = 0; i < ls.size(); ++i) {
    if (lb[i] > cut) continue;
    const double v = score(ls[i], rs[i]);
    if (v < best || i == 0) {
      best = v;
      best_i = i;
    }
    if (v < cut) cut = v;
  }
  best_l = ls[best_i];
  best_r = rs[best_i];
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
