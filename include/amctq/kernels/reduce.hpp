// Min / max / absmax reductions over finite values, per-tensor and per-channel, reporting how
// many values were NaN or infinite so callers can refuse them or knowingly skip them.
#ifndef AMCTQ_KERNELS_REDUCE_HPP
#define AMCTQ_KERNELS_REDUCE_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/kernels/detail/rows.hpp"
#include "amctq/kernels/detail/simd.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

/// Min and max of the finite values seen, and the count of non-finite ones. With no finite
/// value, min = +inf and max = -inf (empty()).
struct value_range {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  std::size_t nonfinite = 0;

  bool empty() const noexcept { return !(min <= max); }
  float absmax() const noexcept { return empty() ? 0.0f : std::fmax(std::fabs(min), std::fabs(max)); }
  void merge(const value_range& o) noexcept {
    min = std::fmin(min, o.min);
    max = std::fmax(max, o.max);
    nonfinite += o.nonfinite;
  }
};

/// One value_range per channel.
struct channel_ranges {
  std::vector<float> min;
  std::vector<float> max;
  std::size_t nonfinite = 0;
};

}  // namespace amctq

namespace amctq::kernels {

namespace detail {
inline bool is_finite(float v) noexcept { return std::fabs(v) <= std::numeric_limits<float>::max(); }
}  // namespace detail

/// Folds a contiguous row into r: min/max of its finite values, count of the others.
template <class Arch>
void minmax_row(Arch, const float* x, std::size_t n, value_range& r) noexcept {
  std::size_t i = 0;
  float lo = r.min, hi = r.max;
  std::size_t bad = 0;
#if AMCTQ_HAS_XSIMD
  if constexpr (detail::is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    if (n >= W) {
      const B inf(std::numeric_limits<float>::infinity()), big(std::numeric_limits<float>::max());
      B vlo(lo), vhi(hi);
      auto any_bad = B(0.0f) != B(0.0f);
      const std::size_t whole = n - n % W;  // (not i + W <= n: GCC then misreads the tail loop's trip count)
      for (; i < whole; i += W) {
        const B v = B::load_unaligned(x + i);
        const auto ok = xsimd::abs(v) <= big;  // false for NaN and +-inf
        vlo = xsimd::min(vlo, xsimd::select(ok, v, inf));
        vhi = xsimd::max(vhi, xsimd::select(ok, v, -inf));
        any_bad = any_bad | !ok;
      }
      alignas(64) float l[W], h[W];
      vlo.store_aligned(l);
      vhi.store_aligned(h);
      for (std::size_t k = 0; k < W; ++k) {
        lo = std::fmin(lo, l[k]);
        hi = std::fmax(hi, h[k]);
      }
      if (xsimd::any(any_bad))
        for (std::size_t k = 0; k < i; ++k) bad += !detail::is_finite(x[k]);
    }
  }
#endif
  for (; i < n; ++i) {
    const float v = x[i];
    if (!detail::is_finite(v)) {
      ++bad;
      continue;
    }
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  r.min = lo;
  r.max = hi;
  r.nonfinite += bad;
}

/// Element i of a contiguous row updates mins[i] / maxs[i] (the row is the channel axis).
template <class Arch>
void minmax_lanes(Arch, const float* x, std::size_t n, float* mins, float* maxs, std::size_t& nonfinite) noexcept {
  std::size_t i = 0;
#if AMCTQ_HAS_XSIMD
  if constexpr (detail::is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    const B inf(std::numeric_limits<float>::infinity()), big(std::numeric_limits<float>::max());
    for (; i + W <= n; i += W) {
      const B v = B::load_unaligned(x + i);
      const auto ok = xsimd::abs(v) <= big;
      xsimd::min(B::load_unaligned(mins + i), xsimd::select(ok, v, inf)).store_unaligned(mins + i);
      xsimd::max(B::load_unaligned(maxs + i), xsimd::select(ok, v, -inf)).store_unaligned(maxs + i);
      if (!xsimd::all(ok))
        for (std::size_t k = i; k < i + W; ++k) nonfinite += !detail::is_finite(x[k]);
    }
  }
#endif
  for (; i < n; ++i) {
    const float v = x[i];
    if (!detail::is_finite(v)) {
      ++nonfinite;
      continue;
    }
    mins[i] = v < mins[i] ? v : mins[i];
    maxs[i] = v > maxs[i] ? v : maxs[i];
  }
}

}  // namespace amctq::kernels

namespace amctq {

/// Min / max of the finite values of x and the count of NaN / inf values.
template <class Arch = kernels::default_arch, class T, std::size_t R>
value_range minmax(const tensor_view<T, R>& x) {
  static_assert(std::is_same_v<std::remove_const_t<T>, float>, "minmax reads float tensors.");
  value_range r;
  const auto plan = kernels::detail::make_row_plan<R>(x.extents(), x.strides(), x.strides(), per_tensor);
  const std::ptrdiff_t n = plan.row_length(), s = plan.stride_a[plan.dims - 1];
  kernels::detail::for_each_row(plan, [&](std::ptrdiff_t off, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t) {
    const float* row = x.data_handle() + off;
    if (s == 1) {
      kernels::minmax_row(Arch{}, row, static_cast<std::size_t>(n), r);
      return;
    }
    for (std::ptrdiff_t i = 0; i < n; ++i) kernels::minmax_row(kernels::scalar_arch{}, row + i * s, 1, r);
  });
  return r;
}

/// Largest |v| over the finite values of x (0 when there are none).
template <class Arch = kernels::default_arch, class T, std::size_t R>
float absmax(const tensor_view<T, R>& x) {
  return minmax<Arch>(x).absmax();
}

/// Per-channel min / max along `axis`.
/// @throws amctq::error if axis is out of range.
template <class Arch = kernels::default_arch, class T, std::size_t R>
channel_ranges minmax_per_channel(const tensor_view<T, R>& x, int axis) {
  static_assert(std::is_same_v<std::remove_const_t<T>, float>, "minmax_per_channel reads float tensors.");
  AMCTQ_CHECK(axis >= 0 && axis < static_cast<int>(R), errc::invalid_argument, "minmax_per_channel", "axis ", axis,
              " is out of range for a tensor of rank ", R);
  const auto channels = static_cast<std::size_t>(x.extent(static_cast<std::size_t>(axis)));
  channel_ranges out;
  out.min.assign(channels, std::numeric_limits<float>::infinity());
  out.max.assign(channels, -std::numeric_limits<float>::infinity());
  const auto plan = kernels::detail::make_row_plan<R>(x.extents(), x.strides(), x.strides(), axis);
  const std::ptrdiff_t n = plan.row_length(), s = plan.stride_a[plan.dims - 1];
  kernels::detail::for_each_row(plan, [&](std::ptrdiff_t off, std::ptrdiff_t, std::ptrdiff_t c, std::ptrdiff_t) {
    const float* row = x.data_handle() + off;
    if (plan.channel_is_row()) {
      if (s == 1) {
        kernels::minmax_lanes(Arch{}, row, static_cast<std::size_t>(n), out.min.data(), out.max.data(), out.nonfinite);
        return;
      }
      for (std::ptrdiff_t i = 0; i < n; ++i)
        kernels::minmax_lanes(kernels::scalar_arch{}, row + i * s, 1, &out.min[i], &out.max[i], out.nonfinite);
      return;
    }
    value_range r{out.min[c], out.max[c], 0};
    if (s == 1) {
      kernels::minmax_row(Arch{}, row, static_cast<std::size_t>(n), r);
    } else {
      for (std::ptrdiff_t i = 0; i < n; ++i) kernels::minmax_row(kernels::scalar_arch{}, row + i * s, 1, r);
    }
    out.min[c] = r.min;
    out.max[c] = r.max;
    out.nonfinite += r.nonfinite;
  });
  return out;
}

}  // namespace amctq

#endif  // AMCTQ_KERNELS_REDUCE_HPP
