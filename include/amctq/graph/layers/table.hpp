// The quantizable layer kinds, one entry each. A kind not listed here is never quantized.
#ifndef AMCTQ_GRAPH_LAYERS_TABLE_HPP
#define AMCTQ_GRAPH_LAYERS_TABLE_HPP

#include <string>
#include <vector>

#include "amctq/graph/layers/average_pool.hpp"
#include "amctq/graph/layers/conv.hpp"
#include "amctq/graph/layers/conv_transpose.hpp"
#include "amctq/graph/layers/gather.hpp"
#include "amctq/graph/layers/gemm.hpp"
#include "amctq/graph/layers/kind.hpp"

namespace amctq::graph {

inline const std::vector<layer_kind>& layer_kinds() {
  static const std::vector<layer_kind> kinds = {layers::conv(), layers::conv_transpose(), layers::gemm(),
                                                layers::matmul(), layers::average_pool(), layers::gather()};
  return kinds;
}

/// The kind of op_type (default ONNX domain), or nullptr when it is not quantizable.
inline const layer_kind* find_layer_kind(const std::string& op_type) {
  for (const auto& k : layer_kinds())
    if (k.op_type == op_type) return &k;
  return nullptr;
}

inline bool is_quantizable_op(const std::string& op_type) { return find_layer_kind(op_type) != nullptr; }

/// "Conv, ConvTranspose, Gemm, MatMul, AveragePool": for messages.
inline std::string layer_kind_names() {
  std::string s;
  for (const auto& k : layer_kinds()) s += (s.empty() ? "" : ", ") + k.op_type;
  return s;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_LAYERS_TABLE_HPP
