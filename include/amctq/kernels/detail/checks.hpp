// Argument checks shared by the tensor-level entry points of every kernel family.
#ifndef AMCTQ_KERNELS_DETAIL_CHECKS_HPP
#define AMCTQ_KERNELS_DETAIL_CHECKS_HPP

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq::kernels::detail {

/// Validates p and that its channel count matches the view's extent along p.axis.
template <class T, std::size_t R>
void check_params_for(const quant_params& p, const tensor_view<T, R>& v, const char* where) {
  validate(p, where);
  if (!p.is_per_channel()) return;
  AMCTQ_CHECK(p.axis < static_cast<int>(R), errc::invalid_argument, where, "axis ", p.axis,
              " is out of range for a tensor of rank ", R);
  AMCTQ_CHECK(static_cast<std::ptrdiff_t>(p.channels()) == v.extent(static_cast<std::size_t>(p.axis)),
              errc::shape_mismatch, where, "params have ", p.channels(), " channels but axis ", p.axis,
              " has extent ", v.extent(static_cast<std::size_t>(p.axis)));
}

/// Throws unless [qmin, qmax] fits the storage type Q (or [lo, hi] for packed types).
inline void check_storage_range(const quant_params& p, std::int64_t lo, std::int64_t hi, const char* type_name,
                                const char* where) {
  AMCTQ_CHECK(p.qmin >= lo && p.qmax <= hi, errc::invalid_argument, where, "[qmin, qmax] = [", p.qmin, ", ",
              p.qmax, "] does not fit ", type_name, " [", lo, ", ", hi, "]");
}

template <class Q>
void check_storage_range(const quant_params& p, const char* type_name, const char* where) {
  check_storage_range(p, std::numeric_limits<Q>::min(), std::numeric_limits<Q>::max(), type_name, where);
}

/// Scales and zero points as float arrays, the form the kernels read.
struct float_params {
  std::vector<float> scale;
  std::vector<float> zero_point;
  float lo;
  float hi;
};

inline float_params to_float_params(const quant_params& p) {
  float_params f{p.scale, std::vector<float>(p.zero_point.begin(), p.zero_point.end()),
                 static_cast<float>(p.qmin), static_cast<float>(p.qmax)};
  return f;
}

}  // namespace amctq::kernels::detail

#endif  // AMCTQ_KERNELS_DETAIL_CHECKS_HPP
