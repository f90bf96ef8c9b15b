// Folds an inference BatchNormalization into the Conv, ConvTranspose or Gemm that feeds it,
// when that layer's output has no other consumer and its weights (and bias) are initializers:
// W'[m] = W[m] * s[m], b' = (b - mean) * s + beta with s = scale / sqrt(var + eps).
// Weights shared with another node are copied, never changed under the other node's feet.
#ifndef AMCTQ_GRAPH_PASSES_FOLD_BATCHNORM_HPP
#define AMCTQ_GRAPH_PASSES_FOLD_BATCHNORM_HPP

#include <string>
#include <unordered_map>
#include <vector>

#include "amctq/graph/ir.hpp"
#include "amctq/graph/ops/normalization.hpp"
#include "amctq/graph/layers/table.hpp"
#include "amctq/graph/passes/graph_edit.hpp"

namespace amctq::graph::passes {

namespace detail {

/// The initializer a node may write to: itself if this node is its only user, else a fresh copy
/// (named <old>_bnfold, so a shared weight scaled for one BatchNorm is recognisable as such).
inline initializer& writable(graph& g, node& user, std::size_t input, std::unordered_map<std::string, int>& uses) {
  const std::string old = user.inputs[input];
  if (uses[old] == 1) return *g.find_initializer(old);
  initializer copy = *g.find_initializer(old);
  copy.name = unique_name(g, old + "_bnfold");
  copy.external.reset();
  --uses[old];
  uses[copy.name] = 1;
  user.inputs[input] = copy.name;
  g.initializers.push_back(std::move(copy));
  return g.initializers.back();
}

}  // namespace detail

/// Folds every foldable BatchNormalization; returns how many were folded. The model keeps
/// computing the same function (up to float rounding).
inline std::size_t fold_batchnorm(model& m) {
  graph& g = m.main;
  std::size_t folded = 0;
  std::unordered_map<std::string, std::size_t> producer;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    for (const auto& o : g.nodes[k].outputs) producer[o] = k;
  auto uses = detail::use_counts(g);
  std::vector<bool> erase(g.nodes.size(), false);
  for (std::size_t b = 0; b < g.nodes.size(); ++b) {
    const node& bn = g.nodes[b];
    if (bn.op_type != "BatchNormalization" || !(bn.domain.empty() || bn.domain == "ai.onnx") || bn.inputs.size() != 5 ||
        bn.get_int("training_mode", 0) != 0)
      continue;
    bool extra_outputs = false;
    for (std::size_t i = 1; i < bn.outputs.size(); ++i) extra_outputs = extra_outputs || !bn.outputs[i].empty();
    if (extra_outputs) continue;
    auto pit = producer.find(bn.inputs[0]);
    if (pit == producer.end() || erase[pit->second] || uses[bn.inputs[0]] != 1) continue;
    node& layer = g.nodes[pit->second];
    if (!(layer.domain.empty() || layer.domain == "ai.onnx") || layer.outputs.size() != 1) continue;
    const layer_kind* kind = find_layer_kind(layer.op_type);
    if (kind == nullptr || !kind->fold_batchnorm) continue;
    const bool conv = layer.op_type == "Conv", convt = layer.op_type == "ConvTranspose", gemm = layer.op_type == "Gemm";
    if (layer.inputs.size() < 2 || !detail::constant_float(g, layer.inputs[1])) continue;
    const bool has_bias = layer.inputs.size() > 2 && !layer.inputs[2].empty();
    if (has_bias && !detail::constant_float(g, layer.inputs[2])) continue;
    const initializer* params[4];
    bool ok = true;
    for (std::size_t i = 0; i < 4; ++i) ok = ok && (params[i] = detail::constant_float(g, bn.inputs[i + 1])) != nullptr;
    if (!ok) continue;
    const tensor& w0 = g.find_initializer(layer.inputs[1])->value;
    std::int64_t channels = 0;
    if (conv) channels = w0.rank() >= 3 ? w0.dim(0) : 0;
    if (convt) channels = w0.rank() >= 3 ? w0.dim(1) * layer.get_int("group", 1) : 0;
    if (gemm) {
      if (w0.rank() != 2) continue;
      channels = layer.get_int("transB", 0) ? w0.dim(0) : w0.dim(1);
    }
    if (channels <= 0) continue;
    for (const auto* p : params) ok = ok && p->value.size() == static_cast<std::size_t>(channels);
    if (!ok) continue;
    float gemm_beta = 1.0f;
    if (gemm && has_bias) {  // only a bias that is per output column can absorb the shift
      const tensor& c = g.find_initializer(layer.inputs[2])->value;
      const bool per_column = c.size() == static_cast<std::size_t>(channels) && (c.rank() == 1 || (c.rank() == 2 && c.dim(0) == 1));
      if (!(per_column || c.size() == 1)) continue;
      gemm_beta = layer.get_float("beta", 1.0f);
    }

    std::vector<float> mul, add;
    ops::batchnorm_coefficients(params[0]->value.data<float>(), params[1]->value.data<float>(),
                                params[2]->value.data<float>(), params[3]->value.data<float>(),
                                bn.get_float("epsilon", 1e-5f), static_cast<std::size_t>(channels), mul, add);
    // Scale the weights along the output-channel axis.
    tensor& w = detail::writable(g, layer, 1, uses).value;
    float* pw = w.data<float>();
    if (conv) {
      const std::size_t per = w.size() / static_cast<std::size_t>(channels);
      for (std::size_t ch = 0; ch < static_cast<std::size_t>(channels); ++ch)
        for (std::size_t i = 0; i < per; ++i) pw[ch * per + i] *= mul[ch];
    } else if (convt) {
      const std::int64_t group = layer.get_int("group", 1), C = w.dim(0), Mg = w.dim(1);
      const std::size_t per = w.size() / static_cast<std::size_t>(C * Mg);
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t j = 0; j < Mg; ++j) {
          const float s = mul[static_cast<std::size_t>((c / (C / group)) * Mg + j)];
          float* row = pw + static_cast<std::size_t>(c * Mg + j) * per;
          for (std::size_t i = 0; i < per; ++i) row[i] *= s;
        }
    } else {
      const bool tb = layer.get_int("transB", 0) != 0;
      const std::int64_t rows = w.dim(0), cols = w.dim(1);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t col = 0; col < cols; ++col) pw[r * cols + col] *= mul[static_cast<std::size_t>(tb ? r : col)];
    }
    // New bias: (beta * b - mean) * s + bn_bias, i.e. b * beta * s + add.
    std::vector<float> bias(add);
    if (has_bias) {
      const tensor& old = g.find_initializer(layer.inputs[2])->value;
      for (std::size_t ch = 0; ch < bias.size(); ++ch)
        bias[ch] += gemm_beta * old.data<float>()[old.size() == 1 ? 0 : ch] * mul[ch];
      --uses[layer.inputs[2]];
    }
    initializer nb;
    nb.name = detail::unique_name(g, layer.name.empty() ? layer.outputs[0] + "_bias" : layer.name + "_bias");
    nb.value = tensor::from<float>({channels}, bias);
    g.initializers.push_back(std::move(nb));
    layer.inputs.resize(3);
    layer.inputs[2] = g.initializers.back().name;
    uses[layer.inputs[2]] = 1;
    if (gemm) {
      bool set = false;
      for (auto& a : layer.attributes)
        if (a.name == "beta") {
          a.f = 1.0f;
          set = true;
        }
      if (!set) {
        attribute a;
        a.name = "beta";
        a.type = attribute::kind::f;
        a.f = 1.0f;
        layer.attributes.push_back(a);
      }
    }
    for (std::size_t i = 1; i < 5; ++i) --uses[bn.inputs[i]];
    layer.outputs[0] = bn.outputs[0];
    producer[bn.outputs[0]] = pit->second;
    erase[b] = true;
    ++folded;
  }
  std::vector<node> kept;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    if (!erase[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
  // Drop initializers nothing reads any more (the BN parameters, replaced biases).
  std::vector<initializer> inits;
  for (auto& i : g.initializers)
    if (uses[i.name] > 0 || detail::is_graph_input(g, i.name)) inits.push_back(std::move(i));
  g.initializers = std::move(inits);
  return folded;
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_FOLD_BATCHNORM_HPP
