// Relu, Clip, LeakyRelu, PRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu, Elu, Selu, Celu,
// Softplus, Mish, Swish, ThresholdedRelu, Softsign, Shrink and Softmax on float tensors.
#ifndef AMCTQ_GRAPH_OPS_ACTIVATION_HPP
#define AMCTQ_GRAPH_OPS_ACTIVATION_HPP

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

inline void relu(context& c) {
  c.require_inputs(1, 1);
  unary_float(c, relu_fn{});
}

inline void leaky_relu(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 0.01f);
  unary_float(c, [alpha](auto v) { return v >= 0 ? v : static_cast<decltype(v)>(alpha) * v; });
}

inline void sigmoid(context& c) {
  c.require_inputs(1, 1);
  // Split by sign so exp never overflows.
  unary_float(c, [](auto v) {
    using T = decltype(v);
    if (v >= 0) return T(1) / (T(1) + std::exp(-v));
    const T e = std::exp(v);
    return e / (T(1) + e);
  });
}

inline void tanh_op(context& c) {
  c.require_inputs(1, 1);
  unary_float(c, [](auto v) { return std::tanh(v); });
}

inline void hard_sigmoid(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 0.2f), beta = c.n.get_float("beta", 0.5f);
  unary_float(c, [=](auto v) {
    using T = decltype(v);
    return std::max(T(0), std::min(T(1), static_cast<T>(alpha) * v + static_cast<T>(beta)));
  });
}

inline void hard_swish(context& c) {
  c.require_inputs(1, 1);
  unary_float(c, [](auto v) {
    using T = decltype(v);
    return v * std::max(T(0), std::min(T(1), v / T(6) + T(0.5)));
  });
}

/// Gelu (opset 20): approximate "none" is x/2 (1 + erf(x / sqrt 2)), "tanh" the tanh form.
inline void gelu(context& c) {
  c.require_inputs(1, 1);
  const std::string approximate = c.n.get_string("approximate", "none");
  if (approximate == "none") {
    unary_float(c, [](auto v) {
      using T = decltype(v);
      return T(0.5) * v * (T(1) + std::erf(v * T(0.70710678118654752440)));
    });
  } else if (approximate == "tanh") {
    unary_float(c, [](auto v) {
      using T = decltype(v);
      return T(0.5) * v * (T(1) + std::tanh(T(0.79788456080286535588) * (v + T(0.044715) * v * v * v)));
    });
  } else {
    AMCTQ_THROW(errc::unsupported, c.where(), "approximate '", approximate, "' is not supported (none, tanh)");
  }
}

namespace detail {
/// log(1 + exp(v)) without overflow.
template <class T>
T softplus(T v) {
  return v > T(0) ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
}
}  // namespace detail

inline void softplus(context& c) {
  c.require_inputs(1, 1);
  unary_float(c, [](auto v) { return detail::softplus(v); });
}

inline void mish(context& c) {
  c.require_inputs(1, 1);
  unary_float(c, [](auto v) { return v * std::tanh(detail::softplus(v)); });
}

inline void elu(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 1.0f);
  unary_float(c, [=](auto v) { return v < 0 ? static_cast<decltype(v)>(alpha) * std::expm1(v) : v; });
}

inline void selu(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 1.67326319217681884765625f);
  const float gamma = c.n.get_float("gamma", 1.05070102214813232421875f);
  unary_float(c, [=](auto v) {
    using T = decltype(v);
    return static_cast<T>(gamma) * (v > 0 ? v : static_cast<T>(alpha) * std::expm1(v));
  });
}

/// Celu: max(0, x) + min(0, alpha (exp(x / alpha) - 1)).
inline void celu(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 1.0f);
  unary_float(c, [=](auto v) {
    using T = decltype(v);
    const T a = static_cast<T>(alpha);
    return v > 0 ? v : a * std::expm1(v / a);
  });
}

/// Swish (opset 24): x sigmoid(alpha x).
inline void swish(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 1.0f);
  unary_float(c, [=](auto v) {
    using T = decltype(v);
    const T z = static_cast<T>(alpha) * v;
    return z >= 0 ? v / (T(1) + std::exp(-z)) : v * std::exp(z) / (T(1) + std::exp(z));
  });
}

inline void thresholded_relu(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 1.0f);
  unary_float(c, [=](auto v) { return v > static_cast<decltype(v)>(alpha) ? v : decltype(v)(0); });
}

inline void softsign(context& c) {
  c.require_inputs(1, 1);
  unary_float(c, [](auto v) { return v / (decltype(v)(1) + std::abs(v)); });
}

/// Shrink: x + bias below -lambd, x - bias above lambd, 0 between; every numeric type.
inline void shrink(context& c) {
  c.require_inputs(1, 1);
  const double lambd = c.n.get_float("lambd", 0.5f), bias = c.n.get_float("bias", 0.0f);
  unary_numeric(c, [=](auto v) {
    const double d = static_cast<double>(v);
    return static_cast<decltype(v)>(d < -lambd ? d + bias : d > lambd ? d - bias : 0.0);
  });
}

