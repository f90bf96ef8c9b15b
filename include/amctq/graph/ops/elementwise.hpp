// Add, Sub, Mul, Div (and the variadic Sum, Max, Min, Mean) with numpy multidirectional broadcasting.
#ifndef AMCTQ_GRAPH_OPS_ELEMENTWISE_HPP
#define AMCTQ_GRAPH_OPS_ELEMENTWISE_HPP

#include <array>
#include <cstdint>
#include <type_traits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

namespace detail {

template <class Op>
void binary_op(context& c, Op op) {
  const binary_operands io = broadcast_operands(c);
  visit_numeric(c, io.a.type(), [&](auto tag) {
    using T = decltype(tag);
    broadcast_binary<T, T, T>(io.a, io.b, io.out, [&](T x, T y) { return op(x, y); });
  });
}

struct div_op {
  const context* c;
  template <class T>
  T operator()(T x, T y) const {
    if constexpr (std::is_integral_v<T>) {
      AMCTQ_CHECK(y != 0, errc::invalid_argument, c->where(), "integer division by zero");
      return static_cast<T>(x / y);  // ONNX integer Div truncates, like C++
    } else {
      return x / y;
    }
  }
};

}  // namespace detail

inline void add(context& c) { detail::binary_op(c, [](auto x, auto y) { return static_cast<decltype(x)>(x + y); }); }
inline void sub(context& c) { detail::binary_op(c, [](auto x, auto y) { return static_cast<decltype(x)>(x - y); }); }
inline void mul(context& c) { detail::binary_op(c, [](auto x, auto y) { return static_cast<decltype(x)>(x * y); }); }
inline void div(context& c) { detail::binary_op(c, detail::div_op{&c}); }

namespace detail {

// A left fold of a broadcasting binary op over one or more inputs (Sum, Max, Min, Mean).
template <class Op>
tensor variadic_fold(context& c, Op op) {
  AMCTQ_CHECK(c.num_inputs() >= 1, errc::invalid_argument, c.where(), "expects at least one input");
  tensor acc = c.input(0);
  for (std::size_t i = 1; i < c.num_inputs(); ++i) {
    const tensor& b = c.input(i);
    AMCTQ_CHECK(acc.type() == b.type(), errc::invalid_argument, c.where(), "input types differ");
    tensor out(acc.type(), broadcast_shapes(c, acc.shape(), b.shape()));
    visit_numeric(c, acc.type(), [&](auto tag) {
      using T = decltype(tag);
      broadcast_binary<T, T, T>(acc, b, out, [&](T x, T y) { return op(x, y); });
    });
    acc = std::move(out);
  }
  return acc;
}

// The larger (take_larger) or smaller of two values; NaN wins, as in ONNX Runtime's Max / Min.
template <bool take_larger>
struct extreme_op {
  template <class T>
  T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (x != x) return x;
      if (y != y) return y;
    }
    return (take_larger ? x < y : y < x) ? y : x;
  }
};

}  // namespace detail

/// Sum: a left fold of Add over any number of inputs (old ResNets in the ONNX zoo use it).
inline void sum(context& c) {
  c.out[0] = detail::variadic_fold(c, [](auto x, auto y) { return static_cast<decltype(x)>(x + y); });
}
inline void max(context& c) { c.out[0] = detail::variadic_fold(c, detail::extreme_op<true>{}); }
inline void min(context& c) { c.out[0] = detail::variadic_fold(c, detail::extreme_op<false>{}); }

/// Mean: the sum of the inputs divided by their count (float types only, as ONNX defines it).
inline void mean(context& c) {
  tensor acc = detail::variadic_fold(c, [](auto x, auto y) { return static_cast<decltype(x)>(x + y); });
  c.require_type(acc, dtype::float32, "input");
  const float n = static_cast<float>(c.num_inputs());
  for (float* p = acc.data<float>(), *e = p + acc.size(); p != e; ++p) *p /= n;
  c.out[0] = std::move(acc);
}

/// The elementwise ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table elementwise_ops() {
  return {
      {"Add", add}, {"Sub", sub}, {"Mul", mul}, {"Div", div}, {"Sum", sum}, {"Max", max}, {"Min", min},
      {"Mean", mean}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_ELEMENTWISE_HPP
