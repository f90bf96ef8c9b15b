// Ops that move or describe data without arithmetic: Flatten, Reshape, Transpose, Concat,
// Squeeze, Unsqueeze, Identity, Dropout (inference), Pad, Shape, Gather, Constant,
// ConstantOfShape, Cast, CastLike. Any element type that has a fixed byte width.
#ifndef AMCTQ_GRAPH_OPS_SHAPE_HPP
#define AMCTQ_GRAPH_OPS_SHAPE_HPP

#include <algorithm>
#include <cmath>
#include <cstring>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

namespace detail {
inline void copy_reshaped(context& c, const tensor& x, std::vector<std::int64_t> shape) {
  AMCTQ_CHECK(numel(shape) == static_cast<std::int64_t>(x.size()), errc::shape_mismatch, c.where(), "cannot reshape ",
              shape_string(x.shape()), " to ", shape_string(shape));
  c.copy_output(0, x, std::move(shape));
}

/// Axes from the attribute (before `input_from_opset`) or from optional input `index`.
inline std::vector<std::int64_t> axes_of(const context& c, std::int64_t input_from_opset, std::size_t index) {
  if (c.opset < input_from_opset) return c.n.get_ints("axes");
  if (!c.has_input(index)) return {};
  return int_values(c, c.input(index), "axes");
}
}  // namespace detail

inline void identity(context& c) {
  c.require_inputs(1, 1);
  c.copy_output(0, c.input(0), c.input(0).shape());
}

/// Dropout at inference is the identity; its optional mask output is all true. Training mode
/// (opset 12's third input) with a non-zero ratio draws random masks: not reproducible, refused.
inline void dropout(context& c) {
  c.require_inputs(1, 3);
  if (c.has_input(2) && c.input(2).size() == 1 && c.input(2).type() == dtype::boolean && c.input(2).data<bool>()[0]) {
    double ratio = 0.5;
    if (c.has_input(1))
      visit_numeric(c, c.input(1).type(), [&](auto tag) { ratio = static_cast<double>(c.input(1).data<decltype(tag)>()[0]); });
    AMCTQ_CHECK(ratio == 0.0, errc::unsupported, c.where(), "training_mode with ratio ", ratio,
                " (random masks) is not supported");
  }
  c.out[0] = c.input(0);
  if (c.wants_output(1)) {
    tensor& m = c.make_output(1, dtype::boolean, c.input(0).shape());
    std::fill(m.data<bool>(), m.data<bool>() + m.size(), true);
  }
}

inline void flatten(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  const auto rank = static_cast<std::int64_t>(x.rank());
  std::int64_t axis = c.n.get_int("axis", 1);
  AMCTQ_CHECK(axis >= -rank && axis <= rank, errc::invalid_argument, c.where(), "axis ", axis,
              " is out of range for rank ", rank);
  if (axis < 0) axis += rank;  // Flatten's axis ranges over [-r, r]
  std::int64_t outer = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
  detail::copy_reshaped(c, x, {outer, outer ? static_cast<std::int64_t>(x.size()) / outer : 0});
}

inline void reshape(context& c) {
  std::vector<std::int64_t> shape;
  if (c.opset < 5) {
    c.require_inputs(1, 1);
    shape = c.n.get_ints("shape");
  } else {
    c.require_inputs(2, 2);
    shape = int_values(c, c.input(1), "shape");
  }
  const tensor& x = c.input(0);
  const bool allowzero = c.n.get_int("allowzero", 0) != 0;
  std::int64_t infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && !allowzero) {
      AMCTQ_CHECK(i < x.rank(), errc::shape_mismatch, c.where(), "shape[", i, "] = 0 copies a dim the input lacks");
      shape[i] = x.dim(i);
    }
    if (shape[i] == -1) {
      AMCTQ_CHECK(infer < 0, errc::invalid_argument, c.where(), "shape has more than one -1");
      infer = static_cast<std::int64_t>(i);
    } else {
      AMCTQ_CHECK(shape[i] >= 0, errc::invalid_argument, c.where(), "shape[", i, "] = ", shape[i], " is negative");
    }
  }
  std::vector<std::int64_t> given = shape;  // the -1 dim counts as 1
  if (infer >= 0) given[static_cast<std::size_t>(infer)] = 1;
  const std::int64_t known = numel(given);
  AMCTQ_CHECK(known >= 0, errc::shape_mismatch, c.where(), "target shape ", shape_string(shape),
              " holds more than 2^59 elements");
  if (infer >= 0) {
    AMCTQ_CHECK(known > 0 && static_cast<std::int64_t>(x.size()) % known == 0, errc::shape_mismatch, c.where(),
                "cannot infer the -1 dim reshaping ", shape_string(x.shape()), " to ", shape_string(shape));
    shape[static_cast<std::size_t>(infer)] = static_cast<std::int64_t>(x.size()) / known;
  }
  detail::copy_reshaped(c, x, shape);
}

