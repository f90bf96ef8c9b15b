// Math, activation, comparison, logic and Where ops in the forms torch.onnx exports that the ONNX
// node tests leave out: Pow's scalar-exponent fast paths, attention-mask Where, integer and bool
// comparisons, per-channel PRelu, Gelu on both approximations, and the errors naming the node.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "graph/builder.hpp"

namespace test_math_logic {

using namespace amctq;
using amctq::test::attr_s;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::it64;
using amctq::test::single_node;

graph::tensor bt(std::vector<std::int64_t> shape, std::vector<std::uint8_t> v) {
  graph::tensor t(graph::dtype::boolean, std::move(shape));
  for (std::size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i] != 0;
  return t;
}

std::vector<int> bools(const graph::tensor& t) {
  REQUIRE(t.type() == graph::dtype::boolean);
  std::vector<int> v;
  for (std::size_t i = 0; i < t.size(); ++i) v.push_back(t.data<bool>()[i] ? 1 : 0);
  return v;
}

std::vector<std::int64_t> ints(const graph::tensor& t) {
  REQUIRE(t.type() == graph::dtype::int64);
  return std::vector<std::int64_t>(t.data<std::int64_t>(), t.data<std::int64_t>() + t.size());
}

errc code_of(single_node& s, std::map<std::string, graph::tensor> feeds) {
  try {
    s.run(std::move(feeds));
  } catch (const amctq::error& e) {
    CHECK(std::string(e.what()).find("n0") != std::string::npos);
    return e.code();
  }
  FAIL("no error");
  return errc{};
}

TEST_CASE("Pow: scalar exponents 2 and 3 (LayerNorm, GPT-2 GELU) match the general path; int base, float exponent") {
  std::mt19937 rng(7);
  const auto xv = amctq::test::uniform_floats(rng, 64, -3, 3);
  const auto x = ft({4, 16}, xv);
  for (float p : {2.0f, 3.0f, 0.5f, -1.5f}) {
    single_node s("Pow", {"x", "p"});
    s.constant("p", ft({}, {p}));
    std::vector<float> want;
    for (float v : xv) want.push_back(std::pow(v, p));
    const auto y = s.run({{"x", x}});
    REQUIRE(y.shape() == std::vector<std::int64_t>{4, 16});
    for (std::size_t i = 0; i < want.size(); ++i) {
      INFO("p=" << p << " element " << i);
      if (std::isnan(want[i])) CHECK(std::isnan(y.data<float>()[i]));
      else CHECK(std::abs(y.data<float>()[i] - want[i]) <= 1e-5f * std::max(1.0f, std::abs(want[i])));
    }
  }
  // A [1]-shaped exponent broadcasting a rank-0 base takes the general path (output shape [1]).
  single_node scalar_base("Pow", {"x", "p"});
  scalar_base.constant("p", ft({1}, {2}));
  check_close(scalar_base.run({{"x", ft({}, {3})}}), {1}, {9});
  // int64 base with int64 and float exponents: the base's type out.
  single_node ii("Pow", {"x", "p"});
  ii.constant("p", it64({3}, {0, 1, 40}));
  CHECK(ints(ii.run({{"x", it64({3}, {5, -7, 2})}})) == std::vector<std::int64_t>{1, -7, std::int64_t(1) << 40});
  single_node ifl("Pow", {"x", "p"});
  ifl.constant("p", ft({}, {0.5f}));
  CHECK(ints(ifl.run({{"x", it64({3}, {4, 9, 10})}})) == std::vector<std::int64_t>{2, 3, 3});
}

TEST_CASE("Gelu (opset 20): exact and tanh forms; an unknown approximation is refused") {
  const std::vector<float> xv = {-3, -1, -0.25f, 0, 0.5f, 2};
  std::vector<float> exact, approx;
  for (float v : xv) {
    exact.push_back(0.5f * v * (1 + std::erf(v / std::sqrt(2.0f))));
    approx.push_back(0.5f * v * (1 + std::tanh(std::sqrt(2.0f / 3.14159265f) * (v + 0.044715f * v * v * v))));
  }
  const auto x = ft({2, 3}, xv);
  check_close(single_node("Gelu", {"x"}, {}, 20).run({{"x", x}}), {2, 3}, exact);
  check_close(single_node("Gelu", {"x"}, {attr_s("approximate", "tanh")}, 20).run({{"x", x}}), {2, 3}, approx);
  single_node bad("Gelu", {"x"}, {attr_s("approximate", "sigmoid")}, 20);
  CHECK(code_of(bad, {{"x", x}}) == errc::unsupported);
}

TEST_CASE("Softplus, Mish, Elu, Selu, Celu stay finite for large |x|") {
  const auto x = ft({4}, {-100, -1, 1, 100});
  const float sp1 = std::log1p(std::exp(1.0f)), spm1 = std::log1p(std::exp(-1.0f));
  check_close(single_node("Softplus", {"x"}).run({{"x", x}}), {4}, {0, spm1, sp1, 100});
  check_close(single_node("Mish", {"x"}).run({{"x", x}}), {4}, {0, -std::tanh(spm1), std::tanh(sp1), 100});
  check_close(single_node("Elu", {"x"}).run({{"x", x}}), {4}, {-1, std::expm1(-1.0f), 1, 100});
  const float a = 1.67326319217681884765625f, g = 1.05070102214813232421875f;
  check_close(single_node("Selu", {"x"}).run({{"x", x}}), {4}, {-g * a, g * a * std::expm1(-1.0f), g, g * 100});
  check_close(single_node("Celu", {"x"}, {amctq::test::attr_f("alpha", 2.0f)}).run({{"x", x}}), {4},
              {-2, 2 * std::expm1(-0.5f), 1, 100});
}

TEST_CASE("PRelu: one slope per channel as [C,1,1] on NCHW; a slope that would grow the output is refused") {
  single_node s("PRelu", {"x", "slope"});
  s.constant("slope", ft({2, 1, 1}, {0.1f, 0.5f}));
  check_close(s.run({{"x", ft({1, 2, 1, 2}, {-1, 2, -4, 3})}}), {1, 2, 1, 2}, {-0.1f, 2, -2, 3});
  single_node grow("PRelu", {"x", "slope"});
  grow.constant("slope", ft({3}, {1, 2, 3}));
  CHECK(code_of(grow, {{"x", ft({1}, {-1})}}) == errc::shape_mismatch);
}

TEST_CASE("Comparisons on int64 shapes and bool; logic ops; Neg / Abs / Sign on int64") {
  single_node eq("Equal", {"a", "b"});
  eq.constant("b", it64({}, {-1}));
  const auto eq_out = eq.run({{"a", it64({4}, {1, -1, 3, -1})}});
  CHECK(eq_out.shape() == std::vector<std::int64_t>{4});
  CHECK(bools(eq_out) == std::vector<int>{0, 1, 0, 1});
  single_node eqb("Equal", {"a", "b"});
  eqb.constant("b", bt({2}, {1, 0}));
  CHECK(bools(eqb.run({{"a", bt({2, 2}, {1, 1, 0, 0})}})) == std::vector<int>{1, 0, 0, 1});
  single_node lt("Less", {"a", "b"});
  lt.constant("b", ft({2, 1}, {0, 2}));
  CHECK(bools(lt.run({{"a", ft({3}, {-1, 1, 3})}})) == std::vector<int>{1, 0, 0, 1, 1, 0});
  single_node ge("GreaterOrEqual", {"a", "b"});
  ge.constant("b", ft({}, {1}));
  CHECK(bools(ge.run({{"a", ft({3}, {0, 1, std::numeric_limits<float>::quiet_NaN()})}})) == std::vector<int>{0, 1, 0});
  single_node or_("Or", {"a", "b"});
  or_.constant("b", bt({2, 1}, {0, 1}));
  CHECK(bools(or_.run({{"a", bt({2}, {0, 1})}})) == std::vector<int>{0, 1, 1, 1});
  CHECK(bools(single_node("Not", {"a"}).run({{"a", bt({3}, {0, 1, 0})}})) == std::vector<int>{1, 0, 1});
  single_node and_f("And", {"a", "b"});
  and_f.constant("b", ft({1}, {1}));
  CHECK(code_of(and_f, {{"a", ft({1}, {1})}}) == errc::unsupported);
  single_node mixed("Less", {"a", "b"});
  mixed.constant("b", it64({1}, {1}));
  CHECK(code_of(mixed, {{"a", ft({1}, {1})}}) == errc::invalid_argument);
  CHECK(ints(single_node("Neg", {"x"}).run({{"x", it64({3}, {2, -3, 0})}})) == std::vector<std::int64_t>{-2, 3, 0});
  CHECK(ints(single_node("Abs", {"x"}).run({{"x", it64({3}, {2, -3, 0})}})) == std::vector<std::int64_t>{2, 3, 0});
  CHECK(ints(single_node("Sign", {"x"}).run({{"x", it64({3}, {2, -3, 0})}})) == std::vector<std::int64_t>{1, -1, 0});
  single_node sqrt_int("Sqrt", {"x"});
  CHECK(code_of(sqrt_int, {{"x", it64({1}, {4})}}) == errc::unsupported);
}

TEST_CASE("Where: a causal mask [1,1,T,T] over scores [B,H,T,T] with a scalar fill; int64 and bool values") {
  const std::int64_t B = 2, H = 3, T = 4;
  std::mt19937 rng(11);
  const auto sv = amctq::test::uniform_floats(rng, static_cast<std::size_t>(B * H * T * T));
  std::vector<std::uint8_t> mv;
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t j = 0; j < T; ++j) mv.push_back(j <= i);
  single_node s("Where", {"mask", "scores", "fill"});
  s.constant("mask", bt({1, 1, T, T}, mv)).constant("fill", ft({}, {-1e9f}));
  const auto y = s.run({{"scores", ft({B, H, T, T}, sv)}});
  REQUIRE(y.shape() == std::vector<std::int64_t>{B, H, T, T});
  for (std::size_t k = 0; k < sv.size(); ++k) {
    const std::size_t ij = k % static_cast<std::size_t>(T * T);
    CHECK(y.data<float>()[k] == (mv[ij] ? sv[k] : -1e9f));
  }
  single_node wi("Where", {"c", "a", "b"});
  wi.constant("a", it64({2}, {1, 2})).constant("b", it64({2, 1}, {-1, -2}));
  CHECK(ints(wi.run({{"c", bt({2}, {1, 0})}})) == std::vector<std::int64_t>{1, -1, 1, -2});
  single_node wb("Where", {"c", "a", "b"});
  wb.constant("a", bt({}, {1})).constant("b", bt({}, {0}));
  CHECK(bools(wb.run({{"c", bt({3}, {0, 1, 1})}})) == std::vector<int>{0, 1, 1});
  single_node bad("Where", {"c", "a", "b"});
  bad.constant("a", ft({1}, {1})).constant("b", ft({1}, {0}));
  CHECK(code_of(bad, {{"c", ft({1}, {1})}}) == errc::unsupported);
}

TEST_CASE("CastLike takes the second input's element type") {
  single_node s("CastLike", {"x", "like"}, {}, 15);
  s.constant("like", it64({0}, {}));
  CHECK(ints(s.run({{"x", ft({3}, {1.9f, -2.7f, 0})}})) == std::vector<std::int64_t>{1, -2, 0});
}

}  // namespace test_math_logic
