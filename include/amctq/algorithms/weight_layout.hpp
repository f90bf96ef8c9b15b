// weight_layout: where the output and input channels of a layer's weight tensor live, for
// Conv (1d/2d/3d, grouped, depthwise), ConvTranspose (grouped), Gemm (transB or not) and
// MatMul, as one descriptor every weight algorithm reads; plus the per-channel traversals
// (absmax, scaling) they share.
//
// Every layout is a set of G groups, each a 3-D strided block [out_per_group, in_per_group,
// spatial] starting group_offset elements after the previous one. Output channel = g *
// out_per_group + o, input (activation) channel = g * in_per_group + i. This covers the cases
// where no single tensor axis holds a channel: ConvTranspose with groups (weight [I, O/g, k..],
// output channel = group and axis 1 together) and the input channels of a grouped Conv.
#ifndef AMCTQ_ALGORITHMS_WEIGHT_LAYOUT_HPP
#define AMCTQ_ALGORITHMS_WEIGHT_LAYOUT_HPP

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/kernels/reduce.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

enum class weight_kind { conv, conv_transpose, gemm, matmul };

/// Which side of a layer a per-channel quantity belongs to.
enum class channel_side { output, input };

inline const char* to_string(weight_kind k) noexcept {
  switch (k) {
    case weight_kind::conv: return "Conv";
    case weight_kind::conv_transpose: return "ConvTranspose";
    case weight_kind::gemm: return "Gemm";
    case weight_kind::matmul: return "MatMul";
  }
  return "?";
}

struct weight_layout {
  weight_kind kind = weight_kind::conv;
  std::ptrdiff_t groups = 1;
  std::ptrdiff_t out_per_group = 0;
  std::ptrdiff_t in_per_group = 0;
  std::ptrdiff_t spatial = 1;        ///< kernel taps (Conv), batch elements (MatMul), else 1
  std::ptrdiff_t group_offset = 0;   ///< elements from group g to group g + 1
  std::ptrdiff_t stride_out = 0;
  std::ptrdiff_t stride_in = 0;
  std::ptrdiff_t stride_spatial = 1;
  std::ptrdiff_t size = 0;           ///< element count of the tensor described
  int out_axis = 0;                  ///< tensor axis holding (part of) the output channel
  int in_axis = 1;                   ///< tensor axis holding (part of) the input channel

  std::ptrdiff_t out_channels() const noexcept { return groups * out_per_group; }
  std::ptrdiff_t in_channels() const noexcept { return groups * in_per_group; }
  std::ptrdiff_t channels(channel_side s) const noexcept {
    return s == channel_side::output ? out_channels() : in_channels();
  }
  /// True when output channel c is exactly index c of tensor axis out_axis, so per-channel
  /// params can be handed to the tensor kernels (and to ONNX per-axis QDQ) as they are.
  bool out_channel_is_axis() const noexcept { return kind != weight_kind::conv_transpose || groups == 1; }
};

namespace detail {

// Folds the dims listed in [first, last) into one (extent, stride); they must be mergeable,
// i.e. row-major contiguous among themselves, which holds for any dense weight tensor.
template <std::size_t R>
void fold_dims(const std::array<std::ptrdiff_t, R>& ext, const std::array<std::ptrdiff_t, R>& str, std::size_t first,
               std::size_t last, std::ptrdiff_t& extent, std::ptrdiff_t& stride, const char* where) {
  extent = 1;
  stride = 1;
  bool have = false;
  for (std::size_t r = last; r-- > first;) {
    if (ext[r] == 1) continue;
    if (!have) {
      stride = str[r];
      have = true;
    } else {
      AMCTQ_CHECK(str[r] == stride * extent, errc::invalid_argument, where, "weight dims ", first, "..", last - 1,
                  " are not contiguous among themselves (stride ", str[r], " at dim ", r, ")");
    }
    extent *= ext[r];
  }
}

template <class T, std::size_t R>
void check_weight_view(const tensor_view<T, R>& w, const char* where) {
  AMCTQ_CHECK(w.data_handle() != nullptr || w.size() == 0, errc::invalid_argument, where, "weight data is null");
  for (std::size_t r = 0; r < R; ++r)
    AMCTQ_CHECK(w.extent(r) > 0, errc::invalid_argument, where, "weight extent ", r, " is ", w.extent(r),
                "; every extent must be positive");
}

// Conv and ConvTranspose weights share one shape: axis 0 is split into the groups, axis 1
// holds one group's channels of the other side, the rest are kernel taps. Only which side is
// the output differs (axis 0 for Conv, axis 1 for ConvTranspose).
template <class T, std::size_t R>
weight_layout grouped_weight_layout(const tensor_view<T, R>& w, std::ptrdiff_t groups, weight_kind kind,
                                    const char* where) {
  check_weight_view(w, where);
  const bool out_first = kind == weight_kind::conv;
  AMCTQ_CHECK(groups >= 1 && w.extent(0) % groups == 0, errc::shape_mismatch, where, "groups = ", groups,
              " does not divide the ", w.extent(0), out_first ? " output channels" : " input channels");
  weight_layout L;
  L.kind = kind;
  L.groups = groups;
  const std::ptrdiff_t per_group = w.extent(0) / groups;
  (out_first ? L.out_per_group : L.in_per_group) = per_group;
  (out_first ? L.in_per_group : L.out_per_group) = w.extent(1);
  (out_first ? L.stride_out : L.stride_in) = w.stride(0);
  (out_first ? L.stride_in : L.stride_out) = w.stride(1);
  L.group_offset = per_group * w.stride(0);
  fold_dims(w.extents(), w.strides(), 2, R, L.spatial, L.stride_spatial, where);
  L.size = w.size();
  L.out_axis = out_first ? 0 : 1;
  L.in_axis = out_first ? 1 : 0;
  return L;
}

}  // namespace detail

