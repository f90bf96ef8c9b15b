// Cross-layer equalisation over a graph (Vitis AI include_cle, AIMET CLE, Nagel et al. 2019
// §4.1): finds chains of layers joined by ops that commute with a positive per-channel scale
// and equalises their per-channel weight ranges in place with algorithms/cle.hpp, so
// per-tensor (and per-channel) weight grids lose less to a few wide channels. The float model
// computes the same function afterwards, up to float rounding.
//
// A chain is
//   pair:    conv -> [Relu | LeakyRelu | MaxPool | AveragePool | Global*Pool | Pad]* -> conv
//            conv -> [...]* -> Flatten -> [Relu | LeakyRelu]* -> Gemm
//            Gemm -> [Relu | LeakyRelu]* -> Gemm
//   triplet: conv -> [...]* -> depthwise Conv -> [...]* -> conv  (all three ranges equalised)
// where a conv is a Conv or a ConvTranspose, in any mix (an encoder's Conv -> Conv, a decoder's
// ConvTranspose -> ConvTranspose, and the joints between them): both keep channels on axis 1 of
// the activation, and weight_layout says where each one's output and input channels live. A
// Flatten (axis 1) turns channel c into the block of features [c * b, (c + 1) * b), b = the
// Gemm's input features / C, which is how the Gemm's weight is then read
// (gemm_weight_layout_after_flatten): a classifier head joins its last convolution.
// where every tensor along the way has exactly one reader (and is not a graph output), and
// each layer's weight and bias are float initializers no other node reads (shared weights are
// skipped rather than copied: equalising a copy would not help the other reader). Relu,
// LeakyRelu, max and average pooling, and a Pad that adds no channels and pads with zeros or
// the channel's own values satisfy f(s·x) = s·f(x) per channel for s > 0, which is what makes
// the rescaling exact. Gemm needs transA = 0 on the downstream layer and a per-column bias.
//
// ReLU6 (Clip(0, 6)) does not commute: cle.hpp notes the transform is exact only if channel
// c's clip becomes 6 / s_c, and an ONNX Clip has one scalar bound. Rather than change the
// function silently, chains through a ReLU6 are left alone and reported; Vitis' recipe is to
// run passes/relu6_to_relu.hpp first (convert_relu6_to_relu), which the pipeline does when
// both switches are on.
//
// Like Vitis (and unlike AIMET's single pass) the chains are swept repeatedly: a layer in two
// chains (the middle of Conv -> Conv -> Conv) is pulled two ways, and a few sweeps settle it.
#ifndef AMCTQ_GRAPH_PASSES_EQUALIZE_CROSS_LAYER_HPP
#define AMCTQ_GRAPH_PASSES_EQUALIZE_CROSS_LAYER_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "amctq/algorithms/cle.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/passes/graph_edit.hpp"
#include "amctq/graph/passes/relu6_to_relu.hpp"
#include "amctq/graph/quant_layers.hpp"

