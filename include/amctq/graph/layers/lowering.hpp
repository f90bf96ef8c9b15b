// The pieces every layer kind's lowering is made of: new nodes and initializers, a tensor's
// QuantizeLinear (with the grid clip of sub-8-bit grids), the weight / bias DequantizeLinear of
// the fake-quant model, and the int32 accumulator's rescale to float of the deploy model.
#ifndef AMCTQ_GRAPH_LAYERS_LOWERING_HPP
#define AMCTQ_GRAPH_LAYERS_LOWERING_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/layers/kind.hpp"
#include "amctq/graph/quant_record.hpp"

namespace amctq::graph {

/// Integers up to this magnitude are exact in float, and so is every sum of them that stays below it.
inline constexpr double float_exact_integers = 16777216.0;  // 2^24

namespace detail {

inline attribute int_attr(const std::string& name, std::int64_t v) {
  attribute a;
  a.name = name;
  a.type = attribute::kind::i;
  a.i = v;
  return a;
}

inline node make_node(const std::string& op, const std::string& name, std::vector<std::string> in,
                      std::vector<std::string> out, std::vector<attribute> attrs = {}, std::string domain = {}) {
  node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attributes = std::move(attrs);
  n.domain = std::move(domain);
  return n;
}

inline void add_init(graph& g, const std::string& name, tensor t) {
  initializer i;
  i.name = name;
  i.value = std::move(t);
  g.initializers.push_back(std::move(i));
}

inline tensor scale_tensor(const std::vector<float>& s, bool vector) {
  return vector ? tensor::from<float>({static_cast<std::int64_t>(s.size())}, s) : tensor::from<float>({}, {s[0]});
}
inline tensor int8_zero_points(const std::vector<std::int32_t>& z, bool vector) {
  std::vector<std::int8_t> v(z.begin(), z.end());
  return vector ? tensor::from<std::int8_t>({static_cast<std::int64_t>(v.size())}, v)
                : tensor::from<std::int8_t>({}, {v[0]});
}

/// Shape [1, .., c, .., 1] of rank `rank` with c at `axis`: a per-channel constant that broadcasts.
inline std::vector<std::int64_t> channel_shape(std::size_t c, std::size_t rank, std::size_t axis) {
  std::vector<std::int64_t> s(rank, 1);
  s[axis] = static_cast<std::int64_t>(c);
  return s;
}

/// The float scale of an int32 bias code: s_d * s_w[c], as the exporters and simulators use it.
inline std::vector<float> bias_scales(const layer_record& r, std::size_t n) {
  std::vector<float> s(n);
  for (std::size_t c = 0; c < n; ++c) s[c] = r.act.scale[0] * r.wts.scale[r.wts.channels() == 1 ? 0 : c];
  return s;
}

inline void check_exportable(const layer_record& r) {
  AMCTQ_CHECK(r.act_bits <= 8, errc::unsupported, "save_model", "layer '", r.name, "': ", r.act_bits,
              "-bit activations cannot be stored in ONNX int8 tensors; use num_bits 4 or 8");
}

/// The int8 codes of x on the per-tensor grid p rounded by `mode` (not half_even), from standard
/// ONNX ops, since QuantizeLinear rounds half to even only. With v = x / s (the division
/// QuantizeLinear does), a = |v| and d = a - floor(a) (exact: a >= 0), the magnitude rounds up
/// when d > 0.5, or d == 0.5 and the mode says so for v's sign: q = sign(v) * (floor(a) + up).
/// Every step is exact in float, so ONNX Runtime and amctq's executor agree bit for bit, and
/// with round_as (rounding.hpp). Then + zero point, clamped to [qmin, qmax], cast to int8.
inline std::string emit_rounded_quantize(graph& g, std::vector<node>& out, const std::string& x,
                                         const std::string& tag, const quant_params& p, round_mode mode) {
  AMCTQ_CHECK(!p.is_per_channel(), errc::unsupported, "save_model", "tensor '", x, "': ", to_string(mode),
              " rounding needs a per-tensor grid");
  const std::string t = tag + "_round";
  auto f32 = [&](const std::string& name, float v) { add_init(g, name, tensor::from<float>({}, {v})); };
  f32(t + "_half", 0.5f);
  f32(t + "_zero", 0.0f);
  f32(t + "_zero_point", static_cast<float>(p.zero_point[0]));
  f32(t + "_qmin", static_cast<float>(p.qmin));
  f32(t + "_qmax", static_cast<float>(p.qmax));
  auto op = [&](const char* type, const std::string& name, std::vector<std::string> in, std::vector<attribute> a = {}) {
    out.push_back(make_node(type, t + name, std::move(in), {t + name}, std::move(a)));
    return t + name;
  };
  auto to_float = [&](const std::string& b) { return op("Cast", b.substr(t.size()) + "_f", {b}, {int_attr("to", 1)}); };
  const std::string v = op("Div", "_v", {x, tag + "_scale"});
  const std::string a = op("Abs", "_a", {v});
  const std::string fa = op("Floor", "_floor", {a});
  const std::string d = op("Sub", "_frac", {a, fa});
  // A tie rounds the magnitude up always (half_away), for v > 0 (half_up), for v < 0 (half_down).
  std::string tie = to_float(op("Equal", "_tie", {d, t + "_half"}));
  if (mode == round_mode::half_up) tie = op("Mul", "_tie_up", {tie, to_float(op("Greater", "_pos", {v, t + "_zero"}))});
  if (mode == round_mode::half_down) tie = op("Mul", "_tie_up", {tie, to_float(op("Less", "_neg", {v, t + "_zero"}))});
  const std::string up = op("Add", "_up", {to_float(op("Greater", "_above", {d, t + "_half"})), tie});
  const std::string mag = op("Add", "_mag", {fa, up});
  const std::string q = op("Mul", "_signed", {mag, op("Sign", "_sign", {v})});
  const std::string z = op("Add", "_shifted", {q, t + "_zero_point"});
  const std::string c = op("Clip", "_clipped", {z, t + "_qmin", t + "_qmax"});
  out.push_back(make_node("Cast", tag + "_quantize", {c}, {tag + "_quantized"}, {int_attr("to", 3)}));
  return tag + "_quantized";
}

/// Emits QuantizeLinear of x on grid p (per-tensor, or per-channel on p.axis of a rank-`rank`
/// tensor), clipped first to the grid when it is narrower than int8 (int8 storage cannot clamp
/// to [-8, 7]); returns the int8 tensor's name. The scale / zero point initializers are
/// tag + "_scale" / "_zero_point". Other rounding than half_even: emit_rounded_quantize.
inline std::string emit_quantize(graph& g, std::vector<node>& out, const std::string& x, const std::string& tag,
                                 const quant_params& p, std::size_t rank = 0,
                                 round_mode mode = round_mode::half_even) {
  if (mode != round_mode::half_even) {
    add_init(g, tag + "_scale", scale_tensor(p.scale, false));
    add_init(g, tag + "_zero_point", int8_zero_points(p.zero_point, false));
    return emit_rounded_quantize(g, out, x, tag, p, mode);
  }
  std::string src = x;
  const bool vec = p.is_per_channel();
  if (p.qmin > -128 || p.qmax < 127) {
    std::vector<float> lo(p.scale.size()), hi(p.scale.size());
    for (std::size_t c = 0; c < p.scale.size(); ++c) {
      lo[c] = static_cast<float>(p.qmin - p.zero_point[c]) * p.scale[c];
      hi[c] = static_cast<float>(p.qmax - p.zero_point[c]) * p.scale[c];
    }
    if (!vec) {
      add_init(g, tag + "_clip_min", tensor::from<float>({}, {lo[0]}));
      add_init(g, tag + "_clip_max", tensor::from<float>({}, {hi[0]}));
      out.push_back(make_node("Clip", tag + "_clip", {x, tag + "_clip_min", tag + "_clip_max"}, {tag + "_clipped"}));
    } else {
      // Clip takes scalar bounds only; per-channel bounds go through Max and Min, which broadcast.
      AMCTQ_CHECK(rank > static_cast<std::size_t>(p.axis), errc::invalid_argument, "save_model", "tensor '", x,
                  "': per-channel axis ", p.axis, " needs the tensor's rank");
      const auto shape = channel_shape(p.scale.size(), rank, static_cast<std::size_t>(p.axis));
      add_init(g, tag + "_clip_min", tensor::from<float>(shape, lo));
      add_init(g, tag + "_clip_max", tensor::from<float>(shape, hi));
      out.push_back(make_node("Max", tag + "_clip_low", {x, tag + "_clip_min"}, {tag + "_clipped_low"}));
      out.push_back(make_node("Min", tag + "_clip", {tag + "_clipped_low", tag + "_clip_max"}, {tag + "_clipped"}));
    }
    src = tag + "_clipped";
  }
  add_init(g, tag + "_scale", scale_tensor(p.scale, vec));
  add_init(g, tag + "_zero_point", int8_zero_points(p.zero_point, vec));
  std::vector<attribute> axis;
  if (vec) axis.push_back(int_attr("axis", p.axis));
  out.push_back(make_node("QuantizeLinear", tag + "_quantize", {src, tag + "_scale", tag + "_zero_point"},
                          {tag + "_quantized"}, axis));
  return tag + "_quantized";
}

/// Emits QuantizeLinear -> DequantizeLinear of x on grid p; returns the dequantized tensor's name.
inline std::string emit_fake_quantize(graph& g, std::vector<node>& out, const std::string& x, const std::string& tag,
                                      const quant_params& p, std::size_t rank,
                                      round_mode mode = round_mode::half_even) {
  const std::string q = emit_quantize(g, out, x, tag, p, rank, mode);
  std::vector<attribute> axis;
  if (p.is_per_channel()) axis.push_back(int_attr("axis", p.axis));
  out.push_back(make_node("DequantizeLinear", tag + "_dequantize", {q, tag + "_scale", tag + "_zero_point"},
                          {tag + "_dequantized"}, axis));
  return tag + "_dequantized";
}

/// The fake-quant weight of a layer: its int8 codes through DequantizeLinear on the weight's
/// output-channel axis `out_axis`, read by the layer's input `weight_input` instead of the float weight.
inline void lower_weight_qdq(qdq_lowering& c, std::ptrdiff_t out_axis, std::size_t weight_input) {
  const layer_record& r = c.r;
  const bool vec = r.wts.is_per_channel();
  const std::string wt = c.l.name + "_weight";
  add_init(c.g, wt + "_quantized", r.weight_q);
  add_init(c.g, wt + "_scale", scale_tensor(r.wts.scale, vec));
  add_init(c.g, wt + "_zero_point", int8_zero_points(r.wts.zero_point, vec));
  std::vector<attribute> axis;
  if (vec) axis.push_back(int_attr("axis", out_axis));
  c.before.push_back(make_node("DequantizeLinear", wt + "_dequantize",
                               {wt + "_quantized", wt + "_scale", wt + "_zero_point"}, {wt + "_dequantized"}, axis));
  c.n.inputs[weight_input] = wt + "_dequantized";
}

/// lower_weight_qdq of input 1, and the bias (input 2; when it was quantized: a per-tensor input
/// grid) as int32 codes through DequantizeLinear with scale s_d * s_w. Returns whether the bias
/// was replaced.
inline bool lower_weight_and_bias_qdq(qdq_lowering& c, std::ptrdiff_t out_axis) {
  lower_weight_qdq(c, out_axis, 1);
  const layer_record& r = c.r;
  if (c.l.bias.empty() || r.bias_q.empty()) return false;
  const std::string bt = c.l.name + "_bias";
  const auto nb = static_cast<std::int64_t>(r.bias_q.size());
  std::vector<attribute> axis;
  if (!r.bias_grid.scale.empty()) {
    // A bias of its own bit width: its codes on its own grid, the values the layer adds.
    add_init(c.g, bt + "_quantized", tensor::from<std::int8_t>({nb}, r.bias_grid_q));
    add_init(c.g, bt + "_scale", scale_tensor(r.bias_grid.scale, false));
    add_init(c.g, bt + "_zero_point", int8_zero_points(r.bias_grid.zero_point, false));
  } else {
    add_init(c.g, bt + "_quantized", tensor::from<std::int32_t>({nb}, r.bias_q));
    add_init(c.g, bt + "_scale", tensor::from<float>({nb}, bias_scales(r, r.bias_q.size())));
    add_init(c.g, bt + "_zero_point", tensor::from<std::int32_t>({nb}, std::vector<std::int32_t>(r.bias_q.size(), 0)));
    axis.push_back(int_attr("axis", 0));
  }
  c.before.push_back(make_node("DequantizeLinear", bt + "_dequantize",
                               {bt + "_quantized", bt + "_scale", bt + "_zero_point"}, {bt + "_dequantized"}, axis));
  c.n.inputs[2] = bt + "_dequantized";
  return true;
}

/// The deploy model's float output of an integer layer: the int32 accumulator `acc` (+ the int32
/// bias) cast to float times s_d * s_w per output channel, written to the layer's output.
/// Per-channel constants have shape [1, C, 1, ...] of the input's rank for conv-like layers
/// (channels on axis 1), [C] for Gemm / MatMul (channels last).
inline void emit_integer_rescale(qoperator_lowering& c, std::string acc, const std::vector<float>& output_scale,
                                 bool channels_on_axis_1) {
  const layer_record& r = c.r;
  const std::size_t rank = channels_on_axis_1 ? r.input_shape.size() : 0;
  auto per_channel_shape = [&](std::size_t n) {
    return channels_on_axis_1 ? channel_shape(n, std::max<std::size_t>(rank, 3), 1)
                              : std::vector<std::int64_t>{static_cast<std::int64_t>(n)};
  };
  if (!r.bias_q.empty()) {
    add_init(c.g, c.l.name + "_bias_quantized", tensor::from<std::int32_t>(per_channel_shape(r.bias_q.size()), r.bias_q));
    c.out.push_back(make_node("Add", c.l.name + "_bias_add", {acc, c.l.name + "_bias_quantized"}, {acc + "_biased"}));
    acc += "_biased";
  }
  attribute to = int_attr("to", static_cast<std::int64_t>(dtype::float32));
  c.out.push_back(make_node("Cast", c.l.name + "_cast", {acc}, {acc + "_float"}, {to}));
  add_init(c.g, c.l.name + "_output_scale", tensor::from<float>(per_channel_shape(output_scale.size()), output_scale));
  c.out.push_back(make_node("Mul", c.l.name + "_rescale", {acc + "_float", c.l.name + "_output_scale"}, {c.l.output}));
}

}  // namespace detail

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_LAYERS_LOWERING_HPP
