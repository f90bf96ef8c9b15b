// The deploy model: int8 activations and weights, int32 biases, integer operators ONNX
// Runtime's CPU provider executes (standard ONNX domain only).
//  - A layer's input is an int8 tensor with its calibrated (scale_d, offset_d): QuantizeLinear of
//    the float tensor, or, when the producing layer can requantize straight into it, that
//    layer's own int8 output.
//  - Conv -> QLinearConv (per-channel weight scales, zero point 0, int32 bias) when its output
//    reaches exactly one quantized layer through ops that commute with quantization (Relu,
//    MaxPool, Pad, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Identity, Dropout); the
//    QLinearConv then writes that layer's input grid directly. A Relu on that path is folded
//    into the requantization clamp when the grid's zero point is its minimum (AMCT's
//    asymmetric grid of a non-negative range), else it becomes Max(q, zero_point) on int8.
//    Otherwise Conv -> ConvInteger + Add(int32 bias) + Cast + Mul(s_d * s_w) in float.
//  - AveragePool -> depthwise QLinearConv / ConvInteger with unit int8 weights and weight scale
//    1/kernel_size (exact for count_include_pad or unpadded windows, ceil_mode 0).
//  - Gemm / MatMul -> MatMulInteger + Add(int32 bias) + Cast + Mul(s_d * s_w[c]): a float
//    output, requantized by the next layer's QuantizeLinear.
//  - ConvTranspose (no integer ONNX op) runs as a float ConvTranspose over the integer codes
//    (DequantizeLinear with scale 1 of x - x_zp, w and the int32 bias) + Mul(s_d * s_w[c]): the
//    float sums of small integers are exact, so it is bit-exact like the integer ops.
// Every integer op above is simulated bit for bit by graph/integer_sim.hpp.
#ifndef AMCTQ_GRAPH_PASSES_LOWER_QOPERATOR_HPP
#define AMCTQ_GRAPH_PASSES_LOWER_QOPERATOR_HPP

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/passes/graph_edit.hpp"
#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/quant_layers.hpp"
#include "amctq/graph/quant_record.hpp"

namespace amctq::graph {

namespace detail {

inline bool commutes_with_quantize(const graph& g, const node& n, std::int64_t opset) {
  static const std::set<std::string> ops = {"Relu", "MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze",
                                            "Unsqueeze", "Identity", "Dropout", "Pad"};
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  if (!ops.count(n.op_type) || n.outputs.empty() || n.inputs.empty()) return false;
  for (std::size_t i = 1; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty()) return false;  // MaxPool indices, Dropout mask
  // The int8 Pad needs its pad value as a constant to quantize it (a missing one is 0).
  if (n.op_type == "Pad")
    return opset >= 11 && (n.inputs.size() < 3 || n.inputs[2].empty() ||
                           passes::detail::scalar_constant(g, n.inputs[2]).has_value());
  return true;
}

inline std::string key_of(const std::string& t, const quant_params& p) {
  return t + "|" + std::to_string(p.scale[0]) + "|" + std::to_string(p.zero_point[0]) + "|" + std::to_string(p.qmin) +
         "|" + std::to_string(p.qmax);
}

/// A quantized value of `v` on grid `p` (what QuantizeLinear with the grid clamp gives).
inline std::int8_t quantize_one(float v, const quant_params& p) {
  float q = std::nearbyint(v / p.scale[0]) + static_cast<float>(p.zero_point[0]);
  q = std::min(std::max(q, static_cast<float>(p.qmin)), static_cast<float>(p.qmax));
  return static_cast<std::int8_t>(q);
}

inline std::vector<std::int64_t> channel_shape(std::size_t c, std::size_t rank, std::size_t axis) {
  std::vector<std::int64_t> s(rank, 1);
  s[axis] = static_cast<std::int64_t>(c);
  return s;
}

}  // namespace detail

/// Integers up to this magnitude are exact in float, and so is every sum of them that stays below it.
inline constexpr double float_exact_integers = 16777216.0;  // 2^24

/// The largest |partial sum| a float ConvTranspose over the integer codes w (weight layout
/// [C_in, C_out / groups, k...]) can reach for layer r: over output channels, sum |w| over the
/// channel's taps * max |x_code - x_zp| + |bias_code| (bias_q when with_bias). While it is below
/// 2^24 every partial sum is an integer that float holds exactly, so ONNX Runtime and amctq
/// agree bit for bit whatever order they sum in.
inline double conv_transpose_sum_bound(const layer_record& r, const tensor& w, std::int64_t groups, bool with_bias = true) {
  AMCTQ_CHECK(w.type() == dtype::int8 && w.rank() >= 3 && groups >= 1 && w.dim(0) % groups == 0, errc::invalid_argument,
              "conv_transpose_sum_bound", "layer '", r.name, "': expected int8 ConvTranspose codes with C_in divisible by ",
              groups);
  std::int64_t taps = 1;
  for (std::size_t d = 2; d < w.rank(); ++d) taps *= w.dim(d);
  const tensor_view<const std::int8_t, 3> codes(w.data<std::int8_t>(), {w.dim(0), w.dim(1), taps});
  const weight_layout L = conv_transpose_weight_layout(codes, groups);
  std::vector<double> sum_abs(static_cast<std::size_t>(L.out_channels()), 0.0);
  for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
    const auto block = group_view(codes.data_handle(), L, g);  // [out, in, taps] of group g
    for (std::ptrdiff_t o = 0; o < L.out_per_group; ++o) {
      double& s = sum_abs[static_cast<std::size_t>(g * L.out_per_group + o)];
      for (std::ptrdiff_t i = 0; i < L.in_per_group; ++i)
        for (std::ptrdiff_t k = 0; k < L.spatial; ++k) s += std::abs(static_cast<int>(block(o, i, k)));
    }
  }
  const std::int32_t zp = r.act.zero_point.empty() ? 0 : r.act.zero_point[0];
  const double x_max = std::max(r.act.qmax - zp, zp - r.act.qmin);
  double bound = 0.0;
  for (std::size_t o = 0; o < sum_abs.size(); ++o) {
    const double b = with_bias && o < r.bias_q.size() ? std::fabs(static_cast<double>(r.bias_q[o])) : 0.0;
    bound = std::max(bound, sum_abs[o] * x_max + b);
  }
  return bound;
}

