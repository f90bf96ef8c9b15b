// Fused fake-quantization x -> (clamp(round(x/s) + zp, qmin, qmax) - zp) * s, optionally writing
// the straight-through mask (bit = 1 where round(x/s) + zp lies inside [qmin, qmax]).
// Row kernels are noexcept and check nothing; amctq::fake_quantize checks, then calls them.
#ifndef AMCTQ_KERNELS_FAKE_QUANTIZE_HPP
#define AMCTQ_KERNELS_FAKE_QUANTIZE_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "amctq/kernels/detail/checks.hpp"
#include "amctq/kernels/detail/grid.hpp"
#include "amctq/kernels/detail/row_grid.hpp"
#include "amctq/kernels/detail/simd.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq::kernels {

/// y[i] = fake-quantized x[i] for a contiguous row of n floats (x == y allowed). With a
/// non-null mask, bit (bit0 + i) of mask receives the STE bit of element i. With stream, y is
/// written with non-temporal stores (call detail::stream_fence() after the last row); the
/// values are the same either way.
template <round_mode M, class Arch, class Grid>
void fake_quantize_row(Arch, const float* x, float* y, std::size_t n, const Grid& grid, std::uint8_t* mask = nullptr,
                       std::size_t bit0 = 0, bool stream = false) noexcept {
  const Grid g = grid;  // a local copy: stores to y cannot alias it, so its broadcasts leave the loop
  std::size_t i = 0;
  auto scalar_until = [&](std::size_t end, detail::bit_writer* bits) {
    for (; i < end; ++i) {
      const float s = g.scale_at(i), zp = g.zero_at(i);
      const float r = detail::unclamped_code<M>(x[i], s, zp);
      if (bits) bits->put(r >= g.lo && r <= g.hi);
      y[i] = (detail::clamp_nan_low(r, g.lo, g.hi) - zp) * s;
    }
  };
  detail::bit_writer bits(mask, bit0);
  detail::bit_writer* bp = mask ? &bits : nullptr;
#if AMCTQ_HAS_XSIMD
  if constexpr (detail::is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    const B lo(g.lo), hi(g.hi);
    // One loop body per store kind, so the choice is not re-made per batch.
    auto simd_rows = [&](auto streaming) {
      constexpr bool S = decltype(streaming)::value;
      const auto put = [&](const B& v) {
        if constexpr (S) detail::store_stream(v, y + i);
        else v.store_unaligned(y + i);
      };
      // Scalar elements first: up to a byte of mask (plain stores) or to y's batch alignment
      // (streaming stores need it; the mask writer then starts mid-byte).
      const std::size_t head = S ? detail::elements_to_alignment(y, sizeof(B)) : (mask ? (8 - (bit0 & 7u)) & 7u : 0);
      scalar_until(n < head ? n : head, bp);
      if (mask) {
        bits.begin_push();
        for (; i + W <= n; i += W) {
          const B s = g.template scale_batch<B>(i), zp = g.template zero_batch<B>(i);
          const B r = detail::unclamped_code<M>(B::load_unaligned(x + i), s, zp);
          bits.push(detail::to_bits((r >= lo) & (r <= hi)), static_cast<unsigned>(W));
          put((detail::clamp_nan_low(r, lo, hi) - zp) * s);
        }
        bits.flush();
      } else {
        for (; i + W <= n; i += W) {
          const B s = g.template scale_batch<B>(i), zp = g.template zero_batch<B>(i);
          put(detail::fake_quantized<M>(B::load_unaligned(x + i), s, zp, lo, hi));
        }
      }
    };
    if (stream) simd_rows(std::true_type{});
    else simd_rows(std::false_type{});
  }
#endif
  (void)stream;
  scalar_until(n, bp);
}

/// Element-wise reference for rows that are not contiguous.
template <round_mode M, class Grid>
void fake_quantize_strided(const float* x, std::ptrdiff_t sx, float* y, std::ptrdiff_t sy, std::size_t n,
                           const Grid& g, std::uint8_t* mask, std::size_t bit0) noexcept {
  detail::bit_writer bits(mask, bit0);
  for (std::size_t i = 0; i < n; ++i) {
    const float s = g.scale_at(i), zp = g.zero_at(i);
    const float r = detail::unclamped_code<M>(x[static_cast<std::ptrdiff_t>(i) * sx], s, zp);
    if (mask) bits.put(r >= g.lo && r <= g.hi);
    y[static_cast<std::ptrdiff_t>(i) * sy] = (detail::clamp_nan_low(r, g.lo, g.hi) - zp) * s;
  }
}

}  // namespace amctq::kernels

namespace amctq {

/// Fake-quantizes x into y (same extents; y may alias x exactly) with params p, per-tensor or
/// per-channel along p.axis. With a mask, it receives ceil(x.size() / 8) bytes: bit k (LSB
/// first, row-major element order) is 1 where element k was inside the grid before clamping,
/// i.e. where the straight-through gradient passes.
/// @throws amctq::error on invalid params, mismatched extents or a bad axis.
template <class Arch = kernels::default_arch, class TX, std::size_t R>
void fake_quantize(const tensor_view<TX, R>& x, const tensor_view<float, R>& y, const quant_params& p,
                   round_mode mode = round_mode::half_even, std::uint8_t* mask = nullptr) {
  static_assert(std::is_same_v<std::remove_const_t<TX>, float>, "fake_quantize reads float tensors.");
  constexpr const char* where = "fake_quantize";
  check_same_extents(x, y, where, "x", "y");
  kernels::detail::check_params_for(p, x, where);
  const auto f = kernels::detail::to_float_params(p);
  const auto plan = kernels::detail::make_row_plan<R>(x.extents(), x.strides(), y.strides(), p.axis);
  const std::ptrdiff_t sx = plan.stride_a[plan.dims - 1], sy = plan.stride_b[plan.dims - 1];
  const bool stream = sy == 1 && static_cast<std::size_t>(y.size()) * sizeof(float) >= kernels::detail::stream_store_bytes;
  with_round_mode(mode, [&](auto m) {
    constexpr round_mode M = decltype(m)::value;
    kernels::detail::for_each_grid_row(plan, f, [&](std::ptrdiff_t ox, std::ptrdiff_t oy, std::ptrdiff_t n, const auto& g,
                                                    std::ptrdiff_t lin) {
      const auto count = static_cast<std::size_t>(n);
      const auto bit0 = static_cast<std::size_t>(lin);
      if (sx == 1 && sy == 1)
        kernels::fake_quantize_row<M>(Arch{}, x.data_handle() + ox, y.data_handle() + oy, count, g, mask, bit0, stream);
      else
        kernels::fake_quantize_strided<M>(x.data_handle() + ox, sx, y.data_handle() + oy, sy, count, g, mask, bit0);
    });
  });
  if (stream) kernels::detail::stream_fence();
}

}  // namespace amctq

#endif  // AMCTQ_KERNELS_FAKE_QUANTIZE_HPP
