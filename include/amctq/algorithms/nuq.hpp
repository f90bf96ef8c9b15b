// NUQ (AMCT nuq_quantize; docs/algorithms/weights.md, "NUQ"): keep only k of the 256 int8 levels of
// a uniformly quantized weight (k = num_steps, 16 or 32 in AMCT), chosen to minimise the
// count-weighted squared error Σ count(v) · (v − centre(v))², then remap every code to its nearest
// centre.
//
// Two solvers over the level histogram (at most 256 weighted points):
// * nuq_optimal — the exact optimum with integer centres. In 1-D, nearest-centre clusters are
//   runs of consecutive levels, so the optimum is a partition of the sorted levels into k runs
//   with cost(run) = min over integer c of Σ w (x − c)², attained at c = round(weighted mean).
//   That cost obeys the quadrangle inequality (a run's best centre lies inside the run, so the
//   usual exchange argument holds for integer centres too), hence the argmin of each DP row is
//   monotone and divide-and-conquer gives O(k · L · log L) instead of O(k · L²).
// * nuq_lloyd — weighted Lloyd iterations from k-means++ seeding (a seed parameter makes it
//   reproducible), as AMCT's (unpublished) kernel is inferred to do; kept for parity studies.
#ifndef AMCTQ_ALGORITHMS_NUQ_HPP
#define AMCTQ_ALGORITHMS_NUQ_HPP

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "amctq/error.hpp"

namespace amctq {

/// Occurrence count of each int8 level; count[v + 128] for level v.
struct level_histogram {
  std::array<std::uint64_t, 256> count{};

  std::uint64_t total() const noexcept {
    std::uint64_t t = 0;
    for (auto c : count) t += c;
    return t;
  }
};

/// Histogram of n int8 codes.
inline level_histogram int8_level_histogram(const std::int8_t* codes, std::size_t n) {
  AMCTQ_CHECK(codes != nullptr || n == 0, errc::invalid_argument, "int8_level_histogram", "codes is null");
  // Four tables break the store-to-load dependency when neighbouring codes repeat.
  std::array<std::array<std::uint32_t, 256>, 4> t{};
  level_histogram h;
  std::size_t i = 0;
  while (i < n) {
    const std::size_t end = std::min(n, i + (std::size_t{1} << 30));  // keep uint32 counts exact
    for (; i + 4 <= end; i += 4) {
      ++t[0][static_cast<std::uint8_t>(codes[i] + 128)];
      ++t[1][static_cast<std::uint8_t>(codes[i + 1] + 128)];
      ++t[2][static_cast<std::uint8_t>(codes[i + 2] + 128)];
      ++t[3][static_cast<std::uint8_t>(codes[i + 3] + 128)];
    }
    for (; i < end; ++i) ++t[0][static_cast<std::uint8_t>(codes[i] + 128)];
    for (std::size_t v = 0; v < 256; ++v) {
      h.count[v] += std::uint64_t{t[0][v]} + t[1][v] + t[2][v] + t[3][v];
      t[0][v] = t[1][v] = t[2][v] = t[3][v] = 0;
    }
  }
  return h;
}

struct nuq_result {
  std::vector<int> centers;     ///< k distinct sorted levels in [-128, 127]
  std::array<std::int8_t, 256> map{};  ///< map[v + 128]: the centre level v is remapped to
  double error = 0.0;           ///< Σ count(v) · (v − map(v))², in squared code units
  std::size_t distinct_levels = 0;
  int iterations = 0;           ///< Lloyd iterations run (0 for nuq_optimal)
};

namespace detail {

inline void check_nuq_args(const level_histogram& h, int k, const char* where) {
  AMCTQ_CHECK(k >= 1 && k <= 256, errc::invalid_argument, where, "num_steps must be in [1, 256] (AMCT: 16 or 32), got ",
              k);
  AMCTQ_CHECK(h.total() > 0, errc::invalid_argument, where, "the level histogram is empty");
}

// Fills to k distinct centres with unused levels nearest 0 (AMCT records exactly num_steps
// values); builds the nearest-centre map (ties to the lower centre) and its error.
inline void finish_nuq(const level_histogram& h, int k, nuq_result& r) {
  std::array<bool, 256> used{};
  for (int c : r.centers) used[static_cast<std::size_t>(c + 128)] = true;
  for (int d = 0; static_cast<int>(r.centers.size()) < k && d <= 128; ++d)
    for (int v : {-d, d})
      if (v >= -128 && v <= 127 && !used[static_cast<std::size_t>(v + 128)] && static_cast<int>(r.centers.size()) < k) {
        used[static_cast<std::size_t>(v + 128)] = true;
        r.centers.push_back(v);
      }
  std::sort(r.centers.begin(), r.centers.end());
  std::size_t j = 0;
  r.error = 0.0;
  for (int v = -128; v <= 127; ++v) {
    while (j + 1 < r.centers.size() && (r.centers[j + 1] - v) < (v - r.centers[j])) ++j;
    r.map[static_cast<std::size_t>(v + 128)] = static_cast<std::int8_t>(r.centers[j]);
    const double d = v - r.centers[j];
    r.error += static_cast<double>(h.count[static_cast<std::size_t>(v + 128)]) * d * d;
  }
  r.distinct_levels = 0;
  for (auto c : h.count) r.distinct_levels += c > 0;
}

// Levels present, with prefix sums of count, count·x, count·x² (exact in int64: at most
// 2^64 / 2^14 weights, far above any layer).
struct level_points {
  std::vector<int> x;
  std::vector<std::int64_t> w, s1, s2;  // prefix sums, size L + 1

