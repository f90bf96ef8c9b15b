// Reductions, index ops and Einsum where the ONNX node tests leave gaps: the pre-opset-18 axes
// attribute, integer dtypes, double accumulation, TopK ties, attention-shaped Einsum contractions
// (GEMM path) against a direct loop, and errors naming the node.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "graph/builder.hpp"

namespace test_reduce_index {

using namespace amctq;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::attr_s;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::it64;
using amctq::test::single_node;

template <class T>
std::vector<T> vals(const graph::tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.size());
}

TEST_CASE("Reduce*: axes attribute before opset 18 (13 for ReduceSum), input after; keepdims; noop_with_empty_axes") {
  const auto x = ft({2, 3}, {1, 2, 3, 4, 5, 6});
  check_close(single_node("ReduceMean", {"x"}, {attr_ints("axes", {-1})}, 13).run({{"x", x}}), {2, 1}, {2, 5});
  check_close(single_node("ReduceMax", {"x"}, {attr_ints("axes", {0}), attr_i("keepdims", 0)}, 13).run({{"x", x}}), {3},
              {4, 5, 6});
  check_close(single_node("ReduceSum", {"x"}, {attr_ints("axes", {1})}, 11).run({{"x", x}}), {2, 1}, {6, 15});
  check_close(single_node("ReduceSum", {"x", "a"}, {}, 13).run({{"x", x}, {"a", it64({1}, {0})}}), {1, 3}, {5, 7, 9});
  check_close(single_node("ReduceProd", {"x", "a"}, {attr_i("keepdims", 0)}, 18).run({{"x", x}, {"a", it64({1}, {1})}}),
              {2}, {6, 120});
  check_close(single_node("ReduceL2", {"x"}, {attr_i("keepdims", 0)}, 18).run({{"x", x}}), {}, {std::sqrt(91.0f)});
  // Empty axes: all axes, or the input itself (through the element's own transform) with noop.
  check_close(single_node("ReduceSumSquare", {"x", "a"}, {attr_i("noop_with_empty_axes", 1)}, 18)
                  .run({{"x", x}, {"a", it64({0}, {})}}),
              {2, 3}, {1, 4, 9, 16, 25, 36});
  check_close(single_node("ReduceMin", {"x", "a"}, {}, 18).run({{"x", x}, {"a", it64({0}, {})}}), {1, 1}, {1});
  CHECK_THROWS_WITH_AS(single_node("ReduceSum", {"x", "a"}, {}, 13).run({{"x", x}, {"a", it64({2}, {1, -1})}}),
                       doctest::Contains("node 'n0' (ReduceSum)"), amctq::error);
  CHECK_THROWS_AS(single_node("ReduceMean", {"x"}, {attr_ints("axes", {2})}, 13).run({{"x", x}}), amctq::error);
}

TEST_CASE("Reduce*: floats accumulate in double, log-sum-exp is shifted, integers stay integers") {
  check_close(single_node("ReduceSum", {"x"}, {attr_i("keepdims", 0)}, 13).run({{"x", ft({4}, {1e8f, 1, -1e8f, 1})}}), {},
              {2});
  check_close(single_node("ReduceLogSumExp", {"x"}, {attr_i("keepdims", 0)}, 18).run({{"x", ft({2}, {1000, 1000})}}), {},
              {1000 + std::log(2.0f)});
  const auto s = single_node("ReduceSum", {"x", "a"}, {}, 13)
                     .run({{"x", it64({2, 2}, {1, 2, 3, -4})}, {"a", it64({1}, {1})}});
  CHECK(s.type() == graph::dtype::int64);
  CHECK(vals<std::int64_t>(s) == std::vector<std::int64_t>{3, -1});
  const auto m = single_node("ReduceMean", {"x"}, {attr_ints("axes", {0})}, 13).run({{"x", it64({2}, {3, 4})}});
  CHECK(vals<std::int64_t>(m) == std::vector<std::int64_t>{3});
  // An empty reduction gives the identity of its operation.
  check_close(single_node("ReduceSum", {"x", "a"}, {}, 18).run({{"x", ft({2, 0}, {})}, {"a", it64({1}, {1})}}), {2, 1},
              {0, 0});
  const auto mx = single_node("ReduceMax", {"x", "a"}, {}, 18).run({{"x", ft({2, 0}, {})}, {"a", it64({1}, {1})}});
  CHECK(std::isinf(mx.data<float>()[0]));
  CHECK(mx.data<float>()[0] < 0);
}

