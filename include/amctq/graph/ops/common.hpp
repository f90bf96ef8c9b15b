// What every op implementation sees: the node, its resolved input tensors, the outputs to
// fill, the model's opset, and a scratch buffer the executor reuses across nodes so that
// im2col and friends do not allocate per call. Plus the small helpers the op families share.
#ifndef AMCTQ_GRAPH_OPS_COMMON_HPP
#define AMCTQ_GRAPH_OPS_COMMON_HPP

#include <algorithm>
#include <any>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <iterator>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/ops/intra_op.hpp"
#include "amctq/graph/tensor.hpp"

namespace amctq::graph::ops {

/// Storage of tensors an executor has freed, by byte size, handed to the next output of the same
/// size: a run of a CNN allocates the same few sizes over and over, and fresh large blocks cost
/// page faults and zeroing on every run. Owned by one executor; not shared between threads.
class buffer_pool {
 public:
  /// A buffer of exactly `bytes` bytes, recycled when one is free (contents then unspecified).
  std::vector<std::byte> take(std::size_t bytes, bool* recycled = nullptr) {
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) {
      if (recycled) *recycled = false;
      return std::vector<std::byte>(bytes);
    }
    std::vector<std::byte> b = std::move(it->second.back());
    it->second.pop_back();
    held_ -= b.size();
    if (recycled) *recycled = true;
    return b;
  }
  void give(std::vector<std::byte>&& b) {
    if (b.empty()) return;
    const std::size_t bytes = b.size();
    held_ += bytes;
    free_[bytes].push_back(std::move(b));
  }
  /// Frees buffers until at most `keep` bytes are held: runs of other shapes (a last, shorter
  /// calibration slice) must not leave their sizes behind for good.
  void trim(std::size_t keep) {
    for (auto it = free_.begin(); it != free_.end() && held_ > keep;) {
      while (!it->second.empty() && held_ > keep) {
        held_ -= it->second.back().size();
        it->second.pop_back();
      }
      it = it->second.empty() ? free_.erase(it) : std::next(it);
    }
  }
  std::size_t held() const noexcept { return held_; }

 private:
  std::unordered_map<std::size_t, std::vector<std::vector<std::byte>>> free_;
  std::size_t held_ = 0;
};

struct context {
  const node& n;
  std::int64_t opset;
  std::vector<const tensor*> in;  ///< nullptr marks an omitted optional input
  std::vector<tensor> out;        ///< one slot per node output
  std::vector<float>& scratch;
  buffer_pool* pool = nullptr;  ///< where outputs take their storage from; null: fresh allocations
  /// Storage for this node that lives as long as the executor (packed weights); null outside one.
  std::any* state = nullptr;
  /// Bit i set: input i is a model initializer, whose value stays fixed while the executor lives.
  std::uint64_t constant_inputs = 0;
  /// The executor's threads for work inside this node; null: the calling thread alone.
  intra_op_pool* threads = nullptr;
  /// Set by the executor for the builtin Conv when a Relu alone reads its output: the op applies
  /// the Relu (relu_fn) as it writes the output, and the Relu node does not run.
  bool relu_after = false;

  /// Elements of work below which waking another thread costs more than it saves.
  static constexpr std::int64_t min_parallel_elements = std::int64_t{1} << 14;

