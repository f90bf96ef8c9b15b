// Entropy (KL) calibration in the TensorRT style: the clipping window whose histogram, merged
// into `levels` quantization levels and spread back evenly over its non-empty bins, is closest
// in KL divergence to the original (with the mass outside the window folded into its end bins).
//  - symmetric specs: histogram of |x| over [0, absmax] with `bins` bins, windows [0, i) for
//    i = levels .. bins (TensorRT / pytorch-quantization), threshold = upper edge of the window.
//  - asymmetric specs: histogram of x over [min, max] in 2 x bins bins (the symmetric search's
//    resolution per level); windows [a, b) of at least `levels` bins, found by optimising b for
//    fixed a and a for fixed b in turn until neither moves.
//  - preset onnxruntime: ORT's EntropyCalibrater literally (windows growing around the zero
//    bin of a histogram over [-absmax, absmax], integer-truncated expanded q, remainder bins
//    left at 0, eps = 1e-4 smoothing, scipy's normalisation) — O(bins^2) as in ORT.
// The native searches cost O(levels) per window thanks to prefix sums of c, c*log(c) and of the
// non-empty bin count: a level's contribution is mass * (log mass - log nonzero). Windows with
// the same start and level width share all levels but the last, so a scan over the window's end
// (the whole symmetric search) costs O(1) per window. The asymmetric scans first rank their
// windows in O(1) each (level sums from one table per level width, logs a vector at a time),
// then evaluate exactly only the windows within rounding distance of the least: the same pick
// as evaluating all, at a fraction of the logs.
#ifndef AMCTQ_ALGORITHMS_ENTROPY_HPP
#define AMCTQ_ALGORITHMS_ENTROPY_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "amctq/algorithms/calib_range.hpp"
#include "amctq/algorithms/histogram.hpp"
#include "amctq/algorithms/ort_histogram.hpp"
#include "amctq/kernels/detail/simd.hpp"

