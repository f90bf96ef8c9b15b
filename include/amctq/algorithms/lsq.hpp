// Learned-step fake quantization for QAT (docs/qat.md): the backward passes of LSQ (learned
// scale), LSQ+ (learned scale and offset) and AMCT's ULQ (learned clip_min / clip_max), per
// tensor or per channel along any axis. The forward is amctq::fake_quantize; each backward is
// one fused SIMD pass over x and dy built from that kernel's own grid functions
// (kernels/detail/grid.hpp: the code whose range its STE mask stores, and x̂), so "inside the
// grid" means exactly what the forward did. The pass writes dx and three sums per channel
// (Σ dy·(x̂ − x) inside, Σ dy below, Σ dy above; float per 256 batches, then double), from which
// each method's parameter gradients follow.
//
//   LSQ:  dx = dy·1[inside];  ds = g·Σ dy·{(x̂ − x)/s inside, qmin − z below, qmax − z above}
//   LSQ+: dz = g·Σ dy·{0 inside, −s outside}   (x̂ = (q − z)·s, round treated as identity)
//   ULQ:  s = (cmax − cmin)/(2^b − 1), z = round(−cmin/s) + qmin (AMCT's asymmetric formula);
//         e(v) = (round(v) − v)/(2^b − 1) with v = x/s inside, cmax/s above, cmin/s below;
//         dcmax = g·Σ dy·(e + 1[above]),  dcmin = g·Σ dy·(1[below] − e)  (0 with fixed_min).
//
// Inputs are contiguous row-major views (PyTorch's .contiguous(), numpy C order).
#ifndef AMCTQ_ALGORITHMS_LSQ_HPP
#define AMCTQ_ALGORITHMS_LSQ_HPP

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/kernels/detail/checks.hpp"
#include "amctq/kernels/detail/grid.hpp"
#include "amctq/kernels/detail/simd.hpp"
#include "amctq/kernels/fake_quantize.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/quant_spec.hpp"
#include "amctq/rounding.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

/// LSQ's gradient scale 1/sqrt(n · qmax) for n elements per scale (Esser et al., 2020).
inline float lsq_grad_scale(std::ptrdiff_t n, std::int32_t qmax) {
  const double d = static_cast<double>(n) * static_cast<double>(qmax > 0 ? qmax : 1);
  return d > 0.0 ? static_cast<float>(1.0 / std::sqrt(d)) : 1.0f;
}

/// ULQ's params from learned clips (AMCT ulq_quantize): the asymmetric AMCT formula on
/// [min(clip_min, 0), max(clip_max, 0)] (clip_min taken as 0 with fixed_min), per tensor, or per
/// channel along `axis` with one clip pair per channel.
/// @throws amctq::error for a bad width, mismatched clip counts or non-finite clips.
inline quant_params ulq_params(const std::vector<float>& clip_min, const std::vector<float>& clip_max, int bits,
                               bool fixed_min, int axis = per_tensor) {
  quant_spec spec;
  spec.bits = bits;
  spec.symmetric = false;
  spec.axis = axis;
  validate(spec, "ulq_params");
  AMCTQ_CHECK(clip_min.size() == clip_max.size() && !clip_max.empty(), errc::shape_mismatch, "ulq_params",
              "clip_min has ", clip_min.size(), " entries and clip_max ", clip_max.size());
  AMCTQ_CHECK(axis != per_tensor || clip_max.size() == 1, errc::shape_mismatch, "ulq_params",
              "per-tensor ULQ takes one clip pair, got ", clip_max.size());
  std::vector<float> lo(clip_min);
  if (fixed_min) lo.assign(lo.size(), 0.0f);
  if (axis == per_tensor) return params_from_range(lo[0], clip_max[0], spec);
  return params_from_range(lo, clip_max, spec);
}

