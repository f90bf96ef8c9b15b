// amctq's own execution of the exported models: the reference executor's float ops plus
// QuantizeLinear / DequantizeLinear (what the fake-quant model needs) and the integer ops of the
// deploy model, computed the way ONNX Runtime's CPU kernels compute them, so the deploy
// model's outputs can be predicted bit for bit:
//  - QuantizeLinear: q = saturate(round_half_even(x / s) + zp), division in float;
//  - DequantizeLinear: (float)(q - zp) * s;
//  - QLinearConv: exact int32 accumulation of (x - x_zp) * (w - w_zp) plus the int32 bias, then
//    MLAS's requantisation: multiplier m[c] = x_scale * w_scale[c] / y_scale in float,
//    v = float(acc) * m[c], clamped to [qmin - y_zp, qmax - y_zp], round half-even, + y_zp.
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

/// The extra ops, by op_type, that amctq's simulation adds to the reference executor's.
inline const std::unordered_map<std::string, op_function>& extra_ops() {
  static const std::unordered_map<std::string, op_function> table = {
      {"QuantizeLinear", quantize_linear}, {"DequantizeLinear", dequantize_linear}};
  return table;
}

}  // namespace sim

/// Runs a model that may contain QuantizeLinear / DequantizeLinear (and the deploy model's
/// integer ops) with amctq's implementations; returns the graph outputs.
inline std::map<std::string, tensor> simulate(const model& m, const std::map<std::string, tensor>& inputs) {
  const graph& g = m.main;
  const auto order = topological_order(g);
  std::unordered_map<std::string, tensor> values;
  for (const auto& i : g.initializers) values[i.name] = i.value;
  for (const auto& [k, v] : inputs) values[k] = v;
  std::vector<float> scratch;
  for (std::size_t k : order) {
    const node& n = g.nodes[k];
    op_function fn = nullptr;
    if (auto e = sim::extra_ops().find(n.op_type); e != sim::extra_ops().end()) fn = e->second;
    else if (auto b = builtin_ops().find(n.op_type); b != builtin_ops().end() && is_default_domain(n.domain)) fn = b->second;
    AMCTQ_CHECK(fn != nullptr, errc::unsupported, "simulate", "node '", n.name, "' (", n.op_type, ") is not supported");
    ops::context ctx{n, m.opset(), {}, {}, scratch};
    std::size_t count = n.inputs.size();
    while (count > 0 && n.inputs[count - 1].empty()) --count;
    ctx.in.resize(count, nullptr);
    for (std::size_t i = 0; i < count; ++i) {
      if (n.inputs[i].empty()) continue;
      auto it = values.find(n.inputs[i]);
      AMCTQ_CHECK(it != values.end(), errc::invalid_argument, "simulate", "node '", n.name, "': input '", n.inputs[i],
                  "' has no value");
      ctx.in[i] = &it->second;
    }
    ctx.out.resize(n.outputs.size());
    fn(ctx);
    for (std::size_t i = 0; i < n.outputs.size(); ++i)
      if (!n.outputs[i].empty()) values[n.outputs[i]] = std::move(ctx.out[i]);
  }
  std::map<std::string, tensor> out;
  for (const auto& o : g.outputs) out[o.name] = values.at(o.name);
  return out;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_INTEGER_SIM_HPP