/// How the deploy model sums a ConvTranspose layer's codes in float. One part when its
/// conv_transpose_sum_bound is below 2^24. Otherwise the codes are split as w = 16 * high + low
/// with high, low in [-8, 8]: each part's sums are 16 times smaller, both are exact, and
/// 16 * high_sum + low_sum is one correctly rounded float addition of the exact accumulator —
/// what amctq's simulation computes too. `exact` is false when even the parts pass 2^24 (the
/// bias, when there is one, goes with the low part).
struct conv_transpose_form {
  std::vector<tensor> parts;  ///< {codes} or {high, low}
  bool exact = true;
};

inline constexpr int conv_transpose_split_radix = 16;

inline conv_transpose_form conv_transpose_parts(const layer_record& r, std::int64_t groups) {
  conv_transpose_form f;
  if (conv_transpose_sum_bound(r, r.weight_q, groups) < float_exact_integers) {
    f.parts.push_back(r.weight_q);
    return f;
  }
  tensor high(dtype::int8, r.weight_q.shape()), low(dtype::int8, r.weight_q.shape());
  const std::int8_t* w = r.weight_q.data<std::int8_t>();
  for (std::size_t i = 0; i < r.weight_q.size(); ++i) {
    const int h = static_cast<int>(std::lround(static_cast<double>(w[i]) / conv_transpose_split_radix));
    high.data<std::int8_t>()[i] = static_cast<std::int8_t>(h);
    low.data<std::int8_t>()[i] = static_cast<std::int8_t>(w[i] - conv_transpose_split_radix * h);
  }
  f.exact = conv_transpose_sum_bound(r, high, groups, false) < float_exact_integers &&
            conv_transpose_sum_bound(r, low, groups, true) < float_exact_integers;
  f.parts = {std::move(high), std::move(low)};
  return f;
}

