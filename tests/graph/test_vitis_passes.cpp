// The Vitis AI global passes: ReLU6 -> ReLU rewrites exactly the ReLU6 Clips; cross-layer
// equalisation keeps the float function (1e-5 relative) while shrinking the spread of
// per-channel weight ranges; empirical bias correction removes most of the mean output error a
// weight quantization introduces.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "amctq/graph/passes/correct_bias.hpp"
#include "amctq/graph/passes/equalize_cross_layer.hpp"
#include "amctq/graph/passes/relu6_to_relu.hpp"
#include "graph/builder.hpp"

namespace test_vitis_passes {

using namespace amctq;
using amctq::test::attr_f;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::attr_t;
using amctq::test::ft;
using amctq::test::info;

namespace {

std::mt19937 rng(11);

std::vector<float> random(std::size_t n, float lo = -1, float hi = 1) { return amctq::test::uniform_floats(rng, n, lo, hi); }

/// Weights whose output channel c (of `channels`, each `per` values long, outermost) is scaled
/// by 10^u, u uniform in [-1.5, 1.5]: the wide spread CLE exists to fix.
std::vector<float> spread_weights(std::size_t channels, std::size_t per) {
  auto w = random(channels * per);
  std::uniform_real_distribution<float> u(-1.5f, 1.5f);
  for (std::size_t c = 0; c < channels; ++c) {
    const float s = std::pow(10.0f, u(rng));
    for (std::size_t i = 0; i < per; ++i) w[c * per + i] *= s;
  }
  return w;
}

struct model_builder {
  graph::model m;
  explicit model_builder(std::int64_t opset = 13) {
    m.opset_imports.push_back({"", opset});
    m.main.inputs.push_back(info("x", graph::dtype::float32));
    m.main.outputs.push_back(info("y", graph::dtype::float32));
  }
  model_builder& init(const std::string& name, graph::tensor t) {
    graph::initializer i;
    i.name = name;
    i.value = std::move(t);
    m.main.initializers.push_back(std::move(i));
    return *this;
  }
  model_builder& node(const std::string& name, const std::string& op, std::vector<std::string> in,
                      std::vector<std::string> out, std::vector<graph::attribute> attrs = {}) {
    m.main.nodes.push_back(amctq::test::make_node(name, op, std::move(in), std::move(out), std::move(attrs)));
    return *this;
  }
};

graph::tensor run_y(const graph::model& m, const graph::tensor& x) { return graph::run(m, {{"x", x}}).at("y"); }

void check_same(const graph::tensor& a, const graph::tensor& b, float rel = 1e-5f) {
  REQUIRE(a.shape() == b.shape());
  float scale = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) scale = std::max(scale, std::abs(a.data<float>()[i]));
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("element " << i);
    CHECK(std::abs(a.data<float>()[i] - b.data<float>()[i]) <= rel * std::max(1.0f, scale));
  }
}

/// max / min of the per-channel absmax of a layer's weight on one side.
float range_spread(graph::model& m, const std::string& layer, channel_side side) {
  for (auto& n : m.main.nodes) {
    if (n.name != layer) continue;
    graph::tensor& w = m.main.find_initializer(n.inputs[1])->value;
    const auto L = graph::layout_of(n, w);
    const auto r = channel_absmax(tensor_view<const float, 1>(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())}), L, side);
    return *std::max_element(r.begin(), r.end()) / *std::min_element(r.begin(), r.end());
  }
  FAIL("no layer " << layer);
  return 0.0f;
}

}  // namespace