namespace detail {
/// y = x read as `in_shape` with its dims permuted by `perm` (y's shape is already made): Transpose,
/// and DepthToSpace / SpaceToDepth as a reshape-transpose-reshape. Any fixed-width element type.
inline void permuted_copy(const context& c, const tensor& x, const std::vector<std::int64_t>& in_shape,
                          const std::vector<std::int64_t>& perm, tensor& y) {
  const auto xs = strides_of(in_shape);
  std::vector<std::int64_t> shape(perm.size()), in_strides(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    shape[i] = in_shape[static_cast<std::size_t>(perm[i])];
    in_strides[i] = xs[static_cast<std::size_t>(perm[i])];
  }
  visit_bytes(c, x.type(), [&](auto tag) {
    using U = decltype(tag);
    const U* px = reinterpret_cast<const U*>(x.bytes().data());
    U* py = reinterpret_cast<U*>(y.bytes().data());
    strided_walk<1>(shape, {in_strides}, [&](std::int64_t o, const std::array<std::int64_t, 1>& off, std::int64_t n,
                                             const std::array<std::int64_t, 1>& s) {
      for (std::int64_t i = 0; i < n; ++i) py[o + i] = px[off[0] + i * s[0]];
    });
  });
}
}  // namespace detail

inline void transpose(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  const std::size_t r = x.rank();
  std::vector<std::int64_t> perm = c.n.get_ints("perm");
  if (perm.empty())
    for (std::size_t i = 0; i < r; ++i) perm.push_back(static_cast<std::int64_t>(r - 1 - i));
  AMCTQ_CHECK(perm.size() == r, errc::invalid_argument, c.where(), "perm has ", perm.size(), " entries, rank is ", r);
  std::vector<bool> seen(r, false);
  std::vector<std::int64_t> shape(r);
  for (std::size_t i = 0; i < r; ++i) {
    perm[i] = normalize_axis(c, perm[i], static_cast<std::int64_t>(r), "perm entry");
    AMCTQ_CHECK(!seen[static_cast<std::size_t>(perm[i])], errc::invalid_argument, c.where(), "perm repeats axis ", perm[i]);
    seen[static_cast<std::size_t>(perm[i])] = true;
    shape[i] = x.dim(static_cast<std::size_t>(perm[i]));
  }
  detail::permuted_copy(c, x, x.shape(), perm, c.make_output(0, x.type(), shape));
}

inline void concat(context& c) {
  AMCTQ_CHECK(c.num_inputs() >= 1, errc::invalid_argument, c.where(), "expects at least one input");
  const tensor& first = c.input(0);
  const auto rank = static_cast<std::int64_t>(first.rank());
  AMCTQ_CHECK(c.n.find("axis") || c.opset < 4, errc::invalid_argument, c.where(), "attribute axis is required");
  const std::int64_t axis = normalize_axis(c, c.n.get_int("axis", 1), rank);
  std::vector<std::int64_t> shape = first.shape();
  shape[static_cast<std::size_t>(axis)] = 0;
  for (std::size_t i = 0; i < c.num_inputs(); ++i) {
    const tensor& t = c.input(i);
    AMCTQ_CHECK(t.type() == first.type() && t.rank() == first.rank(), errc::shape_mismatch, c.where(), "input ", i,
                " is ", to_string(t.type()), shape_string(t.shape()), ", input 0 is ", to_string(first.type()),
                shape_string(first.shape()));
    for (std::int64_t d = 0; d < rank; ++d)
      AMCTQ_CHECK(d == axis || t.dim(d) == first.dim(d), errc::shape_mismatch, c.where(), "input ", i, " ",
                  shape_string(t.shape()), " differs from input 0 ", shape_string(first.shape()), " off the axis");
    shape[static_cast<std::size_t>(axis)] += t.dim(static_cast<std::size_t>(axis));
  }
  tensor& y = c.make_output(0, first.type(), shape);
  std::int64_t outer = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= shape[d];
  const std::size_t es = element_size(first.type());
  const std::size_t out_row = y.size() / static_cast<std::size_t>(std::max<std::int64_t>(outer, 1)) * es;
  std::size_t col = 0;
  for (std::size_t i = 0; i < c.num_inputs(); ++i) {
    const tensor& t = c.input(i);
    const std::size_t row = outer ? t.size() / static_cast<std::size_t>(outer) * es : 0;
    for (std::int64_t o = 0; o < outer; ++o)
      if (row) std::memcpy(y.bytes().data() + o * out_row + col, t.bytes().data() + o * row, row);
    col += row;
  }
}

