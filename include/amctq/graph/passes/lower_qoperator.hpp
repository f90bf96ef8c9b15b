// The deploy model: int8 activations and weights, int32 biases, integer operators ONNX
// Runtime's CPU provider executes (standard ONNX domain only). This file is the driver:
//  - A layer's input is an int8 tensor with its calibrated (scale_d, offset_d): QuantizeLinear of
//    the float tensor, or, when the producing layer's kind requantizes (QLinearConv) and its
//    output reaches exactly one quantized layer through ops that commute with quantization
//    (Relu, MaxPool, Pad, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Identity, Dropout),
//    that layer's own int8 output on the next layer's grid. A Relu on that path is folded into
//    the requantization clamp when the grid's zero point is its minimum (AMCT's asymmetric grid
//    of a non-negative range), else it becomes Max(q, zero_point) on int8.
//  - Each layer's kind (layers/*.hpp) then writes its integer form: QLinearConv / ConvInteger,
//    MatMulInteger (of an activation and a constant, or of two activations), the exact float ConvTranspose over codes, AveragePool as a unit-weight conv.
// Every integer op is simulated bit for bit by graph/integer_sim.hpp.
#ifndef AMCTQ_GRAPH_PASSES_LOWER_QOPERATOR_HPP
#define AMCTQ_GRAPH_PASSES_LOWER_QOPERATOR_HPP

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/layers/lowering.hpp"
#include "amctq/graph/passes/graph_edit.hpp"
#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/quant_layers.hpp"
#include "amctq/graph/quant_record.hpp"
#include "amctq/graph/tensor_points.hpp"
#include "amctq/graph/passes/quantize_tensors.hpp"

namespace amctq::graph {

namespace detail {

/// A quantized value of `v` on grid `p` (what QuantizeLinear with the grid clamp gives).
inline std::int8_t quantize_one(float v, const quant_params& p) {
  float q = std::nearbyint(v / p.scale[0]) + static_cast<float>(p.zero_point[0]);
  q = std::min(std::max(q, static_cast<float>(p.qmin)), static_cast<float>(p.qmax));
  return static_cast<std::int8_t>(q);
}

}  // namespace detail

/// Where the deploy model may differ from amctq's integer simulation (integer_sim.hpp), one
/// sentence per layer, as each layer kind's deploy_note says.
inline std::vector<std::string> deploy_exactness_notes(const model& float_model, const std::vector<quant_layer>& layers,
                                                       const quant_record& rec) {
  std::vector<std::string> notes;
  for (const quant_layer& l : layers) {
    const layer_kind* kind = find_layer_kind(l.op_type);
    const layer_record* r = rec.find(l.name);
    if (kind == nullptr || kind->deploy_note == nullptr || r == nullptr || r->act.is_per_channel()) continue;
    std::string note = kind->deploy_note(float_model.main.nodes.at(l.node_index), *r);
    if (!note.empty()) notes.push_back(std::move(note));
  }
  return notes;
}

/// The deploy model of `float_model` (BatchNorm folded, balanced) under `rec`. Each layer is
/// written by its kind's lower_qoperator; a weight-only kind, and a layer with per-channel
/// activations (the integer ops take one input scale), keep their fake-quant form.
inline model lower_qoperator(const model& float_model, const std::vector<quant_layer>& layers, const quant_record& rec) {
  AMCTQ_CHECK(float_model.opset() >= 13, errc::unsupported, "save_model", "the model's opset ", float_model.opset(),
              " is below 13, the first with per-axis DequantizeLinear");
  const std::set<std::string> left_out = detail::replaced_weights(float_model.main, layers);
  model m = copy_leaving_out(float_model, left_out);
  graph& g = m.main;
  const std::int64_t opset = m.opset();
  const auto consumers = detail::readers_of(g);
  std::set<std::string> graph_outputs;
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);
  std::map<std::size_t, std::size_t> layer_at;  // node index -> layer index
  for (std::size_t i = 0; i < layers.size(); ++i) layer_at[layers[i].node_index] = i;
  const auto recs = detail::records_of(layers, rec);