  /// Workers parallel_for may use; scratch that tasks need is per worker.
  int workers() const noexcept { return threads ? threads->threads() : 1; }
  /// Into how many parts to cut each of `tasks` tasks so that every worker has one: 1 when the
  /// tasks alone are enough.
  std::int64_t parts_per_task(std::int64_t tasks) const noexcept {
    const std::int64_t w = workers();
    return tasks >= w || tasks <= 0 ? 1 : (w + tasks - 1) / tasks;
  }
  /// Scratch of `floats` for each worker: worker w's starts at the result + w * floats.
  float* scratch_per_worker(std::int64_t floats) {
    const auto need = static_cast<std::size_t>(floats * workers());
    if (scratch.size() < need) scratch.resize(need);
    return scratch.data();
  }
  /// Runs task(t, worker) for t in [0, tasks), spread over the workers. Tasks must write disjoint
  /// outputs and compute them the same way whichever worker runs them.
  template <class Task>
  void parallel_for(std::int64_t tasks, Task&& task) const {
    if (!threads) {
      for (std::int64_t t = 0; t < tasks; ++t) task(t, 0);
      return;
    }
    threads->run(tasks, std::function<void(std::int64_t, int)>(std::ref(task)));
  }
  /// Runs f(begin, end) over [0, n) cut into one run per worker, each at least `min_run` long
  /// (less work than that is not worth waking a thread for) and cut at multiples of `grain`.
  /// For work where each index comes out the same whichever run holds it.
  template <class F>
  void parallel_ranges(std::int64_t n, std::int64_t grain, std::int64_t min_run, F&& f) const {
    const std::int64_t runs = std::clamp<std::int64_t>(n / std::max<std::int64_t>(min_run, 1), 1, workers());
    if (runs == 1) {
      if (n > 0) f(std::int64_t{0}, n);
      return;
    }
    auto cut = [&](std::int64_t k) { return k == runs ? n : std::min(n, (n * k / runs + grain / 2) / grain * grain); };
    parallel_for(runs, [&](std::int64_t k, int) {
      if (cut(k) < cut(k + 1)) f(cut(k), cut(k + 1));
    });
  }
  /// parallel_ranges over whole rows of `row_length` elements, each reduced by one thread.
  template <class F>
  void parallel_rows(std::int64_t rows, std::int64_t row_length, F&& f) const {
    parallel_ranges(rows, 1, min_parallel_elements / std::max<std::int64_t>(row_length, 1), std::forward<F>(f));
  }

  /// "node 'conv1' (Conv)": the prefix of every error an op raises.
  std::string where() const { return "node '" + n.name + "' (" + n.op_type + ")"; }
  std::size_t num_inputs() const noexcept { return in.size(); }
  bool has_input(std::size_t i) const noexcept { return i < in.size() && in[i] != nullptr; }
  bool is_constant(std::size_t i) const noexcept { return i < 64 && ((constant_inputs >> i) & 1u) != 0; }
  const tensor& input(std::size_t i) const {
    AMCTQ_CHECK(has_input(i), errc::invalid_argument, where(), "input ", i, " is required but missing");
    return *in[i];
  }
  /// Whether the node asks for output i (ONNX marks unused optional outputs with "").
  bool wants_output(std::size_t i) const noexcept { return i < n.outputs.size() && !n.outputs[i].empty(); }
  /// Output i, zero-filled.
  tensor& make_output(std::size_t i, dtype t, std::vector<std::int64_t> shape) {
    if (!pool || t == dtype::string || is_packed_4bit(t)) {
      out[i] = tensor(t, std::move(shape));
      return out[i];
    }
    bool recycled = false;
    tensor& y = adopt(i, t, std::move(shape), &recycled);
    if (recycled) std::fill(y.bytes().begin(), y.bytes().end(), std::byte{0});
    return y;
  }
  /// Output i = x's elements under `shape` (the same element count), in pooled storage.
  tensor& copy_output(std::size_t i, const tensor& x, std::vector<std::int64_t> shape) {
    if (!pool || x.type() == dtype::string || is_packed_4bit(x.type())) {
      out[i] = x;
      out[i].reshape(std::move(shape));
      return out[i];
    }
    tensor& y = adopt(i, x.type(), std::move(shape), nullptr);
    if (!x.bytes().empty()) std::memcpy(y.bytes().data(), x.bytes().data(), x.bytes().size());
    return y;
  }
  /// Output i with unspecified contents, for ops that write every element.
  tensor& make_output_uninit(std::size_t i, dtype t, std::vector<std::int64_t> shape) {
    if (!pool || t == dtype::string || is_packed_4bit(t)) return make_output(i, t, std::move(shape));
    return adopt(i, t, std::move(shape), nullptr);
  }
  tensor& adopt(std::size_t i, dtype t, std::vector<std::int64_t> shape, bool* recycled) {
    tensor::check_shape(shape);
    std::size_t count = 1;
    for (auto d : shape) count *= static_cast<std::size_t>(d);
    out[i] = tensor(t, std::move(shape), pool->take(count * element_size(t), recycled));
    return out[i];
  }
  void require_inputs(std::size_t lo, std::size_t hi) const {
    AMCTQ_CHECK(in.size() >= lo && in.size() <= hi, errc::invalid_argument, where(), "expects ", lo,
                lo == hi ? "" : ::amctq::detail::concat(" to ", hi), " inputs, got ", in.size());
    for (std::size_t i = 0; i < lo; ++i)
      AMCTQ_CHECK(in[i] != nullptr, errc::invalid_argument, where(), "input ", i, " is required but omitted");
  }
  void require_type(const tensor& t, dtype want, const char* what) const {
    AMCTQ_CHECK(t.type() == want, errc::unsupported, where(), what, " has element type ", to_string(t.type()),
                ", only ", to_string(want), " is supported");
  }
  /// Rejects requests for optional outputs (e.g. MaxPool indices) an op does not compute.
  void only_first_output() const {
    for (std::size_t i = 1; i < n.outputs.size(); ++i)
      AMCTQ_CHECK(n.outputs[i].empty(), errc::unsupported, where(), "optional output ", i, " ('", n.outputs[i],
                  "') is not supported");
  }
};

