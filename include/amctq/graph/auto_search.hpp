// The search of accuracy-driven automatic quantization (issue 22; docs/auto_search.md), apart
// from any model: layers ranked by a sensitivity, each layer given one of a few precision levels
// (0 the most compressed, the last the safest), and a binary search over how many of the most
// sensitive layers take the safest level, then over how many of those can step down one level.
// What a level means (float / int8, NUQ 16 / NUQ 32 / uniform, W4A4 / W4A8 / W8A8), how a
// candidate is quantized and measured, is the caller's (io/auto_quantize.hpp): this header only
// orders the candidates, caches their metrics by key and keeps the budget, so its behaviour is
// testable with a made-up metric.
#ifndef AMCTQ_GRAPH_AUTO_SEARCH_HPP
#define AMCTQ_GRAPH_AUTO_SEARCH_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "amctq/error.hpp"

namespace amctq::graph {

/// Cosine similarity of two equally long float vectors, accumulated in double. Both all-zero: 1
/// (the same output); one all-zero: 0 (AMCT's convention).
inline double cosine_similarity(const float* a, const float* b, std::size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0 && bb == 0) return 1.0;
  if (aa == 0 || bb == 0) return 0.0;
  return ab / (std::sqrt(aa) * std::sqrt(bb));
}

/// Layer indices from the most sensitive (lowest similarity) to the least; equal similarities
/// keep layer order, so the ranking is deterministic.
inline std::vector<std::size_t> sensitivity_order(const std::vector<double>& similarity) {
  std::vector<std::size_t> order(similarity.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return similarity[a] < similarity[b]; });
  return order;
}

/// One precision level per searched layer, by layer index; 0 is the most compressed.
using level_assignment = std::vector<int>;

/// What the search asks of its caller.
struct auto_search_problem {
  std::vector<std::size_t> order;  ///< layer indices, most sensitive first (sensitivity_order)
  int levels = 2;                  ///< 2 or 3; levels - 1 is the safest
  /// The cache key of a candidate (its config as text): two assignments with the same key are
  /// measured once.
  std::function<std::string(const level_assignment&)> key;
  std::function<double(const level_assignment&)> measure;  ///< one evaluation
  std::function<bool(double)> satisfied;                    ///< the metric meets the constraint
  int max_evals = 0;  ///< measurements allowed (cache hits are free); 0: no limit
};

/// One step of the search, in the order the search took it.
struct auto_search_step {
  std::string phase;  ///< "all-compressed", "safest", "step-down"
  level_assignment levels;
  double metric = 0;
  bool satisfied = false;
  bool cached = false;  ///< the metric came from the cache
};

struct auto_search_result {
  bool found = false;  ///< some candidate satisfied
  level_assignment best;
  double best_metric = 0;
  std::vector<auto_search_step> steps;
  int evaluations = 0;           ///< measurements made (cache hits not counted)
  bool budget_exhausted = false; ///< max_evals stopped the search early
};

namespace detail {

// The candidate of the search: the first `safe` layers of `order` at the safest level, of which
// the last `down` one level lower; the rest at level 0.
inline level_assignment tiered(const auto_search_problem& p, std::size_t safe, std::size_t down) {
  level_assignment a(p.order.size(), 0);
  for (std::size_t r = 0; r < safe && r < p.order.size(); ++r)
    a[p.order[r]] = r + down >= safe ? p.levels - 2 : p.levels - 1;
  return a;
}

}  // namespace detail

/// Binary search (AMCT's BinarySearchStrategy, generalised to a middle level):
/// 1. every layer at level 0; done if it satisfies;
/// 2. the smallest k in [1, n] for which the k most sensitive layers at the safest level (the rest
///    at 0) satisfies; none: not found;
/// 3. with three levels, the largest j in [1, k] for which the j least sensitive of those k step
///    down to the middle level and it still satisfies.
/// Each phase assumes the metric is monotone in the precision given; the best candidate is the
/// last one that satisfied (every later probe is more compressed than every earlier success).
/// Candidates are probed in a fixed order, so the same metric gives the same steps.
inline auto_search_result auto_search(const auto_search_problem& p) {
  AMCTQ_CHECK(p.levels == 2 || p.levels == 3, errc::invalid_argument, "auto_search", "levels must be 2 or 3, got ",
              p.levels);
  AMCTQ_CHECK(p.key && p.measure && p.satisfied, errc::invalid_argument, "auto_search",
              "key, measure and satisfied are required");
  auto_search_result r;
  std::map<std::string, double> cache;
  // Probes one candidate; false when the budget is spent before it could be measured.
  auto probe = [&](const char* phase, const level_assignment& a, bool& ok) {
    auto_search_step s;
    s.phase = phase;
    s.levels = a;
    const std::string k = p.key(a);
    const auto hit = cache.find(k);
    if (hit != cache.end()) {
      s.metric = hit->second;
      s.cached = true;
    } else {
      if (p.max_evals > 0 && r.evaluations >= p.max_evals) {
        r.budget_exhausted = true;
        return false;
      }
      s.metric = p.measure(a);
      ++r.evaluations;
      cache.emplace(k, s.metric);
    }
    s.satisfied = p.satisfied(s.metric);
    ok = s.satisfied;
    if (ok) {
      r.found = true;
      r.best = a;
      r.best_metric = s.metric;
    }
    r.steps.push_back(std::move(s));
    return true;
  };
  const std::size_t n = p.order.size();
  bool ok = false;
  if (!probe("all-compressed", detail::tiered(p, 0, 0), ok)) return r;
  if (ok || n == 0) return r;
  std::size_t lo = 1, hi = n, k = 0;
  while (lo <= hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (!probe("safest", detail::tiered(p, mid, 0), ok)) return r;
    if (ok) {
      k = mid;
      hi = mid - 1;
    } else {
      lo = mid + 1;
    }
  }
  if (k == 0 || p.levels < 3) return r;
  lo = 1;
  hi = k;
  while (lo <= hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (!probe("step-down", detail::tiered(p, k, mid), ok)) return r;
    if (ok) lo = mid + 1;
    else hi = mid - 1;
  }
  return r;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_AUTO_SEARCH_HPP
