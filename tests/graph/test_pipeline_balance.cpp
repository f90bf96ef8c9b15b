// DMQ balance in the pipeline: after calibrate() the float model holds W · s and a Mul(x, 1/s)
// in front of each balanced layer, and computes the same function as before (1e-5 relative) for
// Conv, depthwise Conv, ConvTranspose, Gemm, MatMul and layers whose input also feeds other nodes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "amctq/graph/passes/insert_balance.hpp"
#include "amctq/graph/pipeline.hpp"
#include "graph/builder.hpp"

namespace test_pipeline_balance {

using namespace amctq;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::ft;
using amctq::test::info;

namespace {

std::mt19937 rng(11);

std::vector<float> random(std::size_t n, float lo = -1, float hi = 1) { return amctq::test::uniform_floats(rng, n, lo, hi); }

graph::node make(const std::string& name, const std::string& op, std::vector<std::string> in,
                 std::vector<std::string> out, std::vector<graph::attribute> attrs = {}) {
  return amctq::test::make_node(name, op, std::move(in), std::move(out), std::move(attrs));
}

struct net {
  graph::model m;
  net() {
    m.opset_imports.push_back({"", 13});
    m.main.inputs.push_back(info("x", graph::dtype::float32));
  }
  net& node(graph::node n) {
    m.main.nodes.push_back(std::move(n));
    return *this;
  }
  net& init(const std::string& name, graph::tensor t) {
    graph::initializer i;
    i.name = name;
    i.value = std::move(t);
    m.main.initializers.push_back(std::move(i));
    return *this;
  }
  net& output(const std::string& name) {
    m.main.outputs.push_back(info(name, graph::dtype::float32));
    return *this;
  }
};

// An input whose channels (along `axis`) differ in magnitude by up to 10^4, so the factors are
// far from 1 and a missing or misplaced division would show.
graph::tensor spread_input(const std::vector<std::int64_t>& shape, std::size_t axis) {
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  graph::tensor t = ft(shape, random(n));
  std::size_t inner = 1;
  for (std::size_t d = axis + 1; d < shape.size(); ++d) inner *= static_cast<std::size_t>(shape[d]);
  const auto C = static_cast<std::size_t>(shape[axis]);
  float* p = t.data<float>();
  for (std::size_t i = 0; i < t.size(); ++i) p[i] *= std::pow(10.0f, static_cast<float>((i / inner) % C % 5) - 2.0f);
  return t;
}

void check_same_outputs(const graph::model& a, const graph::model& b, const graph::tensor& x) {
  const auto ya = graph::run(a, {{"x", x}});
  const auto yb = graph::run(b, {{"x", x}});
  for (const auto& o : a.main.outputs) {
    INFO("output " << o.name);
    const graph::tensor& u = ya.at(o.name);
    const graph::tensor& v = yb.at(o.name);
    REQUIRE(u.shape() == v.shape());
    float peak = 0.0f;
    for (std::size_t i = 0; i < u.size(); ++i) peak = std::max(peak, std::abs(u.data<float>()[i]));
    std::size_t bad = 0;
    for (std::size_t i = 0; i < u.size(); ++i) bad += std::abs(u.data<float>()[i] - v.data<float>()[i]) > 1e-5f * peak;
    CHECK(bad == 0);
  }
}

const graph::node* producer(const graph::graph& g, const std::string& t) {
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs)
      if (o == t) return &n;
  return nullptr;
}

// Balances every weight layer of m (strength 0.5) on two batches and checks the float model
// keeps its function and every balanced layer reads Mul(original input, 1/s).
graph::quantizer balance_and_check(const graph::model& m, const std::vector<std::int64_t>& shape, std::size_t axis) {
  auto cfg = graph::create_quant_config(m);
  for (auto& l : cfg.layers) l.settings.dmq_balancer_param = 0.5f;
  graph::quantizer q(m, cfg);
  const std::vector<graph::batch> batches = {{{"x", spread_input(shape, axis)}}};
  q.quantize_preprocess(batches);
  q.calibrate(batches);
  const graph::model& f = q.float_model();
  check_same_outputs(m, f, spread_input(shape, axis));
  REQUIRE(q.layers().size() == cfg.layers.size());
  for (const auto& l : q.layers()) {
    INFO("layer " << l.name);
    const graph::node& n = f.main.nodes[l.node_index];
    CHECK(n.name == l.name);
    CHECK(n.inputs[0] == l.input);
    const graph::node* mul = producer(f.main, l.input);
    REQUIRE(mul != nullptr);
    CHECK(mul->op_type == "Mul");
    const auto& s = q.record().find(l.name)->tensor_balance_factor;
    REQUIRE(!s.empty());
    CHECK(*std::max_element(s.begin(), s.end()) > 4.0f * *std::min_element(s.begin(), s.end()));
    const graph::tensor& r = f.main.find_initializer(mul->inputs[1])->value;
    REQUIRE(r.size() == s.size());
    for (std::size_t c = 0; c < s.size(); ++c) CHECK(r.data<float>()[c] == 1.0f / s[c]);
    // The original tensor is still the graph's: Mul reads it, the layer does not.
    CHECK(std::find_if(m.main.nodes.begin(), m.main.nodes.end(), [&](const graph::node& o) {
            return o.name == l.name && o.inputs[0] == mul->inputs[0];
          }) != m.main.nodes.end());
  }
  return q;
}

}  // namespace

