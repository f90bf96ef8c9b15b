// The `capacity` largest and smallest finite values seen, kept exactly. The top-T of a union is
// the top-T of the parts' top-Ts, so merging is exact and the state depends only on the
// multiset of values. This gives AMCT's k-th largest / k-th smallest percentiles exactly for
// any k <= capacity (percentile.hpp), whatever the batching.
#ifndef AMCTQ_ALGORITHMS_EXTREME_VALUES_HPP
#define AMCTQ_ALGORITHMS_EXTREME_VALUES_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <limits>
#include <vector>

#include "amctq/algorithms/detail/select.hpp"
#include "amctq/error.hpp"
#include "amctq/kernels/detail/simd.hpp"
#include "amctq/kernels/reduce.hpp"

namespace amctq {

struct extreme_values_state {
  std::uint32_t capacity = 0;
  std::vector<float> largest;   ///< descending
  std::vector<float> smallest;  ///< ascending
};

/// Bounds past which values are offered to each tail: below lo to the bottom one, above hi to
/// the top one. The defaults offer everything.
struct tail_cuts {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();

  /// Past a cut on either side, or NaN (which fails every ordered comparison).
  bool passes(float v) const noexcept { return !(v >= lo && v <= hi); }
};

class extreme_values {
 public:
  static constexpr std::uint32_t default_capacity = 4096;

  explicit extreme_values(std::uint32_t capacity = default_capacity) : capacity_(capacity) {
    AMCTQ_CHECK(capacity >= 1 && capacity <= (1u << 24), errc::invalid_argument, "extreme_values",
                "capacity must be in [1, 16777216], got ", capacity);
  }

  std::uint32_t capacity() const noexcept { return capacity_; }

  /// Offers n contiguous values; non-finite ones are ignored and counted (the return value).
  /// With `only`, a value goes only to the tail whose bound it passes (see beyond()).
  template <class Arch = kernels::default_arch>
  std::size_t add(const float* x, std::size_t n, const tail_cuts& only = {}) {
    std::size_t i = 0, bad = 0;
#if AMCTQ_HAS_XSIMD
    if constexpr (kernels::detail::is_simd_arch<Arch>) {
      using B = xsimd::batch<float, Arch>;
      constexpr std::size_t W = B::size;
      // Most values lie strictly between the current thresholds once the buffers are full;
      // test a whole batch at once and only look closer when one of them does not.
      tail_cuts c = cuts(only);
      B hi(c.hi), lo(c.lo);
      constexpr std::uint32_t lane_mask = W >= 32 ? ~0u : (1u << W) - 1u;
      for (; i + W <= n; i += W) {
        const B v = B::load_unaligned(x + i);
        // Written as "not all inside" because NaN fails every ordered comparison, so it is
        // flagged here, as is inf; both are counted below. (xsimd's v != v is an ordered
        // not-equal on AVX, false for NaN, so it cannot be the NaN test.)
        std::uint32_t outside = ~kernels::detail::to_bits((v <= hi) & (v >= lo)) & lane_mask;
        if (outside != 0) {
          // The lanes past a cut, by their bits, sorted to their sides without branches: a value
          // goes up or down at random, so per-value branches (as in offer()) would mispredict about
          // once a value. The cuts stay as they were for the batch; a stale cut lets through a
          // superset, which the next trim removes.
          float up[W], down[W];
          std::size_t n_up = 0, n_down = 0;
          do {
            bad += !sort_to_sides(x[i + kernels::detail::lowest_bit(outside)], c, up, n_up, down, n_down);
            outside &= outside - 1;
          } while (outside != 0);
          append(hi_, up, n_up, std::greater<float>(), hi_full_, hi_cut_);
          append(lo_, down, n_down, std::less<float>(), lo_full_, lo_cut_);
          c = cuts(only);
          hi = B(c.hi);
          lo = B(c.lo);
        }
      }
    }
#endif
    for (; i < n; ++i)
      if (cuts(only).passes(x[i])) bad += !offer(x[i], only);
    return bad;
  }

  /// Offers one value; returns false (and ignores it) when it is NaN or infinite.
  bool offer(float v, const tail_cuts& only = {}) {
    float up, down;
    std::size_t n_up = 0, n_down = 0;
    const bool finite = sort_to_sides(v, cuts(only), &up, n_up, &down, n_down);
    append(hi_, &up, n_up, std::greater<float>(), hi_full_, hi_cut_);
    append(lo_, &down, n_down, std::less<float>(), lo_full_, lo_cut_);
    return finite;
  }

