// Histogram accumulation on a power-of-two bin grid: bin(x) = floor(x / 2^e) - base. Because the
// width is a power of two, x / width is exact, so every value lands in the same bin whatever the
// batch it came with, and the grid of width 2^(e+1) is obtained by merging whole pairs of bins.
// That is what makes amctq's histograms exactly mergeable (algorithms/histogram.hpp).
#ifndef AMCTQ_KERNELS_HISTOGRAM_HPP
#define AMCTQ_KERNELS_HISTOGRAM_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "amctq/kernels/detail/simd.hpp"

namespace amctq::kernels {

/// Absolute bin index of x on the grid of width 1 / inv_width, as an integer-valued float.
/// A tiny negative x whose quotient underflows to -0 still belongs to bin -1.
inline float pow2_bin_of(float x, float inv_width) noexcept {
  const float t = x * inv_width;
  const float f = std::floor(t);
  return (t == 0.0f && x < 0.0f) ? -1.0f : f;
}

/// Adds one to counts[idx[j]] for each of n indices. Two indices per 64-bit load (either half
/// first: both are counted), which leaves two memory operations per index instead of three.
/// Unrolled, because one increment per loop trip would be held to the one taken branch per
/// cycle.
template <class Count>
AMCTQ_ALWAYS_INLINE void count_bins(const std::int32_t* idx, std::size_t n, Count* counts) noexcept {
  std::size_t j = 0;
#if defined(__GNUC__)
#pragma GCC unroll 8
#endif
  for (; j + 2 <= n; j += 2) {
    std::uint64_t pair;
    std::memcpy(&pair, idx + j, sizeof pair);
    ++counts[static_cast<std::uint32_t>(pair)];
    ++counts[static_cast<std::uint32_t>(pair >> 32)];
  }
  if (j < n) ++counts[static_cast<std::uint32_t>(idx[j])];
}

namespace detail {
// The counter a value goes to: its bin, or `bins` (the spill counter) when the bin is outside
// [0, bins) after subtracting base, or the value is NaN or inf.
inline std::uint32_t bin_or_spill(float x, float inv_width, float base, std::uint32_t bins) noexcept {
  const float d = pow2_bin_of(x, inv_width) - base;
  return (d >= 0.0f && d < static_cast<float>(bins)) ? static_cast<std::uint32_t>(d) : bins;
}
}  // namespace detail

/// The values of a row outside [lo, hi] (NaN and inf included, as neither is inside), in row
/// order. A histogram pass collects them for the caller at almost no cost: they are the new
/// extremes and the candidates for the top / bottom tails, which would otherwise need a pass
/// of their own. `out` must have room for every value of the row.
struct outside_values {
  float lo = 0.0f;
  float hi = 0.0f;
  float* out = nullptr;
  std::size_t count = 0;

