#include <doctest/doctest.h>

#include <cmath>

#include "amctq/rounding.hpp"

namespace test_rounding {

using namespace amctq;

TEST_SUITE("vocabulary") {
  TEST_CASE("round_as: ties in every mode, and the values just beside them") {
    CHECK(round_as(2.5f, round_mode::half_even) == 2.0f);
    CHECK(round_as(-2.5f, round_mode::half_even) == -2.0f);
    CHECK(round_as(2.5f, round_mode::half_away) == 3.0f);
    CHECK(round_as(-2.5f, round_mode::half_away) == -3.0f);
    CHECK(round_as(-2.5f, round_mode::half_up) == -2.0f);
    CHECK(round_as(2.5f, round_mode::half_down) == 2.0f);
    CHECK(round_as(-2.5f, round_mode::half_down) == -3.0f);
    for (auto m : {round_mode::half_even, round_mode::half_away, round_mode::half_up, round_mode::half_down}) {
      CHECK(round_as(0.49999997f, m) == 0.0f);
      // -0.49999997f - floor(...) = -0.49999997f + 1 rounds to exactly 0.5 in float.
      CHECK(round_as(-0.49999997f, m) == 0.0f);
      CHECK(round_as(-0.5f, m) == (m == round_mode::half_even || m == round_mode::half_up ? 0.0f : -1.0f));
      CHECK(round_as(std::nextafter(2.5f, 3.0f), m) == 3.0f);
      CHECK(round_as(std::nextafter(2.5f, 2.0f), m) == 2.0f);
      CHECK(round_as(8388609.0f, m) == 8388609.0f);  // above 2^23 every float is an integer
      CHECK(std::isnan(round_as(NAN, m)));
    }
  }
}

}  // namespace test_rounding
