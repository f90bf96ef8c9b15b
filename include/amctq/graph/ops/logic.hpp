// Comparisons (Equal, Less, Greater, LessOrEqual, GreaterOrEqual: numeric or bool in, bool out),
// logic (Not, And, Or, Xor on bool), Where, and the integer bit ops (BitwiseAnd / Or / Xor / Not,
// BitShift), all with numpy multidirectional broadcasting.
#ifndef AMCTQ_GRAPH_OPS_LOGIC_HPP
#define AMCTQ_GRAPH_OPS_LOGIC_HPP

#include <array>
#include <cstdint>
#include <string>
#include <type_traits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

namespace detail {

/// Calls f(T{}) for the numeric types and bool.
template <class F>
void visit_numeric_or_bool(const context& c, dtype t, F&& f) {
  if (t == dtype::boolean) f(bool{});
  else visit_numeric(c, t, f);
}

/// Output 0 (bool) = cmp(a, b) over the broadcast of two inputs of one type.
template <class Cmp>
void compare(context& c, Cmp cmp) {
  const binary_operands io = broadcast_operands(c, dtype::boolean);
  visit_numeric_or_bool(c, io.a.type(), [&](auto tag) {
    using T = decltype(tag);
    broadcast_binary<T, T, bool>(io.a, io.b, io.out, [&](T x, T y) { return cmp(x, y); });
  });
}

/// Output 0 (bool) = op(a, b) over the broadcast of two bool inputs.
template <class Op>
void logical(context& c, Op op) {
  const binary_operands io = broadcast_operands(c, dtype::boolean);
  c.require_type(io.a, dtype::boolean, "input");
  broadcast_binary<bool, bool, bool>(io.a, io.b, io.out, op);
}

}  // namespace detail

inline void equal(context& c) { detail::compare(c, [](auto x, auto y) { return x == y; }); }
inline void less(context& c) { detail::compare(c, [](auto x, auto y) { return x < y; }); }
inline void greater(context& c) { detail::compare(c, [](auto x, auto y) { return x > y; }); }
inline void less_or_equal(context& c) { detail::compare(c, [](auto x, auto y) { return x <= y; }); }
inline void greater_or_equal(context& c) { detail::compare(c, [](auto x, auto y) { return x >= y; }); }

inline void and_op(context& c) { detail::logical(c, [](bool x, bool y) { return x && y; }); }
inline void or_op(context& c) { detail::logical(c, [](bool x, bool y) { return x || y; }); }
inline void xor_op(context& c) { detail::logical(c, [](bool x, bool y) { return x != y; }); }

inline void not_op(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  c.require_type(x, dtype::boolean, "input");
  tensor& y = c.make_output(0, dtype::boolean, x.shape());
  map_elements<bool, bool>(x, y, [](bool v) { return !v; });
}

/// Where(condition, X, Y): X where condition else Y, the three broadcast together; X and Y of
/// one type (any fixed-width type: the values are moved, not computed on).
inline void where(context& c) {
  c.require_inputs(3, 3);
  const tensor& cond = c.input(0);
  const tensor& x = c.input(1);
  const tensor& y = c.input(2);
  c.require_type(cond, dtype::boolean, "condition");
  AMCTQ_CHECK(x.type() == y.type(), errc::invalid_argument, c.where(), "X and Y types differ: ", to_string(x.type()),
              " and ", to_string(y.type()));
  AMCTQ_CHECK(!is_packed_4bit(x.type()), errc::unsupported, c.where(), "element type ", to_string(x.type()),
              " is not supported");
  const auto shape = broadcast_shapes(c, broadcast_shapes(c, cond.shape(), x.shape()), y.shape());
  tensor& out = c.make_output(0, x.type(), shape);
  visit_bytes(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    const bool* pc = cond.data<bool>();
    const T* px = reinterpret_cast<const T*>(x.bytes().data());
    const T* py = reinterpret_cast<const T*>(y.bytes().data());
    T* po = reinterpret_cast<T*>(out.bytes().data());
    strided_walk<3>(shape,
                    {broadcast_strides(cond.shape(), shape), broadcast_strides(x.shape(), shape),
                     broadcast_strides(y.shape(), shape)},
                    [&](std::int64_t o, const std::array<std::int64_t, 3>& off, std::int64_t n,
                        const std::array<std::int64_t, 3>& s) {
                      const bool* cc = pc + off[0];
                      const T* xx = px + off[1];
                      const T* yy = py + off[2];
                      T* z = po + o;
                      for (std::int64_t i = 0; i < n; ++i) z[i] = cc[i * s[0]] ? xx[i * s[1]] : yy[i * s[2]];
                    });
  });
}

