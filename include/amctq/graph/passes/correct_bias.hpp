// Empirical bias correction over a graph (Vitis AI include_bias_corr, AIMET empirical
// BiasCorrection, Nagel et al. 2019 §4.2). Quantizing a layer's weights shifts the mean of each
// of its output channels; this pass measures that shift on calibration data — the layer's
// output in the float model minus its output in the model with quantized weights, averaged over
// the batch and spatial positions (algorithms/bias_correction.hpp's channel_mean_observer) —
// and adds it to the layer's bias (a bias is created where there was none), in both models.
//
// Layers are corrected one at a time in execution order (AIMET's order): each layer's shift is
// measured with the layers before it already corrected, so a downstream layer does not also
// absorb an upstream shift that the upstream correction removes. That costs one pass of the
// quantized model per layer; `sequential = false` measures every layer in a single pass.
//
// What "quantized" means is the caller's: the pipeline passes its calibration model (weights
// fake-quantized, activations float), so the pass corrects the weight-quantization error.
#ifndef AMCTQ_GRAPH_PASSES_CORRECT_BIAS_HPP
#define AMCTQ_GRAPH_PASSES_CORRECT_BIAS_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "amctq/algorithms/bias_correction.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/executor.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/layers/table.hpp"
#include "amctq/graph/passes/graph_edit.hpp"

namespace amctq::graph::passes {

struct bias_correction_options {
  bool sequential = true;  ///< correct layer by layer (one quantized pass each) rather than all at once
};

struct bias_correction_entry {
  std::string layer;           ///< layer name as passed in
  std::string bias;            ///< the bias initializer the layer now reads
  bool created = false;        ///< the layer had no bias before
  double mean_abs_shift = 0;   ///< mean over channels of |E[y_float] - E[y_quant]| before correcting
};

namespace detail {

// Node index of the layer named `name` (node name, else first output) in g, checked to be a
// layer whose bias input can absorb a per-output-channel shift.
inline std::size_t bias_layer_index(const graph& g, const std::string& name, const char* which) {
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    const node& n = g.nodes[k];
    if (layer_name(n) != name) continue;
    const layer_kind* kind = default_domain(n) ? find_layer_kind(n.op_type) : nullptr;
    AMCTQ_CHECK(kind != nullptr && kind->correct_bias, errc::unsupported, "correct_bias", "layer '", name, "' (",
                n.op_type, ") has no bias input to correct; only layer kinds with correct_bias set do");
    return k;
  }
  AMCTQ_THROW(errc::invalid_argument, "correct_bias", "no layer '", name, "' in the ", which, " model");
}

// Adds one output of a layer (channels on axis 1: Conv [N, C, ...], Gemm [M, N]) to `obs`,
// created on first use with that many channels.
inline void observe_output(std::optional<channel_mean_observer>& obs, const std::string& layer, const tensor& y) {
  AMCTQ_CHECK(y.type() == dtype::float32 && y.rank() >= 2, errc::unsupported, "correct_bias", "layer '", layer,
              "' output is ", to_string(y.type()), " of rank ", y.rank(), "; float32 of rank >= 2 expected");
  std::ptrdiff_t inner = 1;
  for (std::size_t d = 2; d < y.rank(); ++d) inner *= static_cast<std::ptrdiff_t>(y.dim(d));
  const auto C = static_cast<std::ptrdiff_t>(y.dim(1));
  if (!obs) obs.emplace(static_cast<std::size_t>(C));
  obs->observe(tensor_view<const float, 3>(y.data<float>(), {static_cast<std::ptrdiff_t>(y.dim(0)), C, inner}), 1);
}

// Per-channel output means of the layers at `nodes` (indices into m.main.nodes) over `batches`.
inline std::vector<std::vector<double>> output_means(const model& m, const std::vector<std::size_t>& nodes,
                                                     const std::vector<std::map<std::string, tensor>>& batches) {
  executor ex(m);
  std::vector<std::optional<channel_mean_observer>> obs(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const node& n = m.main.nodes[nodes[i]];
    const std::string name = layer_name(n);
    ex.hooks().on_tensor(n.outputs[0], [&obs, i, name](const std::string&, const tensor& y) { observe_output(obs[i], name, y); });
  }
  for (const auto& b : batches) ex.run(b);
  std::vector<std::vector<double>> means;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    AMCTQ_CHECK(obs[i].has_value(), errc::invalid_argument, "correct_bias", "layer '", layer_name(m.main.nodes[nodes[i]]),
                "' produced no output on the calibration batches");
    means.push_back(obs[i]->result());
  }
  return means;
}

}  // namespace detail

