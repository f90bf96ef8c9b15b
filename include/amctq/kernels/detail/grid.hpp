// The affine grid a row is quantized on, as a uniform (per-tensor / per-row) or a per-lane
// (channel = element index) parameter source, and the element formulas shared by every kernel.
#ifndef AMCTQ_KERNELS_DETAIL_GRID_HPP
#define AMCTQ_KERNELS_DETAIL_GRID_HPP

#include <cstddef>
#include <cstdint>

#include "amctq/kernels/detail/simd.hpp"
#include "amctq/rounding.hpp"

namespace amctq::kernels {

/// One scale and zero point for the whole row; lo/hi are qmin/qmax as floats.
struct uniform_grid {
  float scale;
  float zero_point;
  float lo;
  float hi;

  float scale_at(std::size_t) const noexcept { return scale; }
  float zero_at(std::size_t) const noexcept { return zero_point; }
#if AMCTQ_HAS_XSIMD
  template <class B>
  B scale_batch(std::size_t) const noexcept { return B(scale); }
  template <class B>
  B zero_batch(std::size_t) const noexcept { return B(zero_point); }
#endif
};

/// Element i of the row uses scale[i] and zero_point[i] (channel axis = the row).
struct lane_grid {
  const float* scale;
  const float* zero_point;
  float lo;
  float hi;

  float scale_at(std::size_t i) const noexcept { return scale[i]; }
  float zero_at(std::size_t i) const noexcept { return zero_point[i]; }
  lane_grid shifted(std::size_t i) const noexcept { return {scale + i, zero_point + i, lo, hi}; }
#if AMCTQ_HAS_XSIMD
  template <class B>
  B scale_batch(std::size_t i) const noexcept { return B::load_unaligned(scale + i); }
  template <class B>
  B zero_batch(std::size_t i) const noexcept { return B::load_unaligned(zero_point + i); }
#endif
};

namespace detail {

/// Calls f with the grid of one row: per-lane when the row is the channel axis, else the
/// uniform grid of channel c (c < 0: the per-tensor entry 0).
template <class F>
void with_row_grid(bool per_lane, std::ptrdiff_t c, const float* scale, const float* zero_point, float lo, float hi,
                   F&& f) {
  if (per_lane) {
    f(lane_grid{scale, zero_point, lo, hi});
  } else {
    const std::size_t k = c < 0 ? 0 : static_cast<std::size_t>(c);
    f(uniform_grid{scale[k], zero_point[k], lo, hi});
  }
}

using amctq::round_as;

/// round(x / s) + zp before clamping: the quantity whose range decides the STE mask.
template <round_mode M, class V>
inline V unclamped_code(V x, V s, V zp) noexcept {
  return round_as<M>(x / s) + zp;
}

/// The integer code, as an integer-valued float: clamp(round(x / s) + zp, lo, hi).
template <round_mode M, class V>
inline V code(V x, V s, V zp, V lo, V hi) noexcept {
  return clamp_nan_low(unclamped_code<M>(x, s, zp), lo, hi);
}

/// (code - zp) * s: both steps are exact but the final multiply, as in ONNX Q -> DQ.
template <round_mode M, class V>
inline V fake_quantized(V x, V s, V zp, V lo, V hi) noexcept {
  return (code<M>(x, s, zp, lo, hi) - zp) * s;
}

}  // namespace detail
}  // namespace amctq::kernels

#endif  // AMCTQ_KERNELS_DETAIL_GRID_HPP
