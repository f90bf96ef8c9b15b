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

#include "amctq/kernels/detail/simd.hpp"

namespace amctq::kernels {

/// Absolute bin index of x on the grid of width 1 / inv_width, as an integer-valued float.
/// A tiny negative x whose quotient underflows to -0 still belongs to bin -1.
inline float pow2_bin_of(float x, float inv_width) noexcept {
  const float t = x * inv_width;
  const float f = std::floor(t);
  return (t == 0.0f && x < 0.0f) ? -1.0f : f;
}

/// Adds one to counts[idx[j]] for each of n indices.
template <class Count>
void count_bins(const std::int32_t* idx, std::size_t n, Count* counts) noexcept {
  for (std::size_t j = 0; j < n; ++j) ++counts[static_cast<std::uint32_t>(idx[j])];
}

/// Adds each element of a contiguous row to counts[bin], bins + 1 counters. The extra last
/// counter receives the values outside [0, bins) after subtracting base, NaN and inf, which
/// keeps the inner loop free of branches; callers read it as the number skipped. base is an
/// integer-valued float; it and every in-range bin index are exact in float (the caller keeps
/// |index| < 2^24).
///
/// While it counts, the row asks the cache for the values 4096 ahead of the batch it bins, so
/// that the memory read overlaps the scattered increments instead of following them. Past the
/// row's end it prefetches from `next` / `next_n`, the values the caller will read next (its
/// following block), when given. A hint only; nothing is read through it.
template <class Arch, class Count>
void histogram_row(Arch, const float* x, std::size_t n, float inv_width, float base, Count* counts,
                   std::uint32_t bins, [[maybe_unused]] const float* next = nullptr,
                   [[maybe_unused]] std::size_t next_n = 0) noexcept {
  std::size_t i = 0;
#if AMCTQ_HAS_XSIMD
  if constexpr (detail::is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    using I = xsimd::batch<std::int32_t, Arch>;
    constexpr std::size_t W = B::size;
    // A software pipeline: the indices of batch b go to a four-slot ring and are counted while
    // batch b + 2 is binned. A scalar load of an index the vector unit has only just stored
    // stalls on store forwarding; two batches later the store has retired. Interleaving the two
    // also lets the vector binning run in the shadow of the increments, where a binning pass
    // followed by a counting pass (the earlier design) paid for both in full. One table, not
    // several interleaved ones: the counters then stay in L1 (measured on mixed normal /
    // post-ReLU and on uniform values).
    constexpr std::size_t lag = 2, slots = 4, prefetch_distance = 4096;
    alignas(64) std::int32_t ring[slots * W];
    const B vinv(inv_width), vbase(base), zero(0.0f), minus_one(-1.0f), vbins(static_cast<float>(bins));
    const std::size_t batches = n / W;
    for (std::size_t b = 0; b < batches + lag; ++b) {
      if (b < batches) {
        const std::size_t ahead = b * W + prefetch_distance;
        if (ahead < n) detail::prefetch(x + ahead);
        else if (ahead - n < next_n) detail::prefetch(next + (ahead - n));
        const B v = B::load_unaligned(x + b * W);
        const B t = v * vinv;
        B f = xsimd::floor(t);
        f = xsimd::select((t == zero) & (v < zero), minus_one, f);
        const B d = f - vbase;
        // Out of range, NaN and inf (whose comparisons are false) go to the spill counter.
        const I k = xsimd::to_int(xsimd::select((d >= zero) & (d < vbins), d, vbins));
        k.store_aligned(ring + (b % slots) * W);
      }
      if (b >= lag) count_bins(ring + ((b - lag) % slots) * W, W, counts);
    }
    i = batches * W;
  }
#endif
  for (; i < n; ++i) {
    const float d = pow2_bin_of(x[i], inv_width) - base;
    const std::uint32_t k = (d >= 0.0f && d < static_cast<float>(bins)) ? static_cast<std::uint32_t>(d) : bins;
    ++counts[k];
  }
}

}  // namespace amctq::kernels

#endif  // AMCTQ_KERNELS_HISTOGRAM_HPP
