// AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization", ICML
// 2020): each weight w on a grid of step s rounds to floor(w / s) + h(v), where h is the rectified
// sigmoid of a learned v, pushed to 0 or 1 by a regulariser whose exponent beta anneals from
// sharp-edged to flat. This header holds the elementwise parts — h and its derivative, v's start
// value, the regulariser's gradient, beta's schedule, one Adam step and the final codes — so any
// reconstruction loop (graph/passes/adaround.hpp's layer-wise one, or an engine's own) shares
// them. The loss the caller minimises and its gradient with respect to the rounded weights are
// the caller's: they need the layer's forward and backward.
#ifndef AMCTQ_ALGORITHMS_ADAROUND_HPP
#define AMCTQ_ALGORITHMS_ADAROUND_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace amctq {

/// The optimisation's settings; defaults are the paper's and AMCT's ada_quantize's, except the
/// iteration count (the paper's 10k / 20k), which is the caller's choice of cost.
struct adaround_options {
  int iterations = 1000;         ///< Adam steps per layer
  int batch = 256;               ///< input columns (output positions) per step
  float reg_param = 0.01f;       ///< lambda, the weight of the rounding regulariser
  float beta_start = 20.0f;      ///< regulariser exponent at the end of the warm start
  float beta_end = 2.0f;         ///< ... and at the last step (cosine annealed between)
  float warm_start = 0.2f;       ///< fraction of the steps run without the regulariser
  float learning_rate = 1e-3f;   ///< Adam's step size on v
  /// Probability that an input element stays float while the layer's input is quantized during
  /// reconstruction: 0 quantizes every element as the layer's activation config says, 0.5 is
  /// QDrop (Wei et al., ICLR 2022), 1 reconstructs on float inputs (the paper's AdaRound).
  float drop_prob = 0.0f;
  int columns = 8192;            ///< input columns (output positions) a layer-wise caller keeps per layer
  std::uint64_t seed = 0;        ///< column sampling and QDrop's choices; equal seeds give equal codes
};

namespace adaround {

inline constexpr float zeta = 1.1f;    ///< the rectified sigmoid's stretch: h spans [gamma, zeta] before clipping
inline constexpr float gamma = -0.1f;

/// h(v) = clip(sigmoid(v) * (zeta - gamma) + gamma, 0, 1).
inline float h(float v) noexcept {
  const float s = 1.0f / (1.0f + std::exp(-v));
  return std::clamp(s * (zeta - gamma) + gamma, 0.0f, 1.0f);
}

/// dh/dv; 0 where the clip is active, which is what lets v settle at hard 0 / 1.
inline float dh(float v) noexcept {
  const float s = 1.0f / (1.0f + std::exp(-v));
  const float raw = s * (zeta - gamma) + gamma;
  return raw <= 0.0f || raw >= 1.0f ? 0.0f : s * (1.0f - s) * (zeta - gamma);
}

/// v with h(v) = frac, frac = w / s - floor(w / s): the optimisation starts from the float weight
/// itself, not from round-to-nearest.
inline float initial_v(float frac) noexcept {
  const float p = std::clamp((frac - gamma) / (zeta - gamma), 1e-6f, 1.0f - 1e-6f);
  return std::log(p / (1.0f - p));
}

/// The regulariser's exponent at step t of n: beta_start through the end of the warm start, then
/// cosine annealed to beta_end at the last step. 0 during the warm start (no regulariser).
inline float beta_at(const adaround_options& o, int t, int n) noexcept {
  const int warm = static_cast<int>(o.warm_start * static_cast<float>(n));
  if (t < warm) return 0.0f;
  const float rel = n - warm > 1 ? static_cast<float>(t - warm) / static_cast<float>(n - warm - 1) : 1.0f;
  return o.beta_end + 0.5f * (o.beta_start - o.beta_end) * (1.0f + std::cos(rel * 3.14159265358979f));
}

/// d/dv of lambda * (1 - |2h(v) - 1|^beta), the per-weight rounding regulariser.
inline float regulariser_grad(float v, float beta, float lambda) noexcept {
  if (beta <= 0.0f) return 0.0f;
  const float d = 2.0f * h(v) - 1.0f;
  const float a = std::fabs(d);
  if (a == 0.0f) return 0.0f;
  return -lambda * beta * std::pow(a, beta - 1.0f) * (d > 0.0f ? 2.0f : -2.0f) * dh(v);
}

/// The regulariser's value summed over n weights, 0 <= value <= n (for reports and tests).
inline double regulariser(const float* v, std::size_t n, float beta) noexcept {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += 1.0 - std::pow(std::fabs(2.0 * h(v[i]) - 1.0), static_cast<double>(beta));
  return sum;
}

/// Adam's moments for a vector of n parameters; the caller owns the storage.
struct adam_state {
  float* m = nullptr;
  float* v2 = nullptr;
  int step = 0;
};

/// One Adam step (Kingma & Ba, beta1 = 0.9, beta2 = 0.999, eps = 1e-8) of params against grad.
inline void adam_step(float* params, const float* grad, std::size_t n, adam_state& st, float lr) noexcept {
  constexpr float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  ++st.step;
  const float c1 = 1.0f - std::pow(b1, static_cast<float>(st.step));
  const float c2 = 1.0f - std::pow(b2, static_cast<float>(st.step));
  for (std::size_t i = 0; i < n; ++i) {
    st.m[i] = b1 * st.m[i] + (1.0f - b1) * grad[i];
    st.v2[i] = b2 * st.v2[i] + (1.0f - b2) * grad[i] * grad[i];
    params[i] -= lr * (st.m[i] / c1) / (std::sqrt(st.v2[i] / c2) + eps);
  }
}

/// The weight's code: floor(w / s) plus the learned rounding (up where h(v) >= 1/2), clamped to
/// [qmin, qmax].
inline std::int32_t code(float w, float s, float v, std::int32_t qmin, std::int32_t qmax) noexcept {
  const float f = std::floor(w / s) + (h(v) >= 0.5f ? 1.0f : 0.0f);
  return static_cast<std::int32_t>(std::clamp(f, static_cast<float>(qmin), static_cast<float>(qmax)));
}

/// The soft weight the optimisation sees: s * clamp(floor(w / s) + h(v), qmin, qmax). `inside`
/// is false where the clamp is active (the gradient to v is then 0).
inline float soft_weight(float w, float s, float v, std::int32_t qmin, std::int32_t qmax, bool& inside) noexcept {
  const float f = std::floor(w / s) + h(v);
  inside = f >= static_cast<float>(qmin) && f <= static_cast<float>(qmax);
  return s * std::clamp(f, static_cast<float>(qmin), static_cast<float>(qmax));
}

}  // namespace adaround
}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_ADAROUND_HPP