/// PRelu: x < 0 ? slope * x : x, the slope broadcast to x's shape (unidirectionally: the
/// output has x's shape), e.g. one slope per channel as [C, 1, 1].
inline void prelu(context& c) {
  c.require_inputs(2, 2);
  const tensor& x = c.input(0);
  const tensor& s = c.input(1);
  AMCTQ_CHECK(x.type() == s.type(), errc::invalid_argument, c.where(), "input types differ: ", to_string(x.type()),
              " and ", to_string(s.type()));
  const auto shape = broadcast_shapes(c, x.shape(), s.shape());
  AMCTQ_CHECK(shape == x.shape(), errc::shape_mismatch, c.where(), "slope ", shape_string(s.shape()),
              " does not broadcast to the input's shape ", shape_string(x.shape()));
  tensor& y = c.make_output(0, x.type(), shape);
  visit_numeric(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    broadcast_binary<T, T, T>(x, s, y, [](T v, T a) { return v < T(0) ? static_cast<T>(a * v) : v; });
  });
}

/// Clip: bounds are attributes `min`/`max` before opset 11, optional scalar inputs from 11 on.
inline void clip(context& c) {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  if (c.opset < 11) {
    c.require_inputs(1, 1);
    if (c.n.find("min")) lo = c.n.get_float("min", 0.0f);
    if (c.n.find("max")) hi = c.n.get_float("max", 0.0f);
  } else {
    c.require_inputs(1, 3);
    auto bound = [&](std::size_t i, double& v) {
      if (!c.has_input(i)) return;
      const tensor& b = c.input(i);
      AMCTQ_CHECK(b.size() == 1, errc::shape_mismatch, c.where(), "input ", i, " must be a scalar, has ",
                  b.size(), " elements");
      AMCTQ_CHECK(b.type() == c.input(0).type(), errc::invalid_argument, c.where(), "input ", i, " type ",
                  to_string(b.type()), " differs from the data type");
      visit_numeric(c, b.type(), [&](auto tag) { v = static_cast<double>(b.data<decltype(tag)>()[0]); });
    };
    bound(1, lo);
    bound(2, hi);
  }
  const tensor& x = c.input(0);
  if (x.type() == dtype::float32 || x.type() == dtype::float64) {
    unary_float(c, [=](auto v) {
      using T = decltype(v);
      // min(max(x, lo), hi): when lo > hi every element becomes hi, as ONNX specifies.
      return std::min(std::max(v, static_cast<T>(std::max(lo, double(std::numeric_limits<T>::lowest())))),
                      static_cast<T>(std::min(hi, double(std::numeric_limits<T>::max()))));
    });
    return;
  }
  tensor& y = c.make_output(0, x.type(), x.shape());
  visit_numeric(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    const T l = lo < double(std::numeric_limits<T>::lowest()) ? std::numeric_limits<T>::lowest() : static_cast<T>(lo);
    const T h = hi > double(std::numeric_limits<T>::max()) ? std::numeric_limits<T>::max() : static_cast<T>(hi);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (std::size_t i = 0; i < x.size(); ++i) py[i] = std::min(std::max(px[i], l), h);
  });
}

/// Softmax / LogSoftmax. From opset 13 the normalisation runs along `axis` (default -1); before,
/// the input is coerced to 2-D [prod(dims < axis), prod(dims >= axis)] (default axis 1) and each
/// row is normalised.
inline void softmax_family(context& c, bool log) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  c.require_type(x, dtype::float32, "input");
  const auto rank = static_cast<std::int64_t>(x.rank());
  const bool new_semantics = c.opset >= 13;
  const std::int64_t axis = normalize_axis(c, c.n.get_int("axis", new_semantics ? -1 : 1), rank);
  std::int64_t outer = 1, len = 1, inner = 1;
  for (std::int64_t d = 0; d < rank; ++d) {
    if (d < axis) outer *= x.dim(d);
    else if (d == axis || !new_semantics) len *= x.dim(d);
    else inner *= x.dim(d);
  }
  tensor& y = c.make_output(0, x.type(), x.shape());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  c.parallel_rows(outer * inner, len, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t r = first; r < last; ++r) {
      const std::int64_t o = r / inner, i = r % inner;
      const float* xs = px + o * len * inner + i;
      float* ys = py + o * len * inner + i;
      float m = -std::numeric_limits<float>::infinity();
      for (std::int64_t k = 0; k < len; ++k) m = std::max(m, xs[k * inner]);
      double sum = 0;
      for (std::int64_t k = 0; k < len; ++k) {
        const float e = std::exp(xs[k * inner] - m);
        ys[k * inner] = e;
        sum += e;
      }
      if (log) {
        const float ls = static_cast<float>(std::log(sum));
        for (std::int64_t k = 0; k < len; ++k) ys[k * inner] = xs[k * inner] - m - ls;
      } else {
        const float inv = static_cast<float>(1.0 / sum);
        for (std::int64_t k = 0; k < len; ++k) ys[k * inner] *= inv;
      }
    }
  });
}

inline void softmax(context& c) { softmax_family(c, false); }
inline void log_softmax(context& c) { softmax_family(c, true); }

/// The activation ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table activation_ops() {
  return {
      {"Relu", relu}, {"Clip", clip}, {"LeakyRelu", leaky_relu}, {"Sigmoid", sigmoid},
      {"HardSigmoid", hard_sigmoid}, {"HardSwish", hard_swish}, {"Tanh", tanh_op}, {"Softmax", softmax},
      {"LogSoftmax", log_softmax}, {"Gelu", gelu}, {"Softplus", softplus}, {"Mish", mish}, {"Elu", elu},
      {"Selu", selu}, {"Celu", celu}, {"PRelu", prelu}, {"Swish", swish}, {"ThresholdedRelu", thresholded_relu},
      {"Softsign", softsign}, {"Shrink", shrink}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_ACTIVATION_HPP