TEST_CASE("relu6_to_relu rewrites exactly the Clip(0, 6) nodes") {
  model_builder b;
  b.init("zero", ft({}, {0})).init("six", ft({}, {6})).init("four", ft({}, {4}));
  b.node("c6_const", "Constant", {}, {"six_c"}, {attr_t("value", ft({}, {6}))});
  b.node("c0_const", "Constant", {}, {"zero_c"}, {attr_t("value", ft({}, {0}))});
  b.node("relu6_init", "Clip", {"x", "zero", "six"}, {"a"});      // exported ReLU6: initializer bounds
  b.node("relu6_const", "Clip", {"a", "zero_c", "six_c"}, {"b"}); // ... or Constant node bounds
  b.node("clip4", "Clip", {"b", "zero", "four"}, {"c"});          // other bound: not a ReLU6
  b.node("clip_min", "Clip", {"c", "zero"}, {"d"});               // no upper bound
  b.node("clip_in", "Clip", {"d", "zero", "hi"}, {"y"});          // bound a graph input overrides
  b.m.main.inputs.push_back(info("hi", graph::dtype::float32));
  CHECK(graph::passes::is_relu6(b.m.main, b.m.main.nodes[2], 13));
  CHECK_FALSE(graph::passes::is_relu6(b.m.main, b.m.main.nodes[4], 13));
  CHECK(graph::passes::relu6_to_relu(b.m) == 2);
  std::vector<std::string> ops;
  for (const auto& n : b.m.main.nodes) ops.push_back(n.op_type);
  // The Constant nodes only fed the rewritten Clips and are gone; "zero" is still read.
  CHECK(ops == std::vector<std::string>{"Relu", "Relu", "Clip", "Clip", "Clip"});
  CHECK(b.m.main.nodes[0].inputs == std::vector<std::string>{"x"});
  CHECK(b.m.main.find_initializer("six") == nullptr);
  CHECK(b.m.main.find_initializer("zero") != nullptr);
  CHECK(b.m.main.find_initializer("four") != nullptr);
  // The meaning changed on purpose: values above 6 now pass the first two nodes.
  const auto y = graph::run(b.m, {{"x", ft({3}, {-1, 3, 9})}, {"hi", ft({}, {100})}}).at("y");
  CHECK(amctq::test::values(y) == std::vector<float>{0, 3, 4});

  model_builder old(10);  // opset < 11: bounds are attributes
  old.node("r6", "Clip", {"x"}, {"t"}, {attr_f("min", 0), attr_f("max", 6)});
  old.node("other", "Clip", {"t"}, {"y"}, {attr_f("min", -1), attr_f("max", 6)});
  CHECK(graph::passes::relu6_to_relu(old.m) == 1);
  CHECK(old.m.main.nodes[0].op_type == "Relu");
  CHECK(old.m.main.nodes[0].attributes.empty());
  CHECK(old.m.main.nodes[1].op_type == "Clip");
}

TEST_CASE("equalize_cross_layer: Conv -> Relu -> MaxPool -> Conv keeps the function, evens the ranges") {
  model_builder b;
  b.init("w1", ft({16, 3, 3, 3}, spread_weights(16, 27))).init("b1", ft({16}, random(16)));
  b.init("w2", ft({4, 16, 3, 3}, random(576))).init("b2", ft({4}, random(4)));
  b.node("conv1", "Conv", {"x", "w1", "b1"}, {"t1"}, {attr_ints("pads", {1, 1, 1, 1})});
  b.node("relu", "Relu", {"t1"}, {"t2"});
  b.node("pool", "MaxPool", {"t2"}, {"t3"}, {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2})});
  b.node("conv2", "Conv", {"t3", "w2", "b2"}, {"y"});
  const auto x = ft({2, 3, 8, 8}, random(384));
  const auto before = run_y(b.m, x);
  const float spread1 = range_spread(b.m, "conv1", channel_side::output);
  const float spread2 = range_spread(b.m, "conv2", channel_side::input);
  const auto rep = graph::passes::equalize_cross_layer(b.m);
  CHECK(rep.pairs == 1);
  CHECK(rep.triplets == 0);
  CHECK(rep.sweeps >= 1);
  CHECK(rep.last_change <= 1e-4f);
  check_same(run_y(b.m, x), before);
  const float after1 = range_spread(b.m, "conv1", channel_side::output);
  MESSAGE("conv1 output-channel range spread (max/min) " << spread1 << " -> " << after1);
  CHECK(after1 < spread1 / 2);
  // Channel c ends with sqrt(r1_c r2_c), whose spread is at most sqrt(spread1 * spread2).
  CHECK(after1 <= std::sqrt(spread1 * spread2) * 1.001f);
  // Each joined channel ends with range sqrt(r1 * r2) on both sides, so the spread is shared.
  CHECK(range_spread(b.m, "conv2", channel_side::input) == doctest::Approx(after1).epsilon(1e-3));
}

