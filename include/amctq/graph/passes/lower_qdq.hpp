// The fake-quant model: every quantized layer reads its input (and a MatMul of two activations
// its second one) through QuantizeLinear -> DequantizeLinear (the calibrated scale_d / offset_d,
// per tensor or per channel), and its
// kind's lowering (layers/) puts its weights as int8 codes through DequantizeLinear (per output
// channel on the weight's channel axis) and its bias as int32 codes through DequantizeLinear
// with scale s_d * s_w. Activations narrower than 8 bits are clipped to their grid before
// QuantizeLinear (int8 storage cannot clamp to [-8, 7]).
#ifndef AMCTQ_GRAPH_PASSES_LOWER_QDQ_HPP
#define AMCTQ_GRAPH_PASSES_LOWER_QDQ_HPP

#include <map>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/layers/lowering.hpp"
#include "amctq/graph/passes/graph_edit.hpp"
#include "amctq/graph/passes/quantize_tensors.hpp"
#include "amctq/graph/quant_layers.hpp"
#include "amctq/graph/quant_record.hpp"

namespace amctq::graph {

namespace detail {

/// A map key naming tensor t on grid p rounded by `mode`: layers that read the same tensor on the
/// same grid share one quantized copy.
inline std::string key_of(const std::string& t, const quant_params& p, round_mode mode = round_mode::half_even) {
  std::string k = t + "|" + std::to_string(p.axis) + "|" + std::to_string(p.qmin) + "|" + std::to_string(p.qmax);
  if (mode != round_mode::half_even) k += std::string("|") + to_string(mode);
  for (std::size_t c = 0; c < p.scale.size(); ++c)
    k += "|" + std::to_string(p.scale[c]) + "|" + std::to_string(p.zero_point[c]);
  return k;
}

/// The float weights of `layers` that their lowering replaces by codes and that nothing else in g
/// reads (no other node, no subgraph, no graph output): a lowering's copy of the model leaves
/// their values out (copy_leaving_out), and they are dropped as unused once lowered.
inline std::set<std::string> replaced_weights(const graph& g, const std::vector<quant_layer>& layers) {
  const auto uses = passes::detail::use_counts(g);
  std::unordered_set<std::string> nested;
  for (const auto& n : g.nodes)
    for (const auto& a : n.attributes) {
      if (a.g) passes::detail::collect_reads(*a.g, nested);
      for (const auto& sub : a.graphs)
        if (sub) passes::detail::collect_reads(*sub, nested);
    }
  std::set<std::string> out;
  for (const auto& l : layers) {
    const layer_kind* kind = find_layer_kind(l.op_type);
    if (l.weight.empty() || kind == nullptr || kind->lower_qdq == nullptr || nested.count(l.weight)) continue;
    const auto u = uses.find(l.weight);
    if (u != uses.end() && u->second == 1) out.insert(l.weight);
  }
  return out;
}

/// Checks that a lowering dropped every weight its copy left out: one still read would be written empty.
inline void check_left_out_dropped(const graph& g, const std::set<std::string>& left_out) {
  for (const auto& i : g.initializers)
    AMCTQ_CHECK(!left_out.count(i.name), errc::unsupported, "save_model", "weight '", i.name,
                "' is still read after lowering its layer; amctq cannot write this model");
}

/// One layer in fake-quant form, appending the nodes it needs to `before` (the layer node itself
/// is rewired in place). `dq_of` shares input QDQ pairs between layers reading the same grid.
inline void lower_layer_qdq(graph& g, std::vector<node>& before, node& n, const quant_layer& l,
                            const layer_record& r, std::map<std::string, std::string>& dq_of) {
  const layer_kind* kind = find_layer_kind(l.op_type);
  AMCTQ_CHECK(kind != nullptr, errc::invalid_argument, "save_model", "layer '", l.name, "': ", l.op_type,
              " is not a quantizable kind");
  // The dequantized copy of tensor t on grid p, emitted once per (tensor, grid).
  auto dequantized = [&](const std::string& t, const quant_params& p, const std::string& tag, std::size_t rank) {
    const std::string key = key_of(t, p, r.act_rounding);
    auto it = dq_of.find(key);
    if (it == dq_of.end()) it = dq_of.emplace(key, emit_fake_quantize(g, before, t, tag, p, rank, r.act_rounding)).first;
    return it->second;
  };
  if (kind->quantizes_input) n.inputs[0] = dequantized(l.input, r.act, l.name + "_input", r.input_shape.size());
  if (!l.input_b.empty())
    n.inputs[static_cast<std::size_t>(kind->weight_input)] = dequantized(l.input_b, r.act_b, l.name + "_input_b", 0);
  if (kind->lower_qdq == nullptr) return;
  qdq_lowering c{g, before, n, l, r};
  kind->lower_qdq(c);
}

inline std::vector<const layer_record*> records_of(const std::vector<quant_layer>& layers, const quant_record& rec) {
  std::vector<const layer_record*> recs;
  for (const auto& l : layers) {
    const layer_record* r = rec.find(l.name);
    AMCTQ_CHECK(r != nullptr, errc::invalid_argument, "save_model", "no record for layer '", l.name, "'");
    check_exportable(*r);
    recs.push_back(r);
  }
  return recs;
}

}  // namespace detail

/// The QDQ fake-quant model of `float_model` (BatchNorm folded, balanced) under `rec`.
inline model lower_qdq(const model& float_model, const std::vector<quant_layer>& layers, const quant_record& rec) {
  AMCTQ_CHECK(float_model.opset() >= 13, errc::unsupported, "save_model", "the model's opset ",
              float_model.opset(), " is below 13, the first with per-axis DequantizeLinear");
  const auto recs = detail::records_of(layers, rec);
  const std::set<std::string> left_out = detail::replaced_weights(float_model.main, layers);
  model m = copy_leaving_out(float_model, left_out);
  graph& g = m.main;
  std::map<std::size_t, std::vector<node>> before;  // nodes to emit before node k
  std::map<std::string, std::string> dq_of;           // detail::key_of(input, grid) -> dequantized name
  for (std::size_t i = 0; i < layers.size(); ++i)
    detail::lower_layer_qdq(g, before[layers[i].node_index], g.nodes[layers[i].node_index], layers[i],
                            *recs[i], dq_of);
  // The float weights and biases no node reads any more are dropped.
  std::vector<node> nodes;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    auto it = before.find(k);
    if (it != before.end())
      for (auto& p : it->second) nodes.push_back(std::move(p));
    nodes.push_back(std::move(g.nodes[k]));
  }
  g.nodes = std::move(nodes);
  passes::quantize_tensors(g, rec.tensors);
  passes::detail::drop_unused_constants(g);
  detail::check_left_out_dropped(g, left_out);
  g.value_infos.clear();  // intermediate shapes/types changed; ONNX Runtime infers them again
  m.producer_name = "amctq";
  return m;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_PASSES_LOWER_QDQ_HPP
