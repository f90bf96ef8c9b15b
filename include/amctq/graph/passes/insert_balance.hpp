// The activation half of a balance (DMQ / SmoothQuant, docs/algorithms/weights.md) for one graph layer:
// X' = X · (1/s) per input channel, as an ONNX Mul by a constant in front of the layer. That is
// AMCT's ApplyDMQBalancer form, and ONNX Runtime runs it in float before the layer's
// QuantizeLinear, so the exported models need no special op. The weight half (W · s) is
// algorithms/balance.hpp's apply_balance; together they leave the float output unchanged.
// Only the layer's own input is rewired: the original tensor may feed other nodes, which must
// keep seeing the unbalanced values.
#ifndef AMCTQ_GRAPH_PASSES_INSERT_BALANCE_HPP
#define AMCTQ_GRAPH_PASSES_INSERT_BALANCE_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "amctq/algorithms/balance.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/passes/graph_edit.hpp"
#include "amctq/graph/quant_layers.hpp"

namespace amctq::graph::passes {

/// The axis of layer n's activation input (of rank `rank`) that carries its input channels: its
/// layer kind's activation channel axis (1 for Conv / ConvTranspose / Gemm, the last for MatMul).
inline std::size_t balance_channel_axis(const node& n, std::size_t rank) {
  const std::string where = detail::layer_where(n);
  const layer_kind* kind = find_layer_kind(n.op_type);
  AMCTQ_CHECK(kind != nullptr && kind->balance, errc::unsupported, where, n.op_type,
              " has no weight to balance its input against");
  if (n.get_int("transA", 0) != 0) {  // Gemm's A transposed: [K, M], channels on axis 0
    AMCTQ_CHECK(rank == 2, errc::shape_mismatch, where, "Gemm input A must have rank 2, got ", rank);
    return 0;
  }
  const int axis = kind->activation_channel_axis;
  const std::size_t min_rank = axis == 1 ? 3 : 1;  // channels on axis 1: N, C and at least one spatial axis
  AMCTQ_CHECK(rank >= min_rank && (axis < 0 || static_cast<std::size_t>(axis) < rank), errc::shape_mismatch, where,
              n.op_type, " input of rank ", rank, " has no channel axis ", axis);
  return axis < 0 ? rank - static_cast<std::size_t>(-axis) : static_cast<std::size_t>(axis);
}

/// max |x| per input channel of layer n in one batch x of its activation input (float32).
/// Non-finite values are an error naming the layer.
inline std::vector<float> balance_input_absmax(const node& n, const tensor& x) {
  const std::string label = detail::layer_where(n);
  AMCTQ_CHECK(x.type() == dtype::float32, errc::unsupported, label, "input is ", to_string(x.type()),
              "; only float32 inputs are balanced");
  const std::size_t axis = balance_channel_axis(n, x.rank());
  std::ptrdiff_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= static_cast<std::ptrdiff_t>(x.dim(d));
  for (std::size_t d = axis + 1; d < x.rank(); ++d) inner *= static_cast<std::ptrdiff_t>(x.dim(d));
  const auto channels = static_cast<std::ptrdiff_t>(x.dim(axis));
  const std::string name = label + " input";
  return activation_channel_absmax(tensor_view<const float, 3>(x.data<float>(), {outer, channels, inner}), 1,
                                   name.c_str());
}

/// Where insert_balance put its Mul.
struct inserted_balance {
  std::size_t node_index = 0;  ///< the Mul's index; the layer and every node after it moved one down
  std::string input;           ///< the balanced tensor, now the layer's activation input
};

/// Inserts Mul(x, 1/s) right before layer node `layer` of g (x its activation input, s =
/// `factors`, one per input channel, finite and > 0) and makes that layer, and no other node,
/// read the product. The layer's weight must be a float initializer (its layout gives the
/// channel count the factors are checked against).
inline inserted_balance insert_balance(graph& g, std::size_t layer, const std::vector<float>& factors) {
  constexpr const char* where = "insert_balance";
  AMCTQ_CHECK(layer < g.nodes.size(), errc::invalid_argument, where, "node index ", layer, " is outside the graph (",
              g.nodes.size(), " nodes)");
  node& n = g.nodes[layer];
  const std::string label = detail::layer_where(n);
  AMCTQ_CHECK(n.inputs.size() >= 2 && !n.inputs[0].empty(), errc::invalid_argument, where, label,
              " has no activation input and weight");
  initializer* w = g.find_initializer(n.inputs[1]);
  AMCTQ_CHECK(w != nullptr && w->value.type() == dtype::float32, errc::unsupported, where, label,
              ": the weight is not a float initializer");
  const weight_layout L = layout_of(n, w->value);
  AMCTQ_CHECK(static_cast<std::ptrdiff_t>(factors.size()) == L.in_channels(), errc::shape_mismatch, where, label, ": ",
              factors.size(), " balance factors for ", L.in_channels(), " input channels");
  std::vector<float> reciprocal(factors.size());
  for (std::size_t c = 0; c < factors.size(); ++c) {
    AMCTQ_CHECK(std::isfinite(factors[c]) && factors[c] > 0.0f, errc::invalid_argument, where, label,
                ": balance factor [", c, "] must be finite and > 0, got ", factors[c]);
    reciprocal[c] = 1.0f / factors[c];
  }
  // The constant broadcasts along the channel axis: [C, 1, ..., 1] with one 1 per axis after it.
  // Conv-like layers' input rank is their weight's; channels-last layers need only [C].
  const bool channels_last = find_layer_kind(n.op_type)->activation_channel_axis < 0;
  const std::size_t rank = channels_last ? (n.get_int("transA", 0) != 0 ? 2 : 1) : w->value.rank();
  std::vector<std::int64_t> shape(rank - balance_channel_axis(n, rank), 1);
  shape[0] = static_cast<std::int64_t>(factors.size());

  const std::string base = (n.name.empty() ? n.outputs.at(0) : n.name) + "_balance";
  initializer k;
  k.name = detail::unique_name(g, base + "_reciprocal");
  k.value = tensor::from<float>(shape, reciprocal);
  g.initializers.push_back(std::move(k));
  node mul;
  mul.op_type = "Mul";
  mul.name = base;
  mul.inputs = {n.inputs[0], g.initializers.back().name};
  mul.outputs = {detail::unique_name(g, base + "d")};
  n.inputs[0] = mul.outputs[0];
  inserted_balance r{layer, mul.outputs[0]};
  g.nodes.insert(g.nodes.begin() + static_cast<std::ptrdiff_t>(layer), std::move(mul));  // invalidates n
  return r;
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_INSERT_BALANCE_HPP