namespace amctq::graph::passes {

struct cle_options {
  int max_sweeps = 20;       ///< upper bound on sweeps over all chains (>= 1)
  float tolerance = 1e-4f;   ///< stop once every scale of a sweep is within 1 ± tolerance
};

struct cle_report {
  std::size_t pairs = 0;     ///< chains of two layers equalised
  std::size_t triplets = 0;  ///< Conv -> depthwise -> Conv chains equalised
  int sweeps = 0;            ///< sweeps run
  float last_change = 0.0f;  ///< max |s - 1| of the last sweep
  /// "<layer> -> <layer>" of every chain left alone because a ReLU6 sits in it.
  std::vector<std::string> relu6_skipped;
};

namespace detail {

inline bool is_conv_like(const node& n) { return n.op_type == "Conv" || n.op_type == "ConvTranspose"; }

struct cle_chain {
  std::vector<std::size_t> layers;  ///< node indices, 2 (pair) or 3 (depthwise triplet)
  std::ptrdiff_t flatten_block = 0;  ///< conv -> Flatten -> Gemm: features per channel, else 0
};

// A layer CLE may rescale: its weight and bias are float constants only it reads.
inline bool cle_candidate(graph& g, const node& n, const std::unordered_map<std::string, int>& uses) {
  if (!default_domain(n) || n.outputs.size() != 1 || n.inputs.size() < 2) return false;
  const layer_kind* kind = find_layer_kind(n.op_type);
  if (kind == nullptr || !kind->equalize) return false;
  const bool conv = is_conv_like(n);
  auto exclusive = [&](const std::string& t) {
    auto it = uses.find(t);
    return constant_float(g, t) != nullptr && it != uses.end() && it->second == 1;
  };
  if (!exclusive(n.inputs[1])) return false;
  tensor& w = g.find_initializer(n.inputs[1])->value;
  if (conv ? (w.rank() < 3 || w.rank() > 5) : w.rank() != 2) return false;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    if (!exclusive(n.inputs[2])) return false;
    const std::ptrdiff_t out = layout_of(n, w).out_channels();
    const tensor& b = g.find_initializer(n.inputs[2])->value;
    if (b.size() != static_cast<std::size_t>(out) || !(b.rank() == 1 || (b.rank() == 2 && b.dim(0) == 1))) return false;
  }
  return true;
}

inline bool is_depthwise(const graph& g, const node& n) {
  if (n.op_type != "Conv") return false;
  const tensor& w = g.find_initializer(n.inputs[1])->value;
  return w.dim(1) == 1 && n.get_int("group", 1) == w.dim(0);
}

// A Pad that leaves the batch and channel axes alone and pads with zeros or copies of the
// channel's own values (reflect, edge, wrap): it commutes with a positive per-channel scale.
inline bool pad_keeps_channels(const graph& g, const node& n, std::int64_t opset) {
  std::vector<std::int64_t> pads;
  std::optional<float> fill = 0.0f;
  if (opset < 11) {
    pads = n.get_ints("pads");
    fill = n.get_float("value", 0.0f);
  } else {
    if (n.inputs.size() > 3 && !n.inputs[3].empty()) return false;  // axes: not worth resolving
    const tensor* p = n.inputs.size() > 1 ? constant_tensor(g, n.inputs[1]) : nullptr;
    if (p == nullptr || p->type() != dtype::int64 || p->rank() != 1) return false;
    pads.assign(p->data<std::int64_t>(), p->data<std::int64_t>() + p->size());
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) fill = scalar_constant(g, n.inputs[2]);
  }
  const std::size_t rank = pads.size() / 2;
  if (rank < 2 || pads.size() != 2 * rank) return false;
  const bool channels_kept = pads[0] == 0 && pads[1] == 0 && pads[rank] == 0 && pads[rank + 1] == 0;
  return channels_kept && (n.get_string("mode", "constant") != "constant" || (fill && *fill == 0.0f));
}

// The layer that alone reads `from`'s output, through ops that commute with a positive
// per-channel scale (or a ReLU6, flagged in relu6; or a Flatten from a conv to a Gemm, flagged
// in flattened); npos if there is none.
inline std::size_t next_layer(const graph& g, std::size_t from, std::int64_t opset,
                              const std::unordered_map<std::string, int>& uses,
                              const std::unordered_map<std::string, std::vector<std::size_t>>& readers, bool& relu6,
                              bool& flattened) {
  constexpr std::size_t npos = static_cast<std::size_t>(-1);
  bool conv = is_conv_like(g.nodes[from]);
  std::string t = g.nodes[from].outputs[0];
  for (;;) {
    auto u = uses.find(t);
    auto r = readers.find(t);
    if (u == uses.end() || u->second != 1 || r == readers.end() || r->second.size() != 1) return npos;
    const std::size_t k = r->second[0];
    const node& n = g.nodes[k];
    if (!default_domain(n) || n.inputs.empty() || n.inputs[0] != t) return npos;
    if (conv ? is_conv_like(n) : n.op_type == (flattened ? "Gemm" : g.nodes[from].op_type)) return k;
    // A ReLU6 is walked through only to report the chain it blocks.
    const bool clip6 = is_relu6(g, n, opset);
    relu6 = relu6 || clip6;
    // Spatial ops that act on each channel alone (a conv's activation only).
    const bool per_channel = n.op_type == "MaxPool" || n.op_type == "AveragePool" || n.op_type == "GlobalMaxPool" ||
                             n.op_type == "GlobalAveragePool" ||
                             (n.op_type == "Pad" && pad_keeps_channels(g, n, opset));
    const bool flatten = conv && n.op_type == "Flatten" && n.get_int("axis", 1) == 1;
    if (flatten) {
      conv = false;  // from here on the activation is [N, features] and the next layer a Gemm
      flattened = true;
    }
    const bool passthrough = clip6 || n.op_type == "Relu" || n.op_type == "LeakyRelu" || (conv && per_channel) || flatten;
    if (!passthrough || n.outputs.size() != 1) return npos;
    t = n.outputs[0];
  }
}