inline std::int64_t normalize_axis(const context& c, std::int64_t axis, std::int64_t rank, const char* what = "axis") {
  AMCTQ_CHECK(axis >= -rank && axis < std::max<std::int64_t>(rank, 1), errc::invalid_argument, c.where(), what, " ", axis,
              " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

/// Element count of a shape; -1 when no tensor can have it (see element_count), so comparing
/// with a real size fails as it should.
inline std::int64_t numel(const std::vector<std::int64_t>& shape) noexcept {
  const auto n = element_count(shape);
  return n ? static_cast<std::int64_t>(*n) : -1;
}

/// The values of a small integer tensor (shapes, axes, pads, indices), any integer type.
inline std::vector<std::int64_t> int_values(const context& c, const tensor& t, const char* what) {
  std::vector<std::int64_t> v(t.size());
  switch (t.type()) {
    case dtype::int64: std::copy(t.data<std::int64_t>(), t.data<std::int64_t>() + t.size(), v.begin()); break;
    case dtype::int32: std::copy(t.data<std::int32_t>(), t.data<std::int32_t>() + t.size(), v.begin()); break;
    default:
      AMCTQ_THROW(errc::unsupported, c.where(), what, " must be int32 or int64, got ", to_string(t.type()));
  }
  return v;
}

/// Calls f(T{}) with T the C++ type of `t`, for the numeric types the executor computes in.
template <class F>
void visit_numeric(const context& c, dtype t, F&& f) {
  switch (t) {
    case dtype::float32: f(float{}); break;
    case dtype::float64: f(double{}); break;
    case dtype::int32: f(std::int32_t{}); break;
    case dtype::int64: f(std::int64_t{}); break;
    case dtype::int8: f(std::int8_t{}); break;
    case dtype::uint8: f(std::uint8_t{}); break;
    case dtype::int16: f(std::int16_t{}); break;
    case dtype::uint16: f(std::uint16_t{}); break;
    case dtype::uint32: f(std::uint32_t{}); break;
    case dtype::uint64: f(std::uint64_t{}); break;
    default: AMCTQ_THROW(errc::unsupported, c.where(), "element type ", to_string(t), " is not supported");
  }
}

/// Calls f(T{}) with T float or double; other types are refused naming the node.
template <class F>
void visit_float(const context& c, dtype t, F&& f) {
  switch (t) {
    case dtype::float32: f(float{}); break;
    case dtype::float64: f(double{}); break;
    default:
      AMCTQ_THROW(errc::unsupported, c.where(), "element type ", to_string(t), " is not supported (float32, float64)");
  }
}

/// y[i] = f(x[i]) over two contiguous tensors of equal size: T in, O out.
template <class T, class O, class F>
void map_elements(const tensor& x, tensor& y, F&& f) {
  const T* px = x.data<T>();
  O* py = y.data<O>();
  for (std::size_t i = 0, n = x.size(); i < n; ++i) py[i] = static_cast<O>(f(px[i]));
}

/// Output 0 = f(input 0) elementwise, same shape and type, for the types `visit` (visit_float,
/// visit_numeric) calls f with.
template <class Visit, class F>
void unary_same_type(context& c, Visit visit, F f) {
  const tensor& x = c.input(0);
  tensor& y = c.make_output_uninit(0, x.type(), x.shape());
  visit(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    // Runs start on 64-element boundaries, so a vectorised loop splits each run as it splits the whole.
    c.parallel_ranges(static_cast<std::int64_t>(x.size()), 64, context::min_parallel_elements, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) py[i] = static_cast<T>(f(px[i]));
    });
  });
}

