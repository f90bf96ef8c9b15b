// amctq's own execution of the exported models: the reference executor's float ops plus
// QuantizeLinear / DequantizeLinear (what the fake-quant model needs) and the integer ops of the
// deploy model, computed the way ONNX Runtime's CPU kernels compute them, so the deploy
// model's outputs can be predicted bit for bit:
//  - QuantizeLinear: q = saturate(round_half_even(x / s) + zp), division in float;
//  - DequantizeLinear: (float)(q - zp) * s;
//  - QLinearConv: exact int32 accumulation of (x - x_zp) * (w - w_zp) plus the int32 bias, then
//    MLAS's requantisation: multiplier m[c] = x_scale * w_scale[c] / y_scale in float,
//    v = float(acc) * m[c], clamped to [qmin - y_zp, qmax - y_zp], round half-even, + y_zp;
//  - ConvInteger / MatMulInteger: the exact int32 accumulator (no saturation: ORT's kernels on
//    AVX512-VNNI / AMX / AVX2-VNNI accumulate in int32; the plain AVX2 u8s8 path saturates pairs
//    in int16 (vpmaddubsw) and would differ for large |w| - see docs/pipeline.md);
//  - MaxPool on int8 (Max on int8 is the executor's own).
#ifndef AMCTQ_GRAPH_INTEGER_SIM_HPP
#define AMCTQ_GRAPH_INTEGER_SIM_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/executor.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/ops/conv.hpp"
#include "amctq/graph/ops/elementwise.hpp"
#include "amctq/graph/ops/gemm.hpp"
#include "amctq/graph/ops/pool.hpp"

namespace amctq::graph {

namespace sim {

template <class Q>
inline void quantize_values(const float* x, Q* q, std::size_t n, const float* s, const std::int32_t* zp,
                            std::size_t channels, std::size_t inner) {
  constexpr float lo = static_cast<float>(std::numeric_limits<Q>::min());
  constexpr float hi = static_cast<float>(std::numeric_limits<Q>::max());
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = channels == 1 ? 0 : (i / inner) % channels;
    float v = std::nearbyint(x[i] / s[c]) + static_cast<float>(zp[c]);
    v = std::min(std::max(v, lo), hi);
    q[i] = static_cast<Q>(v);
  }
}

// Per-axis layout: channels along `axis` of `shape`, `inner` elements after it.
inline void axis_layout(const ops::context& c, const tensor& x, const tensor& s, std::size_t& channels,
                        std::size_t& inner) {
  channels = s.size();
  inner = 1;
  if (channels == 1) return;
  const auto rank = static_cast<std::int64_t>(x.rank());
  const std::int64_t axis = ops::normalize_axis(c, c.n.get_int("axis", 1), rank);
  AMCTQ_CHECK(static_cast<std::size_t>(x.dim(static_cast<std::size_t>(axis))) == channels, errc::shape_mismatch,
              c.where(), "scale has ", channels, " values but axis ", axis, " has ", x.dim(static_cast<std::size_t>(axis)));
  for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < x.rank(); ++d) inner *= static_cast<std::size_t>(x.dim(d));
}

inline std::vector<std::int32_t> zero_points(const ops::context& c, std::size_t i, std::size_t n) {
  std::vector<std::int32_t> z(n, 0);
  if (!c.has_input(i)) return z;
  const tensor& t = c.input(i);
  AMCTQ_CHECK(t.size() == n, errc::shape_mismatch, c.where(), "zero point has ", t.size(), " values, scale ", n);
  for (std::size_t k = 0; k < n; ++k) {
    switch (t.type()) {
      case dtype::int8: z[k] = t.data<std::int8_t>()[k]; break;
      case dtype::uint8: z[k] = t.data<std::uint8_t>()[k]; break;
      case dtype::int32: z[k] = t.data<std::int32_t>()[k]; break;
      default: AMCTQ_THROW(errc::unsupported, c.where(), "zero point type ", to_string(t.type()), " is not supported");
    }
  }
  return z;
}