namespace amctq {

struct entropy_options {
  int bins = 2048;  ///< histogram bins the windows are cut from (asymmetric: 2 x bins over [min, max])
  int levels = 0;   ///< quantization levels; 0: 2^(bits-1) symmetric, 2^bits asymmetric (128 for onnxruntime)
  int max_rounds = 8;  ///< asymmetric: alternations of the two window ends
};

inline void validate(const entropy_options& o, const char* where = "entropy_options") {
  AMCTQ_CHECK(o.bins >= 2 && o.bins <= 1 << 20, errc::invalid_argument, where, "bins must be in [2, 2^20], got ",
              o.bins);
  AMCTQ_CHECK(o.levels >= 0 && o.levels <= o.bins, errc::invalid_argument, where,
              "levels must be 0 (default) or in [1, bins], got ", o.levels);
  AMCTQ_CHECK(o.max_rounds >= 1 && o.max_rounds <= 1000, errc::invalid_argument, where,
              "max_rounds must be in [1, 1000], got ", o.max_rounds);
}

namespace detail {

inline double xlogx(double v) { return v > 0.0 ? v * std::log(v) : 0.0; }

/// Sum of m[j] * log(m[j]) over the entries (0 log 0 = 0), vectorised when xsimd is there:
/// this is the inner loop of every KL evaluation.
inline double sum_xlogx(const double* m, std::size_t n) {
  std::size_t i = 0;
  double acc = 0.0;
#if AMCTQ_HAS_XSIMD
  using B = xsimd::batch<double>;
  constexpr std::size_t W = B::size;
  B vacc(0.0);
  const B zero(0.0), one(1.0);
  for (; i + W <= n; i += W) {
    const B v = B::load_unaligned(m + i);
    const auto pos = v > zero;
    vacc += xsimd::select(pos, v * xsimd::log(xsimd::select(pos, v, one)), zero);
  }
  acc = xsimd::hadd(vacc);
#endif
  for (; i < n; ++i) acc += xlogx(m[i]);
  return acc;
}

/// m[j] = f(m[j], log m[j]) in place for m[j] > 0, 0 elsewhere: `vec` on xsimd batches where
/// xsimd is there, `scalar` on the rest.
template <class Vec, class Scalar>
inline void map_positive(double* m, std::size_t n, [[maybe_unused]] Vec&& vec, Scalar&& scalar) {
  std::size_t i = 0;
#if AMCTQ_HAS_XSIMD
  using B = xsimd::batch<double>;
  constexpr std::size_t W = B::size;
  const B zero(0.0), one(1.0);
  for (; i + W <= n; i += W) {
    const B v = B::load_unaligned(m + i);
    const auto pos = v > zero;
    xsimd::select(pos, vec(v, xsimd::log(xsimd::select(pos, v, one))), zero).store_unaligned(m + i);
  }
#endif
  for (; i < n; ++i) m[i] = m[i] > 0.0 ? scalar(m[i], std::log(m[i])) : 0.0;
}

/// m[j] * log(m[j]) in place (0 for m[j] <= 0).
inline void xlogx_each(double* m, std::size_t n) {
  map_positive(m, n, [](const auto& v, const auto& lg) { return v * lg; }, [](double v, double lg) { return v * lg; });
}

/// log(m[j]) in place for m[j] > 0 (entries <= 0 become 0).
inline void log_each(double* m, std::size_t n) {
  map_positive(m, n, [](const auto&, const auto& lg) { return lg; }, [](double, double lg) { return lg; });
}

/// KL(P || Q) of windows of one histogram in O(levels) each.
class kl_windows {
 public:
  kl_windows(const std::vector<double>& counts, std::size_t levels) : c_(counts), levels_(levels) {
    const std::size_t n = counts.size();
    cum_.assign(n + 1, 0.0);
    xlx_.assign(n + 1, 0.0);
    nz_.assign(n + 1, 0);
    for (std::size_t k = 0; k < n; ++k) {
      cum_[k + 1] = cum_[k] + counts[k];
      xlx_[k + 1] = xlx_[k] + xlogx(counts[k]);
      nz_[k + 1] = nz_[k] + (counts[k] > 0.0 ? 1 : 0);
    }
    log_n_.assign(n + 1, 0.0);
    for (std::size_t k = 1; k <= n; ++k) log_n_[k] = std::log(static_cast<double>(k));
    xlx_c_.assign(counts.begin(), counts.end());
    xlogx_each(xlx_c_.data(), n);
    mass_.resize(levels);
  }

  double total() const { return cum_.back(); }

  /// Whether [a, b) keeps at least as many values as it folds in from outside. A window that
  /// clips the bulk is no clipping of outliers, and KL cannot tell: with most of the mass folded
  /// into an end bin alone in its level, P and Q are both nearly that bin and KL is near 0.
  bool keeps_majority(std::size_t a, std::size_t b) const {
    return cum_[a] + (cum_.back() - cum_[b]) <= cum_[b] - cum_[a];
  }

  /// KL for the window [a, b) (b - a >= levels); +inf when an end bin is empty but receives
  /// outliers (Q would be 0 where P is not), as in TensorRT.
  double operator()(std::size_t a, std::size_t b) {
    return evaluate(a, b, [&](std::size_t s, std::size_t per) {
      if (s != leading_start_ || per != leading_width_) {
        leading_ = leading_levels(s, per);
        leading_start_ = s;
        leading_width_ = per;
      }
      return leading_;
    });
  }

