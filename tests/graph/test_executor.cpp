// Executor: ordering, hooks, freeing of intermediates, input checks and error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "graph/builder.hpp"

namespace test_executor {

using namespace amctq;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::info;
using amctq::test::make_node;
using amctq::test::same_bytes;

namespace {

/// y = relu(x + c) * x, with nodes stored out of order.
graph::model chain(bool shuffled) {
  graph::model m;
  m.opset_imports.push_back({"", 13});
  auto add = make_node("add", "Add", {"x", "c"}, {"s"});
  auto relu = make_node("relu", "Relu", {"s"}, {"r"});
  auto mul = make_node("mul", "Mul", {"r", "x"}, {"y"});
  m.main.nodes = shuffled ? std::vector<graph::node>{mul, relu, add} : std::vector<graph::node>{add, relu, mul};
  graph::initializer c;
  c.name = "c";
  c.value = ft({1}, {-1.0f});
  m.main.initializers.push_back(c);
  m.main.inputs.push_back(info("x", graph::dtype::float32));
  m.main.outputs.push_back(info("y", graph::dtype::float32));
  return m;
}
}  // namespace

TEST_CASE("executor runs nodes in dependency order whatever the stored order") {
  for (bool shuffled : {false, true}) {
    const auto m = chain(shuffled);
    graph::executor ex(m);
    const auto out = ex.run({{"x", ft({4}, {-2, 0.5f, 2, 3})}});
    check_close(out.at("y"), {4}, {0, 0, 2, 6});
    std::vector<std::string> order;
    for (auto k : ex.order()) order.push_back(m.main.nodes[k].name);
    CHECK(order == std::vector<std::string>{"add", "relu", "mul"});
  }
}

TEST_CASE("hooks see graph inputs and every produced tensor; by-name and catch-all; removable") {
  const auto m = chain(true);
  graph::executor ex(m);
  std::vector<std::string> seen;
  float relu_sum = 0;
  const auto any = ex.hooks().on_any([&](const std::string& n, const graph::tensor&) { seen.push_back(n); });
  ex.hooks().on_tensor("r", [&](const std::string&, const graph::tensor& t) {
    for (std::size_t i = 0; i < t.size(); ++i) relu_sum += t.data<float>()[i];
  });
  ex.run({{"x", ft({2}, {3, 4})}});
  CHECK(seen == std::vector<std::string>{"x", "s", "r", "y"});
  CHECK(relu_sum == doctest::Approx(5.0f));
  ex.hooks().remove(any);
  seen.clear();
  ex.run({{"x", ft({2}, {3, 4})}});
  CHECK(seen.empty());
  CHECK(relu_sum == doctest::Approx(10.0f));
}

TEST_CASE("run can return intermediates") {
  const auto m = chain(false);
  graph::executor ex(m);
  const auto out = ex.run({{"x", ft({2}, {3, -4})}}, {"s", "r"});
  check_close(out.at("s"), {2}, {2, -5});
  check_close(out.at("r"), {2}, {2, 0});
}

TEST_CASE("graph errors: cycle, dangling input, duplicate output, unknown op, missing and wrong inputs") {
  {
    auto m = chain(false);
    m.main.nodes[0].inputs[1] = "y";  // add consumes mul's output: a cycle
    CHECK_THROWS_WITH_AS(graph::executor{m}, doctest::Contains("cycle"), amctq::error);
  }
  {
    auto m = chain(false);
    m.main.nodes[1].inputs[0] = "nowhere";
    CHECK_THROWS_WITH_AS(graph::executor{m}, doctest::Contains("node 'relu' (Relu): input 'nowhere'"), amctq::error);
  }
  {
    auto m = chain(false);
    m.main.nodes[1].outputs[0] = "s";
    CHECK_THROWS_WITH_AS(graph::executor{m}, doctest::Contains("also produced"), amctq::error);
  }
  {
    auto m = chain(false);
    m.main.nodes[1].op_type = "Frobnicate";
    CHECK_THROWS_WITH_AS(graph::executor{m}, doctest::Contains("node 'relu' (Frobnicate)"), amctq::error);
  }
  {
    auto m = chain(false);
    m.main.nodes[1].domain = "com.example";
    CHECK_THROWS_AS(graph::executor{m}, amctq::error);
  }
  auto m = chain(false);
  graph::dimension d4;
  d4.value = 4;
  m.main.inputs[0].shape = std::vector<graph::dimension>{d4};
  graph::executor ex(m);
  CHECK_THROWS_WITH_AS(ex.run({}), doctest::Contains("'x' was not given"), amctq::error);
  CHECK_THROWS_WITH_AS(ex.run({{"x", ft({3}, {1, 2, 3})}}), doctest::Contains("dim 0 must be 4"), amctq::error);
  CHECK_THROWS_WITH_AS(ex.run({{"x", ft({2, 2}, {1, 2, 3, 4})}}), doctest::Contains("rank"), amctq::error);
  CHECK_THROWS_WITH_AS(ex.run({{"x", graph::tensor::from<std::int64_t>({4}, {1, 2, 3, 4})}}),
                       doctest::Contains("must be float32"), amctq::error);
  CHECK_THROWS_WITH_AS(ex.run({{"x", ft({4}, {1, 2, 3, 4})}, {"z", ft({1}, {0})}}),
                       doctest::Contains("'z' is not an input"), amctq::error);
}

namespace {
/// x -> Conv (weight w, bias b) -> c -> Relu -> y; the weight an initializer unless `weight_fed`.
graph::model conv_relu(const std::vector<std::int64_t>& wshape, std::int64_t stride, std::int64_t pad, std::int64_t group,
                       bool weight_fed, std::mt19937& rng) {
  graph::model m;
  m.opset_imports.push_back({"", 13});
  const std::int64_t k = wshape[2];
  m.main.nodes.push_back(make_node("conv", "Conv", {"x", "w", "b"}, {"c"},
                                   {amctq::test::attr_ints("strides", {stride, stride}),
                                    amctq::test::attr_ints("pads", {pad, pad, pad, pad}),
                                    amctq::test::attr_ints("kernel_shape", {k, k}), amctq::test::attr_i("group", group)}));
  m.main.nodes.push_back(make_node("relu", "Relu", {"c"}, {"y"}));
  const auto w = ft(wshape, amctq::test::uniform_floats(rng, static_cast<std::size_t>(wshape[0] * wshape[1] * k * k)));
  const auto b = ft({wshape[0]}, amctq::test::uniform_floats(rng, static_cast<std::size_t>(wshape[0])));
  for (const auto& [name, value] : {std::pair<std::string, graph::tensor>{"w", w}, {"b", b}}) {
    if (name == "w" && weight_fed) continue;
    graph::initializer i;
    i.name = name;
    i.value = value;
    m.main.initializers.push_back(i);
  }
  m.main.inputs.push_back(info("x", graph::dtype::float32));
  if (weight_fed) m.main.inputs.push_back(info("w", graph::dtype::float32));
  m.main.outputs.push_back(info("y", graph::dtype::float32));
  return m;
}
}  // namespace

TEST_CASE("a Relu that alone reads a Conv's output runs inside the Conv, to the same bits, on every Conv path") {
  std::mt19937 rng(11);
  struct cfg { std::int64_t n, c, h, m, k, stride, pad, group; bool weight_fed; const char* path; };
  for (const cfg& g : {cfg{2, 5, 20, 13, 3, 1, 1, 1, false, "direct"}, cfg{1, 3, 45, 8, 7, 2, 3, 1, false, "direct, strided"},
                       cfg{1, 8, 7, 12, 3, 1, 1, 1, false, "im2col GEMM (7x7 map)"},
                       cfg{2, 16, 6, 10, 1, 1, 0, 1, false, "1x1 GEMM"}, cfg{1, 6, 9, 6, 3, 1, 1, 6, false, "depthwise"},
                       cfg{1, 4, 9, 6, 3, 1, 1, 1, true, "weight fed: no packed weight"}}) {
    CAPTURE(g.path);
    const auto m = conv_relu({g.m, g.c / g.group, g.k, g.k}, g.stride, g.pad, g.group, g.weight_fed, rng);
    std::map<std::string, graph::tensor> feeds{
        {"x", ft({g.n, g.c, g.h, g.h}, amctq::test::uniform_floats(rng, static_cast<std::size_t>(g.n * g.c * g.h * g.h)))}};
    feeds.at("x").data<float>()[3] = std::numeric_limits<float>::quiet_NaN();  // NaN through Relu is +0 both ways
    if (g.weight_fed)
      feeds["w"] = ft({g.m, g.c / g.group, g.k, g.k}, amctq::test::uniform_floats(rng, static_cast<std::size_t>(g.m * g.c / g.group * g.k * g.k)));
    graph::executor ex(m);
    const graph::tensor fused = ex.run(feeds).at("y");
    const std::size_t fused_peak = ex.peak_bytes();
    // Folded, the Conv's output is never held beside the Relu's; a catch-all hook keeps them apart.
    const auto all = ex.hooks().on_any([](const std::string&, const graph::tensor&) {});
    CHECK(same_bytes(ex.run(feeds).at("y"), fused));
    CHECK(ex.peak_bytes() == fused_peak + fused.bytes().size());
    ex.hooks().remove(all);
    // Asking for the Conv's output keeps the two nodes apart.
    const auto apart = ex.run(feeds, {"y", "c"});
    const graph::tensor& c = apart.at("c");
    CHECK(same_bytes(fused, apart.at("y")));
    std::size_t negative = 0, nan = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      negative += c.data<float>()[i] < 0;
      nan += std::isnan(c.data<float>()[i]);
    }
    CHECK(negative > c.size() / 10);  // the Relu has work to do
    CHECK(nan > 0);
    for (std::size_t i = 0; i < c.size(); ++i) {
      const float want = graph::ops::relu_fn{}(c.data<float>()[i]);
      if (std::memcmp(&want, fused.data<float>() + i, sizeof(float)) != 0) {
        FAIL_CHECK("element " << i << ": conv " << c.data<float>()[i] << ", fused " << fused.data<float>()[i]);
        break;
      }
    }
    ex.set_intra_op_threads(2);
    CHECK(same_bytes(ex.run(feeds).at("y"), fused));
    ex.set_intra_op_threads(1);

    // A hook on the Conv's output sees it before the Relu.
    std::size_t hooked_negative = 0;
    const auto h = ex.hooks().on_tensor("c", [&](const std::string&, const graph::tensor& t) {
      for (std::size_t i = 0; i < t.size(); ++i) hooked_negative += t.data<float>()[i] < 0;
    });
    CHECK(same_bytes(ex.run(feeds).at("y"), fused));
    CHECK(hooked_negative == negative);
    ex.hooks().remove(h);

    // A Relu of the engine's own is run as it is, not folded into the builtin Conv.
    graph::op_table ops = graph::builtin_ops();
    ops.add("Relu", [](graph::ops::context& ctx) { ctx.out[0] = *ctx.in[0]; });
    graph::executor own(m, ops);
    CHECK(same_bytes(own.run(feeds).at("y"), c));
  }
}

TEST_CASE("a Conv output that a second node also reads is not folded into its Relu") {
  std::mt19937 rng(12);
  auto m = conv_relu({4, 3, 3, 3}, 1, 1, 1, false, rng);
  m.main.nodes.push_back(make_node("add", "Add", {"c", "y"}, {"s"}));  // c + relu(c)
  m.main.outputs.push_back(info("s", graph::dtype::float32));
  graph::executor ex(m);
  const std::map<std::string, graph::tensor> feeds{{"x", ft({1, 3, 8, 8}, amctq::test::uniform_floats(rng, 192))}};
  const auto out = ex.run(feeds, {"y", "s"});
  const auto apart = ex.run(feeds, {"c", "y", "s"});
  CHECK(same_bytes(out.at("s"), apart.at("s")));
  const graph::tensor& c = apart.at("c");
  for (std::size_t i = 0; i < c.size(); ++i)
    CHECK(out.at("s").data<float>()[i] == c.data<float>()[i] + std::max(c.data<float>()[i], 0.0f));
}

}  // namespace test_executor
