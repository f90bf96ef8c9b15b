// Selection of the k-th element of a float array without data-dependent branches in the hot
// loop. std::nth_element mispredicts about every other comparison on random floats, which is
// what extreme_values' trims select on.
#ifndef AMCTQ_ALGORITHMS_DETAIL_SELECT_HPP
#define AMCTQ_ALGORITHMS_DETAIL_SELECT_HPP

#include <algorithm>
#include <cstddef>
#include <vector>

namespace amctq::detail {

/// Reorders v so that v[k] is the element a full sort by `before` would put there, with no
/// element after it ordered before it and none before it ordered after it (std::nth_element's
/// contract). Quickselect with a three-way partition into a scratch copy: an element's side decides
/// which write pointer moves, not which branch runs. Elements equivalent to the pivot are
/// written back as the pivot, so for floats the result is a permutation up to the sign of
/// zero (+0 and -0 are equivalent); v must hold no NaN. Constant data ends in one step. A
/// range that fails to shrink for too long (a hostile order) goes to std::nth_element.
template <class Before>
void select_nth(std::vector<float>& v, std::size_t k, Before before) {
  std::size_t lo = 0, hi = v.size();
  if (k >= hi) return;
  std::vector<float> scratch(v.size());
  int budget = 64;
  while (hi - lo > 32 && budget-- > 0) {
    const std::size_t n = hi - lo;
    float* a = v.data() + lo;
    float* s = scratch.data();
    // Median of three spread samples: the tails arrive in stream order, not sorted.
    float x = a[n / 4], y = a[n / 2], z = a[3 * n / 4];
    if (before(y, x)) std::swap(x, y);
    if (before(z, y)) std::swap(y, z);
    if (before(y, x)) std::swap(x, y);
    const float p = y;
    std::size_t front = 0, back = n;  // scratch[0, front): before p; scratch[back, n): after p
    for (std::size_t i = 0; i < n; ++i) {
      const float e = a[i];
      s[front] = e;
      s[back - 1] = e;
      front += before(e, p) ? 1u : 0u;
      back -= before(p, e) ? 1u : 0u;
    }
    const std::size_t equal = back - front;
    std::copy(s, s + front, a);
    std::fill(a + front, a + back, p);
    std::copy(s + back, s + n, a + back);
    const std::size_t at = k - lo;
    if (at < front) {
      hi = lo + front;
    } else if (at < front + equal) {
      return;
    } else {
      lo += back;
    }
  }
  std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(lo), v.begin() + static_cast<std::ptrdiff_t>(k),
                   v.begin() + static_cast<std::ptrdiff_t>(hi), before);
}

}  // namespace amctq::detail

#endif  // AMCTQ_ALGORITHMS_DETAIL_SELECT_HPP