/// Relu's max(v, 0), where NaN and -0 give +0: one definition for the op and for what a Conv
/// that absorbed a Relu writes, so the two give the same bits.
struct relu_fn {
  template <class T>
  T operator()(T v) const noexcept {
    return v > 0 ? v : T(0);
  }
};

/// Output 0 = f(input 0) elementwise for float32 / float64 input.
template <class F>
void unary_float(context& c, F f) {
  unary_same_type(c, [](const context& cc, dtype t, auto&& g) { visit_float(cc, t, g); }, f);
}

/// Output 0 = f(input 0) elementwise for every numeric input type.
template <class F>
void unary_numeric(context& c, F f) {
  unary_same_type(c, [](const context& cc, dtype t, auto&& g) { visit_numeric(cc, t, g); }, f);
}

/// Calls f(U{}) with an unsigned integer type as wide as one element: for ops that only move bytes.
template <class F>
void visit_bytes(const context& c, dtype t, F&& f) {
  switch (element_size(t)) {
    case 1: f(std::uint8_t{}); break;
    case 2: f(std::uint16_t{}); break;
    case 4: f(std::uint32_t{}); break;
    case 8: f(std::uint64_t{}); break;
    default: AMCTQ_THROW(errc::unsupported, c.where(), "element type ", to_string(t), " cannot be moved");
  }
}

