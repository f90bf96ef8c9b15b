// Ops that compute indices or index-shaped masks: ArgMax, ArgMin (keepdims, select_last_index),
// TopK (largest, sorted, k an input from opset 10; ties go to the lower index, like ONNX Runtime),
// Range, Trilu (upper, k input), OneHot, NonZero.
#ifndef AMCTQ_GRAPH_OPS_INDEX_HPP
#define AMCTQ_GRAPH_OPS_INDEX_HPP

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

namespace detail {

/// Sizes around one axis of a row-major shape: outer * n * inner elements.
struct axis_split {
  std::int64_t outer = 1, n = 1, inner = 1;
};
inline axis_split split_at(const std::vector<std::int64_t>& shape, std::size_t axis) {
  axis_split s;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < axis) s.outer *= shape[d];
    else if (d == axis) s.n = shape[d];
    else s.inner *= shape[d];
  }
  return s;
}

template <bool largest>
void arg_extreme(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  const auto rank = static_cast<std::int64_t>(x.rank());
  AMCTQ_CHECK(rank >= 1, errc::shape_mismatch, c.where(), "input must have rank >= 1");
  const auto axis = static_cast<std::size_t>(normalize_axis(c, c.n.get_int("axis", 0), rank));
  const bool keepdims = c.n.get_int("keepdims", 1) != 0, last = c.n.get_int("select_last_index", 0) != 0;
  const axis_split s = split_at(x.shape(), axis);
  AMCTQ_CHECK(s.n > 0, errc::invalid_argument, c.where(), "cannot reduce the empty axis ", axis);
  std::vector<std::int64_t> shape = x.shape();
  if (keepdims) shape[axis] = 1;
  else shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(axis));
  tensor& y = c.make_output(0, dtype::int64, shape);
  std::int64_t* py = y.data<std::int64_t>();
  visit_numeric(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    for (std::int64_t o = 0; o < s.outer; ++o)
      for (std::int64_t i = 0; i < s.inner; ++i) {
        const T* p = px + o * s.n * s.inner + i;
        std::int64_t best = 0;
        for (std::int64_t k = 1; k < s.n; ++k) {
          const T v = p[k * s.inner], b = p[best * s.inner];
          const bool better = largest ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
          if (better) best = k;
        }
        py[o * s.inner + i] = best;
      }
  });
}

}  // namespace detail

inline void argmax(context& c) { detail::arg_extreme<true>(c); }
inline void argmin(context& c) { detail::arg_extreme<false>(c); }

/// TopK: the k largest (or smallest) along `axis`, sorted, with their int64 indices.
inline void topk(context& c) {
  std::int64_t k = 0;
  if (c.opset < 10) {
    c.require_inputs(1, 1);
    k = c.n.get_int("k", -1);
  } else {
    c.require_inputs(2, 2);
    const auto kv = int_values(c, c.input(1), "K");
    AMCTQ_CHECK(kv.size() == 1, errc::invalid_argument, c.where(), "K must hold one value, has ", kv.size());
    k = kv[0];
  }
  const tensor& x = c.input(0);
  const auto rank = static_cast<std::int64_t>(x.rank());
  AMCTQ_CHECK(rank >= 1, errc::shape_mismatch, c.where(), "input must have rank >= 1");
  const auto axis = static_cast<std::size_t>(normalize_axis(c, c.n.get_int("axis", -1), rank));
  const bool largest = c.n.get_int("largest", 1) != 0;
  const detail::axis_split s = detail::split_at(x.shape(), axis);
  AMCTQ_CHECK(k >= 0 && k <= s.n, errc::invalid_argument, c.where(), "k ", k, " is out of range for axis size ", s.n);
  std::vector<std::int64_t> shape = x.shape();
  shape[axis] = k;
  tensor& vals = c.make_output(0, x.type(), shape);
  tensor& idx = c.make_output(1, dtype::int64, shape);
  std::int64_t* pi = idx.data<std::int64_t>();
  visit_numeric(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* pv = vals.data<T>();
    std::vector<std::int64_t> order(static_cast<std::size_t>(s.n));
    for (std::int64_t o = 0; o < s.outer; ++o)
      for (std::int64_t i = 0; i < s.inner; ++i) {
        const T* p = px + o * s.n * s.inner + i;
        std::iota(order.begin(), order.end(), 0);
        // Strict order with the lower index first among equal values; NaN ranks as the largest.
        auto before = [&](std::int64_t a, std::int64_t b) {
          const T va = p[a * s.inner], vb = p[b * s.inner];
          if constexpr (std::is_floating_point_v<T>) {
            const bool na = std::isnan(va), nb = std::isnan(vb);
            if (na || nb) return na == nb ? a < b : (largest ? na : nb);
          }
          if (va != vb) return largest ? va > vb : va < vb;
          return a < b;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (std::int64_t j = 0; j < k; ++j) {
          const std::int64_t e = o * k * s.inner + j * s.inner + i;
          pi[e] = order[static_cast<std::size_t>(j)];
          pv[e] = p[order[static_cast<std::size_t>(j)] * s.inner];
        }
      }
  });
}

