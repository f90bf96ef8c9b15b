// ReLU6 -> ReLU (Vitis AI convert_relu6_to_relu, AIMET's ReLU6 replacement before CLE).
//
// This pass CHANGES WHAT THE MODEL COMPUTES: every value a ReLU6 clipped at 6 now passes
// through unclipped. It is an intentional accuracy trade, opt-in only: a ReLU6 does not commute
// with the per-channel scaling of cross-layer equalisation (algorithms/cle.hpp), so Vitis and
// AIMET replace it to let CLE equalise through it, and accept (or fine-tune away) the change on
// activations above 6. Run it only when that trade is wanted.
//
// What counts as a ReLU6: a default-domain Clip on float data with lower bound exactly 0 and
// upper bound exactly 6 — as attributes (opset < 11), or as the constant min / max inputs
// (opset >= 11) that exporters write, whether initializers or Constant node outputs. A Clip
// with other bounds, with a bound a graph input can override, or with a computed bound is left
// alone.
#ifndef AMCTQ_GRAPH_PASSES_RELU6_TO_RELU_HPP
#define AMCTQ_GRAPH_PASSES_RELU6_TO_RELU_HPP

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "amctq/graph/ir.hpp"
#include "amctq/graph/passes/graph_edit.hpp"

namespace amctq::graph::passes {

/// Whether `n` is a Clip(0, 6) in a model of opset version `opset`.
inline bool is_relu6(const graph& g, const node& n, std::int64_t opset) {
  if (n.op_type != "Clip" || !detail::default_domain(n) || n.inputs.empty() || n.outputs.size() != 1) return false;
  if (opset < 11) {
    const attribute* lo = n.find("min");
    const attribute* hi = n.find("max");
    return lo && hi && lo->type == attribute::kind::f && hi->type == attribute::kind::f && lo->f == 0.0f &&
           hi->f == 6.0f;
  }
  if (n.inputs.size() != 3) return false;
  const std::optional<float> lo = detail::scalar_constant(g, n.inputs[1]);
  const std::optional<float> hi = detail::scalar_constant(g, n.inputs[2]);
  return lo && hi && *lo == 0.0f && *hi == 6.0f;
}

/// Rewrites every ReLU6 Clip as a Relu in place (name and output kept); returns how many.
/// Bound constants nothing else reads are dropped.
inline std::size_t relu6_to_relu(model& m) {
  graph& g = m.main;
  const std::int64_t opset = m.opset();
  std::size_t rewritten = 0;
  std::unordered_set<std::string> bounds;
  for (auto& n : g.nodes) {
    if (!is_relu6(g, n, opset)) continue;
    for (std::size_t i = 1; i < n.inputs.size(); ++i) bounds.insert(n.inputs[i]);
    n.op_type = "Relu";
    n.inputs.resize(1);
    n.attributes.clear();
    ++rewritten;
  }
  // The bound constants (Constant nodes or initializers) nothing reads any more.
  const auto uses = detail::use_counts(g);
  auto dead = [&](const std::string& t) { return bounds.count(t) && !uses.count(t); };
  std::vector<node> nodes;
  for (auto& n : g.nodes)
    if (!(n.op_type == "Constant" && n.outputs.size() == 1 && dead(n.outputs[0]))) nodes.push_back(std::move(n));
  g.nodes = std::move(nodes);
  std::vector<initializer> inits;
  for (auto& i : g.initializers)
    if (!dead(i.name) || detail::is_graph_input(g, i.name)) inits.push_back(std::move(i));
  g.initializers = std::move(inits);
  return rewritten;
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_RELU6_TO_RELU_HPP
