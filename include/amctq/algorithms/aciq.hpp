// ACIQ (Banner et al., "Post-training 4-bit quantization of convolution networks for
// rapid-deployment"): model the tensor as Laplace(mu, b) or Gaussian(mu, sigma) and clip at the
// alpha minimising clipping noise + quantization noise alpha^2 / (3 * 4^bits). The moments come
// from the exact histogram (uniform density in each bin), so the result is order-independent;
// alpha is found numerically for any bit width (giving the paper's table, e.g. Laplace
// alpha/b = 9.89 at 8 bits and 5.03 at 4 bits).
#ifndef AMCTQ_ALGORITHMS_ACIQ_HPP
#define AMCTQ_ALGORITHMS_ACIQ_HPP

#include <cmath>

#include "amctq/algorithms/calib_range.hpp"
#include "amctq/algorithms/histogram.hpp"

namespace amctq {

enum class aciq_distribution { laplace, gaussian };

namespace detail {

inline double aciq_noise(double alpha, aciq_distribution d, int bits) {
  const double quant = alpha * alpha / (3.0 * std::ldexp(1.0, 2 * bits));
  if (d == aciq_distribution::laplace) return 2.0 * std::exp(-alpha) + quant;  // b = 1
  const double tail = (alpha * alpha + 1.0) * std::erfc(alpha / std::sqrt(2.0)) -
                      0.7978845608028654 /* sqrt(2 / pi) */ * alpha * std::exp(-alpha * alpha / 2.0);
  return tail + quant;  // sigma = 1
}

}  // namespace detail

/// alpha / b (Laplace) or alpha / sigma (Gaussian) minimising the expected noise at `bits`.
inline double aciq_alpha(aciq_distribution d, int bits) {
  AMCTQ_CHECK(bits >= 1 && bits <= 16, errc::invalid_argument, "aciq_alpha", "bits must be in [1, 16], got ", bits);
  double a = 0.0, b = 40.0;  // the noise is unimodal in alpha: golden-section search
  const double g = (std::sqrt(5.0) - 1.0) / 2.0;
  double x1 = b - g * (b - a), x2 = a + g * (b - a);
  double f1 = detail::aciq_noise(x1, d, bits), f2 = detail::aciq_noise(x2, d, bits);
  for (int i = 0; i < 200 && b - a > 1e-10; ++i) {
    if (f1 < f2) {
      b = x2; x2 = x1; f2 = f1; x1 = b - g * (b - a); f1 = detail::aciq_noise(x1, d, bits);
    } else {
      a = x1; x1 = x2; f1 = f2; x2 = a + g * (b - a); f2 = detail::aciq_noise(x2, d, bits);
    }
  }
  return 0.5 * (a + b);
}

/// Range [mu - alpha, mu + alpha], kept inside the data's [min, max].
inline calib_range aciq_range(const binned_histogram& h, const quant_spec& spec, aciq_distribution d) {
  if (h.total == 0.0) return {0.0f, 0.0f};
  double mean = 0.0;
  for (std::size_t k = 0; k < h.bins(); ++k) mean += h.counts[k] * (h.edge(k) + 0.5 * h.width);
  mean /= h.total;
  double spread = 0.0;  // E|x - mu| or E(x - mu)^2 under uniform density per bin
  for (std::size_t k = 0; k < h.bins(); ++k) {
    if (h.counts[k] == 0.0) continue;
    const double a = h.edge(k) - mean, b = a + h.width;
    if (d == aciq_distribution::laplace) {
      const double m = (a >= 0.0 || b <= 0.0) ? std::fabs(0.5 * (a + b)) : (a * a + b * b) / (2.0 * (b - a));
      spread += h.counts[k] * m;
    } else {
      spread += h.counts[k] * (a * a + a * b + b * b) / 3.0;
    }
  }
  spread /= h.total;
  if (d == aciq_distribution::gaussian) spread = std::sqrt(spread);
  const double alpha = aciq_alpha(d, spec.bits) * spread;
  return {static_cast<float>(std::fmax(mean - alpha, h.min)), static_cast<float>(std::fmin(mean + alpha, h.max))};
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_ACIQ_HPP
