// Vitis AI's `diffs` power-of-two calibration (vai_q_pytorch diffs_fix_pos): the scale is
// 2^-fix_pos; the first position is the finest one whose grid still covers the batch's
// [min, max] against [-2^(b-1) - 0.5, 2^(b-1) - 0.5], then `scope` successively finer positions
// are tried and the one with the least squared error wins (first on ties). Vitis runs this per
// batch and aggregates the positions (batch_statistic.hpp); amctq scores the positions on the
// batch's exact histogram instead of re-quantizing the batch `scope` times.
#ifndef AMCTQ_ALGORITHMS_POT_DIFFS_HPP
#define AMCTQ_ALGORITHMS_POT_DIFFS_HPP

#include <cmath>
#include <cstdint>
#include <limits>

#include "amctq/algorithms/histogram_moments.hpp"
#include "amctq/quant_spec.hpp"

namespace amctq {

struct pot_options {
  int scope = 5;           ///< positions tried
  int max_fix_pos = 15;    ///< Vitis caps the position (all-zero data takes the cap)
};

inline void validate(const pot_options& o, const char* where = "pot_options") {
  AMCTQ_CHECK(o.scope >= 1 && o.scope <= 64, errc::invalid_argument, where, "scope must be in [1, 64], got ", o.scope);
  AMCTQ_CHECK(o.max_fix_pos >= -126 && o.max_fix_pos <= 126, errc::invalid_argument, where,
              "max_fix_pos must be in [-126, 126], got ", o.max_fix_pos);
}

/// The best fix position for the data summarised by h, on a signed b-bit grid.
inline int pot_fix_pos(const binned_histogram& h, const quant_spec& spec, const pot_options& o = {}) {
  validate(o);
  const qrange q = integer_range(spec);
  if (h.total == 0.0) return o.max_fix_pos;
  const double lb = q.qmin - 0.5, ub = q.qmax + 0.5;
  double step = 0.0;
  if (h.min < 0.0f) step = std::fmax(step, h.min / lb);
  if (h.max > 0.0f) step = std::fmax(step, h.max / ub);
  if (!(step > 0.0)) return o.max_fix_pos;
  const int first = static_cast<int>(std::floor(std::log2(1.0 / step)));
  const histogram_moments m(h);
  int best = first;
  double best_loss = std::numeric_limits<double>::infinity();
  for (int fp = first; fp < first + o.scope && fp <= o.max_fix_pos; ++fp) {
    const double s = std::ldexp(1.0, -fp);
    const double loss = m.loss(q.qmin * s, s, static_cast<std::int64_t>(q.qmax) - q.qmin + 1);
    if (loss < best_loss) {
      best_loss = loss;
      best = fp;
    }
  }
  return best < o.max_fix_pos ? best : o.max_fix_pos;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_POT_DIFFS_HPP
