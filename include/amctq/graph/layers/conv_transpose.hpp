// ConvTranspose. ONNX has no integer ConvTranspose, so the deploy model runs a float
// ConvTranspose over the integer codes and rescales, which is exact while the partial sums stay
// below 2^24 (the codes are split in two parts past that; see conv_transpose_parts).
#ifndef AMCTQ_GRAPH_LAYERS_CONV_TRANSPOSE_HPP
#define AMCTQ_GRAPH_LAYERS_CONV_TRANSPOSE_HPP

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/layers/conv.hpp"
#include "amctq/graph/layers/kind.hpp"
#include "amctq/graph/layers/lowering.hpp"

namespace amctq::graph {

/// The largest |partial sum| a float ConvTranspose over the integer codes w (weight layout
/// [C_in, C_out / groups, k...]) can reach for layer r: over output channels, sum |w| over the
/// channel's taps * max |x_code - x_zp| + |bias_code| (bias_q when with_bias). While it is below
/// 2^24 every partial sum is an integer that float holds exactly, so ONNX Runtime and amctq
/// agree bit for bit whatever order they sum in.
inline double conv_transpose_sum_bound(const layer_record& r, const tensor& w, std::int64_t groups, bool with_bias = true) {
  AMCTQ_CHECK(w.type() == dtype::int8 && w.rank() >= 3 && groups >= 1 && w.dim(0) % groups == 0, errc::invalid_argument,
              "conv_transpose_sum_bound", "layer '", r.name, "': expected int8 ConvTranspose codes with C_in divisible by ",
              groups);
  std::int64_t taps = 1;
  for (std::size_t d = 2; d < w.rank(); ++d) taps *= w.dim(d);
  const tensor_view<const std::int8_t, 3> codes(w.data<std::int8_t>(), {w.dim(0), w.dim(1), taps});
  const weight_layout L = conv_transpose_weight_layout(codes, groups);
  std::vector<double> sum_abs(static_cast<std::size_t>(L.out_channels()), 0.0);
  for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
    const auto block = group_view(codes.data_handle(), L, g);  // [out, in, taps] of group g
    for (std::ptrdiff_t o = 0; o < L.out_per_group; ++o) {
      double& s = sum_abs[static_cast<std::size_t>(g * L.out_per_group + o)];
      for (std::ptrdiff_t i = 0; i < L.in_per_group; ++i)
        for (std::ptrdiff_t k = 0; k < L.spatial; ++k) s += std::abs(static_cast<int>(block(o, i, k)));
    }
  }
  const std::int32_t zp = r.act.zero_point.empty() ? 0 : r.act.zero_point[0];
  const double x_max = std::max(r.act.qmax - zp, zp - r.act.qmin);
  double bound = 0.0;
  for (std::size_t o = 0; o < sum_abs.size(); ++o) {
    const double b = with_bias && o < r.bias_q.size() ? std::fabs(static_cast<double>(r.bias_q[o])) : 0.0;
    bound = std::max(bound, sum_abs[o] * x_max + b);
  }
  return bound;
}

/// How the deploy model sums a ConvTranspose layer's codes in float. One part when its
/// conv_transpose_sum_bound is below 2^24. Otherwise the codes are split as w = 16 * high + low
/// with high, low in [-8, 8]: each part's sums are 16 times smaller, both are exact, and
/// 16 * high_sum + low_sum is one correctly rounded float addition of the exact accumulator —
/// what amctq's simulation computes too. `exact` is false when even the parts pass 2^24 (the
/// bias, when there is one, goes with the low part).
struct conv_transpose_form {
  std::vector<tensor> parts;  ///< {codes} or {high, low}
  bool exact = true;
};

inline constexpr int conv_transpose_split_radix = 16;

