// Conv (1d, 2d, 3d; grouped and depthwise). Deploy: QLinearConv writing the next layer's int8
// input grid when the output reaches exactly one quantized layer through ops that commute with
// quantization (lower_qoperator.hpp finds that path), else ConvInteger + int32 bias + rescale.
#ifndef AMCTQ_GRAPH_LAYERS_CONV_HPP
#define AMCTQ_GRAPH_LAYERS_CONV_HPP

#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/layers/kind.hpp"
#include "amctq/graph/layers/lowering.hpp"
#include "amctq/graph/ops/im2col.hpp"

namespace amctq::graph::layers {

/// Layout of a Conv (transposed = false) or ConvTranspose weight of rank 3-5.
inline weight_layout conv_family_layout(const node& n, const tensor& w, bool transposed) {
  const auto groups = static_cast<std::ptrdiff_t>(n.get_int("group", 1));
  auto of = [&](const auto& v) {
    return transposed ? conv_transpose_weight_layout(v, groups) : conv_weight_layout(v, groups);
  };
  switch (w.rank()) {
    case 3: return layout_over<3>(w, of);
    case 4: return layout_over<4>(w, of);
    case 5: return layout_over<5>(w, of);
    default:
      AMCTQ_THROW(errc::unsupported, "layer '" + n.name + "'", n.op_type, " weight of rank ", w.rank(),
                  " is not supported (1d, 2d or 3d only)");
  }
}

inline weight_layout conv_layout(const node& n, const tensor& w) { return conv_family_layout(n, w, false); }

/// Conv's weight columns: each image's im2col, group by group, as the executor's Conv builds them.
inline void conv_columns(const node& n, const tensor& x, const tensor& w, const columns_sink& take) {
  std::vector<float> scratch;
  const ops::context ctx{n, 0, {}, {}, scratch};
  const std::vector<std::int64_t> kernel(w.shape().begin() + 2, w.shape().end());
  const ops::window win = ops::forward_window(ctx, x.shape(), kernel, false);
  const std::int64_t images = x.dim(0), C = x.dim(1), G = n.get_int("group", 1), Cg = C / G;
  input_columns cols;
  cols.groups = G;
  cols.rows = Cg * win.kernel_size();
  cols.count = win.out_size();
  cols.data.resize(static_cast<std::size_t>(G * cols.rows * cols.count));
  for (std::int64_t i = 0; i < images; ++i) {
    for (std::int64_t g = 0; g < G; ++g)
      ops::detail::im2col(x.data<float>() + (i * C + g * Cg) * win.in_size(), Cg, win,
                          cols.data.data() + g * cols.rows * cols.count);
    take(cols);
  }
}

inline void conv_qdq(qdq_lowering& c) {
  detail::lower_weight_and_bias_qdq(c, conv_layout(c.n, c.r.weight_q).out_axis);
}

/// The integer form of a conv-like layer with int8 weights wq (scales ws, zero points 0):
/// QLinearConv into c.target's grid, or ConvInteger + rescale to float. AveragePool uses it too.
inline void lower_conv_integer(qoperator_lowering& c, const tensor& wq, const std::vector<float>& ws,
                               const std::vector<attribute>& conv_attrs, const std::vector<float>& output_scale) {
  graph& g = c.g;
  const std::string& name = c.l.name;
  const bool vec = ws.size() > 1;
  const std::string wt = name + "_weight";
  detail::add_init(g, wt + "_quantized", wq);
  if (c.target != nullptr) {
    detail::add_init(g, wt + "_scale", detail::scale_tensor(ws, vec));
    detail::add_init(g, wt + "_zero_point", detail::int8_zero_points(std::vector<std::int32_t>(ws.size(), 0), vec));
    const quant_params& yp = c.target_record->act;
    const std::string yt = c.target->name + "_y_of_" + name;
    detail::add_init(g, yt + "_scale", detail::scale_tensor(yp.scale, false));
    detail::add_init(g, yt + "_zero_point", detail::int8_zero_points(yp.zero_point, false));
    std::vector<std::string> in = {c.x, c.x_scale, c.x_zero_point, wt + "_quantized", wt + "_scale", wt + "_zero_point",
                                   yt + "_scale", yt + "_zero_point"};
    if (!c.r.bias_q.empty()) {
      detail::add_init(g, name + "_bias_quantized",
                       tensor::from<std::int32_t>({static_cast<std::int64_t>(c.r.bias_q.size())}, c.r.bias_q));
      in.push_back(name + "_bias_quantized");
    }
    const bool narrow = yp.qmin > -128 || yp.qmax < 127;
    const std::string y = narrow ? c.l.output + "_int8" : c.l.output;
    c.out.push_back(detail::make_node("QLinearConv", name, in, {y}, conv_attrs));
    if (narrow) {  // sub-8-bit grid: int8 saturation is wider than the grid
      detail::add_init(g, yt + "_qmin", tensor::from<std::int8_t>({}, {static_cast<std::int8_t>(yp.qmin)}));
      detail::add_init(g, yt + "_qmax", tensor::from<std::int8_t>({}, {static_cast<std::int8_t>(yp.qmax)}));
      c.out.push_back(detail::make_node("Clip", name + "_grid_clip", {y, yt + "_qmin", yt + "_qmax"}, {c.l.output}));
    }
    return;
  }
  // ORT's ConvInteger takes only a per-tensor weight zero point; the weights are symmetric
  // (every zero point 0), so one scalar 0 serves per-channel weights too.
  detail::add_init(g, wt + "_zero_point", tensor::from<std::int8_t>({}, {std::int8_t{0}}));
  c.out.push_back(detail::make_node("ConvInteger", name, {c.x, wt + "_quantized", c.x_zero_point, wt + "_zero_point"},
                                    {name + "_acc"}, conv_attrs));
  detail::emit_integer_rescale(c, name + "_acc", output_scale, true);
}

inline void conv_qoperator(qoperator_lowering& c) {
  lower_conv_integer(c, c.r.weight_q, c.r.wts.scale, c.n.attributes, detail::bias_scales(c.r, c.r.wts.channels()));
}

inline layer_kind conv() {
  layer_kind k;
  k.op_type = "Conv";
  k.weight_input = 1;
  k.bias_input = 2;
  k.activation_channel_axis = 1;
  k.layout = conv_layout;
  k.weight_columns = conv_columns;
  k.balance = k.equalize = k.correct_bias = k.fold_batchnorm = true;
  k.requantizes = true;
  k.lower_qdq = conv_qdq;
  k.lower_qoperator = conv_qoperator;
  return k;
}

}  // namespace amctq::graph::layers

#endif  // AMCTQ_GRAPH_LAYERS_CONV_HPP
