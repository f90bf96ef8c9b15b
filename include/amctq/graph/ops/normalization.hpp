// BatchNormalization in inference form: y = (x - mean) / sqrt(var + epsilon) * scale + bias,
// per channel (axis 1); LRN; and the normalizations over a sample's own statistics:
// LayerNormalization, InstanceNormalization, GroupNormalization (float32 and float64).
#ifndef AMCTQ_GRAPH_OPS_NORMALIZATION_HPP
#define AMCTQ_GRAPH_OPS_NORMALIZATION_HPP

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

/// Per-channel multiplier and offset equivalent to the batch norm: y = x * mul[c] + add[c].
/// Shared with the BatchNorm-folding pass so both compute the same numbers.
inline void batchnorm_coefficients(const float* scale, const float* bias, const float* mean, const float* var,
                                   float epsilon, std::size_t channels, std::vector<float>& mul,
                                   std::vector<float>& add) {
  mul.resize(channels);
  add.resize(channels);
  for (std::size_t ch = 0; ch < channels; ++ch) {
    mul[ch] = scale[ch] / std::sqrt(var[ch] + epsilon);
    add[ch] = bias[ch] - mean[ch] * mul[ch];
  }
}

inline void batch_normalization(context& c) {
  c.require_inputs(5, 5);
  AMCTQ_CHECK(c.n.get_int("training_mode", 0) == 0, errc::unsupported, c.where(), "training_mode=1 is not supported");
  c.only_first_output();
  const tensor& x = c.input(0);
  AMCTQ_CHECK(x.rank() >= 2, errc::shape_mismatch, c.where(), "X ", shape_string(x.shape()), " must have rank >= 2");
  const auto C = static_cast<std::size_t>(x.dim(1));
  static const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (std::size_t i = 0; i < 5; ++i) {
    c.require_type(c.input(i), dtype::float32, names[i]);
    if (i > 0)
      AMCTQ_CHECK(c.input(i).size() == C, errc::shape_mismatch, c.where(), names[i], " has ", c.input(i).size(),
                  " elements, X has ", C, " channels");
  }
  std::vector<float> mul, add;
  batchnorm_coefficients(c.input(1).data<float>(), c.input(2).data<float>(), c.input(3).data<float>(),
                         c.input(4).data<float>(), c.n.get_float("epsilon", 1e-5f), C, mul, add);
  tensor& y = c.make_output(0, dtype::float32, x.shape());
  const std::size_t N = static_cast<std::size_t>(x.dim(0));
  const std::size_t inner = C && N ? x.size() / (N * C) : 0;
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t ch = 0; ch < C; ++ch) {
      const std::size_t base = (n * C + ch) * inner;
      for (std::size_t i = 0; i < inner; ++i) py[base + i] = px[base + i] * mul[ch] + add[ch];
    }
}

/// LRN across channels: y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta,
/// the window spanning floor((size-1)/2) channels before and ceil((size-1)/2) after.
inline void lrn(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  c.require_type(x, dtype::float32, "X");
  AMCTQ_CHECK(x.rank() >= 2, errc::shape_mismatch, c.where(), "X ", shape_string(x.shape()), " must have rank >= 2");
  const attribute* size_attr = c.n.find("size");
  AMCTQ_CHECK(size_attr && size_attr->i > 0, errc::invalid_argument, c.where(), "attribute size must be positive");
  const std::int64_t size = size_attr->i;
  const float alpha = c.n.get_float("alpha", 1e-4f), beta = c.n.get_float("beta", 0.75f), bias = c.n.get_float("bias", 1.0f);
  const std::int64_t N = x.dim(0), C = x.dim(1);
  const std::int64_t inner = (N * C) != 0 ? static_cast<std::int64_t>(x.size()) / (N * C) : 0;
  const std::int64_t before = (size - 1) / 2, after = size - 1 - before;
  tensor& y = c.make_output(0, dtype::float32, x.shape());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t ch = 0; ch < C; ++ch) {
      const std::int64_t lo = std::max<std::int64_t>(0, ch - before), hi = std::min<std::int64_t>(C - 1, ch + after);
      for (std::int64_t i = 0; i < inner; ++i) {
        float sq = 0;
        for (std::int64_t k = lo; k <= hi; ++k) {
          const float v = px[(n * C + k) * inner + i];
          sq += v * v;
        }
        const std::int64_t at = (n * C + ch) * inner + i;
        py[at] = px[at] / std::pow(bias + alpha / static_cast<float>(size) * sq, beta);
      }
    }
}