  /// KL of [s, b) for every start s in [first, end) into out[s], all with levels `per` bins
  /// wide: operator()'s value up to rounding (at most start_tolerance()), with the levels before
  /// the last summed from the table prepare_starts(b, per, first) made, in O(1) instead of
  /// O(levels) logs, and the other logs a vector at a time.
  void approx_starts(std::size_t b, std::size_t per, std::size_t first, std::size_t end, double* out) {
    const std::size_t count = end - first, tail = (levels_ - 1) * per;
    const double n = cum_.back(), out_r = n - cum_[b];
    const double right = xlogx(c_[b - 1] + out_r) - xlogx(c_[b - 1]);  // (windows of 2 bins and up)
    // Four logs per start: of the left end bin with its outliers, of the last and the first
    // level's masses, and of the share inside.
    logs_.resize(4 * count);
    double* const end_bin = logs_.data();
    double* const last_mass = end_bin + count;
    double* const first_mass = last_mass + count;
    double* const share = first_mass + count;
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t a = first + k;
      end_bin[k] = c_[a] + cum_[a];
      last_mass[k] = cum_[b] - cum_[a + tail];
      first_mass[k] = cum_[a + per] - cum_[a];
      share[k] = (cum_[b] - cum_[a]) / n;
    }
    log_each(logs_.data(), 4 * count);
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t a = first + k, last = a + tail;
      const double inside = cum_[b] - cum_[a], out_l = cum_[a];
      if (!(inside > 0.0) || (out_l > 0.0 && !(c_[a] > 0.0)) || (out_r > 0.0 && !(c_[b - 1] > 0.0))) {
        out[a] = std::numeric_limits<double>::infinity();
        continue;
      }
      const double plogp = xlx_[b] - xlx_[a] + (c_[a] + out_l) * end_bin[k] - xlx_c_[a] + right;
      const double m_last = cum_[b] - cum_[last];
      const double log_q_last = last_mass[k] - log_n_[nz_[b] - nz_[last]];
      double plogq = suffix_[a] - suffix_[last] + (m_last > 0.0 ? m_last * log_q_last : 0.0);
      if (out_l > 0.0) plogq += out_l * (first_mass[k] - log_n_[nz_[a + per] - nz_[a]]);
      if (out_r > 0.0) plogq += out_r * log_q_last;
      out[a] = (plogp - plogq) / n + share[k];
    }
  }

