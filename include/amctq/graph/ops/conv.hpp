// Conv (1-D/2-D/3-D, groups, dilations, pads, auto_pad): 1-D and 2-D convs on maps that suit
// it through direct_conv (no im2col), the rest as im2col + one GEMM per image and group on Eigen's
// kernels; ConvTranspose as the adjoint: GEMM then col2im scatter-add. With the executor's
// intra-op threads, Conv shares out images, groups, output positions or output channels (the
// bytes do not change).
#ifndef AMCTQ_GRAPH_OPS_CONV_HPP
#define AMCTQ_GRAPH_OPS_CONV_HPP

#include <algorithm>
#include <any>
#include <cstring>
#include <memory>

#include <Eigen/Core>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"
#include "amctq/graph/ops/direct_conv.hpp"
#include "amctq/graph/ops/im2col.hpp"
#include "amctq/graph/ops/packed_gemm.hpp"
#include "amctq/graph/ops/window.hpp"

namespace amctq::graph::ops {

namespace detail {

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using matrix_map = Eigen::Map<row_matrix>;
using const_matrix_map = Eigen::Map<const row_matrix>;

/// One input channel convolved with one kernel into one output plane (depthwise conv, where a
/// GEMM with a single row would be all overhead): taps outer, contiguous output rows inner.
inline void depthwise_plane(const float* x, const float* k, const window& w, float* y) {
  const std::int64_t D = w.in[0], H = w.in[1], W = w.in[2];
  const std::int64_t OD = w.out[0], OH = w.out[1], OW = w.out[2];
  std::fill(y, y + OD * OH * OW, 0.0f);
  for (std::int64_t kd = 0; kd < w.kernel[0]; ++kd)
    for (std::int64_t kh = 0; kh < w.kernel[1]; ++kh)
      for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw) {
        const float wv = *k++;
        const std::int64_t shift_w = kw * w.dilation[2] - w.pad_begin[2];
        const std::int64_t lo = std::clamp<std::int64_t>(ceil_div(-shift_w, w.stride[2]), 0, OW);
        const std::int64_t hi = std::clamp<std::int64_t>(ceil_div(W - shift_w, w.stride[2]), lo, OW);
        for (std::int64_t od = 0; od < OD; ++od) {
          const std::int64_t id = od * w.stride[0] - w.pad_begin[0] + kd * w.dilation[0];
          if (id < 0 || id >= D) continue;
          for (std::int64_t oh = 0; oh < OH; ++oh) {
            const std::int64_t ih = oh * w.stride[1] - w.pad_begin[1] + kh * w.dilation[1];
            if (ih < 0 || ih >= H) continue;
            const float* src = x + (id * H + ih) * W + shift_w;
            float* dst = y + (od * OH + oh) * OW;
            if (w.stride[2] == 1) {
              for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * src[ow];
            } else {
              const std::int64_t s = w.stride[2];
              for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * src[ow * s];
            }
          }
        }
      }
}

inline void check_float_inputs(const context& c) {
  for (std::size_t i = 0; i < c.num_inputs(); ++i)
    if (c.has_input(i)) c.require_type(c.input(i), dtype::float32, i == 0 ? "X" : i == 1 ? "W" : "B");
}

inline std::vector<std::int64_t> kernel_of(const context& c, const tensor& wt) {
  std::vector<std::int64_t> k(wt.shape().begin() + 2, wt.shape().end());
  const auto attr = c.n.get_ints("kernel_shape", k);
  AMCTQ_CHECK(attr == k, errc::shape_mismatch, c.where(), "kernel_shape ", shape_string(attr),
              " disagrees with the weight's spatial dims ", shape_string(k));
  return k;
}

inline void add_bias_rows(float* y, const float* bias, std::int64_t rows, std::int64_t len) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float b = bias[r];
    float* p = y + r * len;
    for (std::int64_t i = 0; i < len; ++i) p[i] += b;
  }
}

/// The depth block that asks conv_weight_state for direct_conv's packing instead of the GEMM's
/// (whose blocks are never empty).
inline constexpr std::int64_t direct_conv_packing = 0;

