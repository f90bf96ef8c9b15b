// Executor: ordering, hooks, freeing of intermediates, input checks and error messages.
#include <doctest/doctest.h>

#include "graph/builder.hpp"

namespace test_executor {

using namespace amctq;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::info;
using amctq::test::make_node;

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

}  // namespace test_executor
