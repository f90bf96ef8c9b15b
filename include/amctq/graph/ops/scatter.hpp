// Element-indexed reads and writes: GatherElements, ScatterElements (and its opset 9 name Scatter),
// ScatterND. Plain copies go by element size (any fixed-width type); the add / mul / max / min
// reductions compute in the numeric types.
#ifndef AMCTQ_GRAPH_OPS_SCATTER_HPP
#define AMCTQ_GRAPH_OPS_SCATTER_HPP

#include <algorithm>
#include <cstring>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

namespace detail {
/// Index `i` of a dim of size n, negative counting from the end; throws when out of range.
inline std::int64_t checked_index(const context& c, std::int64_t i, std::int64_t n) {
  AMCTQ_CHECK(i >= -n && i < n, errc::invalid_argument, c.where(), "index ", i, " is out of range for dim size ", n);
  return i < 0 ? i + n : i;
}

/// For every element k of `ind` (same rank as `data_shape`): the flat offset into data with the
/// element's own coordinates except `axis`, which takes the index value. f(k, offset).
template <class F>
void for_each_element_index(const context& c, const tensor& ind, const std::vector<std::int64_t>& data_shape,
                            std::size_t axis, F&& f) {
  AMCTQ_CHECK(ind.rank() == data_shape.size(), errc::shape_mismatch, c.where(), "indices ", shape_string(ind.shape()),
              " and data ", shape_string(data_shape), " differ in rank");
  for (std::size_t d = 0; d < ind.rank(); ++d)
    AMCTQ_CHECK(d == axis || ind.dim(d) <= data_shape[d], errc::shape_mismatch, c.where(), "indices ",
                shape_string(ind.shape()), " exceed data ", shape_string(data_shape), " off the axis");
  const auto idx = int_values(c, ind, "indices");
  const auto ds = strides_of(data_shape);
  const std::int64_t n = data_shape[axis];
  std::vector<std::int64_t> pos(ind.rank(), 0);
  std::int64_t base = 0;  // offset of pos without the axis coordinate
  for (std::size_t k = 0; k < idx.size(); ++k) {
    f(k, base + checked_index(c, idx[k], n) * ds[axis]);
    for (std::size_t d = ind.rank(); d-- > 0;) {
      if (d != axis) base += ds[d];
      if (++pos[d] < ind.dim(d)) break;
      if (d != axis) base -= ds[d] * ind.dim(d);
      pos[d] = 0;
    }
  }
}

enum class reduction { none, add, mul, max, min };

inline reduction reduction_of(const context& c) {
  const std::string r = c.n.get_string("reduction", "none");
  if (r == "none") return reduction::none;
  if (r == "add") return reduction::add;
  if (r == "mul") return reduction::mul;
  if (r == "max") return reduction::max;
  AMCTQ_CHECK(r == "min", errc::unsupported, c.where(), "reduction '", r, "' is not supported");
  return reduction::min;
}

/// dst[i] (op)= src[j] for `count` consecutive elements.
template <class T>
void reduce_into(reduction r, T* dst, const T* src, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) switch (r) {
      case reduction::none: dst[i] = src[i]; break;
      case reduction::add: dst[i] = static_cast<T>(dst[i] + src[i]); break;
      case reduction::mul: dst[i] = static_cast<T>(dst[i] * src[i]); break;
      case reduction::max: dst[i] = std::max(dst[i], src[i]); break;
      case reduction::min: dst[i] = std::min(dst[i], src[i]); break;
    }
}

/// Output 0 = data, then f(T* output, const T* updates) writes the updates into it, T byte-wide
/// unsigned for plain copies (any element type) and the numeric type for reductions.
template <class F>
void scatter_into_copy(context& c, const tensor& x, const tensor& upd, reduction r, F&& f) {
  c.out[0] = x;
  auto typed = [&](auto tag) {
    using T = decltype(tag);
    f(reinterpret_cast<T*>(c.out[0].bytes().data()), reinterpret_cast<const T*>(upd.bytes().data()));
  };
  if (r == reduction::none) visit_bytes(c, x.type(), typed);
  else visit_numeric(c, x.type(), typed);
}
}  // namespace detail

