// Which tensors are quantized where they are made rather than where a quantized layer reads
// them (docs/pipeline.md, "Tensors quantized where they are made"): Vitis AI quantizes each
// layer's output and, unless keep_add_layer_accuracy, the inputs and outputs of Add and Concat,
// so that every reader (a residual Add, a Sigmoid, the model's output) sees the quantized
// values. A layer input is already quantized by the layer (lower_qdq.hpp); a tensor all of whose
// readers are quantized layers needs nothing more, and is not a point.
#ifndef AMCTQ_GRAPH_TENSOR_POINTS_HPP
#define AMCTQ_GRAPH_TENSOR_POINTS_HPP

#include <map>
#include <set>
#include <string>
#include <vector>

#include "amctq/graph/ir.hpp"
#include "amctq/graph/layers/kind.hpp"
#include "amctq/graph/layers/table.hpp"
#include "amctq/graph/passes/graph_edit.hpp"
#include "amctq/graph/quant_config.hpp"

namespace amctq::graph {

/// A tensor quantized where it is made, with the settings its observer runs (per tensor).
struct tensor_point {
  std::string tensor;
  activation_quant settings;
  std::string reason;  ///< "output of layer 'x'", "input of Add 'y'", "output of Concat 'z'"
};

namespace detail {

/// An op whose output, quantized, equals the op applied to its quantized input (the grid is
/// kept): a quantized value can travel through it unchanged.
inline bool commutes_with_quantize(const graph& g, const node& n, std::int64_t opset) {
  static const std::set<std::string> ops = {"Relu", "MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze",
                                            "Unsqueeze", "Identity", "Dropout", "Pad"};
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  if (!ops.count(n.op_type) || n.outputs.empty() || n.inputs.empty()) return false;
  for (std::size_t i = 1; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty()) return false;  // MaxPool indices, Dropout mask
  // The int8 Pad needs its pad value as a constant to quantize it (a missing one is 0).
  if (n.op_type == "Pad")
    return opset >= 11 && (n.inputs.size() < 3 || n.inputs[2].empty() ||
                           passes::detail::scalar_constant(g, n.inputs[2]).has_value());
  return true;
}

/// An Add of an activation and a constant: the bias of a Linear exported as MatMul + Add, part
/// of the layer rather than a residual Add.
inline bool is_bias_add(const graph& g, const node& n) {
  if (n.op_type != "Add" || n.inputs.size() != 2) return false;
  return (g.find_initializer(n.inputs[0]) != nullptr) != (g.find_initializer(n.inputs[1]) != nullptr);
}

/// The nodes reading each tensor, in node order (a node reading it twice is listed twice).
inline std::map<std::string, std::vector<std::size_t>> readers_of(const graph& g) {
  std::map<std::string, std::vector<std::size_t>> readers;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    for (const auto& i : g.nodes[k].inputs)
      if (!i.empty()) readers[i].push_back(k);
  return readers;
}

}  // namespace detail

/// The points of `g` under the config's global switches: with quantize_outputs, each layer's
/// output (after the ops that commute with quantization and, for a layer without a bias, a
/// constant bias Add), on the layer's `output` settings (else its activation settings); with
/// keep_add_layer_accuracy false, each input and output of an Add (not a bias Add) or Concat,
/// on the top-level activation settings. A tensor already named keeps its first settings.
inline std::vector<tensor_point> find_tensor_points(const graph& g, std::int64_t opset,
                                                    const std::vector<quant_layer>& layers,
                                                    const std::vector<layer_settings>& settings,
                                                    const quant_config& c) {
  std::vector<tensor_point> out;
  if (!c.global.quantize_outputs && c.global.keep_add_layer_accuracy) return out;
  const auto readers = detail::readers_of(g);
  std::set<std::string> graph_outputs;
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);
  std::map<std::size_t, const quant_layer*> layer_at;
  for (const auto& l : layers) layer_at[l.node_index] = &l;
  // A layer reads t as the input it quantizes.
  auto quantized_read = [&](std::size_t k, const std::string& t) {
    const auto it = layer_at.find(k);
    return it != layer_at.end() && (it->second->input == t || it->second->input_b == t);
  };
  auto only_layers_read = [&](const std::string& t) {
    const auto r = readers.find(t);
    if (graph_outputs.count(t) || r == readers.end()) return false;
    for (auto k : r->second)
      if (!quantized_read(k, t)) return false;
    return true;
  };
  // Forward from t through single-reader ops a quantized value travels through unchanged.
  auto tail = [&](std::string t, bool through_bias_add) {
    while (!graph_outputs.count(t)) {
      const auto r = readers.find(t);
      if (r == readers.end() || r->second.size() != 1 || layer_at.count(r->second[0])) break;
      const node& n = g.nodes[r->second[0]];
      const bool bias = through_bias_add && detail::is_bias_add(g, n);
      if (!bias && (!detail::commutes_with_quantize(g, n, opset) || n.inputs[0] != t)) break;
      through_bias_add = false;
      t = n.outputs[0];
    }
    return t;
  };
  std::set<std::string> named;
  auto add = [&](const std::string& t, activation_quant a, std::string why) {
    if (t.empty() || g.find_initializer(t) != nullptr || only_layers_read(t) || !named.insert(t).second) return;
    a.channel_wise = false;
    out.push_back({t, a, std::move(why)});
  };
  if (c.global.quantize_outputs)
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const quant_layer& l = layers[i];
      add(tail(l.output, l.bias.empty()), settings[i].output.value_or(settings[i].activation),
          "output of layer '" + l.name + "'");
    }
  if (!c.global.keep_add_layer_accuracy)
    for (const node& n : g.nodes) {
      if ((!n.domain.empty() && n.domain != "ai.onnx") || (n.op_type != "Add" && n.op_type != "Concat") ||
          detail::is_bias_add(g, n) || n.outputs.empty())
        continue;
      const std::string name = n.name.empty() ? n.outputs[0] : n.name;
      for (const auto& x : n.inputs) add(x, c.activation, "input of " + n.op_type + " '" + name + "'");
      add(tail(n.outputs[0], false), c.activation, "output of " + n.op_type + " '" + name + "'");
    }
  return out;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_TENSOR_POINTS_HPP