TEST_CASE("equalize_cross_layer: Gemm -> Relu -> Gemm with transB, and a three-layer chain converges") {
  model_builder b;
  b.init("w1", ft({8, 5}, spread_weights(8, 5))).init("c1", ft({8}, random(8)));  // transB: [N, K]
  b.init("w2", ft({8, 6}, random(48))).init("c2", ft({1, 6}, random(6)));         // [K, N]
  b.init("w3", ft({3, 6}, spread_weights(3, 6)));
  b.node("fc1", "Gemm", {"x", "w1", "c1"}, {"t1"}, {attr_i("transB", 1), attr_f("beta", 0.5f)});
  b.node("relu", "Relu", {"t1"}, {"t2"});
  b.node("fc2", "Gemm", {"t2", "w2", "c2"}, {"t3"});
  b.node("fc3", "Gemm", {"t3", "w3"}, {"y"}, {attr_i("transB", 1)});
  const auto x = ft({4, 5}, random(20));
  const auto before = run_y(b.m, x);
  const float spread = range_spread(b.m, "fc1", channel_side::output);
  const auto rep = graph::passes::equalize_cross_layer(b.m);
  CHECK(rep.pairs == 2);
  CHECK(rep.sweeps > 1);  // fc2 sits in two chains
  CHECK(rep.last_change <= 1e-4f);
  check_same(run_y(b.m, x), before);
  CHECK(range_spread(b.m, "fc1", channel_side::output) < spread / 2);
}

TEST_CASE("equalize_cross_layer: Conv -> depthwise Conv -> Conv is one triplet") {
  model_builder b;
  b.init("w1", ft({6, 3, 1, 1}, spread_weights(6, 3))).init("b1", ft({6}, random(6)));
  b.init("wd", ft({6, 1, 3, 3}, spread_weights(6, 9))).init("bd", ft({6}, random(6)));
  b.init("w3", ft({4, 6, 1, 1}, random(24)));
  b.node("pw1", "Conv", {"x", "w1", "b1"}, {"t1"});
  b.node("relu1", "Relu", {"t1"}, {"t2"});
  b.node("dw", "Conv", {"t2", "wd", "bd"}, {"t3"}, {attr_i("group", 6), attr_ints("pads", {1, 1, 1, 1})});
  b.node("relu2", "Relu", {"t3"}, {"t4"});
  b.node("pw2", "Conv", {"t4", "w3"}, {"y"});
  const auto x = ft({1, 3, 6, 6}, random(108));
  const auto before = run_y(b.m, x);
  const float spread_dw = range_spread(b.m, "dw", channel_side::output);
  const auto rep = graph::passes::equalize_cross_layer(b.m);
  CHECK(rep.triplets == 1);
  CHECK(rep.pairs == 0);
  check_same(run_y(b.m, x), before);
  CHECK(range_spread(b.m, "dw", channel_side::output) < spread_dw / 2);
  // All three layers end with the same per-channel range cbrt(r1 r2 r3).
  CHECK(range_spread(b.m, "pw1", channel_side::output) == doctest::Approx(range_spread(b.m, "dw", channel_side::output)).epsilon(1e-3));
}

