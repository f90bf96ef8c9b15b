// Learned-step fake quantization for QAT (docs/qat.md): the backward passes of LSQ (learned
// scale), LSQ+ (learned scale and offset) and AMCT's ULQ (learned clip_min / clip_max), per
// tensor or per channel along any axis. The forward is amctq::fake_quantize; each backward runs
// that same fused kernel once with its straight-through mask, so "inside the grid" means
// exactly what the forward did, then one pass turns the mask and x̂ into dx and the parameter
// gradients (sums in double, one per channel).
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

// The shared backward: dx <- x̂ and the STE mask by the fused kernel, then for each element
// term(channel, inside, x, x̂, dy) and dx <- dy where inside, 0 outside.
template <class Arch, std::size_t R, class Term>
void learned_backward(const char* where, const tensor_view<const float, R>& x, const tensor_view<const float, R>& dy,
                      const quant_params& p, const tensor_view<float, R>& dx, round_mode mode, Term&& term) {
  check_same_extents(x, dy, where, "x", "dy");
  check_same_extents(x, dx, where, "x", "dx");
  AMCTQ_CHECK(x.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(), errc::invalid_argument, where,
              "x, dy and dx must be contiguous (row-major)");
  AMCTQ_CHECK(dx.data_handle() != dy.data_handle() || x.size() == 0, errc::invalid_argument, where,
              "dx must not alias dy (dx receives x̂ first)");
  std::vector<std::uint8_t> mask(static_cast<std::size_t>((x.size() + 7) / 8));
  fake_quantize<Arch>(x, dx, p, mode, mask.data());
  const channel_split sp = split_at<R>(x.extents(), p.axis);
  const float* xs = x.data_handle();
  const float* gs = dy.data_handle();
  float* out = dx.data_handle();
  std::ptrdiff_t i = 0;
  bool nan_x = false;
  for (std::ptrdiff_t o = 0; o < sp.outer; ++o)
    for (std::ptrdiff_t c = 0; c < sp.channels; ++c)
      for (std::ptrdiff_t k = 0; k < sp.inner; ++k, ++i) {
        const bool inside = (mask[static_cast<std::size_t>(i >> 3)] >> (i & 7)) & 1u;
        const float g = gs[i];
        nan_x = nan_x || std::isnan(xs[i]);
        term(static_cast<std::size_t>(c), inside, xs[i], out[i], g);
        out[i] = inside ? g : 0.0f;
      }
  AMCTQ_CHECK(!nan_x, errc::non_finite, where, "x holds NaN");
}

inline void check_nonfinite_grad(const std::vector<double>& acc, const char* where, const char* what) {
  for (std::size_t c = 0; c < acc.size(); ++c)
    AMCTQ_CHECK(std::isfinite(acc[c]), errc::non_finite, where, "the gradient of ", what, "[", c,
                "] is not finite (NaN or inf in x or dy)");
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
  constexpr const char* where = "lsq_backward";
  std::vector<double> ds(p.scale.size(), 0.0), dz(p.scale.size(), 0.0);
  detail::learned_backward<Arch>(where, x, dy, p, dx, mode, [&](std::size_t c, bool inside, float xv, float xh, float g) {
    const float s = p.scale[c];
    if (inside) {
      ds[c] += static_cast<double>(g) * static_cast<double>((xh - xv) / s);
      return;
    }
    const std::int32_t edge = xv < xh ? p.qmin : p.qmax;
    ds[c] += static_cast<double>(g) * static_cast<double>(edge - p.zero_point[c]);
    dz[c] -= static_cast<double>(g) * static_cast<double>(s);
  });
  detail::check_nonfinite_grad(ds, where, "scale");
  for (std::size_t c = 0; c < ds.size(); ++c) {
    dscale[c] = static_cast<float>(ds[c] * grad_scale);
    if (dzero) dzero[c] = static_cast<float>(dz[c] * grad_scale);
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
  std::vector<double> dmin(p.scale.size(), 0.0), dmax(p.scale.size(), 0.0);
  detail::learned_backward<Arch>(where, x, dy, p, dx, mode, [&](std::size_t c, bool inside, float xv, float xh, float g) {
    const double gd = g;
    if (inside) {
      const double e = static_cast<double>((xh - xv) / p.scale[c]) / steps;
      dmax[c] += gd * e;
      dmin[c] -= gd * e;
    } else if (xv > xh) {
      dmax[c] += gd * (e_hi[c] + 1.0);
      dmin[c] -= gd * e_hi[c];
    } else {
      dmax[c] += gd * e_lo[c];
      dmin[c] += gd * (1.0 - e_lo[c]);
    }
  });
  detail::check_nonfinite_grad(dmax, where, "clip_max");
  for (std::size_t c = 0; c < dmax.size(); ++c) {
    dclip_max[c] = static_cast<float>(dmax[c] * grad_scale);
    dclip_min[c] = fixed_min ? 0.0f : static_cast<float>(dmin[c] * grad_scale);
  }
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_LSQ_HPP
