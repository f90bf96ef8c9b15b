// Elementwise math: Sqrt, Exp, Log, Erf, Reciprocal, Floor, Ceil, Round, the trigonometric and
// hyperbolic functions (float32 / float64); Neg, Abs, Sign (every numeric type); IsNaN, IsInf
// (float in, bool out); Pow (broadcasting, base and exponent of different numeric types); Mod.
#ifndef AMCTQ_GRAPH_OPS_MATH_HPP
#define AMCTQ_GRAPH_OPS_MATH_HPP

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

// One input, float32 / float64, same shape and type out.
#define AMCTQ_FLOAT_MATH_OP(name, fn)                    \
  inline void name(context& c) {                         \
    c.require_inputs(1, 1);                              \
    unary_float(c, [](auto v) { return fn(v); });        \
  }
AMCTQ_FLOAT_MATH_OP(sqrt_op, std::sqrt)
AMCTQ_FLOAT_MATH_OP(exp_op, std::exp)
AMCTQ_FLOAT_MATH_OP(log_op, std::log)
AMCTQ_FLOAT_MATH_OP(erf_op, std::erf)
AMCTQ_FLOAT_MATH_OP(floor_op, std::floor)
AMCTQ_FLOAT_MATH_OP(ceil_op, std::ceil)
AMCTQ_FLOAT_MATH_OP(round_op, std::nearbyint)  // halves to even (the default rounding mode)
AMCTQ_FLOAT_MATH_OP(sin_op, std::sin)
AMCTQ_FLOAT_MATH_OP(cos_op, std::cos)
AMCTQ_FLOAT_MATH_OP(tan_op, std::tan)
AMCTQ_FLOAT_MATH_OP(asin_op, std::asin)
AMCTQ_FLOAT_MATH_OP(acos_op, std::acos)
AMCTQ_FLOAT_MATH_OP(atan_op, std::atan)
AMCTQ_FLOAT_MATH_OP(sinh_op, std::sinh)
AMCTQ_FLOAT_MATH_OP(cosh_op, std::cosh)
AMCTQ_FLOAT_MATH_OP(asinh_op, std::asinh)
AMCTQ_FLOAT_MATH_OP(acosh_op, std::acosh)
AMCTQ_FLOAT_MATH_OP(atanh_op, std::atanh)
#undef AMCTQ_FLOAT_MATH_OP

inline void reciprocal(context& c) {
  c.require_inputs(1, 1);
  unary_float(c, [](auto v) { return decltype(v)(1) / v; });
}

inline void neg(context& c) {
  c.require_inputs(1, 1);
  unary_numeric(c, [](auto v) { return static_cast<decltype(v)>(-v); });
}

inline void abs_op(context& c) {
  c.require_inputs(1, 1);
  unary_numeric(c, [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_unsigned_v<T>) return v;
    else if constexpr (std::is_floating_point_v<T>) return std::abs(v);
    else return static_cast<T>(v < 0 ? -v : v);
  });
}

/// Sign: -1, 0 or 1; NaN stays NaN.
inline void sign(context& c) {
  c.require_inputs(1, 1);
  unary_numeric(c, [](auto v) {
    using T = decltype(v);
    return v > T(0) ? T(1) : v < T(0) ? static_cast<T>(-1) : v;
  });
}

namespace detail {

/// Output 0 (bool) = pred(input 0) for float32 / float64 input.
template <class P>
void float_predicate(context& c, P pred) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  tensor& y = c.make_output(0, dtype::boolean, x.shape());
  visit_float(c, x.type(), [&](auto tag) { map_elements<decltype(tag), bool>(x, y, pred); });
}

}  // namespace detail

inline void is_nan(context& c) {
  detail::float_predicate(c, [](auto v) { return v != v; });
}

/// IsInf: detect_positive / detect_negative (both default 1) choose which infinities count.
inline void is_inf(context& c) {
  const bool pos = c.n.get_int("detect_positive", 1) != 0, neg_inf = c.n.get_int("detect_negative", 1) != 0;
  detail::float_predicate(c, [=](auto v) { return std::isinf(v) && (v > 0 ? pos : neg_inf); });
}

