// amct's HFMG search (bounded: windows whose O(1) lower bound exceeds a score already found are
// not scored) against the straightforward search written here from the reference text: score
// every window of the greedy trimming, first argmin wins. The choice must be the same window, bit
// for bit, on random, skewed, sparse and constant histograms at 2048 and 4096 bins.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "amctq/algorithms/observer.hpp"

namespace test_hfmg_search {

using namespace amctq;

namespace {

// The greedy trimming of AMCT's HfmgGetSearchRange, every window scored in turn.
std::pair<std::size_t, std::size_t> reference_search(const binned_histogram& h, const detail::window_scorer& score,
                                                     std::vector<std::pair<std::size_t, std::size_t>>* windows = nullptr) {
  const std::size_t n = h.bins();
  const double step = std::fmax(std::ceil(h.total / 100000.0), 1.0);
  const std::size_t min_bins = (n + 3) / 4;
  std::size_t left = 0, right = n - 1;
  double best = score(left, right);
  std::pair<std::size_t, std::size_t> pick{left, right};
  if (windows) windows->push_back(pick);
  while (right - left > min_bins) {
    std::size_t tl = left;
    double acc = 0.0;
    while (tl < right && acc < step) acc += h.counts[tl++];
    std::size_t tr = right;
    acc = 0.0;
    while (tr > left && acc < step) acc += h.counts[tr--];
    if (right - tr >= tl - left) right = tr;
    else left = tl;
    if (right <= left) break;
    if (windows) windows->emplace_back(left, right);
    const double v = score(left, right);
    if (v < best) {
      best = v;
      pick = {left, right};
    }
  }
  return pick;
}

binned_histogram make_histogram(const std::vector<double>& counts, double lo, double width) {
  binned_histogram h;
  h.lo = lo;
  h.width = width;
  h.counts = counts;
  for (double c : counts) h.total += c;
  h.min = static_cast<float>(lo);
  h.max = static_cast<float>(lo + width * static_cast<double>(counts.size()));
  return h;
}

std::vector<std::pair<std::string, std::vector<double>>> histograms(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::pair<std::string, std::vector<double>>> out;
  std::vector<double> c(n);
  std::uniform_int_distribution<int> u(0, 999);
  for (auto& x : c) x = u(rng);
  out.emplace_back("random", c);
  // Skewed: a noisy exponential decay (post-ReLU-like) and a lone far outlier.
  std::poisson_distribution<int> noise(20);
  for (std::size_t k = 0; k < n; ++k) c[k] = std::floor(2e5 * std::exp(-static_cast<double>(k) / (n / 40.0))) + noise(rng);
  c[n - 3] += 5;
  out.emplace_back("skewed", c);
  // Gaussian with fractional counts (as a resampled histogram has), the data in the middle half.
  std::normal_distribution<double> g(0.0, 1.0);
  for (std::size_t k = 0; k < n; ++k) {
    const double z = (static_cast<double>(k) - n / 2.0) / (n / 10.0);
    c[k] = 3e4 * std::exp(-0.5 * z * z) * (1.0 + 0.05 * g(rng));
    if (c[k] < 0.3) c[k] = 0.0;
  }
  out.emplace_back("gaussian", c);
  std::fill(c.begin(), c.end(), 0.0);
  std::uniform_int_distribution<std::size_t> at(0, n - 1);
  for (int i = 0; i < 20; ++i) c[at(rng)] += 1 + u(rng);
  c[0] += 1;
  c[n - 1] += 1;
  out.emplace_back("sparse", c);
  std::fill(c.begin(), c.end(), 37.0);
  out.emplace_back("constant", c);
  std::fill(c.begin(), c.end(), 0.0);
  c[n / 3] = 1e6;
  out.emplace_back("single bin", c);
  return out;
}

}  // namespace

TEST_CASE("HFMG amct search: the bounded search picks the exhaustive search's window") {
  for (std::size_t n : {std::size_t{2048}, std::size_t{4096}}) {
    for (const auto& [name, counts] : histograms(n, static_cast<unsigned>(n))) {
      for (auto [lo, width] : {std::pair<double, double>{-3.7, 7.4 / static_cast<double>(n)}, {0.0, 1e-3}}) {
        const binned_histogram h = make_histogram(counts, lo, width);
        const histogram_moments m(h);
        for (int levels : {4, 7, 15, 16, 255, 256, 1024}) {
          CAPTURE(n);
          CAPTURE(name);
          CAPTURE(lo);
          CAPTURE(levels);
          const detail::window_scorer score{m, h, levels};
          std::vector<std::pair<std::size_t, std::size_t>> windows;
          const auto want = reference_search(h, score, &windows);
          std::size_t l = 0, r = 0;
          detail::amct_hfmg_search(h, score, l, r);
          CHECK(l == want.first);
          CHECK(r == want.second);
          // The same windows, and the bound never above the score it stands for.
          std::vector<std::size_t> ls, rs;
          detail::amct_hfmg_windows(h, ls, rs);
          REQUIRE(ls.size() == windows.size());
          const detail::window_bound bound(m, h, levels);
          std::size_t other = 0, above = 0;
          for (std::size_t i = 0; i < windows.size(); ++i) {
            other += ls[i] != windows[i].first || rs[i] != windows[i].second;
            above += bound(ls[i], rs[i]) > score(ls[i], rs[i]);
          }
          CHECK(other == 0);
          CHECK(above == 0);
        }
      }
    }
  }
}

TEST_CASE("HFMG amct: hfmg_range and its params equal the exhaustive search's, every grid") {
  for (std::size_t n : {std::size_t{2048}, std::size_t{4096}}) {
    for (const auto& [name, counts] : histograms(n, 7u + static_cast<unsigned>(n))) {
      const binned_histogram fine = make_histogram(counts, -1.3, 5.1 / static_cast<double>(n));
      hfmg_options o;
      o.bins = static_cast<int>(n);
      const binned_histogram h = resample(fine, fine.min, fine.max, n, false, false);
      const histogram_moments m(h);
      for (int bits : {2, 4, 8}) {
        for (int grid = 0; grid < 8; ++grid) {
          quant_spec spec;
          spec.bits = bits;
          spec.is_signed = grid & 1;
          spec.symmetric = grid & 2;
          spec.narrow_range = (grid & 4) && spec.is_signed;
          CAPTURE(n);
          CAPTURE(name);
          CAPTURE(bits);
          CAPTURE(grid);
          const qrange q = integer_range(spec);
          const detail::window_scorer score{m, h, static_cast<std::int64_t>(q.qmax) - q.qmin + 1};
          const auto [l, r] = reference_search(h, score);
          const calib_range want{static_cast<float>(h.edge(l)), static_cast<float>(h.edge(r + 1))};
          const calib_range got = hfmg_range(fine, spec, preset::amct, o);
          CHECK(std::memcmp(&got.min, &want.min, sizeof(float)) == 0);
          CHECK(std::memcmp(&got.max, &want.max, sizeof(float)) == 0);
          const quant_params pg = params_from_range(got.min, got.max, spec), pw = params_from_range(want.min, want.max, spec);
          CHECK(pg.scale == pw.scale);
          CHECK(pg.zero_point == pw.zero_point);
        }
      }
    }
  }
}

}  // namespace test_hfmg_search
