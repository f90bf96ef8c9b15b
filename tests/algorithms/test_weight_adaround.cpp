// AdaRound's elementwise parts (algorithms/adaround.hpp) against their definitions: the rectified
// sigmoid's range and derivative (numerically), v's start value as h's inverse, the beta
// schedule's ends, the regulariser's gradient (numerically), Adam on a quadratic, the codes.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "amctq/algorithms/adaround.hpp"

namespace test_weight_adaround {

using namespace amctq;

TEST_CASE("adaround: h is the rectified sigmoid, dh its derivative, initial_v its inverse on (0, 1)") {
  for (float v = -12.0f; v <= 12.0f; v += 0.37f) {
    CAPTURE(v);
    const float h = adaround::h(v);
    CHECK(h >= 0.0f);
    CHECK(h <= 1.0f);
    const float eps = 1e-3f;
    const float numeric = (adaround::h(v + eps) - adaround::h(v - eps)) / (2 * eps);
    if (h > 0.01f && h < 0.99f) CHECK(adaround::dh(v) == doctest::Approx(numeric).epsilon(0.01));
  }
  CHECK(adaround::h(-20.0f) == 0.0f);  // the stretch makes hard 0 and 1 reachable
  CHECK(adaround::h(20.0f) == 1.0f);
  CHECK(adaround::dh(20.0f) == 0.0f);
  for (float f : {0.01f, 0.2f, 0.5f, 0.73f, 0.99f}) CHECK(adaround::h(adaround::initial_v(f)) == doctest::Approx(f).epsilon(1e-4));
}

TEST_CASE("adaround: beta is 0 in the warm start, beta_start after it, beta_end at the last step") {
  adaround_options o;
  o.warm_start = 0.2f;
  const int n = 1000;
  CHECK(adaround::beta_at(o, 0, n) == 0.0f);
  CHECK(adaround::beta_at(o, 199, n) == 0.0f);
  CHECK(adaround::beta_at(o, 200, n) == doctest::Approx(o.beta_start));
  CHECK(adaround::beta_at(o, n - 1, n) == doctest::Approx(o.beta_end));
  for (int t = 201; t < n; ++t) CHECK(adaround::beta_at(o, t, n) <= adaround::beta_at(o, t - 1, n));
}

TEST_CASE("adaround: the regulariser's gradient matches its value's numeric derivative and pushes h to 0 or 1") {
  for (float beta : {2.0f, 8.0f, 20.0f})
    for (float v = -2.5f; v <= 2.5f; v += 0.31f) {
      CAPTURE(beta);
      CAPTURE(v);
      const float eps = 1e-3f;
      const float lo = v - eps, hi = v + eps;
      const double numeric =
          0.01 * (adaround::regulariser(&hi, 1, beta) - adaround::regulariser(&lo, 1, beta)) / (2.0 * eps);
      CHECK(adaround::regulariser_grad(v, beta, 0.01f) == doctest::Approx(numeric).epsilon(0.02).scale(1e-6));
      // Descent moves h away from 1/2: v > 0 (h > 1/2) has a negative gradient.
      if (adaround::h(v) > 0.51f && adaround::dh(v) > 0.0f) CHECK(adaround::regulariser_grad(v, beta, 0.01f) < 0.0f);
    }
  CHECK(adaround::regulariser_grad(1.0f, 0.0f, 0.01f) == 0.0f);  // no regulariser in the warm start
}

TEST_CASE("adaround: Adam minimises a quadratic, and codes are floor or floor + 1, clamped") {
  std::vector<float> p{3.0f, -2.0f}, m(2, 0.0f), v2(2, 0.0f), g(2);
  adaround::adam_state st{m.data(), v2.data(), 0};
  for (int i = 0; i < 3000; ++i) {
    for (int k = 0; k < 2; ++k) g[k] = 2.0f * (p[k] - 0.5f);
    adaround::adam_step(p.data(), g.data(), 2, st, 0.01f);
  }
  CHECK(p[0] == doctest::Approx(0.5f).epsilon(0.01));
  CHECK(p[1] == doctest::Approx(0.5f).epsilon(0.01));
  CHECK(st.step == 3000);

  CHECK(adaround::code(0.37f, 0.1f, 10.0f, -8, 7) == 4);   // floor 3, rounded up
  CHECK(adaround::code(0.37f, 0.1f, -10.0f, -8, 7) == 3);  // rounded down
  CHECK(adaround::code(-0.37f, 0.1f, 10.0f, -8, 7) == -3);
  CHECK(adaround::code(0.75f, 0.1f, 10.0f, -8, 7) == 7);   // floor 7 + 1 clamps to qmax
  CHECK(adaround::code(-0.95f, 0.1f, -10.0f, -8, 7) == -8);
  bool inside = true;
  CHECK(adaround::soft_weight(0.75f, 0.1f, 10.0f, -8, 7, inside) == doctest::Approx(0.7f));
  CHECK_FALSE(inside);
  CHECK(adaround::soft_weight(0.37f, 0.1f, 0.0f, -8, 7, inside) == doctest::Approx(0.35f));
  CHECK(inside);
}

}  // namespace test_weight_adaround
