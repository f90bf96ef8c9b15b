// Dequantization q -> (q - zp) * s from int8, uint8, int16, uint16, int32 or packed 4-bit codes;
// equal to ONNX DequantizeLinear, whose (q - zp) is exact in float for these widths.
#ifndef AMCTQ_KERNELS_DEQUANTIZE_HPP
#define AMCTQ_KERNELS_DEQUANTIZE_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "amctq/kernels/detail/checks.hpp"
#include "amctq/kernels/detail/grid.hpp"
#include "amctq/kernels/detail/row_grid.hpp"
#include "amctq/kernels/detail/simd.hpp"
#include "amctq/kernels/quantize.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq::kernels {

/// y[i] = (q[i] - zp) * s for a contiguous row.
template <class Arch, class Q, class Grid>
void dequantize_row(Arch, const Q* q, float* y, std::size_t n, const Grid& grid) noexcept {
  const Grid g = grid;  // a local copy: stores to y cannot alias it, so its broadcasts leave the loop
  std::size_t i = 0;
#if AMCTQ_HAS_XSIMD
  if constexpr (detail::is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    for (; i + W <= n; i += W)
      ((detail::load_codes<B>(q + i) - g.template zero_batch<B>(i)) * g.template scale_batch<B>(i)).store_unaligned(y + i);
  }
#endif
  for (; i < n; ++i) y[i] = (static_cast<float>(q[i]) - g.zero_at(i)) * g.scale_at(i);
}

namespace detail {
/// Element e of a packed 4-bit tensor, sign-extended when is_signed.
inline int get_nibble(const std::uint8_t* packed, std::size_t e, bool is_signed) noexcept {
  const int nib = (packed[e >> 1] >> ((e & 1u) * 4)) & 0xF;
  return is_signed ? (nib ^ 8) - 8 : nib;
}
}  // namespace detail

}  // namespace amctq::kernels

namespace amctq {

/// Dequantizes codes q into y (same extents) with params p.
template <class Arch = kernels::default_arch, class TQ, std::size_t R>
void dequantize(const tensor_view<TQ, R>& q, const tensor_view<float, R>& y, const quant_params& p) {
  using Q = std::remove_const_t<TQ>;
  static_assert(kernels::is_code_type<Q>, "dequantize reads int8, uint8, int16, uint16 or int32 codes.");
  constexpr const char* where = "dequantize";
  check_same_extents(q, y, where, "q", "y");
  kernels::detail::check_params_for(p, q, where);
  const auto f = kernels::detail::to_float_params(p);
  const auto plan = kernels::detail::make_row_plan<R>(q.extents(), q.strides(), y.strides(), p.axis);
  const std::ptrdiff_t sq = plan.stride_a[plan.dims - 1], sy = plan.stride_b[plan.dims - 1];
  kernels::detail::for_each_grid_row(plan, f, [&](std::ptrdiff_t oq, std::ptrdiff_t oy, std::ptrdiff_t n, const auto& g,
                                                  std::ptrdiff_t) {
    const Q* qr = q.data_handle() + oq;
    float* yr = y.data_handle() + oy;
    if (sq == 1 && sy == 1) {
      kernels::dequantize_row(Arch{}, qr, yr, static_cast<std::size_t>(n), g);
      return;
    }
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      yr[i * sy] = (static_cast<float>(qr[i * sq]) - g.zero_at(k)) * g.scale_at(k);
    }
  });
}

/// Dequantizes a packed 4-bit tensor (row-major, element 2k in the low nibble of byte k) into y.
template <std::size_t R>
void dequantize_int4(const std::uint8_t* packed, bool is_signed, const tensor_view<float, R>& y,
                     const quant_params& p) {
  constexpr const char* where = "dequantize_int4";
  kernels::detail::check_params_for(p, y, where);
  // The nibbles are read as int4 or uint4; params for the other storage would read 12 as -4.
  kernels::detail::check_storage_range(p, is_signed ? -8 : 0, is_signed ? 7 : 15, is_signed ? "int4" : "uint4", where);
  AMCTQ_CHECK(packed != nullptr || y.size() == 0, errc::invalid_argument, where, "packed is null");
  const auto f = kernels::detail::to_float_params(p);
  const auto dense = tensor_view<float, R>::row_major_strides(y.extents());
  const auto plan = kernels::detail::make_row_plan<R>(y.extents(), dense, y.strides(), p.axis);
  const std::ptrdiff_t sy = plan.stride_b[plan.dims - 1];
  kernels::detail::for_each_grid_row(plan, f, [&](std::ptrdiff_t, std::ptrdiff_t oy, std::ptrdiff_t n, const auto& g,
                                                  std::ptrdiff_t lin) {
    float* yr = y.data_handle() + oy;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      const int v = kernels::detail::get_nibble(packed, static_cast<std::size_t>(lin + i), is_signed);
      yr[i * sy] = (static_cast<float>(v) - g.zero_at(k)) * g.scale_at(k);
    }
  });
}

}  // namespace amctq

#endif  // AMCTQ_KERNELS_DEQUANTIZE_HPP
