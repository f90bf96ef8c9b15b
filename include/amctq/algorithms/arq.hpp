// ARQ (AMCT arq_quantize; docs/algorithms/weights.md, "ARQ"): min/max weight quantization per
// output channel or per tensor, any width 2..16, symmetric by default (AMCT's 127/128 rule) or
// asymmetric; and the int32 bias quantization round(b / (s_w * s_d)) that goes with it.
#ifndef AMCTQ_ALGORITHMS_ARQ_HPP
#define AMCTQ_ALGORITHMS_ARQ_HPP

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/error.hpp"
#include "amctq/kernels/dequantize.hpp"
#include "amctq/kernels/fake_quantize.hpp"
#include "amctq/kernels/quantize.hpp"
#include "amctq/kernels/reduce.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/quant_spec.hpp"
#include "amctq/rounding.hpp"

namespace amctq {

struct arq_options {
  int bits = 8;             ///< 2..16 (AMCT ships 4, 6, 7, 8)
  bool per_channel = true;  ///< one scale per output channel (AMCT: Conv, ConvTranspose)
  bool symmetric = true;    ///< AMCT weights are always symmetric (offset_w = 0)
  preset how = preset::amct;
  scale_type scale_kind = scale_type::float32;  ///< power_of_two: each scale rounded up to 2^k
  bool narrow_range = false;  ///< drop the lowest code (int8: [-127, 127])
};

/// Min and max of each output channel of w (in output-channel order, as arq_params' scales).
/// @throws amctq::error for non-finite weights.
template <class T, std::size_t R>
std::pair<std::vector<float>, std::vector<float>> weight_channel_ranges(const tensor_view<T, R>& w, const weight_layout& L,
                                                                        const char* where = "weight_channel_ranges") {
  check_layout_for(w, L, where);
  std::vector<float> mins(static_cast<std::size_t>(L.out_channels())), maxs(mins.size());
  for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
    const auto r = minmax_per_channel(tensor_view<const float, 3>(group_view(w.data_handle(), L, g)), 0);
    AMCTQ_CHECK(r.nonfinite == 0, errc::non_finite, where, "weights (", to_string(L.kind), ") hold ", r.nonfinite,
                " NaN or infinite values in group ", g);
    for (std::ptrdiff_t o = 0; o < L.out_per_group; ++o) {
      mins[static_cast<std::size_t>(g * L.out_per_group + o)] = r.min[static_cast<std::size_t>(o)];
      maxs[static_cast<std::size_t>(g * L.out_per_group + o)] = r.max[static_cast<std::size_t>(o)];
    }
  }
  return {std::move(mins), std::move(maxs)};
}

/// Scales (and zero points) of weight w under opt. Per channel there is one entry per output
/// channel of L in output-channel order, with params.axis = L.out_axis; for a grouped
/// ConvTranspose that order spans group and axis 1, so apply them with arq_fake_quantize /
/// arq_quantize, which follow the layout.
/// @throws amctq::error for non-finite weights, a bad width, or a layout that is not w's.
template <class T, std::size_t R>
quant_params arq_params(const tensor_view<T, R>& w, const weight_layout& L, const arq_options& opt = {}) {
  constexpr const char* where = "arq_params";
  check_layout_for(w, L, where);
  quant_spec spec;
  spec.bits = opt.bits;
  spec.symmetric = opt.symmetric;
  spec.axis = opt.per_channel ? L.out_axis : per_tensor;
  spec.scale_kind = opt.scale_kind;
  spec.narrow_range = opt.narrow_range;
  validate(spec, where);
  if (!opt.per_channel) {
    const value_range r = minmax(tensor_view<const float, R>(w));
    AMCTQ_CHECK(r.nonfinite == 0, errc::non_finite, where, "weights (", to_string(L.kind), ") hold ", r.nonfinite,
                " NaN or infinite values");
    return params_from_range(r.min, r.max, spec, opt.how);
  }
  const auto [mins, maxs] = weight_channel_ranges(w, L, where);
  return params_from_range(mins, maxs, spec, opt.how);
}

