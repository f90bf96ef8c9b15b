// Test data that stresses quantizers: exact .5 ties of the grid, their float neighbours,
// subnormals, signed zeros, huge values, infinities and NaN, mixed with normal noise.
#ifndef AMCTQ_TESTS_SUPPORT_TEST_DATA_HPP
#define AMCTQ_TESTS_SUPPORT_TEST_DATA_HPP

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace amctq_test {

inline std::vector<float> awkward_values(std::size_t n, float scale, unsigned seed, bool with_nonfinite = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 60.0f * scale);
  std::uniform_int_distribution<int> pick(0, 11), level(-140, 140);
  std::vector<float> v(n);
  for (auto& x : v) {
    const float tie = (static_cast<float>(level(rng)) + 0.5f) * scale;
    switch (pick(rng)) {
      case 0: x = tie; break;
      case 1: x = std::nextafter(tie, 1e30f); break;
      case 2: x = std::nextafter(tie, -1e30f); break;
      case 3: x = std::numeric_limits<float>::denorm_min() * static_cast<float>(level(rng)); break;
      case 4: x = (level(rng) & 1) ? 0.0f : -0.0f; break;
      case 5: x = (level(rng) & 1) ? 1e30f : -std::numeric_limits<float>::max(); break;
      case 6:
        if (with_nonfinite) {
          const int k = level(rng) & 3;
          x = k == 0 ? std::numeric_limits<float>::quiet_NaN()
                     : (k == 1 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity());
          break;
        }
        [[fallthrough]];
      default: x = normal(rng);
    }
  }
  return v;
}

inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

inline std::size_t count_bit_mismatches(const std::vector<float>& a, const std::vector<float>& b) {
  std::size_t bad = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) bad += !same_bits(a[i], b[i]);
  return bad;
}

}  // namespace amctq_test

#endif
