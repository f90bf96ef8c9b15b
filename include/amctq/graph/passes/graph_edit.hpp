// Graph-editing helpers the rewriting passes share (BatchNorm folding, ReLU6 -> ReLU, cross-layer
// equalisation, bias correction, DMQ balance): use counts, constant initializers, fresh names,
// who produces and reads a tensor, scalar constants, attributes, a layer's name, and its bias as
// one value per output channel. They live in one header so every pass treats sharing, graph
// inputs and naming the same way, and a pass includes them without pulling in another pass.
#ifndef AMCTQ_GRAPH_PASSES_GRAPH_EDIT_HPP
#define AMCTQ_GRAPH_PASSES_GRAPH_EDIT_HPP

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"

namespace amctq::graph::passes::detail {

/// How many times each tensor is read (by nodes, and once per graph output naming it).
inline std::unordered_map<std::string, int> use_counts(const graph& g) {
  std::unordered_map<std::string, int> uses;
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs)
      if (!in.empty()) ++uses[in];
  for (const auto& o : g.outputs) ++uses[o.name];
  return uses;
}

/// Adds every tensor name the nodes of g read, including outer-scope reads from the bodies of
/// If / Loop / Scan nodes.
inline void collect_reads(const graph& g, std::unordered_set<std::string>& reads) {
  for (const auto& n : g.nodes) {
    reads.insert(n.inputs.begin(), n.inputs.end());
    for (const auto& a : n.attributes) {
      if (a.g) collect_reads(*a.g, reads);
      for (const auto& sub : a.graphs)
        if (sub) collect_reads(*sub, reads);
    }
  }
}

/// Drops the constants that nothing reads any more (no node, no subgraph, no graph output):
/// Constant nodes (a lowering that folds a Pad value into its integer form leaves the float
/// one behind, and ONNX Runtime warns about it), initializers, and the graph inputs that only
/// supplied such an initializer's default: old-style models list every initializer as an input
/// too, and ONNX Runtime would then require it as a feed.
inline void drop_unused_constants(graph& g) {
  std::unordered_set<std::string> used;
  collect_reads(g, used);
  for (const auto& o : g.outputs) used.insert(o.name);
  auto dead_constant = [&](const node& n) {
    if (n.op_type != "Constant" || !(n.domain.empty() || n.domain == "ai.onnx")) return false;
    for (const auto& o : n.outputs)
      if (used.count(o)) return false;
    return true;
  };
  g.nodes.erase(std::remove_if(g.nodes.begin(), g.nodes.end(), dead_constant), g.nodes.end());
  std::unordered_set<std::string> dropped;
  std::vector<initializer> kept;
  for (auto& i : g.initializers) {
    if (used.count(i.name)) kept.push_back(std::move(i));
    else dropped.insert(i.name);
  }
  g.initializers = std::move(kept);
  std::vector<value_info> inputs;
  for (auto& i : g.inputs)
    if (!dropped.count(i.name)) inputs.push_back(std::move(i));
  g.inputs = std::move(inputs);
}

/// Removes the graph inputs that name an initializer. Models of IR version < 4 had to list
/// every initializer as an input, and later ones may, to let a caller override it; a quantized
/// model bakes its weights, so the quantizer treats them all as constants.
inline void freeze_initializer_inputs(graph& g) {
  std::vector<value_info> inputs;
  for (auto& i : g.inputs)
    if (!g.find_initializer(i.name)) inputs.push_back(std::move(i));
  g.inputs = std::move(inputs);
}

/// Whether `name` is a graph input: a caller may feed it, so an initializer of that name is only
/// a default and must not be treated as a constant.
inline bool is_graph_input(const graph& g, const std::string& name) {
  for (const auto& i : g.inputs)
    if (i.name == name) return true;
  return false;
}

/// A float32 initializer that graph inputs cannot override, or nullptr.
inline initializer* constant_float(graph& g, const std::string& name) {
  if (name.empty() || is_graph_input(g, name)) return nullptr;
  initializer* i = g.find_initializer(name);
  return i && i->value.type() == dtype::float32 ? i : nullptr;
}

/// `base`, or base_1, base_2, ...: the first name no initializer, node output or graph input
/// uses yet, so a tensor a pass adds never aliases an existing one.
inline std::string unique_name(const graph& g, const std::string& base) {
  std::unordered_set<std::string> taken;
  for (const auto& i : g.initializers) taken.insert(i.name);
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs) taken.insert(o);
  for (const auto& i : g.inputs) taken.insert(i.name);
  std::string name = base;
  for (int k = 1; taken.count(name); ++k) name = base + "_" + std::to_string(k);
  return name;
}

/// Node index producing each tensor.
inline std::unordered_map<std::string, std::size_t> producers(const graph& g) {
  std::unordered_map<std::string, std::size_t> p;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    for (const auto& o : g.nodes[k].outputs)
      if (!o.empty()) p[o] = k;
  return p;
}

