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

// Walks every channel and kernel tap in im2col's row order (col2im_add's), calling
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

/// Rows [k0, k1) and columns [p0, p1) of im2col's column matrix (row k: the tap (channel, kd,
/// kh, kw) in that nesting; column p: the output position (od, oh, ow)), in panels: the
/// positions in runs of `panel`, each run stored tap after tap, `panel` values per tap (the last
/// run may be shorter). With panel = p1 - p0 that is the plain block, row after row; with
/// Eigen's mr it is the packed GEMM operand. A conv's GEMM asks for the block it is about to
/// multiply, so the column matrix never exists whole: for a 3x3 conv over 56x56 it would be
/// 7 MB, written to memory and read back for packing, where a block stays in L2.
inline void im2col_block(const float* x, const window& w, std::int64_t k0, std::int64_t k1, std::int64_t p0,
                         std::int64_t p1, std::int64_t panel, float* out) {
  if (p1 <= p0 || k1 <= k0) return;
  const std::int64_t D = w.in[0], H = w.in[1], W = w.in[2];
  const std::int64_t OH = w.out[1], OW = w.out[2];
  const std::int64_t KD = w.kernel[0], KH = w.kernel[1], KW = w.kernel[2], sw = w.stride[2];
  const std::int64_t taps = k1 - k0;
  // The tap and the first position, counted up from here rather than divided out each time.
  std::int64_t kw = k0 % KW, kh = k0 / KW % KH, kd = k0 / (KW * KH) % KD, ch = k0 / (KW * KH * KD);
  const std::int64_t ow0 = p0 % OW, oh0 = p0 / OW % OH, od0 = p0 / (OW * OH);
  for (std::int64_t t = 0; t < taps; ++t) {
    const std::int64_t shift_w = kw * w.dilation[2] - w.pad_begin[2];
    // [lo, hi): the output columns whose input column lies inside [0, W).
    const std::int64_t lo = std::clamp<std::int64_t>(ceil_div(-shift_w, sw), 0, OW);
    const std::int64_t hi = std::clamp<std::int64_t>(ceil_div(W - shift_w, sw), lo, OW);
    std::int64_t ow = ow0, oh = oh0, od = od0;
    std::int64_t q = 0;  // position offset from p0
    for (const std::int64_t n_all = p1 - p0; q < n_all;) {
      // One output row's part inside one panel per step: columns [ow, end) to out[at, at + end - ow).
      const std::int64_t in_panel = q % panel, panel_left = std::min(panel - in_panel, n_all - q);
      const std::int64_t end = std::min(OW, ow + panel_left);
      float* const o = out + (q - in_panel) * taps + t * std::min(panel, n_all - (q - in_panel)) + in_panel;
      const std::int64_t id = od * w.stride[0] - w.pad_begin[0] + kd * w.dilation[0];
      const std::int64_t ih = oh * w.stride[1] - w.pad_begin[1] + kh * w.dilation[1];
      const std::int64_t n = end - ow;
      if (id < 0 || id >= D || ih < 0 || ih >= H) {
        std::fill(o, o + n, 0.0f);
      } else {
        // Output column c goes to o[c - ow]; it reads input column c * sw + shift_w.
        const float* src = x + ((ch * D + id) * H + ih) * W + shift_w + ow * sw;
        const std::int64_t a = std::clamp(lo, ow, end) - ow, b = std::clamp(hi, ow + a, end) - ow;
        std::fill(o, o + a, 0.0f);
        // A loop, not memcpy: the runs are 7 to 56 floats, where a library call costs more than the copy.
        if (sw == 1) {
          for (std::int64_t c = a; c < b; ++c) o[c] = src[c];
        } else {
          for (std::int64_t c = a; c < b; ++c) o[c] = src[c * sw];
        }
        std::fill(o + b, o + n, 0.0f);
      }
      q += n;
      if (end == OW) {
        ow = 0;
        if (++oh == OH) {
          oh = 0;
          ++od;
        }
      } else {
        ow = end;
      }
    }
    if (++kw == KW && (kw = 0, ++kh == KH) && (kh = 0, ++kd == KD)) {
      kd = 0;
      ++ch;
    }
  }
}

