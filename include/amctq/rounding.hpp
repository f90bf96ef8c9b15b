// Scalar rounding to an integer-valued float in each round_mode. This is the reference the
// SIMD kernels are tested against; half_even assumes the default FE_TONEAREST environment.
#ifndef AMCTQ_ROUNDING_HPP
#define AMCTQ_ROUNDING_HPP

#include <cmath>
#include <type_traits>

#include "amctq/quant_spec.hpp"

namespace amctq {

/// Rounds v to an integer-valued float. The fractional part v - trunc(v), and v - floor(v) for
/// v >= 0, is exact in binary floating point, so the tie test is exact too; floor(v + 0.5) would
/// not be (0.49999997f + 0.5f rounds up to 1). For v in (-1, 0), v - floor(v) = v + 1 is not
/// always exact (-0.49999997f + 1 rounds to 0.5), which only half_up tolerates; half_down is
/// therefore half_up of -v, negated (as 0 - x, so that it gives +0 like the other modes).
template <round_mode M>
inline float round_as(float v) noexcept {
  if constexpr (M == round_mode::half_even) {
    return std::nearbyint(v);
  } else if constexpr (M == round_mode::half_away) {
    const float t = std::trunc(v);
    return std::fabs(v - t) >= 0.5f ? t + std::copysign(1.0f, v) : t;
  } else {
    if constexpr (M == round_mode::half_up) {
      const float f = std::floor(v);
      return v - f >= 0.5f ? f + 1.0f : f;
    } else {
      return 0.0f - round_as<round_mode::half_up>(-v);
    }
  }
}

inline float round_as(float v, round_mode m) noexcept {
  switch (m) {
    case round_mode::half_even: return round_as<round_mode::half_even>(v);
    case round_mode::half_away: return round_as<round_mode::half_away>(v);
    case round_mode::half_up: return round_as<round_mode::half_up>(v);
    case round_mode::half_down: return round_as<round_mode::half_down>(v);
  }
  return v;
}

/// Calls f(std::integral_constant<round_mode, M>{}) for the runtime mode m, so loops are
/// instantiated once per mode instead of branching per element.
template <class F>
inline decltype(auto) with_round_mode(round_mode m, F&& f) {
  switch (m) {
    case round_mode::half_away: return f(std::integral_constant<round_mode, round_mode::half_away>{});
    case round_mode::half_up: return f(std::integral_constant<round_mode, round_mode::half_up>{});
    case round_mode::half_down: return f(std::integral_constant<round_mode, round_mode::half_down>{});
    case round_mode::half_even: break;
  }
  return f(std::integral_constant<round_mode, round_mode::half_even>{});
}

}  // namespace amctq

#endif  // AMCTQ_ROUNDING_HPP