inline void quantize_linear(ops::context& c) {
  const tensor& x = c.input(0);
  const tensor& s = c.input(1);
  c.require_type(x, dtype::float32, "x");
  std::size_t ch, inner;
  axis_layout(c, x, s, ch, inner);
  const auto zp = zero_points(c, 2, ch);
  const dtype out = c.has_input(2) ? c.input(2).type() : dtype::uint8;
  tensor& y = c.make_output(0, out, x.shape());
  if (out == dtype::int8)
    quantize_values(x.data<float>(), y.data<std::int8_t>(), x.size(), s.data<float>(), zp.data(), ch, inner);
  else if (out == dtype::uint8)
    quantize_values(x.data<float>(), y.data<std::uint8_t>(), x.size(), s.data<float>(), zp.data(), ch, inner);
  else
    AMCTQ_THROW(errc::unsupported, c.where(), "output type ", to_string(out), " is not supported");
}

inline void dequantize_linear(ops::context& c) {
  const tensor& x = c.input(0);
  const tensor& s = c.input(1);
  std::size_t ch, inner;
  axis_layout(c, x, s, ch, inner);
  const auto zp = zero_points(c, 2, ch);
  tensor& y = c.make_output(0, dtype::float32, x.shape());
  float* out = y.data<float>();
  const float* sc = s.data<float>();
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>();
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::size_t k = ch == 1 ? 0 : (i / inner) % ch;
      out[i] = static_cast<float>(static_cast<std::int32_t>(in[i]) - zp[k]) * sc[k];
    }
  };
  switch (x.type()) {
    case dtype::int8: run(std::int8_t{}); break;
    case dtype::uint8: run(std::uint8_t{}); break;
    case dtype::int32: run(std::int32_t{}); break;
    default: AMCTQ_THROW(errc::unsupported, c.where(), "input type ", to_string(x.type()), " is not supported");
  }
}

inline std::int32_t int8_scalar(const ops::context& c, std::size_t i) {
  if (!c.has_input(i)) return 0;
  const tensor& t = c.input(i);
  AMCTQ_CHECK(t.size() == 1, errc::unsupported, c.where(), "input ", i, " must hold one zero point");
  return zero_points(c, i, 1)[0];
}

// Exact integer convolution: sum over the window of (x - x_zp) * (w - w_zp), padding reading
// x_zp (a zero contribution), as ORT's QLinearConv / ConvInteger accumulate it in int32.
// The products are exact small integers; summing them in double keeps every partial sum exact
// (|sum| < 2^53), so an Eigen GEMM gives the exact int32 accumulator.
inline tensor conv_accumulate(const ops::context& c, const tensor& x, std::int32_t x_zp, const tensor& wt,
                              const std::vector<std::int32_t>& w_zp) {
  AMCTQ_CHECK(x.rank() == wt.rank() && x.rank() >= 3, errc::shape_mismatch, c.where(), "X and W must have the same rank >= 3");
  const std::int64_t N = x.dim(0), C = x.dim(1), M = wt.dim(0);
  const std::int64_t group = c.n.get_int("group", 1);
  AMCTQ_CHECK(group > 0 && C % group == 0 && M % group == 0 && wt.dim(1) * group == C, errc::shape_mismatch,
              c.where(), "X has ", C, " channels, W ", ops::shape_string(wt.shape()), ", group ", group);
  const ops::window w = ops::forward_window(c, x.shape(), ops::detail::kernel_of(c, wt), false);
  std::vector<std::int64_t> yshape{N, M};
  for (auto d : w.out_spatial()) yshape.push_back(d);
  tensor y(dtype::int32, yshape);
  const std::int64_t Cg = C / group, Mg = M / group, K = Cg * w.kernel_size(), O = w.out_size(), I = w.in_size();
  std::vector<float> xs(static_cast<std::size_t>(Cg * I));
  std::vector<float> col(static_cast<std::size_t>(K * O));
  using dmat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  dmat wd(M, K);
  auto w_at = [&](std::size_t i) -> std::int32_t {
    return wt.type() == dtype::int8 ? wt.data<std::int8_t>()[i] : wt.data<std::uint8_t>()[i];
  };
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t k = 0; k < K; ++k)
      wd(m, k) = static_cast<double>(w_at(static_cast<std::size_t>(m * K + k)) - w_zp[w_zp.size() == 1 ? 0 : static_cast<std::size_t>(m)]);
  auto x_at = [&](std::size_t i) -> std::int32_t {
    return x.type() == dtype::int8 ? x.data<std::int8_t>()[i] : x.data<std::uint8_t>()[i];
  };
  std::int32_t* py = y.data<std::int32_t>();
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t g = 0; g < group; ++g) {
      const std::size_t base = static_cast<std::size_t>((n * C + g * Cg) * I);
      for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(x_at(base + i) - x_zp);
      ops::detail::im2col(xs.data(), Cg, w, col.data());
      const dmat acc = wd.middleRows(g * Mg, Mg) *
                       Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(col.data(), K, O)
                           .cast<double>();
      std::int32_t* yg = py + (n * M + g * Mg) * O;
      for (std::int64_t r = 0; r < Mg; ++r)
        for (std::int64_t o = 0; o < O; ++o) yg[r * O + o] = static_cast<std::int32_t>(acc(r, o));
    }
  return y;
}

