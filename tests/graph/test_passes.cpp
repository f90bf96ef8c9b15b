// BatchNorm folding and constant folding: the rewritten model computes the same outputs
// (1e-5 relative) with fewer nodes, and what must not be folded is left alone.
#include <doctest/doctest.h>

#include <random>

#include "amctq/graph/passes/fold_batchnorm.hpp"
#include "amctq/graph/passes/fold_constants.hpp"
#include "graph/builder.hpp"

namespace test_passes {

using namespace amctq;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::ft;
using amctq::test::info;

namespace {
std::mt19937 rng(3);
std::vector<float> random(std::size_t n, float lo = -1, float hi = 1) { return amctq::test::uniform_floats(rng, n, lo, hi); }
void add_init(graph::model& m, const std::string& name, graph::tensor t) {
  graph::initializer i;
  i.name = name;
  i.value = std::move(t);
  m.main.initializers.push_back(std::move(i));
}
graph::node make(const std::string& name, const std::string& op, std::vector<std::string> in, std::vector<std::string> out = {},
                 std::vector<graph::attribute> attrs = {}) {
  return amctq::test::make_node(name, op, std::move(in), std::move(out), std::move(attrs));
}
/// layer (weights given) -> BatchNormalization(channels) -> Relu
graph::model layer_bn(graph::node layer, std::int64_t channels, bool bias) {
  graph::model m;
  m.opset_imports.push_back({"", 13});
  layer.outputs = {"t"};
  m.main.nodes.push_back(layer);
  m.main.nodes.push_back(make("bn", "BatchNormalization", {"t", "s", "b", "mu", "var"}, {"u"}));
  m.main.nodes.push_back(make("relu", "Relu", {"u"}, {"y"}));
  const auto c = static_cast<std::size_t>(channels);
  add_init(m, "s", ft({channels}, random(c, 0.5f, 2)));
  add_init(m, "b", ft({channels}, random(c)));
  add_init(m, "mu", ft({channels}, random(c)));
  add_init(m, "var", ft({channels}, random(c, 0.1f, 3)));
  (void)bias;
  m.main.inputs.push_back(info("x", graph::dtype::float32));
  m.main.outputs.push_back(info("y", graph::dtype::float32));
  return m;
}
void check_same_function(graph::model m, const graph::tensor& x, std::size_t expect_folded) {
  const auto before = graph::run(m, {{"x", x}}).at("y");
  const std::size_t nodes = m.main.nodes.size();
  CHECK(graph::passes::fold_batchnorm(m) == expect_folded);
  CHECK(m.main.nodes.size() == nodes - expect_folded);
  const auto after = graph::run(m, {{"x", x}}).at("y");
  REQUIRE(after.shape() == before.shape());
  for (std::size_t i = 0; i < before.size(); ++i) {
    const float a = before.data<float>()[i], b = after.data<float>()[i];
    CHECK(std::abs(a - b) <= 1e-5f * std::max(1.0f, std::abs(a)));
  }
}
}  // namespace

TEST_CASE("fold_batchnorm: Conv with and without bias, grouped") {
  for (bool bias : {false, true}) {
    auto m = layer_bn(make("conv", "Conv", bias ? std::vector<std::string>{"x", "w", "cb"} : std::vector<std::string>{"x", "w"}, {},
                           {attr_i("group", 2), attr_ints("pads", {1, 1, 1, 1})}),
                      6, bias);
    add_init(m, "w", ft({6, 2, 3, 3}, random(108)));
    if (bias) add_init(m, "cb", ft({6}, random(6)));
    check_same_function(m, ft({2, 4, 5, 5}, random(200)), 1);
  }
}

TEST_CASE("fold_batchnorm: ConvTranspose with groups, Gemm with transB and per-column bias") {
  auto ct = layer_bn(make("ct", "ConvTranspose", {"x", "w"}, {}, {attr_i("group", 2), attr_ints("strides", {2, 2})}), 6, false);
  add_init(ct, "w", ft({4, 3, 2, 2}, random(48)));
  check_same_function(ct, ft({1, 4, 3, 3}, random(36)), 1);

  auto gm = layer_bn(make("fc", "Gemm", {"x", "w", "c"}, {}, {attr_i("transB", 1), amctq::test::attr_f("beta", 0.5f)}), 5, true);
  add_init(gm, "w", ft({5, 3}, random(15)));
  add_init(gm, "c", ft({5}, random(5)));
  check_same_function(gm, ft({4, 3}, random(12)), 1);
}

TEST_CASE("fold_batchnorm leaves a BN alone when the layer output has another consumer or weights are inputs") {
  auto m = layer_bn(make("conv", "Conv", {"x", "w"}), 2, false);
  add_init(m, "w", ft({2, 1, 1, 1}, {1, 2}));
  m.main.nodes.push_back(make("side", "Relu", {"t"}, {"z"}));
  m.main.outputs.push_back(info("z", graph::dtype::float32));
  CHECK(graph::passes::fold_batchnorm(m) == 0);
  CHECK(m.main.nodes.size() == 4);

  auto w_input = layer_bn(make("conv", "Conv", {"x", "w"}), 2, false);
  w_input.main.inputs.push_back(info("w", graph::dtype::float32));
  CHECK(graph::passes::fold_batchnorm(w_input) == 0);
}

TEST_CASE("fold_batchnorm copies weights shared with another layer") {
  auto m = layer_bn(make("conv", "Conv", {"x", "w"}), 2, false);
  add_init(m, "w", ft({2, 1, 1, 1}, {1, 2}));
  m.main.nodes.push_back(make("conv2", "Conv", {"x", "w"}, {"z"}));
  m.main.outputs.push_back(info("z", graph::dtype::float32));
  const auto x = ft({1, 1, 1, 2}, {3, 4});
  const auto z_before = graph::run(m, {{"x", x}}).at("z");
  CHECK(graph::passes::fold_batchnorm(m) == 1);
  CHECK(graph::run(m, {{"x", x}}).at("z") == z_before);
  CHECK(m.main.find_initializer("w")->value == ft({2, 1, 1, 1}, {1, 2}));
}

TEST_CASE("fold_constants: a Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain becomes one Reshape") {
  graph::model m;
  m.opset_imports.push_back({"", 13});
  auto x = info("x", graph::dtype::float32);
  graph::dimension d2, d3, d4;
  d2.value = 2;
  d3.value = 3;
  d4.value = 4;
  x.shape = std::vector<graph::dimension>{d2, d3, d4};
  m.main.inputs.push_back(x);
  m.main.outputs.push_back(info("y", graph::dtype::float32));
  add_init(m, "zero", amctq::test::it64({}, {0}));
  add_init(m, "minus1", amctq::test::it64({1}, {-1}));
  add_init(m, "axes", amctq::test::it64({1}, {0}));
  m.main.nodes.push_back(make("shape", "Shape", {"x"}, {"s"}));
  m.main.nodes.push_back(make("gather", "Gather", {"s", "zero"}, {"n"}));
  m.main.nodes.push_back(make("unsq", "Unsqueeze", {"n", "axes"}, {"n1"}));
  m.main.nodes.push_back(make("cat", "Concat", {"n1", "minus1"}, {"target"}, {attr_i("axis", 0)}));
  m.main.nodes.push_back(make("reshape", "Reshape", {"x", "target"}, {"y"}));
  const auto xv = ft({2, 3, 4}, random(24));
  const auto before = graph::run(m, {{"x", xv}}).at("y");
  CHECK(before.shape() == std::vector<std::int64_t>{2, 12});
  CHECK(graph::passes::fold_constants(m) == 4);
  REQUIRE(m.main.nodes.size() == 1);
  CHECK(m.main.nodes[0].op_type == "Reshape");
  REQUIRE(m.main.find_initializer("target") != nullptr);
  CHECK(m.main.find_initializer("target")->value == amctq::test::it64({2}, {2, -1}));
  CHECK(m.main.find_initializer("zero") == nullptr);  // only the folded nodes read it
  CHECK(graph::run(m, {{"x", xv}}).at("y") == before);
}

TEST_CASE("fold_constants leaves Shape of a dynamic input alone") {
  graph::model m;
  m.opset_imports.push_back({"", 13});
  m.main.inputs.push_back(info("x", graph::dtype::float32));  // no shape
  m.main.outputs.push_back(info("y", graph::dtype::float32));
  m.main.nodes.push_back(make("shape", "Shape", {"x"}, {"s"}));
  m.main.nodes.push_back(make("reshape", "Reshape", {"x", "s"}, {"y"}));
  CHECK(graph::passes::fold_constants(m) == 0);
  CHECK(m.main.nodes.size() == 2);
}

}  // namespace test_passes