TEST_CASE("balance: Conv, depthwise Conv and ConvTranspose keep their float output") {
  SUBCASE("Conv 2d with bias and padding") {
    net n;
    n.node(make("conv", "Conv", {"x", "w", "b"}, {"y"}, {attr_ints("pads", {1, 1, 1, 1})}))
        .init("w", ft({4, 5, 3, 3}, random(180)))
        .init("b", ft({4}, random(4)))
        .output("y");
    balance_and_check(n.m, {2, 5, 6, 6}, 1);
  }
  SUBCASE("depthwise Conv 2d (group = channels)") {
    net n;
    n.node(make("dw", "Conv", {"x", "w"}, {"y"}, {attr_i("group", 5), attr_ints("pads", {1, 1, 1, 1})}))
        .init("w", ft({5, 1, 3, 3}, random(45)))
        .output("y");
    balance_and_check(n.m, {2, 5, 6, 6}, 1);
  }
  SUBCASE("Conv 1d: the constant is [C, 1]") {
    net n;
    n.node(make("c1", "Conv", {"x", "w"}, {"y"})).init("w", ft({3, 5, 3}, random(45))).output("y");
    const auto q = balance_and_check(n.m, {2, 5, 9}, 1);
    const auto& g = q.float_model().main;
    CHECK(g.find_initializer(g.nodes[0].inputs[1])->value.shape() == std::vector<std::int64_t>{5, 1});
  }
  SUBCASE("grouped ConvTranspose: input channels on the weight's axis 0") {
    net n;
    n.node(make("ct", "ConvTranspose", {"x", "w"}, {"y"}, {attr_i("group", 2), attr_ints("strides", {2, 2})}))
        .init("w", ft({4, 3, 2, 2}, random(48)))
        .output("y");
    balance_and_check(n.m, {2, 4, 3, 3}, 1);
  }
}

TEST_CASE("balance: Gemm and MatMul keep their float output") {
  SUBCASE("Gemm transB with bias and beta") {
    net n;
    n.node(make("fc", "Gemm", {"x", "w", "c"}, {"y"}, {attr_i("transB", 1), amctq::test::attr_f("beta", 0.5f)}))
        .init("w", ft({3, 6}, random(18)))
        .init("c", ft({3}, random(3)))
        .output("y");
    balance_and_check(n.m, {4, 6}, 1);
  }
  SUBCASE("MatMul with a rank-3 input: channels on the last axis") {
    net n;
    n.node(make("mm", "MatMul", {"x", "w"}, {"y"})).init("w", ft({6, 4}, random(24))).output("y");
    const auto q = balance_and_check(n.m, {2, 3, 6}, 2);
    const auto& g = q.float_model().main;
    CHECK(g.find_initializer(g.nodes[0].inputs[1])->value.shape() == std::vector<std::int64_t>{6});
  }
}

