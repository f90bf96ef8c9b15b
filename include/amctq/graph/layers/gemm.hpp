// Gemm (transA = 0, alpha = 1) and MatMul with a constant 2-D right operand, or MatMul of two
// activations (attention's Q·Kᵀ and A·V: both inputs quantized, no weight). Deploy: MatMulInteger
// (a constant B as [K, N]) + int32 bias + rescale to float, requantized by the next layer.
#ifndef AMCTQ_GRAPH_LAYERS_GEMM_HPP
#define AMCTQ_GRAPH_LAYERS_GEMM_HPP

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/layers/kind.hpp"
#include "amctq/graph/layers/lowering.hpp"

namespace amctq::graph::layers {

inline weight_layout gemm_layout(const node& n, const tensor& w) {
  AMCTQ_CHECK(w.rank() == 2, errc::shape_mismatch, "layer '" + n.name + "'", "Gemm B must have rank 2");
  const bool trans_b = n.get_int("transB", 0) != 0;
  return layout_over<2>(w, [&](const auto& v) { return gemm_weight_layout(v, trans_b); });
}

inline weight_layout matmul_layout(const node& n, const tensor& w) {
  AMCTQ_CHECK(w.rank() == 2, errc::unsupported, "layer '" + n.name + "'",
              "MatMul with a constant right operand of rank ", w.rank(), " is not supported (rank 2 only)");
  return layout_over<2>(w, [](const auto& v) { return matmul_weight_layout(v); });
}

/// Gemm's and MatMul's weight columns: each row of the input's last axis (Gemm has transA = 0,
/// see gemm_refuse), transposed to [K][rows] a stretch of at most 1024 rows at a time.
inline void row_columns(const node&, const tensor& x, const tensor&, const columns_sink& take) {
  const std::int64_t K = x.rank() == 0 ? 1 : x.dim(x.rank() - 1);
  const std::int64_t total = K > 0 ? static_cast<std::int64_t>(x.size()) / K : 0;
  constexpr std::int64_t stretch = 1024;
  input_columns cols;
  cols.rows = K;
  for (std::int64_t r0 = 0; r0 < total; r0 += stretch) {
    cols.count = std::min(stretch, total - r0);
    cols.data.resize(static_cast<std::size_t>(K * cols.count));
    const float* p = x.data<float>() + r0 * K;
    for (std::int64_t j = 0; j < cols.count; ++j)
      for (std::int64_t k = 0; k < K; ++k) cols.data[static_cast<std::size_t>(k * cols.count + j)] = p[j * K + k];
    take(cols);
  }
}

inline const char* gemm_refuse(const graph&, const node& n) {
  if (n.get_int("transA", 0) != 0) return "Gemm with transA = 1 has no integer form here";
  if (n.get_float("alpha", 1.0f) != 1.0f) return "Gemm with alpha != 1 has no integer form here";
  return nullptr;
}

inline void gemm_qdq(qdq_lowering& c) {
  if (!detail::lower_weight_and_bias_qdq(c, gemm_layout(c.n, c.r.weight_q).out_axis)) return;
  for (auto& a : c.n.attributes)  // beta is already in the quantized bias
    if (a.name == "beta") a.f = 1.0f;
}

inline void matmul_qdq(qdq_lowering& c) {
  if (c.l.weight.empty()) return;  // two activations: both inputs' QDQ pairs come from lower_qdq.hpp
  detail::lower_weight_and_bias_qdq(c, matmul_layout(c.n, c.r.weight_q).out_axis);
}

/// MatMulInteger needs B as [K, N]: Gemm's transB weight is transposed. Two activations: the
/// int8 input_b is B, and the accumulator's scale is s_a * s_b.
inline void matmul_integer_qoperator(qoperator_lowering& c) {
  if (!c.l.input_b.empty()) {
    c.out.push_back(detail::make_node("MatMulInteger", c.l.name, {c.x, c.xb, c.x_zero_point, c.xb_zero_point},
                                      {c.l.name + "_acc"}));
    detail::emit_integer_rescale(c, c.l.name + "_acc", {c.r.act.scale[0] * c.r.act_b.scale[0]}, false);
    return;
  }
  const tensor& wq = c.r.weight_q;
  tensor b = wq;
  if (c.l.op_type == "Gemm" && c.n.get_int("transB", 0) != 0) {
    const std::int64_t N = wq.dim(0), K = wq.dim(1);
    b = tensor(dtype::int8, {K, N});
    const std::int8_t* s = wq.data<std::int8_t>();
    std::int8_t* d = b.data<std::int8_t>();
    for (std::int64_t a = 0; a < N; ++a)
      for (std::int64_t k = 0; k < K; ++k) d[k * N + a] = s[a * K + k];
  }
  const std::string wt = c.l.name + "_weight";
  detail::add_init(c.g, wt + "_quantized", b);
  c.out.push_back(detail::make_node("MatMulInteger", c.l.name, {c.x, wt + "_quantized", c.x_zero_point}, {c.l.name + "_acc"}));
  detail::emit_integer_rescale(c, c.l.name + "_acc", detail::bias_scales(c.r, c.r.wts.channels()), false);
}

inline layer_kind gemm() {
  layer_kind k;
  k.op_type = "Gemm";
  k.weight_input = 1;
  k.bias_input = 2;
  k.activation_channel_axis = -1;
  k.layout = gemm_layout;
  k.weight_columns = row_columns;
  k.refuse = gemm_refuse;
  k.balance = k.equalize = k.correct_bias = k.fold_batchnorm = true;
  k.lower_qdq = gemm_qdq;
  k.lower_qoperator = matmul_integer_qoperator;
  return k;
}

inline layer_kind matmul() {
  layer_kind k;
  k.op_type = "MatMul";
  k.weight_input = 1;
  k.activation_weight = true;
  k.activation_channel_axis = -1;
  k.layout = matmul_layout;
  k.weight_columns = row_columns;
  k.balance = true;
  k.lower_qdq = matmul_qdq;
  k.lower_qoperator = matmul_integer_qoperator;
  return k;
}

}  // namespace amctq::graph::layers

#endif  // AMCTQ_GRAPH_LAYERS_GEMM_HPP
