// The float reference executor: runs a graph::model on named input tensors and returns named
// outputs. Nodes run in a topological order computed once (cycles and dangling inputs are
// errors naming the node); values live in a map by name and are freed after their last use.
// Observers attach through tensor_hooks: a callback per tensor name plus catch-alls, called
// for every graph input and every tensor a node produces.
#ifndef AMCTQ_GRAPH_EXECUTOR_HPP
#define AMCTQ_GRAPH_EXECUTOR_HPP

#include <algorithm>
#include <any>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/activation.hpp"
#include "amctq/graph/ops/common.hpp"
#include "amctq/graph/ops/conv.hpp"
#include "amctq/graph/ops/einsum.hpp"
#include "amctq/graph/ops/elementwise.hpp"
#include "amctq/graph/ops/gemm.hpp"
#include "amctq/graph/ops/index.hpp"
#include "amctq/graph/ops/logic.hpp"
#include "amctq/graph/ops/math.hpp"
#include "amctq/graph/ops/movement.hpp"
#include "amctq/graph/ops/normalization.hpp"
#include "amctq/graph/ops/pool.hpp"
#include "amctq/graph/ops/reduce.hpp"
#include "amctq/graph/ops/resize.hpp"
#include "amctq/graph/ops/scatter.hpp"
#include "amctq/graph/ops/shape.hpp"
#include "amctq/graph/tensor.hpp"

namespace amctq::graph {

/// The ONNX ops (default domain) the reference executor implements: each family's table from
/// its ops/ header. Adding an op: its function and one entry in its family's table; a new family:
/// a header in ops/ and one line here.
inline const op_table& builtin_ops() {
  static const op_table table = op_table()
                                    .add(ops::conv_ops())
                                    .add(ops::gemm_ops())
                                    .add(ops::pool_ops())
                                    .add(ops::activation_ops())
                                    .add(ops::elementwise_ops())
                                    .add(ops::math_ops())
                                    .add(ops::logic_ops())
                                    .add(ops::normalization_ops())
                                    .add(ops::shape_ops())
                                    .add(ops::reduce_ops())
                                    .add(ops::index_ops())
                                    .add(ops::einsum_ops())
                                    .add(ops::movement_ops())
                                    .add(ops::scatter_ops())
                                    .add(ops::resize_ops());
  return table;
}

/// Whether `ops` (by default the builtin ones) can run this node's op (it may still reject
/// particular attributes).
inline bool is_supported(const node& n, const op_table& ops = builtin_ops()) { return ops.contains(n); }

inline std::string describe(const node& n) { return "node '" + n.name + "' (" + n.op_type + ")"; }

/// Indices of g.nodes in an order where every node runs after the producers of its inputs.
/// Keeps the stored order where it is already valid. Throws naming the node whose input
/// nothing produces, the name produced twice, or a node on a cycle.
inline std::vector<std::size_t> topological_order(const graph& g) {
  std::unordered_set<std::string> available;
  for (const auto& i : g.inputs) available.insert(i.name);
  for (const auto& i : g.initializers) available.insert(i.name);
  std::unordered_map<std::string, std::size_t> producer;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    for (const auto& o : g.nodes[k].outputs) {
      if (o.empty()) continue;
      AMCTQ_CHECK(producer.emplace(o, k).second, errc::invalid_argument, describe(g.nodes[k]), "output '", o,
                  "' is also produced by ", describe(g.nodes[producer[o]]));
      AMCTQ_CHECK(!available.count(o), errc::invalid_argument, describe(g.nodes[k]), "output '", o,
                  "' overwrites a graph input or initializer");
    }
  std::vector<std::size_t> pending(g.nodes.size(), 0);
  std::unordered_map<std::string, std::vector<std::size_t>> consumers;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    for (const auto& in : g.nodes[k].inputs) {
      if (in.empty() || available.count(in)) continue;
      AMCTQ_CHECK(producer.count(in), errc::invalid_argument, describe(g.nodes[k]), "input '", in,
                  "' is not a graph input, an initializer or any node's output");
      ++pending[k];
      consumers[in].push_back(k);
    }
  // Kahn's algorithm, always taking the lowest ready index so valid stored orders are kept.
  std::vector<std::size_t> order;
  order.reserve(g.nodes.size());
  std::vector<bool> done(g.nodes.size(), false);
  std::vector<std::size_t> ready;
  for (std::size_t k = g.nodes.size(); k-- > 0;)
    if (pending[k] == 0) ready.push_back(k);
  while (!ready.empty()) {
    std::sort(ready.begin(), ready.end(), std::greater<>());
    const std::size_t k = ready.back();
    ready.pop_back();
    order.push_back(k);
    done[k] = true;
    for (const auto& o : g.nodes[k].outputs) {
      auto it = consumers.find(o);
      if (it == consumers.end()) continue;
      for (std::size_t c : it->second)
        if (--pending[c] == 0) ready.push_back(c);
    }
  }
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    AMCTQ_CHECK(done[k], errc::invalid_argument, describe(g.nodes[k]), "is on a cycle (its inputs depend on its outputs)");
  return order;
}

/// Callbacks observing tensors as the executor produces them.
class tensor_hooks {
 public:
  using callback = std::function<void(const std::string& name, const tensor& value)>;
  using handle = std::size_t;