TEST_CASE("equalize_cross_layer: ConvTranspose joins chains with Conv and with itself (groups, bias)") {
  // Conv -> Relu -> ConvTranspose (grouped) -> LeakyRelu -> ConvTranspose -> Relu -> Conv: three
  // pairs. A ConvTranspose weight is [C_in, C_out / groups, k, k]: its output channels are axis 1
  // and the group together, its input channels axis 0.
  model_builder b;
  b.init("w1", ft({8, 3, 3, 3}, spread_weights(8, 27))).init("b1", ft({8}, random(8)));
  std::vector<float> wt1 = spread_weights(8, 2 * 9);  // spread over the next layer's input channels
  b.init("wt1", ft({8, 2, 3, 3}, wt1)).init("bt1", ft({4}, random(4)));  // group 2: 4 outputs
  b.init("wt2", ft({4, 6, 2, 2}, random(96))).init("bt2", ft({6}, random(6)));
  b.init("w3", ft({5, 6, 3, 3}, random(270)));
  b.node("conv1", "Conv", {"x", "w1", "b1"}, {"t1"}, {attr_ints("pads", {1, 1, 1, 1})});
  b.node("relu1", "Relu", {"t1"}, {"t2"});
  b.node("up1", "ConvTranspose", {"t2", "wt1", "bt1"}, {"t3"}, {attr_i("group", 2), attr_ints("strides", {2, 2})});
  b.node("leaky", "LeakyRelu", {"t3"}, {"t4"}, {attr_f("alpha", 0.1f)});
  b.node("up2", "ConvTranspose", {"t4", "wt2", "bt2"}, {"t5"}, {attr_ints("strides", {2, 2})});
  b.node("relu2", "Relu", {"t5"}, {"t6"});
  b.node("conv3", "Conv", {"t6", "w3"}, {"y"});
  const auto x = ft({2, 3, 4, 4}, random(96));
  const auto before = run_y(b.m, x);
  const float spread1 = range_spread(b.m, "conv1", channel_side::output);
  const auto rep = graph::passes::equalize_cross_layer(b.m);
  CHECK(rep.pairs == 3);
  CHECK(rep.triplets == 0);
  CHECK(rep.last_change <= 1e-4f);
  check_same(run_y(b.m, x), before);
  CHECK(range_spread(b.m, "conv1", channel_side::output) < spread1 / 2);
  // Each joint shares its channels' ranges between the two sides.
  CHECK(range_spread(b.m, "up1", channel_side::input) ==
        doctest::Approx(range_spread(b.m, "conv1", channel_side::output)).epsilon(1e-3));
  CHECK(range_spread(b.m, "up2", channel_side::input) ==
        doctest::Approx(range_spread(b.m, "up1", channel_side::output)).epsilon(1e-3));
  CHECK(range_spread(b.m, "conv3", channel_side::input) ==
        doctest::Approx(range_spread(b.m, "up2", channel_side::output)).epsilon(1e-3));
}

TEST_CASE("equalize_cross_layer: a classifier head, conv -> pooling -> Flatten -> Gemm, is a pair") {
  // After Flatten, conv channel c is the block of features [c * b, (c + 1) * b): the Gemm's
  // per-channel range is the max over that block of its weight (both transB forms).
  auto head_input_spread = [](graph::model& m, const std::string& layer, std::int64_t channels) {
    for (auto& n : m.main.nodes) {
      if (n.name != layer) continue;
      const graph::tensor& w = m.main.find_initializer(n.inputs[1])->value;
      const bool tb = n.get_int("transB", 0) != 0;
      const std::int64_t K = tb ? w.dim(1) : w.dim(0), N = tb ? w.dim(0) : w.dim(1), block = K / channels;
      std::vector<float> r(static_cast<std::size_t>(channels), 0.0f);
      for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t o = 0; o < N; ++o) {
          const float v = std::abs(w.data<float>()[tb ? o * K + k : k * N + o]);
          r[static_cast<std::size_t>(k / block)] = std::max(r[static_cast<std::size_t>(k / block)], v);
        }
      return *std::max_element(r.begin(), r.end()) / *std::min_element(r.begin(), r.end());
    }
    FAIL("no layer " << layer);
    return 0.0f;
  };
  for (const bool trans_b : {true, false}) {
    CAPTURE(trans_b);
    SUBCASE("Relu -> AveragePool -> Flatten") {
      model_builder b;
      b.init("w1", ft({6, 3, 3, 3}, spread_weights(6, 27))).init("b1", ft({6}, random(6)));
      b.init("w2", trans_b ? ft({5, 24}, random(120)) : ft({24, 5}, random(120))).init("b2", ft({5}, random(5)));
      b.node("conv", "Conv", {"x", "w1", "b1"}, {"t1"}, {attr_ints("pads", {1, 1, 1, 1})});
      b.node("relu", "Relu", {"t1"}, {"t2"});
      b.node("pool", "AveragePool", {"t2"}, {"t3"}, {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2})});
      b.node("flat", "Flatten", {"t3"}, {"t4"});
      b.node("fc", "Gemm", {"t4", "w2", "b2"}, {"y"}, {attr_i("transB", trans_b ? 1 : 0)});
      const auto x = ft({3, 3, 4, 4}, random(144));
      const auto before = run_y(b.m, x);
      const float spread = range_spread(b.m, "conv", channel_side::output);
      const auto rep = graph::passes::equalize_cross_layer(b.m);
      CHECK(rep.pairs == 1);
      check_same(run_y(b.m, x), before);
      const float after = range_spread(b.m, "conv", channel_side::output);
      CHECK(after < spread / 2);
      CHECK(head_input_spread(b.m, "fc", 6) == doctest::Approx(after).epsilon(1e-3));
    }
    SUBCASE("GlobalAveragePool -> Flatten -> Relu, no bias on the Gemm") {
      model_builder b;
      b.init("w1", ft({6, 2, 1, 1}, spread_weights(6, 2)));
      b.init("w2", trans_b ? ft({4, 6}, random(24)) : ft({6, 4}, random(24)));
      b.node("conv", "Conv", {"x", "w1"}, {"t1"});
      b.node("gap", "GlobalAveragePool", {"t1"}, {"t2"});
      b.node("flat", "Flatten", {"t2"}, {"t3"});
      b.node("relu", "Relu", {"t3"}, {"t4"});
      b.node("fc", "Gemm", {"t4", "w2"}, {"y"}, {attr_i("transB", trans_b ? 1 : 0)});
      const auto x = ft({2, 2, 3, 3}, random(36));
      const auto before = run_y(b.m, x);
      const auto rep = graph::passes::equalize_cross_layer(b.m);
      CHECK(rep.pairs == 1);
      check_same(run_y(b.m, x), before);
      CHECK(head_input_spread(b.m, "fc", 6) ==
            doctest::Approx(range_spread(b.m, "conv", channel_side::output)).epsilon(1e-3));
    }
  }
}

