// The `capacity` largest and smallest finite values seen, kept exactly. The top-T of a union is
// the top-T of the parts' top-Ts, so merging is exact and the state depends only on the
// multiset of values. This gives AMCT's k-th largest / k-th smallest percentiles exactly for
// any k <= capacity (percentile.hpp), whatever the batching.
#ifndef AMCTQ_ALGORITHMS_TAILS_HPP
#define AMCTQ_ALGORITHMS_TAILS_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/kernels/detail/simd.hpp"
#include "amctq/kernels/reduce.hpp"

namespace amctq {

struct tails_state {
  std::uint32_t capacity = 0;
  std::vector<float> largest;   ///< descending
  std::vector<float> smallest;  ///< ascending
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
  template <class Arch = kernels::default_arch>
  std::size_t add(const float* x, std::size_t n) {
    std::size_t i = 0, bad = 0;
#if AMCTQ_HAS_XSIMD
    if constexpr (kernels::detail::is_simd_arch<Arch>) {
      using B = xsimd::batch<float, Arch>;
      constexpr std::size_t W = B::size;
      // Most values lie strictly between the current thresholds once the buffers are full;
      // test a whole batch at once and only look closer when one of them does not.
      B hi(hi_threshold()), lo(lo_threshold());
      for (; i + W <= n; i += W) {
        const B v = B::load_unaligned(x + i);
        // Written as "not all inside" because NaN fails every ordered comparison, so it is
        // flagged here, as is inf; offer() counts both. (xsimd's v != v is an ordered
        // not-equal on AVX, false for NaN, so it cannot be the NaN test.)
        if (!xsimd::all((v <= hi) & (v >= lo))) {
          // Only lanes past a threshold go through offer(); thresholds only tighten, so a
          // stale pair here lets through a superset that offer() checks again.
          const float h = hi_threshold(), l = lo_threshold();
          for (std::size_t j = i; j < i + W; ++j) {
            const float u = x[j];
            if (u > h || u < l || u != u) bad += !offer(u);
          }
          hi = B(hi_threshold());
          lo = B(lo_threshold());
        }
      }
    }
#endif
    for (; i < n; ++i) bad += !offer(x[i]);
    return bad;
  }

  /// Offers one value; returns false (and ignores it) when it is NaN or infinite.
  bool offer(float v) {
    if (!kernels::detail::is_finite(v)) return false;
    // Trimming at twice the capacity (not more) tightens the cut often enough that few values
    // of a long stream get past a stale one; each trim is a linear nth_element.
    if (v > hi_threshold()) {
      hi_.push_back(v);
      if (hi_.size() >= 2 * static_cast<std::size_t>(capacity_)) trim(hi_, std::greater<float>(), hi_full_, hi_cut_);
    }
    if (v < lo_threshold()) {
      lo_.push_back(v);
      if (lo_.size() >= 2 * static_cast<std::size_t>(capacity_)) trim(lo_, std::less<float>(), lo_full_, lo_cut_);
    }
    return true;
  }

  /// The largest / smallest finite value offered so far (-inf / +inf when none).
  float largest() const {
    return hi_.empty() ? -std::numeric_limits<float>::infinity() : *std::max_element(hi_.begin(), hi_.end());
  }
  float smallest() const {
    return lo_.empty() ? std::numeric_limits<float>::infinity() : *std::min_element(lo_.begin(), lo_.end());
  }

  void merge(const extreme_values& other) {
    AMCTQ_CHECK(other.capacity_ == capacity_, errc::invalid_argument, "extreme_values::merge",
                "capacities differ: ", capacity_, " vs ", other.capacity_);
    hi_.insert(hi_.end(), other.hi_.begin(), other.hi_.end());
    lo_.insert(lo_.end(), other.lo_.begin(), other.lo_.end());
    compact();
  }

  /// The k-th largest value seen (k = 1 is the max), exact while k <= capacity and k <= count.
  float kth_largest(std::size_t k) {
    compact();
    AMCTQ_ASSERT(k >= 1 && k <= hi_.size());
    return hi_[k - 1];
  }
  float kth_smallest(std::size_t k) {
    compact();
    AMCTQ_ASSERT(k >= 1 && k <= lo_.size());
    return lo_[k - 1];
  }
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
    compact();
    return hi_.size();
  }

  tails_state to_state() {
    compact();
    return tails_state{capacity_, hi_, lo_};
  }
  static extreme_values from_state(const tails_state& s) {
    extreme_values t(s.capacity);
    AMCTQ_CHECK(s.largest.size() <= s.capacity && s.smallest.size() <= s.capacity, errc::parse,
                "extreme_values::from_state", "more values than the capacity ", s.capacity);
    t.hi_ = s.largest;
    t.lo_ = s.smallest;
    t.compact();
    return t;
  }

 private:
  float hi_threshold() const noexcept {
    return hi_full_ ? hi_cut_ : -std::numeric_limits<float>::infinity();
  }
  float lo_threshold() const noexcept {
    return lo_full_ ? lo_cut_ : std::numeric_limits<float>::infinity();
  }

  // Keeps the capacity most extreme values (in no order); afterwards only values beyond the
  // kept extreme are candidates (an equal value cannot change the multiset of the top values).
  template <class Before>
  void trim(std::vector<float>& v, Before before, bool& full, float& cut) {
    if (v.size() > capacity_) {
      std::nth_element(v.begin(), v.begin() + (capacity_ - 1), v.end(), before);
      v.resize(capacity_);
    }
    full = v.size() == capacity_;
    if (full) cut = *std::max_element(v.begin(), v.end(), before);  // the least extreme kept
  }

  // Trims both sides and sorts them, most extreme first, for rank queries and the state.
  void compact() {
    trim(hi_, std::greater<float>(), hi_full_, hi_cut_);
    trim(lo_, std::less<float>(), lo_full_, lo_cut_);
    std::sort(hi_.begin(), hi_.end(), std::greater<float>());
    std::sort(lo_.begin(), lo_.end());
  }

  std::uint32_t capacity_;
  std::vector<float> hi_, lo_;
  bool hi_full_ = false, lo_full_ = false;
  float hi_cut_ = 0.0f, lo_cut_ = 0.0f;
};

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_TAILS_HPP