namespace detail {

/// Calls f(T{}) for the integer types; floats are refused naming the node.
template <class F>
void visit_integer(const context& c, dtype t, F&& f) {
  visit_numeric(c, t, [&](auto tag) {
    if constexpr (std::is_integral_v<decltype(tag)>) f(tag);
    else AMCTQ_THROW(errc::unsupported, c.where(), "element type ", to_string(t), " is not an integer type");
  });
}

template <class Op>
void bitwise(context& c, Op op) {
  const binary_operands io = broadcast_operands(c);
  visit_integer(c, io.a.type(), [&](auto tag) {
    using T = decltype(tag);
    broadcast_binary<T, T, T>(io.a, io.b, io.out, [&](T x, T y) { return static_cast<T>(op(x, y)); });
  });
}

/// x shifted by y bits, as numpy does: a shift outside [0, width) gives 0, or -1 for a right
/// shift of a negative x (the sign bit fills the result); left shifts drop the bits shifted out.
template <class T>
T shift(T x, T y, bool left) {
  constexpr int width = static_cast<int>(sizeof(T) * 8);
  using U = std::make_unsigned_t<T>;
  if (static_cast<std::uint64_t>(y) >= static_cast<std::uint64_t>(width)) {  // a negative y converts to a huge one
    if constexpr (std::is_signed_v<T>) return !left && x < 0 ? T(-1) : T(0);
    else return T(0);
  }
  const int s = static_cast<int>(y);
  return left ? static_cast<T>(static_cast<U>(static_cast<U>(x) << s)) : static_cast<T>(x >> s);
}

}  // namespace detail

inline void bitwise_and(context& c) { detail::bitwise(c, [](auto x, auto y) { return x & y; }); }
inline void bitwise_or(context& c) { detail::bitwise(c, [](auto x, auto y) { return x | y; }); }
inline void bitwise_xor(context& c) { detail::bitwise(c, [](auto x, auto y) { return x ^ y; }); }

inline void bitwise_not(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  tensor& y = c.make_output(0, x.type(), x.shape());
  detail::visit_integer(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    map_elements<T, T>(x, y, [](T v) { return static_cast<T>(~v); });
  });
}

/// BitShift: `direction` LEFT or RIGHT (required).
inline void bit_shift(context& c) {
  const std::string direction = c.n.get_string("direction", "");
  AMCTQ_CHECK(direction == "LEFT" || direction == "RIGHT", errc::invalid_argument, c.where(),
              "direction must be LEFT or RIGHT, got '", direction, "'");
  const bool left = direction == "LEFT";
  detail::bitwise(c, [left](auto x, auto y) { return detail::shift(x, y, left); });
}

/// The comparison and logic ops, by op_type (default domain). Adding one: its function above and
/// one entry here.
inline op_table logic_ops() {
  return {
      {"Equal", equal}, {"Less", less}, {"Greater", greater}, {"LessOrEqual", less_or_equal},
      {"GreaterOrEqual", greater_or_equal}, {"And", and_op}, {"Or", or_op}, {"Xor", xor_op}, {"Not", not_op},
      {"Where", where}, {"BitwiseAnd", bitwise_and}, {"BitwiseOr", bitwise_or}, {"BitwiseXor", bitwise_xor},
      {"BitwiseNot", bitwise_not}, {"BitShift", bit_shift}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_LOGIC_HPP