  /// Calls cb whenever the tensor called `name` is produced (or fed, for graph inputs).
  handle on_tensor(const std::string& name, callback cb) {
    by_name_[name].push_back({next_, std::move(cb)});
    return next_++;
  }
  /// Calls cb for every tensor.
  handle on_any(callback cb) {
    any_.push_back({next_, std::move(cb)});
    return next_++;
  }
  void remove(handle h) {
    auto drop = [h](std::vector<entry>& v) {
      v.erase(std::remove_if(v.begin(), v.end(), [h](const entry& e) { return e.id == h; }), v.end());
    };
    drop(any_);
    for (auto it = by_name_.begin(); it != by_name_.end();) {
      drop(it->second);
      it = it->second.empty() ? by_name_.erase(it) : std::next(it);
    }
  }
  void clear() {
    any_.clear();
    by_name_.clear();
  }
  bool empty() const noexcept { return any_.empty() && by_name_.empty(); }
  /// Whether a callback would see the tensor called `name`.
  bool watches(const std::string& name) const { return !any_.empty() || by_name_.count(name) > 0; }
  void notify(const std::string& name, const tensor& value) const {
    for (const auto& e : any_) e.cb(name, value);
    auto it = by_name_.find(name);
    if (it != by_name_.end())
      for (const auto& e : it->second) e.cb(name, value);
  }

 private:
  struct entry {
    handle id;
    callback cb;
  };
  std::vector<entry> any_;
  std::unordered_map<std::string, std::vector<entry>> by_name_;
  handle next_ = 0;
};

/// Initializers whose values an executor makes only while a node reads them: before the node
/// it calls the maker, after the node it frees the tensor. A model too large to hold twice keeps
/// a compact form of them instead (the calibration model keeps its quantized weights as int8
/// codes, graph/pipeline.hpp), and the model's initializer of that name is a placeholder the
/// executor does not read.
class deferred_constants {
 public:
  using maker = std::function<tensor()>;

