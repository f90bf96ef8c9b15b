// Learned weight rounding (AdaRound, algorithms/adaround.hpp) over a graph, one layer at a time
// in graph order. A layer's input is cached as the columns its weight multiplies (layer_kind's
// weight_columns: im2col for Conv, rows for Gemm / MatMul, pixels for ConvTranspose), sampled
// uniformly to a fixed count, from two models at the same positions: the float model (the target
// is the float output W·X) and the calibration model, whose earlier layers already carry their
// learned rounding (the paper's asymmetric reconstruction, so a layer also corrects what its
// predecessors left). The latter is quantized with the layer's own activation params (observed
// on the float model first), each element kept float with probability drop_prob (QDrop). Adam
// then moves v against (2/B)·(W~X~ − WX)·X~ᵀ, one GEMM (Eigen), plus the rounding regulariser;
// the scales are ARQ's, so only the rounding moves. Memory: one layer's columns at a time.
#ifndef AMCTQ_GRAPH_PASSES_LEARN_ROUNDING_HPP
#define AMCTQ_GRAPH_PASSES_LEARN_ROUNDING_HPP

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "amctq/algorithms/adaround.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/activation_observers.hpp"
#include "amctq/graph/executor.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/layers/table.hpp"
#include "amctq/graph/quant_config.hpp"
#include "amctq/graph/quant_record.hpp"
#include "amctq/kernels/fake_quantize.hpp"

namespace amctq::graph::passes {

/// One layer whose rounding is learned. `record` holds ARQ's scales (wts) and codes (weight_q);
/// the learned codes replace the codes.
struct rounding_layer {
  const quant_layer* layer = nullptr;
  layer_record* record = nullptr;
  adaround_options options;
  activation_quant input;  ///< how the layer's input is quantized (unless options.drop_prob is 1)
};

/// What learning did to one layer; losses are mean squared output errors per column (sum over the
/// output channels, mean over output positions) on all cached columns, inputs quantized.
struct rounding_report {
  std::string layer;
  std::int64_t columns = 0;   ///< cached input columns
  double nearest_loss = 0;    ///< with ARQ's round-to-nearest codes
  double learned_loss = 0;    ///< with the learned codes
  std::int64_t changed = 0;   ///< codes that differ from round-to-nearest
  std::int64_t weights = 0;
  double seconds = 0;         ///< the optimisation alone, not the caching
};

struct rounding_options {
  std::function<void(const rounding_report&)> on_layer;  ///< called as each layer finishes
};

namespace detail {

using col_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;

// Uniform sample of at most `cap` columns of a stream of input_columns (reservoir sampling, one
// decision per column from a seeded generator, so two reservoirs fed the same stretches with the
// same seed keep the same columns). Column-major per group: each kept column is contiguous.
class column_reservoir {
 public:
  column_reservoir(std::int64_t cap, std::uint64_t seed) : cap_(cap), rng_(seed) {}

  void add(const input_columns& c) {
    if (data_.empty()) {
      groups_ = c.groups;
      rows_ = c.rows;
      data_.assign(static_cast<std::size_t>(groups_ * rows_ * cap_), 0.0f);
    }
    AMCTQ_CHECK(c.groups == groups_ && c.rows == rows_, errc::shape_mismatch, "adaround",
                "the layer's input columns changed shape between batches (", c.groups, "x", c.rows, " after ", groups_,
                "x", rows_, ")");
    for (std::int64_t j = 0; j < c.count; ++j) {
      const std::int64_t slot = seen_ < cap_ ? seen_ : static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(seen_ + 1));
      ++seen_;
      if (slot >= cap_) continue;
      for (std::int64_t g = 0; g < groups_; ++g) {
        float* dst = data_.data() + (g * cap_ + slot) * rows_;
        const float* src = c.data.data() + g * rows_ * c.count + j;
        for (std::int64_t k = 0; k < rows_; ++k) dst[k] = src[k * c.count];
      }
    }
  }
  std::int64_t kept() const noexcept { return std::min(seen_, cap_); }
  std::int64_t groups() const noexcept { return groups_; }
  std::int64_t rows() const noexcept { return rows_; }
  Eigen::Map<const col_matrix> group(std::int64_t g) const {
    return {data_.data() + g * cap_ * rows_, static_cast<Eigen::Index>(rows_), static_cast<Eigen::Index>(kept())};
  }