TEST_CASE("ArgMax / ArgMin: first or last of ties, integer input, keepdims") {
  const auto x = ft({2, 3}, {1, 3, 3, 2, 0, 2});
  CHECK(vals<std::int64_t>(single_node("ArgMax", {"x"}, {attr_i("axis", 1)}).run({{"x", x}})) ==
        std::vector<std::int64_t>{1, 0});
  const auto last = single_node("ArgMax", {"x"}, {attr_i("axis", -1), attr_i("select_last_index", 1), attr_i("keepdims", 0)})
                        .run({{"x", x}});
  CHECK(last.shape() == std::vector<std::int64_t>{2});
  CHECK(vals<std::int64_t>(last) == std::vector<std::int64_t>{2, 2});
  CHECK(vals<std::int64_t>(single_node("ArgMin", {"x"}).run({{"x", it64({3}, {5, -1, -1})}})) ==
        std::vector<std::int64_t>{1});
  CHECK_THROWS_AS(single_node("ArgMax", {"x"}).run({{"x", ft({0}, {})}}), amctq::error);
}

TEST_CASE("TopK: ties keep the lower index, smallest, k as attribute (opset 1) or input, bad k") {
  auto run = [](single_node& n, std::map<std::string, graph::tensor> feeds) {
    for (const auto& f : feeds) n.m.main.inputs.push_back(amctq::test::info(f.first, f.second.type()));
    return graph::executor(n.m).run(feeds);
  };
  single_node big("TopK", {"x", "k"}, {}, 11, {"v", "i"});
  auto r = run(big, {{"x", ft({1, 5}, {2, 3, 1, 3, 2})}, {"k", it64({1}, {3})}});
  check_close(r.at("v"), {1, 3}, {3, 3, 2});
  CHECK(vals<std::int64_t>(r.at("i")) == std::vector<std::int64_t>{1, 3, 0});
  single_node small("TopK", {"x", "k"}, {attr_i("largest", 0), attr_i("axis", 0)}, 11, {"v", "i"});
  r = run(small, {{"x", it64({4}, {5, 1, 1, 0})}, {"k", it64({1}, {2})}});
  CHECK(vals<std::int64_t>(r.at("v")) == std::vector<std::int64_t>{0, 1});
  CHECK(vals<std::int64_t>(r.at("i")) == std::vector<std::int64_t>{3, 1});
  check_close(single_node("TopK", {"x"}, {attr_i("k", 2)}, 1, {"v", "i"}).run({{"x", ft({3}, {1, 3, 2})}}), {2}, {3, 2});
  CHECK_THROWS_WITH_AS(single_node("TopK", {"x", "k"}, {}, 11, {"v", "i"}).run({{"x", ft({3}, {1, 2, 3})}, {"k", it64({1}, {4})}}),
                       doctest::Contains("node 'n0' (TopK)"), amctq::error);
}

TEST_CASE("CumSum, Range, Trilu, OneHot, NonZero on integer and float data") {
  const auto cs = single_node("CumSum", {"x", "a"}, {attr_i("reverse", 1), attr_i("exclusive", 1)}, 14)
                      .run({{"x", it64({2, 3}, {1, 2, 3, 4, 5, 6})}, {"a", it64({}, {-1})}});
  CHECK(vals<std::int64_t>(cs) == std::vector<std::int64_t>{5, 3, 0, 11, 6, 0});
  const auto r = single_node("Range", {"s", "l", "d"}, {}, 11)
                     .run({{"s", it64({}, {10})}, {"l", it64({}, {-7})}, {"d", it64({}, {-3})}});
  CHECK(vals<std::int64_t>(r) == std::vector<std::int64_t>{10, 7, 4, 1, -2, -5});
  check_close(single_node("Range", {"s", "l", "d"}, {}, 11).run({{"s", ft({}, {0.5f})}, {"l", ft({}, {2})}, {"d", ft({}, {0.5f})}}),
              {3}, {0.5f, 1, 1.5f});
  CHECK_THROWS_AS(single_node("Range", {"s", "l", "d"}, {}, 11).run({{"s", ft({}, {0})}, {"l", ft({}, {2})}, {"d", ft({}, {0})}}),
                  amctq::error);
  const auto tu = single_node("Trilu", {"x", "k"}, {}, 14).run({{"x", it64({2, 3}, {1, 2, 3, 4, 5, 6})}, {"k", it64({}, {1})}});
  CHECK(vals<std::int64_t>(tu) == std::vector<std::int64_t>{0, 2, 3, 0, 0, 6});
  check_close(single_node("Trilu", {"x"}, {attr_i("upper", 0)}, 14).run({{"x", ft({2, 2}, {1, 2, 3, 4})}}), {2, 2}, {1, 0, 3, 4});
  check_close(single_node("OneHot", {"i", "d", "v"}, {attr_i("axis", 0)}, 11)
                  .run({{"i", it64({3}, {0, -1, 7})}, {"d", ft({}, {3})}, {"v", ft({2}, {0, 5})}}),
              {3, 3}, {5, 0, 0, 0, 0, 0, 0, 5, 0});
  graph::tensor mask(graph::dtype::boolean, {2, 2});  // zero-filled: false
  mask.data<bool>()[0] = mask.data<bool>()[3] = true;
  const auto nz = single_node("NonZero", {"x"}).run({{"x", mask}});
  CHECK(nz.shape() == std::vector<std::int64_t>{2, 2});
  CHECK(vals<std::int64_t>(nz) == std::vector<std::int64_t>{0, 1, 0, 1});
}