  /// KL of [a, e) for every end e in [first, end) into out[e - first], all with levels `per`
  /// bins wide: operator()'s value up to rounding (at most start_tolerance()), the logs a
  /// vector at a time.
  void approx_ends(std::size_t a, std::size_t per, std::size_t first, std::size_t end, double* out) {
    const std::size_t count = end - first, last_off = (levels_ - 1) * per;
    const double n = cum_.back(), out_l = cum_[a];
    const double lead = leading_levels(a, per);
    const double left = xlogx(c_[a] + out_l) - xlogx(c_[a]);  // (windows of 2 bins and up)
    const double outliers_left = out_l > 0.0 ? out_l * log_q(a, a + per) : 0.0;
    const std::size_t last = a + last_off;
    // Three logs per end: of the right end bin with its outliers, of the last level's mass,
    // and of the share inside.
    logs_.resize(3 * count);
    double* const end_bin = logs_.data();
    double* const last_mass = end_bin + count;
    double* const share = last_mass + count;
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t e = first + k;
      end_bin[k] = c_[e - 1] + (n - cum_[e]);
      last_mass[k] = cum_[e] - cum_[last];
      share[k] = (cum_[e] - cum_[a]) / n;
    }
    log_each(logs_.data(), 3 * count);
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t e = first + k;
      const double inside = cum_[e] - cum_[a], out_r = n - cum_[e];
      if (!(inside > 0.0) || (out_l > 0.0 && !(c_[a] > 0.0)) || (out_r > 0.0 && !(c_[e - 1] > 0.0))) {
        out[k] = std::numeric_limits<double>::infinity();
        continue;
      }
      const double plogp = xlx_[e] - xlx_[a] + left + (c_[e - 1] + out_r) * end_bin[k] - xlx_c_[e - 1];
      const double m_last = cum_[e] - cum_[last];
      const double log_q_last = last_mass[k] - log_n_[nz_[e] - nz_[last]];
      double plogq = lead + (m_last > 0.0 ? m_last * log_q_last : 0.0) + outliers_left;
      if (out_r > 0.0) plogq += out_r * log_q_last;
      out[k] = (plogp - plogq) / n + share[k];
    }
  }

  /// Readies approx_starts for the windows ending at b whose levels are `per` bins wide and that
  /// start at `from` or later: suffix_[t] is the sum of the level terms at t, t + per,
  /// t + 2 per, ... up to b.
  void prepare_starts(std::size_t b, std::size_t per, std::size_t from = 0) {
    if (suffix_.size() < b + 1) suffix_.resize(b + 1);
    const std::size_t first = b >= per ? b - per + 1 : 0;  // starts of a whole level before b
    for (std::size_t t = first; t <= b; ++t) suffix_[t] = 0.0;
    if (b < per || from >= first) return;
    // The masses of all levels first, so that their logs are taken a vector at a time.
    const std::size_t count = first - from;
    terms_.resize(count);
    for (std::size_t k = 0; k < count; ++k) terms_[k] = cum_[from + k + per] - cum_[from + k];
    xlogx_each(terms_.data(), count);
    for (std::size_t t = first; t-- > from;) {
      const double m = cum_[t + per] - cum_[t];
      const double term = m > 0.0 ? terms_[t - from] - m * log_n_[nz_[t + per] - nz_[t]] : 0.0;
      suffix_[t] = term + suffix_[t + per];
    }
  }

  /// A bound on the difference between approx_starts' or approx_ends' value and operator()'s:
  /// both sum the same level terms (each at most m (|log n| + log per) in size, their masses m
  /// summing to at most n), in different orders, with up to `bins` roundings each, and their
  /// logs differ by an ulp or two; divided by n like the KL. Generous by a factor of 16.
  double start_tolerance() const {
    const double n = cum_.back(), bins = static_cast<double>(c_.size());
    if (!(n > 0.0)) return 0.0;
    return 16.0 * bins * std::numeric_limits<double>::epsilon() *
           (std::fabs(std::log(n)) + std::log(bins) + 4.0 + bins / n);
  }

 private:
  template <class Leading>
  double evaluate(std::size_t a, std::size_t b, Leading&& leading) {
    const double n = cum_.back();
    const double inside = cum_[b] - cum_[a];
    if (!(inside > 0.0)) return std::numeric_limits<double>::infinity();
    const double out_l = cum_[a], out_r = n - cum_[b];
    if ((out_l > 0.0 && !(c_[a] > 0.0)) || (out_r > 0.0 && !(c_[b - 1] > 0.0)))
      return std::numeric_limits<double>::infinity();
    const std::size_t len = b - a, per = len / levels_;
    // Sum P log P: the window's c log c with its end bins replaced by the outlier-augmented ones.
    double plogp = xlx_[b] - xlx_[a];
    if (len == 1) {
      plogp += xlogx(c_[a] + out_l + out_r) - xlogx(c_[a]);
    } else {
      plogp += xlogx(c_[a] + out_l) - xlogx(c_[a]) + xlogx(c_[b - 1] + out_r) - xlogx(c_[b - 1]);
    }
    // Sum P log Q over bins: mass * log(mass / nonzero) per level, plus the outliers times log q
    // of their end bins. All levels but the last depend only on the start and the level width.
    const std::size_t last = a + (levels_ - 1) * per;
    double plogq = leading(a, per) + level_term(last, b);
    if (out_l > 0.0) plogq += out_l * log_q(a, levels_ == 1 ? b : a + per);
    if (out_r > 0.0) plogq += out_r * log_q(last, b);
    return (plogp - plogq) / n + std::log(inside / n);
  }

  // log of the value q gives each non-empty bin of the level [s, e).
  double log_q(std::size_t s, std::size_t e) const { return std::log(cum_[e] - cum_[s]) - log_n_[nz_[e] - nz_[s]]; }

  double level_term(std::size_t s, std::size_t e) const {
    const double m = cum_[e] - cum_[s];
    return m > 0.0 ? m * log_q(s, e) : 0.0;
  }

  // Sum of level_term over the levels [a + j*per, a + (j+1)*per), j < levels - 1, with the
  // logs of the masses vectorised.
  double leading_levels(std::size_t a, std::size_t per) {
    const std::size_t count = levels_ - 1;
    double nz_log = 0.0;
    for (std::size_t j = 0; j < count; ++j) {
      const std::size_t s = a + j * per, e = s + per;
      mass_[j] = cum_[e] - cum_[s];
      nz_log += mass_[j] > 0.0 ? mass_[j] * log_n_[nz_[e] - nz_[s]] : 0.0;
    }
    return sum_xlogx(mass_.data(), count) - nz_log;
  }

  const std::vector<double>& c_;
  std::size_t levels_;
  std::vector<double> cum_, xlx_, log_n_, mass_, terms_, suffix_, xlx_c_, logs_;
  std::vector<std::size_t> nz_;
  std::size_t leading_start_ = std::numeric_limits<std::size_t>::max(), leading_width_ = 0;
  double leading_ = 0.0;
};