inline conv_transpose_form conv_transpose_parts(const layer_record& r, std::int64_t groups) {
  conv_transpose_form f;
  if (conv_transpose_sum_bound(r, r.weight_q, groups) < float_exact_integers) {
    f.parts.push_back(r.weight_q);
    return f;
  }
  tensor high(dtype::int8, r.weight_q.shape()), low(dtype::int8, r.weight_q.shape());
  const std::int8_t* w = r.weight_q.data<std::int8_t>();
  for (std::size_t i = 0; i < r.weight_q.size(); ++i) {
    const int h = static_cast<int>(std::lround(static_cast<double>(w[i]) / conv_transpose_split_radix));
    high.data<std::int8_t>()[i] = static_cast<std::int8_t>(h);
    low.data<std::int8_t>()[i] = static_cast<std::int8_t>(w[i] - conv_transpose_split_radix * h);
  }
  f.exact = conv_transpose_sum_bound(r, high, groups, false) < float_exact_integers &&
            conv_transpose_sum_bound(r, low, groups, true) < float_exact_integers;
  f.parts = {std::move(high), std::move(low)};
  return f;
}

}  // namespace amctq::graph

namespace amctq::graph::layers {

inline weight_layout conv_transpose_layout(const node& n, const tensor& w) { return conv_family_layout(n, w, true); }

/// ConvTranspose's weight columns: each input pixel's channels, group by group. Its GEMM
/// (columns_transposed) makes every (output channel, tap) contribution of a pixel before col2im
/// sums the overlapping ones, so learned rounding reconstructs those contributions; they are
/// the output itself when the stride is the kernel (no overlap).
inline void conv_transpose_columns(const node& n, const tensor& x, const tensor&, const columns_sink& take) {
  const std::int64_t images = x.dim(0), G = n.get_int("group", 1);
  input_columns cols;
  cols.groups = G;
  cols.rows = x.dim(1) / G;
  cols.count = static_cast<std::int64_t>(x.size()) / std::max<std::int64_t>(images * x.dim(1), 1);
  const std::size_t per_image = static_cast<std::size_t>(G * cols.rows * cols.count);
  for (std::int64_t i = 0; i < images; ++i) {
    const float* p = x.data<float>() + static_cast<std::size_t>(i) * per_image;
    cols.data.assign(p, p + per_image);  // an image of [C, spatial...] is already [G][C/G][pixels]
    take(cols);
  }
}

inline void conv_transpose_qdq(qdq_lowering& c) {
  detail::lower_weight_and_bias_qdq(c, conv_transpose_layout(c.n, c.r.weight_q).out_axis);
}

inline void conv_transpose_qoperator(qoperator_lowering& c) {
  const std::vector<float> output_scale = detail::bias_scales(c.r, c.r.wts.channels());
  const std::string wt = c.l.name + "_weight";
  // No integer ONNX op, so the float ConvTranspose computes the integer accumulator: it reads
  // the codes (x - x_zp, w, and the int32 bias) as floats through DequantizeLinear with
  // scale 1, and a Mul by s_d * s_w[c] follows, as after ConvInteger. Integer-valued float
  // sums are exact while every partial sum stays below 2^24, so ORT (MLAS) and amctq's
  // executor agree bit for bit whatever their summation order; layers past that bound sum
  // their codes in two parts (conv_transpose_parts). Dequantizing to real values first would
  // round every partial sum, differently in each.
  const conv_transpose_form form = conv_transpose_parts(c.r, c.n.get_int("group", 1));
  const bool split = form.parts.size() == 2;
  detail::add_init(c.g, c.l.name + "_unit_scale", tensor::from<float>({}, {1.0f}));
  detail::add_init(c.g, wt + "_zero_point", tensor::from<std::int8_t>({}, {std::int8_t{0}}));
  c.out.push_back(detail::make_node("DequantizeLinear", c.l.name + "_x_codes", {c.x, c.l.name + "_unit_scale", c.x_zero_point},
                                  {c.l.name + "_x_codes"}));
  std::string bias_codes;
  if (!c.r.bias_q.empty()) {
    const std::string bt = c.l.name + "_bias";
    detail::add_init(c.g, bt + "_quantized",
                     tensor::from<std::int32_t>({static_cast<std::int64_t>(c.r.bias_q.size())}, c.r.bias_q));
    detail::add_init(c.g, bt + "_zero_point", tensor::from<std::int32_t>({}, {0}));
    c.out.push_back(detail::make_node("DequantizeLinear", bt + "_codes",
                                    {bt + "_quantized", c.l.name + "_unit_scale", bt + "_zero_point"}, {bt + "_codes"}));
    bias_codes = bt + "_codes";
  }
  const std::string y = c.n.outputs[0];
  std::vector<std::string> sums;
  for (std::size_t k = 0; k < form.parts.size(); ++k) {
    const std::string tag = split ? (k == 0 ? "_high" : "_low") : "";
    const std::string part = wt + tag;
    detail::add_init(c.g, part + "_quantized", form.parts[k]);
    c.out.push_back(detail::make_node("DequantizeLinear", part + "_codes",
                                    {part + "_quantized", c.l.name + "_unit_scale", wt + "_zero_point"}, {part + "_codes"}));
    node part_node = c.n;
    part_node.name = split ? c.l.name + tag : c.n.name;
    part_node.inputs[0] = c.l.name + "_x_codes";
    part_node.inputs[1] = part + "_codes";
    if (k + 1 == form.parts.size() && !bias_codes.empty()) part_node.inputs[2] = bias_codes;
    else if (part_node.inputs.size() > 2) part_node.inputs.resize(2);
    part_node.outputs[0] = c.l.name + "_acc_float" + tag;
    sums.push_back(part_node.outputs[0]);
    c.out.push_back(std::move(part_node));
  }
  std::string acc = sums[0];
  if (split) {
    detail::add_init(c.g, c.l.name + "_split_radix",
                     tensor::from<float>({}, {static_cast<float>(conv_transpose_split_radix)}));
    c.out.push_back(detail::make_node("Mul", c.l.name + "_high_scale", {sums[0], c.l.name + "_split_radix"},
                                    {c.l.name + "_acc_high_scaled"}));
    acc = c.l.name + "_acc_float";
    c.out.push_back(detail::make_node("Add", c.l.name + "_parts_sum", {c.l.name + "_acc_high_scaled", sums[1]}, {acc}));
  }
  detail::add_init(c.g, c.l.name + "_output_scale",
                   tensor::from<float>(detail::channel_shape(output_scale.size(), std::max<std::size_t>(c.r.input_shape.size(), 3), 1),
                                       output_scale));
  c.out.push_back(detail::make_node("Mul", c.l.name + "_rescale", {acc, c.l.name + "_output_scale"}, {y}));
}

/// The layers whose float accumulator even the split form cannot keep below 2^24: ONNX Runtime
/// may then differ from amctq's simulation in the last bit of some outputs.
inline std::string conv_transpose_deploy_note(const node& n, const layer_record& r) {
  const std::int64_t groups = n.get_int("group", 1);
  if (conv_transpose_parts(r, groups).exact) return {};
  std::ostringstream os;
  os << "layer '" << r.name << "' (ConvTranspose): its float accumulator's partial sums can reach "
     << conv_transpose_sum_bound(r, r.weight_q, groups)
     << " >= 2^24 even when split in two, so ONNX Runtime may differ from amctq's integer simulation in the last "
        "bit of some outputs";
  return os.str();
}

inline layer_kind conv_transpose() {
  layer_kind k;
  k.op_type = "ConvTranspose";
  k.weight_input = 1;
  k.bias_input = 2;
  k.activation_channel_axis = 1;
  k.layout = conv_transpose_layout;
  k.weight_columns = conv_transpose_columns;
  k.columns_transposed = true;
  k.balance = k.equalize = k.correct_bias = k.fold_batchnorm = true;
  k.lower_qdq = conv_transpose_qdq;
  k.lower_qoperator = conv_transpose_qoperator;
  k.deploy_note = conv_transpose_deploy_note;
  return k;
}

}  // namespace amctq::graph::layers

#endif  // AMCTQ_GRAPH_LAYERS_CONV_TRANSPOSE_HPP