TEST_CASE("balance: a layer input shared with other consumers is rewired for that layer only") {
  // x feeds two balanced Conv layers (different weights, so different factors) and a Relu.
  net n;
  n.node(make("a", "Conv", {"x", "wa"}, {"ya"}))
      .node(make("relu", "Relu", {"x"}, {"r"}))
      .node(make("b", "Conv", {"x", "wb"}, {"yb"}, {attr_ints("pads", {1, 1, 1, 1})}))
      .init("wa", ft({2, 5, 1, 1}, random(10)))
      .init("wb", ft({3, 5, 3, 3}, random(135, -3, 3)))
      .output("ya")
      .output("r")
      .output("yb");
  auto q = balance_and_check(n.m, {2, 5, 4, 4}, 1);
  const auto& g = q.float_model().main;
  CHECK(q.layers()[0].input != q.layers()[1].input);
  CHECK(q.record().layers[0].tensor_balance_factor != q.record().layers[1].tensor_balance_factor);
  for (const auto& node : g.nodes)
    if (node.op_type == "Relu") CHECK(node.inputs[0] == "x");

  // A second calibrate() reuses the balance instead of balancing the balanced model again.
  const auto muls = [&] {
    return std::count_if(q.float_model().main.nodes.begin(), q.float_model().main.nodes.end(),
                         [](const graph::node& x) { return x.op_type == "Mul"; });
  };
  CHECK(muls() == 2);
  q.calibrate({{{"x", spread_input({2, 5, 4, 4}, 1)}}});
  CHECK(muls() == 2);
  check_same_outputs(n.m, q.float_model(), spread_input({2, 5, 4, 4}, 1));
}

TEST_CASE("insert_balance: Gemm with transA divides A's axis 0") {
  net n;
  n.node(make("fc", "Gemm", {"x", "w"}, {"y"}, {attr_i("transA", 1)})).init("w", ft({6, 3}, random(18))).output("y");
  graph::model b = n.m;
  const std::vector<float> s = {0.5f, 2.0f, 4.0f, 0.25f, 1.0f, 8.0f};
  auto& w = b.main.initializers[0].value;
  apply_balance(tensor_view<float, 1>(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())}),
                graph::layout_of(b.main.nodes[0], w), s);
  const auto ins = graph::passes::insert_balance(b.main, 0, s);
  CHECK(ins.node_index == 0);
  CHECK(b.main.nodes[1].inputs[0] == ins.input);
  CHECK(b.main.find_initializer(b.main.nodes[0].inputs[1])->value.shape() == std::vector<std::int64_t>{6, 1});
  check_same_outputs(n.m, b, spread_input({6, 4}, 0));
}

TEST_CASE("insert_balance: wrong factor counts and non-positive factors name the layer") {
  net n;
  n.node(make("conv7", "Conv", {"x", "w"}, {"y"})).init("w", ft({2, 3, 1, 1}, random(6))).output("y");
  CHECK_THROWS_WITH_AS(graph::passes::insert_balance(n.m.main, 0, {1.0f, 2.0f}),
                       doctest::Contains("layer 'conv7': 2 balance factors for 3 input channels"), amctq::error);
  CHECK_THROWS_WITH_AS(graph::passes::insert_balance(n.m.main, 0, {1.0f, 0.0f, 2.0f}),
                       doctest::Contains("layer 'conv7': balance factor [1] must be finite and > 0"), amctq::error);
  CHECK(n.m.main.nodes.size() == 1);
}

}  // namespace test_pipeline_balance
