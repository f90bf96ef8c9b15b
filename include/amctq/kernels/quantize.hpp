// Quantization x -> clamp(round(x/s) + zp, qmin, qmax) into int8, uint8, int16, uint16 or packed
// 4-bit codes (two per byte, element 2k in the low nibble, as ONNX INT4/UINT4).
#ifndef AMCTQ_KERNELS_QUANTIZE_HPP
#define AMCTQ_KERNELS_QUANTIZE_HPP

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

template <class Q>
inline constexpr bool is_code_type =
    std::is_same_v<Q, std::int8_t> || std::is_same_v<Q, std::uint8_t> || std::is_same_v<Q, std::int16_t> ||
    std::is_same_v<Q, std::uint16_t> || std::is_same_v<Q, std::int32_t>;

/// q[i] = code of x[i] for a contiguous row; the grid must fit Q.
template <round_mode M, class Arch, class Q, class Grid>
void quantize_row(Arch, const float* x, Q* q, std::size_t n, const Grid& grid) noexcept {
  const Grid g = grid;  // a local copy: stores to q cannot alias it, so its broadcasts leave the loop
  static_assert(is_code_type<Q>, "quantize_row writes int8, uint8, int16, uint16 or int32 codes.");
  std::size_t i = 0;
#if AMCTQ_HAS_XSIMD
  if constexpr (detail::is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    const B lo(g.lo), hi(g.hi);
    for (; i + W <= n; i += W) {
      const B c = detail::code<M>(B::load_unaligned(x + i), g.template scale_batch<B>(i),
                                  g.template zero_batch<B>(i), lo, hi);
      xsimd::batch_cast<std::int32_t>(c).store_unaligned(q + i);
    }
  }
#endif
  for (; i < n; ++i)
    q[i] = static_cast<Q>(detail::code<M>(x[i], g.scale_at(i), g.zero_at(i), g.lo, g.hi));
}

namespace detail {
/// Stores the low 4 bits of code as element e of a packed 4-bit tensor.
inline void put_nibble(std::uint8_t* packed, std::size_t e, int code) noexcept {
  const unsigned nib = static_cast<unsigned>(code) & 0xFu;
  std::uint8_t& byte = packed[e >> 1];
  byte = (e & 1u) ? static_cast<std::uint8_t>((byte & 0x0Fu) | (nib << 4)) : static_cast<std::uint8_t>((byte & 0xF0u) | nib);
}

/// Stores m codes as elements e .. e + m - 1: bytes whose two nibbles both come from codes are
/// written whole (a loop the compiler vectorizes), only a shared first or last byte is merged.
inline void put_nibbles(std::uint8_t* packed, std::size_t e, const std::int8_t* codes, std::size_t m) noexcept {
  std::size_t k = 0;
  if ((e & 1u) && m > 0) put_nibble(packed, e, codes[k++]);
  for (; k + 2 <= m; k += 2)
    packed[(e + k) >> 1] = static_cast<std::uint8_t>((static_cast<unsigned>(codes[k]) & 0xFu) |
                                                     ((static_cast<unsigned>(codes[k + 1]) & 0xFu) << 4));
  if (k < m) put_nibble(packed, e + k, codes[k]);
}
}  // namespace detail

/// Writes the 4-bit codes of a contiguous row into `packed` at element positions
/// first .. first + n - 1 (byte k / 2, low nibble for even k). The grid must fit 4 bits.
template <round_mode M, class Arch, class Grid>
void quantize_row_int4(Arch arch, const float* x, std::uint8_t* packed, std::size_t first, std::size_t n,
                       const Grid& g) noexcept {
  constexpr std::size_t chunk = 256;
  std::int8_t codes[chunk];
  for (std::size_t done = 0; done < n;) {
    const std::size_t m = n - done < chunk ? n - done : chunk;
    if constexpr (std::is_same_v<Grid, lane_grid>)
      quantize_row<M>(arch, x + done, codes, m, g.shifted(done));
    else
      quantize_row<M>(arch, x + done, codes, m, g);
    detail::put_nibbles(packed, first + done, codes, m);
    done += m;
  }
}

}  // namespace amctq::kernels