  void check(float v) noexcept {
    if (!(v >= lo && v <= hi)) out[count++] = v;
  }
};

namespace detail {

template <bool Watch, class Arch, class Count>
void histogram_row(const float* x, std::size_t n, float inv_width, float base, Count* counts, std::uint32_t bins,
                   [[maybe_unused]] std::size_t readable_after, [[maybe_unused]] outside_values* watch) noexcept {
  auto scalar = [&](float v) {
    ++counts[bin_or_spill(v, inv_width, base, bins)];
    if constexpr (Watch) watch->check(v);
  };
  std::size_t i = 0;
#if AMCTQ_HAS_XSIMD
  if (reinterpret_cast<std::uintptr_t>(x) % alignof(float) != 0) {
    // (A pointer no float can sit at: only the scalar path, which reads it as the caller asks.)
  } else if constexpr (is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    using I = xsimd::batch<std::int32_t, Arch>;
    constexpr std::size_t W = B::size;
    // Scalar values up to the first full-width boundary: a large std::vector's data is only
    // 16-byte aligned, and with AVX-512 every load would then straddle two cache lines.
    const auto misalign = reinterpret_cast<std::uintptr_t>(x) % (W * sizeof(float));
    if (misalign != 0) i = std::min(n, (W * sizeof(float) - misalign) / sizeof(float));
    for (std::size_t j = 0; j < i; ++j) scalar(x[j]);
    // A software pipeline: the indices of batch b go to a ring and are counted while batch
    // b + lag is binned. A scalar load of an index the vector unit has only recently stored
    // stalls until the store has left the store queue; four batches later it has. Interleaving
    // the two also lets the vector binning run in the shadow of the increments, where a binning
    // pass followed by a counting pass would pay for both in full. One table, not several
    // interleaved ones: the counters then stay in L1.
    constexpr std::size_t lag = 4, slots = 8, prefetch_distance = 2048;
    // Once per 4 KiB page, a value 64 KiB ahead is read for real, so the page's translation is
    // in the TLB long before the stream gets there (a prefetch may drop a page walk; a read
    // completes it).
    constexpr std::size_t page_bytes = 4096, touch_distance = 16384;
    alignas(64) std::int32_t ring[slots * W];
    const B vinv(inv_width), vbase(base), zero(0.0f), minus_one(-1.0f), vbins(static_cast<float>(bins));
    [[maybe_unused]] const B vlo(Watch ? watch->lo : 0.0f), vhi(Watch ? watch->hi : 0.0f);
#if defined(__AVX512F__)
    const __m512i ibase = _mm512_set1_epi32(static_cast<std::int32_t>(base)),
                  ibins = _mm512_set1_epi32(static_cast<std::int32_t>(bins));
#endif
    const float* const row = x + i;
    const std::size_t batches = (n - i) / W, reach = n - i + readable_after;  // readable from row
    auto bin = [&](std::size_t b, std::int32_t* slot) {
      const float* const at = row + b * W;
      const B v = B::load_aligned(at);
      const B t = v * vinv;
#if defined(__AVX512F__)
      if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
        // In the integer domain, fewer instructions: one rounding conversion gives floor(t), and an
        // unsigned min sends everything outside [0, bins) to the spill counter, NaN, inf and
        // |t| >= 2^31 included (they convert to INT_MIN, which no |base| < 2^24 brings back
        // into range).
        __m512i k = _mm512_cvt_roundps_epi32(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        const __mmask16 underflow = _mm512_cmp_ps_mask(t, zero, _CMP_EQ_OQ) & _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ);
        k = _mm512_mask_sub_epi32(k, underflow, k, _mm512_set1_epi32(1));
        k = _mm512_min_epu32(_mm512_sub_epi32(k, ibase), ibins);
        _mm512_store_si512(slot, k);
      } else
#endif
      {
        B f = xsimd::floor(t);
        f = xsimd::select((t == zero) & (v < zero), minus_one, f);
        const B d = f - vbase;
        // Out of range, NaN and inf (whose comparisons are false) go to the spill counter.
        const I k = xsimd::to_int(xsimd::select((d >= zero) & (d < vbins), d, vbins));
        k.store_aligned(slot);
      }
      if constexpr (Watch) {
        const auto inside = (v >= vlo) & (v <= vhi);
        if (!xsimd::all(inside)) {
          constexpr std::uint32_t lane_mask = W >= 32 ? ~0u : (1u << W) - 1u;
          for (std::uint32_t out = ~to_bits(inside) & lane_mask; out != 0; out &= out - 1)
            watch->out[watch->count++] = at[lowest_bit(out)];
        }
      }
    };
    auto count = [&](const std::int32_t* slot) { count_bins(slot, W, counts); };
    // The read-ahead: a prefetch into L2 for every batch, and a touch for the batch that starts
    // a page (by address, not by batch count: a count restarts with every call, and blocked
    // callers then skipped pages). Both are written here, not in a helper lambda: GCC 12 finds
    // a lambda whose only effect is a prefetch free of side effects and deletes the call.
    const std::size_t warm = std::min(lag, batches);
    for (std::size_t b = 0; b < warm; ++b) {
      if (reinterpret_cast<std::uintptr_t>(row + b * W) % page_bytes == 0 && b * W + touch_distance < reach)
        touch(row + b * W + touch_distance);
      bin(b, ring + b * W);
    }
    // Most of a row reads ahead inside what is readable, and that part runs without the bounds
    // checks: the loop issues near the core's limit, so every instruction in it costs time.
    const std::size_t unchecked_end = reach > touch_distance ? std::min(batches, (reach - touch_distance) / W) : 0;
    std::size_t b = warm;
    for (; b < unchecked_end; ++b) {
      const float* const at = row + b * W;
      prefetch(at + prefetch_distance);
      if (reinterpret_cast<std::uintptr_t>(at) % page_bytes == 0) touch(at + touch_distance);
      bin(b, ring + b % slots * W);
      count(ring + (b - lag) % slots * W);
    }
    for (; b < batches; ++b) {
      const float* const at = row + b * W;
      if (b * W + prefetch_distance < reach) prefetch(at + prefetch_distance);
      if (reinterpret_cast<std::uintptr_t>(at) % page_bytes == 0 && b * W + touch_distance < reach)
        touch(at + touch_distance);
      bin(b, ring + b % slots * W);
      count(ring + (b - lag) % slots * W);
    }
    for (std::size_t c = batches - warm; c < batches; ++c) count(ring + c % slots * W);
    i += batches * W;
  }
#endif
  for (; i < n; ++i) scalar(x[i]);
}

}  // namespace detail

/// Adds each element of a contiguous row to counts[bin], bins + 1 counters. The extra last
/// counter receives the values outside [0, bins) after subtracting base, NaN and inf, which
/// keeps the inner loop free of branches; callers read it as the number skipped. base is an
/// integer-valued float; it and every in-range bin index are exact in float (the caller keeps
/// |index| < 2^24).
///
/// While it counts, the row asks the cache for the values ahead of the batch it bins, so that
/// the memory read overlaps the scattered increments instead of following them, and reads one
/// value per page 64 KiB ahead. It may read ahead past the row's end into the next
/// `readable_after` values, x[n, n + readable_after), which must be readable memory (a blocked
/// caller passes the rest of its data). A row not aligned to a float is counted by the scalar
/// path.
///
/// With `watch`, the row also appends its values outside [watch->lo, watch->hi] to watch->out.
template <class Arch, class Count>
void histogram_row(Arch, const float* x, std::size_t n, float inv_width, float base, Count* counts,
                   std::uint32_t bins, std::size_t readable_after = 0, outside_values* watch = nullptr) noexcept {
  if (watch != nullptr) detail::histogram_row<true, Arch>(x, n, inv_width, base, counts, bins, readable_after, watch);
  else detail::histogram_row<false, Arch>(x, n, inv_width, base, counts, bins, readable_after, watch);
}

}  // namespace amctq::kernels

#endif  // AMCTQ_KERNELS_HISTOGRAM_HPP
