// The fake-quant model: every quantized layer reads its input through QuantizeLinear ->
// DequantizeLinear (per tensor, the calibrated scale_d / offset_d), its weights as int8 codes
// through DequantizeLinear (per output channel on the weight's channel axis) and its bias as
// int32 codes through DequantizeLinear with scale s_d * s_w. Activations narrower than 8 bits
// are clipped to their grid before QuantizeLinear (int8 storage cannot clamp to [-8, 7]).
#ifndef AMCTQ_GRAPH_PASSES_LOWER_QDQ_HPP
#define AMCTQ_GRAPH_PASSES_LOWER_QDQ_HPP

#include <map>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/passes/graph_edit.hpp"
#include "amctq/graph/quant_layers.hpp"
#include "amctq/graph/quant_record.hpp"

namespace amctq::graph {

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

/// Emits QuantizeLinear (with a Clip first for sub-8-bit grids); returns the int8 tensor name.
inline std::string emit_quantize(graph& g, std::vector<node>& out, const std::string& x, const std::string& tag,
                                 const quant_params& p) {
  std::string src = x;
  if (p.qmin > -128 || p.qmax < 127) {
    const float lo = static_cast<float>(p.qmin - p.zero_point[0]) * p.scale[0];
    const float hi = static_cast<float>(p.qmax - p.zero_point[0]) * p.scale[0];
    add_init(g, tag + "_clip_min", tensor::from<float>({}, {lo}));
    add_init(g, tag + "_clip_max", tensor::from<float>({}, {hi}));
    out.push_back(make_node("Clip", tag + "_clip", {x, tag + "_clip_min", tag + "_clip_max"}, {tag + "_clipped"}));
    src = tag + "_clipped";
  }
  add_init(g, tag + "_scale", scale_tensor(p.scale, false));
  add_init(g, tag + "_zero_point", int8_zero_points(p.zero_point, false));
  out.push_back(make_node("QuantizeLinear", tag + "_quantize", {src, tag + "_scale", tag + "_zero_point"},
                          {tag + "_quantized"}));
  return tag + "_quantized";
}

}  // namespace detail

/// The QDQ fake-quant model of `float_model` (BatchNorm folded, balanced) under `rec`.
inline model lower_qdq(const model& float_model, const std::vector<quant_layer>& layers, const quant_record& rec) {
  AMCTQ_CHECK(float_model.opset() >= 13, errc::unsupported, "save_model", "the model's opset ",
              float_model.opset(), " is below 13, the first with per-axis DequantizeLinear");
  model m = float_model;
  graph& g = m.main;
  std::map<std::size_t, std::vector<node>> before;  // nodes to emit before node k
  std::map<std::string, std::string> dq_of;           // input tensor + params key -> dequantized name
  for (const auto& l : layers) {
    const layer_record* r = rec.find(l.name);
    AMCTQ_CHECK(r != nullptr, errc::invalid_argument, "save_model", "no record for layer '", l.name, "'");
    detail::check_exportable(*r);
    node& n = g.nodes[l.node_index];
    auto& pre = before[l.node_index];
    const std::string key = l.input + "|" + std::to_string(r->act.scale[0]) + "|" + std::to_string(r->act.zero_point[0]);
    auto it = dq_of.find(key);
    if (it == dq_of.end()) {
      const std::string tag = l.name + "_input";
      const std::string q = detail::emit_quantize(g, pre, l.input, tag, r->act);
      pre.push_back(detail::make_node("DequantizeLinear", tag + "_dequantize",
                                      {q, tag + "_scale", tag + "_zero_point"}, {tag + "_dequantized"}));
      it = dq_of.emplace(key, tag + "_dequantized").first;
    }
    n.inputs[0] = it->second;
    if (l.weight.empty()) continue;
    // Weights: int8 codes + DequantizeLinear on the output-channel axis.
    const initializer* w = g.find_initializer(l.weight);
    const weight_layout L = layout_of(n, const_cast<tensor&>(w->value));
    const bool vec = r->wts.is_per_channel();
    const std::string wt = l.name + "_weight";
    detail::add_init(g, wt + "_quantized", r->weight_q);
    detail::add_init(g, wt + "_scale", detail::scale_tensor(r->wts.scale, vec));
    detail::add_init(g, wt + "_zero_point", detail::int8_zero_points(r->wts.zero_point, vec));
    std::vector<attribute> axis;
    if (vec) axis.push_back(detail::int_attr("axis", L.out_axis));
    pre.push_back(detail::make_node("DequantizeLinear", wt + "_dequantize",
                                    {wt + "_quantized", wt + "_scale", wt + "_zero_point"}, {wt + "_dequantized"},
                                    axis));
    n.inputs[1] = wt + "_dequantized";
    if (!l.bias.empty()) {
      const std::string bt = l.name + "_bias";
      const auto nb = r->bias_q.size();
      detail::add_init(g, bt + "_quantized", tensor::from<std::int32_t>({static_cast<std::int64_t>(nb)}, r->bias_q));
      detail::add_init(g, bt + "_scale", tensor::from<float>({static_cast<std::int64_t>(nb)}, detail::bias_scales(*r, nb)));
      detail::add_init(g, bt + "_zero_point",
                       tensor::from<std::int32_t>({static_cast<std::int64_t>(nb)}, std::vector<std::int32_t>(nb, 0)));
      pre.push_back(detail::make_node("DequantizeLinear", bt + "_dequantize",
                                      {bt + "_quantized", bt + "_scale", bt + "_zero_point"}, {bt + "_dequantized"},
                                      {detail::int_attr("axis", 0)}));
      n.inputs[2] = bt + "_dequantized";
      if (n.op_type == "Gemm") {  // beta is already in the quantized bias
        for (auto& a : n.attributes)
          if (a.name == "beta") a.f = 1.0f;
      }
    }
  }
  // The float weights and biases no node reads any more are dropped.
  std::vector<node> nodes;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    auto it = before.find(k);
    if (it != before.end())
      for (auto& p : it->second) nodes.push_back(std::move(p));
    nodes.push_back(std::move(g.nodes[k]));
  }
  g.nodes = std::move(nodes);
  passes::detail::drop_unused_constants(g);
  g.value_infos.clear();  // intermediate shapes/types changed; ONNX Runtime infers them again
  m.producer_name = "amctq";
  return m;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_PASSES_LOWER_QDQ_HPP
