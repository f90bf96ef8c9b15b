// An exactly mergeable streaming histogram, and the plain binned histogram the threshold
// searches read.
//
// Why a power-of-two grid: bins are [k * 2^e, (k + 1) * 2^e) for integer k. Dividing by a power
// of two is exact in binary floating point, so a value's bin depends on the value alone, never on
// which batch it arrived with; and going from width 2^e to 2^(e+1) merges whole pairs of bins
// (floor(floor(x / w) / 2) == floor(x / 2w)), so nothing is ever split or re-estimated. The
// exponent is always the smallest one for which the finite values seen so far span at most
// `capacity` bins (and no finer than the float spacing at the largest |x|); that smallest
// exponent depends only on the data's min and max. Hence the whole state — exponent, counts per
// absolute bin, min, max — is a function of the multiset of values: the same data in any
// batching, order, or split into shards merged in any order gives bit-identical histograms.
// The price is resolution: between capacity / 2 and capacity bins are occupied, so the default
// capacity (16384) keeps at least 8192 bins across the data's range.
#ifndef AMCTQ_ALGORITHMS_HISTOGRAM_HPP
#define AMCTQ_ALGORITHMS_HISTOGRAM_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/kernels/histogram.hpp"
#include "amctq/kernels/reduce.hpp"

namespace amctq {

/// A histogram with uniform bins as double counts: bin k covers [lo + k*width, lo + (k+1)*width).
/// Threshold searches read this; min/max are the exact extremes of the data it summarises.
struct binned_histogram {
  double lo = 0.0;
  double width = 1.0;
  std::vector<double> counts;
  double total = 0.0;
  float min = 0.0f;
  float max = 0.0f;

  std::size_t bins() const noexcept { return counts.size(); }
  double hi() const noexcept { return lo + width * static_cast<double>(counts.size()); }
  double edge(std::size_t k) const noexcept { return lo + width * static_cast<double>(k); }
};

/// Plain data that restores a pow2_histogram exactly (see to_state / from_state).
struct histogram_state {
  std::uint32_t capacity = 0;
  int exponent = 0;             ///< bin width = 2^exponent
  std::int64_t base = 0;        ///< absolute index of counts[0]
  std::vector<std::uint64_t> counts;  ///< occupied bins only, from base on
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
};

class pow2_histogram {
 public:
  static constexpr std::uint32_t default_capacity = 16384;

  explicit pow2_histogram(std::uint32_t capacity = default_capacity) : capacity_(capacity) {
    AMCTQ_CHECK(capacity >= 16 && capacity <= (1u << 22), errc::invalid_argument, "pow2_histogram",
                "capacity must be in [16, 4194304], got ", capacity);
  }

  std::uint32_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return total_ == 0; }
  std::uint64_t total() const noexcept { return total_; }
  float min() const noexcept { return min_; }
  float max() const noexcept { return max_; }
  int exponent() const noexcept { return exponent_; }
  double width() const noexcept { return std::ldexp(1.0, exponent_); }

  /// Adds n contiguous values. Non-finite values are not counted (the caller decides whether
  /// they are an error before calling).
  template <class Arch = kernels::default_arch>
  void add(const float* x, std::size_t n) {
    value_range r;
    kernels::minmax_row(Arch{}, x, n, r);
    if (r.empty()) return;
    cover(r.min, r.max);
    accumulate<Arch>(x, n);
    flush();
  }

  /// Counts n contiguous values into a uint32 scratch table (fast path for large rows: half the
  /// cache footprint of the 64-bit counters);
  /// the grid must already cover them (cover()), and flush() must follow. x[n, n + readable_after)
  /// is what the caller reads next (the rest of its batch), for the kernel's read-ahead; it
  /// must be readable memory (kernels::histogram_row).
  template <class Arch = kernels::default_arch>
  void accumulate(const float* x, std::size_t n, std::size_t readable_after = 0) {
    count_into_scratch<Arch>(x, n, readable_after, nullptr);
  }