/// A constant conv weight packed per group, kept in the executor's node state: as the GEMM's rhs
/// (W^T in depth blocks of kc) or, with kc = direct_conv_packing, for direct_conv. Rebuilt when
/// the weight or the packing changes.
struct packed_conv_weight {
  const float* source = nullptr;
  std::int64_t M = 0, rows = 0, group = 0, kc = 0, group_size = 0;
  aligned_floats packed;
};

inline const packed_conv_weight* conv_weight_state(context& c, const float* pw, std::int64_t M, std::int64_t rows,
                                                   std::int64_t group, std::int64_t kc) {
  if (!c.state || !c.is_constant(1)) return nullptr;
  auto* s = std::any_cast<std::shared_ptr<packed_conv_weight>>(c.state);
  if (s && (*s)->source == pw && (*s)->M == M && (*s)->rows == rows && (*s)->group == group && (*s)->kc == kc)
    return s->get();
  auto p = std::make_shared<packed_conv_weight>();
  p->source = pw;
  p->M = M;
  p->rows = rows;
  p->group = group;
  p->kc = kc;
  const std::int64_t Mg = M / group;
#if AMCTQ_HAS_XSIMD
  if (kc == direct_conv_packing) {
    p->group_size = direct_conv_packed_size(Mg, rows);
    p->packed.resize(static_cast<std::size_t>(p->group_size * group));
    for (std::int64_t g = 0; g < group; ++g)
      direct_conv_pack(pw + g * Mg * rows, Mg, rows, p->packed.data() + g * p->group_size);
    *c.state = p;
    return p.get();
  }
#endif
  p->group_size = packed_rhs_size(rows, Mg, kc);
  p->packed.resize(static_cast<std::size_t>(p->group_size * group));
  for (std::int64_t g = 0; g < group; ++g)
    pack_rhs_blocks(pw + g * Mg * rows, rows, rows, Mg, kc, p->packed.data() + g * p->group_size);
  *c.state = p;
  return p.get();
}

}  // namespace detail

