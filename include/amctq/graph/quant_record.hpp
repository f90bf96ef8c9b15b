// What calibration decided for each layer (AMCT's record.json fields, docs/pipeline.md): activation scale and
// offset, weight scales (offset_w is always 0: weights are symmetric), shift_bit (SearchN,
// unused by the ONNX Runtime target), DMQ balance factors, NUQ clusters; plus the quantized
// weights and bias the exporters store.
#ifndef AMCTQ_GRAPH_QUANT_RECORD_HPP
#define AMCTQ_GRAPH_QUANT_RECORD_HPP

#include <cstdint>
#include <string>
#include <vector>

#include "amctq/graph/tensor.hpp"
#include "amctq/quant_params.hpp"

namespace amctq::graph {

struct layer_record {
  std::string name;
  std::string op_type;
  quant_params act;                   ///< layer input (scale_d, offset_d)
  quant_params act_b;                 ///< second activation input, per tensor (scale_d_b, offset_d_b); else empty
  quant_params wts;                   ///< weights (scale_w, offset_w); empty for AveragePool
  std::vector<std::uint32_t> shift_bit;
  std::vector<float> tensor_balance_factor;  ///< DMQ: x / f and w * f per input channel
  std::vector<std::int32_t> clusters;  ///< NUQ: the num_steps int8 levels kept (AMCT's `cluster`), sorted
  tensor weight_q;                    ///< int8 codes, same shape as the float weight
  std::vector<std::int32_t> bias_q;   ///< int32, round(b / (s_w * s_d)); empty when no bias
  /// A bias narrower than 32 bits: its own grid (scale_b) and codes; bias_q is then made from
  /// their values, codes * scale_b. Empty for a 32-bit bias.
  quant_params bias_grid;
  std::vector<std::int8_t> bias_grid_q;
  int act_bits = 8;
  round_mode act_rounding = round_mode::half_even;  ///< how x / scale_d rounds in both saved models
  std::vector<std::int64_t> input_shape;  ///< the layer input's shape in the last calibration batch
};

/// A tensor quantized where it is made, not where a layer reads it (graph/tensor_points.hpp):
/// every reader, quantized layer or not, and a model output, sees its quantized values.
struct tensor_record {
  std::string tensor;
  std::string reason;  ///< "output of layer 'x'", "input of Add 'y'", ...
  quant_params act;    ///< per tensor
  int bits = 8;
  round_mode rounding = round_mode::half_even;
};

struct quant_record {
  std::vector<layer_record> layers;
  std::vector<tensor_record> tensors;
  const layer_record* find(const std::string& name) const noexcept {
    for (const auto& l : layers)
      if (l.name == name) return &l;
    return nullptr;
  }
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_QUANT_RECORD_HPP