/// A conv input's extents once its padding is written out: as far as the window reaches.
struct padded_extents {
  std::int64_t D = 1, H = 1, W = 1;
  explicit padded_extents(const window& w)
      : D((w.out[0] - 1) * w.stride[0] + w.effective_kernel(0)),
        H((w.out[1] - 1) * w.stride[1] + w.effective_kernel(1)),
        W((w.out[2] - 1) * w.stride[2] + w.effective_kernel(2)) {}
  std::int64_t plane() const noexcept { return D * H * W; }
};

/// x (channels x D x H x W) with its padding written out as zeros, into channels * p.plane()
/// floats: the column matrix is then one load per value, at tap offset + position offset
/// (padded_tap_offsets, padded_position_offsets), with no bounds to check.
inline void pad_input(const float* x, std::int64_t channels, const window& w, const padded_extents& p, float* out) {
  const std::int64_t D = w.in[0], H = w.in[1], W = w.in[2];
  // Padded column j holds input column j - pad_left: inside [0, W) for j in [lo, hi).
  const std::int64_t lo = std::clamp<std::int64_t>(w.pad_begin[2], 0, p.W);
  const std::int64_t hi = std::clamp<std::int64_t>(W + w.pad_begin[2], lo, p.W);
  for (std::int64_t ch = 0; ch < channels; ++ch)
    for (std::int64_t d = 0; d < p.D; ++d)
      for (std::int64_t h = 0; h < p.H; ++h, out += p.W) {
        const std::int64_t id = d - w.pad_begin[0], ih = h - w.pad_begin[1];
        if (id < 0 || id >= D || ih < 0 || ih >= H) {
          std::fill(out, out + p.W, 0.0f);
          continue;
        }
        const float* src = x + ((ch * D + id) * H + ih) * W - w.pad_begin[2];
        std::fill(out, out + lo, 0.0f);
        std::copy(src + lo, src + hi, out + lo);
        std::fill(out + hi, out + p.W, 0.0f);
      }
}

/// Where tap k (im2col's row: channel, kd, kh, kw) of output position 0 reads in pad_input's copy.
inline void padded_tap_offsets(const window& w, const padded_extents& p, std::int64_t channels, std::int64_t* out) {
  for (std::int64_t ch = 0; ch < channels; ++ch)
    for (std::int64_t kd = 0; kd < w.kernel[0]; ++kd)
      for (std::int64_t kh = 0; kh < w.kernel[1]; ++kh)
        for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw)
          *out++ = ((ch * p.D + kd * w.dilation[0]) * p.H + kh * w.dilation[1]) * p.W + kw * w.dilation[2];
}

/// How far output position p (im2col's column: od, oh, ow) reads from position 0 in pad_input's copy.
inline void padded_position_offsets(const window& w, const padded_extents& p, std::int64_t* out) {
  for (std::int64_t od = 0; od < w.out[0]; ++od)
    for (std::int64_t oh = 0; oh < w.out[1]; ++oh)
      for (std::int64_t ow = 0; ow < w.out[2]; ++ow)
        *out++ = (od * w.stride[0] * p.H + oh * w.stride[1]) * p.W + ow * w.stride[2];
}

/// im2col_block's output (rows `taps`, columns `positions`, in runs of `panel`) from pad_input's
/// copy and the offsets of those taps and positions.
inline void gather_block(const float* padded, const std::int64_t* taps, std::int64_t kc, const std::int64_t* positions,
                         std::int64_t m, std::int64_t panel, float* out) {
  for (std::int64_t r0 = 0; r0 < m; r0 += panel) {
    const std::int64_t len = std::min(panel, m - r0);
    const std::int64_t* pos = positions + r0;
    float* o = out + r0 * kc;
    for (std::int64_t t = 0; t < kc; ++t, o += len) {
      const float* src = padded + taps[t];
      for (std::int64_t j = 0; j < len; ++j) o[j] = src[pos[j]];
    }
  }
}

/// Unfolds channels x window positions of x ([channels, D, H, W]) into col
/// ([channels * kernel_size, out_size]), zeros where the window reads padding.
inline void im2col(const float* x, std::int64_t channels, const window& w, float* col) {
  im2col_block(x, w, 0, channels * w.kernel_size(), 0, w.out_size(), w.out_size(), col);
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
