// A Conv without im2col. Copy the input once, padded and, for a stride s, split into its s x s
// phases (the phase (rh, rw) of a channel holds the padded input's rows rh, rh + s, ... and
// columns rw, rw + s, ...). Over a flattened output of width Wq (a phase's width, so each output
// row carries a few positions of garbage), output position p and tap (c, kh, kw) then read the
// tap's phase at p + (kh / s) * Wq + kw / s: consecutive positions read consecutive inputs, so
// the micro-kernel loads its GEMM operand straight from that copy, where im2col would first copy
// it out once per tap (for a 3x3 conv, 9 copies of the input: about a sixth of ResNet-18's time).
//
// The micro-kernel holds mv vectors of positions by NR output channels in registers and walks
// the taps of one depth block: per tap, mv loads and NR broadcast weights. Every output is the
// same chain of FMAs whatever tile, part or thread computes it (the first depth block added to
// the bias, each later one to the running sum), so any cut of the positions or the channels
// gives the same bytes.
#ifndef AMCTQ_GRAPH_OPS_DIRECT_CONV_HPP
#define AMCTQ_GRAPH_OPS_DIRECT_CONV_HPP

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "amctq/graph/ops/common.hpp"
#include "amctq/graph/ops/window.hpp"
#include "amctq/kernels/detail/simd.hpp"

namespace amctq::graph::ops::detail {

#if AMCTQ_HAS_XSIMD

using conv_batch = xsimd::batch<float>;
inline constexpr std::int64_t conv_lanes = static_cast<std::int64_t>(conv_batch::size);
/// Output channels per micro-kernel: 3 x 8 accumulators where the arch has 32 vector registers,
/// 3 x 4 where it has 16.
#  if defined(__AVX512F__) || defined(__aarch64__)
inline constexpr int conv_channels_per_panel = 8;
#  else
inline constexpr int conv_channels_per_panel = 4;
#  endif
/// Vectors of positions per full tile.
inline constexpr int conv_tile_vectors = 3;
/// Taps per depth block: a panel's weights (depth x 8 floats) and a tile's input rows stay in L1.
inline constexpr std::int64_t conv_depth_block = 288;

/// Where a 1-D or 2-D conv of one image and group reads and writes, for the direct path: in
/// phases of the padded input, each Hq x Wq.
struct direct_conv_geometry {
  std::int64_t H = 0, W = 0, OH = 0, OW = 0, sh = 1, sw = 1, Hq = 0, Wq = 0;
  std::int64_t pad_top = 0, pad_left = 0;
  std::int64_t positions = 0;  ///< OH * Wq: the flattened output, garbage columns included
  std::int64_t reach = 0;      ///< the farthest a tap reads from a position within its phase
  std::int64_t tiles = 0;      ///< full tiles of conv_tile_vectors vectors and one shorter last one
  std::int64_t tile = conv_tile_vectors * conv_lanes;

