// Intra-op threads: Conv and MatMul shared out over an executor's threads give the bytes of one
// thread, for every way the work can be cut (one image or many, groups, 1x1, depthwise, several
// row blocks); the cuts themselves; the pool's error handling. And weights packed once or on
// every run (executor::set_keep_packed_weights) give the same bytes too.
#include <doctest/doctest.h>

#include <random>
#include <stdexcept>

#include "graph/builder.hpp"

namespace test_intra_op {

using namespace amctq;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::ft;
using amctq::test::same_bytes;
using amctq::test::single_node;
namespace detail = amctq::graph::ops::detail;

namespace {
graph::tensor random_tensor(std::vector<std::int64_t> shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = u(rng);
  return ft(std::move(shape), std::move(v));
}
}  // namespace

TEST_CASE("split_rows: contiguous spans over all rows, cut on block or panel boundaries, at most `parts`") {
  for (std::int64_t rows : {1, 47, 48, 49, 100, 1000, 3136, 10001})
    for (std::int64_t depth : {9, 300, 2000})
      for (std::int64_t parts : {1, 2, 3, 7}) {
        CAPTURE(rows);
        CAPTURE(depth);
        CAPTURE(parts);
        const detail::gemm_blocking b(rows, depth, 64);
        const auto spans = detail::split_rows(rows, b, parts);
        REQUIRE(!spans.empty());
        CHECK(static_cast<std::int64_t>(spans.size()) <= parts);
        CHECK(spans.front().begin == 0);
        CHECK(spans.back().end == rows);
        for (std::size_t i = 0; i < spans.size(); ++i) {
          CHECK(spans[i].begin < spans[i].end);
          if (i > 0) CHECK(spans[i].begin == spans[i - 1].end);
          const std::int64_t in_block = spans[i].begin % b.mc;
          CHECK(in_block % (detail::lhs_panel > 0 ? detail::lhs_panel : b.mc) == 0);
        }
        if (parts > 1 && rows >= 2 * 48) CHECK(spans.size() > 1);  // big enough to share
      }
}

TEST_CASE("split_cols: whole nr-column panels, the short last panel last") {
  for (std::int64_t cols : {1, 3, 4, 50, 102, 512})
    for (std::int64_t parts : {1, 2, 3}) {
      const auto spans = detail::split_cols(cols, parts);
      REQUIRE(!spans.empty());
      CHECK(spans.front().begin == 0);
      CHECK(spans.back().end == cols);
      for (std::size_t i = 1; i < spans.size(); ++i) {
        CHECK(spans[i].begin == spans[i - 1].end);
        CHECK(spans[i].begin % detail::gemm_kernels::Traits::nr == 0);
      }
    }
}

TEST_CASE("Conv on 1, 2 and 3 intra-op threads: the same bytes") {
  struct conv_case {
    const char* what;
    std::vector<std::int64_t> x, w;
    std::vector<graph::attribute> attrs;
  };
  const std::vector<conv_case> cases = {
      {"3x3 pad 1, one image", {1, 16, 30, 30}, {24, 16, 3, 3}, {attr_ints("pads", {1, 1, 1, 1})}},
      {"3x3, one image, several row blocks", {1, 64, 58, 58}, {64, 64, 3, 3}, {}},
      {"7x7 stride 2 pad 3, odd positions", {1, 3, 45, 41}, {8, 3, 7, 7},
       {attr_ints("strides", {2, 2}), attr_ints("pads", {3, 3, 3, 3})}},
      {"groups 2, one image", {1, 8, 17, 19}, {6, 4, 3, 3}, {attr_i("group", 2)}},
      {"1x1 direct, one image", {1, 32, 23, 23}, {40, 32, 1, 1}, {}},
      {"1x1 stride 2", {1, 32, 23, 23}, {16, 32, 1, 1}, {attr_ints("strides", {2, 2})}},
      {"depthwise, two images", {2, 12, 15, 15}, {12, 1, 3, 3}, {attr_i("group", 12), attr_ints("pads", {1, 1, 1, 1})}},
      {"five images (more than the threads)", {5, 8, 11, 11}, {8, 8, 3, 3}, {}},
      {"1-D", {1, 10, 300}, {12, 10, 5}, {}},
      {"7x7 map: channels shared out", {1, 64, 7, 7}, {102, 64, 3, 3}, {attr_ints("pads", {1, 1, 1, 1})}},
      {"no images", {0, 8, 9, 9}, {8, 8, 3, 3}, {}},
      {"1x1 on a 7x7 map: channels shared out", {1, 96, 7, 7}, {50, 96, 1, 1}, {}},
      {"direct path, one image: tiles shared out, some parts short", {1, 20, 40, 37}, {19, 20, 3, 3},
       {attr_ints("pads", {1, 2, 0, 1})}},
      {"direct path, dilated, two images", {2, 9, 26, 26}, {8, 9, 3, 3},
       {attr_ints("pads", {2, 2, 2, 2}), attr_ints("dilations", {2, 2})}},
      {"direct path, strides 2 x 1", {1, 12, 33, 40}, {10, 12, 3, 3},
       {attr_ints("pads", {1, 1, 1, 1}), attr_ints("strides", {2, 1})}},
  };
  for (const auto& cc : cases) {
    CAPTURE(cc.what);
    single_node conv("Conv", {"x", "w", "b"}, cc.attrs);
    conv.constant("w", random_tensor(cc.w, 2)).constant("b", random_tensor({cc.w[0]}, 3));
    const graph::tensor x = random_tensor(cc.x, 1);
    const graph::tensor one = conv.run({{"x", x}}, 1);
    for (int threads : {2, 3}) {
      CAPTURE(threads);
      CHECK(same_bytes(conv.run({{"x", x}}, threads), one));
    }
  }
}

TEST_CASE("MatMul with a constant B on 1, 2 and 3 intra-op threads: the same bytes") {
  struct matmul_case {
    std::vector<std::int64_t> a, b;
  };
  for (const auto& mc : std::vector<matmul_case>{{{1, 50, 96}, {96, 200}},
                                                 {{3, 7, 64}, {64, 1000}},
                                                 {{37, 300}, {300, 2000}},
                                                 {{1, 1, 768}, {768, 3072}}}) {
    CAPTURE(mc.a.size());
    CAPTURE(mc.b[1]);
    single_node mm("MatMul", {"a", "b"});
    mm.constant("b", random_tensor(mc.b, 5));
    const graph::tensor a = random_tensor(mc.a, 4);
    const graph::tensor one = mm.run({{"a", a}}, 1);
    for (int threads : {2, 3}) CHECK(same_bytes(mm.run({{"a", a}}, threads), one));
  }
}

TEST_CASE("row-wise and elementwise ops on 1 and 2 intra-op threads: the same bytes") {
  const graph::tensor x = random_tensor({2, 4, 96, 97}, 9);
  single_node softmax("Softmax", {"x"});
  single_node softmax_axis1("Softmax", {"x"}, {attr_i("axis", 1)});
  single_node erf("Erf", {"x"});
  single_node layer_norm("LayerNormalization", {"x", "s", "b"}, {}, 17);
  layer_norm.constant("s", random_tensor({97}, 10)).constant("b", random_tensor({97}, 11));
  for (single_node* op : {&softmax, &softmax_axis1, &erf, &layer_norm}) {
    CAPTURE(op->m.main.nodes[0].op_type);
    CHECK(same_bytes(op->run({{"x", x}}, 2), op->run({{"x", x}}, 1)));
  }
  single_node attention("MatMul", {"q", "k"});  // neither operand constant: one product per head
  const graph::tensor q = random_tensor({1, 4, 64, 32}, 12), k = random_tensor({1, 4, 32, 64}, 13);
  CHECK(same_bytes(attention.run({{"q", q}, {"k", k}}, 2), attention.run({{"q", q}, {"k", k}}, 1)));
}

TEST_CASE("Conv and MatMul with weights packed per run, on 1 and 2 threads: the bytes of kept packed weights") {
  single_node conv("Conv", {"x", "w", "b"}, {attr_ints("pads", {1, 1, 1, 1})});
  conv.constant("w", random_tensor({24, 16, 3, 3}, 2)).constant("b", random_tensor({24}, 3));
  single_node mm("MatMul", {"x", "w"});
  mm.constant("w", random_tensor({96, 300}, 5));
  const std::vector<std::pair<single_node*, graph::tensor>> cases = {{&conv, random_tensor({2, 16, 20, 20}, 1)},
                                                                      {&mm, random_tensor({3, 50, 96}, 4)}};
  for (const auto& entry : cases) {
    single_node* const op = entry.first;  // not a structured binding: CAPTURE's lambda takes it
    const graph::tensor& x = entry.second;
    CAPTURE(op->m.main.nodes[0].op_type);
    op->m.main.inputs = {amctq::test::info("x", graph::dtype::float32)};
    graph::executor kept(op->m), per_run(op->m);
    per_run.set_keep_packed_weights(false);
    const graph::tensor want = kept.run({{"x", x}}).at("y");
    for (int threads : {1, 2}) {
      per_run.set_intra_op_threads(threads);
      for (int run = 0; run < 2; ++run) CHECK(same_bytes(per_run.run({{"x", x}}).at("y"), want));
    }
  }
}

TEST_CASE("intra_op_pool: every task once, the first error rethrown, usable again; bad thread counts refused") {
  graph::ops::intra_op_pool pool(3);
  CHECK(pool.threads() == 3);
  std::vector<int> hits(1000, 0);
  std::vector<int> by_worker(3, 0);
  std::mutex m;
  pool.run(1000, [&](std::int64_t t, int w) {
    ++hits[static_cast<std::size_t>(t)];  // each task index once: no two workers share an element
    std::lock_guard<std::mutex> g(m);
    ++by_worker[static_cast<std::size_t>(w)];
  });
  CHECK(std::count(hits.begin(), hits.end(), 1) == 1000);
  CHECK(by_worker[0] + by_worker[1] + by_worker[2] == 1000);
  CHECK_THROWS_WITH_AS(pool.run(50, [](std::int64_t t, int) {
    if (t == 7) throw std::runtime_error("task 7 failed");
  }), "task 7 failed", std::runtime_error);
  std::atomic<int> again{0};
  pool.run(10, [&](std::int64_t, int) { ++again; });
  CHECK(again == 10);

  single_node relu("Relu", {"x"});
  relu.m.main.inputs.push_back(amctq::test::info("x", graph::dtype::float32));
  graph::executor ex(relu.m);
  CHECK_THROWS_AS(ex.set_intra_op_threads(0), amctq::error);
  ex.set_intra_op_threads(4);
  CHECK(ex.intra_op_threads() == 4);
  ex.set_intra_op_threads(1);
  CHECK(ex.intra_op_threads() == 1);
}

}  // namespace test_intra_op
