// op_table: which function runs a node, by (domain, op_type). The executor runs exactly what the
// table it is given holds, so an engine adds its own domain's ops, or replaces a builtin one, by
// adding entries to a copy of builtin_ops() — no executor code changes.
#ifndef AMCTQ_GRAPH_OP_TABLE_HPP
#define AMCTQ_GRAPH_OP_TABLE_HPP

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "amctq/graph/ir.hpp"
#include "amctq/graph/tensor.hpp"

namespace amctq::graph {

namespace ops {
struct context;
}

/// Computes a node's outputs from ctx.in into ctx.out; throws amctq::error naming the node on bad input.
using op_function = std::function<void(ops::context&)>;

inline bool is_default_domain(const std::string& d) noexcept { return d.empty() || d == "ai.onnx"; }

class op_table {
 public:
  op_table() = default;
  /// Ops of the default ONNX domain.
  op_table(std::initializer_list<std::pair<const char*, op_function>> default_domain) {
    for (const auto& [op, f] : default_domain) add(op, f);
  }

  /// Adds or replaces the op `op_type` of `domain` ("" and "ai.onnx" both name the default domain).
  op_table& add(const std::string& op_type, op_function f, const std::string& domain = {}) {
    ops_[key(domain, op_type)] = std::move(f);
    return *this;
  }
  /// Every entry of `other`, replacing entries of the same name.
  op_table& add(const op_table& other) {
    for (const auto& [k, f] : other.ops_) ops_[k] = f;
    return *this;
  }

  /// The function for n, or nullptr.
  const op_function* find(const node& n) const { return find(n.domain, n.op_type); }
  const op_function* find(const std::string& domain, const std::string& op_type) const {
    auto it = ops_.find(key(domain, op_type));
    return it == ops_.end() ? nullptr : &it->second;
  }
  bool contains(const node& n) const { return find(n) != nullptr; }

  /// "domain:op_type" (or op_type for the default domain) of every entry, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [k, f] : ops_) out.push_back(k);
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  static std::string key(const std::string& domain, const std::string& op_type) {
    return is_default_domain(domain) ? op_type : domain + ":" + op_type;
  }
  std::unordered_map<std::string, op_function> ops_;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_OP_TABLE_HPP