TEST_CASE("equalize_cross_layer: a Pad joins a chain only when it adds no channels and pads with 0 or copies") {
  // conv -> Relu -> Pad -> AveragePool -> Flatten -> Gemm, as PyTorch exports a padded AvgPool2d.
  auto pairs_with_pad = [](std::vector<std::int64_t> pads, float fill, const char* mode) {
    model_builder b;
    b.init("w1", ft({4, 2, 3, 3}, spread_weights(4, 18))).init("b1", ft({4}, random(4)));
    b.init("w2", ft({3, 4 * 3 * 3}, random(108)));
    b.init("fill", ft({}, {fill}));
    graph::tensor p(graph::dtype::int64, {8});
    std::copy(pads.begin(), pads.end(), p.data<std::int64_t>());
    b.node("pads_const", "Constant", {}, {"pads"}, {attr_t("value", p)});
    b.node("conv", "Conv", {"x", "w1", "b1"}, {"t1"});
    b.node("relu", "Relu", {"t1"}, {"t2"});
    b.node("pad", "Pad", {"t2", "pads", "fill"}, {"t3"}, {amctq::test::attr_s("mode", mode)});
    b.node("pool", "AveragePool", {"t3"}, {"t4"}, {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2})});
    b.node("flat", "Flatten", {"t4"}, {"t5"});
    b.node("fc", "Gemm", {"t5", "w2"}, {"y"}, {attr_i("transB", 1)});
    const auto x = ft({2, 2, 6, 6}, random(144));
    const auto before = run_y(b.m, x);  // [2, 4, 4, 4] -> pad 1 each side -> [2, 4, 6, 6] -> pool -> 3x3
    const auto rep = graph::passes::equalize_cross_layer(b.m);
    check_same(run_y(b.m, x), before);
    return rep.pairs;
  };
  CHECK(pairs_with_pad({0, 0, 1, 1, 0, 0, 1, 1}, 0.0f, "constant") == 1);
  CHECK(pairs_with_pad({0, 0, 1, 1, 0, 0, 1, 1}, 0.0f, "reflect") == 1);
  CHECK(pairs_with_pad({0, 0, 1, 1, 0, 0, 1, 1}, 0.5f, "edge") == 1);      // the fill is unused
  CHECK(pairs_with_pad({0, 0, 1, 1, 0, 0, 1, 1}, 0.5f, "constant") == 0);  // s * 0.5 != 0.5
}

