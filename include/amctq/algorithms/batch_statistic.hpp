// Vitis AI's calib_statistic_method: how a per-batch statistic (e.g. the power-of-two
// position of pot_diffs.hpp) is turned into one value across batches. The result depends only
// on the multiset of per-batch values, so observers merge by concatenation; it does depend on
// how the data was cut into batches, as in Vitis.
#ifndef AMCTQ_ALGORITHMS_BATCH_STATISTIC_HPP
#define AMCTQ_ALGORITHMS_BATCH_STATISTIC_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "amctq/error.hpp"

namespace amctq {

enum class batch_statistic { modal, max, mean, median };

inline const char* to_string(batch_statistic s) noexcept {
  switch (s) {
    case batch_statistic::modal: return "modal";
    case batch_statistic::max: return "max";
    case batch_statistic::mean: return "mean";
    case batch_statistic::median: return "median";
  }
  return "?";
}

/// modal: the most frequent value, the smallest among equally frequent ones; median: the lower
/// middle value for an even count (a value that occurred); mean: arithmetic mean.
inline double aggregate(std::vector<double> values, batch_statistic how) {
  AMCTQ_CHECK(!values.empty(), errc::invalid_argument, "aggregate", "no per-batch values to aggregate");
  std::sort(values.begin(), values.end());
  switch (how) {
    case batch_statistic::max: return values.back();
    case batch_statistic::median: return values[(values.size() - 1) / 2];
    case batch_statistic::mean: {
      double s = 0.0;
      for (double v : values) s += v;  // sorted order: the sum does not depend on arrival order
      return s / static_cast<double>(values.size());
    }
    case batch_statistic::modal: break;
  }
  double best = values.front();
  std::size_t best_n = 0;
  for (std::size_t i = 0; i < values.size();) {
    std::size_t j = i;
    while (j < values.size() && values[j] == values[i]) ++j;
    if (j - i > best_n) {
      best_n = j - i;
      best = values[i];
    }
    i = j;
  }
  return best;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_BATCH_STATISTIC_HPP