// ONNX Runtime's requantization (MLAS MlasRequantizeOutput): multiplier x_scale * w_scale[c] /
// y_scale in float, v = float(acc + bias) * multiplier in float, clamped to the output type's
// range relative to the zero point, rounded half to even, plus the zero point.
template <class Q>
inline Q requantize(std::int32_t acc, float multiplier, std::int32_t y_zp) {
  const float lo = static_cast<float>(std::numeric_limits<Q>::min() - y_zp);
  const float hi = static_cast<float>(std::numeric_limits<Q>::max() - y_zp);
  float v = static_cast<float>(acc) * multiplier;
  v = std::min(std::max(v, lo), hi);
  return static_cast<Q>(static_cast<std::int32_t>(std::nearbyint(v)) + y_zp);
}

inline void qlinear_conv(ops::context& c) {
  c.require_inputs(8, 9);
  const tensor& x = c.input(0);
  const tensor& wt = c.input(3);
  const std::int32_t x_zp = int8_scalar(c, 2);
  const tensor& ws = c.input(4);
  const auto w_zp = zero_points(c, 5, c.input(5).size());
  const std::int32_t y_zp = int8_scalar(c, 7);
  const float xs = c.input(1).data<float>()[0], ys = c.input(6).data<float>()[0];
  tensor acc = conv_accumulate(c, x, x_zp, wt, w_zp);
  const std::int64_t M = acc.dim(1);
  const std::size_t plane = acc.size() / static_cast<std::size_t>(acc.dim(0) * M);
  const std::int32_t* bias = c.has_input(8) ? c.input(8).data<std::int32_t>() : nullptr;
  std::vector<float> mult(ws.size());
  for (std::size_t i = 0; i < ws.size(); ++i) mult[i] = xs * ws.data<float>()[i] / ys;
  const dtype out = x.type();
  tensor& y = c.make_output(0, out, acc.shape());
  const std::int32_t* a = acc.data<std::int32_t>();
  for (std::size_t i = 0; i < acc.size(); ++i) {
    const auto m = static_cast<std::size_t>((i / plane) % static_cast<std::size_t>(M));
    const std::int32_t v = a[i] + (bias ? bias[m] : 0);
    const float mu = mult[mult.size() == 1 ? 0 : m];
    if (out == dtype::int8) y.data<std::int8_t>()[i] = requantize<std::int8_t>(v, mu, y_zp);
    else y.data<std::uint8_t>()[i] = requantize<std::uint8_t>(v, mu, y_zp);
  }
}

inline void conv_integer(ops::context& c) {
  c.require_inputs(2, 4);
  const auto w_zp = c.has_input(3) ? zero_points(c, 3, c.input(3).size()) : std::vector<std::int32_t>{0};
  c.out[0] = conv_accumulate(c, c.input(0), int8_scalar(c, 2), c.input(1), w_zp);
}