TEST_CASE("equalize_cross_layer leaves ReLU6 chains, shared weights and forked outputs alone") {
  model_builder b;
  b.init("w1", ft({4, 2, 1, 1}, spread_weights(4, 2))).init("w2", ft({4, 4, 1, 1}, random(16)));
  b.init("lo", ft({}, {0})).init("hi", ft({}, {6}));
  b.node("conv1", "Conv", {"x", "w1"}, {"t1"});
  b.node("relu6", "Clip", {"t1", "lo", "hi"}, {"t2"});
  b.node("conv2", "Conv", {"t2", "w2"}, {"y"});
  const auto w1 = b.m.main.find_initializer("w1")->value;
  auto rep = graph::passes::equalize_cross_layer(b.m);
  CHECK(rep.pairs == 0);
  CHECK(rep.relu6_skipped == std::vector<std::string>{"conv1 -> conv2"});
  CHECK(b.m.main.find_initializer("w1")->value == w1);
  // After the (opt-in) ReLU6 -> ReLU rewrite the chain is equalised.
  CHECK(graph::passes::relu6_to_relu(b.m) == 1);
  CHECK(graph::passes::equalize_cross_layer(b.m).pairs == 1);

  model_builder fork;
  fork.init("w1", ft({2, 1, 1, 1}, {1, 50})).init("w2", ft({2, 2, 1, 1}, random(4)));
  fork.node("conv1", "Conv", {"x", "w1"}, {"t1"});
  fork.node("conv2", "Conv", {"t1", "w2"}, {"y"});
  fork.node("side", "Relu", {"t1"}, {"z"});
  fork.m.main.outputs.push_back(info("z", graph::dtype::float32));
  CHECK(graph::passes::equalize_cross_layer(fork.m).pairs == 0);

  model_builder shared;
  shared.init("w", ft({2, 2, 1, 1}, {1, 2, 30, 4}));
  shared.node("conv1", "Conv", {"x", "w"}, {"t1"});
  shared.node("conv2", "Conv", {"t1", "w"}, {"y"});
  CHECK(graph::passes::equalize_cross_layer(shared.m).pairs == 0);
}

namespace {

/// Per-tensor symmetric fake quantization of every weight (inputs[1]) to `bits`.
graph::model fake_quant_weights(graph::model m, int bits) {
  for (auto& n : m.main.nodes) {
    if (n.op_type != "Conv" && n.op_type != "Gemm") continue;
    graph::tensor& w = m.main.find_initializer(n.inputs[1])->value;
    float* p = w.data<float>();
    float amax = 0.0f;
    for (std::size_t i = 0; i < w.size(); ++i) amax = std::max(amax, std::abs(p[i]));
    const float s = amax / static_cast<float>((1 << (bits - 1)) - 1);
    for (std::size_t i = 0; i < w.size(); ++i) p[i] = std::nearbyint(p[i] / s) * s;
  }
  return m;
}

/// Mean over channels of |E[y_float - y_quant]| of tensor `t` (channels on axis 1) on x.
double mean_error(const graph::model& f, const graph::model& q, const std::string& t, const graph::tensor& x) {
  auto value = [&](const graph::model& m) { return graph::executor(m).run({{"x", x}}, {t}).at(t); };
  const auto a = value(f), b = value(q);
  const std::size_t C = static_cast<std::size_t>(a.dim(1)), inner = a.size() / static_cast<std::size_t>(a.dim(0)) / C;
  std::vector<double> d(C, 0.0);
  for (std::size_t i = 0; i < a.size(); ++i) d[(i / inner) % C] += a.data<float>()[i] - b.data<float>()[i];
  double e = 0.0;
  for (double v : d) e += std::abs(v) / static_cast<double>(a.size() / C) / static_cast<double>(C);
  return e;
}

}  // namespace