/// Where the deploy model may differ from amctq's integer simulation (integer_sim.hpp), one
/// sentence per layer: today the ConvTranspose layers that even the split form of
/// conv_transpose_parts cannot keep below 2^24, where the last bit of some outputs can then
/// depend on the summation order.
inline std::vector<std::string> deploy_exactness_notes(const model& float_model, const std::vector<quant_layer>& layers,
                                                       const quant_record& rec) {
  std::vector<std::string> notes;
  for (const quant_layer& l : layers) {
    if (l.op_type != "ConvTranspose") continue;
    const layer_record* r = rec.find(l.name);
    if (r == nullptr) continue;
    const std::int64_t groups = float_model.main.nodes.at(l.node_index).get_int("group", 1);
    if (conv_transpose_parts(*r, groups).exact) continue;
    std::ostringstream os;
    os << "layer '" << l.name << "' (ConvTranspose): its float accumulator's partial sums can reach "
       << conv_transpose_sum_bound(*r, r->weight_q, groups)
       << " >= 2^24 even when split in two, so ONNX Runtime may differ from amctq's integer simulation in the last "
          "bit of some outputs";
    notes.push_back(os.str());
  }
  return notes;
}

/// The deploy model of `float_model` (BatchNorm folded, balanced) under `rec`.
inline model lower_qoperator(const model& float_model, const std::vector<quant_layer>& layers, const quant_record& rec) {
  AMCTQ_CHECK(float_model.opset() >= 13, errc::unsupported, "save_model", "the model's opset ", float_model.opset(),
              " is below 13, the first with per-axis DequantizeLinear");
  model m = float_model;
  graph& g = m.main;
  const std::int64_t opset = m.opset();
  std::map<std::string, std::vector<std::size_t>> consumers;
  for (std::size_t k = 0; k < g.nodes.size(); ++k)
    for (const auto& i : g.nodes[k].inputs)
      if (!i.empty()) consumers[i].push_back(k);
  std::set<std::string> graph_outputs;
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);
  std::map<std::size_t, std::size_t> layer_at;  // node index -> layer index
  for (std::size_t i = 0; i < layers.size(); ++i) layer_at[layers[i].node_index] = i;
  std::vector<const layer_record*> recs;
  for (const auto& l : layers) {
    const layer_record* r = rec.find(l.name);
    AMCTQ_CHECK(r != nullptr, errc::invalid_argument, "save_model", "no record for layer '", l.name, "'");
    detail::check_exportable(*r);
    recs.push_back(r);
  }

  // Which layers requantize straight into a downstream layer's input grid, and the nodes on the way.
  struct requant_path {
    std::size_t target = 0;             // layer index
    std::vector<std::size_t> chain;     // node indices between, in order
  };
  std::map<std::size_t, requant_path> requant;  // layer index -> path
  std::map<std::size_t, std::size_t> chain_target;  // chain node index -> target layer index
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const quant_layer& l = layers[i];
    if (l.op_type != "Conv" && l.op_type != "AveragePool") continue;
    requant_path p;
    std::string t = l.output;
    bool ok = false;
    while (true) {
      if (graph_outputs.count(t)) break;
      auto it = consumers.find(t);
      if (it == consumers.end() || it->second.size() != 1) break;
      const std::size_t k = it->second[0];
      const node& c = g.nodes[k];
      std::size_t reads = 0;
      for (const auto& in : c.inputs) reads += in == t;
      if (reads != 1 || c.inputs[0] != t) break;
      auto li = layer_at.find(k);
      if (li != layer_at.end()) {
        p.target = li->second;
        ok = true;
        break;
      }
      if (!detail::commutes_with_quantize(g, c, opset)) break;
      p.chain.push_back(k);
      t = c.outputs[0];
    }
    if (!ok) continue;
    requant[i] = p;
    for (auto k : p.chain) chain_target[k] = p.target;
  }

  std::vector<node> out;
  std::map<std::string, std::string> int8_of;  // key_of(float tensor, grid) -> int8 tensor
  // The int8 input of layer i, quantizing the float tensor when no layer produced it.
  auto int8_input = [&](std::size_t i) {
    const quant_params& p = recs[i]->act;
    const std::string key = detail::key_of(layers[i].input, p);
    auto it = int8_of.find(key);
    if (it != int8_of.end()) return it->second;
    const std::string q = detail::emit_quantize(g, out, layers[i].input, layers[i].name + "_input", p);
    int8_of[key] = q;
    return q;
  };
  auto x_params = [&](std::size_t i) {
    const std::string tag = layers[i].name + "_x";
    detail::add_init(g, tag + "_scale", detail::scale_tensor(recs[i]->act.scale, false));
    detail::add_init(g, tag + "_zero_point", detail::int8_zero_points(recs[i]->act.zero_point, false));
    return std::make_pair(tag + "_scale", tag + "_zero_point");
  };

  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    node n = g.nodes[k];
    auto ct = chain_target.find(k);
    if (ct != chain_target.end()) {
      const quant_params& p = recs[ct->second]->act;
      if (n.op_type == "Relu") {
        // Relu(x) quantized is max(q, zero_point); a no-op when the grid starts at its zero point.
        if (p.zero_point[0] <= p.qmin) {
          out.push_back(detail::make_node("Identity", n.name, {n.inputs[0]}, {n.outputs[0]}));
        } else {
          detail::add_init(g, n.name + "_zero_point", tensor::from<std::int8_t>({}, {static_cast<std::int8_t>(p.zero_point[0])}));
          out.push_back(detail::make_node("Max", n.name, {n.inputs[0], n.name + "_zero_point"}, {n.outputs[0]}));
        }
        continue;
      }
      if (n.op_type == "Dropout") {  // inference Dropout is the identity, and ORT's takes no int8
        out.push_back(detail::make_node("Identity", n.name, {n.inputs[0]}, {n.outputs[0]}));
        continue;
      }
      if (n.op_type == "Pad") {
        // commutes_with_quantize admitted this Pad only with a constant pad value.
        const float v = n.inputs.size() > 2 && !n.inputs[2].empty() ? *passes::detail::scalar_constant(g, n.inputs[2]) : 0.0f;
        if (n.inputs.size() < 3) n.inputs.resize(3);
        n.inputs[2] = n.name + "_quantized_value";
        detail::add_init(g, n.inputs[2], tensor::from<std::int8_t>({}, {detail::quantize_one(v, p)}));
      }
      out.push_back(std::move(n));
      continue;
    }
    auto li = layer_at.find(k);
    if (li == layer_at.end()) {
      out.push_back(std::move(n));
      continue;
    }
    const std::size_t i = li->second;
    const quant_layer& l = layers[i];
    const layer_record& r = *recs[i];
    const std::string x = int8_input(i);
    const auto xp = x_params(i);

    // Weight codes, scales and the conv attributes of the integer op.
    tensor wq;
    std::vector<float> ws;
    std::vector<attribute> conv_attrs;
    std::vector<float> bias_scale;  // s_d * s_w per output channel (or one)
    if (l.op_type == "AveragePool") {
      AMCTQ_CHECK(r.input_shape.size() >= 3, errc::invalid_argument, "save_model", "layer '", l.name,
                  "': the calibration did not record the input shape");
      const auto kernel = n.get_ints("kernel_shape");
      const auto pads = n.get_ints("pads");
      const bool padded = std::any_of(pads.begin(), pads.end(), [](std::int64_t v) { return v != 0; });
      const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
      const bool exact = n.get_int("ceil_mode", 0) == 0 && (auto_pad == "NOTSET" || auto_pad == "VALID") &&
                         (!padded || n.get_int("count_include_pad", 0) != 0);
      AMCTQ_CHECK(exact, errc::unsupported, "save_model", "layer '", l.name,
                  "': AveragePool with ceil_mode or padding excluded from the count has no exact integer form; "
                  "add it to skip_layers");
      const std::int64_t C = r.input_shape[1];
      std::int64_t K = 1;
      std::vector<std::int64_t> wshape{C, 1};
      for (auto d : kernel) {
        K *= d;
        wshape.push_back(d);
      }
      wq = tensor(dtype::int8, wshape);
      std::fill(wq.data<std::int8_t>(), wq.data<std::int8_t>() + wq.size(), std::int8_t{1});
      ws = {1.0f / static_cast<float>(K)};
      for (const char* a : {"kernel_shape", "strides", "pads", "dilations", "auto_pad"})
        if (const attribute* at = n.find(a)) conv_attrs.push_back(*at);
      conv_attrs.push_back(detail::int_attr("group", C));
      bias_scale = {r.act.scale[0] * ws[0]};
    } else {
      wq = r.weight_q;
      ws = r.wts.scale;
      bias_scale = detail::bias_scales(r, r.wts.channels());
      for (const auto& a : n.attributes)
        if (a.name != "alpha" && a.name != "beta" && a.name != "transB" && a.name != "transA") conv_attrs.push_back(a);
    }
    const bool vec = ws.size() > 1;
    const std::string wt = l.name + "_weight";

    if (l.op_type == "ConvTranspose") {
      // No integer ONNX op, so the float ConvTranspose computes the integer accumulator: it reads
      // the codes (x - x_zp, w, and the int32 bias) as floats through DequantizeLinear with
      // scale 1, and a Mul by s_d * s_w[c] follows, as after ConvInteger. Integer-valued float
      // sums are exact while every partial sum stays below 2^24, so ORT (MLAS) and amctq's
      // executor agree bit for bit whatever their summation order; layers past that bound sum
      // their codes in two parts (conv_transpose_parts). Dequantizing to real values first would
      // round every partial sum, differently in each.
      const conv_transpose_form form = conv_transpose_parts(r, n.get_int("group", 1));
      const bool split = form.parts.size() == 2;
      detail::add_init(g, l.name + "_unit_scale", tensor::from<float>({}, {1.0f}));
      detail::add_init(g, wt + "_zero_point", tensor::from<std::int8_t>({}, {std::int8_t{0}}));
      out.push_back(detail::make_node("DequantizeLinear", l.name + "_x_codes", {x, l.name + "_unit_scale", xp.second},
                                      {l.name + "_x_codes"}));
      std::string bias_codes;
      if (!l.bias.empty()) {
        const std::string bt = l.name + "_bias";
        detail::add_init(g, bt + "_quantized",
                         tensor::from<std::int32_t>({static_cast<std::int64_t>(r.bias_q.size())}, r.bias_q));
        detail::add_init(g, bt + "_zero_point", tensor::from<std::int32_t>({}, {0}));
        out.push_back(detail::make_node("DequantizeLinear", bt + "_codes",
                                        {bt + "_quantized", l.name + "_unit_scale", bt + "_zero_point"}, {bt + "_codes"}));
        bias_codes = bt + "_codes";
      }
      const std::string y = n.outputs[0];
      std::vector<std::string> sums;
      for (std::size_t k = 0; k < form.parts.size(); ++k) {
        const std::string tag = split ? (k == 0 ? "_high" : "_low") : "";
        const std::string part = wt + tag;
        detail::add_init(g, part + "_quantized", form.parts[k]);
        out.push_back(detail::make_node("DequantizeLinear", part + "_codes",
                                        {part + "_quantized", l.name + "_unit_scale", wt + "_zero_point"}, {part + "_codes"}));
        node c = n;
        c.name = split ? l.name + tag : n.name;
        c.inputs[0] = l.name + "_x_codes";
        c.inputs[1] = part + "_codes";
        if (k + 1 == form.parts.size() && !bias_codes.empty()) c.inputs[2] = bias_codes;
        else if (c.inputs.size() > 2) c.inputs.resize(2);
        c.outputs[0] = l.name + "_acc_float" + tag;
        sums.push_back(c.outputs[0]);
        out.push_back(std::move(c));
      }
      std::string acc = sums[0];
      if (split) {
        detail::add_init(g, l.name + "_split_radix",
                         tensor::from<float>({}, {static_cast<float>(conv_transpose_split_radix)}));
        out.push_back(detail::make_node("Mul", l.name + "_high_scale", {sums[0], l.name + "_split_radix"},
                                        {l.name + "_acc_high_scaled"}));
        acc = l.name + "_acc_float";
        out.push_back(detail::make_node("Add", l.name + "_parts_sum", {l.name + "_acc_high_scaled", sums[1]}, {acc}));
      }
      detail::add_init(g, l.name + "_output_scale",
                       tensor::from<float>(detail::channel_shape(bias_scale.size(), std::max<std::size_t>(r.input_shape.size(), 3), 1),
                                           bias_scale));
      out.push_back(detail::make_node("Mul", l.name + "_rescale", {acc, l.name + "_output_scale"}, {y}));
      continue;
    }

    const bool is_conv = l.op_type == "Conv" || l.op_type == "AveragePool";
    const std::size_t channels = is_conv ? static_cast<std::size_t>(wq.dim(0)) : 0;
    std::string acc = l.name + "_acc";
    if (is_conv) {
      detail::add_init(g, wt + "_quantized", wq);
      auto rq = requant.find(i);
      if (rq != requant.end()) {
        detail::add_init(g, wt + "_scale", detail::scale_tensor(ws, vec));
        detail::add_init(g, wt + "_zero_point", detail::int8_zero_points(std::vector<std::int32_t>(ws.size(), 0), vec));
        const quant_params& yp = recs[rq->second.target]->act;
        const std::string yt = layers[rq->second.target].name + "_y_of_" + l.name;
        detail::add_init(g, yt + "_scale", detail::scale_tensor(yp.scale, false));
        detail::add_init(g, yt + "_zero_point", detail::int8_zero_points(yp.zero_point, false));
        std::vector<std::string> in = {x, xp.first, xp.second, wt + "_quantized", wt + "_scale", wt + "_zero_point",
                                       yt + "_scale", yt + "_zero_point"};
        if (!r.bias_q.empty()) {
          detail::add_init(g, l.name + "_bias_quantized",
                           tensor::from<std::int32_t>({static_cast<std::int64_t>(r.bias_q.size())}, r.bias_q));
          in.push_back(l.name + "_bias_quantized");
        }
        const bool narrow = yp.qmin > -128 || yp.qmax < 127;
        const std::string y = narrow ? l.output + "_int8" : l.output;
        out.push_back(detail::make_node("QLinearConv", l.name, in, {y}, conv_attrs));
        if (narrow) {  // sub-8-bit grid: int8 saturation is wider than the grid
          detail::add_init(g, yt + "_qmin", tensor::from<std::int8_t>({}, {static_cast<std::int8_t>(yp.qmin)}));
          detail::add_init(g, yt + "_qmax", tensor::from<std::int8_t>({}, {static_cast<std::int8_t>(yp.qmax)}));
          out.push_back(detail::make_node("Clip", l.name + "_grid_clip", {y, yt + "_qmin", yt + "_qmax"}, {l.output}));
        }
        // The target reads its input from the chain's end, already on its grid.
        const quant_layer& tl = layers[rq->second.target];
        int8_of[detail::key_of(tl.input, yp)] = tl.input;
        continue;
      }
      // ORT's ConvInteger takes only a per-tensor weight zero point; the weights are symmetric
      // (every zero point 0), so one scalar 0 serves per-channel weights too.
      detail::add_init(g, wt + "_zero_point", tensor::from<std::int8_t>({}, {std::int8_t{0}}));
      out.push_back(detail::make_node("ConvInteger", l.name, {x, wt + "_quantized", xp.second, wt + "_zero_point"},
                                      {acc}, conv_attrs));
    } else {
      // Gemm / MatMul: MatMulInteger needs B as [K, N].
      tensor b = wq;
      const bool trans = l.op_type == "Gemm" && n.get_int("transB", 0) != 0;
      if (trans) {
        const std::int64_t N = wq.dim(0), K = wq.dim(1);
        b = tensor(dtype::int8, {K, N});
        const std::int8_t* s = wq.data<std::int8_t>();
        std::int8_t* d = b.data<std::int8_t>();
        for (std::int64_t a = 0; a < N; ++a)
          for (std::int64_t c = 0; c < K; ++c) d[c * N + a] = s[a * K + c];
      }
      detail::add_init(g, wt + "_quantized", b);
      out.push_back(detail::make_node("MatMulInteger", l.name, {x, wt + "_quantized", xp.second}, {acc}));
    }
    // Float output: int32 accumulator (+ int32 bias) times s_d * s_w per output channel.
    const std::size_t rank = is_conv ? r.input_shape.size() : 0;
    auto per_channel_shape = [&](std::size_t c) {
      return is_conv ? detail::channel_shape(c, std::max<std::size_t>(rank, 3), 1)
                     : std::vector<std::int64_t>{static_cast<std::int64_t>(c)};
    };
    if (!r.bias_q.empty()) {
      detail::add_init(g, l.name + "_bias_quantized", tensor::from<std::int32_t>(per_channel_shape(r.bias_q.size()), r.bias_q));
      out.push_back(detail::make_node("Add", l.name + "_bias_add", {acc, l.name + "_bias_quantized"}, {acc + "_biased"}));
      acc += "_biased";
    }
    attribute to = detail::int_attr("to", static_cast<std::int64_t>(dtype::float32));
    out.push_back(detail::make_node("Cast", l.name + "_cast", {acc}, {acc + "_float"}, {to}));
    detail::add_init(g, l.name + "_output_scale",
                     tensor::from<float>(per_channel_shape(bias_scale.size()), bias_scale));
    out.push_back(detail::make_node("Mul", l.name + "_rescale", {acc + "_float", l.name + "_output_scale"}, {l.output}));
    (void)channels;
  }
  g.nodes = std::move(out);
  passes::detail::drop_unused_constants(g);
  g.value_infos.clear();
  m.producer_name = "amctq";
  return m;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_PASSES_LOWER_QOPERATOR_HPP
