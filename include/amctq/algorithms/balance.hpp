// Balance factors that move activation outliers into the weights (reference §7 and peers §8):
// per input channel c, X' = X / s_c and W' = W · s_c along the layer's input channels, which
// leaves the float output unchanged. AMCT's DMQ balancer fixes the migration strength
// (default 0.5, allowed [0.2, 0.8]); SmoothQuant's automatic mode picks α per layer from a grid
// by the output MSE of the quantized layer on calibration data.
//
// s_c = a_c^α / w_c^(1−α) with a_c = max|X_c|, w_c = max|W_c|, and AMCT's repairs for
// channels where either side is zero (a zero side cannot be balanced by the formula).
#ifndef AMCTQ_ALGORITHMS_BALANCE_HPP
#define AMCTQ_ALGORITHMS_BALANCE_HPP

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <vector>

#include "amctq/algorithms/arq.hpp"
#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/error.hpp"
#include "amctq/kernels/fake_quantize.hpp"
#include "amctq/kernels/reduce.hpp"
#include "amctq/quant_params.hpp"
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

// AMCT DMQBalance (reference §7) for any α; no range check on α.
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

struct smooth_quant_config {
  std::vector<float> alphas = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f};
  int activation_bits = 8;  ///< per-tensor symmetric (AMCT preset)
  int weight_bits = 8;      ///< per output channel symmetric (ARQ)
};

inline void validate(const smooth_quant_config& cfg, const char* where = "smooth_quant_config") {
  AMCTQ_CHECK(!cfg.alphas.empty(), errc::invalid_argument, where, "the alpha grid is empty");
  for (float a : cfg.alphas)
    AMCTQ_CHECK(a >= 0.0f && a <= 1.0f, errc::invalid_argument, where, "alpha ", a, " is outside [0, 1]");
  AMCTQ_CHECK(cfg.activation_bits >= 2 && cfg.activation_bits <= 16, errc::invalid_argument, where,
              "activation_bits must be in [2, 16], got ", cfg.activation_bits);
  AMCTQ_CHECK(cfg.weight_bits >= 2 && cfg.weight_bits <= 16, errc::invalid_argument, where,
              "weight_bits must be in [2, 16], got ", cfg.weight_bits);
}

struct smooth_quant_result {
  float alpha = 0.5f;
  std::vector<float> factors;
  double mse = 0.0;               ///< output MSE of the quantized layer at the chosen α
  std::vector<double> mse_per_alpha;
};

/// Picks α from cfg.alphas minimising the MSE between x · W and Q(x / s) · Q(W · s), where Q is
/// per-tensor activation and per-channel weight fake quantization; x is calibration input
/// [tokens, in_channels]. Gemm / MatMul weights (one group, no batch dims); for a Conv feed
/// its im2col rows and a 1x1-equivalent layout. Ties keep the first α in the grid.
template <class TX, class TW, std::size_t R>
smooth_quant_result smooth_quant_search(const tensor_view<TX, 2>& x, const tensor_view<TW, R>& w, const weight_layout& L,
                                        const smooth_quant_config& cfg = {}) {
  constexpr const char* where = "smooth_quant_search";
  check_layout_for(w, L, where);
  AMCTQ_CHECK(L.groups == 1 && L.spatial == 1, errc::unsupported, where, "the alpha search needs a Gemm/MatMul-like "
              "weight (one group, no batch or kernel dims), got ", to_string(L.kind), " with ", L.groups, " groups and ",
              L.spatial, " taps");
  AMCTQ_CHECK(x.extent(1) == L.in_channels(), errc::shape_mismatch, where, "activation has ", x.extent(1),
              " channels but the weight has ", L.in_channels(), " input channels");
  AMCTQ_CHECK(x.extent(0) > 0, errc::invalid_argument, where, "no calibration rows");
  validate(cfg, where);
  const std::ptrdiff_t M = x.extent(0), K = L.in_channels(), N = L.out_channels();
  // Dense copies: x as [M, K] and W as [K, N], so the matmul streams along N.
  std::vector<float> xd(static_cast<std::size_t>(M * K)), wd(static_cast<std::size_t>(K * N));
  for (std::ptrdiff_t m = 0; m < M; ++m)
    for (std::ptrdiff_t k = 0; k < K; ++k) xd[static_cast<std::size_t>(m * K + k)] = x(m, k);
  for (std::ptrdiff_t k = 0; k < K; ++k)
    for (std::ptrdiff_t n = 0; n < N; ++n)
      wd[static_cast<std::size_t>(k * N + n)] = w.data_handle()[k * L.stride_in + n * L.stride_out];
  const auto xv = make_view(xd.data(), {M, K});
  const auto wv = make_view(wd.data(), {K, N});
  const auto wl = gemm_weight_layout(wv, false);
  const auto act = activation_channel_absmax(xv, 1);
  const auto wts = channel_absmax(wv, wl, channel_side::input);
  auto matmul = [&](const std::vector<float>& a, const std::vector<float>& b) {
    std::vector<float> y(static_cast<std::size_t>(M * N), 0.0f);
    for (std::ptrdiff_t m = 0; m < M; ++m) {
      float* yr = y.data() + m * N;
      for (std::ptrdiff_t k = 0; k < K; ++k) {
        const float av = a[static_cast<std::size_t>(m * K + k)];
        const float* br = b.data() + k * N;
        for (std::ptrdiff_t n = 0; n < N; ++n) yr[n] += av * br[n];
      }
    }
    return y;
  };
  const auto ref = matmul(xd, wd);
  smooth_quant_result best;
  best.mse = -1.0;
  std::vector<float> xs(xd.size()), ws(wd.size());
  for (float alpha : cfg.alphas) {
    const auto s = detail::migration_factors(act, wts, alpha, where);
    for (std::ptrdiff_t m = 0; m < M; ++m)
      for (std::ptrdiff_t k = 0; k < K; ++k)
        xs[static_cast<std::size_t>(m * K + k)] = xd[static_cast<std::size_t>(m * K + k)] / s[static_cast<std::size_t>(k)];
    ws = wd;
    const auto wsv = make_view(ws.data(), {K, N});
    apply_balance(wsv, wl, s);
    quant_spec aspec;
    aspec.bits = cfg.activation_bits;
    const auto xr = minmax(make_view(xs.data(), {M * K}));
    const auto xsv = make_view(xs.data(), {M * K});
    fake_quantize(tensor_view<const float, 1>(xsv), xsv, params_from_range(xr.min, xr.max, aspec, preset::amct));
    arq_config wcfg;
    wcfg.bits = cfg.weight_bits;
    arq_fake_quantize(wsv, wl, arq_params(wsv, wl, wcfg));
    const auto y = matmul(xs, ws);
    double mse = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) mse += (static_cast<double>(y[i]) - ref[i]) * (static_cast<double>(y[i]) - ref[i]);
    mse /= static_cast<double>(y.size());
    best.mse_per_alpha.push_back(mse);
    if (best.mse < 0.0 || mse < best.mse) {
      best.mse = mse;
      best.alpha = alpha;
      best.factors = s;
    }
  }
  return best;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_BALANCE_HPP
