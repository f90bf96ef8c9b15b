// Gather from a constant table (an embedding): weight-only int8, one scale per row (per token).
// Its indices are not quantized. Both models read the table as int8 codes through a per-row
// DequantizeLinear and gather the dequantized rows in float, which is exact (no arithmetic after
// DequantizeLinear), so the deploy model equals amctq's simulation bit for bit.
#ifndef AMCTQ_GRAPH_LAYERS_GATHER_HPP
#define AMCTQ_GRAPH_LAYERS_GATHER_HPP

#include "amctq/error.hpp"
#include "amctq/graph/layers/kind.hpp"
#include "amctq/graph/layers/lowering.hpp"

namespace amctq::graph::layers {

// The table [rows, width]: each row is an output channel, as a Gemm weight with transB.
inline weight_layout gather_layout(const node& n, const tensor& w) {
  AMCTQ_CHECK(w.rank() == 2, errc::unsupported, "layer '" + n.name + "'", "Gather table of rank ", w.rank(),
              " is not supported (rank 2 only)");
  return layout_over<2>(w, [](const auto& v) { return gemm_weight_layout(v, true); });
}

inline const char* gather_refuse(const graph& g, const node& n) {
  if (n.get_int("axis", 0) != 0) return "Gather along an axis other than 0 does not read whole rows of its table";
  const initializer* w = g.find_initializer(n.inputs[0]);
  if (w->value.rank() != 2) return "only a 2-D table (rows x width) is quantized per row";
  return nullptr;
}

inline void gather_qdq(qdq_lowering& c) { detail::lower_weight_qdq(c, 0, 0); }

inline layer_kind gather() {
  layer_kind k;
  k.op_type = "Gather";
  k.weight_input = 0;
  k.quantizes_input = false;
  k.layout = gather_layout;
  k.refuse = gather_refuse;
  k.lower_qdq = gather_qdq;  // the deploy model keeps this form (no lower_qoperator)
  return k;
}

}  // namespace amctq::graph::layers

#endif  // AMCTQ_GRAPH_LAYERS_GATHER_HPP