  /// The cuts a value must pass to enter the tails: their own (open, -inf / +inf, while a side
  /// is not full), tightened by `only`. A caller may filter with them before offering.
  tail_cuts cuts(const tail_cuts& only = {}) const noexcept {
    return {std::min(lo_threshold(), only.lo), std::max(hi_threshold(), only.hi)};
  }

  /// True when the capacity most extreme values on each side all lie strictly beyond the cuts
  /// (a side without a cut passes): values between them cannot then be among them, so offering
  /// only the values past the cuts left the tails exactly as offering everything would.
  bool beyond(const tail_cuts& guess) {
    trim_both();
    const bool top = guess.hi == -std::numeric_limits<float>::infinity() || (hi_full_ && hi_cut_ > guess.hi);
    const bool bottom = guess.lo == std::numeric_limits<float>::infinity() || (lo_full_ && lo_cut_ < guess.lo);
    return top && bottom;
  }

  /// The largest / smallest finite value offered so far (-inf / +inf when none).
  float largest() const noexcept { return largest_; }
  float smallest() const noexcept { return smallest_; }

  void merge(const extreme_values& other) {
    AMCTQ_CHECK(other.capacity_ == capacity_, errc::invalid_argument, "extreme_values::merge",
                "capacities differ: ", capacity_, " vs ", other.capacity_);
    hi_.insert(hi_.end(), other.hi_.begin(), other.hi_.end());
    lo_.insert(lo_.end(), other.lo_.begin(), other.lo_.end());
    largest_ = std::fmax(largest_, other.largest_);
    smallest_ = std::fmin(smallest_, other.smallest_);
    trim_both();
  }

  /// The k-th largest value seen (k = 1 is the max), exact while k <= capacity and k <= count.
  /// (A selection, not a sort: this is on every percentile and IFMR result.)
  float kth_largest(std::size_t k) { return kth(hi_, k, std::greater<float>()); }
  float kth_smallest(std::size_t k) { return kth(lo_, k, std::less<float>()); }
  /// The k-th largest |x|: non-negative values come from the top tail, negative ones from the
  /// bottom tail, so nothing is counted twice even when the tails overlap.
  float kth_largest_abs(std::size_t k) {
    compact();
    std::size_t i = 0, j = 0;
    float v = 0.0f;
    for (std::size_t n = 0; n < k; ++n) {
      const bool has_pos = i < hi_.size() && hi_[i] >= 0.0f;
      const bool has_neg = j < lo_.size() && lo_[j] < 0.0f;
      if (!has_pos && !has_neg) break;
      if (has_pos && (!has_neg || hi_[i] >= -lo_[j])) v = hi_[i++];
      else v = -lo_[j++];
    }
    return v;
  }
  std::size_t held() {
    trim_both();
    return hi_.size();
  }

  extreme_values_state to_state() {
    compact();
    return extreme_values_state{capacity_, hi_, lo_};
  }
  static extreme_values from_state(const extreme_values_state& s) {
    extreme_values t(s.capacity);
    AMCTQ_CHECK(s.largest.size() <= s.capacity && s.smallest.size() <= s.capacity, errc::parse,
                "extreme_values::from_state", "more values than the capacity ", s.capacity);
    t.hi_ = s.largest;
    t.lo_ = s.smallest;
    t.compact();
    for (const std::vector<float>* side : {&t.hi_, &t.lo_})
      for (float v : *side) {
        t.largest_ = std::fmax(t.largest_, v);
        t.smallest_ = std::fmin(t.smallest_, v);
      }
    return t;
  }

 private:
  float hi_threshold() const noexcept {
    return hi_full_ ? hi_cut_ : -std::numeric_limits<float>::infinity();
  }
  float lo_threshold() const noexcept {
    return lo_full_ ? lo_cut_ : std::numeric_limits<float>::infinity();
  }

  // Appends v to up / down when it passes that side's cut and updates the extremes, without
  // branches; false (and nothing else) for NaN and inf. A new extreme is always past the current
  // cut (or the cuts are still open), so every one comes through here, unless `only` kept it
  // out: then the caller confirms with beyond().
  bool sort_to_sides(float v, const tail_cuts& c, float* up, std::size_t& n_up, float* down, std::size_t& n_down) {
    const bool finite = kernels::detail::is_finite(v);
    largest_ = finite && v > largest_ ? v : largest_;
    smallest_ = finite && v < smallest_ ? v : smallest_;
    up[n_up] = v;
    n_up += finite && v > c.hi;
    down[n_down] = v;
    n_down += finite && v < c.lo;
    return finite;
  }