 private:
  std::int64_t cap_, seen_ = 0, groups_ = 0, rows_ = 0;
  std::mt19937_64 rng_;
  std::vector<float> data_;
};

// x fake-quantized with p (rounding as mode): per tensor, or per channel along p.axis of x.
inline tensor fake_quantized_input(const tensor& x, const quant_params& p, round_mode mode) {
  tensor y = x;
  const auto n = static_cast<std::ptrdiff_t>(x.size());
  if (!p.is_per_channel()) {
    fake_quantize(tensor_view<const float, 1>(x.data<float>(), {n}), tensor_view<float, 1>(y.data<float>(), {n}), p, mode);
    return y;
  }
  std::ptrdiff_t outer = 1, inner = 1;
  for (int d = 0; d < p.axis; ++d) outer *= static_cast<std::ptrdiff_t>(x.dim(static_cast<std::size_t>(d)));
  for (std::size_t d = static_cast<std::size_t>(p.axis) + 1; d < x.rank(); ++d) inner *= static_cast<std::ptrdiff_t>(x.dim(d));
  const auto c = static_cast<std::ptrdiff_t>(x.dim(static_cast<std::size_t>(p.axis)));
  quant_params q = p;
  q.axis = 1;
  fake_quantize(tensor_view<const float, 3>(x.data<float>(), {outer, c, inner}),
                tensor_view<float, 3>(y.data<float>(), {outer, c, inner}), q, mode);
  return y;
}

// A layer's weight as GEMM matrices, one per group: element (r, k) of group g sits at offset(g, r, k)
// of the flat weight, and row r belongs to output channel channel(g, r).
struct weight_matrices {
  weight_layout L;
  bool transposed = false;
  std::int64_t rows() const noexcept { return transposed ? L.out_per_group * L.spatial : L.out_per_group; }
  std::int64_t cols() const noexcept { return transposed ? L.in_per_group : L.in_per_group * L.spatial; }
  std::ptrdiff_t offset(std::int64_t g, std::int64_t r, std::int64_t k) const noexcept {
    if (transposed)
      return g * L.group_offset + (r / L.spatial) * L.stride_out + (r % L.spatial) * L.stride_spatial + k * L.stride_in;
    return g * L.group_offset + r * L.stride_out + (k / L.spatial) * L.stride_in + (k % L.spatial) * L.stride_spatial;
  }
  std::int64_t channel(std::int64_t g, std::int64_t r) const noexcept {
    return g * L.out_per_group + (transposed ? r / L.spatial : r);
  }
};

inline weight_matrices matrices_of(const model& m, const quant_layer& l) {
  const layer_kind& kind = *find_layer_kind(l.op_type);
  // layout() reads the tensor only; its signature is the layer table's, shared with writers.
  tensor& w = const_cast<tensor&>(m.main.find_initializer(l.weight)->value);
  return {kind.layout(m.main.nodes[l.node_index], w), kind.columns_transposed};
}

// Mean over columns of the summed squared output error of codes q (times s) against target y.
inline double reconstruction_loss(const col_matrix& wq, const Eigen::Map<const col_matrix>& x, const col_matrix& y) {
  return static_cast<double>((wq * x - y).squaredNorm()) / static_cast<double>(std::max<Eigen::Index>(x.cols(), 1));
}

// One layer's cached columns, at the same sampled positions: the float model's input (the target
// W·X is computed on it), the calibration model's input quantized (what the deployed layer
// reads) and, for QDrop, that input unquantized.
struct layer_columns {
  column_reservoir target, quantized, unquantized;
  bool has_quantized, has_unquantized;