  explicit level_points(const level_histogram& h) {
    w.push_back(0);
    s1.push_back(0);
    s2.push_back(0);
    for (int v = -128; v <= 127; ++v) {
      const auto c = static_cast<std::int64_t>(h.count[static_cast<std::size_t>(v + 128)]);
      if (c == 0) continue;
      x.push_back(v);
      w.push_back(w.back() + c);
      s1.push_back(s1.back() + c * v);
      s2.push_back(s2.back() + c * v * v);
    }
  }
  std::size_t size() const noexcept { return x.size(); }
  // Best integer centre and its cost for points [i, j).
  std::int64_t centre(std::size_t i, std::size_t j) const noexcept {
    // Round half up of S / W. Double division is exact enough: S / W is at least 1 / (2W)
    // away from any non-tie half point, far above the rounding error for W < 2^40, and a
    // true tie gives the same cost either way.
    const double W = static_cast<double>(w[j] - w[i]), S = static_cast<double>(s1[j] - s1[i]);
    return static_cast<std::int64_t>(std::floor(S / W + 0.5));
  }
  std::int64_t cost(std::size_t i, std::size_t j) const noexcept {
    const std::int64_t W = w[j] - w[i], S = s1[j] - s1[i], Q = s2[j] - s2[i];
    const std::int64_t c = centre(i, j);
    return Q - 2 * c * S + c * c * W;
  }
};

// With no more distinct levels than centres, each level is its own centre (zero error).
inline bool every_level_a_centre(const level_histogram& h, int k, const level_points& pts, nuq_result& r) {
  if (static_cast<std::size_t>(k) < pts.size()) return false;
  r.centers = pts.x;
  finish_nuq(h, k, r);
  return true;
}

}  // namespace detail

/// The exact minimum-error choice of k integer centres for the histogram.
/// @throws amctq::error for an empty histogram or k outside [1, 256].
inline nuq_result nuq_optimal(const level_histogram& h, int k) {
  detail::check_nuq_args(h, k, "nuq_optimal");
  const detail::level_points pts(h);
  const std::size_t L = pts.size(), K = std::min<std::size_t>(static_cast<std::size_t>(k), L);
  nuq_result r;
  if (detail::every_level_a_centre(h, k, pts, r)) return r;
  constexpr std::int64_t inf = std::numeric_limits<std::int64_t>::max() / 4;
  // prev[j]: best cost of the first j points in (layer) runs; arg[layer][j]: start of the last run.
  std::vector<std::int64_t> prev(L + 1, inf), cur(L + 1, inf);
  std::vector<std::vector<std::uint16_t>> arg(K + 1, std::vector<std::uint16_t>(L + 1, 0));
  for (std::size_t j = 1; j <= L; ++j) prev[j] = pts.cost(0, j);
  for (std::size_t layer = 2; layer <= K; ++layer) {
    std::fill(cur.begin(), cur.end(), inf);
    auto& a = arg[layer];
    // Solve j in [lo, hi] knowing the argmin lies in [olo, ohi]; the leftmost argmin is
    // monotone in j by the quadrangle inequality.
    struct frame { std::size_t lo, hi, olo, ohi; };
    std::vector<frame> stack{{layer, L, layer - 1, L - 1}};
    while (!stack.empty()) {
      const frame f = stack.back();
      stack.pop_back();
      if (f.lo > f.hi) continue;
      const std::size_t mid = (f.lo + f.hi) / 2;
      std::int64_t best = inf;
      std::size_t bi = f.olo;
      for (std::size_t i = f.olo; i <= std::min(f.ohi, mid - 1); ++i) {
        const std::int64_t v = prev[i] + pts.cost(i, mid);
        if (v < best) {
          best = v;
          bi = i;
        }
      }
      cur[mid] = best;
      a[mid] = static_cast<std::uint16_t>(bi);
      if (mid > f.lo) stack.push_back({f.lo, mid - 1, f.olo, bi});
      stack.push_back({mid + 1, f.hi, bi, f.ohi});
    }
    std::swap(prev, cur);
  }
  std::size_t j = L;
  for (std::size_t layer = K; layer >= 1; --layer) {
    const std::size_t i = layer == 1 ? 0 : arg[layer][j];
    r.centers.push_back(static_cast<int>(pts.centre(i, j)));
    j = i;
  }
  detail::finish_nuq(h, k, r);
  return r;
}

/// Weighted Lloyd (at most max_iter rounds) from k-means++ seeding drawn with `seed`; centres
/// are real during the iterations and rounded to levels at the end.
inline nuq_result nuq_lloyd(const level_histogram& h, int k, std::uint64_t seed = 0, int max_iter = 200) {
  detail::check_nuq_args(h, k, "nuq_lloyd");
  AMCTQ_CHECK(max_iter >= 0, errc::invalid_argument, "nuq_lloyd", "max_iter must be >= 0, got ", max_iter);
  const detail::level_points pts(h);
  const std::size_t L = pts.size(), K = std::min<std::size_t>(static_cast<std::size_t>(k), L);
  nuq_result r;
  if (detail::every_level_a_centre(h, k, pts, r)) return r;
  std::vector<double> cw(L);
  for (std::size_t i = 0; i < L; ++i) cw[i] = static_cast<double>(pts.w[i + 1] - pts.w[i]);
  // splitmix64: the same draws on every standard library, unlike std distributions.
  std::uint64_t state = seed;
  auto uniform = [&state]() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  };
  auto draw = [&](const std::vector<double>& weight) {
    double total = 0.0;
    for (double v : weight) total += v;
    double u = uniform() * total;
    for (std::size_t i = 0; i < weight.size(); ++i) {
      if (u < weight[i]) return i;
      u -= weight[i];
    }
    return weight.size() - 1;
  };
  std::vector<double> centre;
  std::vector<double> d2(L, std::numeric_limits<double>::infinity()), pick(L);
  centre.push_back(pts.x[draw(cw)]);
  while (centre.size() < K) {
    for (std::size_t i = 0; i < L; ++i) {
      const double d = pts.x[i] - centre.back();
      d2[i] = std::min(d2[i], d * d);
      pick[i] = cw[i] * d2[i];
    }
    centre.push_back(pts.x[draw(pick)]);  // never a chosen level: its weight is 0
  }
  std::vector<std::size_t> assign(L, 0);
  for (r.iterations = 0; r.iterations < max_iter;) {
    std::sort(centre.begin(), centre.end());
    bool changed = r.iterations == 0;
    std::size_t c = 0;
    for (std::size_t i = 0; i < L; ++i) {
      while (c + 1 < K && centre[c + 1] - pts.x[i] < pts.x[i] - centre[c]) ++c;
      changed |= assign[i] != c;
      assign[i] = c;
    }
    ++r.iterations;
    if (!changed) break;
    std::vector<double> sw(K, 0.0), sx(K, 0.0);
    for (std::size_t i = 0; i < L; ++i) {
      sw[assign[i]] += cw[i];
      sx[assign[i]] += cw[i] * pts.x[i];
    }
    for (std::size_t q = 0; q < K; ++q)
      if (sw[q] > 0.0) centre[q] = sx[q] / sw[q];  // an emptied cluster keeps its centre
  }
  for (double c : centre) r.centers.push_back(static_cast<int>(std::lround(std::fmin(std::fmax(c, -128.0), 127.0))));
  std::sort(r.centers.begin(), r.centers.end());
  r.centers.erase(std::unique(r.centers.begin(), r.centers.end()), r.centers.end());
  detail::finish_nuq(h, k, r);
  return r;
}

/// Rewrites each code to its centre (r.map).
inline void nuq_remap(std::int8_t* codes, std::size_t n, const nuq_result& r) {
  AMCTQ_CHECK(codes != nullptr || n == 0, errc::invalid_argument, "nuq_remap", "codes is null");
  for (std::size_t i = 0; i < n; ++i) codes[i] = r.map[static_cast<std::uint8_t>(codes[i] + 128)];
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_NUQ_HPP
