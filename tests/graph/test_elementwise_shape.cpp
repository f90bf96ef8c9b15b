// Broadcasting arithmetic, BatchNormalization, LRN and the data-movement ops.
#include <doctest/doctest.h>

#include "graph/builder.hpp"

namespace test_elementwise_shape {

using namespace amctq;
using amctq::test::attr_f;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::attr_s;
using amctq::test::attr_t;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::it64;
using amctq::test::single_node;

TEST_CASE("Add/Sub/Mul/Div broadcast both ways; integer division truncates; mismatches name the node") {
  const auto a = ft({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  const auto b = ft({2, 1}, {10, 20});
  check_close(single_node("Add", {"a", "b"}).run({{"a", a}, {"b", b}}), {2, 2, 3},
              {11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26});
  check_close(single_node("Sub", {"a", "b"}).run({{"a", ft({}, {1})}, {"b", b}}), {2, 1}, {-9, -19});
  check_close(single_node("Mul", {"a", "b"}).run({{"a", a}, {"b", ft({3}, {1, 0, -1})}}), {2, 1, 3}, {1, 0, -3, 4, 0, -6});
  check_close(single_node("Div", {"a", "b"}).run({{"a", ft({1, 2}, {1, 2})}, {"b", ft({2, 1}, {2, 4})}}), {2, 2},
              {0.5f, 1, 0.25f, 0.5f});
  const auto q = single_node("Div", {"a", "b"}).run({{"a", it64({3}, {7, -7, 6})}, {"b", it64({1}, {2})}});
  CHECK(std::vector<std::int64_t>(q.data<std::int64_t>(), q.data<std::int64_t>() + 3) == std::vector<std::int64_t>{3, -3, 3});
  CHECK_THROWS_AS(single_node("Div", {"a", "b"}).run({{"a", it64({1}, {1})}, {"b", it64({1}, {0})}}), amctq::error);
  CHECK_THROWS_WITH_AS(single_node("Add", {"a", "b"}).run({{"a", ft({3}, {1, 2, 3})}, {"b", ft({2}, {1, 2})}}),
                       doctest::Contains("node 'n0' (Add)"), amctq::error);
  CHECK_THROWS_AS(single_node("Add", {"a", "b"}).run({{"a", ft({1}, {1})}, {"b", it64({1}, {1})}}), amctq::error);
  check_close(single_node("Sum", {"a", "b", "c"}).run({{"a", ft({1}, {1})}, {"b", ft({2}, {1, 2})}, {"c", ft({1}, {3})}}),
              {2}, {5, 6});
}

TEST_CASE("BatchNormalization and LRN") {
  single_node bn("BatchNormalization", {"x", "s", "b", "m", "v"}, {attr_f("epsilon", 0)});
  bn.constant("s", ft({2}, {2, 1})).constant("b", ft({2}, {1, 0})).constant("m", ft({2}, {1, -1})).constant("v", ft({2}, {4, 1}));
  check_close(bn.run({{"x", ft({1, 2, 2}, {1, 3, -1, 0})}}), {1, 2, 2}, {1, 3, 0, 1});
  single_node lrn("LRN", {"x"}, {attr_i("size", 3), attr_f("alpha", 3), attr_f("beta", 1), attr_f("bias", 1)});
  // channel 0 sees channels 0..1, channel 1 sees 0..1 (2 is out of range): 1 + 3/3 * (1+4) = 6.
  check_close(lrn.run({{"x", ft({1, 2, 1}, {1, 2})}}), {1, 2, 1}, {1.0f / 6, 2.0f / 6});
}

TEST_CASE("Reshape with 0, -1 and allowzero; Flatten; Transpose; Concat") {
  const auto x = ft({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  single_node r("Reshape", {"x", "s"});
  r.constant("s", it64({3}, {0, -1, 3}));
  CHECK(r.run({{"x", x}}).shape() == std::vector<std::int64_t>{2, 2, 3});
  single_node bad("Reshape", {"x", "s"});
  bad.constant("s", it64({2}, {-1, -1}));
  CHECK_THROWS_WITH_AS(bad.run({{"x", x}}), doctest::Contains("more than one -1"), amctq::error);
  // A hostile target whose element count wraps around 2^64 to the input's 12 elements.
  single_node wrap("Reshape", {"x", "s"});
  wrap.constant("s", it64({2}, {(std::int64_t{1} << 62) + 3, 4}));
  CHECK_THROWS_WITH_AS(wrap.run({{"x", x}}), doctest::Contains("more than 2^59 elements"), amctq::error);
  CHECK_THROWS_WITH_AS(graph::tensor(graph::dtype::float32, {std::int64_t{1} << 40, std::int64_t{1} << 40}),
                       doctest::Contains("more than 2^59 elements"), amctq::error);
  single_node az("Reshape", {"x", "s"}, {attr_i("allowzero", 1)});
  az.constant("s", it64({2}, {0, 4}));
  CHECK(az.run({{"x", ft({0, 4}, {})}}).shape() == std::vector<std::int64_t>{0, 4});
  CHECK(single_node("Flatten", {"x"}, {attr_i("axis", 2)}).run({{"x", x}}).shape() == std::vector<std::int64_t>{6, 2});
  CHECK(single_node("Flatten", {"x"}, {attr_i("axis", 0)}).run({{"x", x}}).shape() == std::vector<std::int64_t>{1, 12});
  check_close(single_node("Transpose", {"x"}, {attr_ints("perm", {2, 0, 1})}).run({{"x", x}}), {2, 2, 3},
              {0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11});
  check_close(single_node("Transpose", {"x"}).run({{"x", ft({2, 2}, {1, 2, 3, 4})}}), {2, 2}, {1, 3, 2, 4});
  check_close(single_node("Concat", {"a", "b"}, {attr_i("axis", -1)})
                  .run({{"a", ft({2, 1}, {1, 2})}, {"b", ft({2, 2}, {3, 4, 5, 6})}}),
              {2, 3}, {1, 3, 4, 2, 5, 6});
  CHECK_THROWS_AS(single_node("Concat", {"a", "b"}, {attr_i("axis", 0)}).run({{"a", ft({2, 1}, {1, 2})}, {"b", ft({2, 2}, {3, 4, 5, 6})}}),
                  amctq::error);
}

TEST_CASE("Squeeze / Unsqueeze in attribute (opset < 13) and input (opset 13) forms") {
  const auto x = ft({1, 3, 1}, {1, 2, 3});
  CHECK(single_node("Squeeze", {"x"}, {}, 13).run({{"x", x}}).shape() == std::vector<std::int64_t>{3});
  CHECK(single_node("Squeeze", {"x"}, {attr_ints("axes", {-1})}, 11).run({{"x", x}}).shape() == std::vector<std::int64_t>{1, 3});
  single_node sq("Squeeze", {"x", "a"}, {}, 13);
  sq.constant("a", it64({1}, {1}));
  CHECK_THROWS_AS(sq.run({{"x", x}}), amctq::error);
  CHECK(single_node("Unsqueeze", {"x"}, {attr_ints("axes", {0, 4})}, 11).run({{"x", x}}).shape() ==
        std::vector<std::int64_t>{1, 1, 3, 1, 1});
  single_node un("Unsqueeze", {"x", "a"}, {}, 13);
  un.constant("a", it64({1}, {-1}));
  CHECK(un.run({{"x", x}}).shape() == std::vector<std::int64_t>{1, 3, 1, 1});
}

TEST_CASE("Pad: constant, reflect, edge; attribute form; negative pads crop") {
  const auto x = ft({1, 3}, {1, 2, 3});
  auto pad = [&](const std::string& mode, std::vector<std::int64_t> pads) {
    single_node n("Pad", {"x", "p"}, {attr_s("mode", mode)}, 13);
    n.constant("p", it64({4}, pads));
    return n.run({{"x", x}});
  };
  check_close(pad("constant", {0, 2, 0, 1}), {1, 6}, {0, 0, 1, 2, 3, 0});
  check_close(pad("reflect", {0, 2, 0, 2}), {1, 7}, {3, 2, 1, 2, 3, 2, 1});
  check_close(pad("edge", {1, 1, 0, 1}), {2, 5}, {1, 1, 2, 3, 3, 1, 1, 2, 3, 3});
  check_close(pad("constant", {0, -1, 0, 0}), {1, 2}, {2, 3});
  check_close(single_node("Pad", {"x"}, {attr_ints("pads", {0, 1, 0, 0}), attr_f("value", 7)}, 2).run({{"x", x}}), {1, 4},
              {7, 1, 2, 3});
  single_node v("Pad", {"x", "p", "v"}, {}, 13);
  v.constant("p", it64({4}, {0, 0, 0, 1})).constant("v", ft({}, {-5}));
  check_close(v.run({{"x", x}}), {1, 4}, {1, 2, 3, -5});
}

TEST_CASE("Shape, Gather, Constant, ConstantOfShape, Cast") {
  const auto x = ft({2, 3, 4}, std::vector<float>(24, 0));
  CHECK(single_node("Shape", {"x"}).run({{"x", x}}) == it64({3}, {2, 3, 4}));
  CHECK(single_node("Shape", {"x"}, {attr_i("start", -2)}, 15).run({{"x", x}}) == it64({2}, {3, 4}));
  single_node g("Gather", {"d", "i"});
  g.constant("i", it64({2}, {-1, 0}));
  CHECK(g.run({{"d", it64({3}, {5, 6, 7})}}) == it64({2}, {7, 5}));
  single_node g2("Gather", {"d", "i"}, {attr_i("axis", 1)});
  g2.constant("i", it64({}, {1}));
  check_close(g2.run({{"d", ft({2, 2}, {1, 2, 3, 4})}}), {2}, {2, 4});
  single_node oob("Gather", {"d", "i"});
  oob.constant("i", it64({1}, {3}));
  CHECK_THROWS_WITH_AS(oob.run({{"d", it64({3}, {5, 6, 7})}}), doctest::Contains("out of range"), amctq::error);
  graph::model cm;
  single_node c("Constant", {}, {attr_t("value", it64({2}, {4, 5}))});
  CHECK(c.run({}) == it64({2}, {4, 5}));
  single_node cos("ConstantOfShape", {"s"}, {attr_t("value", it64({1}, {9}))});
  cos.constant("s", it64({2}, {2, 1}));
  CHECK(cos.run({}) == it64({2, 1}, {9, 9}));
  const auto cast = single_node("Cast", {"x"}, {attr_i("to", 7)}).run({{"x", ft({3}, {1.9f, -1.9f, 0})}});
  CHECK(cast == it64({3}, {1, -1, 0}));
}

}  // namespace test_elementwise_shape