  layer_columns(const adaround_options& o, bool quantize, bool keep_float)
      : target(o.columns, o.seed), quantized(o.columns, o.seed), unquantized(o.columns, o.seed),
        has_quantized(quantize), has_unquantized(!quantize || keep_float) {}

  // One pass of each model over the batches, watching the layer's input.
  void collect(const model& float_model, const model& calib_model, const quant_layer& l, const quant_params* qp,
               round_mode mode, const std::vector<std::map<std::string, tensor>>& batches, std::size_t used) {
    const layer_kind* kind = find_layer_kind(l.op_type);
    const node& n = float_model.main.nodes[l.node_index];
    const tensor& w = float_model.main.find_initializer(l.weight)->value;
    auto feed = [&](const model& m, const std::function<void(const tensor&)>& take) {
      executor ex(m);
      ex.hooks().on_tensor(l.input, [&take](const std::string&, const tensor& x) { take(x); });
      for (std::size_t b = 0; b < used; ++b) ex.run(batches[b]);
    };
    auto into = [&](column_reservoir& r) { return [&r](const input_columns& c) { r.add(c); }; };
    feed(float_model, [&](const tensor& x) { kind->weight_columns(n, x, w, into(target)); });
    feed(calib_model, [&](const tensor& x) {
      if (has_quantized) kind->weight_columns(n, fake_quantized_input(x, *qp, mode), w, into(quantized));
      if (has_unquantized) kind->weight_columns(n, x, w, into(unquantized));
    });
  }
};

// Optimises the rounding of one layer whose columns are cached; writes codes and the report.
inline rounding_report optimise_layer(const model& m, const rounding_layer& rl, const layer_columns& cols,
                                      tensor& calib_weight) {
  const column_reservoir& xf = cols.target;
  const column_reservoir* xq = cols.has_quantized ? &cols.quantized : nullptr;
  const column_reservoir* xc = cols.has_unquantized ? &cols.unquantized : nullptr;
  const quant_layer& l = *rl.layer;
  layer_record& r = *rl.record;
  const adaround_options& o = rl.options;
  const tensor& w = m.main.find_initializer(l.weight)->value;
  const weight_matrices wm = matrices_of(m, l);
  const std::string where = "adaround: layer '" + l.name + "'";
  AMCTQ_CHECK(xf.groups() == wm.L.groups && xf.rows() == wm.cols(), errc::shape_mismatch, where, "its input gives ",
              xf.groups(), " groups of ", xf.rows(), "-row columns, its weight expects ", wm.L.groups, " of ", wm.cols());
  AMCTQ_CHECK(xf.kept() >= o.batch, errc::invalid_argument, where, "needs at least ", o.batch,
              " input columns (output positions; weights.adaround.batch) and the calibration batches gave ", xf.kept(),
              ": calibrate on more data or lower the batch");
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t R = wm.rows(), K = wm.cols(), N = xf.kept(), B = o.batch, G = wm.L.groups;
  const float* pw = w.data<float>();
  std::int8_t* codes = r.weight_q.data<std::int8_t>();
  const std::int32_t qmin = r.wts.qmin, qmax = r.wts.qmax;
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<std::int64_t> order(static_cast<std::size_t>(N));
  rounding_report rep;
  rep.layer = l.name;
  rep.columns = N;
  rep.weights = G * R * K;

  // Per group: the float weight, per-row scale, v and Adam's moments, the float target W·X.
  struct group_state {
    col_matrix w, v, m1, m2, scale_rows, y;
    adaround::adam_state adam;  ///< over m1 / m2; each group steps once per iteration
  };
  std::vector<group_state> gs(static_cast<std::size_t>(G));
  for (std::int64_t g = 0; g < G; ++g) {
    group_state& s = gs[static_cast<std::size_t>(g)];
    s.w.resize(R, K);
    s.v.resize(R, K);
    s.scale_rows.resize(R, 1);
    for (std::int64_t i = 0; i < R; ++i) {
      const float sc = r.wts.scale[r.wts.is_per_channel() ? static_cast<std::size_t>(wm.channel(g, i)) : 0];
      s.scale_rows(i) = sc;
      for (std::int64_t k = 0; k < K; ++k) {
        const float wv = pw[wm.offset(g, i, k)];
        s.w(i, k) = wv;
        s.v(i, k) = adaround::initial_v(wv / sc - std::floor(wv / sc));
      }
    }
    s.m1 = col_matrix::Zero(R, K);
    s.m2 = col_matrix::Zero(R, K);
    s.adam = {s.m1.data(), s.m2.data(), 0};
    s.y = s.w * xf.group(g);
  }
  const auto& x_loss = xq ? *xq : *xc;  // the deployed layer reads quantized inputs
  auto hard = [&](const group_state& s, bool learned, std::int64_t g) {
    col_matrix q(R, K);
    for (std::int64_t i = 0; i < R; ++i)
      for (std::int64_t k = 0; k < K; ++k)
        q(i, k) = learned ? static_cast<float>(adaround::code(s.w(i, k), s.scale_rows(i), s.v(i, k), qmin, qmax))
                          : static_cast<float>(codes[wm.offset(g, i, k)]);
    return q;
  };
  for (std::int64_t g = 0; g < G; ++g) {
    const group_state& s = gs[static_cast<std::size_t>(g)];
    rep.nearest_loss += reconstruction_loss(s.scale_rows.asDiagonal() * hard(s, false, g), x_loss.group(g), s.y);
  }

  col_matrix xin(K, B), yb(R, B), soft(R, K), dsoft(R, K), err(R, B), grad(R, K);
  std::size_t cursor = order.size();
  std::vector<std::int64_t> idx(static_cast<std::size_t>(B));
  for (int t = 0; t < o.iterations; ++t) {
    // Columns without replacement within an epoch of the cache, reshuffled each epoch.
    for (auto& j : idx) {
      if (cursor == order.size()) {
        std::iota(order.begin(), order.end(), std::int64_t{0});
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      j = order[cursor++];
    }
    const float beta = adaround::beta_at(o, t, o.iterations);
    double loss = 0;
    for (std::int64_t g = 0; g < G; ++g) {
      group_state& s = gs[static_cast<std::size_t>(g)];
      for (std::int64_t b = 0; b < B; ++b) {
        const auto j = static_cast<Eigen::Index>(idx[static_cast<std::size_t>(b)]);
        yb.col(b) = s.y.col(j);
        if (!xq) {
          xin.col(b) = xc->group(g).col(j);
        } else if (!xc) {
          xin.col(b) = xq->group(g).col(j);
        } else {  // QDrop: each element quantized with probability 1 - drop_prob
          const auto xqg = xq->group(g), xcg = xc->group(g);
          for (std::int64_t k = 0; k < K; ++k) xin(k, b) = unit(rng) < o.drop_prob ? xcg(k, j) : xqg(k, j);
        }
      }
      for (std::int64_t i = 0; i < R; ++i)
        for (std::int64_t k = 0; k < K; ++k) {
          bool inside = true;
          soft(i, k) = adaround::soft_weight(s.w(i, k), s.scale_rows(i), s.v(i, k), qmin, qmax, inside);
          dsoft(i, k) = inside ? s.scale_rows(i) * adaround::dh(s.v(i, k)) : 0.0f;
        }
      err.noalias() = soft * xin;
      err -= yb;
      loss += static_cast<double>(err.squaredNorm());
      grad.noalias() = err * xin.transpose();
      grad *= 2.0f / static_cast<float>(B);
      for (std::int64_t i = 0; i < R; ++i)
        for (std::int64_t k = 0; k < K; ++k)
          grad(i, k) = grad(i, k) * dsoft(i, k) + adaround::regulariser_grad(s.v(i, k), beta, o.reg_param);
      adaround::adam_step(s.v.data(), grad.data(), static_cast<std::size_t>(R * K), s.adam, o.learning_rate);
    }
    AMCTQ_CHECK(std::isfinite(loss), errc::non_finite, where, "the reconstruction loss became ", loss, " at step ", t + 1,
                " of ", o.iterations, "; the layer's weight or calibration input holds values too large for float");
  }

  float* fq = calib_weight.data<float>();
  for (std::int64_t g = 0; g < G; ++g) {
    const group_state& s = gs[static_cast<std::size_t>(g)];
    const col_matrix q = hard(s, true, g);
    rep.learned_loss += reconstruction_loss(s.scale_rows.asDiagonal() * q, x_loss.group(g), s.y);
    for (std::int64_t i = 0; i < R; ++i)
      for (std::int64_t k = 0; k < K; ++k) {
        const std::ptrdiff_t off = wm.offset(g, i, k);
        const auto c = static_cast<std::int8_t>(q(i, k));
        rep.changed += codes[off] != c;
        codes[off] = c;
        fq[off] = static_cast<float>(c) * s.scale_rows(i);
      }
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return rep;
}

}  // namespace detail

/// Learns the rounding of every layer in `layers` on the first `batch_num` batches run through
/// `float_model`; writes each layer's codes into its record and their float image into the same
/// weight of `calib_model` (the model calibration then runs). Returns one report per layer.
/// @throws amctq::error naming the layer: a kind without weight columns, too few columns for a
///         batch, a non-finite loss.
inline std::vector<rounding_report> learn_rounding(const model& float_model, model& calib_model,
                                                   const std::vector<rounding_layer>& layers,
                                                   const std::vector<std::map<std::string, tensor>>& batches,
                                                   int batch_num, const rounding_options& opt = {}) {
  std::vector<rounding_report> reports;
  if (layers.empty()) return reports;
  const auto used = static_cast<std::size_t>(std::min<std::int64_t>(batch_num, static_cast<std::int64_t>(batches.size())));
  AMCTQ_CHECK(used > 0, errc::invalid_argument, "adaround", "no calibration batches");
  for (const auto& rl : layers) {
    const layer_kind* k = find_layer_kind(rl.layer->op_type);
    AMCTQ_CHECK(k && k->weight_columns && !rl.layer->weight.empty() && !rl.layer->input.empty(), errc::unsupported,
                "adaround", "layer '", rl.layer->name, "' (", rl.layer->op_type,
                "): learned rounding needs a layer with a weight and an input (Conv, ConvTranspose, Gemm, MatMul)");
  }
  // The input params the reconstruction quantizes with: observed on the float model.
  std::vector<std::optional<quant_params>> input_params(layers.size());
  {
    executor ex(float_model);
    activation_observers obs(ex);
    std::vector<std::size_t> ids(layers.size());
    bool any = false;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (layers[i].options.drop_prob >= 1.0f) continue;
      ids[i] = obs.watch(layers[i].layer->input, layers[i].input,
                         find_layer_kind(layers[i].layer->op_type)->activation_channel_axis);
      any = true;
    }
    if (any) {
      for (std::size_t b = 0; b < used; ++b) ex.run(batches[b]);
      for (std::size_t i = 0; i < layers.size(); ++i)
        if (layers[i].options.drop_prob < 1.0f) input_params[i] = obs.result(ids[i]);
    }
  }
  // Layer by layer in graph order: each layer's input comes from the calibration model, whose
  // earlier layers already have their learned rounding, so a layer also corrects what they left.
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const rounding_layer& rl = layers[i];
    const float p = rl.options.drop_prob;
    const quant_params* qp = input_params[i] ? &*input_params[i] : nullptr;
    detail::layer_columns cols(rl.options, qp != nullptr, p > 0.0f && qp != nullptr);
    cols.collect(float_model, calib_model, *rl.layer, qp, rl.input.rounding, batches, used);
    tensor& cw = calib_model.main.find_initializer(rl.layer->weight)->value;
    reports.push_back(detail::optimise_layer(float_model, rl, cols, cw));
    if (opt.on_layer) opt.on_layer(reports.back());
  }
  return reports;
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_LEARN_ROUNDING_HPP
