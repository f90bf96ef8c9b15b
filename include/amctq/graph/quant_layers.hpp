// Which nodes of a graph are quantizable layers (the kinds of layers/table.hpp), where their
// weight, bias, inputs and output live, and the weight_layout of each weight. Layers that share a weight
// initializer are refused: amctq quantizes (and balances, and folds BatchNorm into) each
// layer's weights separately, which would silently change the other layer.
#ifndef AMCTQ_GRAPH_QUANT_LAYERS_HPP
#define AMCTQ_GRAPH_QUANT_LAYERS_HPP

#include <map>
#include <string>
#include <vector>

#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/layers/table.hpp"

namespace amctq::graph {

/// The weight_layout of `w` (the float weight or its int8 codes) for the layer's op (a
/// quantizable kind with a weight).
inline weight_layout layout_of(const node& n, const tensor& w) {
  const layer_kind* k = find_layer_kind(n.op_type);
  AMCTQ_CHECK(k != nullptr && k->layout != nullptr, errc::unsupported, "layer '" + n.name + "'", n.op_type,
              " is not a quantizable kind with a weight");
  return k->layout(n, w);
}

/// A node of a quantizable kind that stays float, and why.
struct float_layer {
  std::string name;
  std::string op_type;
  std::string reason;
  bool asked = false;  ///< the config left it float (skip_layers, quant_enable, ...), not its form
};

/// Every quantizable layer of g, in node order. Nodes of a quantizable kind that amctq cannot
/// quantize exactly (a weight that is not a float initializer, a computed bias, a form the
/// kind refuses) are not layers: they stay in float, and are listed in `left` when given.
inline std::vector<quant_layer> find_quant_layers(const graph& g, std::vector<float_layer>* left = nullptr) {
  std::vector<quant_layer> out;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    const node& n = g.nodes[k];
    if (!n.domain.empty() && n.domain != "ai.onnx") continue;
    const layer_kind* kind = find_layer_kind(n.op_type);
    if (kind == nullptr || n.inputs.empty() || n.outputs.empty()) continue;
    quant_layer l;
    l.node_index = k;
    l.name = n.name.empty() ? n.outputs[0] : n.name;
    l.op_type = n.op_type;
    if (kind->quantizes_input) l.input = n.inputs[0];
    l.output = n.outputs[0];
    const char* why = nullptr;
    if (kind->weight_input >= 0) {
      const auto wi = static_cast<std::size_t>(kind->weight_input);
      const initializer* w = n.inputs.size() > wi ? g.find_initializer(n.inputs[wi]) : nullptr;
      if (w == nullptr && kind->activation_weight && n.inputs.size() > wi && !n.inputs[wi].empty()) {
        l.input_b = n.inputs[wi];
      } else if (w == nullptr || w->value.type() != dtype::float32) {
        // A weight-only kind without a float table (a Gather of shape values) is no layer at all.
        if (!kind->quantizes_input) continue;
        why = "its weight operand is not a float constant (an activation, or computed at run time)";
      } else {
        l.weight = n.inputs[wi];
        const auto bi = static_cast<std::size_t>(kind->bias_input);
        if (kind->bias_input >= 0 && n.inputs.size() > bi && !n.inputs[bi].empty()) {
          if (g.find_initializer(n.inputs[bi]) == nullptr)
            why = "its bias is computed at run time, so it cannot be quantized to int32 ahead of time";
          else
            l.bias = n.inputs[bi];
        }
      }
    }
    if (why == nullptr && !l.input.empty() && g.find_initializer(l.input) != nullptr)
      why = "its input operand is a constant, not an activation";
    if (why == nullptr && kind->refuse != nullptr) why = kind->refuse(g, n);
    if (why != nullptr) {
      if (left != nullptr) left->push_back({l.name, l.op_type, why, false});
      continue;
    }
    out.push_back(std::move(l));
  }
  return out;
}

/// Refuses a weight of `layers` (the ones to be quantized) that another layer or node of g also
/// reads: amctq quantizes each layer's weights on their own, and changing a weight would change
/// it under the other reader's feet.
inline void check_distinct_weights(const graph& g, const std::vector<quant_layer>& layers) {
  std::map<std::string, std::string> weight_owner;
  for (const quant_layer& l : layers) {
    if (l.weight.empty()) continue;
    auto [it, fresh] = weight_owner.emplace(l.weight, l.name);
    AMCTQ_CHECK(fresh, errc::unsupported, "quantizer", "layers '", it->second, "' and '", l.name,
                "' share the weight '", l.weight,
                "'; amctq quantizes (and may balance) each layer's weights on their own: give each layer its own "
                "copy of the initializer, or add both to skip_layers");
  }
  for (const node& n : g.nodes)
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
      auto it = weight_owner.find(n.inputs[i]);
      if (it == weight_owner.end()) continue;
      const std::string user = n.name.empty() ? n.outputs[0] : n.name;
      const layer_kind* kind = find_layer_kind(n.op_type);
      const bool own = user == it->second && kind != nullptr && i == static_cast<std::size_t>(kind->weight_input);
      AMCTQ_CHECK(own, errc::unsupported, "quantizer", "the weight '", it->first,
                  "' of layer '", it->second, "' is also used by node '", user,
                  "'; a weight that another node reads cannot be quantized (and may be balanced) in place: copy "
                  "the initializer, or add the layer to skip_layers");
    }
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_QUANT_LAYERS_HPP
