// The Vitis AI global switches of a quant_config applied to the quantizer's models, so the
// pipeline calls one function per stage:
//   - on the float model, right after BatchNorm folding: convert_relu6_to_relu, then
//     include_cle (Vitis' order: the ReLU6s must be gone for CLE to equalise through them);
//   - at the end of calibration, before the biases are quantized: include_bias_corr, from the
//     float model and the calibration model (weights fake-quantized).
#ifndef AMCTQ_GRAPH_PASSES_VITIS_GLOBALS_HPP
#define AMCTQ_GRAPH_PASSES_VITIS_GLOBALS_HPP

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "amctq/graph/ir.hpp"
#include "amctq/graph/passes/correct_bias.hpp"
#include "amctq/graph/passes/equalize_cross_layer.hpp"
#include "amctq/graph/passes/relu6_to_relu.hpp"
#include "amctq/graph/quant_config.hpp"
#include "amctq/graph/quant_layers.hpp"

namespace amctq::graph::passes {

struct float_globals_report {
  std::size_t relu6_rewritten = 0;  ///< Clip(0, 6) nodes now Relu (convert_relu6_to_relu)
  std::optional<cle_report> cle;    ///< set when include_cle ran
};

/// convert_relu6_to_relu, then include_cle, on the float model (BatchNorm already folded).
inline float_globals_report apply_float_globals(model& m, const global_settings& g) {
  float_globals_report r;
  if (g.convert_relu6_to_relu) r.relu6_rewritten = relu6_to_relu(m);
  if (g.include_cle) r.cle = equalize_cross_layer(m);
  return r;
}

/// include_bias_corr: corrects the bias of every layer in `layers` that has a bias input
/// (Conv, ConvTranspose, Gemm; MatMul has none and is left as is) in both models, and points
/// each corrected layer's quant_layer::bias at the bias it now reads (one may have been created).
inline std::vector<bias_correction_entry> correct_layer_biases(model& float_model, model& calib_model,
                                                               const std::vector<std::map<std::string, tensor>>& batches,
                                                               std::vector<quant_layer>& layers) {
  std::vector<std::string> names;
  for (const auto& l : layers)
    if (!l.weight.empty() && find_layer_kind(l.op_type)->correct_bias)
      names.push_back(l.name);
  auto entries = correct_bias(float_model, calib_model, batches, names);
  for (const auto& e : entries)
    for (auto& l : layers)
      if (l.name == e.layer) l.bias = e.bias;
  return entries;
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_VITIS_GLOBALS_HPP