  // Adds values past a side's cut. Trimming at twice the capacity (not more) tightens the cut
  // often enough that few values of a long stream get past a stale one; each trim is a linear
  // selection.
  template <class Before>
  void append(std::vector<float>& side, const float* v, std::size_t n, Before before, bool& full, float& cut) {
    side.insert(side.end(), v, v + n);
    if (side.size() >= 2 * static_cast<std::size_t>(capacity_)) trim(side, before, full, cut);
  }

  // Keeps the capacity most extreme values (in no order); afterwards only values beyond the
  // kept extreme are candidates (an equal value cannot change the multiset of the top values).
  template <class Before>
  void trim(std::vector<float>& v, Before before, bool& full, float& cut) {
    if (v.size() > capacity_) {
      detail::select_nth(v, capacity_ - 1, before);
      v.resize(capacity_);
    }
    full = v.size() == capacity_;
    if (full) cut = *std::max_element(v.begin(), v.end(), before);  // the least extreme kept
  }

  void trim_both() {
    trim(hi_, std::greater<float>(), hi_full_, hi_cut_);
    trim(lo_, std::less<float>(), lo_full_, lo_cut_);
  }

  // Trims both sides and sorts them, most extreme first, for the state and |x| ranks.
  void compact() {
    trim_both();
    std::sort(hi_.begin(), hi_.end(), std::greater<float>());
    std::sort(lo_.begin(), lo_.end());
  }

  template <class Before>
  float kth(std::vector<float>& side, std::size_t k, Before before) {
    trim_both();
    AMCTQ_ASSERT(k >= 1 && k <= side.size());
    detail::select_nth(side, k - 1, before);
    return side[k - 1];
  }

  std::uint32_t capacity_;
  std::vector<float> hi_, lo_;
  bool hi_full_ = false, lo_full_ = false;
  float hi_cut_ = 0.0f, lo_cut_ = 0.0f;
  float largest_ = -std::numeric_limits<float>::infinity();
  float smallest_ = std::numeric_limits<float>::infinity();
};

/// Cuts for the tails of one large batch, guessed from a sample: about four times `capacity`
/// of its values should lie below lo and as many above hi, so the others need not be offered.
/// A guess, not a promise: after the batch, extreme_values::beyond(cuts) tells whether it held.
/// A side whose guess would be tied with the sample's extreme (post-ReLU zeros, constant data)
/// or would skip little gets no cut.
inline tail_cuts guess_tail_cuts(const float* x, std::size_t n, std::uint32_t capacity) {
  // The sample is 512 runs of 32 neighbours. On a cold batch each run costs a TLB and a cache
  // miss (one read per sampled value would cost one per value), and touching every run first
  // lets those misses overlap. The selection is a partial sort, cheaper than nth_element for
  // so small a k. The margin of 4 makes a wrong guess rare (about 1e-5 for i.i.d. values), and
  // a wrong one costs one more tails pass, never a wrong result.
  constexpr std::size_t runs = 512, run = 32, margin = 4;
  tail_cuts cuts;
  if (n < 16 * runs * run) return cuts;
  const std::size_t stride = n / runs;
  for (std::size_t r = 0; r < runs; ++r) kernels::detail::touch(x + r * stride);
  std::vector<float> sample;
  sample.reserve(runs * run);
  for (std::size_t r = 0; r < runs; ++r)
    for (const float* v = x + r * stride; v != x + r * stride + run; ++v)
      if (kernels::detail::is_finite(*v)) sample.push_back(*v);
  const double expected = static_cast<double>(margin) * capacity * static_cast<double>(sample.size()) / static_cast<double>(n);
  const auto k = static_cast<std::size_t>(std::ceil(expected));
  if (k == 0 || 8 * k > sample.size()) return cuts;
  const auto at = sample.begin() + static_cast<std::ptrdiff_t>(k - 1);
  std::partial_sort(sample.begin(), at + 1, sample.end(), std::greater<float>());
  if (*at < sample.front()) cuts.hi = *at;
  std::partial_sort(sample.begin(), at + 1, sample.end(), std::less<float>());
  if (*at > sample.front()) cuts.lo = *at;
  return cuts;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_EXTREME_VALUES_HPP
