// SmoothQuant's automatic α (Xiao et al. 2023; Intel Neural Compressor's auto-alpha): the
// migration strength of the balance factors (balance.hpp) picked per layer from a grid, by the
// output MSE of the quantized layer on calibration data. AMCT's DMQ fixes α instead. The default
// grid, 0 to 1 in steps of 0.1, is the range Neural Compressor's documentation recommends.
#ifndef AMCTQ_ALGORITHMS_SMOOTHQUANT_HPP
#define AMCTQ_ALGORITHMS_SMOOTHQUANT_HPP

#include <cstddef>
#include <vector>

#include "amctq/algorithms/arq.hpp"
#include "amctq/algorithms/balance.hpp"
#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/error.hpp"
#include "amctq/kernels/fake_quantize.hpp"
#include "amctq/kernels/reduce.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

struct smooth_quant_options {
  std::vector<float> alphas = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f};
  int activation_bits = 8;  ///< per-tensor symmetric (AMCT preset)
  int weight_bits = 8;      ///< per output channel symmetric (ARQ)
};

inline void validate(const smooth_quant_options& o, const char* where = "smooth_quant_options") {
  AMCTQ_CHECK(!o.alphas.empty(), errc::invalid_argument, where, "the alpha grid is empty");
  for (float a : o.alphas)
    AMCTQ_CHECK(a >= 0.0f && a <= 1.0f, errc::invalid_argument, where, "alpha ", a, " is outside [0, 1]");
  AMCTQ_CHECK(o.activation_bits >= 2 && o.activation_bits <= 16, errc::invalid_argument, where,
              "activation_bits must be in [2, 16], got ", o.activation_bits);
  AMCTQ_CHECK(o.weight_bits >= 2 && o.weight_bits <= 16, errc::invalid_argument, where,
              "weight_bits must be in [2, 16], got ", o.weight_bits);
}

struct smooth_quant_result {
  float alpha = 0.5f;
  std::vector<float> factors;
  double mse = 0.0;               ///< output MSE of the quantized layer at the chosen α
  std::vector<double> mse_per_alpha;
};

/// Picks α from o.alphas minimising the MSE between x · W and Q(x / s) · Q(W · s), where Q is
/// per-tensor activation and per-channel weight fake quantization; x is calibration input
/// [tokens, in_channels]. Gemm / MatMul weights (one group, no batch dims); for a Conv feed
/// its im2col rows and a 1x1-equivalent layout. Ties keep the first α in the grid.
template <class TX, class TW, std::size_t R>
smooth_quant_result smooth_quant_search(const tensor_view<TX, 2>& x, const tensor_view<TW, R>& w, const weight_layout& L,
                                        const smooth_quant_options& o = {}) {
  constexpr const char* where = "smooth_quant_search";
  check_layout_for(w, L, where);
  AMCTQ_CHECK(L.groups == 1 && L.spatial == 1, errc::unsupported, where, "the alpha search needs a Gemm/MatMul-like "
              "weight (one group, no batch or kernel dims), got ", to_string(L.kind), " with ", L.groups, " groups and ",
              L.spatial, " taps");
  AMCTQ_CHECK(x.extent(1) == L.in_channels(), errc::shape_mismatch, where, "activation has ", x.extent(1),
              " channels but the weight has ", L.in_channels(), " input channels");
  AMCTQ_CHECK(x.extent(0) > 0, errc::invalid_argument, where, "no calibration rows");
  validate(o, where);
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
  for (float alpha : o.alphas) {
    const auto s = detail::migration_factors(act, wts, alpha, where);
    for (std::ptrdiff_t m = 0; m < M; ++m)
      for (std::ptrdiff_t k = 0; k < K; ++k)
        xs[static_cast<std::size_t>(m * K + k)] = xd[static_cast<std::size_t>(m * K + k)] / s[static_cast<std::size_t>(k)];
    ws = wd;
    const auto wsv = make_view(ws.data(), {K, N});
    apply_balance(wsv, wl, s);
    quant_spec aspec;
    aspec.bits = o.activation_bits;
    const auto xr = minmax(make_view(xs.data(), {M * K}));
    const auto xsv = make_view(xs.data(), {M * K});
    fake_quantize(tensor_view<const float, 1>(xsv), xsv, params_from_range(xr.min, xr.max, aspec, preset::amct));
    arq_options wo;
    wo.bits = o.weight_bits;
    arq_fake_quantize(wsv, wl, arq_params(wsv, wl, wo));
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

#endif  // AMCTQ_ALGORITHMS_SMOOTHQUANT_HPP
