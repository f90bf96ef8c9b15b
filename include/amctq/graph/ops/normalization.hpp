// BatchNormalization in inference form: y = (x - mean) / sqrt(var + epsilon) * scale + bias,
// per channel (axis 1).
#ifndef AMCTQ_GRAPH_OPS_NORMALIZATION_HPP
#define AMCTQ_GRAPH_OPS_NORMALIZATION_HPP

#include <algorithm>
#include <cmath>

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

/// The normalization ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table normalization_ops() {
  return {
      {"BatchNormalization", batch_normalization}, {"LRN", lrn}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_NORMALIZATION_HPP
