// LayerNormalization as torch.onnx exports nn.LayerNorm (last axis, Scale and B of the hidden size)
// with its optional Mean / InvStdDev outputs, GroupNormalization's opset 18 (per-group) and 21
// (per-channel) affine forms, InstanceNormalization against a direct computation.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "graph/builder.hpp"

namespace test_normalization {

using namespace amctq;
using amctq::test::attr_f;
using amctq::test::attr_i;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::single_node;
using amctq::test::uniform_floats;
using amctq::test::values;

namespace {
/// (x - mean) / sqrt(var + eps) over consecutive groups of `len` values, then * s[k] + b[k] where
/// k = (flat index / `per`) modulo s's size (one affine entry per `per` consecutive values).
std::vector<float> reference(const std::vector<float>& x, std::size_t len, const std::vector<float>& s,
                             const std::vector<float>& b, std::size_t per, double eps) {
  std::vector<float> y(x.size());
  for (std::size_t g = 0; g < x.size() / len; ++g) {
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < len; ++i) mean += x[g * len + i];
    mean /= static_cast<double>(len);
    for (std::size_t i = 0; i < len; ++i) var += (x[g * len + i] - mean) * (x[g * len + i] - mean);
    var /= static_cast<double>(len);
    for (std::size_t i = 0; i < len; ++i)
      y[g * len + i] = static_cast<float>((x[g * len + i] - mean) / std::sqrt(var + eps) * s[(g * len + i) / per % s.size()] +
                                       b[(g * len + i) / per % s.size()]);
  }
  return y;
}
}  // namespace

TEST_CASE("LayerNormalization: nn.LayerNorm export (axis -1), Mean and InvStdDev outputs, no bias, axis 1") {
  std::mt19937 rng(17);
  const auto x = uniform_floats(rng, 2 * 3 * 8, -3, 3);
  const auto s = uniform_floats(rng, 8), b = uniform_floats(rng, 8);
  single_node ln("LayerNormalization", {"x", "s", "b"}, {attr_i("axis", -1), attr_f("epsilon", 1e-5f)}, 17,
                 {"y", "mean", "inv"});
  ln.constant("s", ft({8}, s)).constant("b", ft({8}, b));
  ln.m.main.inputs = {amctq::test::info("x", graph::dtype::float32)};
  graph::executor ex(ln.m);
  const auto out = ex.run({{"x", ft({2, 3, 8}, x)}});
  check_close(out.at("y"), {2, 3, 8}, reference(x, 8, s, b, 1, 1e-5), 1e-5f);
  const auto& mean = out.at("mean");
  const auto& inv = out.at("inv");
  REQUIRE(mean.shape() == std::vector<std::int64_t>{2, 3, 1});
  REQUIRE(inv.shape() == std::vector<std::int64_t>{2, 3, 1});
  double m0 = 0;
  for (int i = 0; i < 8; ++i) m0 += x[static_cast<std::size_t>(i)];
  CHECK(values(mean)[0] == doctest::Approx(m0 / 8).epsilon(1e-6));

  single_node nobias("LayerNormalization", {"x", "s"}, {attr_i("axis", 1)}, 17);
  const std::vector<float> s24(24, 2.0f), zero(24, 0.0f);
  nobias.constant("s", ft({3, 8}, s24));
  check_close(nobias.run({{"x", ft({2, 3, 8}, x)}}), {2, 3, 8}, reference(x, 24, s24, zero, 1, 1e-5), 1e-5f);
}

TEST_CASE("GroupNormalization: opset 18 per-group and opset 21 per-channel scale; InstanceNormalization") {
  std::mt19937 rng(18);
  const auto x = uniform_floats(rng, 2 * 4 * 3, -2, 2);  // N 2, C 4, spatial 3
  const std::vector<float> sg = {0.5f, 2.0f}, bg = {1.0f, -1.0f};
  single_node g18("GroupNormalization", {"x", "s", "b"}, {attr_i("num_groups", 2)}, 18);
  g18.constant("s", ft({2}, sg)).constant("b", ft({2}, bg));
  // Each group is 2 channels x 3 values; the group's affine applies to all 6.
  check_close(g18.run({{"x", ft({2, 4, 3}, x)}}), {2, 4, 3}, reference(x, 6, sg, bg, 6, 1e-5), 1e-5f);
  const std::vector<float> sc = {0.5f, 0.5f, 2.0f, 2.0f}, bc = {1.0f, 1.0f, -1.0f, -1.0f};
  single_node g21("GroupNormalization", {"x", "s", "b"}, {attr_i("num_groups", 2)}, 21);
  g21.constant("s", ft({4}, sc)).constant("b", ft({4}, bc));
  check_close(g21.run({{"x", ft({2, 4, 3}, x)}}), {2, 4, 3}, reference(x, 6, sg, bg, 6, 1e-5), 1e-5f);

  const std::vector<float> si = {1, 2, 3, 4}, bi = {0, 1, 0, -1};
  single_node in("InstanceNormalization", {"x", "s", "b"}, {attr_f("epsilon", 1e-3f)}, 13);
  in.constant("s", ft({4}, si)).constant("b", ft({4}, bi));
  std::vector<float> want;
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t ch = 0; ch < 4; ++ch) {
      const std::vector<float> row(x.begin() + static_cast<std::ptrdiff_t>((n * 4 + ch) * 3),
                                   x.begin() + static_cast<std::ptrdiff_t>((n * 4 + ch) * 3 + 3));
      const auto r = reference(row, 3, {si[ch]}, {bi[ch]}, 3, 1e-3);
      want.insert(want.end(), r.begin(), r.end());
    }
  check_close(in.run({{"x", ft({2, 4, 3}, x)}}), {2, 4, 3}, want, 1e-5f);
}

}  // namespace test_normalization
