// Moving-average min-max (ORT CalibMovingAverage, PyTorch MovingAverageMinMaxObserver): after
// the first batch, range <- range + c * (batch range - range). It depends on batch order by
// definition, so it is the one method whose observers refuse to merge. (Plain min-max, the
// exact range of the finite values, needs no header of its own: kernels/reduce.hpp's minmax.)
#ifndef AMCTQ_ALGORITHMS_MOVING_AVERAGE_HPP
#define AMCTQ_ALGORITHMS_MOVING_AVERAGE_HPP

#include <cstdint>

#include "amctq/algorithms/calib_range.hpp"
#include "amctq/error.hpp"

namespace amctq {

struct moving_average_options {
  double averaging_constant = 0.01;  ///< (0, 1]
};

inline void validate(const moving_average_options& o, const char* where = "moving_average_options") {
  AMCTQ_CHECK(o.averaging_constant > 0.0 && o.averaging_constant <= 1.0, errc::invalid_argument, where,
              "averaging_constant must be in (0, 1], got ", o.averaging_constant);
}

/// The moving-average state after one more batch whose finite values span `batch`.
/// `batches` counts the batches already folded in (0: the state is taken from the batch).
inline calib_range moving_average_update(calib_range state, std::uint64_t batches, calib_range batch, double c) {
  if (batches == 0) return batch;
  return {static_cast<float>(state.min + c * (static_cast<double>(batch.min) - state.min)),
          static_cast<float>(state.max + c * (static_cast<double>(batch.max) - state.max))};
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_MOVING_AVERAGE_HPP
