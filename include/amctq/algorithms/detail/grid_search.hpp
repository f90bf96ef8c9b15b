// One-dimensional minimisation on a coarse grid followed by a fine grid around the best coarse
// point: deterministic, derivative-free, and cheap enough for O(levels) objectives.
#ifndef AMCTQ_ALGORITHMS_DETAIL_GRID_SEARCH_HPP
#define AMCTQ_ALGORITHMS_DETAIL_GRID_SEARCH_HPP

#include <algorithm>
#include <limits>

namespace amctq::detail {

struct grid_minimum {
  double x;
  double value;
};

/// Minimises f over [lo, hi]: `coarse` + 1 evenly spaced points, then `fine` points spanning the
/// two coarse intervals around the best one. Ties go to the first (smallest) x.
template <class F>
grid_minimum grid_minimize(F&& f, double lo, double hi, int coarse, int fine) {
  grid_minimum best{hi, std::numeric_limits<double>::infinity()};
  if (!(hi > lo)) return {lo, f(lo)};
  const double step = (hi - lo) / coarse;
  for (int i = 0; i <= coarse; ++i) {
    const double x = i == coarse ? hi : lo + step * i;
    const double v = f(x);
    if (v < best.value) best = {x, v};
  }
  const double a = std::max(lo, best.x - step), b = std::min(hi, best.x + step);
  for (int i = 0; i <= fine; ++i) {
    const double x = a + (b - a) * i / fine;
    const double v = f(x);
    if (v < best.value) best = {x, v};
  }
  return best;
}

}  // namespace amctq::detail

#endif  // AMCTQ_ALGORITHMS_DETAIL_GRID_SEARCH_HPP