namespace detail {

struct channel_split {
  std::ptrdiff_t outer = 1, channels = 1, inner = 1;
};

template <std::size_t R>
channel_split split_at(const std::array<std::ptrdiff_t, R>& e, int axis) {
  channel_split s;
  if (axis < 0) {
    for (std::size_t r = 0; r < R; ++r) s.inner *= e[r];
    return s;
  }
  for (std::size_t r = 0; r < R; ++r) {
    const auto a = static_cast<std::size_t>(axis);
    if (r < a) s.outer *= e[r];
    else if (r == a) s.channels = e[r];
    else s.inner *= e[r];
  }
  return s;
}

// Per-row sums of one fused pass: inside = Σ dy·(x̂ − x) where the code lies on the grid,
// below / above = Σ dy where it lies under qmin / over qmax.
struct grad_sums {
  double inside = 0.0, below = 0.0, above = 0.0;
};

// One row of n contiguous elements on one grid (s, zp): dx <- dy inside, 0 outside, and the
// sums. The inside / below / above decision is the fused kernel's own (unclamped_code against
// [lo, hi], the expression its STE mask stores), x̂ its fake_quantized. dx may alias x or dy.
template <round_mode M, class Arch>
grad_sums learned_grad_row(Arch, const float* x, const float* dy, float* dx, std::size_t n, float s, float zp, float lo,
                           float hi, bool& nan_x) noexcept {
  namespace kd = kernels::detail;
  grad_sums sum;
  std::size_t i = 0;
#if AMCTQ_HAS_XSIMD
  if constexpr (kd::is_simd_arch<Arch>) {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    const B bs(s), bz(zp), blo(lo), bhi(hi), zero(0.0f);
    constexpr std::size_t flush = 256;  // batches summed in float before they go into the double sums
    while (i + W <= n) {
      B a_in(0.0f), a_lo(0.0f), a_hi(0.0f);
      auto nan = zero != zero;  // all lanes false
      for (std::size_t k = 0; k < flush && i + W <= n; ++k, i += W) {
        const B xv = B::load_unaligned(x + i), g = B::load_unaligned(dy + i);
        const B r = kd::unclamped_code<M>(xv, bs, bz);
        const auto inside = (r >= blo) & (r <= bhi);
        const B xh = (kd::clamp_nan_low(r, blo, bhi) - bz) * bs;
        a_in += xsimd::select(inside, g * (xh - xv), zero);
        a_lo += xsimd::select(r < blo, g, zero);
        a_hi += xsimd::select(r > bhi, g, zero);
        nan = nan | (xv != xv);
        xsimd::select(inside, g, zero).store_unaligned(dx + i);
      }
      sum.inside += static_cast<double>(xsimd::hadd(a_in));
      sum.below += static_cast<double>(xsimd::hadd(a_lo));
      sum.above += static_cast<double>(xsimd::hadd(a_hi));
      nan_x = nan_x || xsimd::any(nan);
    }
  }
#endif
  for (; i < n; ++i) {
    const float xv = x[i], g = dy[i];
    const float r = kd::unclamped_code<M>(xv, s, zp);
    const bool inside = r >= lo && r <= hi;
    const float xh = (kd::clamp_nan_low(r, lo, hi) - zp) * s;
    if (inside) sum.inside += static_cast<double>(g * (xh - xv));
    if (r < lo) sum.below += static_cast<double>(g);
    if (r > hi) sum.above += static_cast<double>(g);
    nan_x = nan_x || std::isnan(xv);
    dx[i] = inside ? g : 0.0f;
  }
  return sum;
}

// The shared backward: dx, and the sums per channel of p (one row per run of `inner` elements).
template <class Arch, std::size_t R>
std::vector<grad_sums> learned_backward(const char* where, const tensor_view<const float, R>& x,
                                        const tensor_view<const float, R>& dy, const quant_params& p,
                                        const tensor_view<float, R>& dx, round_mode mode) {
  check_same_extents(x, dy, where, "x", "dy");
  check_same_extents(x, dx, where, "x", "dx");
  kernels::detail::check_params_for(p, x, where);
  AMCTQ_CHECK(x.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(), errc::invalid_argument, where,
              "x, dy and dx must be contiguous (row-major)");
  const channel_split sp = split_at<R>(x.extents(), p.axis);
  std::vector<grad_sums> sums(p.scale.size());
  const auto lo = static_cast<float>(p.qmin), hi = static_cast<float>(p.qmax);
  bool nan_x = false;
  with_round_mode(mode, [&](auto m) {
    constexpr round_mode M = decltype(m)::value;
    std::ptrdiff_t at = 0;
    for (std::ptrdiff_t o = 0; o < sp.outer; ++o)
      for (std::ptrdiff_t c = 0; c < sp.channels; ++c, at += sp.inner) {
        const auto k = static_cast<std::size_t>(c);
        const grad_sums r = learned_grad_row<M>(Arch{}, x.data_handle() + at, dy.data_handle() + at,
                                                dx.data_handle() + at, static_cast<std::size_t>(sp.inner), p.scale[k],
                                                static_cast<float>(p.zero_point[k]), lo, hi, nan_x);
        sums[k].inside += r.inside;
        sums[k].below += r.below;
        sums[k].above += r.above;
      }
  });
  AMCTQ_CHECK(!nan_x, errc::non_finite, where, "x holds NaN");
  return sums;
}

}  // namespace detail