/// Conv weight [O, I/groups, k...] (rank 3: Conv1d, 4: Conv2d, 5: Conv3d). Depthwise is
/// groups == O == input channels.
template <class T, std::size_t R>
weight_layout conv_weight_layout(const tensor_view<T, R>& w, std::ptrdiff_t groups = 1) {
  static_assert(R >= 3 && R <= 5, "Conv weights have rank 3 (1d), 4 (2d) or 5 (3d).");
  return detail::grouped_weight_layout(w, groups, weight_kind::conv, "conv_weight_layout");
}

/// ConvTranspose weight [I, O/groups, k...] (ONNX and PyTorch order): output channel is
/// group * (O/groups) + index on axis 1; input channel is axis 0.
template <class T, std::size_t R>
weight_layout conv_transpose_weight_layout(const tensor_view<T, R>& w, std::ptrdiff_t groups = 1) {
  static_assert(R >= 3 && R <= 5, "ConvTranspose weights have rank 3, 4 or 5.");
  return detail::grouped_weight_layout(w, groups, weight_kind::conv_transpose, "conv_transpose_weight_layout");
}

/// Gemm B: [K, N] (transB = 0) or [N, K] (transB = 1); output channels are N.
template <class T>
weight_layout gemm_weight_layout(const tensor_view<T, 2>& w, bool trans_b) {
  detail::check_weight_view(w, "gemm_weight_layout");
  weight_layout L;
  L.kind = weight_kind::gemm;
  L.out_axis = trans_b ? 0 : 1;
  L.in_axis = trans_b ? 1 : 0;
  L.out_per_group = w.extent(static_cast<std::size_t>(L.out_axis));
  L.in_per_group = w.extent(static_cast<std::size_t>(L.in_axis));
  L.stride_out = w.stride(static_cast<std::size_t>(L.out_axis));
  L.stride_in = w.stride(static_cast<std::size_t>(L.in_axis));
  L.size = w.size();
  return L;
}

/// Gemm B as the layer after a Flatten of an [N, C, spatial...] activation: input channel c is
/// the `block` consecutive features [c * block, (c + 1) * block), so the weight reads as C input
/// channels with `block` positions each, like a Conv kernel's taps. What equalising a Conv with
/// the Gemm behind it needs.
template <class T>
weight_layout gemm_weight_layout_after_flatten(const tensor_view<T, 2>& w, bool trans_b, std::ptrdiff_t block) {
  weight_layout L = gemm_weight_layout(w, trans_b);
  AMCTQ_CHECK(block >= 1 && L.in_per_group % block == 0, errc::shape_mismatch, "gemm_weight_layout_after_flatten",
              L.in_per_group, " input features do not split into channels of ", block);
  L.in_per_group /= block;
  L.spatial = block;
  L.stride_spatial = L.stride_in;
  L.stride_in *= block;
  return L;
}