inline void conv(context& c) {
  c.require_inputs(2, 3);
  detail::check_float_inputs(c);
  const tensor& x = c.input(0);
  const tensor& wt = c.input(1);
  AMCTQ_CHECK(x.rank() == wt.rank() && x.rank() >= 3, errc::shape_mismatch, c.where(), "X ", shape_string(x.shape()),
              " and W ", shape_string(wt.shape()), " must have the same rank >= 3");
  const std::int64_t N = x.dim(0), C = x.dim(1), M = wt.dim(0);
  const std::int64_t group = c.n.get_int("group", 1);
  AMCTQ_CHECK(group > 0 && C % group == 0 && M % group == 0 && wt.dim(1) * group == C, errc::shape_mismatch,
              c.where(), "X has ", C, " channels, W ", shape_string(wt.shape()), ", group ", group,
              ": need C == W.shape[1] * group and M divisible by group");
  const window w = forward_window(c, x.shape(), detail::kernel_of(c, wt), false);
  const float* bias = nullptr;
  if (c.has_input(2)) {
    AMCTQ_CHECK(c.input(2).size() == static_cast<std::size_t>(M), errc::shape_mismatch, c.where(), "B has ",
                c.input(2).size(), " elements, expected ", M);
    bias = c.input(2).data<float>();
  }
  std::vector<std::int64_t> yshape{N, M};
  for (auto d : w.out_spatial()) yshape.push_back(d);
  tensor& y = c.make_output_uninit(0, dtype::float32, yshape);
  const std::int64_t Cg = C / group, Mg = M / group;
  const std::int64_t rows = Cg * w.kernel_size(), O = w.out_size(), I = w.in_size();
  bool direct = true;  // 1x1, stride 1, no pad: the input already is the column matrix
  for (std::size_t d = 0; d < 3; ++d)
    direct = direct && w.kernel[d] == 1 && w.stride[d] == 1 && w.pad_begin[d] == 0 && w.pad_end[d] == 0;
  const float* px = x.data<float>();
  const float* pw = wt.data<float>();
  float* py = y.data<float>();
  // A Relu the executor folded in (context::relu_after), applied where each part of Y is written.
  auto relu_rows = [&c](float* y0, std::int64_t rows, std::int64_t ld, std::int64_t begin, std::int64_t end) {
    if (!c.relu_after) return;
    for (std::int64_t r = 0; r < rows; ++r) std::transform(y0 + r * ld + begin, y0 + r * ld + end, y0 + r * ld + begin, relu_fn{});
  };
  if (Cg == 1 && !direct) {  // depthwise: one input channel per group, a plane per task
    const std::int64_t K = w.kernel_size();
    c.parallel_for(N * M, [&](std::int64_t t, int) {
      const std::int64_t n = t / M, m = t % M;
      float* ym = py + t * O;
      detail::depthwise_plane(px + (n * C + m / Mg) * I, pw + m * K, w, ym);
      if (bias) detail::add_bias_rows(ym, bias + m, 1, O);
      relu_rows(ym, 1, O, 0, O);
    });
    return;
  }
#if AMCTQ_HAS_XSIMD
  if (detail::direct_conv_fits(w, Cg))
    if (const detail::packed_conv_weight* pk = detail::conv_weight_state(c, pw, M, rows, group, detail::direct_conv_packing)) {
      // A task: one image and group, or, when those are fewer than the workers, a run of its tiles.
      const detail::direct_conv_geometry geo(w);
      const std::int64_t planes = N * group, parts = std::min(c.parts_per_task(planes), geo.tiles);
      const std::int64_t per_part = (geo.tiles + parts - 1) / parts;
      auto part_of = [&](std::int64_t k) {
        return detail::direct_conv_part{k * per_part, std::min(geo.tiles, (k + 1) * per_part)};
      };
      std::int64_t phase_stride = 0;  // the most of a phase any part holds
      for (std::int64_t k = 0; k < parts; ++k)
        if (part_of(k).t0 < part_of(k).t1) {
          const auto [r0, r1] = detail::direct_conv_rows(geo, part_of(k));
          phase_stride = std::max(phase_stride, (r1 - r0) * geo.Wq);
        }
      std::vector<std::int64_t> offsets(static_cast<std::size_t>(rows));
      detail::direct_conv_offsets(w, geo, Cg, phase_stride, offsets.data());
      const std::int64_t need = detail::direct_conv_work(Cg, Mg, phase_stride, geo);
      float* const scratch = c.scratch_per_worker(need);
      c.parallel_for(planes * parts, [&](std::int64_t t, int worker) {
        const detail::direct_conv_part part = part_of(t % parts);
        if (part.t0 >= part.t1) return;
        const std::int64_t plane = t / parts, n = plane / group, g = plane % group;
        detail::direct_conv(geo, Cg, Mg, rows, px + (n * C + g * Cg) * I, pk->packed.data() + g * pk->group_size,
                            offsets.data(), phase_stride, bias ? bias + g * Mg : nullptr, part,
                            py + (n * M + g * Mg) * O, scratch + worker * need, c.relu_after);
      });
      return;
    }
#endif
  // Y_g (Mg x O, row-major) = W_g (Mg x rows) * col (rows x O) is, column-major, Y_g^T = col^T * W_g^T:
  // the weight is the rhs, packed once per executor.
  const detail::gemm_blocking blocking(O, rows, Mg);
  if (const detail::packed_conv_weight* pk = detail::conv_weight_state(c, pw, M, rows, group, blocking.kc)) {
    // A task: one image and group, or, when those are fewer than the workers, part of its output
    // positions (rows of the product) or, where positions are few (a 7x7 map), of its channels.
    const std::int64_t planes = N * group, parts = c.parts_per_task(planes);
    const bool by_rows = parts == 1 || O >= 2 * parts * std::max<std::int64_t>(detail::lhs_panel, 16);
    const auto row_spans = detail::split_rows(O, blocking, by_rows ? parts : 1);
    const auto col_spans = detail::split_cols(Mg, by_rows ? 1 : parts);
    const auto rows_n = static_cast<std::int64_t>(row_spans.size()), cols_n = static_cast<std::int64_t>(col_spans.size());
    const std::int64_t gemm_need = direct ? detail::packed_gemm_work(rows, Mg, blocking, false, true)
                                          : detail::generated_lhs_gemm_work(blocking);
    // Not direct: the lhs blocks are gathered from a padded copy of the image and group, made
    // once per worker and plane, so no value needs a bounds check (docs/benchmarks.md, section 4).
    const detail::padded_extents padded(w);
    std::vector<std::int64_t> tap_at, position_at;
    if (!direct) {
      tap_at.resize(static_cast<std::size_t>(rows));
      detail::padded_tap_offsets(w, padded, Cg, tap_at.data());
      position_at.resize(static_cast<std::size_t>(O));
      detail::padded_position_offsets(w, padded, position_at.data());
    }
    const std::int64_t need = gemm_need + (direct ? 0 : Cg * padded.plane());
    float* const scratch = c.scratch_per_worker(need);
    std::vector<std::int64_t> padded_plane(static_cast<std::size_t>(c.workers()), -1);  // what each worker's copy holds
    c.parallel_for(planes * rows_n * cols_n, [&](std::int64_t t, int worker) {
      const std::int64_t plane = t / (rows_n * cols_n), n = plane / group, g = plane % group;
      const detail::gemm_part part{row_spans[static_cast<std::size_t>(t / cols_n % rows_n)],
                                   col_spans[static_cast<std::size_t>(t % cols_n)]};
      const float* xg = px + (n * C + g * Cg) * I;
      float* yg = py + (n * M + g * Mg) * O;
      float* work = scratch + worker * need;
      for (std::int64_t r = part.cols.begin; r < part.cols.end; ++r)  // the GEMM accumulates onto the bias, or zeros
        std::fill(yg + r * O + part.rows.begin, yg + r * O + part.rows.end, bias ? bias[g * Mg + r] : 0.0f);
      const float* wg = pk->packed.data() + g * pk->group_size;
      if (direct) {  // the input is col already
        detail::packed_gemm(O, rows, Mg, blocking, {xg, O, false}, {wg, 0, true}, yg, O, work, part);
      } else {
        float* const xpad = work + gemm_need;
        if (padded_plane[static_cast<std::size_t>(worker)] != plane) {
          detail::pad_input(xg, Cg, w, padded, xpad);
          padded_plane[static_cast<std::size_t>(worker)] = plane;
        }
        // The lhs is col^T: its rows [i, i + m) and depth [k2, k2 + kc) are positions and taps.
        auto fill = [&](std::int64_t i, std::int64_t m, std::int64_t k2, std::int64_t kc, std::int64_t panel, float* out) {
          detail::gather_block(xpad, tap_at.data() + k2, kc, position_at.data() + i, m, panel, out);
        };
        detail::generated_lhs_gemm(rows, Mg, blocking, fill, wg, yg, O, work, part);
      }
      relu_rows(yg + part.cols.begin * O, part.cols.end - part.cols.begin, O, part.rows.begin, part.rows.end);
    });
    return;
  }
  if (!direct && c.scratch.size() < static_cast<std::size_t>(rows * O)) c.scratch.resize(static_cast<std::size_t>(rows * O));
  // Every (image, group): its column matrix (the input itself when direct) and output rows.
  auto each_group = [&](auto&& gemm) {
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t g = 0; g < group; ++g) {
        const float* xg = px + (n * C + g * Cg) * I;
        const float* col = xg;
        if (!direct) {
          detail::im2col(xg, Cg, w, c.scratch.data());
          col = c.scratch.data();
        }
        gemm(g, col, py + (n * M + g * Mg) * O);
      }
  };
  each_group([&](std::int64_t g, const float* col, float* yg) {
    detail::matrix_map yo(yg, Mg, O);
    const auto product = detail::const_matrix_map(pw + g * Mg * rows, Mg, rows) * detail::const_matrix_map(col, rows, O);
    if (bias) {  // the GEMM accumulates onto the bias rows instead of zeros: one pass over Y fewer
      for (std::int64_t r = 0; r < Mg; ++r) std::fill(yg + r * O, yg + (r + 1) * O, bias[g * Mg + r]);
      yo.noalias() += product;
    } else {
      yo.noalias() = product;
    }
    relu_rows(yg, Mg, O, 0, O);
  });
}