inline void squeeze(context& c) {
  c.require_inputs(1, 2);
  const tensor& x = c.input(0);
  const auto rank = static_cast<std::int64_t>(x.rank());
  std::vector<bool> drop(x.rank(), false);
  const auto axes = detail::axes_of(c, 13, 1);
  if (axes.empty()) {
    for (std::size_t d = 0; d < x.rank(); ++d) drop[d] = x.dim(d) == 1;
  }
  for (auto a : axes) {
    const std::int64_t d = normalize_axis(c, a, rank);
    AMCTQ_CHECK(x.dim(static_cast<std::size_t>(d)) == 1, errc::shape_mismatch, c.where(), "cannot squeeze axis ", d,
                " of size ", x.dim(static_cast<std::size_t>(d)));
    drop[static_cast<std::size_t>(d)] = true;
  }
  std::vector<std::int64_t> shape;
  for (std::size_t d = 0; d < x.rank(); ++d)
    if (!drop[d]) shape.push_back(x.dim(d));
  detail::copy_reshaped(c, x, shape);
}

inline void unsqueeze(context& c) {
  c.require_inputs(1, 2);
  const tensor& x = c.input(0);
  const auto axes = detail::axes_of(c, 13, 1);
  AMCTQ_CHECK(!axes.empty(), errc::invalid_argument, c.where(), "axes are required");
  const auto out_rank = static_cast<std::int64_t>(x.rank() + axes.size());
  std::vector<bool> added(static_cast<std::size_t>(out_rank), false);
  for (auto a : axes) {
    const std::int64_t d = normalize_axis(c, a, out_rank);
    AMCTQ_CHECK(!added[static_cast<std::size_t>(d)], errc::invalid_argument, c.where(), "axes repeat ", d);
    added[static_cast<std::size_t>(d)] = true;
  }
  std::vector<std::int64_t> shape;
  std::size_t k = 0;
  for (std::int64_t d = 0; d < out_rank; ++d) shape.push_back(added[static_cast<std::size_t>(d)] ? 1 : x.dim(k++));
  detail::copy_reshaped(c, x, shape);
}