  /// `bytes`: the size of the tensor `make` returns.
  void add(const std::string& name, std::size_t bytes, maker make) {
    AMCTQ_CHECK(makers_.emplace(name, std::move(make)).second, errc::invalid_argument, "deferred_constants", "'", name,
                "' is already deferred");
    bytes_ += bytes;
  }
  const maker* find(const std::string& name) const {
    auto it = makers_.find(name);
    return it == makers_.end() ? nullptr : &it->second;
  }
  bool empty() const noexcept { return makers_.empty(); }
  /// What they would take made all at once.
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::unordered_map<std::string, maker> makers_;
  std::size_t bytes_ = 0;
};

/// Runs one model; one executor per thread (several may share one const model). It keeps, per
/// node, state its ops derive from initializers (Conv's and MatMul's packed weights), so the
/// model's initializer values must not change while an executor over it lives. By default it
/// runs on the calling thread alone; set_intra_op_threads lends Conv and MatMul more threads,
/// without changing a bit of the results.
class executor {
 public:
  /// Checks the graph once: topological order, every op in `ops`. `m` must outlive the executor;
  /// the table is copied from.
  explicit executor(const model& m, const op_table& ops = builtin_ops())
      : model_(m), opset_(m.opset()), order_(topological_order(m.main)) {
    Eigen::setNbThreads(1);  // threads come from intra_op_pool, where the results stay exact
    for (std::size_t k : order_) {
      const node& n = m.main.nodes[k];
      const op_function* f = ops.find(n);
      AMCTQ_CHECK(f != nullptr, errc::unsupported, describe(n),
                  is_default_domain(n.domain) ? amctq::detail::concat("op_type '", n.op_type, "'")
                                              : amctq::detail::concat("op '", n.op_type, "' of domain '", n.domain, "'"),
                  " is not supported by the executor's op table; add it (graph::op_table::add), or leave the "
                  "model part that uses it out");
      fns_.push_back(*f);
    }
    for (const auto& i : m.main.initializers) constants_[i.name] = &i.value;
    find_conv_relu();
  }

  tensor_hooks& hooks() noexcept { return hooks_; }
  /// Threads, the calling one included, that ops may use inside one node (1: none besides it).
  void set_intra_op_threads(int threads) {
    AMCTQ_CHECK(threads >= 1, errc::invalid_argument, "executor", "intra-op threads must be >= 1, got ", threads);
    if (threads == intra_op_threads()) return;
    intra_op_.reset();
    if (threads > 1) intra_op_ = std::make_unique<ops::intra_op_pool>(threads);
  }
  int intra_op_threads() const noexcept { return intra_op_ ? intra_op_->threads() : 1; }
  /// Whether ops keep what they derive from initializers (packed weights) from run to run (the
  /// default), or derive it again on each run and free it after the node: the same results, and
  /// no second copy of a large model's weights, at the cost of packing them every run.
  void set_keep_packed_weights(bool keep) {
    keep_packed_ = keep;
    if (!keep)
      for (auto& s : states_) s.reset();
  }
  /// Initializers of the model made per node (nullptr: none); `d` must outlive the executor. They
  /// are not counted in peak_bytes(), as the model's own initializers are not.
  void set_deferred_constants(const deferred_constants* d) noexcept { deferred_ = d; }
  const std::vector<std::size_t>& order() const noexcept { return order_; }
  /// The most bytes the last run() held at once: its inputs, the values alive between nodes and
  /// the ops' scratch. Calibration sizes its batches from this (graph/calibration_run.hpp).
  std::size_t peak_bytes() const noexcept { return peak_bytes_; }

  /// Runs the graph; returns the graph outputs.
  std::map<std::string, tensor> run(const std::map<std::string, tensor>& inputs) {
    std::vector<std::string> names;
    for (const auto& o : model_.main.outputs) names.push_back(o.name);
    return run(inputs, names);
  }

