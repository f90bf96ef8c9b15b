// MaxPool, AveragePool and the global pools: pads, strides, ceil_mode, dilations, count_include_pad.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>

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

TEST_CASE("MaxPool matches a brute-force max: strides 1 to 3, pads, dilations, ceil_mode, NaN, on 1 and 2 threads") {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  struct cfg { std::int64_t h, w, k, stride, pad, dil, ceil; };
  for (const cfg& g : {cfg{112, 112, 3, 2, 1, 1, 0} /* ResNet's */, cfg{9, 13, 3, 3, 1, 1, 1}, cfg{10, 11, 2, 2, 0, 2, 1},
                       cfg{7, 17, 3, 1, 1, 1, 0}, cfg{8, 9, 5, 2, 2, 1, 0}}) {
    CAPTURE(g.w);
    CAPTURE(g.stride);
    const std::int64_t planes = 3;
    std::vector<float> xv(static_cast<std::size_t>(planes * g.h * g.w));
    for (auto& e : xv) e = u(rng);
    xv[static_cast<std::size_t>(2 * g.w)] = std::numeric_limits<float>::quiet_NaN();  // row 2, column 0: in a window for each cfg
    single_node node("MaxPool", {"x"},
                     {attr_ints("kernel_shape", {g.k, g.k}), attr_ints("strides", {g.stride, g.stride}),
                      attr_ints("pads", {g.pad, g.pad, g.pad, g.pad}), attr_ints("dilations", {g.dil, g.dil}),
                      attr_i("ceil_mode", g.ceil)});
    const auto x = ft({1, planes, g.h, g.w}, xv);
    const auto y = node.run({{"x", x}});
    const auto y2 = node.run({{"x", x}}, 2);
    REQUIRE(y.rank() == 4);
    CHECK(std::equal(y.bytes().begin(), y.bytes().end(), y2.bytes().begin(), y2.bytes().end()));
    const std::int64_t oh = y.dim(2), ow = y.dim(3);
    std::size_t at = 0, nans = 0;
    for (std::int64_t p = 0; p < planes; ++p)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j, ++at) {
          float want = -std::numeric_limits<float>::infinity();
          bool nan = false;
          for (std::int64_t a = 0; a < g.k; ++a)
            for (std::int64_t b = 0; b < g.k; ++b) {
              const std::int64_t ih = i * g.stride - g.pad + a * g.dil, iw = j * g.stride - g.pad + b * g.dil;
              if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
              const float v = xv[static_cast<std::size_t>((p * g.h + ih) * g.w + iw)];
              nan = nan || std::isnan(v);
              want = std::max(want, v);
            }
          const float got = y.data<float>()[at];
          if (nan) {
            ++nans;
            CHECK(std::isnan(got));
          } else {
            CHECK(got == want);
          }
        }
    CHECK(nans > 0);  // the NaN reached an output window
  }
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