/// Pad: constant, reflect, edge and wrap. Pads are an attribute before opset 11, an input after; opset
/// 18 adds an optional `axes` input restricting which dims the pads address. Negative pads crop.
inline void pad(context& c) {
  const tensor& x = c.input(0);
  const auto rank = static_cast<std::int64_t>(x.rank());
  std::vector<std::int64_t> pads;
  double value = 0;
  if (c.opset < 11) {
    c.require_inputs(1, 1);
    pads = c.n.get_ints(c.opset < 2 ? "paddings" : "pads");
    value = c.n.get_float("value", 0.0f);
  } else {
    c.require_inputs(2, 4);
    pads = int_values(c, c.input(1), "pads");
    if (c.has_input(2) && c.input(2).size() > 0) {
      const tensor& v = c.input(2);
      AMCTQ_CHECK(v.type() == x.type(), errc::invalid_argument, c.where(), "constant_value type differs from data");
      visit_numeric(c, v.type(), [&](auto tag) { value = static_cast<double>(v.data<decltype(tag)>()[0]); });
    }
  }
  std::vector<std::int64_t> begin(x.rank(), 0), end(x.rank(), 0);
  std::vector<std::int64_t> axes;
  if (c.opset >= 18 && c.has_input(3)) axes = int_values(c, c.input(3), "axes");
  else for (std::int64_t d = 0; d < rank; ++d) axes.push_back(d);
  AMCTQ_CHECK(pads.size() == 2 * axes.size(), errc::invalid_argument, c.where(), "pads has ", pads.size(),
              " values, expected ", 2 * axes.size());
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const auto d = static_cast<std::size_t>(normalize_axis(c, axes[i], rank));
    begin[d] = pads[i];
    end[d] = pads[axes.size() + i];
  }
  const std::string mode = c.n.get_string("mode", "constant");
  AMCTQ_CHECK(mode == "constant" || mode == "reflect" || mode == "edge" || mode == "wrap", errc::unsupported, c.where(), "pad mode '",
              mode, "' is not supported");
  std::vector<std::int64_t> shape(x.rank());
  for (std::size_t d = 0; d < x.rank(); ++d) {
    shape[d] = x.dim(d) + begin[d] + end[d];
    AMCTQ_CHECK(shape[d] >= 0, errc::shape_mismatch, c.where(), "pads make dim ", d, " negative");
    AMCTQ_CHECK(mode == "constant" || x.dim(d) > 0 || shape[d] == 0, errc::shape_mismatch, c.where(), mode,
                " padding of an empty dim ", d);
    AMCTQ_CHECK(mode != "reflect" || (begin[d] < x.dim(d) && end[d] < x.dim(d)) || x.dim(d) == 1, errc::shape_mismatch,
                c.where(), "reflect pads on dim ", d, " must be smaller than its size ", x.dim(d));
  }
  tensor& y = c.make_output(0, x.type(), shape);
  const auto xs = strides_of(x.shape());
  visit_numeric(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T fill = static_cast<T>(value);
    std::vector<std::int64_t> idx(x.rank(), 0);
    for (std::size_t o = 0; o < y.size(); ++o) {
      std::int64_t off = 0;
      bool inside = true;
      for (std::size_t d = 0; d < x.rank(); ++d) {
        std::int64_t i = idx[d] - begin[d];
        const std::int64_t n = x.dim(d);
        if (i < 0 || i >= n) {
          if (mode == "constant") { inside = false; break; }
          if (mode == "edge") i = i < 0 ? 0 : n - 1;
          else if (mode == "wrap") i = ((i % n) + n) % n;
          else if (n == 1) i = 0;
          else {  // reflect without repeating the edge, period 2(n-1)
            const std::int64_t p = 2 * (n - 1);
            i = ((i % p) + p) % p;
            if (i >= n) i = p - i;
          }
        }
        off += i * xs[d];
      }
      py[o] = inside ? px[off] : fill;
      for (std::size_t d = x.rank(); d-- > 0;) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

/// Shape with opset 15's optional [start, end) slice.
inline void shape_op(context& c) {
  c.require_inputs(1, 1);
  const auto& s = c.input(0).shape();
  const auto r = static_cast<std::int64_t>(s.size());
  auto clampi = [r](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + r : v, 0, r); };
  const std::int64_t b = clampi(c.n.get_int("start", 0)), e = clampi(c.n.get_int("end", r));
  std::vector<std::int64_t> v(s.begin() + b, s.begin() + std::max(b, e));
  c.out[0] = tensor::from<std::int64_t>({static_cast<std::int64_t>(v.size())}, v);
}

inline void size_op(context& c) {
  c.require_inputs(1, 1);
  c.out[0] = tensor::from<std::int64_t>({}, {static_cast<std::int64_t>(c.input(0).size())});
}

inline void gather(context& c) {
  c.require_inputs(2, 2);
  const tensor& x = c.input(0);
  const tensor& ind = c.input(1);
  const auto rank = static_cast<std::int64_t>(x.rank());
  AMCTQ_CHECK(rank >= 1, errc::shape_mismatch, c.where(), "data must have rank >= 1");
  const auto axis = static_cast<std::size_t>(normalize_axis(c, c.n.get_int("axis", 0), rank));
  auto idx = int_values(c, ind, "indices");
  const std::int64_t n = x.dim(axis);
  for (auto& i : idx) {
    AMCTQ_CHECK(i >= -n && i < n, errc::invalid_argument, c.where(), "index ", i, " is out of range for axis size ", n);
    if (i < 0) i += n;
  }
  std::vector<std::int64_t> shape(x.shape().begin(), x.shape().begin() + axis);
  shape.insert(shape.end(), ind.shape().begin(), ind.shape().end());
  shape.insert(shape.end(), x.shape().begin() + axis + 1, x.shape().end());
  tensor& y = c.make_output(0, x.type(), shape);
  std::int64_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= x.dim(d);
  for (std::size_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  const std::size_t es = element_size(x.type());
  AMCTQ_CHECK(es > 0, errc::unsupported, c.where(), "element type ", to_string(x.type()), " is not supported");
  const std::size_t chunk = static_cast<std::size_t>(inner) * es;
  std::byte* dst = y.bytes().data();
  for (std::int64_t o = 0; o < outer; ++o)
    for (auto i : idx) {
      std::memcpy(dst, x.bytes().data() + (static_cast<std::size_t>(o * n + i)) * chunk, chunk);
      dst += chunk;
    }
}

inline void constant(context& c) {
  c.require_inputs(0, 0);
  AMCTQ_CHECK(c.n.attributes.size() == 1, errc::invalid_argument, c.where(), "needs exactly one value attribute, has ",
              c.n.attributes.size());
  const attribute& a = c.n.attributes[0];
  if (a.name == "value") c.out[0] = a.t;
  else if (a.name == "value_float") c.out[0] = tensor::from<float>({}, {a.f});
  else if (a.name == "value_floats") c.out[0] = tensor::from<float>({static_cast<std::int64_t>(a.floats.size())}, a.floats);
  else if (a.name == "value_int") c.out[0] = tensor::from<std::int64_t>({}, {a.i});
  else if (a.name == "value_ints") c.out[0] = tensor::from<std::int64_t>({static_cast<std::int64_t>(a.ints.size())}, a.ints);
  else AMCTQ_THROW(errc::unsupported, c.where(), "attribute '", a.name, "' is not supported");
}

inline void constant_of_shape(context& c) {
  c.require_inputs(1, 1);
  const auto shape = int_values(c, c.input(0), "shape");
  const attribute* v = c.n.find("value");
  const dtype t = v ? v->t.type() : dtype::float32;
  tensor& y = c.make_output(0, t, shape);
  if (!v) return;  // zeros
  AMCTQ_CHECK(v->t.size() == 1, errc::invalid_argument, c.where(), "value must hold one element");
  const std::size_t es = element_size(t);
  for (std::size_t i = 0; i < y.size(); ++i) std::memcpy(y.bytes().data() + i * es, v->t.bytes().data(), es);
}

namespace detail {

/// Output 0 = input 0 converted to `to`: between the numeric types and bool (float to int
/// truncates toward zero, like C).
inline void cast_to(context& c, dtype to) {
  const tensor& x = c.input(0);
  tensor& y = c.make_output(0, to, x.shape());
  auto visit_with_bool = [&](dtype t, auto&& f) {
    if (t == dtype::boolean) f(bool{});
    else visit_numeric(c, t, f);
  };
  visit_with_bool(x.type(), [&](auto from_tag) {
    using F = decltype(from_tag);
    visit_with_bool(to, [&](auto to_tag) {
      using T = decltype(to_tag);
      const F* px = x.data<F>();
      T* py = y.data<T>();
      for (std::size_t i = 0; i < x.size(); ++i) {
        if constexpr (std::is_same_v<T, bool>) py[i] = px[i] != F(0);
        else py[i] = static_cast<T>(px[i]);
      }
    });
  });
}

}  // namespace detail

/// Cast to the type attribute `to`.
inline void cast(context& c) {
  c.require_inputs(1, 1);
  detail::cast_to(c, static_cast<dtype>(c.n.get_int("to", 0)));
}

/// CastLike (opset 15): Cast to the element type of input 1.
inline void cast_like(context& c) {
  c.require_inputs(2, 2);
  detail::cast_to(c, c.input(1).type());
}

/// The shape ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table shape_ops() {
  return {
      {"Flatten", flatten}, {"Reshape", reshape}, {"Transpose", transpose}, {"Concat", concat},
      {"Squeeze", squeeze}, {"Unsqueeze", unsqueeze}, {"Identity", identity}, {"Dropout", dropout},
      {"Pad", pad}, {"Shape", shape_op}, {"Size", size_op}, {"Gather", gather}, {"Constant", constant},
      {"ConstantOfShape", constant_of_shape}, {"Cast", cast},
      {"CastLike", cast_like}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_SHAPE_HPP
