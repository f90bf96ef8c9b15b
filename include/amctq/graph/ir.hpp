// The model IR: ONNX's ModelProto / GraphProto / NodeProto / AttributeProto / ValueInfoProto
// as plain C++ values. io/onnx reads and writes it; the executor and the passes walk it.
#ifndef AMCTQ_GRAPH_IR_HPP
#define AMCTQ_GRAPH_IR_HPP

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/tensor.hpp"

namespace amctq::graph {

struct graph;

/// A named tensor with where its bytes live: inline, or (for models over 2 GB) in an
/// external file at `location`, `offset`, `length` relative to the model's folder.
struct initializer {
  std::string name;
  tensor value;
  std::string doc_string;
  struct external_ref {
    std::string location;
    std::int64_t offset = 0;
    std::int64_t length = -1;  ///< -1: to the end of the file
  };
  std::optional<external_ref> external;  ///< where it was read from / is to be written to
};

/// One dimension of a value's type: a size, a symbolic name, or unknown.
struct dimension {
  std::optional<std::int64_t> value;
  std::string param;  ///< symbolic name ("batch") when value is empty
};

/// ONNX ValueInfoProto restricted to tensor types.
struct value_info {
  std::string name;
  dtype elem_type = dtype::undefined;
  std::optional<std::vector<dimension>> shape;  ///< empty optional: rank unknown
  std::string doc_string;
  /// Raw wire bytes of fields amctq does not interpret (a non-tensor TypeProto such as a
  /// sequence or map, metadata), re-emitted as read. Braced so brace-initialisers that stop
  /// before it do not warn.
  std::string unparsed{};
};

/// ONNX AttributeProto: `type` says which member carries the value.
struct attribute {
  enum class kind : int { undefined = 0, f = 1, i = 2, s = 3, t = 4, g = 5, floats = 6, ints = 7, strings = 8,
                          tensors = 9, graphs = 10, sparse_tensor = 11, sparse_tensors = 12, type_proto = 13,
                          type_protos = 14 };
  std::string name;
  kind type = kind::undefined;
  float f = 0.0f;
  std::int64_t i = 0;
  std::string s;  ///< bytes: ONNX strings are byte strings
  tensor t;
  std::shared_ptr<graph> g;
  std::vector<float> floats;
  std::vector<std::int64_t> ints;
  std::vector<std::string> strings;
  std::vector<tensor> tensors;
  std::vector<std::shared_ptr<graph>> graphs;
  std::string ref_attr_name;
  std::string doc_string;
  std::string unparsed;  ///< raw bytes of kinds amctq does not interpret (sparse, type protos), re-emitted as read
};

struct node {
  std::string name;
  std::string op_type;
  std::string domain;  ///< "" is the default ONNX domain
  std::vector<std::string> inputs;   ///< "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::vector<attribute> attributes;
  std::string doc_string;
  std::string unparsed{};  ///< raw wire bytes of NodeProto fields amctq does not interpret, re-emitted as read

  const attribute* find(const std::string& attr) const noexcept {
    for (const auto& a : attributes)
      if (a.name == attr) return &a;
    return nullptr;
  }
  std::int64_t get_int(const std::string& attr, std::int64_t fallback) const {
    const attribute* a = find(attr);
    return a ? a->i : fallback;
  }
  float get_float(const std::string& attr, float fallback) const {
    const attribute* a = find(attr);
    return a ? a->f : fallback;
  }
  std::string get_string(const std::string& attr, const std::string& fallback) const {
    const attribute* a = find(attr);
    return a ? a->s : fallback;
  }
  std::vector<std::int64_t> get_ints(const std::string& attr, std::vector<std::int64_t> fallback = {}) const {
    const attribute* a = find(attr);
    return a ? a->ints : fallback;
  }
};

struct graph {
  std::string name;
  std::vector<node> nodes;  ///< in topological order once a model is validated
  std::vector<initializer> initializers;
  std::vector<value_info> inputs;
  std::vector<value_info> outputs;
  std::vector<value_info> value_infos;
  std::string doc_string;
  std::string unparsed{};  ///< raw wire bytes of GraphProto fields amctq does not interpret (sparse initializers, quantization annotations), re-emitted as read

  const initializer* find_initializer(const std::string& n) const noexcept {
    for (const auto& i : initializers)
      if (i.name == n) return &i;
    return nullptr;
  }
  initializer* find_initializer(const std::string& n) noexcept {
    for (auto& i : initializers)
      if (i.name == n) return &i;
    return nullptr;
  }
};

struct opset_import {
  std::string domain;
  std::int64_t version = 0;
};

struct model {
  std::int64_t ir_version = 8;
  std::vector<opset_import> opset_imports;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  std::int64_t model_version = 0;
  std::string doc_string;
  graph main;
  std::vector<std::pair<std::string, std::string>> metadata_props;
  std::string unparsed;  ///< raw bytes of ModelProto fields amctq does not interpret (functions, training info), re-emitted as read

  /// The opset version of the default ONNX domain (0 when not imported).
  std::int64_t opset() const noexcept {
    for (const auto& o : opset_imports)
      if (o.domain.empty() || o.domain == "ai.onnx") return o.version;
    return 0;
  }
};

/// A copy of m whose main-graph initializers named in `left_out` get an empty value: for a copy
/// that replaces those tensors anyway (a lowering writes a quantized weight's codes instead), so
/// that the model's largest tensors are not held twice. Every field is copied by name here; a
/// field added to model or graph is added here too.
template <class NameSet>
model copy_leaving_out(const model& m, const NameSet& left_out) {
  model out;
  out.ir_version = m.ir_version;
  out.opset_imports = m.opset_imports;
  out.producer_name = m.producer_name;
  out.producer_version = m.producer_version;
  out.domain = m.domain;
  out.model_version = m.model_version;
  out.doc_string = m.doc_string;
  out.metadata_props = m.metadata_props;
  out.unparsed = m.unparsed;
  const graph& g = m.main;
  graph& o = out.main;
  o.name = g.name;
  o.nodes = g.nodes;
  o.inputs = g.inputs;
  o.outputs = g.outputs;
  o.value_infos = g.value_infos;
  o.doc_string = g.doc_string;
  o.unparsed = g.unparsed;
  o.initializers.reserve(g.initializers.size());
  for (const auto& i : g.initializers) {
    if (!left_out.count(i.name)) {
      o.initializers.push_back(i);
      continue;
    }
    initializer e;
    e.name = i.name;
    e.doc_string = i.doc_string;
    e.external = i.external;
    o.initializers.push_back(std::move(e));
  }
  return out;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_IR_HPP
