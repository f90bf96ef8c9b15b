// The result every calibration method produces: a clipping range per tensor or channel, turned
// into quant_params by the preset's range formula (quant_params.hpp).
#ifndef AMCTQ_ALGORITHMS_CALIB_RANGE_HPP
#define AMCTQ_ALGORITHMS_CALIB_RANGE_HPP

#include <algorithm>
#include <cmath>

#include "amctq/quant_params.hpp"

namespace amctq {

struct calib_range {
  float min = 0.0f;
  float max = 0.0f;
};

namespace detail {

/// Scale and zero point of range r, or of the all-zero range when r is degenerate.
inline scale_zero params_of(calib_range r, const quant_spec& spec, preset how, const char* where) {
  return scale_zero_from_range(r.min, r.max, spec, integer_range(spec), how, where, -1);
}

/// (min(r.min, 0), max(r.max, 0)): every preset's grid contains zero.
inline calib_range with_zero(calib_range r) {
  return {std::fmin(r.min, 0.0f), std::fmax(r.max, 0.0f)};
}

}  // namespace detail
}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_CALIB_RANGE_HPP