namespace detail {
/// Mean and 1 / sqrt(variance + epsilon) of n values (two passes, accumulated in double).
template <class T>
std::pair<double, double> moments(const T* x, std::size_t n, double epsilon) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  const double mean = n ? sum / static_cast<double>(n) : 0.0;
  double sq = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - mean;
    sq += d * d;
  }
  return {mean, 1.0 / std::sqrt((n ? sq / static_cast<double>(n) : 0.0) + epsilon)};
}

/// Calls f(T{}) for the floating types the normalizations compute in.
template <class F>
void visit_float(const context& c, const tensor& x, F&& f) {
  if (x.type() == dtype::float32) f(float{});
  else if (x.type() == dtype::float64) f(double{});
  else AMCTQ_THROW(errc::unsupported, c.where(), "element type ", to_string(x.type()), " is not supported");
}

/// `t` (of x's type) broadcast to `shape`, as a contiguous vector; `fallback` fills it when t is absent.
template <class T>
std::vector<T> broadcast_to(const context& c, const tensor* t, const std::vector<std::int64_t>& shape, T fallback,
                            const char* what) {
  std::vector<T> v(static_cast<std::size_t>(std::max<std::int64_t>(numel(shape), 0)), fallback);
  if (!t) return v;
  AMCTQ_CHECK(t->rank() <= shape.size() && broadcast_shapes(c, t->shape(), shape) == shape, errc::shape_mismatch,
              c.where(), what, " ", shape_string(t->shape()), " does not broadcast to ", shape_string(shape));
  c.require_type(*t, dtype_of<T>(), what);
  const T* p = t->data<T>();
  strided_walk<1>(shape, {broadcast_strides(t->shape(), shape)},
                  [&](std::int64_t o, const std::array<std::int64_t, 1>& off, std::int64_t n, const std::array<std::int64_t, 1>& s) {
                    for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(o + i)] = p[off[0] + i * s[0]];
                  });
  return v;
}
}  // namespace detail

/// LayerNormalization (opset 17): statistics over the dims from `axis` on; optional Mean and
/// InvStdDev outputs (shape of X with those dims 1).
inline void layer_normalization(context& c) {
  c.require_inputs(2, 3);
  const tensor& x = c.input(0);
  const auto rank = static_cast<std::int64_t>(x.rank());
  const auto axis = static_cast<std::size_t>(normalize_axis(c, c.n.get_int("axis", -1), rank));
  const double epsilon = c.n.get_float("epsilon", 1e-5f);
  const std::vector<std::int64_t> norm_shape(x.shape().begin() + static_cast<std::ptrdiff_t>(axis), x.shape().end());
  std::vector<std::int64_t> stat_shape = x.shape();
  for (std::size_t d = axis; d < x.rank(); ++d) stat_shape[d] = 1;
  detail::visit_float(c, x, [&](auto tag) {
    using T = decltype(tag);
    const auto scale = detail::broadcast_to<T>(c, &c.input(1), norm_shape, T(1), "Scale");
    const auto bias = detail::broadcast_to<T>(c, c.has_input(2) ? &c.input(2) : nullptr, norm_shape, T(0), "B");
    const std::size_t inner = scale.size(), rows = inner ? x.size() / inner : 0;
    tensor& y = c.make_output(0, x.type(), x.shape());
    T* pm = c.wants_output(1) ? c.make_output(1, x.type(), stat_shape).data<T>() : nullptr;
    T* pi = c.wants_output(2) ? c.make_output(2, x.type(), stat_shape).data<T>() : nullptr;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const auto each_row = [&](std::int64_t first, std::int64_t last) {
      for (auto r = static_cast<std::size_t>(first); r < static_cast<std::size_t>(last); ++r) {
        const auto [mean, inv] = detail::moments(px + r * inner, inner, epsilon);
        for (std::size_t i = 0; i < inner; ++i)
          py[r * inner + i] = static_cast<T>((static_cast<double>(px[r * inner + i]) - mean) * inv) * scale[i] + bias[i];
        if (pm) pm[r] = static_cast<T>(mean);
        if (pi) pi[r] = static_cast<T>(inv);
      }
    };
    c.parallel_rows(static_cast<std::int64_t>(rows), static_cast<std::int64_t>(inner), each_row);
  });
}

