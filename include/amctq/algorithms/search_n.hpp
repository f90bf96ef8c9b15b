// searchN (AMCT shift_bit; docs/algorithms/weights.md, "searchN"): per output channel, the right
// shift N in 1..16 that best keeps an int32 accumulator inside an int16 stage,
//   e_c(N) = Σ_j ( sat16(floor(acc_j / 2^N)) · 2^N − acc_j )²,  N_c = argmin_N e_c(N).
// Decisions where AMCT's implementations differ: the shift is a floor (arithmetic shift, what
// hardware does; AMCT's v1 int path truncated toward 0), and ties keep the smallest N (the
// shipped C++; its Python test reference takes the largest).
// A streaming observer: errors add up batch by batch, so the result does not depend on how
// the calibration data is split, and two observers merge exactly.
#ifndef AMCTQ_ALGORITHMS_SEARCH_N_HPP
#define AMCTQ_ALGORITHMS_SEARCH_N_HPP

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/rounding.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

class search_n_observer {
 public:
  static constexpr int max_shift = 16;

  explicit search_n_observer(std::size_t channels) : err_(channels) {
    AMCTQ_CHECK(channels > 0, errc::invalid_argument, "search_n_observer", "channels must be > 0");
  }

  std::size_t channels() const noexcept { return err_.size(); }

  /// Adds int32 accumulators acc, channel along channel_axis.
  template <class T, std::size_t R>
  void observe(const tensor_view<T, R>& acc, int channel_axis) {
    static_assert(std::is_same_v<std::remove_const_t<T>, std::int32_t>, "search_n_observer::observe reads int32.");
    check_axis(acc, channel_axis, "search_n_observer::observe");
    for_each(acc, channel_axis, [&](std::int32_t v, std::size_t c) { add(v, c); });
  }

  /// Adds a float layer output y: acc = round(y / deq_scale[c]) (half away, AMCT's C++
  /// round), clamped to int32; deq_scale = s_d · s_w per channel, or one value for all.
  template <class T, std::size_t R>
  void observe_float(const tensor_view<T, R>& y, int channel_axis, const std::vector<float>& deq_scale) {
    static_assert(std::is_same_v<std::remove_const_t<T>, float>, "search_n_observer::observe_float reads float.");
    constexpr const char* where = "search_n_observer::observe_float";
    check_axis(y, channel_axis, where);
    AMCTQ_CHECK(deq_scale.size() == 1 || deq_scale.size() == err_.size(), errc::shape_mismatch, where, "deq_scale has ",
                deq_scale.size(), " entries for ", err_.size(), " channels");
    for (std::size_t c = 0; c < deq_scale.size(); ++c)
      AMCTQ_CHECK(std::isfinite(deq_scale[c]) && deq_scale[c] > 0.0f, errc::invalid_argument, where, "deq_scale[", c,
                  "] must be finite and > 0, got ", deq_scale[c]);
    // The state is one row of errors per channel: keep it to restore when the batch is refused.
    const auto before = err_;
    bool finite = true;
    for_each(y, channel_axis, [&](float v, std::size_t c) {
      if (!std::isfinite(v)) {  // converting NaN to an integer is undefined
        finite = false;
        return;
      }
      const double q = round_as<round_mode::half_away>(static_cast<float>(
          static_cast<double>(v) / deq_scale[deq_scale.size() == 1 ? 0 : c]));
      add(static_cast<std::int32_t>(q < -2147483648.0 ? -2147483648.0 : (q > 2147483647.0 ? 2147483647.0 : q)), c);
    });
    if (!finite) err_ = before;
    AMCTQ_CHECK(finite, errc::non_finite, where, "the layer output holds NaN or infinite values; the batch was not added");
  }

  void merge(const search_n_observer& o) {
    AMCTQ_CHECK(o.err_.size() == err_.size(), errc::shape_mismatch, "search_n_observer::merge", "observers have ",
                err_.size(), " and ", o.err_.size(), " channels");
    for (std::size_t c = 0; c < err_.size(); ++c)
      for (int n = 0; n < max_shift; ++n) err_[c][static_cast<std::size_t>(n)] += o.err_[c][static_cast<std::size_t>(n)];
  }

  /// e_c(N) for N = 1..16 (index N − 1).
  const std::array<double, max_shift>& errors(std::size_t c) const { return err_.at(c); }

  /// N per channel; the smallest N among equal errors.
  std::vector<int> result() const {
    std::vector<int> n(err_.size(), 1);
    for (std::size_t c = 0; c < err_.size(); ++c)
      for (int k = 1; k < max_shift; ++k)
        if (err_[c][static_cast<std::size_t>(k)] < err_[c][static_cast<std::size_t>(n[c] - 1)]) n[c] = k + 1;
    return n;
  }

  /// Error of one value at shift n: floor shift, int16 saturation, shift back.
  static double shift_error(std::int32_t v, int n) noexcept {
    const std::int64_t f = static_cast<std::int64_t>(v) >= 0 ? (static_cast<std::int64_t>(v) >> n)
                                                              : -((-static_cast<std::int64_t>(v) + (std::int64_t{1} << n) - 1) >> n);
    const std::int64_t s = f < -32768 ? -32768 : (f > 32767 ? 32767 : f);
    const double d = static_cast<double>(s * (std::int64_t{1} << n) - v);
    return d * d;
  }

 private:
  template <class T, std::size_t R>
  void check_axis(const tensor_view<T, R>& v, int axis, const char* where) const {
    AMCTQ_CHECK(axis >= 0 && axis < static_cast<int>(R), errc::invalid_argument, where, "channel_axis ", axis,
                " is out of range for rank ", R);
    AMCTQ_CHECK(v.extent(static_cast<std::size_t>(axis)) == static_cast<std::ptrdiff_t>(err_.size()),
                errc::shape_mismatch, where, "axis ", axis, " has ", v.extent(static_cast<std::size_t>(axis)),
                " channels but the observer has ", err_.size());
    AMCTQ_CHECK(v.data_handle() != nullptr || v.size() == 0, errc::invalid_argument, where, "data is null");
  }

  // Visits every element with its channel, in row-major index order.
  template <class T, std::size_t R, class F>
  static void for_each(const tensor_view<T, R>& v, int axis, F&& f) {
    if (v.size() == 0) return;
    std::array<std::ptrdiff_t, R> idx{};
    for (;;) {
      std::ptrdiff_t off = 0;
      for (std::size_t r = 0; r < R; ++r) off += idx[r] * v.stride(r);
      f(v.data_handle()[off], static_cast<std::size_t>(idx[static_cast<std::size_t>(axis)]));
      std::size_t r = R;
      while (r-- > 0) {
        if (++idx[r] < v.extent(r)) break;
        idx[r] = 0;
        if (r == 0) return;
      }
    }
  }

  void add(std::int32_t v, std::size_t c) noexcept {
    auto& e = err_[c];
    for (int n = 1; n <= max_shift; ++n) e[static_cast<std::size_t>(n - 1)] += shift_error(v, n);
  }

  std::vector<std::array<double, max_shift>> err_;
};

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_SEARCH_N_HPP