  /// Runs the graph; returns the named tensors (graph outputs or any intermediate).
  std::map<std::string, tensor> run(const std::map<std::string, tensor>& inputs, const std::vector<std::string>& wanted) {
    const graph& g = model_.main;
    peak_bytes_ = 0;
    std::unordered_map<std::string, tensor> values;
    std::unordered_map<std::string, const tensor*> fed;
    std::size_t live = 0;
    for (const auto& [name, t] : inputs) {
      live += t.bytes().size();
      bool known = constants_.count(name) > 0;
      for (const auto& vi : g.inputs) known = known || vi.name == name;
      AMCTQ_CHECK(known, errc::invalid_argument, "executor::run", "'", name, "' is not an input of the graph");
      fed[name] = &t;
    }
    for (const auto& vi : g.inputs) {
      auto it = fed.find(vi.name);
      if (it == fed.end()) {
        AMCTQ_CHECK(constants_.count(vi.name), errc::invalid_argument, "executor::run", "graph input '", vi.name,
                    "' was not given");
        continue;
      }
      check_input(vi, *it->second);
      hooks_.notify(vi.name, *it->second);
    }
    // Last consumer of every value, so intermediates can be freed early.
    std::unordered_map<std::string, std::size_t> last_use;
    for (std::size_t step = 0; step < order_.size(); ++step)
      for (const auto& in : g.nodes[order_[step]].inputs) last_use[in] = step;
    std::unordered_set<std::string> keep(wanted.begin(), wanted.end());

    auto lookup = [&](const std::string& name) -> const tensor* {
      if (auto it = values.find(name); it != values.end()) return &it->second;
      if (auto it = fed.find(name); it != fed.end()) return it->second;
      if (auto it = constants_.find(name); it != constants_.end()) return it->second;
      return nullptr;
    };
    for (std::size_t step = 0; step < order_.size(); ++step) {
      const node& n = g.nodes[order_[step]];
      std::any transient;  // the node's derived state when it is not kept
      ops::context ctx{n, opset_, {}, {}, scratch_, &pool_, keep_packed_ ? &states_[step] : &transient};
      ctx.threads = intra_op_.get();
      // The Relu after a Conv runs inside it, unless someone asked to see the Conv's own output.
      const node* relu = conv_relu_[step] && !keep.count(n.outputs[0]) && !hooks_.watches(n.outputs[0])
                             ? &g.nodes[order_[step + 1]]
                             : nullptr;
      ctx.relu_after = relu != nullptr;
      // Trailing omitted inputs do not count as inputs.
      std::size_t count = n.inputs.size();
      while (count > 0 && n.inputs[count - 1].empty()) --count;
      ctx.in.resize(count, nullptr);
      std::vector<tensor> made;  // this node's deferred constants, freed after it
      if (deferred_) made.reserve(count);  // no reallocation: ctx.in points into it
      for (std::size_t i = 0; i < count; ++i) {
        if (n.inputs[i].empty()) continue;
        const deferred_constants::maker* make =
            deferred_ && !fed.count(n.inputs[i]) ? deferred_->find(n.inputs[i]) : nullptr;
        if (make) {
          made.push_back((*make)());
          ctx.in[i] = &made.back();
        } else {
          ctx.in[i] = lookup(n.inputs[i]);
        }
        if (i < 64 && !fed.count(n.inputs[i]) && constants_.count(n.inputs[i])) ctx.constant_inputs |= std::uint64_t{1} << i;
        AMCTQ_CHECK(ctx.in[i] != nullptr, errc::invalid_argument, describe(n), "input '", n.inputs[i],
                    "' has no value");
      }
      ctx.out.resize(n.outputs.size());
      fns_[step](ctx);
      for (std::size_t i = 0; i < n.outputs.size(); ++i) {
        if (n.outputs[i].empty()) continue;
        AMCTQ_CHECK(ctx.out[i].type() != dtype::undefined, errc::unsupported, describe(n), "output ", i, " ('",
                    n.outputs[i], "') is not computed by this implementation");
        const std::string& name = relu ? relu->outputs[0] : n.outputs[i];
        hooks_.notify(name, ctx.out[i]);
        live += ctx.out[i].bytes().size();
        values[name] = std::move(ctx.out[i]);
      }
      peak_bytes_ = std::max(peak_bytes_, live + scratch_.capacity() * sizeof(float));
      for (const auto& in : n.inputs) {
        auto lu = last_use.find(in);
        if (lu == last_use.end() || lu->second != step || keep.count(in)) continue;
        if (auto it = values.find(in); it != values.end()) {
          live -= it->second.bytes().size();
          pool_.give(std::move(it->second.bytes()));
          values.erase(it);
        }
      }
      step += relu != nullptr;  // the Relu's output is made
    }
    std::map<std::string, tensor> result;
    for (const auto& name : wanted) {
      const deferred_constants::maker* make = deferred_ && !fed.count(name) ? deferred_->find(name) : nullptr;
      const tensor* t = make ? nullptr : lookup(name);
      AMCTQ_CHECK(make || t != nullptr, errc::invalid_argument, "executor::run", "'", name, "' is not a value of the graph");
      result[name] = make ? (*make)() : *t;
    }
    for (auto& [name, t] : values) pool_.give(std::move(t.bytes()));
    pool_.trim(peak_bytes_);
    return result;
  }