inline void gather_elements(context& c) {
  c.require_inputs(2, 2);
  const tensor& x = c.input(0);
  const tensor& ind = c.input(1);
  const auto axis = static_cast<std::size_t>(normalize_axis(c, c.n.get_int("axis", 0), static_cast<std::int64_t>(x.rank())));
  tensor& y = c.make_output(0, x.type(), ind.shape());
  visit_bytes(c, x.type(), [&](auto tag) {
    using U = decltype(tag);
    const U* px = reinterpret_cast<const U*>(x.bytes().data());
    U* py = reinterpret_cast<U*>(y.bytes().data());
    detail::for_each_element_index(c, ind, x.shape(), axis, [&](std::size_t k, std::int64_t off) { py[k] = px[off]; });
  });
}

/// ScatterElements (opset 11; reduction add / mul from 16, max / min from 18) and Scatter (opset 9).
inline void scatter_elements(context& c) {
  c.require_inputs(3, 3);
  const tensor& x = c.input(0);
  const tensor& ind = c.input(1);
  const tensor& upd = c.input(2);
  AMCTQ_CHECK(upd.type() == x.type() && upd.shape() == ind.shape(), errc::shape_mismatch, c.where(), "updates ",
              shape_string(upd.shape()), " must match indices ", shape_string(ind.shape()), " and data's type");
  const auto axis = static_cast<std::size_t>(normalize_axis(c, c.n.get_int("axis", 0), static_cast<std::int64_t>(x.rank())));
  const auto r = detail::reduction_of(c);
  detail::scatter_into_copy(c, x, upd, r, [&](auto* py, const auto* pu) {
    detail::for_each_element_index(c, ind, x.shape(), axis,
                                   [&](std::size_t k, std::int64_t off) { detail::reduce_into(r, py + off, pu + k, 1); });
  });
}

/// ScatterND: each index tuple (the last dim of `indices`) addresses a slice of data that the
/// matching slice of `updates` replaces or reduces into (add / mul from opset 16, max / min from 18).
inline void scatter_nd(context& c) {
  c.require_inputs(3, 3);
  const tensor& x = c.input(0);
  const tensor& ind = c.input(1);
  const tensor& upd = c.input(2);
  AMCTQ_CHECK(ind.rank() >= 1, errc::shape_mismatch, c.where(), "indices must have rank >= 1");
  const std::size_t k = static_cast<std::size_t>(ind.dim(ind.rank() - 1));
  AMCTQ_CHECK(k <= x.rank(), errc::shape_mismatch, c.where(), "index tuples of length ", k, " for data of rank ", x.rank());
  std::vector<std::int64_t> want(ind.shape().begin(), ind.shape().end() - 1);
  want.insert(want.end(), x.shape().begin() + static_cast<std::ptrdiff_t>(k), x.shape().end());
  AMCTQ_CHECK(upd.type() == x.type() && upd.shape() == want, errc::shape_mismatch, c.where(), "updates ",
              shape_string(upd.shape()), " must be ", shape_string(want), " of data's type");
  const auto r = detail::reduction_of(c);
  const auto idx = int_values(c, ind, "indices");
  const auto ds = strides_of(x.shape());
  std::size_t slice = 1;
  for (std::size_t d = k; d < x.rank(); ++d) slice *= static_cast<std::size_t>(x.dim(d));
  const auto tuples = static_cast<std::size_t>(numel({ind.shape().begin(), ind.shape().end() - 1}));
  detail::scatter_into_copy(c, x, upd, r, [&](auto* py, const auto* pu) {
    for (std::size_t t = 0; t < tuples; ++t) {
      std::int64_t off = 0;
      for (std::size_t d = 0; d < k; ++d) off += detail::checked_index(c, idx[t * k + d], x.dim(d)) * ds[d];
      detail::reduce_into(r, py + off, pu + t * slice, slice);
    }
  });
}

/// The scatter / gather-elements ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table scatter_ops() {
  return {{"GatherElements", gather_elements},
          {"ScatterElements", scatter_elements},
          {"Scatter", scatter_elements},
          {"ScatterND", scatter_nd}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_SCATTER_HPP