namespace detail {

/// Integer power by squaring (non-negative exponent); wraps like ONNX Runtime on overflow.
template <class T, class E>
T int_pow(T base, E e) {
  using U = std::make_unsigned_t<T>;
  U r = 1, b = static_cast<U>(base);
  for (auto k = static_cast<std::uint64_t>(e); k; k >>= 1) {
    if (k & 1) r = static_cast<U>(r * b);
    b = static_cast<U>(b * b);
  }
  return static_cast<T>(r);
}

template <class T, class E>
T pow_value(T x, E y) {
  if constexpr (std::is_integral_v<T> && std::is_integral_v<E>) {
    if (y >= 0) return int_pow(x, y);
    return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
  } else if constexpr (std::is_same_v<T, float> && std::is_same_v<E, float>) {
    return std::pow(x, y);
  } else {
    return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
  }
}

}  // namespace detail

/// Pow: the base's type out; the exponent may be any numeric type (opset 12+; earlier opsets
/// require equal types, which is a subset). A scalar float exponent of 2 or 3 (LayerNorm
/// decompositions, GPT-2's GELU) runs as products.
inline void pow_op(context& c) {
  c.require_inputs(2, 2);
  const tensor& x = c.input(0);
  const tensor& e = c.input(1);
  tensor& y = c.make_output(0, x.type(), broadcast_shapes(c, x.shape(), e.shape()));
  visit_numeric(c, x.type(), [&](auto xt) {
    using T = decltype(xt);
    visit_numeric(c, e.type(), [&](auto et) {
      using E = decltype(et);
      if constexpr (std::is_floating_point_v<T>) {
        if (e.size() == 1 && y.shape() == x.shape()) {
          const E p = e.data<E>()[0];
          if (p == E(2)) return map_elements<T, T>(x, y, [](T v) { return v * v; });
          if (p == E(3)) return map_elements<T, T>(x, y, [](T v) { return v * v * v; });
        }
      }
      broadcast_binary<T, E, T>(x, e, y, [](T a, E b) { return detail::pow_value(a, b); });
    });
  });
}

namespace detail {

/// Mod's remainder: fmod truncates (sign of x, C's % and std::fmod); otherwise floored (sign of
/// y, Python's % and numpy.mod, a zero result taking y's sign).
template <class T>
struct mod_op {
  const context* c;
  bool fmod;
  T operator()(T x, T y) const {
    if constexpr (std::is_integral_v<T>) {
      AMCTQ_CHECK(y != 0, errc::invalid_argument, c->where(), "integer modulo by zero");
      if constexpr (std::is_signed_v<T>) {
        if (y == -1) return T(0);  // x % -1 overflows for the most negative x
        const T r = static_cast<T>(x % y);
        return !fmod && r != 0 && ((r < 0) != (y < 0)) ? static_cast<T>(r + y) : r;
      } else {
        return static_cast<T>(x % y);
      }
    } else {
      T r = std::fmod(x, y);
      if (fmod) return r;
      if (r != 0) {
        if ((r < 0) != (y < 0)) r += y;
      } else {
        r = std::copysign(T(0), y);
      }
      return r;
    }
  }
};

}  // namespace detail

/// Mod (opset 10, 13): broadcasting; `fmod` 0 (default) is the floored remainder, 1 the
/// truncated one. ONNX asks fmod = 1 for floats but its tests also run floats with fmod = 0
/// (numpy.mod), which this follows.
inline void mod(context& c) {
  const std::int64_t f = c.n.get_int("fmod", 0);
  AMCTQ_CHECK(f == 0 || f == 1, errc::invalid_argument, c.where(), "fmod must be 0 or 1, got ", f);
  const binary_operands io = broadcast_operands(c);
  visit_numeric(c, io.a.type(), [&](auto tag) {
    using T = decltype(tag);
    broadcast_binary<T, T, T>(io.a, io.b, io.out, detail::mod_op<T>{&c, f == 1});
  });
}

/// The math ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table math_ops() {
  return {
      {"Sqrt", sqrt_op}, {"Exp", exp_op}, {"Log", log_op}, {"Erf", erf_op}, {"Reciprocal", reciprocal},
      {"Floor", floor_op}, {"Ceil", ceil_op}, {"Round", round_op}, {"Sin", sin_op}, {"Cos", cos_op},
      {"Tan", tan_op}, {"Asin", asin_op}, {"Acos", acos_op}, {"Atan", atan_op}, {"Sinh", sinh_op},
      {"Cosh", cosh_op}, {"Asinh", asinh_op}, {"Acosh", acosh_op}, {"Atanh", atanh_op}, {"Neg", neg},
      {"Abs", abs_op}, {"Sign", sign}, {"IsNaN", is_nan}, {"IsInf", is_inf}, {"Pow", pow_op}, {"Mod", mod}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_MATH_HPP
