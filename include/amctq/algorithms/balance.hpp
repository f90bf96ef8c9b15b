// Balance factors that move activation outliers into the weights: per input channel c,
// X' = X / s_c and W' = W · s_c along the layer's input channels, which leaves the float output
// unchanged. AMCT's DMQ balancer fixes the migration strength α (default 0.5, allowed
// [0.2, 0.8]); SmoothQuant's automatic mode, which picks α per layer, is smoothquant.hpp and
// builds on the factors here.
//
// s_c = a_c^α / w_c^(1−α) with a_c = max|X_c|, w_c = max|W_c|, and AMCT's repairs for
// channels where either side is zero (a zero side cannot be balanced by the formula; the
// repairs are listed in docs/algorithms/weights.md, "Balance factors").
#ifndef AMCTQ_ALGORITHMS_BALANCE_HPP
#define AMCTQ_ALGORITHMS_BALANCE_HPP

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <vector>

#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/error.hpp"
#include "amctq/kernels/reduce.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

/// max |x| per channel along channel_axis of a calibration batch (NaN/Inf is an error naming
/// `name`, e.g. the layer whose input x is).
template <class T, std::size_t R>
std::vector<float> activation_channel_absmax(const tensor_view<T, R>& x, int channel_axis,
                                             const char* name = "activations") {
  const auto r = minmax_per_channel(tensor_view<const float, R>(x), channel_axis);
  AMCTQ_CHECK(r.nonfinite == 0, errc::non_finite, "activation_channel_absmax", name, " hold ", r.nonfinite,
              " NaN or infinite values");
  std::vector<float> out(r.min.size());
  for (std::size_t c = 0; c < out.size(); ++c)
    out[c] = r.min[c] <= r.max[c] ? std::fmax(std::fabs(r.min[c]), std::fabs(r.max[c])) : 0.0f;
  return out;
}

namespace detail {

// AMCT's DMQBalance formula with its zero-channel repairs, for any α; the callers check α.
inline std::vector<float> migration_factors(const std::vector<float>& act, const std::vector<float>& wts, double alpha,
                                            const char* where) {
  AMCTQ_CHECK(act.size() == wts.size(), errc::shape_mismatch, where, "activation has ", act.size(),
              " channels but the weight has ", wts.size(), " input channels");
  AMCTQ_CHECK(!act.empty(), errc::invalid_argument, where, "no channels");
  const double eps = FLT_EPSILON;
  double amax = 0.0, wmax = 0.0;
  for (std::size_t c = 0; c < act.size(); ++c) {
    AMCTQ_CHECK(std::isfinite(act[c]) && act[c] >= 0.0f, errc::non_finite, where, "activation absmax[", c,
                "] must be finite and >= 0, got ", act[c]);
    AMCTQ_CHECK(std::isfinite(wts[c]) && wts[c] >= 0.0f, errc::non_finite, where, "weight absmax[", c,
                "] must be finite and >= 0, got ", wts[c]);
    amax = std::fmax(amax, act[c]);
    wmax = std::fmax(wmax, wts[c]);
  }
  std::vector<double> s(act.size(), 0.0);
  const std::vector<float> ones(act.size(), 1.0f);
  if (amax < eps || wmax < eps) return ones;
  double act_out = 0.0, wts_out = 0.0;
  for (std::size_t c = 0; c < act.size(); ++c) {
    if (act[c] >= eps && wts[c] >= eps) s[c] = std::pow(act[c], alpha) / std::pow(wts[c], 1.0 - alpha);
    if (s[c] >= eps) {
      act_out = std::fmax(act_out, act[c] / s[c]);
      wts_out = std::fmax(wts_out, wts[c] * s[c]);
    }
  }
  if (act_out < eps || wts_out < eps) return ones;
  std::vector<float> out(act.size());
  for (std::size_t c = 0; c < act.size(); ++c) {
    const bool a0 = act[c] < eps, w0 = wts[c] < eps;
    const double v = a0 && w0 ? 1.0 : (a0 ? wts_out / wts[c] : (w0 ? act[c] / act_out : s[c]));
    out[c] = static_cast<float>(v);
    AMCTQ_CHECK(out[c] >= FLT_EPSILON && out[c] <= 1.0f / FLT_EPSILON, errc::overflow, where, "balance factor[", c,
                "] = ", v, " leaves [FLT_EPSILON, 1/FLT_EPSILON] (activation absmax ", act[c], ", weight absmax ",
                wts[c], ")");
  }
  return out;
}

}  // namespace detail

/// AMCT DMQ balance factors from per-input-channel absmax of activations and weights.
/// @throws amctq::error for mismatched channel counts, non-finite input, a strength outside
/// [0.2, 0.8], or a factor outside [FLT_EPSILON, 1/FLT_EPSILON].
inline std::vector<float> dmq_balance_factors(const std::vector<float>& act_absmax, const std::vector<float>& wts_absmax,
                                              float migration_strength = 0.5f) {
  AMCTQ_CHECK(migration_strength >= 0.2f && migration_strength <= 0.8f, errc::invalid_argument, "dmq_balance_factors",
              "migration_strength must be in [0.2, 0.8], got ", migration_strength);
  return detail::migration_factors(act_absmax, wts_absmax, migration_strength, "dmq_balance_factors");
}

/// Folds factors into the weight: W[.., c, ..] *= s[c] along the layer's input channels.
/// The caller divides the activation (a Mul by 1/s in front of the layer).
template <std::size_t R>
void apply_balance(const tensor_view<float, R>& w, const weight_layout& L, const std::vector<float>& factors) {
  scale_channels(w, L, channel_side::input, factors);
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_BALANCE_HPP
