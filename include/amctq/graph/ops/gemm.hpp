// Gemm (transA, transB, alpha, beta, unidirectionally broadcast C) and MatMul (numpy
// semantics: 1-D operands promoted, batch dims broadcast), both on Eigen.
#ifndef AMCTQ_GRAPH_OPS_GEMM_HPP
#define AMCTQ_GRAPH_OPS_GEMM_HPP

#include <algorithm>
#include <any>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"
#include "amctq/graph/ops/packed_gemm.hpp"

namespace amctq::graph::ops {

namespace detail {
using gemm_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using gemm_map = Eigen::Map<gemm_matrix>;
using gemm_cmap = Eigen::Map<const gemm_matrix>;

/// MatMul's numpy shape rules over the shapes of A and B: 1-D operands promoted (and the added
/// dim dropped from the output), batch dims broadcast. Batch i multiplies the M x K matrix at
/// element a_offset[i] of A by the K x N matrix at b_offset[i] of B into the i-th M x N block of Y.
struct matmul_plan {
  std::int64_t M = 0, K = 0, N = 0;
  std::vector<std::int64_t> out_shape;
  std::vector<std::int64_t> a_offset, b_offset;
};

inline matmul_plan plan_matmul(const context& c, std::vector<std::int64_t> as, std::vector<std::int64_t> bs) {
  AMCTQ_CHECK(!as.empty() && !bs.empty(), errc::shape_mismatch, c.where(), "operands must have rank >= 1");
  const std::string a_text = shape_string(as), b_text = shape_string(bs);
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  matmul_plan p;
  p.M = as[as.size() - 2];
  p.K = as.back();
  p.N = bs.back();
  AMCTQ_CHECK(bs[bs.size() - 2] == p.K, errc::shape_mismatch, c.where(), "inner dims differ: ", a_text, " x ", b_text);
  const std::vector<std::int64_t> abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  const auto batch = broadcast_shapes(c, abatch, bbatch);
  p.out_shape = batch;
  if (!a_vec) p.out_shape.push_back(p.M);
  if (!b_vec) p.out_shape.push_back(p.N);
  const auto sa = broadcast_strides(abatch, batch), sb = broadcast_strides(bbatch, batch);
  const std::int64_t nb = numel(batch);
  std::vector<std::int64_t> idx(batch.size(), 0);
  for (std::int64_t i = 0; i < nb; ++i) {
    std::int64_t oa = 0, ob = 0;
    for (std::size_t d = 0; d < batch.size(); ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    p.a_offset.push_back(oa * p.M * p.K);
    p.b_offset.push_back(ob * p.K * p.N);
    for (std::size_t d = batch.size(); d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  return p;
}

/// A constant 2-D MatMul B (K x N) packed as the GEMM's lhs, B^T, kept in the executor's node state.
struct packed_matmul_weight {
  const float* source = nullptr;
  std::int64_t K = 0, N = 0, kc = 0, mc = 0;
  aligned_floats packed;
};

inline const packed_matmul_weight* matmul_weight_state(context& c, const float* pb, std::int64_t K, std::int64_t N,
                                                       const gemm_blocking& b) {
  if (!c.state || !c.is_constant(1)) return nullptr;
  auto* s = std::any_cast<std::shared_ptr<packed_matmul_weight>>(c.state);
  if (s && (*s)->source == pb && (*s)->K == K && (*s)->N == N && (*s)->kc == b.kc && (*s)->mc == b.mc) return s->get();
  auto p = std::make_shared<packed_matmul_weight>();
  p->source = pb;
  p->K = K;
  p->N = N;
  p->kc = b.kc;
  p->mc = b.mc;
  p->packed.resize(static_cast<std::size_t>(packed_lhs_size(N, K, b)));
  pack_lhs_blocks(pb, N, N, K, b, p->packed.data());
  *c.state = p;
  return p.get();
}

}  // namespace detail

inline void gemm(context& c) {
  c.require_inputs(2, 3);
  const tensor& a = c.input(0);
  const tensor& b = c.input(1);
  c.require_type(a, dtype::float32, "A");
  c.require_type(b, dtype::float32, "B");
  AMCTQ_CHECK(a.rank() == 2 && b.rank() == 2, errc::shape_mismatch, c.where(), "A ", shape_string(a.shape()),
              " and B ", shape_string(b.shape()), " must be 2-D");
  const bool ta = c.n.get_int("transA", 0) != 0, tb = c.n.get_int("transB", 0) != 0;
  const float alpha = c.n.get_float("alpha", 1.0f), beta = c.n.get_float("beta", 1.0f);
  const std::int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const std::int64_t Kb = tb ? b.dim(1) : b.dim(0), N = tb ? b.dim(0) : b.dim(1);
  AMCTQ_CHECK(K == Kb, errc::shape_mismatch, c.where(), "inner dims differ: A ", shape_string(a.shape()),
              (ta ? " (transposed)" : ""), " vs B ", shape_string(b.shape()), (tb ? " (transposed)" : ""));
  tensor& y = c.make_output_uninit(0, dtype::float32, {M, N});
  detail::gemm_map out(y.data<float>(), M, N);
  const detail::gemm_cmap am(a.data<float>(), a.dim(0), a.dim(1));
  const detail::gemm_cmap bm(b.data<float>(), b.dim(0), b.dim(1));
  if (ta && tb) out.noalias() = am.transpose() * bm.transpose();
  else if (ta) out.noalias() = am.transpose() * bm;
  else if (tb) out.noalias() = am * bm.transpose();
  else out.noalias() = am * bm;
  if (alpha != 1.0f) out *= alpha;
  if (c.has_input(2) && beta != 0.0f) {
    const tensor& bias = c.input(2);
    c.require_type(bias, dtype::float32, "C");
    AMCTQ_CHECK(bias.rank() <= 2, errc::shape_mismatch, c.where(), "C has rank ", bias.rank());
    const auto s = broadcast_strides(bias.shape(), {M, N});
    const std::vector<std::int64_t> target{M, N};
    AMCTQ_CHECK(broadcast_shapes(c, bias.shape(), target) == target, errc::shape_mismatch, c.where(), "C ",
                shape_string(bias.shape()), " does not broadcast to [", M, ",", N, "]");
    const float* pc = bias.data<float>();
    float* py = y.data<float>();
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) py[i * N + j] += beta * pc[i * s[0] + j * s[1]];
  }
}

inline void matmul(context& c) {
  c.require_inputs(2, 2);
  const tensor& a = c.input(0);
  const tensor& b = c.input(1);
  c.require_type(a, dtype::float32, "A");
  c.require_type(b, dtype::float32, "B");
  const detail::matmul_plan p = detail::plan_matmul(c, a.shape(), b.shape());
  tensor& y = c.make_output_uninit(0, dtype::float32, p.out_shape);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* py = y.data<float>();
  if (b.rank() == 2 && p.M > 0 && p.N > 0 && p.K > 0) {
    // Y (M x N, row-major) = A * B is, column-major, Y^T = B^T * A^T: B^T is the lhs, packed once.
    const detail::gemm_blocking blocking(p.N, p.K, p.M);
    if (const detail::packed_matmul_weight* pk = detail::matmul_weight_state(c, pb, p.K, p.N, blocking)) {
      // A task: one product of the batch, or, when those are fewer than the workers, part of its
      // output features (each such task packs its A whole: a small cost beside the product).
      const auto products = static_cast<std::int64_t>(p.a_offset.size());
      const auto spans = detail::split_rows(p.N, blocking, c.parts_per_task(products));
      const auto spans_n = static_cast<std::int64_t>(spans.size());
      const std::int64_t need = detail::packed_gemm_work(p.K, p.M, blocking, true, false);
      float* const scratch = c.scratch_per_worker(need);
      std::fill(py, py + y.size(), 0.0f);
      c.parallel_for(products * spans_n, [&](std::int64_t t, int worker) {
        const auto i = static_cast<std::size_t>(t / spans_n);
        detail::packed_gemm(p.N, p.K, p.M, blocking, {pk->packed.data(), 0, true}, {pa + p.a_offset[i], p.K, false},
                            py + static_cast<std::int64_t>(i) * p.M * p.N, p.N, scratch + worker * need,
                            {spans[static_cast<std::size_t>(t % spans_n)], {0, p.M}});
      });
      return;
    }
  }
  // The products of a batch (attention heads) are independent: one per task when there are several.
  c.parallel_ranges(static_cast<std::int64_t>(p.a_offset.size()), 1, 1, [&](std::int64_t first, std::int64_t last) {
    for (auto i = static_cast<std::size_t>(first); i < static_cast<std::size_t>(last); ++i)
      detail::gemm_map(py + static_cast<std::int64_t>(i) * p.M * p.N, p.M, p.N).noalias() =
          detail::gemm_cmap(pa + p.a_offset[i], p.M, p.K) * detail::gemm_cmap(pb + p.b_offset[i], p.K, p.N);
  });
}

/// The gemm ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table gemm_ops() {
  return {
      {"Gemm", gemm}, {"MatMul", matmul}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_GEMM_HPP