  // Which layers requantize straight into a downstream layer's input grid, and the nodes on the way.
  struct requant_path {
    std::size_t target = 0;             // layer index
    std::vector<std::size_t> chain;     // node indices between, in order
  };
  std::map<std::size_t, requant_path> requant;  // layer index -> path
  std::map<std::size_t, std::size_t> chain_target;  // chain node index -> target layer index
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const quant_layer& l = layers[i];
    if (!find_layer_kind(l.op_type)->requantizes || recs[i]->act.is_per_channel()) continue;
    requant_path p;
    std::string t = l.output;
    bool ok = false;
    while (true) {
      if (graph_outputs.count(t)) break;
      auto it = consumers.find(t);
      if (it == consumers.end() || it->second.size() != 1) break;
      const std::size_t k = it->second[0];
      const node& c = g.nodes[k];
      std::size_t reads = 0;
      for (const auto& in : c.inputs) reads += in == t;
      if (reads != 1 || c.inputs[0] != t) break;
      auto li = layer_at.find(k);
      if (li != layer_at.end()) {
        p.target = li->second;
        // QLinearConv writes one grid, onto the target's quantized input, rounding half to even.
        ok = find_layer_kind(layers[li->second].op_type)->quantizes_input && !recs[li->second]->act.is_per_channel() &&
             recs[li->second]->act_rounding == round_mode::half_even;
        break;
      }
      if (!detail::commutes_with_quantize(g, c, opset)) break;
      p.chain.push_back(k);
      t = c.outputs[0];
    }
    if (!ok) continue;
    requant[i] = p;
    for (auto k : p.chain) chain_target[k] = p.target;
  }

  std::vector<node> out;
  std::map<std::string, std::string> int8_of;  // key_of(float tensor, grid) -> int8 tensor
  std::map<std::string, std::string> dq_of;    // the same for the fake-quant layers' dequantized inputs
  // The int8 input of layer i, quantizing the float tensor when no layer produced it.
  auto int8_input = [&](const std::string& t, const quant_params& p, const std::string& tag, round_mode mode) {
    const std::string key = detail::key_of(t, p, mode);
    auto it = int8_of.find(key);
    if (it != int8_of.end()) return it->second;
    const std::string q = detail::emit_quantize(g, out, t, tag, p, 0, mode);
    int8_of[key] = q;
    return q;
  };

  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    node n = g.nodes[k];
    auto ct = chain_target.find(k);
    if (ct != chain_target.end()) {
      const quant_params& p = recs[ct->second]->act;
      if (n.op_type == "Relu") {
        // Relu(x) quantized is max(q, zero_point); a no-op when the grid starts at its zero point.
        if (p.zero_point[0] <= p.qmin) {
          out.push_back(detail::make_node("Identity", n.name, {n.inputs[0]}, {n.outputs[0]}));
        } else {
          detail::add_init(g, n.name + "_zero_point", tensor::from<std::int8_t>({}, {static_cast<std::int8_t>(p.zero_point[0])}));
          out.push_back(detail::make_node("Max", n.name, {n.inputs[0], n.name + "_zero_point"}, {n.outputs[0]}));
        }
        continue;
      }
      if (n.op_type == "Dropout") {  // inference Dropout is the identity, and ORT's takes no int8
        out.push_back(detail::make_node("Identity", n.name, {n.inputs[0]}, {n.outputs[0]}));
        continue;
      }
      if (n.op_type == "Pad") {
        // commutes_with_quantize admitted this Pad only with a constant pad value.
        const float v = n.inputs.size() > 2 && !n.inputs[2].empty() ? *passes::detail::scalar_constant(g, n.inputs[2]) : 0.0f;
        if (n.inputs.size() < 3) n.inputs.resize(3);
        n.inputs[2] = n.name + "_quantized_value";
        detail::add_init(g, n.inputs[2], tensor::from<std::int8_t>({}, {detail::quantize_one(v, p)}));
      }
      out.push_back(std::move(n));
      continue;
    }
    auto li = layer_at.find(k);
    if (li == layer_at.end()) {
      out.push_back(std::move(n));
      continue;
    }
    const std::size_t i = li->second;
    const quant_layer& l = layers[i];
    const layer_record& r = *recs[i];
    const layer_kind* kind = find_layer_kind(l.op_type);
    if (kind->lower_qoperator == nullptr || r.act.is_per_channel()) {
      detail::lower_layer_qdq(g, out, n, l, r, dq_of);
      out.push_back(std::move(n));
      continue;
    }
    const std::string x = int8_input(l.input, r.act, l.name + "_input", r.act_rounding);
    const std::string tag = l.name + "_x";
    detail::add_init(g, tag + "_scale", detail::scale_tensor(r.act.scale, false));
    detail::add_init(g, tag + "_zero_point", detail::int8_zero_points(r.act.zero_point, false));
    qoperator_lowering c{g, out, n, l, r, x, tag + "_scale", tag + "_zero_point"};
    if (!l.input_b.empty()) {
      c.xb = int8_input(l.input_b, r.act_b, l.name + "_input_b", r.act_rounding);
      c.xb_zero_point = l.name + "_xb_zero_point";
      detail::add_init(g, c.xb_zero_point, detail::int8_zero_points(r.act_b.zero_point, false));
    }
    auto rq = requant.find(i);
    if (rq != requant.end()) {
      c.target = &layers[rq->second.target];
      c.target_record = recs[rq->second.target];
    }
    kind->lower_qoperator(c);
    // The target reads its input from the chain's end, already on its grid.
    if (c.target != nullptr) int8_of[detail::key_of(c.target->input, c.target_record->act)] = c.target->input;
  }
  g.nodes = std::move(out);
  passes::quantize_tensors(g, rec.tensors);
  passes::detail::drop_unused_constants(g);
  detail::check_left_out_dropped(g, left_out);
  g.value_infos.clear();
  m.producer_name = "amctq";
  return m;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_PASSES_LOWER_QOPERATOR_HPP