namespace amctq {
namespace detail {

template <class Q>
constexpr const char* code_type_name() {
  if constexpr (std::is_same_v<Q, std::int8_t>) return "int8";
  else if constexpr (std::is_same_v<Q, std::uint8_t>) return "uint8";
  else if constexpr (std::is_same_v<Q, std::int16_t>) return "int16";
  else if constexpr (std::is_same_v<Q, std::uint16_t>) return "uint16";
  else return "int32";
}

// Runs row(xr, sx, out_offset, sy, n, grid, linear) over x's rows; the driver shared by
// quantize and quantize_int4.
template <std::size_t R, class TX, class Row>
void for_each_quant_row(const tensor_view<TX, R>& x, const std::array<std::ptrdiff_t, R>& out_strides,
                        const quant_params& p, const kernels::detail::float_params& f, Row&& row) {
  const auto plan = kernels::detail::make_row_plan<R>(x.extents(), x.strides(), out_strides, p.axis);
  const std::ptrdiff_t sx = plan.stride_a[plan.dims - 1], sy = plan.stride_b[plan.dims - 1];
  kernels::detail::for_each_grid_row(plan, f, [&](std::ptrdiff_t ox, std::ptrdiff_t oy, std::ptrdiff_t n, const auto& g,
                                                  std::ptrdiff_t lin) { row(x.data_handle() + ox, sx, oy, sy, n, g, lin); });
}

}  // namespace detail

/// Quantizes x into integer codes q (same extents) with params p.
/// @throws amctq::error on invalid params, mismatched extents, a bad axis, or a [qmin, qmax]
/// that does not fit Q.
template <class Arch = kernels::default_arch, class TX, class Q, std::size_t R>
void quantize(const tensor_view<TX, R>& x, const tensor_view<Q, R>& q, const quant_params& p,
              round_mode mode = round_mode::half_even) {
  static_assert(std::is_same_v<std::remove_const_t<TX>, float>, "quantize reads float tensors.");
  static_assert(kernels::is_code_type<Q>, "quantize writes int8, uint8, int16, uint16 or int32 codes.");
  constexpr const char* where = "quantize";
  check_same_extents(x, q, where, "x", "q");
  kernels::detail::check_params_for(p, x, where);
  kernels::detail::check_storage_range<Q>(p, detail::code_type_name<Q>(), where);
  const auto f = kernels::detail::to_float_params(p);
  with_round_mode(mode, [&](auto m) {
    constexpr round_mode M = decltype(m)::value;
    detail::for_each_quant_row<R, TX>(x, q.strides(), p, f,
        [&](const float* xr, std::ptrdiff_t sx, std::ptrdiff_t oq, std::ptrdiff_t sq, std::ptrdiff_t n, const auto& g,
            std::ptrdiff_t) {
          Q* qr = q.data_handle() + oq;
          if (sx == 1 && sq == 1) {
            kernels::quantize_row<M>(Arch{}, xr, qr, static_cast<std::size_t>(n), g);
            return;
          }
          for (std::ptrdiff_t i = 0; i < n; ++i)
            qr[i * sq] = static_cast<Q>(kernels::detail::code<M>(xr[i * sx], g.scale_at(static_cast<std::size_t>(i)),
                                                                  g.zero_at(static_cast<std::size_t>(i)), g.lo, g.hi));
        });
  });
}

/// Quantizes x to 4-bit codes packed two per byte in row-major element order (element 2k in
/// the low nibble of byte k), as ONNX INT4 / UINT4 tensors store them. `packed` must hold
/// (x.size() + 1) / 2 bytes. [qmin, qmax] must fit [-8, 7] or [0, 15].
template <class Arch = kernels::default_arch, class TX, std::size_t R>
void quantize_int4(const tensor_view<TX, R>& x, std::uint8_t* packed, const quant_params& p,
                   round_mode mode = round_mode::half_even) {
  static_assert(std::is_same_v<std::remove_const_t<TX>, float>, "quantize_int4 reads float tensors.");
  constexpr const char* where = "quantize_int4";
  kernels::detail::check_params_for(p, x, where);
  kernels::detail::check_storage_range(p, p.qmin < 0 ? -8 : 0, p.qmin < 0 ? 7 : 15, p.qmin < 0 ? "int4" : "uint4",
                                       where);
  AMCTQ_CHECK(packed != nullptr || x.size() == 0, errc::invalid_argument, where, "packed is null");
  const auto f = kernels::detail::to_float_params(p);
  const auto dense = tensor_view<float, R>::row_major_strides(x.extents());
  with_round_mode(mode, [&](auto m) {
    constexpr round_mode M = decltype(m)::value;
    detail::for_each_quant_row<R, TX>(x, dense, p, f,
        [&](const float* xr, std::ptrdiff_t sx, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t n, const auto& g,
            std::ptrdiff_t lin) {
          if (sx == 1) {
            kernels::quantize_row_int4<M>(Arch{}, xr, packed, static_cast<std::size_t>(lin), static_cast<std::size_t>(n), g);
            return;
          }
          for (std::ptrdiff_t i = 0; i < n; ++i) {
            const float c = kernels::detail::code<M>(xr[i * sx], g.scale_at(static_cast<std::size_t>(i)),
                                                     g.zero_at(static_cast<std::size_t>(i)), g.lo, g.hi);
            kernels::detail::put_nibble(packed, static_cast<std::size_t>(lin + i), static_cast<int>(c));
          }
        });
  });
}

}  // namespace amctq

#endif  // AMCTQ_KERNELS_QUANTIZE_HPP
