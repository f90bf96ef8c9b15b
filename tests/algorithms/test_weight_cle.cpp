// Cross-layer equalisation and bias correction: CLE keeps the float outputs of Conv→ReLU→Conv,
// Gemm→ReLU→MatMul, ReLU6 with the reported per-channel clip, and depthwise triplets (1e-5
// relative, reference layers in the test), and equalises the ranges; bias correction removes
// the mean output shift of 4-bit weights; bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "algorithms/weight_test_util.hpp"
#include "amctq/algorithms/arq.hpp"
#include "amctq/algorithms/bias_correction.hpp"
#include "amctq/algorithms/cle.hpp"

namespace test_weight_cle {

using namespace amctq;
using amctq_test::shape_t;

namespace {

std::vector<float> activate(const std::vector<double>& y, std::ptrdiff_t channels, cle_activation act,
                            const std::vector<float>& clip = {}) {
  std::vector<float> out(y.size());
  const std::ptrdiff_t per = static_cast<std::ptrdiff_t>(y.size()) / channels;
  for (std::size_t i = 0; i < y.size(); ++i) {
    double v = y[i];
    if (act != cle_activation::identity) v = std::fmax(v, 0.0);
    if (act == cle_activation::relu6) v = std::fmin(v, clip.empty() ? 6.0 : clip[i / static_cast<std::size_t>(per)]);
    out[i] = static_cast<float>(v);
  }
  return out;
}

// Weights whose output-channel ranges differ by 100x, the case CLE exists for.
std::vector<float> skewed_weights(std::ptrdiff_t n, std::ptrdiff_t channels, unsigned seed) {
  auto w = amctq_test::random_weights(n, seed, 0.3f);
  const std::ptrdiff_t per = n / channels;
  for (std::ptrdiff_t c = 0; c < channels; ++c)
    for (std::ptrdiff_t j = 0; j < per; ++j) w[static_cast<std::size_t>(c * per + j)] *= c % 4 == 0 ? 10.0f : 0.1f;
  return w;
}

}  // namespace

TEST_SUITE("algorithms.weights") {
  TEST_CASE("CLE Conv -> ReLU / identity / ReLU6 -> Conv is exact and equalises ranges") {
    for (auto act : {cle_activation::relu, cle_activation::identity, cle_activation::relu6}) {
      CAPTURE(static_cast<int>(act));
      const shape_t s1 = {16, 8, 3, 3}, s2 = {12, 16, 3, 3}, xs = {8, 9, 9};
      auto w1 = skewed_weights(amctq_test::numel(s1), 16, 1u);
      auto w2 = amctq_test::random_weights(amctq_test::numel(s2), 2u, 0.3f);
      auto b1 = amctq_test::random_weights(16, 3u, 1.0f);
      const auto x = amctq_test::random_weights(amctq_test::numel(xs), 4u, 3.0f);
      const shape_t hs = {16, 7, 7};
      const auto before = amctq_test::ref_conv(activate(amctq_test::ref_conv(x, xs, w1, s1, 1, &b1), 16, act), hs, w2, s2, 1);
      const auto v1 = make_view(w1.data(), {16, 8, 3, 3});
      const auto v2 = make_view(w2.data(), {12, 16, 3, 3});
      const auto L1 = conv_weight_layout(v1), L2 = conv_weight_layout(v2);
      const auto r = equalize_pair(v1, L1, b1.data(), b1.size(), v2, L2, act);
      CHECK(r.scale.size() == 16);
      CHECK(r.relu6_clip.size() == (act == cle_activation::relu6 ? 16u : 0u));
      const auto after = amctq_test::ref_conv(
          activate(amctq_test::ref_conv(x, xs, w1, s1, 1, &b1), 16, act, r.relu6_clip), hs, w2, s2, 1);
      CHECK(amctq_test::max_rel_diff(before, after) < 1e-5);
      const auto o1 = channel_absmax(v1, L1, channel_side::output), i2 = channel_absmax(v2, L2, channel_side::input);
      for (std::size_t c = 0; c < 16; ++c) CHECK(o1[c] == doctest::Approx(i2[c]).epsilon(1e-5));
    }
  }

  TEST_CASE("CLE Gemm(transB) -> ReLU -> MatMul and a zero channel") {
    const std::ptrdiff_t M = 10, K = 12, H = 8, N = 6;
    auto w1 = skewed_weights(H * K, H, 5u);  // [H, K] transB
    for (std::ptrdiff_t k = 0; k < K; ++k) w1[static_cast<std::size_t>(2 * K + k)] = 0.0f;  // dead channel 2
    auto w2 = amctq_test::random_weights(H * N, 6u, 0.3f);  // MatMul [H, N]
    const auto x = amctq_test::random_weights(M * K, 7u, 1.0f);
    const auto before = amctq_test::ref_matmul(activate(amctq_test::ref_matmul(x, M, K, w1, H, true), 1,
                                                        cle_activation::relu), M, H, w2, N, false);
    const auto v1 = make_view(w1.data(), {H, K});
    const auto v2 = make_view(w2.data(), {H, N});
    const auto r = equalize_pair(v1, gemm_weight_layout(v1, true), nullptr, 0, v2, matmul_weight_layout(v2));
    CHECK(r.scale[2] == 1.0f);
    for (float s : r.scale) CHECK(std::isfinite(s));
    const auto after = amctq_test::ref_matmul(activate(amctq_test::ref_matmul(x, M, K, w1, H, true), 1,
                                                       cle_activation::relu), M, H, w2, N, false);
    CHECK(amctq_test::max_rel_diff(before, after) < 1e-5);
  }

  TEST_CASE("CLE depthwise triplet (MobileNet block) is exact and equalises all three ranges") {
    for (auto act : {cle_activation::relu, cle_activation::relu6}) {
      const std::ptrdiff_t C = 12;
      const shape_t s1 = {C, 6, 1, 1}, s2 = {C, 1, 3, 3}, s3 = {10, C, 1, 1}, xs = {6, 8, 8};
      auto w1 = skewed_weights(amctq_test::numel(s1), C, 8u);
      auto w2 = skewed_weights(amctq_test::numel(s2), C, 9u);
      auto w3 = amctq_test::random_weights(amctq_test::numel(s3), 10u, 0.3f);
      auto b1 = amctq_test::random_weights(C, 11u, 1.0f), b2 = amctq_test::random_weights(C, 12u, 1.0f);
      const auto x = amctq_test::random_weights(amctq_test::numel(xs), 13u, 2.0f);
      auto run = [&](const std::vector<float>& c1, const std::vector<float>& c2) {
        const auto h1 = activate(amctq_test::ref_conv(x, xs, w1, s1, 1, &b1), C, act, c1);
        const auto h2 = activate(amctq_test::ref_conv(h1, {C, 8, 8}, w2, s2, C, &b2), C, act, c2);
        return amctq_test::ref_conv(h2, {C, 6, 6}, w3, s3, 1);
      };
      const auto before = run({}, {});
      const auto v1 = make_view(w1.data(), {C, 6, 1, 1});
      const auto v2 = make_view(w2.data(), {C, 1, 3, 3});
      const auto v3 = make_view(w3.data(), {10, C, 1, 1});
      const auto L1 = conv_weight_layout(v1), L2 = conv_weight_layout(v2, C), L3 = conv_weight_layout(v3);
      const auto r = equalize_depthwise_triplet(v1, L1, b1.data(), b1.size(), v2, L2, b2.data(), b2.size(), v3, L3, act);
      CHECK(amctq_test::max_rel_diff(before, run(r.relu6_clip, r.relu6_clip2)) < 1e-5);
      const auto a = channel_absmax(v1, L1, channel_side::output), b = channel_absmax(v2, L2, channel_side::output),
                 c = channel_absmax(v3, L3, channel_side::input);
      for (std::ptrdiff_t k = 0; k < C; ++k) {
        CHECK(a[static_cast<std::size_t>(k)] == doctest::Approx(b[static_cast<std::size_t>(k)]).epsilon(1e-5));
        CHECK(b[static_cast<std::size_t>(k)] == doctest::Approx(c[static_cast<std::size_t>(k)]).epsilon(1e-5));
      }
    }
  }

  TEST_CASE("CLE bad input: mismatched channels, non-depthwise middle, non-finite, bias size") {
    std::vector<float> w1(16 * 8 * 9, 0.1f), w2(12 * 15 * 9, 0.1f), w3(12 * 16 * 9, 0.1f);
    const auto v1 = make_view(w1.data(), {16, 8, 3, 3});
    const auto v2 = make_view(w2.data(), {12, 15, 3, 3});
    const auto v3 = make_view(w3.data(), {12, 16, 3, 3});
    const auto L1 = conv_weight_layout(v1), L2 = conv_weight_layout(v2), L3 = conv_weight_layout(v3);
    CHECK_THROWS_WITH_AS(equalize_pair(v1, L1, nullptr, 0, v2, L2), doctest::Contains("16 output channels"), amctq::error);
    std::vector<float> b(15);
    CHECK_THROWS_WITH_AS(equalize_pair(v1, L1, b.data(), b.size(), v3, L3), doctest::Contains("bias1"), amctq::error);
    CHECK_THROWS_WITH_AS(equalize_depthwise_triplet(v1, L1, nullptr, 0, v3, L3, nullptr, 0, v3, L3),
                         doctest::Contains("depthwise"), amctq::error);
    w3[7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(equalize_pair(v1, L1, nullptr, 0, v3, L3), doctest::Contains("layer2 weights"), amctq::error);
  }

  TEST_CASE("bias correction removes the mean output shift of 4-bit weights") {
    const std::ptrdiff_t M = 256, K = 64, N = 16;
    auto w = amctq_test::random_weights(N * K, 20u, 0.1f);
    for (std::ptrdiff_t n = 0; n < N; ++n) w[static_cast<std::size_t>(n * K)] = 0.9f;  // coarse grid for the rest
    auto x = amctq_test::random_weights(M * K, 21u, 1.0f);
    for (auto& v : x) v = std::fabs(v) + 0.5f;  // post-ReLU-like inputs with a nonzero mean
    auto wq = w;
    const auto wv = make_view(wq.data(), {N, K});
    const auto L = gemm_weight_layout(wv, true);
    arq_options c4;
    c4.bits = 4;
    arq_fake_quantize(wv, L, arq_params(wv, L, c4));
    auto to_f = [](const std::vector<double>& d) { return std::vector<float>(d.begin(), d.end()); };
    const auto yf = to_f(amctq_test::ref_matmul(x, M, K, w, N, true));
    const auto yq = to_f(amctq_test::ref_matmul(x, M, K, wq, N, true));
    channel_mean_observer mf(N), mq(N), half1(N), half2(N);
    mf.observe(make_view(yf.data(), {M, N}), 1);
    mq.observe(make_view(yq.data(), {M, N}), 1);
    half1.observe(make_view(yq.data(), {M / 2, N}), 1);
    half2.observe(make_view(yq.data() + (M / 2) * N, {M - M / 2, N}), 1);
    half1.merge(half2);
    for (std::size_t n = 0; n < static_cast<std::size_t>(N); ++n)
      CHECK(half1.result()[n] == doctest::Approx(mq.result()[n]).epsilon(1e-12));
    const std::vector<float> bias(static_cast<std::size_t>(N), 0.25f);
    const auto nb = corrected_bias(bias, mf.result(), mq.result());
    // On held-out data the corrected layer's mean error is much smaller than the uncorrected one.
    auto x2 = amctq_test::random_weights(M * K, 22u, 1.0f);
    for (auto& v : x2) v = std::fabs(v) + 0.5f;
    const auto f2 = amctq_test::ref_matmul(x2, M, K, w, N, true), q2 = amctq_test::ref_matmul(x2, M, K, wq, N, true);
    double before = 0, after = 0;
    for (std::ptrdiff_t n = 0; n < N; ++n) {
      double d0 = 0, d1 = 0;
      for (std::ptrdiff_t m = 0; m < M; ++m) {
        const auto i = static_cast<std::size_t>(m * N + n);
        d0 += (q2[i] + 0.25) - (f2[i] + 0.25);
        d1 += (q2[i] + nb[static_cast<std::size_t>(n)]) - (f2[i] + 0.25);
      }
      before += std::fabs(d0 / M);
      after += std::fabs(d1 / M);
    }
    CHECK(after < 0.3 * before);
    // Channel axis 0 (NCHW-like [C, pixels]) gives the same means as the transposed layout.
    std::vector<float> yt(yq.size());
    for (std::ptrdiff_t m = 0; m < M; ++m)
      for (std::ptrdiff_t n = 0; n < N; ++n) yt[static_cast<std::size_t>(n * M + m)] = yq[static_cast<std::size_t>(m * N + n)];
    channel_mean_observer mt(N);
    mt.observe(make_view(yt.data(), {N, M}), 0);
    for (std::size_t n = 0; n < static_cast<std::size_t>(N); ++n)
      CHECK(mt.result()[n] == doctest::Approx(mq.result()[n]).epsilon(1e-9));
    // Bad input.
    CHECK_THROWS_WITH_AS(mf.observe(make_view(yf.data(), {N, M}), 1), doctest::Contains("channels"), amctq::error);
    CHECK_THROWS_WITH_AS(corrected_bias(std::vector<float>(3), mf.result(), mq.result()), doctest::Contains("bias"),
                         amctq::error);
    CHECK_THROWS_WITH_AS(corrected_bias({3e38f}, {3e38}, {0.0}), doctest::Contains("finite float"), amctq::error);
    channel_mean_observer empty(2);
    CHECK_THROWS_WITH_AS(empty.result(), doctest::Contains("no observations"), amctq::error);
    auto bad = yf;
    bad[5] = std::numeric_limits<float>::infinity();
    channel_mean_observer mb(N);
    CHECK_THROWS_WITH_AS(mb.observe(make_view(bad.data(), {M, N}), 1), doctest::Contains("NaN"), amctq::error);
    // The refused batch left nothing behind: the next one alone gives the means.
    mb.observe(make_view(yf.data(), {M, N}), 1);
    for (std::size_t n = 0; n < static_cast<std::size_t>(N); ++n) CHECK(mb.result()[n] == mf.result()[n]);
  }
}

}  // namespace test_weight_cle