TEST_CASE("correct_bias removes most of the mean output error of quantized weights") {
  model_builder b;
  b.init("w1", ft({8, 3, 3, 3}, random(216))).init("b1", ft({8}, random(8)));
  b.init("w2", ft({5, 8, 3, 3}, random(360)));  // no bias: one is created
  b.init("w3", ft({5, 4}, random(20)));
  b.node("conv1", "Conv", {"x", "w1", "b1"}, {"t1"});
  b.node("relu", "Relu", {"t1"}, {"t2"});
  b.node("conv2", "Conv", {"t2", "w2"}, {"t3"});
  b.node("pool", "GlobalAveragePool", {"t3"}, {"t4"});
  b.node("flat", "Flatten", {"t4"}, {"t5"});
  b.node("fc", "Gemm", {"t5", "w3", "c3"}, {"y"}, {attr_f("beta", 2.0f)});
  b.init("c3", ft({4}, random(4)));
  graph::model f = b.m;
  graph::model q = fake_quant_weights(b.m, 4);
  // Inputs with a non-zero mean, so weight errors move the output means.
  std::vector<std::map<std::string, graph::tensor>> calib;
  for (int i = 0; i < 2; ++i) calib.push_back({{"x", ft({8, 3, 6, 6}, random(864, 0.0f, 1.0f))}});
  const auto test_x = ft({16, 3, 6, 6}, random(1728, 0.0f, 1.0f));
  const double e1 = mean_error(f, q, "t1", test_x), e3 = mean_error(f, q, "t3", test_x), ey = mean_error(f, q, "y", test_x);
  REQUIRE(e1 > 1e-3);
  const auto rep = graph::passes::correct_bias(f, q, calib, {"fc", "conv2", "conv1"});
  REQUIRE(rep.size() == 3);
  CHECK(rep[0].layer == "conv1");  // execution order
  CHECK(rep[1].layer == "conv2");
  CHECK(rep[1].created);
  CHECK_FALSE(rep[0].created);
  CHECK(rep[0].mean_abs_shift > 0);
  // Same graph in both models; the float model's function only moved by the bias shifts.
  CHECK(f.main.nodes[2].inputs.size() == 3);
  CHECK(f.main.nodes[2].inputs[2] == q.main.nodes[2].inputs[2]);
  CHECK(f.main.nodes[5].get_float("beta", 1.0f) == 1.0f);
  graph::model f0 = b.m;  // the reference: the untouched float model
  const double a1 = mean_error(f0, q, "t1", test_x), a3 = mean_error(f0, q, "t3", test_x), ay = mean_error(f0, q, "y", test_x);
  MESSAGE("mean |E[y_f - y_q]| before / after: conv1 " << e1 << " / " << a1 << ", conv2 " << e3 << " / " << a3
                                                      << ", fc " << ey << " / " << ay);
  CHECK(a1 < 0.3 * e1);
  CHECK(a3 < 0.3 * e3);
  CHECK(ay < 0.5 * ey);

  // All layers in one quantized pass: the first layer's correction is the same, the later ones
  // also absorb the upstream shift that sequential correction removes first.
  graph::model f1 = b.m, q1 = fake_quant_weights(b.m, 4);
  graph::passes::bias_correction_options one_pass;
  one_pass.sequential = false;
  const auto rep1 = graph::passes::correct_bias(f1, q1, calib, {"conv1", "conv2", "fc"}, one_pass);
  REQUIRE(rep1.size() == 3);
  CHECK(rep1[0].mean_abs_shift == doctest::Approx(rep[0].mean_abs_shift));
  CHECK(f1.main.find_initializer("b1")->value == f.main.find_initializer("b1")->value);
  CHECK(rep1[1].mean_abs_shift != doctest::Approx(rep[1].mean_abs_shift));

  CHECK_THROWS_WITH_AS(graph::passes::correct_bias(f, q, calib, {"relu"}),
                       doctest::Contains("layer 'relu' (Relu) has no bias input"), amctq::error);
  CHECK_THROWS_WITH_AS(graph::passes::correct_bias(f, q, calib, {"nope"}), doctest::Contains("no layer 'nope'"),
                       amctq::error);
}

}  // namespace test_vitis_passes