/// ConvTranspose: W is [C, M/group, k...]. Output size follows output_shape when given (pads then
/// derived from the total padding, SAME_UPPER putting the odd one at the end), else
/// stride*(in-1) + output_padding + effective kernel - pads.
inline void conv_transpose(context& c) {
  c.require_inputs(2, 3);
  detail::check_float_inputs(c);
  const tensor& x = c.input(0);
  const tensor& wt = c.input(1);
  AMCTQ_CHECK(x.rank() == wt.rank() && x.rank() >= 3 && x.rank() <= 5, errc::shape_mismatch, c.where(), "X ",
              shape_string(x.shape()), " and W ", shape_string(wt.shape()), " must have the same rank 3 to 5");
  const std::int64_t N = x.dim(0), C = x.dim(1);
  const std::int64_t group = c.n.get_int("group", 1);
  AMCTQ_CHECK(group > 0 && C % group == 0 && wt.dim(0) == C, errc::shape_mismatch, c.where(), "X has ", C,
              " channels, W ", shape_string(wt.shape()), ", group ", group, ": need W.shape[0] == C divisible by group");
  const std::int64_t Mg = wt.dim(1), M = Mg * group, Cg = C / group;
  const std::size_t ns = x.rank() - 2;
  const auto kernel = detail::kernel_of(c, wt);
  const auto strides = detail::spatial_attr(c, "strides", ns, 1);
  const auto dil = detail::spatial_attr(c, "dilations", ns, 1);
  const auto out_pad = detail::spatial_attr(c, "output_padding", ns, 0);
  const auto auto_pad = c.n.get_string("auto_pad", "NOTSET");
  std::vector<std::int64_t> pads = detail::spatial_attr(c, "pads", 2 * ns, 0);
  std::vector<std::int64_t> out_shape = c.n.get_ints("output_shape");
  if (out_shape.size() == ns + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  AMCTQ_CHECK(out_shape.empty() || out_shape.size() == ns, errc::invalid_argument, c.where(), "output_shape has ",
              out_shape.size(), " values, expected ", ns);
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  window w;  // describes the forward conv from the result back to x
  w.spatial = ns;
  for (std::size_t i = 0; i < ns; ++i) {
    const std::size_t d = 3 - ns + i;
    w.in[d] = x.dim(2 + i);
    w.kernel[d] = kernel[i];
    w.stride[d] = strides[i];
    w.dilation[d] = dil[i];
    const std::int64_t full = strides[i] * (w.in[d] - 1) + out_pad[i] + w.effective_kernel(d);
    if (!out_shape.empty() || same) {
      w.out[d] = out_shape.empty() ? w.in[d] * strides[i] : out_shape[i];
      const std::int64_t total = full - w.out[d];
      const std::int64_t half = floor_div(total, 2);
      w.pad_begin[d] = auto_pad == "SAME_UPPER" ? half : total - half;
      w.pad_end[d] = total - w.pad_begin[d];
    } else {
      if (auto_pad != "VALID") {
        w.pad_begin[d] = pads[i];
        w.pad_end[d] = pads[ns + i];
      }
      w.out[d] = full - w.pad_begin[d] - w.pad_end[d];
    }
    AMCTQ_CHECK(w.out[d] > 0, errc::shape_mismatch, c.where(), "output dim ", i, " would be ", w.out[d]);
  }
  const float* bias = nullptr;
  if (c.has_input(2)) {
    AMCTQ_CHECK(c.input(2).size() == static_cast<std::size_t>(M), errc::shape_mismatch, c.where(), "B has ",
                c.input(2).size(), " elements, expected ", M);
    bias = c.input(2).data<float>();
  }
  std::vector<std::int64_t> yshape{N, M};
  for (auto d : w.out_spatial()) yshape.push_back(d);
  tensor& y = c.make_output(0, dtype::float32, yshape);  // zero-filled: col2im accumulates
  const std::int64_t rows = Mg * w.kernel_size(), I = w.in_size(), O = w.out_size();
  if (c.scratch.size() < static_cast<std::size_t>(rows * I)) c.scratch.resize(static_cast<std::size_t>(rows * I));
  const float* px = x.data<float>();
  const float* pw = wt.data<float>();
  float* py = y.data<float>();
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t g = 0; g < group; ++g) {
      detail::matrix_map(c.scratch.data(), rows, I).noalias() =
          detail::const_matrix_map(pw + g * Cg * rows, Cg, rows).transpose() *
          detail::const_matrix_map(px + (n * C + g * Cg) * I, Cg, I);
      float* yg = py + (n * M + g * Mg) * O;
      detail::col2im_add(c.scratch.data(), Mg, w, yg);
      if (bias) detail::add_bias_rows(yg, bias + g * Mg, Mg, O);
    }
}

/// The conv ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table conv_ops() {
  return {
      {"Conv", conv}, {"ConvTranspose", conv_transpose}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_CONV_HPP