  /// Counts n contiguous values that may lie outside the grid, and writes to `outside` (room
  /// for n) the values outside [lo, hi] or outside [min(), max()], NaN and inf included;
  /// returns how many. The grid then grows to the finite ones, and those it did not cover are
  /// counted, so no separate min/max pass is needed: the values a pass must look at again (new
  /// extremes, tail candidates) come out of the counting pass itself. flush() must follow.
  template <class Arch = kernels::default_arch>
  std::size_t accumulate_watched(const float* x, std::size_t n, float lo, float hi, float* outside,
                                 std::size_t readable_after = 0) {
    if (!(min_ <= max_)) {  // no grid yet: it comes from this block
      value_range r;
      kernels::minmax_row(Arch{}, x, n, r);
      if (r.empty()) {
        std::copy(x, x + n, outside);
        return n;
      }
      cover(r.min, r.max);
    }
    kernels::outside_values w{std::fmax(lo, min_), std::fmin(hi, max_), outside, 0};
    const float old_inv = inv_width(), old_base = static_cast<float>(base_);
    count_into_scratch<Arch>(x, n, readable_after, &w);
    float new_min = min_, new_max = max_;
    for (std::size_t k = 0; k < w.count; ++k) {
      const float v = outside[k];
      if (!kernels::detail::is_finite(v)) continue;
      new_min = v < new_min ? v : new_min;  // (std::fmin is a libm call here)
      new_max = v > new_max ? v : new_max;
    }
    if (new_min == min_ && new_max == max_) return w.count;
    cover(new_min, new_max);
    // Count again, on the grid as it is now, what the old one could not hold (nothing, when it
    // stood: it held every finite value).
    for (std::size_t k = 0; k < w.count; ++k) {
      const float v = outside[k];
      if (kernels::detail::is_finite(v) && kernels::detail::bin_or_spill(v, old_inv, old_base, capacity_) == capacity_)
        accumulate_direct<kernels::scalar_arch>(&v, 1);
    }
    return w.count;
  }

  /// Counts n values at the given stride straight into the 64-bit counters (no flush needed);
  /// for the many short rows of per-channel statistics. The grid must already cover them.
  template <class Arch = kernels::default_arch>
  void accumulate_direct(const float* x, std::size_t n, std::ptrdiff_t stride = 1) {
    const float inv = inv_width(), base = static_cast<float>(base_);
    const std::uint64_t spilled = counts_[capacity_];
    if (stride == 1) {
      kernels::histogram_row(Arch{}, x, n, inv, base, counts_.data(), capacity_);
    } else {
      for (std::size_t i = 0; i < n; ++i)
        kernels::histogram_row(kernels::scalar_arch{}, x + static_cast<std::ptrdiff_t>(i) * stride, 1, inv, base,
                               counts_.data(), capacity_);
    }
    total_ += n - (counts_[capacity_] - spilled);
    counts_[capacity_] = 0;
  }

  /// Moves the scratch table into the 64-bit counters.
  void flush() {
    if (pending_ == 0) return;
    // The sum in a local: total_ is a uint64 member that the compiler must assume counts_ may
    // alias, and storing it each bin would make the loop a store-forwarding chain.
    std::uint64_t* const counts = counts_.data();
    std::uint32_t* const scratch = scratch_.data();
    std::uint64_t added = 0;
    for (std::uint32_t k = 0; k < capacity_; ++k) {
      counts[k] += scratch[k];
      added += scratch[k];
    }
    std::fill(scratch, scratch + capacity_ + 1, 0u);  // the last is the skipped values' counter
    total_ += added;
    pending_ = 0;
  }

  /// Adds a single finite value.
  void add_one(float v) {
    if (!kernels::detail::is_finite(v)) return;
    cover(v, v);
    accumulate_direct<kernels::scalar_arch>(&v, 1);
  }

  /// Makes the grid cover [lo, hi] (finite) without adding anything. Values counted into the
  /// scratch table and not yet flushed stay valid while the grid stands; when it moves, they
  /// are flushed onto the old grid first and re-binned with the rest.
  void cover(float lo, float hi) {
    const float new_min = std::fmin(min_, lo), new_max = std::fmax(max_, hi);
    if (total_ != 0 && new_min == min_ && new_max == max_) return;
    const int e = needed_exponent(new_min, new_max, capacity_);
    const float inv = std::ldexp(1.0f, -e);
    const auto new_base = static_cast<std::int64_t>(kernels::pow2_bin_of(new_min, inv));
    if (counts_.empty()) counts_.assign(capacity_ + 1, 0);
    if (e != exponent_ || new_base != base_) {
      flush();
      if (total_ != 0) rebin(e, new_base);
    }
    exponent_ = e;
    base_ = new_base;
    min_ = new_min;
    max_ = new_max;
  }

  /// Adds other's counts; the result is the histogram of the union of both data sets.
  void merge(const pow2_histogram& other) {
    AMCTQ_CHECK(other.capacity_ == capacity_, errc::invalid_argument, "pow2_histogram::merge",
                "capacities differ: ", capacity_, " vs ", other.capacity_);
    if (other.total_ == 0) return;
    cover(other.min_, other.max_);
    const int shift = exponent_ - other.exponent_;
    for (std::size_t k = 0; k < capacity_; ++k) {
      const std::uint64_t c = other.counts_[k];
      if (c == 0) continue;
      const std::int64_t j = floor_shift(other.base_ + static_cast<std::int64_t>(k), shift);
      counts_[static_cast<std::size_t>(j - base_)] += c;
    }
    total_ += other.total_;
  }

