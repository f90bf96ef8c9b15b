// What a quantizable layer kind is: which inputs hold its weight and bias, how its weight is laid
// out, which node forms it accepts, which equivalence transforms apply to it, the channel axis
// of its input, and how it is written into the fake-quant (QDQ) and the deploy (integer) model.
// One layer_kind value per kind lives in its own header beside this one (conv.hpp, gemm.hpp,
// ...); table.hpp lists them. Adding a kind: one header with its entry and lowerings, one line
// in table.hpp (docs/structure.md).
#ifndef AMCTQ_GRAPH_LAYERS_KIND_HPP
#define AMCTQ_GRAPH_LAYERS_KIND_HPP

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/quant_record.hpp"

namespace amctq::graph {

/// One quantizable layer found in a graph.
struct quant_layer {
  std::size_t node_index = 0;
  std::string name;
  std::string op_type;
  std::string input;   ///< activation input (the tensor the activation observer watches); empty for weight-only kinds
  /// The second activation input of a layer whose weight operand is an activation (MatMul of
  /// two activations: attention's Q·Kᵀ and A·V), quantized per tensor; empty otherwise.
  std::string input_b;
  std::string output;
  std::string weight;  ///< initializer name; empty for kinds without a weight
  std::string bias;    ///< initializer name or empty
};

/// A layer's part of the fake-quant model: the weight / bias DequantizeLinear nodes to emit
/// before the layer (`before`) and the layer node's inputs rewired to them. The input's
/// QuantizeLinear / DequantizeLinear pair is emitted by the caller (lower_qdq.hpp).
struct qdq_lowering {
  graph& g;
  std::vector<node>& before;
  node& n;
  const quant_layer& l;
  const layer_record& r;
};

/// A layer's part of the deploy model: the nodes that replace it, appended to `out`. The int8
/// input `x` and its scale / zero-point initializers exist already. When `target` is set, the
/// kind requantizes straight into that layer's input grid (see layer_kind::requantizes) and must
/// write the int8 tensor `target_input` on it.
struct qoperator_lowering {
  graph& g;
  std::vector<node>& out;
  const node& n;
  const quant_layer& l;
  const layer_record& r;
  std::string x, x_scale, x_zero_point;
  std::string xb = {}, xb_zero_point = {};  ///< the int8 input_b and its zero point, when the layer has one
  const quant_layer* target = nullptr;
  const layer_record* target_record = nullptr;
};

/// A stretch of a layer's input as the columns its weight multiplies (learned rounding
/// reconstructs the layer's output on them): `groups` blocks of rows x count floats, row-major,
/// group outermost. Column j of block g is what weight group g multiplies into one output
/// position: an im2col column (Conv), one input row (Gemm, MatMul), one input pixel's channels
/// (ConvTranspose, whose weight multiplies it from the transposed side).
struct input_columns {
  std::int64_t groups = 1, rows = 0, count = 0;
  std::vector<float> data;
};
using columns_sink = std::function<void(const input_columns&)>;

/// f(view) of w as R axes, w being a float weight or its int8 codes: a layout depends on the
/// shape alone, so the saved models' lowerings read it from the codes, and the float values
/// may be gone by then (quantizer::release_float_weights).
template <std::size_t R, class F>
weight_layout layout_over(const tensor& w, F&& f) {
  if (w.type() == dtype::int8) return f(w.view<std::int8_t, R>());
  return f(w.view<float, R>());
}

struct layer_kind {
  std::string op_type;
  int weight_input = -1;  ///< input index of the float weight initializer; -1: the kind has none
  int bias_input = -1;    ///< input index of an optional float bias initializer; -1: none
  /// Its input 0 is an activation that is calibrated and quantized; false for weight-only kinds
  /// (an embedding table read by Gather), whose quant_layer::input is then empty.
  bool quantizes_input = true;
  /// A weight operand that is not a float constant is a second activation (quant_layer::input_b),
  /// calibrated and quantized like input 0, and the layer has no weight: MatMul of two activations.
  bool activation_weight = false;
  /// The axis of the layer input that per-channel activations are cut along (negative: from the end).
  int activation_channel_axis = 1;
  /// The weight's layout (output / input channel axes, groups) from the float weight or its int8
  /// codes, which have its shape; set iff weight_input >= 0.
  weight_layout (*layout)(const node& n, const tensor& w) = nullptr;
  /// Calls take() on successive stretches of input x as weight columns (weight w gives the
  /// kernel); nullptr: the kind's rounding cannot be learned (weights get ARQ).
  void (*weight_columns)(const node& n, const tensor& x, const tensor& w, const columns_sink& take) = nullptr;
  /// The weight multiplies its columns from the transposed side: the GEMM's rows are
  /// (output channel, kernel tap) pairs and it reduces over the input channels (ConvTranspose).
  bool columns_transposed = false;
  /// Why a node of this op_type cannot be quantized exactly (it stays float), or nullptr.
  const char* (*refuse)(const graph& g, const node& n) = nullptr;
  bool balance = false;          ///< DMQ / SmoothQuant may scale its input channels into the weight
  bool equalize = false;         ///< cross-layer equalisation may rescale its channels
  bool correct_bias = false;     ///< bias correction may adjust its bias
  bool fold_batchnorm = false;   ///< a following BatchNormalization folds into its weight and bias
  /// Its deploy lowering can requantize its output into the next layer's input grid (QLinearConv).
  bool requantizes = false;
  void (*lower_qdq)(qdq_lowering&) = nullptr;  ///< weights and bias; nullptr: the input only
  /// nullptr: the deploy model keeps the fake-quant form (weight-only kinds).
  void (*lower_qoperator)(qoperator_lowering&) = nullptr;
  /// Where this layer's deploy form may differ from amctq's integer simulation (one sentence),
  /// or empty; nullptr: never.
  std::string (*deploy_note)(const node& n, const layer_record& r) = nullptr;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_LAYERS_KIND_HPP
