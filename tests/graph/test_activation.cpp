// Activations and Softmax, including the opset-dependent forms of Clip and Softmax.
#include <doctest/doctest.h>

#include <cmath>

#include "graph/builder.hpp"

namespace test_activation {

using namespace amctq;
using amctq::test::attr_f;
using amctq::test::attr_i;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::single_node;

TEST_CASE("Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish") {
  const auto x = ft({5}, {-4, -1, 0, 1, 4});
  check_close(single_node("Relu", {"x"}).run({{"x", x}}), {5}, {0, 0, 0, 1, 4});
  check_close(single_node("LeakyRelu", {"x"}, {attr_f("alpha", 0.1f)}).run({{"x", x}}), {5}, {-0.4f, -0.1f, 0, 1, 4});
  std::vector<float> sig, th;
  for (float v : {-4.f, -1.f, 0.f, 1.f, 4.f}) {
    sig.push_back(1.0f / (1.0f + std::exp(-v)));
    th.push_back(std::tanh(v));
  }
  check_close(single_node("Sigmoid", {"x"}).run({{"x", x}}), {5}, sig);
  check_close(single_node("Sigmoid", {"x"}).run({{"x", ft({2}, {-200, 200})}}), {2}, {0, 1});
  check_close(single_node("Tanh", {"x"}).run({{"x", x}}), {5}, th);
  check_close(single_node("HardSigmoid", {"x"}).run({{"x", x}}), {5}, {0, 0.3f, 0.5f, 0.7f, 1});
  check_close(single_node("HardSwish", {"x"}).run({{"x", x}}), {5}, {0, -1.0f / 3, 0, 2.0f / 3, 4});
  CHECK_THROWS_AS(single_node("Relu", {"x"}).run({{"x", amctq::test::it64({1}, {1})}}), amctq::error);
}

TEST_CASE("Clip: attribute form before opset 11, input form after, ReLU6, omitted bounds") {
  const auto x = ft({4}, {-2, 1, 5, 9});
  check_close(single_node("Clip", {"x"}, {attr_f("min", 0), attr_f("max", 6)}, 6).run({{"x", x}}), {4}, {0, 1, 5, 6});
  check_close(single_node("Clip", {"x"}, {attr_f("max", 3)}, 6).run({{"x", x}}), {4}, {-2, 1, 3, 3});
  single_node relu6("Clip", {"x", "lo", "hi"}, {}, 13);
  relu6.constant("lo", ft({}, {0})).constant("hi", ft({}, {6}));
  check_close(relu6.run({{"x", x}}), {4}, {0, 1, 5, 6});
  single_node only_max("Clip", {"x", "", "hi"}, {}, 13);
  only_max.constant("hi", ft({}, {2}));
  check_close(only_max.run({{"x", x}}), {4}, {-2, 1, 2, 2});
  single_node bad("Clip", {"x", "lo"}, {}, 13);
  bad.constant("lo", ft({2}, {0, 1}));
  CHECK_THROWS_WITH_AS(bad.run({{"x", x}}), doctest::Contains("scalar"), amctq::error);
}

TEST_CASE("Softmax: opset 13 normalises one axis; older opsets coerce to 2-D") {
  // [2,2]: rows (1,1) and (0, ln 3).
  const auto x = ft({1, 2, 2}, {1, 1, 0, std::log(3.0f)});
  // opset 13, axis 1: columns normalised: col0 (1, 0), col1 (1, ln3).
  const float e = std::exp(1.0f);
  check_close(single_node("Softmax", {"x"}, {attr_i("axis", 1)}, 13).run({{"x", x}}), {1, 2, 2},
              {e / (e + 1), e / (e + 3), 1 / (e + 1), 3 / (e + 3)});
  // opset 11, axis 1: the whole [2,2] block is one row of 4.
  const float s = 2 * e + 1 + 3;
  check_close(single_node("Softmax", {"x"}, {attr_i("axis", 1)}, 11).run({{"x", x}}), {1, 2, 2},
              {e / s, e / s, 1 / s, 3 / s});
  // default axis: -1 at 13, 1 before.
  check_close(single_node("Softmax", {"x"}, {}, 13).run({{"x", x}}), {1, 2, 2}, {0.5f, 0.5f, 0.25f, 0.75f});
  check_close(single_node("Softmax", {"x"}, {}, 11).run({{"x", x}}), {1, 2, 2}, {e / s, e / s, 1 / s, 3 / s});
  check_close(single_node("Softmax", {"x"}).run({{"x", ft({3}, {1000, 1000, -1000})}}), {3}, {0.5f, 0.5f, 0});
  CHECK_THROWS_AS(single_node("Softmax", {"x"}, {attr_i("axis", 3)}).run({{"x", x}}), amctq::error);
}

}  // namespace test_activation