  /// The occupied bins as a binned_histogram (width 2^exponent, starting at base * width).
  binned_histogram to_binned() const {
    binned_histogram h;
    if (total_ == 0) return h;
    const std::size_t span = occupied();
    h.width = width();
    h.lo = static_cast<double>(base_) * h.width;
    h.counts.assign(span, 0.0);
    for (std::size_t k = 0; k < span; ++k) h.counts[k] = static_cast<double>(counts_[k]);
    h.total = static_cast<double>(total_);
    h.min = min_;
    h.max = max_;
    return h;
  }

  histogram_state to_state() const {
    histogram_state s;
    s.capacity = capacity_;
    s.exponent = exponent_;
    s.base = base_;
    s.min = min_;
    s.max = max_;
    if (total_ != 0) s.counts.assign(counts_.begin(), counts_.begin() + static_cast<std::ptrdiff_t>(occupied()));
    return s;
  }

  static pow2_histogram from_state(const histogram_state& s) {
    pow2_histogram h(s.capacity);
    if (s.counts.empty()) return h;
    const char* where = "pow2_histogram::from_state";
    AMCTQ_CHECK(std::isfinite(s.min) && std::isfinite(s.max) && s.min <= s.max, errc::parse, where,
                "min/max must be finite with min <= max, got [", s.min, ", ", s.max, "]");
    h.cover(s.min, s.max);
    AMCTQ_CHECK(h.exponent_ == s.exponent && h.base_ == s.base && h.occupied() == s.counts.size(), errc::parse,
                where, "exponent/base/bin count do not match min/max (exponent ", s.exponent, ", base ", s.base,
                ", ", s.counts.size(), " bins)");
    std::uint64_t total = 0;
    for (std::size_t k = 0; k < s.counts.size(); ++k) {
      h.counts_[k] = s.counts[k];
      total += s.counts[k];
    }
    AMCTQ_CHECK(total > 0 && s.counts.front() > 0 && s.counts.back() > 0, errc::parse, where,
                "the first and last bins must hold the min and max values");
    h.total_ = total;
    return h;
  }

  /// Smallest exponent whose grid puts [lo, hi] in at most `capacity` bins, and no finer than
  /// the float spacing at max(|lo|, |hi|) (finer bins could not be told apart and would
  /// overflow the exact integer range of float indices).
  static int needed_exponent(float lo, float hi, std::uint32_t capacity) noexcept {
    const float a = std::fmax(std::fabs(lo), std::fabs(hi));
    int e = -126;
    if (a > 0.0f) e = std::max(e, std::ilogb(a) - 23);
    for (; e < 127; ++e) {
      const float inv = std::ldexp(1.0f, -e);
      const float span = kernels::pow2_bin_of(hi, inv) - kernels::pow2_bin_of(lo, inv) + 1.0f;
      if (span <= static_cast<float>(capacity)) break;
    }
    return e;
  }

 private:
  // The counting both accumulate paths share: into the uint32 scratch table, in chunks that
  // keep its counters exact (below 2^32 pending values), on the current grid.
  template <class Arch>
  void count_into_scratch(const float* x, std::size_t n, std::size_t readable_after,
                          kernels::outside_values* watch) {
    if (scratch_.empty()) scratch_.assign(capacity_ + 1, 0u);
    constexpr std::size_t chunk = std::size_t{1} << 30;
    for (std::size_t off = 0; off < n; off += chunk) {
      const std::size_t len = std::min(chunk, n - off);
      if (pending_ + len > (std::size_t{1} << 31)) flush();
      kernels::histogram_row(Arch{}, x + off, len, inv_width(), static_cast<float>(base_), scratch_.data(), capacity_,
                             n - off - len + readable_after, watch);
      pending_ += len;
    }
  }


  float inv_width() const noexcept { return std::ldexp(1.0f, -exponent_); }

  // floor(j / 2^shift) for any shift >= 0 (the exponent can jump by more than 63).
  static std::int64_t floor_shift(std::int64_t j, int shift) noexcept {
    return shift >= 63 ? (j < 0 ? -1 : 0) : (j >> shift);
  }

  std::size_t occupied() const noexcept {
    const float inv = inv_width();
    return static_cast<std::size_t>(kernels::pow2_bin_of(max_, inv) - kernels::pow2_bin_of(min_, inv)) + 1;
  }