// numpy's float32 sum of a contiguous 1-D array: pairwise in blocks of at most 128 (eight
// accumulators), over chunks of the 8192-element buffer.
inline float numpy_pairwise(const float* a, std::size_t n) {
  if (n < 8) {
    float r = 0.0f;
    for (std::size_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  if (n <= 128) {
    float r[8];
    for (std::size_t j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (std::size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise(a, n2) + numpy_pairwise(a + n2, n - n2);
}

inline float numpy_sum(const std::vector<float>& a) {
  constexpr std::size_t buffer = 8192;
  float s = 0.0f;
  for (std::size_t off = 0; off < a.size(); off += buffer)
    s += numpy_pairwise(a.data() + off, std::min(buffer, a.size() - off));
  return s;
}

// ORT's smooth_distribution: zeros become eps, the non-zero entries lose eps * zeros / nonzeros,
// in float32 as numpy computes it. False when every entry is 0 (ORT: None, KL = inf).
inline bool ort_smooth(const std::vector<double>& d, std::vector<float>& out) {
  constexpr double eps = 1e-4;
  std::size_t zeros = 0;
  for (double v : d) zeros += v == 0.0;
  const std::size_t nonzeros = d.size() - zeros;
  if (nonzeros == 0) return false;
  const auto minus_eps1 = static_cast<float>(-(eps * static_cast<double>(zeros) / static_cast<double>(nonzeros)));
  out.resize(d.size());
  for (std::size_t k = 0; k < d.size(); ++k)
    out[k] = d[k] == 0.0 ? static_cast<float>(eps) : static_cast<float>(d[k]) + minus_eps1;
  return true;
}

// ORT's get_entropy_threshold on a histogram over [-amax, amax]; returns the window's first and
// one-past-last bin.
inline std::pair<std::size_t, std::size_t> onnxruntime_entropy(const std::vector<double>& hist, std::size_t levels) {
  const std::size_t n = hist.size(), zero = n / 2, half = levels / 2;
  std::vector<double> cum(n + 1, 0.0);
  for (std::size_t k = 0; k < n; ++k) cum[k + 1] = cum[k] + hist[k];
  std::vector<double> p, q;
  std::vector<float> pf, qf, vec;
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_i = half;
  for (std::size_t i = half; i <= zero; ++i) {
    const std::size_t start = zero - i, end = std::min(zero + i + 1, n);
    const std::size_t len = end - start;
    p.assign(hist.begin() + static_cast<std::ptrdiff_t>(start), hist.begin() + static_cast<std::ptrdiff_t>(end));
    p.front() += cum[start];
    p.back() += cum[n] - cum[end];
    const std::size_t per = len / levels;
    q.assign(len, 0.0);
    for (std::size_t j = 0; j < levels; ++j) {
      const std::size_t s = j * per, e = s + per;
      double mass = cum[start + e] - cum[start + s];
      if (j + 1 == levels) mass += cum[end] - cum[start + levels * per];
      std::size_t nz = 0;
      for (std::size_t k = s; k < e; ++k) nz += p[k] != 0.0;
      if (nz != 0)
        for (std::size_t k = s; k < e; ++k) q[k] = std::trunc(mass / static_cast<double>(nz));
    }
    double kl = std::numeric_limits<double>::infinity();
    if (ort_smooth(p, pf) && ort_smooth(q, qf)) {
      // scipy.stats.entropy on float32 input: both normalised by their float32 sums, rel_entr
      // evaluated in double and stored as float32, summed in float32. The KL curve of a
      // heavy-tailed histogram is flat to 1e-5 relative near its minimum, so the argmin is
      // decided by this rounding: double arithmetic picked another window on Laplace data
      // with outliers.
      const float sp = numpy_sum(pf), sq = numpy_sum(qf);
      vec.resize(len);
      for (std::size_t k = 0; k < len; ++k) {
        const double pk = pf[k] / sp, qk = qf[k] / sq;
        vec[k] = static_cast<float>(pk * std::log(pk / qk));
      }
      kl = numpy_sum(vec);
    }
    if (kl < best) {
      best = kl;
      best_i = i;
    }
  }
  return {zero - best_i, std::min(zero + best_i + 1, n)};
}

inline std::size_t onnxruntime_levels(const entropy_options& o, std::size_t bins) {
  const std::size_t levels = o.levels ? static_cast<std::size_t>(o.levels) : 128;
  AMCTQ_CHECK(levels / 2 <= bins / 2, errc::invalid_argument, "entropy_range", "levels (", levels,
              ") must not exceed bins (", bins, ")");
  return levels;
}

// The bin at 0 takes the mean count of its neighbours when it holds more. Every grid the
// search leads to has 0 as a level (an integer zero point, or a symmetric grid), so values at 0
// lose nothing; but KL's Q spreads a level's mass evenly over its non-empty bins, and a spike
// of exact zeros (post-ReLU: often half the tensor) merged with one neighbour costs about
// P0 log 2 nats, far more than clipping a long tail. The search then refused every window
// wider than 2 x levels bins (its zero level would hold 2 bins): resnet18's post-ReLU inputs
// were clipped to 1/4 of their range, output SQNR 7 dB. pytorch-quantization's
// _compute_amax_entropy sets bins[0] = bins[1] for the same reason.
// The bin at 0 is the one holding 0, or the end bin when the data stop less than a bin short
// of 0: the exported range is made to contain 0, so that bin's values sit on the zero level
// too. A Softmax output (all > 0, half of it below 1/2000 of the max) is such a spike, and
// left in place it capped the window at 2 x levels bins the same way (the ViT's attention
// weights clipped at 0.25 of 0.99).
inline void flatten_zero_spike(binned_histogram& h) {
  std::size_t k = 0;
  if (h.lo <= 0.0 && 0.0 < h.hi()) k = std::min(static_cast<std::size_t>(std::floor(-h.lo / h.width)), h.bins() - 1);
  else if (h.lo > 0.0 && h.lo < h.width) k = 0;
  else if (h.hi() <= 0.0 && -h.hi() < h.width) k = h.bins() - 1;
  else return;
  double sum = 0.0;
  int n = 0;
  if (k > 0) sum += h.counts[k - 1], ++n;
  if (k + 1 < h.bins()) sum += h.counts[k + 1], ++n;
  if (n == 0) return;
  const double flat = sum / n;
  if (h.counts[k] > flat) {
    h.total -= h.counts[k] - flat;
    h.counts[k] = flat;
  }
}

// Ranking the windows (best_end, best_start) pays when the level widths, hence the tables of
// level sums, are fewer than the levels.
inline bool rank_windows(std::size_t levels, std::size_t bins) { return levels >= 16 && levels * levels >= bins; }

// The end e of the window [a, e), e <= bins, with the least KL (the first of equals), or `keep`
// when every window is refused; ranked like best_start's starts (approx_ends, the start's
// leading levels exact).
inline std::size_t best_end(kl_windows& kl, std::size_t a, std::size_t bins, std::size_t levels, std::size_t keep) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::size_t best_e = keep;
  double best = inf;
  if (!rank_windows(levels, bins)) {
    for (std::size_t e = a + levels; e <= bins; ++e) {
      if (!kl.keeps_majority(a, e)) continue;
      const double v = kl(a, e);
      if (v < best) {
        best = v;
        best_e = e;
      }
    }
    return best_e;
  }
  if (a + levels > bins) return keep;
  const std::size_t lo = a + levels;
  std::vector<double> ranked(bins + 1 - lo, inf);
  double lowest = inf;
  // The ends in runs of one level width: per = (e - a) / levels.
  for (std::size_t first = lo; first <= bins;) {
    const std::size_t per = (first - a) / levels;
    const std::size_t end = std::min(bins + 1, a + (per + 1) * levels);
    kl.approx_ends(a, per, first, end, ranked.data() + (first - lo));
    for (std::size_t e = first; e < end; ++e) {
      double& r = ranked[e - lo];
      if (!kl.keeps_majority(a, e)) r = inf;
      lowest = std::fmin(lowest, r);
    }
    first = end;
  }
  if (!(lowest < inf)) return keep;
  const double cut = lowest + 2.0 * kl.start_tolerance();
  for (std::size_t e = lo; e <= bins; ++e) {
    if (!(ranked[e - lo] <= cut)) continue;
    const double v = kl(a, e);
    if (v < best) {
      best = v;
      best_e = e;
    }
  }
  return best_e;
}

// The start s of the window [s, b) with the least KL (the first of equals), or `keep` when every
// window is refused. Each start moves the first level, so an exact evaluation recomputes all
// `levels` level terms; instead every start is ranked by approx_starts (O(1) each, from one
// table per level width), and only those within rounding distance of the least are evaluated
// exactly, in order. The pick is then the one the exact scan over all starts would make.
inline std::size_t best_start(kl_windows& kl, std::size_t b, std::size_t levels, std::size_t keep) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  if (b < levels) return keep;
  const std::size_t starts = b - levels + 1;
  std::size_t best_s = keep;
  double best = inf;
  if (!rank_windows(levels, b)) {
    for (std::size_t s = 0; s < starts; ++s) {
      if (!kl.keeps_majority(s, b)) continue;
      const double v = kl(s, b);
      if (v < best) {
        best = v;
        best_s = s;
      }
    }
    return best_s;
  }
  std::vector<double> ranked(starts, inf);
  double lowest = inf;
  // The starts in runs of one level width: per = (b - s) / levels falls as s rises.
  for (std::size_t first = 0; first < starts;) {
    const std::size_t per = (b - first) / levels;
    const std::size_t end = std::min(starts, b - per * levels + 1);
    kl.prepare_starts(b, per, first);
    kl.approx_starts(b, per, first, end, ranked.data());
    for (std::size_t s = first; s < end; ++s) {
      if (!kl.keeps_majority(s, b)) ranked[s] = inf;
      lowest = std::fmin(lowest, ranked[s]);
    }
    first = end;
  }
  if (!(lowest < inf)) return keep;
  // Each approx is within tol of its exact value, so the exact least is within 2 tol of lowest.
  const double cut = lowest + 2.0 * kl.start_tolerance();
  for (std::size_t s = 0; s < starts; ++s) {
    if (!(ranked[s] <= cut)) continue;
    const double v = kl(s, b);
    if (v < best) {
      best = v;
      best_s = s;
    }
  }
  return best_s;
}

}  // namespace detail

inline calib_range entropy_range(const binned_histogram& fine, const quant_spec& spec, preset how = preset::amct,
                                 const entropy_options& o = {}) {
  validate(o);
  if (fine.total == 0.0) return {0.0f, 0.0f};
  const auto bins = static_cast<std::size_t>(o.bins);
  const float amax = std::fmax(std::fabs(fine.min), std::fabs(fine.max));
  if (amax == 0.0f || !(fine.max > fine.min)) return {fine.min, fine.max};
  auto clip_to_data = [&](calib_range r) { return calib_range{std::fmax(r.min, fine.min), std::fmin(r.max, fine.max)}; };
  if (how == preset::onnxruntime) {  // an approximation: the observer keeps ORT's own histogram (below)
    const binned_histogram h = resample(fine, -amax, amax, bins, false, true);
    const auto [s, e] = detail::onnxruntime_entropy(h.counts, detail::onnxruntime_levels(o, bins));
    return clip_to_data({static_cast<float>(h.edge(s)), static_cast<float>(h.edge(e))});
  }
  if (spec.symmetric) {
    const std::size_t levels = o.levels ? static_cast<std::size_t>(o.levels) : std::size_t{1} << (spec.bits - 1);
    AMCTQ_CHECK(levels <= bins, errc::invalid_argument, "entropy_range", "levels (", levels, ") exceed bins (", bins, ")");
    binned_histogram h = resample(fine, 0.0, amax, bins, true);
    detail::flatten_zero_spike(h);
    detail::kl_windows kl(h.counts, levels);
    double best = std::numeric_limits<double>::infinity();
    std::size_t best_i = bins;
    for (std::size_t i = levels; i <= bins; ++i) {
      if (!kl.keeps_majority(0, i)) continue;
      const double v = kl(0, i);
      if (v < best) {
        best = v;
        best_i = i;
      }
    }
    const auto t = static_cast<float>(h.edge(best_i));
    return clip_to_data({-t, t});
  }
  const std::size_t levels = o.levels ? static_cast<std::size_t>(o.levels) : std::size_t{1} << spec.bits;
  AMCTQ_CHECK(levels <= bins, errc::invalid_argument, "entropy_range", "levels (", levels, ") exceed bins (", bins, ")");
  // 2 x bins over [min, max]: as many bins per level as the symmetric search's `bins` over
  // [0, absmax] at half the levels (and TensorRT's and ORT's 2048 bins for 128 levels). With
  // `bins`, the full window held 8 bins per level and every window under a quarter of the range
  // had Q = P inside (one bin per level), so on spiky tensors (the per-channel clusters of
  // mobilenet / efficientnet blocks) the search clipped one side to about half its range
  // (efficientnet_b1 output SQNR 24.6 dB, 36.0 with 2 x bins; issue 17).
  const std::size_t abins = 2 * bins;
  binned_histogram h = resample(fine, fine.min, fine.max, abins);
  detail::flatten_zero_spike(h);
  detail::kl_windows kl(h.counts, levels);
  std::size_t a = 0, b = abins;
  for (int round = 0; round < o.max_rounds; ++round) {
    const std::size_t a0 = a, b0 = b;
    b = detail::best_end(kl, a, abins, levels, b);
    a = detail::best_start(kl, b, levels, a);
    if (a == a0 && b == b0) break;
  }
  return clip_to_data({static_cast<float>(h.edge(a)), static_cast<float>(h.edge(b))});
}

/// The onnxruntime preset on ORT's own histogram (ort_histogram.hpp): ORT's EntropyCalibrater
/// exactly, edges and all.
inline calib_range entropy_range(const ort_histogram& h, const entropy_options& o = {}) {
  validate(o);
  if (h.empty()) return {0.0f, 0.0f};
  const std::vector<double> counts(h.counts().begin(), h.counts().end());
  const auto [s, e] = detail::onnxruntime_entropy(counts, detail::onnxruntime_levels(o, counts.size()));
  return {std::fmax(h.edge(s), h.min()), std::fmin(h.edge(e), h.max())};
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_ENTROPY_HPP