/// Node indices reading each tensor (a node reading it twice appears twice).
inline std::unordered_map<std::string, std::vector<std::size_t>> consumers(const graph& g) {
  std::unordered_map<std::string, std::vector<std::size_t>> c;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    for (const auto& in : g.nodes[k].inputs)
      if (!in.empty()) c[in].push_back(k);
  return c;
}

inline bool default_domain(const node& n) noexcept { return n.domain.empty() || n.domain == "ai.onnx"; }

/// The layer name passes report and the record uses: the node name, else its first output.
inline std::string layer_name(const node& n) { return n.name.empty() && !n.outputs.empty() ? n.outputs[0] : n.name; }

/// "layer '<name>'": how error messages of the passes name the node they refuse.
inline std::string layer_where(const node& n) { return "layer '" + layer_name(n) + "'"; }

/// The value of a constant tensor: an initializer graph inputs cannot override, or the output
/// of a Constant node (how exporters often write Clip bounds and Pad amounts); null otherwise.
inline const tensor* constant_tensor(const graph& g, const std::string& name) {
  if (name.empty() || is_graph_input(g, name)) return nullptr;
  if (const initializer* i = g.find_initializer(name)) return &i->value;
  for (const auto& n : g.nodes)
    if (n.op_type == "Constant" && default_domain(n) && n.outputs.size() == 1 && n.outputs[0] == name) {
      const attribute* a = n.find("value");
      return a && a->type == attribute::kind::t ? &a->t : nullptr;
    }
  return nullptr;
}

/// The value of a one-element float constant (see constant_tensor).
inline std::optional<float> scalar_constant(const graph& g, const std::string& name) {
  const tensor* t = constant_tensor(g, name);
  if (!t || t->type() != dtype::float32 || t->size() != 1) return std::nullopt;
  return t->data<float>()[0];
}

/// Sets (or adds) a float attribute.
inline void set_float_attribute(node& n, const std::string& name, float v) {
  for (auto& a : n.attributes)
    if (a.name == name) {
      a.type = attribute::kind::f;
      a.f = v;
      return;
    }
  attribute a;
  a.name = name;
  a.type = attribute::kind::f;
  a.f = v;
  n.attributes.push_back(std::move(a));
}

/// The additive bias of a Conv / ConvTranspose / Gemm as it reaches each of `channels` output
/// channels (Gemm: beta * C, a one-element C broadcast); empty when the layer has no bias.
/// Throws naming the layer when the bias is not a float constant or not per output channel.
inline std::vector<float> effective_bias(const graph& g, const node& n, std::size_t channels) {
  if (n.inputs.size() < 3 || n.inputs[2].empty()) return {};
  const std::string who = layer_where(n);
  const initializer* b = g.find_initializer(n.inputs[2]);
  AMCTQ_CHECK(b && !is_graph_input(g, b->name) && b->value.type() == dtype::float32,
              errc::unsupported, who, "bias '", n.inputs[2], "' is not a float32 initializer");
  const tensor& t = b->value;
  const bool per_channel = t.size() == channels && (t.rank() == 1 || (t.rank() == 2 && t.dim(0) == 1));
  AMCTQ_CHECK(per_channel || t.size() == 1, errc::unsupported, who, "bias '", n.inputs[2], "' of ", t.size(),
              " values is neither per output channel (", channels, ") nor a scalar");
  const float beta = n.op_type == "Gemm" ? n.get_float("beta", 1.0f) : 1.0f;
  std::vector<float> out(channels);
  for (std::size_t c = 0; c < channels; ++c) out[c] = beta * t.data<float>()[t.size() == 1 ? 0 : c];
  return out;
}

/// Makes `values` the layer's bias, one per output channel: rewritten in place when the layer
/// is the bias's only reader, else (or when there was none) a new initializer <layer>_bias.
/// Gemm gets beta = 1 so the stored values are the effective ones. Returns the bias name.
inline std::string set_bias(graph& g, node& n, const std::vector<float>& values) {
  const auto count = static_cast<std::int64_t>(values.size());
  tensor v = tensor::from<float>({count}, values);
  if (n.op_type == "Gemm") set_float_attribute(n, "beta", 1.0f);
  const bool has = n.inputs.size() > 2 && !n.inputs[2].empty();
  if (has && use_counts(g)[n.inputs[2]] == 1 && !is_graph_input(g, n.inputs[2])) {
    initializer* b = g.find_initializer(n.inputs[2]);
    AMCTQ_CHECK(b != nullptr, errc::unsupported, layer_where(n), "bias '", n.inputs[2],
                "' is not an initializer");
    b->value = std::move(v);
    b->external.reset();
    return b->name;
  }
  initializer nb;
  nb.name = unique_name(g, layer_name(n) + "_bias");
  nb.value = std::move(v);
  g.initializers.push_back(std::move(nb));
  n.inputs.resize(3);
  n.inputs[2] = g.initializers.back().name;
  return n.inputs[2];
}

}  // namespace amctq::graph::passes::detail

#endif  // AMCTQ_GRAPH_PASSES_GRAPH_EDIT_HPP