  explicit direct_conv_geometry(const window& w) {
    H = w.in[1];
    W = w.in[2];
    sh = w.stride[1];
    sw = w.stride[2];
    pad_top = w.pad_begin[1];
    pad_left = w.pad_begin[2];
    Hq = (H + w.pad_begin[1] + w.pad_end[1] + sh - 1) / sh;
    Wq = (W + w.pad_begin[2] + w.pad_end[2] + sw - 1) / sw;
    OH = w.out[1];
    OW = w.out[2];
    positions = OH * Wq;
    reach = (w.kernel[1] - 1) * w.dilation[1] / sh * Wq + (w.kernel[2] - 1) * w.dilation[2] / sw;
    tiles = (positions + tile - 1) / tile;
  }
  /// Vectors the tile starting at position p computes.
  std::int64_t vectors_at(std::int64_t p) const noexcept {
    return std::min<std::int64_t>(conv_tile_vectors, (positions - p + conv_lanes - 1) / conv_lanes);
  }
  /// Output positions computed (lanes, garbage columns and the last vector's spare lanes included).
  std::int64_t computed() const noexcept { return (positions + conv_lanes - 1) / conv_lanes * conv_lanes; }
};

/// Whether the direct path takes this conv: 1-D or 2-D, and few enough positions wasted on
/// garbage columns and spare lanes (a 7x7 map with a 3x3 kernel computes 64 positions for 49 and
/// stays with im2col + GEMM, which wastes none).
inline bool direct_conv_fits(const window& w, std::int64_t in_channels) {
  if (in_channels < 2 || w.kernel[0] != 1 || w.in[0] != 1 || w.pad_begin[0] != 0 || w.pad_end[0] != 0) return false;
  const direct_conv_geometry g(w);
  return g.positions > 0 && 5 * w.out[1] * w.out[2] >= 4 * g.computed();
}

/// Panels of conv_channels_per_panel output channels that M channels take (the last may be short).
inline std::int64_t direct_conv_panels(std::int64_t M) noexcept {
  return (M + conv_channels_per_panel - 1) / conv_channels_per_panel;
}

/// Floats a conv weight (M x depth, row-major) takes packed for the micro-kernel: per depth block,
/// panels of conv_channels_per_panel channels, tap after tap (the last panel zero-filled).
inline std::int64_t direct_conv_packed_size(std::int64_t M, std::int64_t depth) {
  return direct_conv_panels(M) * conv_channels_per_panel * depth;
}
inline void direct_conv_pack(const float* w, std::int64_t M, std::int64_t depth, float* out) {
  constexpr int nr = conv_channels_per_panel;
  const std::int64_t panels = direct_conv_panels(M);
  for (std::int64_t k0 = 0; k0 < depth; k0 += conv_depth_block) {
    const std::int64_t kc = std::min(conv_depth_block, depth - k0);
    for (std::int64_t p = 0; p < panels; ++p)
      for (std::int64_t k = 0; k < kc; ++k)
        for (int j = 0; j < nr; ++j) {
          const std::int64_t m = p * nr + j;
          *out++ = m < M ? w[m * depth + k0 + k] : 0.0f;
        }
  }
}

/// mv vectors of positions x the panel's channels over taps [0, kc): input vector i of tap k at
/// x + offsets[k] + i * lanes, the panel's weights of tap k at wp + k * NR. Channel j (< jn) goes
/// to z + j * ldz: the bias plus the sum when `first`, else added to what is there.
template <int MV, bool First>
inline void direct_conv_tile(const float* x, const std::int64_t* offsets, std::int64_t kc, const float* wp, float* z,
                             std::int64_t ldz, int jn, const float* bias) noexcept {
  using B = conv_batch;
  constexpr int NR = conv_channels_per_panel;
  constexpr int V = static_cast<int>(B::size);
  B acc[MV][NR];
  for (int i = 0; i < MV; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = B(0.0f);
  for (std::int64_t k = 0; k < kc; ++k) {
    const float* a = x + offsets[k];
    B av[MV];
    for (int i = 0; i < MV; ++i) av[i] = B::load_unaligned(a + i * V);
    const float* b = wp + k * NR;
    for (int j = 0; j < NR; ++j) {
      const B bj(b[j]);
      for (int i = 0; i < MV; ++i) acc[i][j] = xsimd::fma(av[i], bj, acc[i][j]);
    }
  }
  for (int j = 0; j < NR; ++j) {
    if (j >= jn) break;
    float* zj = z + j * ldz;
    for (int i = 0; i < MV; ++i) {
      const B base = First ? B(bias ? bias[j] : 0.0f) : B::load_unaligned(zj + i * V);
      (base + acc[i][j]).store_unaligned(zj + i * V);
    }
  }
}

/// direct_conv_tile with mv (1 to conv_tile_vectors) and `first` chosen at run time.
inline void direct_conv_tile(std::int64_t mv, bool first, const float* x, const std::int64_t* offsets, std::int64_t kc,
                             const float* wp, float* z, std::int64_t ldz, int jn, const float* bias) noexcept {
  static_assert(conv_tile_vectors == 3, "one case per tile width");
  if (first) {
    if (mv == 3) direct_conv_tile<3, true>(x, offsets, kc, wp, z, ldz, jn, bias);
    else if (mv == 2) direct_conv_tile<2, true>(x, offsets, kc, wp, z, ldz, jn, bias);
    else direct_conv_tile<1, true>(x, offsets, kc, wp, z, ldz, jn, bias);
  } else {
    if (mv == 3) direct_conv_tile<3, false>(x, offsets, kc, wp, z, ldz, jn, bias);
    else if (mv == 2) direct_conv_tile<2, false>(x, offsets, kc, wp, z, ldz, jn, bias);
    else direct_conv_tile<1, false>(x, offsets, kc, wp, z, ldz, jn, bias);
  }
}

/// One part of a direct conv: tiles [t0, t1) of one image and group.
struct direct_conv_part {
  std::int64_t t0 = 0, t1 = 0;
};

/// The phase rows that tiles [t0, t1) read: [first, last).
inline std::pair<std::int64_t, std::int64_t> direct_conv_rows(const direct_conv_geometry& g, direct_conv_part part) {
  const std::int64_t p0 = part.t0 * g.tile, p1 = std::min(part.t1 * g.tile, g.computed());
  return {p0 / g.Wq, (p1 - 1 + g.reach) / g.Wq + 1};
}

/// Tiles computed together, depth block by depth block: as many as keep their results (all
/// channels) within 256 KB, so they stay in L2 until they go out to y.
inline std::int64_t direct_conv_run_tiles(std::int64_t M, const direct_conv_geometry& g) {
  const std::int64_t channels = direct_conv_panels(M) * conv_channels_per_panel;
  return std::max<std::int64_t>(1, (std::int64_t{1} << 16) / (channels * g.tile));
}

/// Floats of work a part needs: its rows of every phase of every channel (`phase_stride` floats
/// a phase) and a run of tiles' results before they drop the garbage columns.
inline std::int64_t direct_conv_work(std::int64_t channels, std::int64_t M, std::int64_t phase_stride,
                                     const direct_conv_geometry& g) {
  const std::int64_t panels = direct_conv_panels(M);
  return channels * g.sh * g.sw * phase_stride + panels * conv_channels_per_panel * direct_conv_run_tiles(M, g) * g.tile;
}

/// Tap offsets within a part's phases, in the weight's (channel, kh, kw) order.
inline void direct_conv_offsets(const window& w, const direct_conv_geometry& g, std::int64_t channels,
                                std::int64_t phase_stride, std::int64_t* out) {
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::int64_t kh = 0; kh < w.kernel[1]; ++kh)
      for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw) {
        const std::int64_t dh = kh * w.dilation[1], dw = kw * w.dilation[2];
        const std::int64_t phase = (c * g.sh + dh % g.sh) * g.sw + dw % g.sw;
        *out++ = phase * phase_stride + dh / g.sh * g.Wq + dw / g.sw;
      }
}

