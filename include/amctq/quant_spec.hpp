// quant_spec: what a quantizer should produce (bit width, signedness, symmetry, granularity,
// scale format, rounding), and the integer range [qmin, qmax] that follows from it.
#ifndef AMCTQ_QUANT_SPEC_HPP
#define AMCTQ_QUANT_SPEC_HPP

#include <cstdint>
#include <string_view>

#include "amctq/error.hpp"

namespace amctq {

/// How x/s is rounded to an integer. half_even is ONNX QuantizeLinear's and the default;
/// half_away is C's round() (AMCT calibration, Vitis std_round).
enum class round_mode { half_even, half_away, half_up, half_down };

/// float32: any positive scale. power_of_two: scale = 2^k (Vitis fix-point, shift-only hardware).
enum class scale_type { float32, power_of_two };

/// Whose range -> (scale, zero_point) formula to follow; see docs/quantization.md.
enum class preset { amct, onnxruntime, pytorch };

inline constexpr int per_tensor = -1;

struct quant_spec {
  int bits = 8;                 ///< 2..16
  bool is_signed = true;        ///< int grid [-2^(b-1), 2^(b-1)-1] or uint grid [0, 2^b-1]
  bool symmetric = true;        ///< zero point at the grid's middle (0 for signed)
  bool narrow_range = false;    ///< drop the lowest code (int8: [-127, 127])
  int axis = per_tensor;        ///< channel axis for per-channel parameters
  scale_type scale_kind = scale_type::float32;
  round_mode rounding = round_mode::half_even;
};

struct qrange {
  std::int32_t qmin;
  std::int32_t qmax;
};

/// Throws invalid_argument naming the field if spec is not usable.
inline void validate(const quant_spec& spec, const char* where = "quant_spec") {
  AMCTQ_CHECK(spec.bits >= 2 && spec.bits <= 16, errc::invalid_argument, where,
              "bits must be in [2, 16], got ", spec.bits);
  AMCTQ_CHECK(spec.axis >= per_tensor, errc::invalid_argument, where,
              "axis must be -1 (per-tensor) or a channel axis >= 0, got ", spec.axis);
}

/// The integer grid of a spec: signed [-2^(b-1), 2^(b-1)-1] or unsigned [0, 2^b-1],
/// with the lowest code dropped when narrow_range is set.
inline qrange integer_range(const quant_spec& spec) {
  validate(spec, "integer_range");
  qrange r{};
  if (spec.is_signed) {
    r.qmin = -(std::int32_t{1} << (spec.bits - 1));
    r.qmax = (std::int32_t{1} << (spec.bits - 1)) - 1;
  } else {
    r.qmin = 0;
    r.qmax = (std::int32_t{1} << spec.bits) - 1;
  }
  if (spec.narrow_range) ++r.qmin;
  return r;
}

inline const char* to_string(round_mode m) noexcept {
  switch (m) {
    case round_mode::half_even: return "half_even";
    case round_mode::half_away: return "half_away";
    case round_mode::half_up: return "half_up";
    case round_mode::half_down: return "half_down";
  }
  return "?";
}

inline const char* to_string(preset p) noexcept {
  switch (p) {
    case preset::amct: return "amct";
    case preset::onnxruntime: return "onnxruntime";
    case preset::pytorch: return "pytorch";
  }
  return "?";
}

/// The preset named s ("amct", "onnxruntime", "pytorch"); false when s names none.
inline bool preset_from_string(std::string_view s, preset& out) noexcept {
  for (preset p : {preset::amct, preset::onnxruntime, preset::pytorch}) {
    if (s == to_string(p)) {
      out = p;
      return true;
    }
  }
  return false;
}

}  // namespace amctq

#endif  // AMCTQ_QUANT_SPEC_HPP