 private:
  void check_input(const value_info& vi, const tensor& t) const {
    AMCTQ_CHECK(vi.elem_type == dtype::undefined || vi.elem_type == t.type(), errc::invalid_argument,
                "executor::run", "input '", vi.name, "' must be ", to_string(vi.elem_type), ", got ", to_string(t.type()));
    if (!vi.shape) return;
    const auto& dims = *vi.shape;
    AMCTQ_CHECK(dims.size() == t.rank(), errc::shape_mismatch, "executor::run", "input '", vi.name, "' must have rank ",
                dims.size(), ", got shape ", ops::shape_string(t.shape()));
    for (std::size_t d = 0; d < dims.size(); ++d)
      AMCTQ_CHECK(!dims[d].value || *dims[d].value == t.dim(d), errc::shape_mismatch, "executor::run", "input '",
                  vi.name, "' dim ", d, " must be ", dims[d].value.value_or(0), ", got shape ",
                  ops::shape_string(t.shape()));
  }

  /// conv_relu_[step]: the node at `step` is a Conv, the next one a Relu that alone reads its
  /// only output, and both run the builtin ops, the Conv's able to apply the Relu as it writes.
  /// A graph with subgraphs is left alone: they may read any outer value by name.
  void find_conv_relu() {
    const graph& g = model_.main;
    conv_relu_.assign(order_.size(), false);
    std::unordered_map<std::string, int> readers;
    for (const auto& n : g.nodes) {
      for (const auto& a : n.attributes)
        if (a.g || !a.graphs.empty()) return;
      for (const auto& in : n.inputs) ++readers[in];
    }
    for (const auto& o : g.outputs) ++readers[o.name];
    auto is = [](const op_function& f, void (*op)(ops::context&)) {
      const auto* target = f.target<void (*)(ops::context&)>();
      return target && *target == op;
    };
    for (std::size_t s = 0; s + 1 < order_.size(); ++s) {
      const node& conv = g.nodes[order_[s]];
      const node& relu = g.nodes[order_[s + 1]];
      conv_relu_[s] = is(fns_[s], &ops::conv) && is(fns_[s + 1], &ops::relu) && conv.outputs.size() == 1 &&
                      !conv.outputs[0].empty() && relu.inputs.size() == 1 && relu.inputs[0] == conv.outputs[0] &&
                      relu.outputs.size() == 1 && readers[conv.outputs[0]] == 1;
    }
  }

  const model& model_;
  std::int64_t opset_;
  std::vector<std::size_t> order_;
  std::vector<op_function> fns_;
  std::vector<bool> conv_relu_;
  std::unordered_map<std::string, const tensor*> constants_;
  tensor_hooks hooks_;
  std::vector<float> scratch_;
  ops::buffer_pool pool_;  // storage of freed values, reused by later outputs and runs
  std::vector<std::any> states_ = std::vector<std::any>(order_.size());  // per step: ops' kept state (packed weights)
  std::size_t peak_bytes_ = 0;
  std::unique_ptr<ops::intra_op_pool> intra_op_;
  bool keep_packed_ = true;
  const deferred_constants* deferred_ = nullptr;
};

/// One-shot convenience: run `m` on `inputs`.
inline std::map<std::string, tensor> run(const model& m, const std::map<std::string, tensor>& inputs) {
  executor ex(m);
  return ex.run(inputs);
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_EXECUTOR_HPP