/// Row-major strides of `shape`, in elements.
inline std::vector<std::int64_t> strides_of(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> s(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

/// Walks every element of an N-d shape, calling f(offsets...) once per contiguous innermost run:
/// f(out_offset, operand_offsets (array), run_length, operand_inner_strides). Adjacent dims whose
/// strides chain are merged first, so same-shape, scalar and per-channel broadcasts run as long loops.
template <std::size_t K, class F>
void strided_walk(std::vector<std::int64_t> shape, std::array<std::vector<std::int64_t>, K> strides, F&& f) {
  // Merge dim i into i+1 when every operand steps through them as one dimension.
  std::vector<std::int64_t> sh;
  std::array<std::vector<std::int64_t>, K> st;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;  // size-1 dims never move any offset
    bool merge = !sh.empty();
    for (std::size_t k = 0; k < K && merge; ++k) merge = st[k].back() == strides[k][i] * shape[i];
    if (merge) {
      sh.back() *= shape[i];
      for (std::size_t k = 0; k < K; ++k) st[k].back() = strides[k][i];
    } else {
      sh.push_back(shape[i]);
      for (std::size_t k = 0; k < K; ++k) st[k].push_back(strides[k][i]);
    }
  }
  if (sh.empty()) {
    sh.push_back(1);
    for (std::size_t k = 0; k < K; ++k) st[k].push_back(0);
  }
  const std::size_t r = sh.size();
  const std::int64_t inner = sh[r - 1];
  std::array<std::int64_t, K> inner_stride{};
  for (std::size_t k = 0; k < K; ++k) inner_stride[k] = st[k][r - 1];
  std::int64_t outer = 1;
  for (std::size_t i = 0; i + 1 < r; ++i) outer *= sh[i];
  std::vector<std::int64_t> idx(r, 0);
  std::array<std::int64_t, K> off{};
  for (std::int64_t o = 0; o < outer; ++o) {
    f(o * inner, off, inner, inner_stride);
    for (std::size_t d = r - 1; d-- > 0;) {  // odometer over the outer dims
      ++idx[d];
      for (std::size_t k = 0; k < K; ++k) off[k] += st[k][d];
      if (idx[d] < sh[d]) break;
      for (std::size_t k = 0; k < K; ++k) off[k] -= st[k][d] * sh[d];
      idx[d] = 0;
    }
  }
}

/// Numpy multidirectional broadcast of two shapes; throws naming the node on mismatch.
inline std::vector<std::int64_t> broadcast_shapes(const context& c, const std::vector<std::int64_t>& a,
                                                  const std::vector<std::int64_t>& b) {
  const std::size_t r = std::max(a.size(), b.size());
  std::vector<std::int64_t> out(r);
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    const std::int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    AMCTQ_CHECK(da == db || da == 1 || db == 1, errc::shape_mismatch, c.where(), "cannot broadcast dimension ", i,
                ": ", da, " vs ", db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// Strides that read `shape` as if broadcast to `target` (0 along broadcast dims).
inline std::vector<std::int64_t> broadcast_strides(const std::vector<std::int64_t>& shape,
                                                   const std::vector<std::int64_t>& target) {
  std::vector<std::int64_t> s(target.size(), 0);
  const auto own = strides_of(shape);
  const std::size_t lead = target.size() - shape.size();
  for (std::size_t i = 0; i < shape.size(); ++i) s[lead + i] = shape[i] == 1 ? 0 : own[i];
  return s;
}


/// Inputs 0 and 1 of a broadcasting binary op, checked to share one element type, and output 0
/// made with their broadcast shape and element type `out_type` (undefined: the inputs' type).
struct binary_operands {
  const tensor& a;
  const tensor& b;
  tensor& out;
};
inline binary_operands broadcast_operands(context& c, dtype out_type = dtype::undefined) {
  c.require_inputs(2, 2);
  const tensor& a = c.input(0);
  const tensor& b = c.input(1);
  AMCTQ_CHECK(a.type() == b.type(), errc::invalid_argument, c.where(), "input types differ: ", to_string(a.type()),
              " and ", to_string(b.type()));
  tensor& out = c.make_output_uninit(0, out_type == dtype::undefined ? a.type() : out_type,
                              broadcast_shapes(c, a.shape(), b.shape()));
  return {a, b, out};
}

/// out = f(a, b) with a and b broadcast to out's shape (A, B in, O out); contiguous and
/// scalar-operand runs are plain loops.
template <class A, class B, class O, class F>
void broadcast_binary(const tensor& a, const tensor& b, tensor& out, F f) {
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  O* po = out.data<O>();
  strided_walk<2>(out.shape(), {broadcast_strides(a.shape(), out.shape()), broadcast_strides(b.shape(), out.shape())},
                  [&](std::int64_t o, const std::array<std::int64_t, 2>& off, std::int64_t n,
                      const std::array<std::int64_t, 2>& s) {
                    const A* x = pa + off[0];
                    const B* y = pb + off[1];
                    O* z = po + o;
                    if (s[0] == 1 && s[1] == 1) {
                      for (std::int64_t i = 0; i < n; ++i) z[i] = f(x[i], y[i]);
                    } else if (s[0] == 1 && s[1] == 0) {
                      const B yv = *y;
                      for (std::int64_t i = 0; i < n; ++i) z[i] = f(x[i], yv);
                    } else if (s[0] == 0 && s[1] == 1) {
                      const A xv = *x;
                      for (std::int64_t i = 0; i < n; ++i) z[i] = f(xv, y[i]);
                    } else {
                      for (std::int64_t i = 0; i < n; ++i) z[i] = f(x[i * s[0]], y[i * s[1]]);
                    }
                  });
}

inline std::string shape_string(const std::vector<std::int64_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_COMMON_HPP