/// MatMul's constant right operand [..., K, N]: output channels on the last axis, input
/// channels on the one before; leading batch dims count as `spatial`.
template <class T, std::size_t R>
weight_layout matmul_weight_layout(const tensor_view<T, R>& w) {
  static_assert(R >= 2, "A MatMul weight has rank >= 2.");
  constexpr const char* where = "matmul_weight_layout";
  detail::check_weight_view(w, where);
  weight_layout L;
  L.kind = weight_kind::matmul;
  L.out_axis = static_cast<int>(R) - 1;
  L.in_axis = static_cast<int>(R) - 2;
  L.out_per_group = w.extent(R - 1);
  L.in_per_group = w.extent(R - 2);
  L.stride_out = w.stride(R - 1);
  L.stride_in = w.stride(R - 2);
  detail::fold_dims(w.extents(), w.strides(), 0, R - 2, L.spatial, L.stride_spatial, where);
  L.size = w.size();
  return L;
}

/// Group g of the weight as a [out_per_group, in_per_group, spatial] view.
template <class T>
tensor_view<T, 3> group_view(T* data, const weight_layout& L, std::ptrdiff_t g) noexcept {
  return tensor_view<T, 3>(data + g * L.group_offset, {L.out_per_group, L.in_per_group, L.spatial},
                           {L.stride_out, L.stride_in, L.stride_spatial});
}

/// Throws unless view w is the tensor L was built from (same element count).
template <class T, std::size_t R>
void check_layout_for(const tensor_view<T, R>& w, const weight_layout& L, const char* where) {
  AMCTQ_CHECK(w.size() == L.size && L.out_per_group > 0 && L.in_per_group > 0, errc::shape_mismatch, where,
              "the weight has ", w.size(), " elements but its layout describes ", L.size);
  AMCTQ_CHECK(w.data_handle() != nullptr, errc::invalid_argument, where, "weight data is null");
}

namespace detail {

// A group's [out, in, spatial] block seen as a 2-D [outer, inner] walk for one channel side:
// the spatial dim is merged into the channel dim (then each channel owns `repeat` consecutive
// positions) or into the other dim, and the smaller stride goes inside. Dense weights always
// fit, so reductions stream through minmax_per_channel's SIMD rows / lanes and scaling runs
// over contiguous rows instead of kernel-sized (3x3) fragments.
struct channel_walk {
  bool ok = false;
  std::ptrdiff_t outer = 0, outer_stride = 0, inner = 0, inner_stride = 0;
  bool channel_inner = false;  ///< the channel(-with-spatial) dim is the inner one
  std::ptrdiff_t repeat = 1;   ///< positions per channel along the channel-carrying dim
};

inline channel_walk make_channel_walk(const weight_layout& L, channel_side side) noexcept {
  const bool out = side == channel_side::output;
  const std::ptrdiff_t ce = out ? L.out_per_group : L.in_per_group, cs = out ? L.stride_out : L.stride_in;
  const std::ptrdiff_t oe = out ? L.in_per_group : L.out_per_group, os = out ? L.stride_in : L.stride_out;
  const std::ptrdiff_t se = L.spatial, ss = L.stride_spatial;
  std::ptrdiff_t che, chs, ote, ots, rep = 1;  // channel-carrying and other dims after merging
  if (se == 1 || cs == se * ss) {
    che = ce * se;
    chs = se == 1 ? cs : ss;
    rep = se;
    ote = oe;
    ots = os;
  } else if (oe == 1 || os == se * ss) {
    che = ce;
    chs = cs;
    ote = oe * se;
    ots = ss;
  } else {
    return {};
  }
  channel_walk w;
  w.ok = true;
  w.repeat = rep;
  // A dim of extent 1 has no meaningful stride; put it outside.
  w.channel_inner = ote == 1 || (che != 1 && std::llabs(chs) < std::llabs(ots));
  if (w.channel_inner) {
    w.outer = ote;
    w.outer_stride = ots;
    w.inner = che;
    w.inner_stride = chs;
  } else {
    w.outer = che;
    w.outer_stride = chs;
    w.inner = ote;
    w.inner_stride = ots;
  }
  return w;
}

}  // namespace detail