inline std::vector<cle_chain> find_cle_chains(graph& g, std::int64_t opset, cle_report& report) {
  constexpr std::size_t npos = static_cast<std::size_t>(-1);
  const auto uses = use_counts(g);
  const auto readers = consumers(g);
  std::vector<bool> candidate(g.nodes.size());
  for (std::size_t k = 0; k < g.nodes.size(); ++k) candidate[k] = cle_candidate(g, g.nodes[k], uses);
  // next[k]: the layer k equalises with; Gemm -> Gemm additionally needs transA = 0 downstream.
  std::vector<std::size_t> next(g.nodes.size(), npos);
  std::vector<std::ptrdiff_t> block(g.nodes.size(), 0);
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    if (!candidate[k]) continue;
    bool relu6 = false, flattened = false;
    const std::size_t j = next_layer(g, k, opset, uses, readers, relu6, flattened);
    if (j != npos && relu6) {
      report.relu6_skipped.push_back(layer_name(g.nodes[k]) + " -> " + layer_name(g.nodes[j]));
      continue;
    }
    if (j == npos || !candidate[j] || (g.nodes[j].op_type == "Gemm" && g.nodes[j].get_int("transA", 0) != 0)) continue;
    if (flattened) {  // the Gemm's input features must split evenly into the conv's channels
      node& gemm = g.nodes[j];
      const std::ptrdiff_t channels = layout_of(g.nodes[k], g.find_initializer(g.nodes[k].inputs[1])->value).out_channels();
      const std::ptrdiff_t features = layout_of(gemm, g.find_initializer(gemm.inputs[1])->value).in_channels();
      if (channels <= 0 || features % channels != 0) continue;
      block[k] = features / channels;
    }
    next[k] = j;
  }
  std::vector<cle_chain> chains;
  std::set<std::size_t> middles;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    const std::size_t j = next[k];
    if (j == npos || !is_depthwise(g, g.nodes[j]) || next[j] == npos || block[j] != 0) continue;
    chains.push_back({{k, j, next[j]}});
    middles.insert(j);
  }
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    if (next[k] != npos && !middles.count(k) && !middles.count(next[k])) chains.push_back({{k, next[k]}, block[k]});
  return chains;
}

struct cle_operand {
  tensor_view<float, 1> w;
  weight_layout layout;
  float* bias = nullptr;
  std::size_t bias_size = 0;
};

// flatten_block > 0: n is a Gemm behind a Flatten, its input features grouped by channel.
inline cle_operand operand(graph& g, node& n, std::ptrdiff_t flatten_block = 0) {
  tensor& w = g.find_initializer(n.inputs[1])->value;
  cle_operand o{tensor_view<float, 1>(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())}),
                flatten_block > 0 ? gemm_weight_layout_after_flatten(tensor_view<float, 2>(w.data<float>(), {w.dim(0), w.dim(1)}),
                                                                     n.get_int("transB", 0) != 0, flatten_block)
                                  : layout_of(n, w)};
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    tensor& b = g.find_initializer(n.inputs[2])->value;
    o.bias = b.data<float>();
    o.bias_size = b.size();
  }
  return o;
}

inline float max_deviation(const std::vector<float>& s) {
  float d = 0.0f;
  for (float v : s) d = std::max(d, std::fabs(v - 1.0f));
  return d;
}

}  // namespace detail

/// Equalises every chain of `m` in place (see the file comment for what a chain is).
inline cle_report equalize_cross_layer(model& m, const cle_options& opt = {}) {
  AMCTQ_CHECK(opt.max_sweeps >= 1 && opt.tolerance >= 0.0f, errc::invalid_argument, "equalize_cross_layer",
              "max_sweeps must be >= 1 and tolerance >= 0, got ", opt.max_sweeps, " and ", opt.tolerance);
  graph& g = m.main;
  cle_report report;
  const auto chains = detail::find_cle_chains(g, m.opset(), report);
  for (const auto& c : chains) ++(c.layers.size() == 3 ? report.triplets : report.pairs);
  if (chains.empty()) return report;
  for (int sweep = 1; sweep <= opt.max_sweeps; ++sweep) {
    float change = 0.0f;
    for (const auto& c : chains) {
      // Operands are re-read every time: the weights of one layer may be in two chains.
      const auto a = detail::operand(g, g.nodes[c.layers[0]]);
      const auto b = detail::operand(g, g.nodes[c.layers[1]], c.flatten_block);
      cle_result r;
      if (c.layers.size() == 2) {
        r = equalize_pair(a.w, a.layout, a.bias, a.bias_size, b.w, b.layout);
      } else {
        const auto d = detail::operand(g, g.nodes[c.layers[2]]);
        r = equalize_depthwise_triplet(a.w, a.layout, a.bias, a.bias_size, b.w, b.layout, b.bias, b.bias_size, d.w,
                                       d.layout);
        change = std::max(change, detail::max_deviation(r.scale2));
      }
      change = std::max(change, detail::max_deviation(r.scale));
    }
    report.sweeps = sweep;
    report.last_change = change;
    if (change <= opt.tolerance) break;
  }
  return report;
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_EQUALIZE_CROSS_LAYER_HPP
