// graph/auto_search.hpp: the binary search of `amctq auto` with made-up metrics: a known sensitive
// layer is found, the steps are the same on every run, the cache and the budget hold.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "amctq/graph/auto_search.hpp"

namespace test_auto_search {

using namespace amctq::graph;

std::string key_of(const level_assignment& a) {
  std::string k;
  for (int l : a) k += static_cast<char>('0' + l);
  return k;
}

// A metric of 90 minus 10 for every layer of `bad` below level `need` (2 levels: float = 1).
auto_search_problem problem(std::vector<std::size_t> order, int levels, std::vector<std::size_t> bad, int need,
                            std::vector<std::string>* measured) {
  auto_search_problem p;
  p.order = std::move(order);
  p.levels = levels;
  p.key = key_of;
  p.measure = [bad, need, measured](const level_assignment& a) {
    if (measured) measured->push_back(key_of(a));
    double m = 90;
    for (std::size_t b : bad)
      if (a[b] < need) m -= 10;
    return m;
  };
  p.satisfied = [](double m) { return 90 - m <= 0.5; };
  return p;
}

TEST_CASE("cosine similarity and the ranking") {
  const float a[] = {1, 2, 3}, b[] = {1, 2, 3}, c[] = {-1, -2, -3}, z[] = {0, 0, 0};
  CHECK(cosine_similarity(a, b, 3) == doctest::Approx(1.0));
  CHECK(cosine_similarity(a, c, 3) == doctest::Approx(-1.0));
  CHECK(cosine_similarity(z, z, 3) == 1.0);
  CHECK(cosine_similarity(a, z, 3) == 0.0);
  // Ties keep layer order.
  CHECK(sensitivity_order({0.9, 0.5, 0.9, 0.5, 1.0}) == std::vector<std::size_t>{1, 3, 0, 2, 4});
}

TEST_CASE("fallback: the layers ranked at or above a known sensitive layer stay float, no others") {
  // Layer 4 is the sensitive one, ranked third.
  std::vector<std::string> measured;
  const auto r = auto_search(problem({2, 0, 4, 1, 3, 5, 6}, 2, {4}, 1, &measured));
  REQUIRE(r.found);
  CHECK(key_of(r.best) == "1010100");  // layers 2, 0, 4 float
  CHECK(r.best_metric == 90);
  // All quantized; then k = 4, 2, 3 (binary search over 1..7).
  CHECK(measured == std::vector<std::string>{"0000000", "1110100", "1010000", "1010100"});
  CHECK(r.evaluations == 4);
  CHECK_FALSE(r.budget_exhausted);
  // The same problem gives the same steps.
  std::vector<std::string> again;
  auto_search(problem({2, 0, 4, 1, 3, 5, 6}, 2, {4}, 1, &again));
  CHECK(again == measured);
}

TEST_CASE("three levels: the safest level for the sensitive, the middle for the rest of that prefix") {
  // Layer 1 needs level 2; layer 3 needs level 1 (ranked first and second).
  auto_search_problem p = problem({1, 3, 0, 2}, 3, {}, 0, nullptr);
  p.measure = [](const level_assignment& a) { return 90.0 - (a[1] < 2 ? 10 : 0) - (a[3] < 1 ? 10 : 0); };
  const auto r = auto_search(p);
  REQUIRE(r.found);
  CHECK(key_of(r.best) == "0201");
  CHECK(r.steps.front().phase == "all-compressed");
  CHECK(r.steps.back().phase == "step-down");
}

TEST_CASE("already satisfied: one evaluation; never satisfied: not found after the safest of all") {
  const auto ok = auto_search(problem({0, 1, 2}, 2, {}, 1, nullptr));
  CHECK(ok.found);
  CHECK(ok.evaluations == 1);
  CHECK(key_of(ok.best) == "000");
  auto_search_problem never = problem({0, 1, 2}, 2, {}, 1, nullptr);
  never.measure = [](const level_assignment&) { return 0.0; };
  const auto r = auto_search(never);
  CHECK_FALSE(r.found);
  CHECK(key_of(r.steps.back().levels) == "111");
}

TEST_CASE("the cache measures a config once; the budget stops with the best so far") {
  // Every assignment has the same key: one measurement, the rest from the cache.
  std::vector<std::string> measured;
  auto_search_problem p = problem({0, 1, 2, 3}, 2, {3}, 1, &measured);
  p.key = [](const level_assignment&) { return std::string("same"); };
  const auto r = auto_search(p);
  CHECK(measured.size() == 1);
  CHECK(r.evaluations == 1);
  CHECK(r.steps.size() > 1);
  CHECK(r.steps[1].cached);

  // Sensitive layer ranked last: k = 8 is needed; with 2 evaluations the search stops after
  // all-quantized and k = 4 (both failing): nothing found, budget exhausted.
  auto_search_problem b = problem({0, 1, 2, 3, 4, 5, 6, 7}, 2, {7}, 1, nullptr);
  b.max_evals = 2;
  const auto rb = auto_search(b);
  CHECK_FALSE(rb.found);
  CHECK(rb.budget_exhausted);
  CHECK(rb.evaluations == 2);
  // Sensitive layer ranked first: k = 4 satisfies at the second evaluation and is the best so far.
  auto_search_problem c = problem({7, 0, 1, 2, 3, 4, 5, 6}, 2, {7}, 1, nullptr);
  c.max_evals = 2;
  const auto rc = auto_search(c);
  CHECK(rc.found);
  CHECK(rc.budget_exhausted);
  CHECK(key_of(rc.best) == "11100001");
}

}  // namespace test_auto_search
