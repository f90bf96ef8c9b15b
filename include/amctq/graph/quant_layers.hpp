// Which nodes of a graph are quantizable layers (Conv 1-3d incl. grouped / depthwise,
// ConvTranspose, Gemm, MatMul with a constant right operand, AveragePool), where their weight,
// bias, input and output live, and the weight_layout of each weight. Layers that share a weight
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
#include "amctq/graph/quant_config.hpp"

namespace amctq::graph {

struct quant_layer {
  std::size_t node_index = 0;
  std::string name;
  std::string op_type;
  std::string input;   ///< activation input (the tensor the activation observer watches)
  std::string output;
  std::string weight;  ///< initializer name; empty for AveragePool
  std::string bias;    ///< initializer name or empty
};

/// The weight_layout of `w` for the layer's op.
inline weight_layout layout_of(const node& n, tensor& w) {
  const auto groups = static_cast<std::ptrdiff_t>(n.get_int("group", 1));
  auto* p = w.data<float>();
  auto ext = [&](std::size_t i) { return static_cast<std::ptrdiff_t>(w.dim(i)); };
  if (n.op_type == "Conv" || n.op_type == "ConvTranspose") {
    const bool t = n.op_type == "ConvTranspose";
    switch (w.rank()) {
      case 3: {
        tensor_view<float, 3> v(p, {ext(0), ext(1), ext(2)});
        return t ? conv_transpose_weight_layout(v, groups) : conv_weight_layout(v, groups);
      }
      case 4: {
        tensor_view<float, 4> v(p, {ext(0), ext(1), ext(2), ext(3)});
        return t ? conv_transpose_weight_layout(v, groups) : conv_weight_layout(v, groups);
      }
      case 5: {
        tensor_view<float, 5> v(p, {ext(0), ext(1), ext(2), ext(3), ext(4)});
        return t ? conv_transpose_weight_layout(v, groups) : conv_weight_layout(v, groups);
      }
      default:
        AMCTQ_THROW(errc::unsupported, "layer '" + n.name + "'", n.op_type, " weight of rank ", w.rank(),
                    " is not supported (1d, 2d or 3d only)");
    }
  }
  if (n.op_type == "Gemm") {
    AMCTQ_CHECK(w.rank() == 2, errc::shape_mismatch, "layer '" + n.name + "'", "Gemm B must have rank 2");
    return gemm_weight_layout(tensor_view<float, 2>(p, {ext(0), ext(1)}), n.get_int("transB", 0) != 0);
  }
  AMCTQ_CHECK(w.rank() == 2, errc::unsupported, "layer '" + n.name + "'",
              "MatMul with a constant right operand of rank ", w.rank(), " is not supported (rank 2 only)");
  return matmul_weight_layout(tensor_view<float, 2>(p, {ext(0), ext(1)}));
}

/// Every quantizable layer of g, in node order. Layer forms amctq cannot quantize exactly (Gemm
/// with transA or alpha != 1, a computed bias, a weight that is not a float initializer) are
/// not layers: they stay in float.
inline std::vector<quant_layer> find_quant_layers(const graph& g) {
  std::vector<quant_layer> out;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    const node& n = g.nodes[k];
    if (!n.domain.empty() && n.domain != "ai.onnx") continue;
    if (!is_quantizable_op(n.op_type) || n.inputs.empty() || n.outputs.empty()) continue;
    quant_layer l;
    l.node_index = k;
    l.name = n.name.empty() ? n.outputs[0] : n.name;
    l.op_type = n.op_type;
    l.input = n.inputs[0];
    l.output = n.outputs[0];
    if (n.op_type != "AveragePool") {
      if (n.inputs.size() < 2) continue;
      const initializer* w = g.find_initializer(n.inputs[1]);
      if (w == nullptr || w->value.type() != dtype::float32) continue;  // activation x activation: not a weight layer
      l.weight = n.inputs[1];
      if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
        const initializer* b = g.find_initializer(n.inputs[2]);
        if (b == nullptr) continue;  // a computed bias cannot be quantized to int32 ahead of time
        l.bias = n.inputs[2];
      }
      if (n.op_type == "Gemm" && (n.get_int("transA", 0) != 0 || n.get_float("alpha", 1.0f) != 1.0f)) continue;
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
      AMCTQ_CHECK(user == it->second && i == 1, errc::unsupported, "quantizer", "the weight '", it->first,
                  "' of layer '", it->second, "' is also used by node '", user,
                  "'; a weight that another node reads cannot be quantized (and may be balanced) in place: copy "
                  "the initializer, or add the layer to skip_layers");
    }
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_QUANT_LAYERS_HPP
