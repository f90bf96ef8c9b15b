// im2col and its adjoint over a resolved window: the column matrix Conv multiplies its weight
// with, and the scatter-add ConvTranspose's GEMM result goes through. Plain loops, no Eigen, so
// the layer table (learned rounding's weight columns) can use them without the GEMM.
#ifndef AMCTQ_GRAPH_OPS_IM2COL_HPP
#define AMCTQ_GRAPH_OPS_IM2COL_HPP

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "amctq/graph/ops/window.hpp"

namespace amctq::graph::ops {

namespace detail {

// Walks every channel and kernel tap in im2col's row order, calling
// f(ch, kd, kh, shift_w, lo, hi) (kw enters through shift_w): [lo, hi) are the positions p < `positions` along the
// innermost axis whose partner column p * stride + shift_w lies inside [0, extent).
template <class F>
void for_each_tap(std::int64_t channels, const window& w, std::int64_t positions, std::int64_t extent, F&& f) {
  for (std::int64_t ch = 0; ch < channels; ++ch)
    for (std::int64_t kd = 0; kd < w.kernel[0]; ++kd)
      for (std::int64_t kh = 0; kh < w.kernel[1]; ++kh)
        for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw) {
          const std::int64_t shift_w = kw * w.dilation[2] - w.pad_begin[2];
          const std::int64_t lo = std::clamp<std::int64_t>(ceil_div(-shift_w, w.stride[2]), 0, positions);
          const std::int64_t hi = std::clamp<std::int64_t>(ceil_div(extent - shift_w, w.stride[2]), lo, positions);
          f(ch, kd, kh, shift_w, lo, hi);
        }
}

/// Unfolds channels x window positions of x ([channels, D, H, W]) into col
/// ([channels * kernel_size, out_size]), zeros where the window reads padding.
inline void im2col(const float* x, std::int64_t channels, const window& w, float* col) {
  const std::int64_t D = w.in[0], H = w.in[1], W = w.in[2];
  const std::int64_t OD = w.out[0], OH = w.out[1], OW = w.out[2];
  for_each_tap(channels, w, OW, W,
               [&](std::int64_t ch, std::int64_t kd, std::int64_t kh, std::int64_t shift_w, std::int64_t lo,
                   std::int64_t hi) {
                 // One output row (od, oh) per step: zeros when its input row lies in the padding.
                 for (std::int64_t od = 0; od < OD; ++od) {
                   const std::int64_t id = od * w.stride[0] - w.pad_begin[0] + kd * w.dilation[0];
                   for (std::int64_t oh = 0; oh < OH; ++oh, col += OW) {
                     const std::int64_t ih = oh * w.stride[1] - w.pad_begin[1] + kh * w.dilation[1];
                     if (id < 0 || id >= D || ih < 0 || ih >= H) {
                       std::fill(col, col + OW, 0.0f);
                       continue;
                     }
                     const float* src = x + ((ch * D + id) * H + ih) * W + shift_w;
                     std::fill(col, col + lo, 0.0f);
                     if (w.stride[2] == 1) {
                       std::memcpy(col + lo, src + lo, static_cast<std::size_t>(hi - lo) * sizeof(float));
                     } else {
                       for (std::int64_t ow = lo; ow < hi; ++ow) col[ow] = src[ow * w.stride[2]];
                     }
                     std::fill(col + hi, col + OW, 0.0f);
                   }
                 }
               });
}

/// The adjoint of im2col: adds col ([channels * kernel_size, in_size of w]) into y
/// ([channels, out dims of w]) where w describes the forward conv from y to col.
inline void col2im_add(const float* col, std::int64_t channels, const window& w, float* y) {
  // Here w.in is the (small) transposed-conv input and w.out the (large) result.
  const std::int64_t ID = w.in[0], IH = w.in[1], IW = w.in[2];
  const std::int64_t D = w.out[0], H = w.out[1], W = w.out[2];
  for_each_tap(channels, w, IW, W,
               [&](std::int64_t ch, std::int64_t kd, std::int64_t kh, std::int64_t shift_w, std::int64_t lo,
                   std::int64_t hi) {
                 for (std::int64_t id = 0; id < ID; ++id) {
                   const std::int64_t od = id * w.stride[0] - w.pad_begin[0] + kd * w.dilation[0];
                   if (od < 0 || od >= D) continue;
                   for (std::int64_t ih = 0; ih < IH; ++ih) {
                     const std::int64_t oh = ih * w.stride[1] - w.pad_begin[1] + kh * w.dilation[1];
                     if (oh < 0 || oh >= H) continue;
                     const float* src = col + (id * IH + ih) * IW;
                     float* dst = y + ((ch * D + od) * H + oh) * W + shift_w;
                     for (std::int64_t iw = lo; iw < hi; ++iw) dst[iw * w.stride[2]] += src[iw];
                   }
                 }
                 col += ID * IH * IW;
               });
}

}  // namespace detail

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_IM2COL_HPP