// MatMulInteger: MatMul's shapes (batch dims broadcast: a constant B [K, N] or a second
// activation, attention's K^T or V), exact int32 accumulation of (a - a_zp) * (b - b_zp[n]).
inline void matmul_integer(ops::context& c) {
  c.require_inputs(2, 4);
  const tensor& a = c.input(0);
  const tensor& b = c.input(1);
  const ops::detail::matmul_plan p = ops::detail::plan_matmul(c, a.shape(), b.shape());
  const std::int32_t a_zp = int8_scalar(c, 2);
  const auto b_zp = c.has_input(3) ? zero_points(c, 3, c.input(3).size()) : std::vector<std::int32_t>{0};
  AMCTQ_CHECK(b_zp.size() == 1 || static_cast<std::int64_t>(b_zp.size()) == p.N, errc::unsupported, c.where(),
              "b_zero_point must be a scalar or hold one value per column (", p.N, "), got ", b_zp.size());
  auto at = [](const tensor& t, std::int64_t i) -> std::int32_t {
    const auto k = static_cast<std::size_t>(i);
    return t.type() == dtype::int8 ? t.data<std::int8_t>()[k] : t.data<std::uint8_t>()[k];
  };
  tensor& y = c.make_output(0, dtype::int32, p.out_shape);
  std::int32_t* py = y.data<std::int32_t>();
  std::vector<std::int64_t> row(static_cast<std::size_t>(p.N));
  for (std::size_t i = 0; i < p.a_offset.size(); ++i)
    for (std::int64_t r = 0; r < p.M; ++r) {
      std::fill(row.begin(), row.end(), 0);
      for (std::int64_t k = 0; k < p.K; ++k) {
        const std::int64_t x = at(a, p.a_offset[i] + r * p.K + k) - a_zp;
        const std::int64_t base = p.b_offset[i] + k * p.N;
        for (std::int64_t j = 0; j < p.N; ++j)
          row[static_cast<std::size_t>(j)] += x * (at(b, base + j) - b_zp[b_zp.size() == 1 ? 0 : static_cast<std::size_t>(j)]);
      }
      std::int32_t* out = py + (static_cast<std::int64_t>(i) * p.M + r) * p.N;
      for (std::int64_t j = 0; j < p.N; ++j) out[j] = static_cast<std::int32_t>(row[static_cast<std::size_t>(j)]);  // ORT wraps int32 the same way
    }
}

// MaxPool on int8 / uint8: the float pool over the exactly representable values.
inline void max_pool_any(ops::context& c) {
  const tensor& x = c.input(0);
  if (x.type() == dtype::float32) return ops::max_pool(c);
  tensor xf(dtype::float32, x.shape());
  for (std::size_t i = 0; i < x.size(); ++i)
    xf.data<float>()[i] = static_cast<float>(x.type() == dtype::int8 ? x.data<std::int8_t>()[i] : x.data<std::uint8_t>()[i]);
  ops::context fc{c.n, c.opset, {&xf}, {}, c.scratch};
  fc.out.resize(c.out.size());
  ops::max_pool(fc);
  tensor& y = c.make_output(0, x.type(), fc.out[0].shape());
  for (std::size_t i = 0; i < y.size(); ++i) {
    const float v = fc.out[0].data<float>()[i];
    if (x.type() == dtype::int8) y.data<std::int8_t>()[i] = static_cast<std::int8_t>(v);
    else y.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(v);
  }
}

}  // namespace sim

/// The reference executor's ops plus what the exported models add: QuantizeLinear /
/// DequantizeLinear (the fake-quant model) and the deploy model's integer ops, each computed as
/// ONNX Runtime's CPU kernel computes it.
inline const op_table& simulation_ops() {
  static const op_table table = op_table(builtin_ops()).add(op_table{
      {"QuantizeLinear", sim::quantize_linear}, {"DequantizeLinear", sim::dequantize_linear},
      {"QLinearConv", sim::qlinear_conv},       {"ConvInteger", sim::conv_integer},
      {"MatMulInteger", sim::matmul_integer},   {"MaxPool", sim::max_pool_any}});
  return table;
}

/// Runs a model that may contain QuantizeLinear / DequantizeLinear (and the deploy model's
/// integer ops) with amctq's implementations (`ops`, simulation_ops() unless an engine passes
/// its own); returns the graph outputs.
inline std::map<std::string, tensor> simulate(const model& m, const std::map<std::string, tensor>& inputs,
                                              const op_table& ops = simulation_ops()) {
  executor ex(m, ops);
  return ex.run(inputs);
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_INTEGER_SIM_HPP