/// max |w| per output or input channel. Non-finite weights are an error naming `name`.
template <class T, std::size_t R>
std::vector<float> channel_absmax(const tensor_view<T, R>& w, const weight_layout& L, channel_side side,
                                  const char* name = "weights") {
  constexpr const char* where = "channel_absmax";
  check_layout_for(w, L, where);
  const std::ptrdiff_t per = side == channel_side::output ? L.out_per_group : L.in_per_group;
  const auto walk = detail::make_channel_walk(L, side);
  std::vector<float> out(static_cast<std::size_t>(L.channels(side)));
  for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
    channel_ranges r;
    std::ptrdiff_t rep = 1;
    if (walk.ok) {
      const tensor_view<const float, 2> v(w.data_handle() + g * L.group_offset, {walk.outer, walk.inner},
                                          {walk.outer_stride, walk.inner_stride});
      r = minmax_per_channel(v, walk.channel_inner ? 1 : 0);
      rep = walk.repeat;
    } else {
      r = minmax_per_channel(tensor_view<const float, 3>(group_view(w.data_handle(), L, g)),
                             side == channel_side::output ? 0 : 1);
    }
    AMCTQ_CHECK(r.nonfinite == 0, errc::non_finite, where, name, " (", to_string(L.kind), ") hold ", r.nonfinite,
                " NaN or infinite values in group ", g);
    for (std::ptrdiff_t c = 0; c < per; ++c) {
      float m = 0.0f;
      for (std::ptrdiff_t k = c * rep; k < (c + 1) * rep; ++k)
        m = std::fmax(m, std::fmax(std::fabs(r.min[static_cast<std::size_t>(k)]), std::fabs(r.max[static_cast<std::size_t>(k)])));
      out[static_cast<std::size_t>(g * per + c)] = m;
    }
  }
  return out;
}

/// Multiplies every weight of channel c on `side` by factor[c] (or divides, with divide).
template <std::size_t R>
void scale_channels(const tensor_view<float, R>& w, const weight_layout& L, channel_side side,
                    const std::vector<float>& factor, bool divide = false) {
  constexpr const char* where = "scale_channels";
  check_layout_for(w, L, where);
  AMCTQ_CHECK(static_cast<std::ptrdiff_t>(factor.size()) == L.channels(side), errc::shape_mismatch, where, "got ",
              factor.size(), " factors for ", L.channels(side),
              side == channel_side::output ? " output" : " input", " channels of a ", to_string(L.kind), " weight");
  const bool out_side = side == channel_side::output;
  std::vector<float> f(factor.size());
  for (std::size_t c = 0; c < f.size(); ++c) {
    // Equivalence transforms scale by positive factors; 0, NaN or a negative one would write
    // inf / NaN or flip the channel silently.
    AMCTQ_CHECK(std::isfinite(factor[c]) && factor[c] > 0.0f, errc::invalid_argument, where, "factor[", c,
                "] must be finite and > 0, got ", factor[c]);
    f[c] = divide ? 1.0f / factor[c] : factor[c];
  }
  const std::ptrdiff_t per = out_side ? L.out_per_group : L.in_per_group;
  const auto walk = detail::make_channel_walk(L, side);
  if (walk.ok) {
    std::vector<float> lane(walk.channel_inner ? static_cast<std::size_t>(walk.inner) : 0);
    for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
      float* base = w.data_handle() + g * L.group_offset;
      const float* fg = f.data() + g * per;
      for (std::size_t t = 0; t < lane.size(); ++t) lane[t] = fg[static_cast<std::ptrdiff_t>(t) / walk.repeat];
      for (std::ptrdiff_t o = 0; o < walk.outer; ++o) {
        float* p = base + o * walk.outer_stride;
        const std::ptrdiff_t n = walk.inner, s = walk.inner_stride;
        if (walk.channel_inner) {
          const float* lf = lane.data();
          if (s == 1) {
            for (std::ptrdiff_t t = 0; t < n; ++t) p[t] *= lf[t];
          } else {
            for (std::ptrdiff_t t = 0; t < n; ++t) p[t * s] *= lf[t];
          }
        } else {
          const float k = fg[o / walk.repeat];
          if (s == 1) {
            for (std::ptrdiff_t t = 0; t < n; ++t) p[t] *= k;
          } else {
            for (std::ptrdiff_t t = 0; t < n; ++t) p[t * s] *= k;
          }
        }
      }
    }
    return;
  }
  // Views whose spatial dims do not merge with either neighbour: a plain 3-level walk.
  for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
    const auto v = group_view(w.data_handle(), L, g);
    const float* fg = f.data() + g * per;
    for (std::ptrdiff_t o = 0; o < L.out_per_group; ++o)
      for (std::ptrdiff_t i = 0; i < L.in_per_group; ++i) {
        const float k = fg[out_side ? o : i];
        for (std::ptrdiff_t t = 0; t < L.spatial; ++t) v(o, i, t) *= k;
      }
  }
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_WEIGHT_LAYOUT_HPP
