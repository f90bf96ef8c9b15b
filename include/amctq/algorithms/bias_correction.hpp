// Empirical bias correction (Vitis AI include_bias_corr, AIMET BiasCorrection, Nagel et al.
// 2019 §4.2): quantizing the weights shifts each output channel's mean by E[y_q − y]; adding
// E[y − y_q] (measured on calibration data) to the bias removes that shift.
// channel_mean_observer accumulates per-channel sums in double and merges exactly, so the
// means do not depend on batch split or order beyond double rounding.
#ifndef AMCTQ_ALGORITHMS_BIAS_CORRECTION_HPP
#define AMCTQ_ALGORITHMS_BIAS_CORRECTION_HPP

#include <array>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

class channel_mean_observer {
 public:
  explicit channel_mean_observer(std::size_t channels) : sum_(channels, 0.0), count_(channels, 0) {
    AMCTQ_CHECK(channels > 0, errc::invalid_argument, "channel_mean_observer", "channels must be > 0");
  }

  /// Adds a layer output with its channels along channel_axis (NaN/Inf is an error).
  template <class T, std::size_t R>
  void observe(const tensor_view<T, R>& y, int channel_axis) {
    static_assert(std::is_same_v<std::remove_const_t<T>, float>, "channel_mean_observer reads float outputs.");
    constexpr const char* where = "channel_mean_observer::observe";
    AMCTQ_CHECK(channel_axis >= 0 && channel_axis < static_cast<int>(R), errc::invalid_argument, where,
                "channel_axis ", channel_axis, " is out of range for rank ", R);
    const auto ax = static_cast<std::size_t>(channel_axis);
    AMCTQ_CHECK(y.extent(ax) == static_cast<std::ptrdiff_t>(sum_.size()), errc::shape_mismatch, where, "axis ",
                channel_axis, " has ", y.extent(ax), " channels but the observer has ", sum_.size());
    if (y.size() == 0) return;
    AMCTQ_CHECK(y.data_handle() != nullptr, errc::invalid_argument, where, "data is null");
    std::array<std::ptrdiff_t, R> idx{};
    // Innermost dim as a strided run; the channel is fixed along it unless it is the channel.
    const std::ptrdiff_t n = y.extent(R - 1), s = y.stride(R - 1);
    // Per-channel sums are small: keep them to restore when the batch is refused.
    const auto sum_before = sum_;
    const auto count_before = count_;
    bool finite = true;
    for (;;) {
      std::ptrdiff_t off = 0;
      for (std::size_t r = 0; r + 1 < R; ++r) off += idx[r] * y.stride(r);
      const auto* p = y.data_handle() + off;
      if (ax == R - 1) {
        for (std::ptrdiff_t t = 0; t < n; ++t) {
          finite &= std::isfinite(p[t * s]);
          sum_[static_cast<std::size_t>(t)] += p[t * s];
          ++count_[static_cast<std::size_t>(t)];
        }
      } else {
        double acc = 0.0;
        for (std::ptrdiff_t t = 0; t < n; ++t) acc += p[t * s];
        finite &= std::isfinite(acc);
        sum_[static_cast<std::size_t>(idx[ax])] += acc;
        count_[static_cast<std::size_t>(idx[ax])] += static_cast<std::uint64_t>(n);
      }
      std::size_t r = R - 1;
      bool done = true;
      while (r-- > 0) {
        if (++idx[r] < y.extent(r)) {
          done = false;
          break;
        }
        idx[r] = 0;
      }
      if (done) break;
    }
    if (!finite) {
      sum_ = sum_before;
      count_ = count_before;
    }
    AMCTQ_CHECK(finite, errc::non_finite, where, "the layer output holds NaN or infinite values; the batch was not added");
  }

  void merge(const channel_mean_observer& o) {
    AMCTQ_CHECK(o.sum_.size() == sum_.size(), errc::shape_mismatch, "channel_mean_observer::merge", "observers have ",
                sum_.size(), " and ", o.sum_.size(), " channels");
    for (std::size_t c = 0; c < sum_.size(); ++c) {
      sum_[c] += o.sum_[c];
      count_[c] += o.count_[c];
    }
  }

  /// Mean per channel. @throws amctq::error if nothing was observed.
  std::vector<double> result() const {
    std::vector<double> m(sum_.size());
    for (std::size_t c = 0; c < m.size(); ++c) {
      AMCTQ_CHECK(count_[c] > 0, errc::invalid_argument, "channel_mean_observer::result", "channel ", c,
                  " has no observations");
      m[c] = sum_[c] / static_cast<double>(count_[c]);
    }
    return m;
  }

 private:
  std::vector<double> sum_;
  std::vector<std::uint64_t> count_;
};

/// bias + (E[y_float] − E[y_quant]) per output channel; an empty bias counts as zeros (the
/// layer gains one).
inline std::vector<float> corrected_bias(const std::vector<float>& bias, const std::vector<double>& float_mean,
                                         const std::vector<double>& quant_mean) {
  constexpr const char* where = "corrected_bias";
  AMCTQ_CHECK(float_mean.size() == quant_mean.size(), errc::shape_mismatch, where, "float_mean has ",
              float_mean.size(), " channels, quant_mean has ", quant_mean.size());
  AMCTQ_CHECK(bias.empty() || bias.size() == float_mean.size(), errc::shape_mismatch, where, "bias has ", bias.size(),
              " entries for ", float_mean.size(), " channels");
  std::vector<float> out(float_mean.size());
  for (std::size_t c = 0; c < out.size(); ++c) {
    const double b = bias.empty() ? 0.0 : bias[c];
    const double v = b + (float_mean[c] - quant_mean[c]);
    AMCTQ_CHECK(std::fabs(v) <= FLT_MAX, errc::non_finite, where, "corrected bias[", c, "] is not a finite float (bias ", b,
                ", float mean ", float_mean[c], ", quantized mean ", quant_mean[c], ")");
    out[c] = static_cast<float>(v);
  }
  return out;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_BIAS_CORRECTION_HPP