  // In place: a fresh table per rebin would cost a 128 KB allocation and its page faults each
  // time a new minimum arrived. Bin k moves to j(k) = floor((base + k) / 2^shift) - new_base, and
  // j(k) - k never increases with k (shift >= 0: the grid only coarsens, and j grows by at
  // most one per bin). So the bins whose target is at or below them move first, in ascending
  // order, then the rest in descending order; neither phase writes over a bin still unread.
  void rebin(int e, std::int64_t new_base) {
    const int shift = e - exponent_;
    if (shift == 0 && new_base == base_) return;
    auto target = [&](std::size_t k) {
      return static_cast<std::size_t>(floor_shift(base_ + static_cast<std::int64_t>(k), shift) - new_base);
    };
    std::uint64_t* const counts = counts_.data();
    auto move = [&](std::size_t k) {
      const std::uint64_t c = counts[k];
      if (c == 0) return;
      counts[k] = 0;
      counts[target(k)] += c;
    };
    // The first bin at or above its target, by bisection: target(k) > k holds on a prefix.
    std::size_t split = 0, past = capacity_;
    while (split < past) {
      const std::size_t mid = split + (past - split) / 2;
      if (target(mid) > mid) split = mid + 1;
      else past = mid;
    }
    for (std::size_t k = split; k < capacity_; ++k) move(k);
    for (std::size_t k = split; k-- > 0;) move(k);
  }

  std::uint32_t capacity_;
  int exponent_ = 0;
  std::int64_t base_ = 0;
  std::vector<std::uint64_t> counts_;
  std::vector<std::uint32_t> scratch_;
  std::uint64_t total_ = 0;
  std::size_t pending_ = 0;
  float min_ = std::numeric_limits<float>::infinity();
  float max_ = -std::numeric_limits<float>::infinity();
};

/// Redistributes h onto `bins` equal bins over [lo, hi], assuming uniform density inside each
/// source bin; mass outside [lo, hi] goes to the end bins. With fold_abs the histogram of |x| is
/// built first (negative bins mirrored onto the positive axis). With whole_bins each source bin's
/// count goes entirely to the target bin holding its centre: integer counts, as a peer that
/// histograms the raw values would have (the peer-emulating searches are sensitive to
/// fractional counts in sparse tails).
inline binned_histogram resample(const binned_histogram& h, double lo, double hi, std::size_t bins,
                                 bool fold_abs = false, bool whole_bins = false) {
  AMCTQ_CHECK(bins >= 1, errc::invalid_argument, "resample", "bins must be >= 1");
  AMCTQ_CHECK(hi > lo, errc::invalid_argument, "resample", "range [", lo, ", ", hi, "] is empty");
  binned_histogram out;
  out.lo = lo;
  out.width = (hi - lo) / static_cast<double>(bins);
  out.counts.assign(bins, 0.0);
  out.total = h.total;
  out.min = h.min;
  out.max = h.max;
  const double inv = 1.0 / out.width;
  const auto last = static_cast<double>(bins - 1);
  auto spread = [&](double a, double b, double mass) {  // mass uniform over [a, b)
    if (mass == 0.0) return;
    if (whole_bins) {
      const double f = std::floor((0.5 * (a + b) - lo) * inv);
      out.counts[static_cast<std::size_t>(std::clamp(f, 0.0, last))] += mass;
      return;
    }
    double fa = (a - lo) * inv, fb = (b - lo) * inv;
    if (fb <= 0.0) { out.counts.front() += mass; return; }
    if (fa >= static_cast<double>(bins)) { out.counts.back() += mass; return; }
    const double per = mass / (fb - fa);
    if (fa < 0.0) { out.counts.front() += per * -fa; fa = 0.0; }
    if (fb > static_cast<double>(bins)) { out.counts.back() += per * (fb - static_cast<double>(bins)); fb = static_cast<double>(bins); }
    auto k = static_cast<std::size_t>(std::min(std::floor(fa), last));
    while (fa < fb) {
      const double end = std::min(static_cast<double>(k + 1), fb);
      out.counts[std::min(k, bins - 1)] += per * (end - fa);
      fa = end;
      ++k;
    }
  };
  for (std::size_t k = 0; k < h.bins(); ++k) {
    const double c = h.counts[k];
    if (c == 0.0) continue;
    const double a = h.edge(k), b = h.edge(k + 1);
    if (!fold_abs || a >= 0.0) {
      spread(a, b, c);
    } else if (b <= 0.0) {
      spread(-b, -a, c);
    } else if (whole_bins) {  // straddles zero: the centre's side decides
      spread(0.0, std::fmax(b, -a), c);
    } else {  // straddles zero: split by length, both parts land on [0, .)
      spread(0.0, b, c * b / (b - a));
      spread(0.0, -a, c * -a / (b - a));
    }
  }
  return out;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_HISTOGRAM_HPP