/// Rows [r0, r1) of every phase of the padded input of x (channels x H x W), phase after phase
/// of each channel, zeros where they are padding.
inline void direct_conv_phases(const direct_conv_geometry& g, std::int64_t channels, const float* x, std::int64_t r0,
                               std::int64_t r1, std::int64_t phase_stride, float* out) {
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::int64_t rh = 0; rh < g.sh; ++rh)
      for (std::int64_t rw = 0; rw < g.sw; ++rw, out += phase_stride)
        for (std::int64_t r = r0; r < r1; ++r) {
          float* row = out + (r - r0) * g.Wq;
          const std::int64_t h = r * g.sh + rh - g.pad_top;
          if (h < 0 || h >= g.H) {
            std::fill(row, row + g.Wq, 0.0f);
            continue;
          }
          const float* src = x + (c * g.H + h) * g.W;
          // Phase column j holds input column j * sw + rw - pad_left: inside [0, W) for j in [lo, hi).
          const std::int64_t lo = std::clamp<std::int64_t>(ceil_div(g.pad_left - rw, g.sw), 0, g.Wq);
          const std::int64_t hi = std::clamp<std::int64_t>(ceil_div(g.W + g.pad_left - rw, g.sw), lo, g.Wq);
          std::fill(row, row + lo, 0.0f);
          if (g.sw == 1) {
            std::memcpy(row + lo, src + lo - g.pad_left, static_cast<std::size_t>(hi - lo) * sizeof(float));
          } else {
            for (std::int64_t j = lo; j < hi; ++j) row[j] = src[j * g.sw + rw - g.pad_left];
          }
          std::fill(row + hi, row + g.Wq, 0.0f);
        }
}

