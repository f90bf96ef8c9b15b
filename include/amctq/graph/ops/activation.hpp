// Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh and Softmax on float tensors.
#ifndef AMCTQ_GRAPH_OPS_ACTIVATION_HPP
#define AMCTQ_GRAPH_OPS_ACTIVATION_HPP

#include <algorithm>
#include <cmath>
#include <limits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

namespace detail {

/// Applies f elementwise to input 0 (float32 or float64), same shape out.
template <class F>
void unary_float(context& c, F f) {
  const tensor& x = c.input(0);
  tensor& y = c.make_output(0, x.type(), x.shape());
  const std::size_t n = x.size();
  if (x.type() == dtype::float32) {
    const float* px = x.data<float>();
    float* py = y.data<float>();
    for (std::size_t i = 0; i < n; ++i) py[i] = f(px[i]);
  } else if (x.type() == dtype::float64) {
    const double* px = x.data<double>();
    double* py = y.data<double>();
    for (std::size_t i = 0; i < n; ++i) py[i] = f(px[i]);
  } else {
    AMCTQ_THROW(errc::unsupported, c.where(), "element type ", to_string(x.type()), " is not supported (float32, float64)");
  }
}

}  // namespace detail

inline void relu(context& c) {
  c.require_inputs(1, 1);
  detail::unary_float(c, [](auto v) { return v > 0 ? v : decltype(v)(0); });
}

inline void leaky_relu(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 0.01f);
  detail::unary_float(c, [alpha](auto v) { return v >= 0 ? v : static_cast<decltype(v)>(alpha) * v; });
}

inline void sigmoid(context& c) {
  c.require_inputs(1, 1);
  // Split by sign so exp never overflows.
  detail::unary_float(c, [](auto v) {
    using T = decltype(v);
    if (v >= 0) return T(1) / (T(1) + std::exp(-v));
    const T e = std::exp(v);
    return e / (T(1) + e);
  });
}

inline void tanh_op(context& c) {
  c.require_inputs(1, 1);
  detail::unary_float(c, [](auto v) { return std::tanh(v); });
}

inline void hard_sigmoid(context& c) {
  c.require_inputs(1, 1);
  const float alpha = c.n.get_float("alpha", 0.2f), beta = c.n.get_float("beta", 0.5f);
  detail::unary_float(c, [=](auto v) {
    using T = decltype(v);
    return std::max(T(0), std::min(T(1), static_cast<T>(alpha) * v + static_cast<T>(beta)));
  });
}

inline void hard_swish(context& c) {
  c.require_inputs(1, 1);
  detail::unary_float(c, [](auto v) {
    using T = decltype(v);
    return v * std::max(T(0), std::min(T(1), v / T(6) + T(0.5)));
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
    detail::unary_float(c, [=](auto v) {
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
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
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
}

inline void softmax(context& c) { softmax_family(c, false); }
inline void log_softmax(context& c) { softmax_family(c, true); }

/// The activation ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table activation_ops() {
  return {
      {"Relu", relu}, {"Clip", clip}, {"LeakyRelu", leaky_relu}, {"Sigmoid", sigmoid},
      {"HardSigmoid", hard_sigmoid}, {"HardSwish", hard_swish}, {"Tanh", tanh_op}, {"Softmax", softmax},
      {"LogSoftmax", log_softmax}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_ACTIVATION_HPP