namespace detail {

// The params of group g as axis-0 params of its [out, in, spatial] group view.
inline quant_params group_params(const quant_params& p, const weight_layout& L, std::ptrdiff_t g) {
  if (!p.is_per_channel()) return p;
  quant_params q;
  q.qmin = p.qmin;
  q.qmax = p.qmax;
  q.axis = 0;
  const auto first = static_cast<std::size_t>(g * L.out_per_group), n = static_cast<std::size_t>(L.out_per_group);
  q.scale.assign(p.scale.begin() + static_cast<std::ptrdiff_t>(first),
                 p.scale.begin() + static_cast<std::ptrdiff_t>(first + n));
  q.zero_point.assign(p.zero_point.begin() + static_cast<std::ptrdiff_t>(first),
                      p.zero_point.begin() + static_cast<std::ptrdiff_t>(first + n));
  return q;
}

// The axes of L's group view by decreasing stride (perm[k]: the view's axis at position k), so
// that rows run along memory: a MatMul weight [K, N] has its output channels innermost, and its
// [out, in, spatial] view would walk it column by column (about 0.45 s per 4096x4096 weight).
inline std::array<std::size_t, 3> memory_order(const weight_layout& L) {
  const std::array<std::ptrdiff_t, 3> stride{L.stride_out, L.stride_in, L.stride_spatial};
  std::array<std::size_t, 3> perm{0, 1, 2};
  std::stable_sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) { return stride[a] > stride[b]; });
  return perm;
}

/// Group g of a weight (its view v under L) with the axes in memory_order: extents, strides and
/// the group's params, their channel axis moved along. Quantizing element by element gives the
/// same values in any order; in this one the innermost loop runs along contiguous memory.
struct ordered_group {
  std::array<std::ptrdiff_t, 3> extent{}, stride{};
  quant_params params;
};
template <class T>
ordered_group in_memory_order(const tensor_view<T, 3>& v, const weight_layout& L, const quant_params& p,
                              std::ptrdiff_t g) {
  const std::array<std::size_t, 3> perm = memory_order(L);
  ordered_group o;
  o.params = group_params(p, L, g);
  for (std::size_t k = 0; k < 3; ++k) {
    o.extent[k] = v.extent(perm[k]);
    o.stride[k] = v.stride(perm[k]);
    if (perm[k] == 0 && o.params.is_per_channel()) o.params.axis = static_cast<int>(k);
  }
  return o;
}

inline void check_weight_params(const quant_params& p, const weight_layout& L, const char* where) {
  validate(p, where);
  AMCTQ_CHECK(!p.is_per_channel() || static_cast<std::ptrdiff_t>(p.channels()) == L.out_channels(),
              errc::shape_mismatch, where, "params have ", p.channels(), " channels but the ", to_string(L.kind),
              " weight has ", L.out_channels(), " output channels");
}

}  // namespace detail

/// Replaces w by its quantize-dequantize image under p (from arq_params) — the weights the
/// calibration model runs with.
template <std::size_t R>
void arq_fake_quantize(const tensor_view<float, R>& w, const weight_layout& L, const quant_params& p,
                       round_mode mode = round_mode::half_even) {
  constexpr const char* where = "arq_fake_quantize";
  check_layout_for(w, L, where);
  detail::check_weight_params(p, L, where);
  for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
    const auto v = group_view(w.data_handle(), L, g);
    const detail::ordered_group o = detail::in_memory_order(v, L, p, g);
    const tensor_view<float, 3> ordered(v.data_handle(), o.extent, o.stride);
    fake_quantize(tensor_view<const float, 3>(ordered), ordered, o.params, mode);
  }
}

