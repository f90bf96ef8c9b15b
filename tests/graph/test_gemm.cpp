// Gemm and MatMul: transposes, alpha/beta, broadcast C, batched broadcasting, 1-D promotion;
// MatMulInteger (amctq's simulation of the deploy model) on the same shape rules.
#include <doctest/doctest.h>

#include <random>

#include "amctq/graph/integer_sim.hpp"
#include "graph/builder.hpp"

namespace test_gemm {

using namespace amctq;
using amctq::test::attr_f;
using amctq::test::attr_i;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::single_node;

TEST_CASE("Gemm: plain, transposed, alpha/beta, C broadcast as row, column and scalar") {
  const auto a = ft({2, 3}, {1, 2, 3, 4, 5, 6});
  const auto b = ft({3, 2}, {1, 0, 0, 1, 1, 1});  // A*B = [[4,5],[10,11]]
  single_node plain("Gemm", {"a", "b"});
  check_close(plain.run({{"a", a}, {"b", b}}), {2, 2}, {4, 5, 10, 11});

  single_node t("Gemm", {"a", "b", "c"}, {attr_i("transA", 1), attr_i("transB", 1), attr_f("alpha", 2), attr_f("beta", 3)});
  const auto at = ft({3, 2}, {1, 4, 2, 5, 3, 6});
  const auto bt = ft({2, 3}, {1, 0, 1, 0, 1, 1});
  check_close(t.run({{"a", at}, {"b", bt}, {"c", ft({2}, {1, -1})}}), {2, 2}, {11, 7, 23, 19});
  single_node col("Gemm", {"a", "b", "c"});
  check_close(col.run({{"a", a}, {"b", b}, {"c", ft({2, 1}, {100, 200})}}), {2, 2}, {104, 105, 210, 211});
  single_node sc("Gemm", {"a", "b", "c"});
  check_close(sc.run({{"a", a}, {"b", b}, {"c", ft({}, {0.5f})}}), {2, 2}, {4.5f, 5.5f, 10.5f, 11.5f});

  single_node bad("Gemm", {"a", "b"});
  CHECK_THROWS_WITH_AS(bad.run({{"a", a}, {"b", a}}), doctest::Contains("inner dims differ"), amctq::error);
  single_node badc("Gemm", {"a", "b", "c"});
  CHECK_THROWS_AS(badc.run({{"a", a}, {"b", b}, {"c", ft({3}, {1, 2, 3})}}), amctq::error);
}

TEST_CASE("MatMul: batched with broadcasting and 1-D operands") {
  // [2,1,2,2] x [3,2,1] -> [2,3,2,1]
  const auto a = ft({2, 1, 2, 2}, {1, 0, 0, 1, 2, 0, 0, 2});
  const auto b = ft({3, 2, 1}, {1, 2, 3, 4, 5, 6});
  single_node mm("MatMul", {"a", "b"});
  check_close(mm.run({{"a", a}, {"b", b}}), {2, 3, 2, 1}, {1, 2, 3, 4, 5, 6, 2, 4, 6, 8, 10, 12});
  single_node vec("MatMul", {"a", "b"});
  check_close(vec.run({{"a", ft({2}, {1, 1})}, {"b", ft({2, 3}, {1, 2, 3, 4, 5, 6})}}), {3}, {5, 7, 9});
  single_node vv("MatMul", {"a", "b"});
  check_close(vv.run({{"a", ft({3}, {1, 2, 3})}, {"b", ft({3}, {4, 5, 6})}}), {}, {32});
  single_node bad("MatMul", {"a", "b"});
  CHECK_THROWS_AS(bad.run({{"a", ft({2, 2, 3}, std::vector<float>(12))}, {"b", ft({3, 3, 1}, std::vector<float>(9))}}),
                  amctq::error);
}

TEST_CASE("MatMulInteger: batched, broadcast, per-column B zero points; equals MatMul of (a - a_zp) and (b - b_zp)") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(-128, 127);
  auto codes = [&](std::vector<std::int64_t> shape) {
    graph::tensor t(graph::dtype::int8, shape);
    for (std::size_t i = 0; i < t.size(); ++i) t.data<std::int8_t>()[i] = static_cast<std::int8_t>(code(rng));
    return t;
  };
  auto shifted = [](const graph::tensor& q, const std::vector<int>& zp) {  // float (q - zp[last dim])
    graph::tensor f(graph::dtype::float32, q.shape());
    const std::size_t n = static_cast<std::size_t>(q.shape().back());
    for (std::size_t i = 0; i < q.size(); ++i)
      f.data<float>()[i] = static_cast<float>(q.data<std::int8_t>()[i] - zp[zp.size() == 1 ? 0 : i % n]);
    return f;
  };
  struct shapes {
    std::vector<std::int64_t> a, b;
    std::vector<int> b_zp;
  };
  // Attention's Q·Kᵀ [B, H, T, d] x [B, H, d, T]; a broadcast batch; a constant [K, N] with one
  // zero point per column.
  for (const shapes& sh : {shapes{{2, 3, 5, 4}, {2, 3, 4, 5}, {-3}}, shapes{{2, 1, 3, 6}, {4, 6, 2}, {5}},
                           shapes{{3, 7}, {7, 4}, {1, -2, 0, 9}}}) {
    const graph::tensor a = codes(sh.a), b = codes(sh.b);
    std::vector<std::int8_t> bz(sh.b_zp.begin(), sh.b_zp.end());
    const std::vector<std::int64_t> bz_shape = bz.size() == 1 ? std::vector<std::int64_t>{} : std::vector<std::int64_t>{4};
    single_node mi("MatMulInteger", {"a", "b", "a_zp", "b_zp"});
    mi.constant("a_zp", graph::tensor::from<std::int8_t>({}, {std::int8_t{11}})).constant("b_zp", graph::tensor::from<std::int8_t>(bz_shape, bz));
    mi.m.main.inputs = {amctq::test::info("a", graph::dtype::int8), amctq::test::info("b", graph::dtype::int8)};
    const graph::tensor y = graph::simulate(mi.m, {{"a", a}, {"b", b}}).at("y");
    REQUIRE(y.type() == graph::dtype::int32);
    single_node mm("MatMul", {"a", "b"});
    const graph::tensor ref = mm.run({{"a", shifted(a, {11})}, {"b", shifted(b, sh.b_zp)}});
    REQUIRE(y.shape() == ref.shape());
    for (std::size_t i = 0; i < y.size(); ++i) CHECK(static_cast<float>(y.data<std::int32_t>()[i]) == ref.data<float>()[i]);
  }
}

}  // namespace test_gemm
