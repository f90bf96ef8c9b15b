// Shared by the weight-algorithm tests: an independent statement of which output / input
// channel each element of a dense weight belongs to (written from the ONNX operator specs,
// not from weight_layout), deterministic weights, and small reference layers (grouped
// Conv1d/2d/3d, grouped ConvTranspose2d, matmul) to check that equivalence transforms keep
// the float outputs.
#ifndef AMCTQ_TESTS_ALGORITHMS_WEIGHT_TEST_UTIL_HPP
#define AMCTQ_TESTS_ALGORITHMS_WEIGHT_TEST_UTIL_HPP

#include <cmath>
#include <cstddef>
#include <random>
#include <utility>
#include <vector>

#include "amctq/algorithms/weight_layout.hpp"

namespace amctq_test {

using shape_t = std::vector<std::ptrdiff_t>;

inline std::ptrdiff_t numel(const shape_t& s) {
  std::ptrdiff_t n = 1;
  for (auto e : s) n *= e;
  return n;
}

/// (output channel, input channel) of flat element `flat` of a dense weight of `shape`.
inline std::pair<std::ptrdiff_t, std::ptrdiff_t> channels_of(amctq::weight_kind kind, const shape_t& shape,
                                                             std::ptrdiff_t groups, bool trans_b, std::ptrdiff_t flat) {
  shape_t idx(shape.size());
  for (std::size_t r = shape.size(); r-- > 0;) {
    idx[r] = flat % shape[r];
    flat /= shape[r];
  }
  const std::size_t R = shape.size();
  switch (kind) {
    case amctq::weight_kind::conv: {
      const std::ptrdiff_t og = shape[0] / groups;
      return {idx[0], (idx[0] / og) * shape[1] + idx[1]};
    }
    case amctq::weight_kind::conv_transpose: {
      const std::ptrdiff_t ig = shape[0] / groups;
      return {(idx[0] / ig) * shape[1] + idx[1], idx[0]};
    }
    case amctq::weight_kind::gemm: return trans_b ? std::make_pair(idx[0], idx[1]) : std::make_pair(idx[1], idx[0]);
    case amctq::weight_kind::matmul: return {idx[R - 1], idx[R - 2]};
  }
  return {-1, -1};
}

inline std::vector<float> random_weights(std::ptrdiff_t n, unsigned seed, float sd = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> w(static_cast<std::size_t>(n));
  for (auto& x : w) x = d(rng);
  return w;
}

/// Grouped N-d convolution, stride 1, no padding: x [Cin, S...], w [Cout, Cin/g, K...],
/// y [Cout, (S-K+1)...]. Spatial rank 1..3 (spatial dims padded to 3 with extent 1).
inline std::vector<double> ref_conv(const std::vector<float>& x, const shape_t& xs, const std::vector<float>& w,
                                    const shape_t& ws, std::ptrdiff_t groups, const std::vector<float>* bias = nullptr) {
  shape_t X = xs, W = ws;
  while (X.size() < 4) X.push_back(1);
  while (W.size() < 5) W.push_back(1);
  const std::ptrdiff_t cout = W[0], cig = W[1], og = cout / groups;
  const std::ptrdiff_t o1 = X[1] - W[2] + 1, o2 = X[2] - W[3] + 1, o3 = X[3] - W[4] + 1;
  std::vector<double> y(static_cast<std::size_t>(cout * o1 * o2 * o3));
  for (std::ptrdiff_t co = 0; co < cout; ++co)
    for (std::ptrdiff_t a = 0; a < o1; ++a)
      for (std::ptrdiff_t b = 0; b < o2; ++b)
        for (std::ptrdiff_t c = 0; c < o3; ++c) {
          double acc = bias ? (*bias)[static_cast<std::size_t>(co)] : 0.0;
          for (std::ptrdiff_t ci = 0; ci < cig; ++ci) {
            const std::ptrdiff_t xc = (co / og) * cig + ci;
            for (std::ptrdiff_t i = 0; i < W[2]; ++i)
              for (std::ptrdiff_t j = 0; j < W[3]; ++j)
                for (std::ptrdiff_t k = 0; k < W[4]; ++k)
                  acc += static_cast<double>(w[static_cast<std::size_t>((((co * cig + ci) * W[2] + i) * W[3] + j) * W[4] + k)]) *
                         x[static_cast<std::size_t>(((xc * X[1] + a + i) * X[2] + b + j) * X[3] + c + k)];
          }
          y[static_cast<std::size_t>(((co * o1 + a) * o2 + b) * o3 + c)] = acc;
        }
  return y;
}

/// Grouped ConvTranspose2d, stride 1, no padding: x [Cin, H, W], w [Cin, Cout/g, kh, kw].
inline std::vector<double> ref_conv_transpose(const std::vector<float>& x, const shape_t& xs, const std::vector<float>& w,
                                              const shape_t& ws, std::ptrdiff_t groups) {
  const std::ptrdiff_t cin = ws[0], og = ws[1], ig = cin / groups, kh = ws[2], kw = ws[3];
  const std::ptrdiff_t H = xs[1], Wd = xs[2], oh = H + kh - 1, ow = Wd + kw - 1;
  std::vector<double> y(static_cast<std::size_t>(groups * og * oh * ow), 0.0);
  for (std::ptrdiff_t ci = 0; ci < cin; ++ci)
    for (std::ptrdiff_t o = 0; o < og; ++o) {
      const std::ptrdiff_t co = (ci / ig) * og + o;
      for (std::ptrdiff_t a = 0; a < H; ++a)
        for (std::ptrdiff_t b = 0; b < Wd; ++b)
          for (std::ptrdiff_t i = 0; i < kh; ++i)
            for (std::ptrdiff_t j = 0; j < kw; ++j)
              y[static_cast<std::size_t>((co * oh + a + i) * ow + b + j)] +=
                  static_cast<double>(x[static_cast<std::size_t>((ci * H + a) * Wd + b)]) *
                  w[static_cast<std::size_t>(((ci * og + o) * kh + i) * kw + j)];
    }
  return y;
}

/// y[m, n] = sum_k x[m, k] * B(k, n), B given as [K, N] or (trans_b) [N, K].
inline std::vector<double> ref_matmul(const std::vector<float>& x, std::ptrdiff_t M, std::ptrdiff_t K,
                                      const std::vector<float>& w, std::ptrdiff_t N, bool trans_b) {
  std::vector<double> y(static_cast<std::size_t>(M * N), 0.0);
  for (std::ptrdiff_t m = 0; m < M; ++m)
    for (std::ptrdiff_t k = 0; k < K; ++k)
      for (std::ptrdiff_t n = 0; n < N; ++n)
        y[static_cast<std::size_t>(m * N + n)] += static_cast<double>(x[static_cast<std::size_t>(m * K + k)]) *
                                                  w[static_cast<std::size_t>(trans_b ? n * K + k : k * N + n)];
  return y;
}

/// max |a - b| / max |a|.
inline double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::fmax(num, std::fabs(a[i] - b[i]));
    den = std::fmax(den, std::fabs(a[i]));
  }
  return den > 0.0 ? num / den : num;
}

}  // namespace amctq_test

#endif  // AMCTQ_TESTS_ALGORITHMS_WEIGHT_TEST_UTIL_HPP
