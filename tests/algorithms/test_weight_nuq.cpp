// NUQ: the divide-and-conquer optimum equals a plain O(k·L²) dynamic programme and an
// exhaustive search on small cases, is never worse than Lloyd, and remapping leaves at most k
// distinct codes with exactly the reported error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "algorithms/weight_test_util.hpp"
#include "amctq/algorithms/arq.hpp"
#include "amctq/algorithms/nuq.hpp"

namespace test_weight_nuq {

using namespace amctq;

namespace {

// Textbook DP over all split points with integer centres (every integer c tried), no
// monotonicity assumption.
double brute_dp(const level_histogram& h, int k) {
  std::vector<int> x;
  std::vector<double> w;
  for (int v = -128; v <= 127; ++v)
    if (h.count[static_cast<std::size_t>(v + 128)]) {
      x.push_back(v);
      w.push_back(static_cast<double>(h.count[static_cast<std::size_t>(v + 128)]));
    }
  const std::size_t L = x.size();
  auto cost = [&](std::size_t i, std::size_t j) {
    double best = std::numeric_limits<double>::infinity();
    for (int c = x[i]; c <= x[j - 1]; ++c) {
      double s = 0;
      for (std::size_t t = i; t < j; ++t) s += w[t] * (x[t] - c) * (x[t] - c);
      best = std::min(best, s);
    }
    return best;
  };
  const std::size_t K = std::min<std::size_t>(static_cast<std::size_t>(k), L);
  std::vector<std::vector<double>> c(L + 1, std::vector<double>(L + 1, 0.0));
  for (std::size_t i = 0; i < L; ++i)
    for (std::size_t j = i + 1; j <= L; ++j) c[i][j] = cost(i, j);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> D(L + 1, inf);
  D[0] = 0;
  for (std::size_t layer = 1; layer <= K; ++layer) {
    std::vector<double> N(L + 1, inf);
    for (std::size_t j = 1; j <= L; ++j)
      for (std::size_t i = 0; i < j; ++i) N[j] = std::min(N[j], D[i] + c[i][j]);
    D = N;
  }
  return D[L];
}

level_histogram random_histogram(std::mt19937& rng, int levels, int lo, int hi) {
  level_histogram h;
  std::uniform_int_distribution<int> lv(lo, hi);
  std::uniform_int_distribution<int> cnt(1, 1000);
  for (int i = 0; i < levels; ++i) h.count[static_cast<std::size_t>(lv(rng) + 128)] += static_cast<std::uint64_t>(cnt(rng));
  return h;
}

std::vector<std::int8_t> gaussian_codes(std::size_t n, unsigned seed) {
  // Real path: float weights -> ARQ int8 codes.
  auto w = amctq_test::random_weights(static_cast<std::ptrdiff_t>(n), seed, 0.02f);
  const auto v = make_view(w.data(), {static_cast<std::ptrdiff_t>(n / 256), std::ptrdiff_t{256}});
  const auto L = gemm_weight_layout(v, true);
  arq_options cfg;
  cfg.per_channel = false;
  const auto p = arq_params(v, L, cfg);
  std::vector<std::int8_t> q(n);
  arq_quantize(tensor_view<const float, 2>(v), L, p, q.data());
  return q;
}

}  // namespace

TEST_SUITE("algorithms.weights") {
  TEST_CASE("NUQ histogram counts every code") {
    const auto q = gaussian_codes(4096 * 3 + 0, 3u);
    const auto h = int8_level_histogram(q.data(), q.size() - 3);  // odd length exercises the tail
    CHECK(h.total() == q.size() - 3);
    std::vector<std::uint64_t> want(256, 0);
    for (std::size_t i = 0; i + 3 < q.size(); ++i) ++want[static_cast<std::size_t>(q[i] + 128)];
    for (std::size_t v = 0; v < 256; ++v) REQUIRE(h.count[v] == want[v]);
  }

  TEST_CASE("NUQ optimal equals the O(k L^2) DP on random histograms") {
    std::mt19937 rng(11);
    for (int trial = 0; trial < 40; ++trial) {
      const int levels = 5 + trial * 3;
      const auto h = random_histogram(rng, levels, trial % 2 ? -128 : -40, trial % 2 ? 127 : 40);
      for (int k : {2, 3, 5, 16, 32}) {
        CAPTURE(trial);
        CAPTURE(k);
        const auto r = nuq_optimal(h, k);
        REQUIRE(r.centers.size() == static_cast<std::size_t>(k));
        REQUIRE(std::set<int>(r.centers.begin(), r.centers.end()).size() == r.centers.size());
        CHECK(r.error == doctest::Approx(brute_dp(h, k)).epsilon(1e-12));
      }
    }
  }

  TEST_CASE("NUQ optimal matches exhaustive search over all centre sets on a small case") {
    level_histogram h;
    const int xs[] = {-7, -5, -4, -1, 0, 2, 3, 6};
    const std::uint64_t ws[] = {3, 10, 1, 7, 20, 2, 9, 4};
    for (int i = 0; i < 8; ++i) h.count[static_cast<std::size_t>(xs[i] + 128)] = ws[i];
    double best = std::numeric_limits<double>::infinity();
    for (int a = -7; a <= 6; ++a)
      for (int b = a + 1; b <= 6; ++b)
        for (int c = b + 1; c <= 6; ++c) {
          double e = 0;
          for (int i = 0; i < 8; ++i) {
            const int d = std::min({std::abs(xs[i] - a), std::abs(xs[i] - b), std::abs(xs[i] - c)});
            e += static_cast<double>(ws[i]) * d * d;
          }
          best = std::min(best, e);
        }
    CHECK(nuq_optimal(h, 3).error == best);
  }

  TEST_CASE("NUQ on real weights: optimal <= Lloyd for every seed; remap leaves k codes and the reported error") {
    auto q = gaussian_codes(1 << 16, 5u);
    const auto h = int8_level_histogram(q.data(), q.size());
    for (int k : {16, 32}) {
      CAPTURE(k);
      const auto opt = nuq_optimal(h, k);
      for (std::uint64_t seed = 0; seed < 8; ++seed) {
        const auto ll = nuq_lloyd(h, k, seed);
        CHECK(ll.centers.size() == static_cast<std::size_t>(k));
        CHECK(ll.iterations >= 1);
        CHECK(opt.error <= ll.error);
      }
      CHECK(nuq_lloyd(h, k, 42).centers == nuq_lloyd(h, k, 42).centers);  // seeded: reproducible
      auto r = q;
      nuq_remap(r.data(), r.size(), opt);
      CHECK(std::set<std::int8_t>(r.begin(), r.end()).size() <= static_cast<std::size_t>(k));
      double e = 0;
      for (std::size_t i = 0; i < q.size(); ++i) e += (q[i] - r[i]) * double(q[i] - r[i]);
      CHECK(e == opt.error);
      for (auto c : opt.centers) CHECK((c >= -128 && c <= 127));
    }
  }

  TEST_CASE("NUQ with fewer levels than centres is lossless and pads to k distinct centres") {
    level_histogram h;
    h.count[128 + 0] = 5;
    h.count[128 + 3] = 2;
    h.count[128 - 9] = 1;
    for (auto r : {nuq_optimal(h, 16), nuq_lloyd(h, 16, 1)}) {
      CHECK(r.error == 0.0);
      CHECK(r.centers.size() == 16);
      CHECK(std::set<int>(r.centers.begin(), r.centers.end()).size() == 16);
      CHECK(r.distinct_levels == 3);
    }
  }

  TEST_CASE("NUQ bad input") {
    level_histogram empty;
    CHECK_THROWS_WITH_AS(nuq_optimal(empty, 16), doctest::Contains("empty"), amctq::error);
    level_histogram h;
    h.count[10] = 1;
    CHECK_THROWS_WITH_AS(nuq_optimal(h, 0), doctest::Contains("num_steps"), amctq::error);
    CHECK_THROWS_WITH_AS(nuq_lloyd(h, 300), doctest::Contains("num_steps"), amctq::error);
    CHECK_THROWS_AS(int8_level_histogram(nullptr, 3), amctq::error);
  }
}

}  // namespace test_weight_nuq
