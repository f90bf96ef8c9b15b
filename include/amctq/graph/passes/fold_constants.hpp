// Constant folding of shape subgraphs: Shape of a tensor whose shape is statically known, and
// any shape-manipulating op (Gather, Concat, Unsqueeze, Reshape, Cast, arithmetic, ...) whose
// inputs are all constants, is evaluated once with the executor's own op and replaced by an
// initializer. What is left is the data path, with Reshape targets etc. as plain constants.
#ifndef AMCTQ_GRAPH_PASSES_FOLD_CONSTANTS_HPP
#define AMCTQ_GRAPH_PASSES_FOLD_CONSTANTS_HPP

#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "amctq/graph/executor.hpp"
#include "amctq/graph/ir.hpp"

namespace amctq::graph::passes {

struct fold_constants_options {
  /// Ops that may be folded when all their inputs are constant.
  std::unordered_set<std::string> ops{"Shape", "Size", "Gather", "Concat", "Unsqueeze", "Squeeze", "Reshape",
                                      "Flatten", "Cast", "Constant", "ConstantOfShape", "Identity", "Transpose",
                                      "Add", "Sub", "Mul", "Div"};
  /// Folding never materialises an output larger than this many elements (a ConstantOfShape of
  /// weights stays a node rather than bloating the model).
  std::size_t max_elements = std::size_t{1} << 20;
};

/// Folds in place; returns the number of nodes removed.
inline std::size_t fold_constants(model& m, const fold_constants_options& opt = {}) {
  graph& g = m.main;
  std::unordered_set<std::string> graph_inputs, graph_outputs;
  for (const auto& i : g.inputs) graph_inputs.insert(i.name);
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);
  std::unordered_map<std::string, const tensor*> constants;
  for (const auto& i : g.initializers)
    if (!graph_inputs.count(i.name) && !i.external) constants[i.name] = &i.value;
  // Shapes known before running: fully static graph inputs and value_infos.
  std::unordered_map<std::string, std::vector<std::int64_t>> static_shape;
  auto note_shape = [&](const value_info& vi) {
    if (!vi.shape) return;
    std::vector<std::int64_t> s;
    for (const auto& d : *vi.shape) {
      if (!d.value) return;
      s.push_back(*d.value);
    }
    static_shape[vi.name] = s;
  };
  for (const auto& vi : g.inputs) note_shape(vi);
  for (const auto& vi : g.value_infos) note_shape(vi);

  std::deque<tensor> folded_values;  // stable addresses until they become initializers
  std::vector<std::string> folded_names;
  std::vector<bool> erase(g.nodes.size(), false);
  std::vector<float> scratch;
  std::size_t removed = 0;
  const auto order = topological_order(g);
  for (std::size_t k : order) {
    const node& n = g.nodes[k];
    if (!is_supported(n) || !opt.ops.count(n.op_type)) continue;
    bool outputs_ok = !n.outputs.empty();
    for (const auto& o : n.outputs) outputs_ok = outputs_ok && !o.empty() && !graph_outputs.count(o);
    if (!outputs_ok) continue;
    std::vector<tensor> shape_probes;  // stand-ins for Shape's input when only its shape is known
    shape_probes.reserve(n.inputs.size());
    ops::context ctx{n, m.opset(), {}, {}, scratch};
    bool all_constant = true;
    for (const auto& in : n.inputs) {
      if (in.empty()) {
        ctx.in.push_back(nullptr);
        continue;
      }
      auto c = constants.find(in);
      if (c != constants.end()) {
        ctx.in.push_back(c->second);
        continue;
      }
      auto s = static_shape.find(in);
      if (n.op_type == "Shape" && s != static_shape.end()) {
        // Shape reads only the shape: a data-less tensor of element type undefined carries it.
        shape_probes.push_back(tensor(dtype::undefined, s->second));
        ctx.in.push_back(&shape_probes.back());
        continue;
      }
      all_constant = false;
      break;
    }
    if (!all_constant) continue;
    ctx.out.resize(n.outputs.size());
    try {
      (*builtin_ops().find(n))(ctx);
    } catch (const amctq::error&) {
      continue;  // the executor will report it with the real inputs; folding is best effort
    }
    bool small = true;
    for (const auto& t : ctx.out) small = small && t.type() != dtype::undefined && t.size() <= opt.max_elements;
    if (!small) continue;
    for (std::size_t i = 0; i < n.outputs.size(); ++i) {
      folded_values.push_back(std::move(ctx.out[i]));
      folded_names.push_back(n.outputs[i]);
      constants[n.outputs[i]] = &folded_values.back();
    }
    erase[k] = true;
    ++removed;
  }
  if (!removed) return 0;
  // Keep only folded values something still reads.
  std::unordered_set<std::string> read;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    if (!erase[k])
      for (const auto& in : g.nodes[k].inputs) read.insert(in);
  std::vector<node> kept;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    if (!erase[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
  for (std::size_t i = 0; i < folded_names.size(); ++i)
    if (read.count(folded_names[i])) {
      initializer init;
      init.name = folded_names[i];
      init.value = std::move(folded_values[i]);
      g.initializers.push_back(std::move(init));
    }
  // Initializers only the removed nodes read go too.
  std::vector<initializer> inits;
  for (auto& i : g.initializers)
    if (read.count(i.name) || graph_inputs.count(i.name) || graph_outputs.count(i.name)) inits.push_back(std::move(i));
  g.initializers = std::move(inits);
  return removed;
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_FOLD_CONSTANTS_HPP