/// Range(start, limit, delta): max(ceil((limit - start) / delta), 0) values start + i * delta.
inline void range(context& c) {
  c.require_inputs(3, 3);
  const tensor& start = c.input(0);
  for (std::size_t i = 0; i < 3; ++i) {
    AMCTQ_CHECK(c.input(i).size() == 1, errc::invalid_argument, c.where(), "input ", i, " must be a scalar");
    AMCTQ_CHECK(c.input(i).type() == start.type(), errc::invalid_argument, c.where(), "input types differ");
  }
  visit_numeric(c, start.type(), [&](auto tag) {
    using T = decltype(tag);
    const T s = c.input(0).data<T>()[0], l = c.input(1).data<T>()[0], d = c.input(2).data<T>()[0];
    AMCTQ_CHECK(d != T(0), errc::invalid_argument, c.where(), "delta is zero");
    const double steps = std::ceil((static_cast<double>(l) - static_cast<double>(s)) / static_cast<double>(d));
    const auto n = static_cast<std::int64_t>(std::max(steps, 0.0));
    tensor& y = c.make_output(0, start.type(), {n});
    T* py = y.data<T>();
    T v = s;  // accumulated like ONNX Runtime (and the reference), not start + i * delta
    for (std::int64_t i = 0; i < n; ++i, v = static_cast<T>(v + d)) py[i] = v;
  });
}

/// Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the last two dims.
inline void trilu(context& c) {
  c.require_inputs(1, 2);
  const tensor& x = c.input(0);
  AMCTQ_CHECK(x.rank() >= 2, errc::shape_mismatch, c.where(), "input must have rank >= 2, has ", x.rank());
  std::int64_t k = 0;
  if (c.has_input(1)) {
    const auto kv = int_values(c, c.input(1), "k");
    AMCTQ_CHECK(kv.size() == 1, errc::invalid_argument, c.where(), "k must hold one value");
    k = kv[0];
  }
  const bool upper = c.n.get_int("upper", 1) != 0;
  const std::int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  tensor& y = c.make_output(0, x.type(), x.shape());
  y.bytes() = x.bytes();
  const std::size_t es = element_size(x.type());
  AMCTQ_CHECK(es > 0, errc::unsupported, c.where(), "element type ", to_string(x.type()), " is not supported");
  const std::int64_t mats = rows != 0 && cols != 0 ? static_cast<std::int64_t>(x.size()) / (rows * cols) : 0;
  for (std::int64_t m = 0; m < mats; ++m)
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j)
        if (upper ? j - i < k : j - i > k)
          std::memset(y.bytes().data() + static_cast<std::size_t>((m * rows + i) * cols + j) * es, 0, es);
}

/// OneHot(indices, depth, values = [off, on]) with the new axis at `axis`; negative indices
/// count from the end, out-of-range ones give an all-off row.
inline void onehot(context& c) {
  c.require_inputs(3, 3);
  const tensor& ind = c.input(0);
  const tensor& vals = c.input(2);
  AMCTQ_CHECK(vals.size() == 2, errc::invalid_argument, c.where(), "values must hold [off, on]");
  double depth_v = 0;
  visit_numeric(c, c.input(1).type(), [&](auto tag) { depth_v = static_cast<double>(c.input(1).data<decltype(tag)>()[0]); });
  const auto depth = static_cast<std::int64_t>(depth_v);
  AMCTQ_CHECK(depth > 0, errc::invalid_argument, c.where(), "depth ", depth, " must be positive");
  const auto out_rank = static_cast<std::int64_t>(ind.rank() + 1);
  const auto axis = static_cast<std::size_t>(normalize_axis(c, c.n.get_int("axis", -1), out_rank));
  std::vector<double> idx(ind.size());
  visit_numeric(c, ind.type(), [&](auto tag) {
    const auto* p = ind.data<decltype(tag)>();
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<double>(p[i]);
  });
  std::vector<std::int64_t> shape = ind.shape();
  shape.insert(shape.begin() + static_cast<std::ptrdiff_t>(axis), depth);
  tensor& y = c.make_output(0, vals.type(), shape);
  const detail::axis_split s = detail::split_at(shape, axis);
  visit_bytes(c, vals.type(), [&](auto tag) {
    using U = decltype(tag);
    const U* pv = reinterpret_cast<const U*>(vals.bytes().data());
    U* py = reinterpret_cast<U*>(y.bytes().data());
    std::fill(py, py + y.size(), pv[0]);
    for (std::int64_t o = 0; o < s.outer; ++o)
      for (std::int64_t i = 0; i < s.inner; ++i) {
        auto h = static_cast<std::int64_t>(idx[static_cast<std::size_t>(o * s.inner + i)]);
        if (h < 0) h += depth;
        if (h >= 0 && h < depth) py[(o * depth + h) * s.inner + i] = pv[1];
      }
  });
}

/// NonZero: the int64 [rank, count] coordinates of the non-zero elements, in row-major order.
inline void nonzero(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  std::vector<std::int64_t> flat;
  auto collect = [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    for (std::size_t i = 0; i < x.size(); ++i)
      if (p[i] != T(0)) flat.push_back(static_cast<std::int64_t>(i));
  };
  if (x.type() == dtype::boolean) collect(bool{});
  else visit_numeric(c, x.type(), collect);
  const auto r = static_cast<std::int64_t>(std::max<std::size_t>(x.rank(), 1)), n = static_cast<std::int64_t>(flat.size());
  tensor& y = c.make_output(0, dtype::int64, {x.rank() ? static_cast<std::int64_t>(x.rank()) : 1, n});
  std::int64_t* py = y.data<std::int64_t>();
  const auto st = strides_of(x.shape());
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t d = 0; d < r; ++d)
      py[d * n + j] = x.rank() ? flat[static_cast<std::size_t>(j)] / st[static_cast<std::size_t>(d)] %
                                     x.dim(static_cast<std::size_t>(d))
                               : 0;
}

/// The index ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table index_ops() {
  return {
      {"ArgMax", argmax}, {"ArgMin", argmin}, {"TopK", topk}, {"Range", range}, {"Trilu", trilu},
      {"OneHot", onehot}, {"NonZero", nonzero}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_INDEX_HPP