/// Y (M x OH*OW, one image and group, row-major) over tiles [t0, t1): x is the group's input
/// (channels x H x W), packed the weight by direct_conv_pack, offsets from direct_conv_offsets
/// with the same phase stride, work direct_conv_work floats. `relu`: Y is written through relu_fn.
inline void direct_conv(const direct_conv_geometry& g, std::int64_t channels, std::int64_t M, std::int64_t depth,
                        const float* x, const float* packed, const std::int64_t* offsets, std::int64_t phase_stride,
                        const float* bias, direct_conv_part part, float* y, float* work, bool relu) {
  constexpr int NR = conv_channels_per_panel;
  const auto [r0, r1] = direct_conv_rows(g, part);
  float* const xp = work;
  direct_conv_phases(g, channels, x, r0, r1, phase_stride, xp);
  // A run of tiles at a time, through every depth block and then out to y while its results are
  // still in L2: the weights stream once per run, the results never go to memory twice.
  const std::int64_t panels = direct_conv_panels(M), O = g.OH * g.OW, run = direct_conv_run_tiles(M, g);
  float* const z = xp + channels * g.sh * g.sw * phase_stride;
  for (std::int64_t ta = part.t0; ta < part.t1; ta += run) {
    const std::int64_t tb = std::min(ta + run, part.t1), ldz = (tb - ta) * g.tile;
    const float* block = packed;
    for (std::int64_t k0 = 0; k0 < depth; k0 += conv_depth_block) {
      const std::int64_t kc = std::min(conv_depth_block, depth - k0);
      for (std::int64_t t = ta; t < tb; ++t) {
        const std::int64_t p = t * g.tile, mv = g.vectors_at(p);
        const float* xt = xp + (p - r0 * g.Wq);
        for (std::int64_t pn = 0; pn < panels; ++pn) {
          const int jn = static_cast<int>(std::min<std::int64_t>(NR, M - pn * NR));
          const float* bp = bias ? bias + pn * NR : nullptr;
          direct_conv_tile(mv, k0 == 0, xt, offsets + k0, kc, block + pn * kc * NR,
                           z + pn * NR * ldz + (t - ta) * g.tile, ldz, jn, bp);
        }
      }
      block += panels * NR * kc;
    }
    // Drop the garbage columns: flattened position p is output (p / Wq, p % Wq) when p % Wq < OW.
    const std::int64_t p0 = ta * g.tile, p1 = std::min(tb * g.tile, g.positions);
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t p = p0; p < p1;) {
        const std::int64_t oh = p / g.Wq, ow = p % g.Wq, row_end = std::min((oh + 1) * g.Wq, p1);
        const std::int64_t n = std::min(row_end, oh * g.Wq + g.OW) - p;
        const float* from = z + m * ldz + (p - p0);
        if (n > 0 && relu) std::transform(from, from + n, y + m * O + oh * g.OW + ow, relu_fn{});
        else if (n > 0) std::copy_n(from, n, y + m * O + oh * g.OW + ow);
        p = row_end;
      }
  }
}

#endif  // AMCTQ_HAS_XSIMD

}  // namespace amctq::graph::ops::detail

#endif  // AMCTQ_GRAPH_OPS_DIRECT_CONV_HPP