/// LSQ / LSQ+ backward of x̂ = fake_quantize(x, p): dx (same extents as x, not aliasing dy),
/// dscale[c] and, when dzero is not null, dzero[c] for each of p.channels() channels, every
/// parameter gradient multiplied by grad_scale (lsq_grad_scale for LSQ's g; 1 for plain STE).
/// @throws amctq::error on invalid params, mismatched or non-contiguous views, or a
/// non-finite parameter gradient (NaN / inf in x or dy).
template <class Arch = kernels::default_arch, std::size_t R>
void lsq_backward(const tensor_view<const float, R>& x, const tensor_view<const float, R>& dy, const quant_params& p,
                  const tensor_view<float, R>& dx, float* dscale, float* dzero, float grad_scale = 1.0f,
                  round_mode mode = round_mode::half_even) {
  const auto sums = detail::learned_backward<Arch>("lsq_backward", x, dy, p, dx, mode);
  for (std::size_t c = 0; c < sums.size(); ++c) {
    const detail::grad_sums& t = sums[c];
    const double sc = p.scale[c], z = p.zero_point[c];
    const double ds = t.inside / sc + t.below * (p.qmin - z) + t.above * (p.qmax - z);
    AMCTQ_CHECK(std::isfinite(ds), errc::non_finite, "lsq_backward", "the gradient of scale[", c,
                "] is not finite (NaN or inf in x or dy)");
    dscale[c] = static_cast<float>(ds * grad_scale);
    if (dzero) dzero[c] = static_cast<float>(-sc * (t.below + t.above) * grad_scale);
  }
}

/// ULQ backward (AMCT ulq_quantize, learned clip_min / clip_max) of x̂ = fake_quantize(x,
/// ulq_params(clip_min, clip_max, bits, fixed_min, axis)): dx, and dclip_min[c], dclip_max[c]
/// per clip pair, times grad_scale; dclip_min is 0 with fixed_min.
/// @throws amctq::error as lsq_backward and ulq_params do.
template <class Arch = kernels::default_arch, std::size_t R>
void ulq_backward(const tensor_view<const float, R>& x, const tensor_view<const float, R>& dy,
                  const std::vector<float>& clip_min, const std::vector<float>& clip_max, int bits, bool fixed_min,
                  int axis, const tensor_view<float, R>& dx, float* dclip_min, float* dclip_max,
                  float grad_scale = 1.0f, round_mode mode = round_mode::half_even) {
  constexpr const char* where = "ulq_backward";
  const quant_params p = ulq_params(clip_min, clip_max, bits, fixed_min, axis);
  const double steps = static_cast<double>(p.qmax - p.qmin);
  auto e_of = [&](double v) { return (static_cast<double>(std::nearbyint(v)) - v) / steps; };
  std::vector<double> e_hi(p.scale.size()), e_lo(p.scale.size());
  for (std::size_t c = 0; c < p.scale.size(); ++c) {
    e_hi[c] = e_of(static_cast<double>(clip_max[c] / p.scale[c]));
    e_lo[c] = e_of(static_cast<double>((fixed_min ? 0.0f : clip_min[c]) / p.scale[c]));
  }
  const auto sums = detail::learned_backward<Arch>(where, x, dy, p, dx, mode);
  for (std::size_t c = 0; c < sums.size(); ++c) {
    const detail::grad_sums& t = sums[c];
    const double e_in = t.inside / (static_cast<double>(p.scale[c]) * steps);
    const double dmax = e_in + t.above * (e_hi[c] + 1.0) + t.below * e_lo[c];
    const double dmin = -e_in - t.above * e_hi[c] + t.below * (1.0 - e_lo[c]);
    AMCTQ_CHECK(std::isfinite(dmax) && std::isfinite(dmin), errc::non_finite, where, "the gradient of the clips[", c,
                "] is not finite (NaN or inf in x or dy)");
    dclip_max[c] = static_cast<float>(dmax * grad_scale);
    dclip_min[c] = fixed_min ? 0.0f : static_cast<float>(dmin * grad_scale);
  }
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_LSQ_HPP