/// Corrects the biases of `layers` (Conv / ConvTranspose / Gemm names, as quant_layer::name) in
/// both `float_model` and `quant_model`, which must be the same graph up to weight values.
/// Uses every batch in `batches`. Returns one entry per layer, in execution order.
inline std::vector<bias_correction_entry> correct_bias(model& float_model, model& quant_model,
                                                       const std::vector<std::map<std::string, tensor>>& batches,
                                                       const std::vector<std::string>& layers,
                                                       const bias_correction_options& opt = {}) {
  AMCTQ_CHECK(!batches.empty(), errc::invalid_argument, "correct_bias", "no calibration batches");
  if (layers.empty()) return {};
  // Execution order, so each sequential step sees its predecessors corrected.
  const auto order = topological_order(quant_model.main);
  std::vector<std::size_t> position(quant_model.main.nodes.size());
  for (std::size_t s = 0; s < order.size(); ++s) position[order[s]] = s;
  struct target {
    std::string name;
    std::size_t qk, fk;
  };
  std::vector<target> ts;
  for (const auto& l : layers)
    ts.push_back({l, detail::bias_layer_index(quant_model.main, l, "quantized"), detail::bias_layer_index(float_model.main, l, "float")});
  std::sort(ts.begin(), ts.end(), [&](const target& a, const target& b) { return position[a.qk] < position[b.qk]; });

  std::vector<std::size_t> fnodes;
  for (const auto& t : ts) fnodes.push_back(t.fk);
  const auto float_means = detail::output_means(float_model, fnodes, batches);

  std::vector<bias_correction_entry> out;
  auto apply = [&](std::size_t i, const std::vector<double>& quant_mean) {
    const target& t = ts[i];
    node& qn = quant_model.main.nodes[t.qk];
    node& fn = float_model.main.nodes[t.fk];
    const std::size_t C = quant_mean.size();
    AMCTQ_CHECK(float_means[i].size() == C, errc::shape_mismatch, "correct_bias", "layer '", t.name, "' has ",
                float_means[i].size(), " output channels in the float model and ", C, " in the quantized one");
    bias_correction_entry e;
    e.layer = t.name;
    e.created = fn.inputs.size() < 3 || fn.inputs[2].empty();
    const auto bias = corrected_bias(detail::effective_bias(float_model.main, fn, C), float_means[i], quant_mean);
    for (std::size_t c = 0; c < C; ++c) e.mean_abs_shift += std::fabs(float_means[i][c] - quant_mean[c]) / static_cast<double>(C);
    e.bias = detail::set_bias(float_model.main, fn, bias);
    const std::string qb = detail::set_bias(quant_model.main, qn, bias);
    AMCTQ_CHECK(qb == e.bias, errc::invalid_argument, "correct_bias", "layer '", t.name, "': the bias is called '",
                e.bias, "' in the float model but '", qb, "' in the quantized one; the models must be the same graph");
    out.push_back(std::move(e));
  };
  if (opt.sequential) {
    for (std::size_t i = 0; i < ts.size(); ++i) apply(i, detail::output_means(quant_model, {ts[i].qk}, batches)[0]);
  } else {
    std::vector<std::size_t> qnodes;
    for (const auto& t : ts) qnodes.push_back(t.qk);
    const auto quant_means = detail::output_means(quant_model, qnodes, batches);
    for (std::size_t i = 0; i < ts.size(); ++i) apply(i, quant_means[i]);
  }
  return out;
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_CORRECT_BIAS_HPP