// The contraction a direct loop computes, for comparing the GEMM path against.
std::vector<float> attention_scores(const std::vector<float>& q, const std::vector<float>& k, int B, int H, int Q, int K, int D) {
  std::vector<float> s(static_cast<std::size_t>(B * H * Q * K), 0);
  for (int b = 0; b < B * H; ++b)
    for (int i = 0; i < Q; ++i)
      for (int j = 0; j < K; ++j)
        for (int d = 0; d < D; ++d) s[(b * Q + i) * K + j] += q[(b * Q + i) * D + d] * k[(b * K + j) * D + d];
  return s;
}

TEST_CASE("Einsum: attention contractions, transposes, ellipsis broadcasting and implicit output") {
  std::mt19937 rng(7);
  const int B = 2, H = 3, Q = 4, K = 5, D = 6;
  const auto q = amctq::test::uniform_floats(rng, B * H * Q * D), k = amctq::test::uniform_floats(rng, B * H * K * D);
  const auto want = attention_scores(q, k, B, H, Q, K, D);
  check_close(single_node("Einsum", {"q", "k"}, {attr_s("equation", "bhqd,bhkd->bhqk")}, 13)
                  .run({{"q", ft({B, H, Q, D}, q)}, {"k", ft({B, H, K, D}, k)}}),
              {B, H, Q, K}, want);
  // The same product with k stored [b,h,d,k]: "bhqd,bhdk->bhqk"; and probabilities times values.
  std::vector<float> kt(k.size());
  for (int b = 0; b < B * H; ++b)
    for (int j = 0; j < K; ++j)
      for (int d = 0; d < D; ++d) kt[(b * D + d) * K + j] = k[(b * K + j) * D + d];
  check_close(single_node("Einsum", {"q", "k"}, {attr_s("equation", "bhqd, bhdk -> bhqk")}, 13)
                  .run({{"q", ft({B, H, Q, D}, q)}, {"k", ft({B, H, D, K}, kt)}}),
              {B, H, Q, K}, want);
  // "bhqk,bhkd->bhqd" with p = q (as [b,h,q,k=d]) and v = kt (as [b,h,k=d,d=k]) reuses the loop above.
  check_close(single_node("Einsum", {"p", "v"}, {attr_s("equation", "bhqk,bhkd->bhqd")}, 13)
                  .run({{"p", ft({B, H, Q, D}, q)}, {"v", ft({B, H, D, K}, kt)}}),
              {B, H, Q, K}, want);
  // Output order differing from the GEMM's (batch dims last) and a transpose.
  const auto a = ft({2, 3}, {1, 2, 3, 4, 5, 6});
  check_close(single_node("Einsum", {"a"}, {attr_s("equation", "ij->ji")}, 13).run({{"a", a}}), {3, 2}, {1, 4, 2, 5, 3, 6});
  check_close(single_node("Einsum", {"a", "b"}, {attr_s("equation", "ij,ik->kji")}, 13)
                  .run({{"a", a}, {"b", ft({2, 1}, {1, 10})}}),
              {1, 3, 2}, {1, 40, 2, 50, 3, 60});
  // Implicit output (labels seen once, alphabetical), ellipsis broadcasting, a diagonal.
  check_close(single_node("Einsum", {"a", "b"}, {attr_s("equation", "ij,jk")}, 13)
                  .run({{"a", a}, {"b", ft({3, 1}, {1, 1, 1})}}),
              {2, 1}, {6, 15});
  check_close(single_node("Einsum", {"a", "b"}, {attr_s("equation", "...ij,...jk->...ik")}, 13)
                  .run({{"a", ft({2, 1, 2}, {1, 2, 3, 4})}, {"b", ft({1, 2, 1}, {1, 10})}}),
              {2, 1, 1}, {21, 43});
  check_close(single_node("Einsum", {"a"}, {attr_s("equation", "ii->i")}, 13).run({{"a", ft({2, 2}, {1, 2, 3, 4})}}), {2},
              {1, 4});
  const auto ints = single_node("Einsum", {"a", "b"}, {attr_s("equation", "ij,j->i")}, 13)
                        .run({{"a", it64({2, 2}, {1, 2, 3, 4})}, {"b", it64({2}, {1, -1})}});
  CHECK(vals<std::int64_t>(ints) == std::vector<std::int64_t>{-1, -1});
  CHECK_THROWS_WITH_AS(single_node("Einsum", {"a"}, {attr_s("equation", "ij,jk->ik")}, 13).run({{"a", a}}),
                       doctest::Contains("node 'n0' (Einsum)"), amctq::error);
  CHECK_THROWS_AS(single_node("Einsum", {"a"}, {attr_s("equation", "ijk->i")}, 13).run({{"a", a}}), amctq::error);
}

}  // namespace test_reduce_index
