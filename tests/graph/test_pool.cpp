// MaxPool, AveragePool and the global pools: pads, strides, ceil_mode, dilations, count_include_pad.
#include <doctest/doctest.h>

#include "graph/builder.hpp"

namespace test_pool {

using namespace amctq;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::attr_s;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::single_node;

namespace {
const auto x33 = ft({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("MaxPool: 2x2 stride 1, padded, ceil_mode, dilation, 1-D") {
  single_node p("MaxPool", {"x"}, {attr_ints("kernel_shape", {2, 2})});
  check_close(p.run({{"x", x33}}), {1, 1, 2, 2}, {5, 6, 8, 9});
  single_node padded("MaxPool", {"x"}, {attr_ints("kernel_shape", {3, 3}), attr_ints("pads", {1, 1, 1, 1}),
                                        attr_ints("strides", {2, 2})});
  check_close(padded.run({{"x", ft({1, 1, 3, 3}, {-1, -2, -3, -4, -5, -6, -7, -8, -9})}}), {1, 1, 2, 2}, {-1, -2, -4, -5});
  single_node ceil("MaxPool", {"x"}, {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2}), attr_i("ceil_mode", 1)});
  check_close(ceil.run({{"x", x33}}), {1, 1, 2, 2}, {5, 6, 8, 9});
  single_node floor("MaxPool", {"x"}, {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2})});
  check_close(floor.run({{"x", x33}}), {1, 1, 1, 1}, {5});
  single_node dil("MaxPool", {"x"}, {attr_ints("kernel_shape", {2, 2}), attr_ints("dilations", {2, 2})});
  check_close(dil.run({{"x", x33}}), {1, 1, 1, 1}, {9});
  single_node one("MaxPool", {"x"}, {attr_ints("kernel_shape", {2}), attr_s("auto_pad", "SAME_UPPER")});
  check_close(one.run({{"x", ft({1, 1, 3}, {3, 1, 2})}}), {1, 1, 3}, {3, 2, 2});
  single_node idx("MaxPool", {"x"}, {attr_ints("kernel_shape", {2, 2})}, 13, {"y", "i"});
  CHECK_THROWS_WITH_AS(idx.run({{"x", x33}}), doctest::Contains("optional output 1"), amctq::error);
}

TEST_CASE("AveragePool: count_include_pad both ways, ceil_mode edge window") {
  single_node ex("AveragePool", {"x"}, {attr_ints("kernel_shape", {2, 2}), attr_ints("pads", {1, 1, 0, 0})});
  // Windows at the top-left corner see 1, 2 or 4 real pixels.
  check_close(ex.run({{"x", x33}}), {1, 1, 3, 3}, {1, 1.5f, 2.5f, 2.5f, 3, 4, 5.5f, 6, 7});
  single_node inc("AveragePool", {"x"},
                  {attr_ints("kernel_shape", {2, 2}), attr_ints("pads", {1, 1, 0, 0}), attr_i("count_include_pad", 1)});
  check_close(inc.run({{"x", x33}}), {1, 1, 3, 3}, {0.25f, 0.75f, 1.25f, 1.25f, 3, 4, 2.75f, 6, 7});
  // ceil_mode: the last window hangs past the input and averages only what it covers.
  single_node ceil("AveragePool", {"x"},
                   {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2}), attr_i("ceil_mode", 1)});
  check_close(ceil.run({{"x", x33}}), {1, 1, 2, 2}, {3, 4.5f, 7.5f, 9});
}

TEST_CASE("Global pools keep rank") {
  single_node avg("GlobalAveragePool", {"x"});
  check_close(avg.run({{"x", ft({1, 2, 2, 1}, {1, 2, 3, 5})}}), {1, 2, 1, 1}, {1.5f, 4});
  single_node mx("GlobalMaxPool", {"x"});
  check_close(mx.run({{"x", ft({1, 2, 3}, {1, 7, 2, -3, -1, -2})}}), {1, 2, 1}, {7, -1});
  single_node bad("GlobalMaxPool", {"x"});
  CHECK_THROWS_AS(bad.run({{"x", ft({2, 2}, {1, 2, 3, 4})}}), amctq::error);
}

}  // namespace test_pool
