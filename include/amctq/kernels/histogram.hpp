// Histogram accumulation on a power-of-two bin grid: bin(x) = floor(x / 2^e) - base. Because the
// width is a power of two, x / width is exact, so every value lands in the same bin whatever the
// batch it came with, and the grid of width 2^(e+1) is obtained by merging whole pairs of bins.
// That is what makes amctq's histograms exactly mergeable (algorithms/histogram.hpp).
#ifndef AMCTQ_KERNELS_HISTOGRAM_HPP
#define AMCTQ_KERNELS_HISTOGRAM_HPP

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

namespace detail {

template <unsigned Ways, class Arch, class Count>
void histogram_row_ways(const float* x, std::size_t n, float inv_width, float base, Count* counts,
                        std::uint32_t bins) noexcept {
  std::size_t i = 0;
  const std::size_t stride = static_cast<std::size_t>(bins) + 1;
#if AMCTQ_HAS_XSIMD
  if constexpr (is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    const B vinv(inv_width), vbase(base), zero(0.0f), minus_one(-1.0f), vbins(static_cast<float>(bins));
    alignas(64) std::int32_t idx[W];
    Count* table[Ways];
    for (unsigned w = 0; w < Ways; ++w) table[w] = counts + w * stride;
    for (; i + W <= n; i += W) {
      const B v = B::load_unaligned(x + i);
      const B t = v * vinv;
      B f = xsimd::floor(t);
      f = xsimd::select((t == zero) & (v < zero), minus_one, f);
      const B d = f - vbase;
      // Out of range, NaN and inf (whose comparisons are false) go to the spill counter.
      xsimd::to_int(xsimd::select((d >= zero) & (d < vbins), d, vbins)).store_aligned(idx);
      for (std::size_t j = 0; j < W; ++j) ++table[j % Ways][static_cast<std::uint32_t>(idx[j])];
    }
  }
#endif
  for (; i < n; ++i) {
    const float d = pow2_bin_of(x[i], inv_width) - base;
    const std::uint32_t k = (d >= 0.0f && d < static_cast<float>(bins)) ? static_cast<std::uint32_t>(d) : bins;
    ++counts[(i % Ways) * stride + k];
  }
}

}  // namespace detail

/// Adds each element of a contiguous row to counts: element i goes to table (i % ways) of
/// `ways` interleaved tables (so that runs of equal bins do not serialise on one counter), each
/// of bins + 1 counters: counts[w * (bins + 1) + bin]. The extra last counter of each table
/// receives the values outside [0, bins) after subtracting base, NaN and inf, which keeps the
/// inner loop free of branches; callers read it as the number skipped. base is an
/// integer-valued float; it and every in-range bin index are exact in float (the caller keeps
/// |index| < 2^24). ways is 1, 2 or 4.
template <class Arch, class Count>
void histogram_row(Arch, const float* x, std::size_t n, float inv_width, float base, Count* counts,
                   std::uint32_t bins, unsigned ways) noexcept {
  switch (ways) {
    case 4: return detail::histogram_row_ways<4, Arch>(x, n, inv_width, base, counts, bins);
    case 2: return detail::histogram_row_ways<2, Arch>(x, n, inv_width, base, counts, bins);
    default: return detail::histogram_row_ways<1, Arch>(x, n, inv_width, base, counts, bins);
  }
}

}  // namespace amctq::kernels

#endif  // AMCTQ_KERNELS_HISTOGRAM_HPP