/// Integer codes of w under p, written to q at the same element offsets as w (so q has w's
/// strides; for a dense w, q is dense too).
template <class Q, std::size_t R>
void arq_quantize(const tensor_view<const float, R>& w, const weight_layout& L, const quant_params& p, Q* q,
                  round_mode mode = round_mode::half_even) {
  constexpr const char* where = "arq_quantize";
  check_layout_for(w, L, where);
  detail::check_weight_params(p, L, where);
  AMCTQ_CHECK(q != nullptr, errc::invalid_argument, where, "output q is null");
  for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
    const auto v = group_view(w.data_handle(), L, g);
    const detail::ordered_group o = detail::in_memory_order(v, L, p, g);
    quantize(tensor_view<const float, 3>(v.data_handle(), o.extent, o.stride),
             tensor_view<Q, 3>(q + g * L.group_offset, o.extent, o.stride), o.params, mode);
  }
}

/// Writes into w the float image of codes q (laid out like w, as arq_quantize writes them)
/// under p: what DequantizeLinear gives for codes changed after quantization (NUQ's remapped
/// levels), where re-quantizing the float weights would not reproduce them.
template <class Q, std::size_t R>
void arq_dequantize(const Q* q, const tensor_view<float, R>& w, const weight_layout& L, const quant_params& p) {
  constexpr const char* where = "arq_dequantize";
  check_layout_for(w, L, where);
  detail::check_weight_params(p, L, where);
  AMCTQ_CHECK(q != nullptr, errc::invalid_argument, where, "codes q are null");
  for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
    const auto v = group_view(w.data_handle(), L, g);
    const detail::ordered_group o = detail::in_memory_order(v, L, p, g);
    dequantize(tensor_view<const Q, 3>(q + g * L.group_offset, o.extent, o.stride),
               tensor_view<float, 3>(v.data_handle(), o.extent, o.stride), o.params);
  }
}

/// int32 bias of a quantized layer: round(b[c] / (s_w[c] * s_d)) in double, per output
/// channel (s_w per tensor broadcasts). A value outside int32 is an overflow error naming
/// `layer` (AMCT's remedy: skip that layer).
inline std::vector<std::int32_t> quantize_bias(const float* bias, std::size_t n, float scale_d,
                                               const quant_params& weight_params, const std::string& layer,
                                               round_mode mode = round_mode::half_even) {
  constexpr const char* where = "quantize_bias";
  AMCTQ_CHECK(bias != nullptr || n == 0, errc::invalid_argument, where, "layer '", layer, "': bias is null");
  AMCTQ_CHECK(std::isfinite(scale_d) && scale_d > 0.0f, errc::invalid_argument, where, "layer '", layer,
              "': scale_d must be finite and > 0, got ", scale_d);
  validate(weight_params, where);
  AMCTQ_CHECK(weight_params.channels() == 1 || weight_params.channels() == n, errc::shape_mismatch, where, "layer '",
              layer, "': bias has ", n, " entries but the weight params have ", weight_params.channels(), " channels");
  std::vector<std::int32_t> out(n);
  for (std::size_t c = 0; c < n; ++c) {
    AMCTQ_CHECK(std::isfinite(bias[c]), errc::non_finite, where, "layer '", layer, "': bias[", c, "] is ", bias[c]);
    const double s = static_cast<double>(weight_params.scale[weight_params.channels() == 1 ? 0 : c]) * scale_d;
    const double v = static_cast<double>(bias[c]) / s;
    double r = std::trunc(v);
    const double frac = std::fabs(v - r);
    if (frac > 0.5 || (frac == 0.5 && (mode == round_mode::half_away || (mode == round_mode::half_up && v > 0) ||
                                       (mode == round_mode::half_down && v < 0) ||
                                       (mode == round_mode::half_even && std::fmod(r, 2.0) != 0.0))))
      r += v < 0 ? -1.0 : 1.0;
    AMCTQ_CHECK(r >= -2147483648.0 && r <= 2147483647.0, errc::overflow, where, "layer '", layer, "': bias[", c,
                "] = ", bias[c], " / (s_w * s_d = ", s, ") = ", v,
                " does not fit int32; skip this layer from quantization or raise its scales");
    out[c] = static_cast<std::int32_t>(r);
  }
  return out;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_ARQ_HPP