namespace detail {
/// y = (x - mean) / std * scale[ch] + bias[ch] with statistics over `groups` equal groups of
/// channels per sample (instance norm: one group per channel).
template <class T>
void normalize_groups(const context& c, const tensor& x, tensor& y, std::int64_t groups, const std::vector<T>& scale,
                      const std::vector<T>& bias, double epsilon) {
  const std::int64_t N = x.dim(0), C = x.dim(1);
  const std::size_t spatial = N * C != 0 ? x.size() / static_cast<std::size_t>(N * C) : 0;
  AMCTQ_CHECK(groups > 0 && C % groups == 0, errc::shape_mismatch, c.where(), "channels ", C,
              " do not divide into ", groups, " groups");
  const std::size_t per_group = static_cast<std::size_t>(C / groups) * spatial;
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (std::int64_t g = 0; g < N * groups; ++g) {
    const std::size_t base = static_cast<std::size_t>(g) * per_group;
    const auto [mean, inv] = moments(px + base, per_group, epsilon);
    for (std::size_t i = 0; i < per_group; ++i) {
      const auto ch = static_cast<std::size_t>((g % groups) * (C / groups)) + i / std::max<std::size_t>(spatial, 1);
      py[base + i] = static_cast<T>((static_cast<double>(px[base + i]) - mean) * inv) * scale[ch] + bias[ch];
    }
  }
}
}  // namespace detail

inline void instance_normalization(context& c) {
  c.require_inputs(3, 3);
  const tensor& x = c.input(0);
  AMCTQ_CHECK(x.rank() >= 2, errc::shape_mismatch, c.where(), "input ", shape_string(x.shape()), " must have rank >= 2");
  const std::int64_t C = x.dim(1);
  detail::visit_float(c, x, [&](auto tag) {
    using T = decltype(tag);
    const auto scale = detail::broadcast_to<T>(c, &c.input(1), {C}, T(1), "scale");
    const auto bias = detail::broadcast_to<T>(c, &c.input(2), {C}, T(0), "B");
    detail::normalize_groups<T>(c, x, c.make_output(0, x.type(), x.shape()), C, scale, bias,
                                c.n.get_float("epsilon", 1e-5f));
  });
}

/// GroupNormalization: scale and bias per group at opset 18, per channel from opset 21.
inline void group_normalization(context& c) {
  c.require_inputs(3, 3);
  const tensor& x = c.input(0);
  AMCTQ_CHECK(x.rank() >= 2, errc::shape_mismatch, c.where(), "input ", shape_string(x.shape()), " must have rank >= 2");
  const attribute* g = c.n.find("num_groups");
  AMCTQ_CHECK(g && g->i > 0, errc::invalid_argument, c.where(), "attribute num_groups must be positive");
  const std::int64_t C = x.dim(1), G = g->i;
  AMCTQ_CHECK(C % G == 0, errc::shape_mismatch, c.where(), "channels ", C, " do not divide into ", G, " groups");
  detail::visit_float(c, x, [&](auto tag) {
    using T = decltype(tag);
    auto scale = detail::broadcast_to<T>(c, &c.input(1), {c.opset < 21 ? G : C}, T(1), "scale");
    auto bias = detail::broadcast_to<T>(c, &c.input(2), {c.opset < 21 ? G : C}, T(0), "bias");
    if (c.opset < 21) {  // per group: repeat for each channel of the group
      std::vector<T> s(static_cast<std::size_t>(C)), b(static_cast<std::size_t>(C));
      for (std::int64_t ch = 0; ch < C; ++ch) {
        s[static_cast<std::size_t>(ch)] = scale[static_cast<std::size_t>(ch / (C / G))];
        b[static_cast<std::size_t>(ch)] = bias[static_cast<std::size_t>(ch / (C / G))];
      }
      scale.swap(s);
      bias.swap(b);
    }
    detail::normalize_groups<T>(c, x, c.make_output(0, x.type(), x.shape()), G, scale, bias,
                                c.n.get_float("epsilon", 1e-5f));
  });
}

/// The normalization ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table normalization_ops() {
  return {
      {"BatchNormalization", batch_normalization}, {"LRN", lrn}, {"LayerNormalization", layer_normalization},
      {"InstanceNormalization", instance_normalization}, {"GroupNormalization", group_normalization}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_NORMALIZATION_HPP
