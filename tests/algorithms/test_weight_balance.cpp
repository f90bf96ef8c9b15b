// Balance factors (DMQ / SmoothQuant): X / s and W · s along the input channels leave the
// float output of Gemm, MatMul, Conv1d/2d/3d, grouped and depthwise Conv and grouped
// ConvTranspose unchanged (1e-5 relative, reference layers written in the test); AMCT's
// zero-channel repairs; the α search beats plain quantization on outlier data; bad input.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

#include "algorithms/weight_test_util.hpp"
#include "amctq/algorithms/balance.hpp"
#include "amctq/algorithms/smoothquant.hpp"

namespace test_weight_balance {

using namespace amctq;
using amctq_test::shape_t;

namespace {

// Activation [C, rest...] with a few outlier channels, as transformer / detection inputs have.
std::vector<float> outlier_activations(std::ptrdiff_t channels, std::ptrdiff_t per_channel, unsigned seed,
                                       bool channel_last = false) {
  auto x = amctq_test::random_weights(channels * per_channel, seed, 1.0f);
  for (std::ptrdiff_t c = 0; c < channels; ++c) {
    const float gain = c % 7 == 3 ? 40.0f : 1.0f + 0.1f * static_cast<float>(c % 5);
    for (std::ptrdiff_t j = 0; j < per_channel; ++j)
      x[static_cast<std::size_t>(channel_last ? j * channels + c : c * per_channel + j)] *= gain;
  }
  return x;
}

void divide_channels(std::vector<float>& x, std::ptrdiff_t channels, const std::vector<float>& s, bool channel_last) {
  const std::ptrdiff_t per = static_cast<std::ptrdiff_t>(x.size()) / channels;
  for (std::ptrdiff_t c = 0; c < channels; ++c)
    for (std::ptrdiff_t j = 0; j < per; ++j)
      x[static_cast<std::size_t>(channel_last ? j * channels + c : c * per + j)] /= s[static_cast<std::size_t>(c)];
}

template <std::size_t R>
tensor_view<float, R> view_of(std::vector<float>& w, const shape_t& s) {
  std::array<std::ptrdiff_t, R> e{};
  for (std::size_t r = 0; r < R; ++r) e[r] = s[r];
  return tensor_view<float, R>(w.data(), e);
}

// Balances a conv-like layer and returns the relative output change.
template <std::size_t R>
double conv_balance_change(bool transpose, const shape_t& ws, std::ptrdiff_t groups, const shape_t& xs,
                           float strength) {
  auto w = amctq_test::random_weights(amctq_test::numel(ws), 21u);
  auto x = outlier_activations(xs[0], amctq_test::numel(xs) / xs[0], 22u);
  const auto v = view_of<R>(w, ws);
  const auto L = transpose ? conv_transpose_weight_layout(v, groups) : conv_weight_layout(v, groups);
  REQUIRE(L.in_channels() == xs[0]);
  const auto a = activation_channel_absmax(make_view(x.data(), {xs[0], amctq_test::numel(xs) / xs[0]}), 0);
  const auto s = dmq_balance_factors(a, channel_absmax(v, L, channel_side::input), strength);
  bool nontrivial = false;
  for (float f : s) nontrivial |= std::fabs(f - 1.0f) > 0.1f;
  CHECK(nontrivial);
  const auto before = transpose ? amctq_test::ref_conv_transpose(x, xs, w, ws, groups)
                                : amctq_test::ref_conv(x, xs, w, ws, groups);
  apply_balance(v, L, s);
  divide_channels(x, xs[0], s, false);
  const auto after = transpose ? amctq_test::ref_conv_transpose(x, xs, w, ws, groups)
                               : amctq_test::ref_conv(x, xs, w, ws, groups);
  return amctq_test::max_rel_diff(before, after);
}

}  // namespace

TEST_SUITE("algorithms.weights") {
  TEST_CASE("DMQ balance is an exact transform for every layer kind") {
    for (float strength : {0.2f, 0.5f, 0.8f}) {
      CAPTURE(strength);
      CHECK(conv_balance_change<4>(false, {16, 8, 3, 3}, 1, {8, 7, 7}, strength) < 1e-5);       // Conv2d
      CHECK(conv_balance_change<4>(false, {16, 4, 3, 3}, 2, {8, 6, 6}, strength) < 1e-5);       // grouped
      CHECK(conv_balance_change<4>(false, {12, 1, 3, 3}, 12, {12, 6, 6}, strength) < 1e-5);     // depthwise
      CHECK(conv_balance_change<3>(false, {10, 6, 5}, 1, {6, 12}, strength) < 1e-5);            // Conv1d
      CHECK(conv_balance_change<5>(false, {8, 6, 2, 3, 3}, 1, {6, 4, 5, 5}, strength) < 1e-5);  // Conv3d
      CHECK(conv_balance_change<4>(true, {8, 5, 3, 3}, 1, {8, 4, 4}, strength) < 1e-5);         // ConvTranspose
      CHECK(conv_balance_change<4>(true, {8, 3, 2, 2}, 4, {8, 4, 4}, strength) < 1e-5);         // grouped ConvT
    }
    for (bool trans_b : {true, false}) {  // Gemm / MatMul: x [M, K] channel-last
      CAPTURE(trans_b);
      const std::ptrdiff_t M = 32, K = 24, N = 20;
      auto x = outlier_activations(K, M, 5u, true);
      auto w = amctq_test::random_weights(K * N, 6u);
      const auto v = trans_b ? make_view(w.data(), {N, K}) : make_view(w.data(), {K, N});
      const auto L = trans_b ? gemm_weight_layout(v, true) : matmul_weight_layout(v);
      const auto s = dmq_balance_factors(activation_channel_absmax(make_view(x.data(), {M, K}), 1),
                                         channel_absmax(v, L, channel_side::input));
      const auto before = amctq_test::ref_matmul(x, M, K, w, N, trans_b);
      apply_balance(v, L, s);
      divide_channels(x, K, s, true);
      CHECK(amctq_test::max_rel_diff(before, amctq_test::ref_matmul(x, M, K, w, N, trans_b)) < 1e-5);
    }
  }

  TEST_CASE("DMQ factors follow a^alpha / w^(1-alpha) and AMCT's zero-channel repairs") {
    const std::vector<float> a = {4.0f, 0.0f, 9.0f, 0.0f, 1.0f};
    const std::vector<float> w = {1.0f, 2.0f, 0.0f, 0.0f, 0.25f};
    const auto s = dmq_balance_factors(a, w, 0.5f);
    CHECK(s[0] == doctest::Approx(2.0));         // sqrt(4) / sqrt(1)
    CHECK(s[4] == doctest::Approx(2.0));         // sqrt(1) / sqrt(0.25)
    CHECK(s[3] == 1.0f);                         // both sides zero
    // act_out = max(a/s) = 2, wts_out = max(w·s) = 2 over the balanced channels.
    CHECK(s[1] == doctest::Approx(2.0 / 2.0));   // zero activation: wts_out / w
    CHECK(s[2] == doctest::Approx(9.0 / 2.0));   // zero weight: a / act_out
    const auto s8 = dmq_balance_factors(a, w, 0.8f);
    CHECK(s8[0] == doctest::Approx(std::pow(4.0, 0.8) / std::pow(1.0, 0.2)));
    // All-zero activations (or weights): all ones, AMCT C++ semantics (the Python port crashes).
    for (float f : dmq_balance_factors({0.0f, 0.0f}, {1.0f, 2.0f})) CHECK(f == 1.0f);
    for (float f : dmq_balance_factors({3.0f, 1.0f}, {0.0f, 0.0f})) CHECK(f == 1.0f);
  }

  TEST_CASE("DMQ bad input: strength range, mismatched channels, non-finite, factor overflow") {
    CHECK_THROWS_WITH_AS(dmq_balance_factors({1.0f}, {1.0f}, 0.1f), doctest::Contains("migration_strength"), amctq::error);
    CHECK_THROWS_WITH_AS(dmq_balance_factors({1.0f}, {1.0f}, 0.9f), doctest::Contains("[0.2, 0.8]"), amctq::error);
    CHECK_THROWS_WITH_AS(dmq_balance_factors({1.0f, 2.0f}, {1.0f}), doctest::Contains("channels"), amctq::error);
    CHECK_THROWS_WITH_AS(dmq_balance_factors({std::numeric_limits<float>::quiet_NaN()}, {1.0f}),
                         doctest::Contains("activation absmax[0]"), amctq::error);
    CHECK_THROWS_AS(dmq_balance_factors({1e30f, 1.0f}, {1e-6f, 1.0f}, 0.8f), amctq::error);
    std::vector<float> w(16 * 8 * 9, 0.1f), x(8 * 25, 1.0f);
    const auto v = make_view(w.data(), {16, 8, 3, 3});
    const auto L = conv_weight_layout(v);
    w[5] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(channel_absmax(v, L, channel_side::input), doctest::Contains("NaN or infinite"), amctq::error);
    x[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(activation_channel_absmax(make_view(x.data(), {8, 25}), 0), amctq::error);
    CHECK_THROWS_WITH_AS(apply_balance(v, L, std::vector<float>(7, 1.0f)), doctest::Contains("input channels"),
                         amctq::error);
  }

  TEST_CASE("SmoothQuant alpha search beats plain W8A8 on outlier activations and is equivalent in float") {
    const std::ptrdiff_t M = 64, K = 32, N = 24;
    auto x = outlier_activations(K, M, 9u, true);
    auto w = amctq_test::random_weights(N * K, 10u);
    const auto v = make_view(w.data(), {N, K});
    const auto L = gemm_weight_layout(v, true);
    const auto r = smooth_quant_search(make_view(x.data(), {M, K}), v, L);
    CHECK(r.mse_per_alpha.size() == 11);
    for (double m : r.mse_per_alpha) CHECK(r.mse <= m);
    // Plain W8A8 (no smoothing) computed here from the kernels directly.
    auto xq = x;
    auto wq = w;
    const auto xr = minmax(make_view(xq.data(), {M * K}));
    const auto xv = make_view(xq.data(), {M * K});
    fake_quantize(tensor_view<const float, 1>(xv), xv, params_from_range(xr.min, xr.max, quant_spec{}, preset::amct));
    const auto wv = make_view(wq.data(), {N, K});
    arq_fake_quantize(wv, L, arq_params(wv, L));
    const auto ref = amctq_test::ref_matmul(x, M, K, w, N, true);
    const auto plain = amctq_test::ref_matmul(xq, M, K, wq, N, true);
    double plain_mse = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) plain_mse += (ref[i] - plain[i]) * (ref[i] - plain[i]);
    plain_mse /= static_cast<double>(ref.size());
    CHECK(r.mse < 0.5 * plain_mse);
    CHECK(r.alpha > 0.0f);
    // The chosen factors are an exact float transform too.
    apply_balance(v, L, r.factors);
    divide_channels(x, K, r.factors, true);
    CHECK(amctq_test::max_rel_diff(ref, amctq_test::ref_matmul(x, M, K, w, N, true)) < 1e-5);
    // Bad input.
    std::vector<float> x2(M * (K + 1));
    CHECK_THROWS_WITH_AS(smooth_quant_search(make_view(x2.data(), {M, K + 1}), v, L), doctest::Contains("input channels"),
                         amctq::error);
    smooth_quant_options bad;
    bad.alphas = {1.5f};
    CHECK_THROWS_WITH_AS(smooth_quant_search(make_view(x.data(), {M, K}), v, L, bad), doctest::Contains("alpha"),
                         amctq::error);
    smooth_quant_options bits;
    bits.activation_bits = 1;
    CHECK_THROWS_WITH_AS(smooth_quant_search(make_view(x.data(), {M, K}), v, L, bits),
                         doctest::Contains("smooth_quant_search: activation_bits"), amctq::error);
    bits.activation_bits = 8;
    bits.weight_bits = 40;
    CHECK_THROWS_WITH_AS(smooth_quant_search(make_view(x.data(), {M, K}), v, L, bits),
                         doctest::Contains("smooth_quant_search: weight_bits"), amctq::error);
    std::vector<float> cw(8 * 4 * 9);
    const auto cv = make_view(cw.data(), {8, 4, 3, 3});
    CHECK_THROWS_AS(smooth_quant_search(make_view(x.data(), {M, 4}), cv, conv_weight_layout(cv)), amctq::error);
  }
}

}  // namespace test_weight_balance
