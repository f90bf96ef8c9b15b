// weight_layout and ARQ on real layer shapes (ResNet-18, MobileNet depthwise, R3D-18 Conv3d,
// DCGAN-style ConvTranspose, grouped ConvTranspose, Gemm with and without transB, MatMul):
// every per-channel scale must come from the elements the ONNX spec puts in that channel,
// checked against an independent index formula; plus bias quantization and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "algorithms/weight_test_util.hpp"
#include "amctq/algorithms/arq.hpp"

namespace test_weight_arq {

using namespace amctq;
using amctq_test::shape_t;

namespace {

struct layer_case {
  const char* name;
  weight_kind kind;
  shape_t shape;
  std::ptrdiff_t groups;
  bool trans_b;
};

template <std::size_t R>
weight_layout layout_of(const layer_case& c, float* data) {
  std::array<std::ptrdiff_t, R> e{};
  for (std::size_t r = 0; r < R; ++r) e[r] = c.shape[r];
  const tensor_view<float, R> v(data, e);
  if constexpr (R >= 3) {
    if (c.kind == weight_kind::conv) return conv_weight_layout(v, c.groups);
    if (c.kind == weight_kind::conv_transpose) return conv_transpose_weight_layout(v, c.groups);
  }
  if constexpr (R == 2) {
    if (c.kind == weight_kind::gemm) return gemm_weight_layout(v, c.trans_b);
  }
  return matmul_weight_layout(v);
}

weight_layout layout_for(const layer_case& c, float* data) {
  switch (c.shape.size()) {
    case 2: return layout_of<2>(c, data);
    case 3: return layout_of<3>(c, data);
    case 4: return layout_of<4>(c, data);
    default: return layout_of<5>(c, data);
  }
}

// A flat rank-1 view of the dense weight; ARQ entry points only need size and data.
tensor_view<float, 1> flat(std::vector<float>& w) { return make_view(w.data(), {static_cast<std::ptrdiff_t>(w.size())}); }

const std::vector<layer_case>& real_layers() {
  static const std::vector<layer_case> cases = {
      {"resnet18.conv1", weight_kind::conv, {64, 3, 7, 7}, 1, false},
      {"resnet18.layer2.0.conv1", weight_kind::conv, {128, 64, 3, 3}, 1, false},
      {"resnet18.layer2.0.downsample", weight_kind::conv, {128, 64, 1, 1}, 1, false},
      {"resnext.grouped_conv", weight_kind::conv, {128, 4, 3, 3}, 32, false},
      {"mobilenet_v2.depthwise", weight_kind::conv, {96, 1, 3, 3}, 96, false},
      {"conv1d", weight_kind::conv, {32, 16, 5}, 1, false},
      {"r3d_18.stem_conv3d", weight_kind::conv, {64, 3, 3, 7, 7}, 1, false},
      {"dcgan.convtranspose", weight_kind::conv_transpose, {128, 64, 4, 4}, 1, false},
      {"grouped.convtranspose", weight_kind::conv_transpose, {64, 12, 4, 4}, 4, false},
      {"convtranspose3d", weight_kind::conv_transpose, {16, 8, 2, 3, 3}, 2, false},
      {"resnet18.fc transB=1", weight_kind::gemm, {1000, 512}, 1, true},
      {"gemm transB=0", weight_kind::gemm, {512, 1000}, 1, false},
      {"bert.matmul", weight_kind::matmul, {768, 3072}, 1, false},
      {"batched.matmul", weight_kind::matmul, {2, 64, 48}, 1, false},
  };
  return cases;
}

// Per-element fake quant under the channel's (scale, zp) computed straight from the ranges.
float expected_fq(float x, float s, std::int32_t zp, std::int32_t qmin, std::int32_t qmax) {
  float q = std::nearbyint(x / s) + static_cast<float>(zp);
  q = std::fmin(std::fmax(q, static_cast<float>(qmin)), static_cast<float>(qmax));
  return (q - static_cast<float>(zp)) * s;
}

}  // namespace

TEST_SUITE("algorithms.weights") {
  TEST_CASE("weight_layout: channel counts and axes of real shapes") {
    for (const auto& c : real_layers()) {
      CAPTURE(c.name);
      std::vector<float> w(static_cast<std::size_t>(amctq_test::numel(c.shape)));
      const auto L = layout_for(c, w.data());
      std::ptrdiff_t max_oc = 0, max_ic = 0;
      for (std::ptrdiff_t i = 0; i < L.size; ++i) {
        const auto [oc, ic] = amctq_test::channels_of(c.kind, c.shape, c.groups, c.trans_b, i);
        max_oc = std::max(max_oc, oc);
        max_ic = std::max(max_ic, ic);
      }
      CHECK(L.out_channels() == max_oc + 1);
      CHECK(L.in_channels() == max_ic + 1);
      CHECK(L.size == amctq_test::numel(c.shape));
      // Every (out, in, spatial) index of every group addresses a distinct element, and the
      // element's channels agree with the spec formula.
      std::vector<int> seen(w.size(), 0);
      for (std::ptrdiff_t g = 0; g < L.groups; ++g) {
        const auto v = group_view(w.data(), L, g);
        for (std::ptrdiff_t o = 0; o < v.extent(0); ++o)
          for (std::ptrdiff_t i = 0; i < v.extent(1); ++i)
            for (std::ptrdiff_t k = 0; k < v.extent(2); ++k) {
              const auto off = &v(o, i, k) - w.data();
              REQUIRE(off >= 0);
              REQUIRE(off < L.size);
              ++seen[static_cast<std::size_t>(off)];
              const auto [oc, ic] = amctq_test::channels_of(c.kind, c.shape, c.groups, c.trans_b, off);
              REQUIRE(oc == g * L.out_per_group + o);
              REQUIRE(ic == g * L.in_per_group + i);
            }
      }
      for (int s : seen) REQUIRE(s == 1);
    }
    std::vector<float> w(64 * 3 * 7 * 7);
    CHECK(conv_weight_layout(make_view(w.data(), {64, 3, 7, 7})).out_axis == 0);
    CHECK(conv_transpose_weight_layout(make_view(w.data(), {64, 3, 7, 7})).out_axis == 1);
    CHECK(gemm_weight_layout(make_view(w.data(), {64, 147}), true).out_axis == 0);
    CHECK(gemm_weight_layout(make_view(w.data(), {64, 147}), false).out_axis == 1);
    CHECK(matmul_weight_layout(make_view(w.data(), {3, 64, 49})).out_axis == 2);
  }

  TEST_CASE("ARQ per-channel: scales come from the right output channel, every width and symmetry") {
    for (const auto& c : real_layers()) {
      CAPTURE(c.name);
      const auto n = amctq_test::numel(c.shape);
      auto w = amctq_test::random_weights(n, 7u);
      // Give each output channel its own magnitude so a wrong axis shows in the scales.
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        const auto oc = amctq_test::channels_of(c.kind, c.shape, c.groups, c.trans_b, i).first;
        w[static_cast<std::size_t>(i)] *= 1.0f + 0.37f * static_cast<float>(oc % 11);
      }
      const auto L = layout_for(c, w.data());
      std::vector<float> mins(static_cast<std::size_t>(L.out_channels()), 1e30f), maxs(mins.size(), -1e30f);
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        const auto oc = static_cast<std::size_t>(amctq_test::channels_of(c.kind, c.shape, c.groups, c.trans_b, i).first);
        mins[oc] = std::fmin(mins[oc], w[static_cast<std::size_t>(i)]);
        maxs[oc] = std::fmax(maxs[oc], w[static_cast<std::size_t>(i)]);
      }
      for (int bits : {2, 4, 6, 7, 8, 12, 16}) {
        for (bool sym : {true, false}) {
          CAPTURE(bits);
          CAPTURE(sym);
          arq_options cfg;
          cfg.bits = bits;
          cfg.symmetric = sym;
          const auto p = arq_params(flat(w), L, cfg);
          REQUIRE(p.channels() == mins.size());
          CHECK(p.axis == L.out_axis);
          quant_spec spec;
          spec.bits = bits;
          spec.symmetric = sym;
          spec.axis = 0;
          const auto want = params_from_range(mins, maxs, spec, preset::amct);
          for (std::size_t k = 0; k < mins.size(); ++k) {
            REQUIRE(p.scale[k] == want.scale[k]);
            REQUIRE(p.zero_point[k] == want.zero_point[k]);
          }
          if (bits == 8 || bits == 4) {
            auto fq = w;
            arq_fake_quantize(flat(fq), L, p);
            std::vector<std::int16_t> q(w.size());
            arq_quantize(tensor_view<const float, 1>(flat(w)), L, p, q.data());
            std::size_t bad = 0;
            for (std::ptrdiff_t i = 0; i < n; ++i) {
              const auto oc = static_cast<std::size_t>(amctq_test::channels_of(c.kind, c.shape, c.groups, c.trans_b, i).first);
              const float x = w[static_cast<std::size_t>(i)];
              bad += fq[static_cast<std::size_t>(i)] != expected_fq(x, p.scale[oc], p.zero_point[oc], p.qmin, p.qmax);
              bad += static_cast<float>(q[static_cast<std::size_t>(i)] - p.zero_point[oc]) * p.scale[oc] !=
                     fq[static_cast<std::size_t>(i)];
            }
            CHECK(bad == 0);
            // The calibration model makes its weights from int8 codes: the same floats, bit for bit.
            std::vector<std::int8_t> q8(w.size());
            arq_quantize(tensor_view<const float, 1>(flat(w)), L, p, q8.data());
            std::vector<float> dq(w.size(), -1.0f);
            arq_dequantize(q8.data(), flat(dq), L, p);
            CHECK(std::memcmp(dq.data(), fq.data(), fq.size() * sizeof(float)) == 0);
          }
        }
      }
    }
  }

  TEST_CASE("ARQ symmetric int8 uses 127 when max dominates and 128 when min dominates") {
    std::vector<float> w = {1.27f, -0.5f, 0.1f, 0.2f,   // channel 0: max dominates -> 1.27/127
                            0.3f, -1.28f, 0.1f, 0.0f};  // channel 1: min dominates -> 1.28/128
    const auto v = make_view(w.data(), {2, 4});
    const auto L = gemm_weight_layout(v, true);
    const auto p = arq_params(v, L);
    CHECK(p.scale[0] == doctest::Approx(0.01f));
    CHECK(p.scale[1] == doctest::Approx(0.01f));
    CHECK(p.zero_point[0] == 0);
    CHECK(p.scale[0] == 1.27f / 127.0f);
    CHECK(p.scale[1] == -1.28f / -128.0f);
    arq_options pt;
    pt.per_channel = false;
    const auto q = arq_params(v, L, pt);
    CHECK(q.channels() == 1);
    CHECK(q.axis == per_tensor);
    CHECK(q.scale[0] == -1.28f / -128.0f);
  }

  TEST_CASE("ARQ: all-zero output channel gets scale 1 (AMCT ProcessScale) and stays zero") {
    std::vector<float> w(8 * 4 * 3 * 3, 0.0f);
    for (std::size_t i = 36; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
    const auto v = make_view(w.data(), {8, 4, 3, 3});
    const auto L = conv_weight_layout(v);
    const auto p = arq_params(v, L);
    CHECK(p.scale[0] == 1.0f);
    CHECK(p.scale[1] != 1.0f);
    arq_fake_quantize(v, L, p);
    for (std::size_t i = 0; i < 36; ++i) REQUIRE(w[i] == 0.0f);
  }

  TEST_CASE("ARQ bad input: non-finite weights, wrong layout, bad width, mismatched params") {
    std::vector<float> w(16 * 8 * 3 * 3, 0.1f);
    const auto v = make_view(w.data(), {16, 8, 3, 3});
    const auto L = conv_weight_layout(v);
    w[100] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(arq_params(v, L), doctest::Contains("NaN or infinite"), amctq::error);
    arq_options pt;
    pt.per_channel = false;
    w[100] = std::numeric_limits<float>::infinity();
    try {
      arq_params(v, L, pt);
      FAIL("expected an error");
    } catch (const amctq::error& e) {
      CHECK(e.code() == errc::non_finite);
    }
    w[100] = 0.1f;
    arq_options bad;
    bad.bits = 1;
    CHECK_THROWS_WITH_AS(arq_params(v, L, bad), doctest::Contains("bits"), amctq::error);
    std::vector<float> other(10);
    CHECK_THROWS_AS(arq_params(make_view(other.data(), {10}), L), amctq::error);
    CHECK_THROWS_WITH_AS(conv_weight_layout(v, 3), doctest::Contains("groups"), amctq::error);
    auto p = arq_params(v, L);
    p.scale.pop_back();
    p.zero_point.pop_back();
    CHECK_THROWS_WITH_AS(arq_fake_quantize(v, L, p), doctest::Contains("output channels"), amctq::error);
  }

  TEST_CASE("bias quantization: round(b / (s_w * s_d)) per channel, overflow names the layer") {
    quant_params wp;
    wp.scale = {0.01f, 0.02f, 0.5f};
    wp.zero_point = {0, 0, 0};
    wp.axis = 0;
    const float b[3] = {0.25f, -0.3f, 1.0f};
    const auto q = quantize_bias(b, 3, 0.1f, wp, "conv1");
    CHECK(q[0] == static_cast<std::int32_t>(std::nearbyint(0.25 / (0.01f * 0.1))));
    CHECK(q[1] == static_cast<std::int32_t>(std::nearbyint(-0.3 / (0.02f * 0.1))));
    CHECK(q[2] == 20);
    // Ties: half_even by default, half_away on request.
    const float tie[2] = {2.5f, -2.5f};
    const auto one = make_params(1.0f, 0, -128, 127);
    CHECK(quantize_bias(tie, 2, 1.0f, one, "t")[0] == 2);
    CHECK(quantize_bias(tie, 2, 1.0f, one, "t")[1] == -2);
    CHECK(quantize_bias(tie, 2, 1.0f, one, "t", round_mode::half_away)[0] == 3);
    CHECK(quantize_bias(tie, 2, 1.0f, one, "t", round_mode::half_away)[1] == -3);
    const float huge[1] = {1e6f};
    const auto tiny = make_params(1e-4f, 0, -128, 127);
    try {
      quantize_bias(huge, 1, 1e-3f, tiny, "layer4.1.conv2");
      FAIL("expected overflow");
    } catch (const amctq::error& e) {
      CHECK(e.code() == errc::overflow);
      CHECK(std::string(e.what()).find("layer4.1.conv2") != std::string::npos);
    }
    const float nan[1] = {std::numeric_limits<float>::quiet_NaN()};
    CHECK_THROWS_WITH_AS(quantize_bias(nan, 1, 1.0f, one, "fc"), doctest::Contains("bias[0]"), amctq::error);
    CHECK_THROWS_WITH_AS(quantize_bias(b, 2, 0.1f, wp, "fc"), doctest::Contains("channels"), amctq::error);
    CHECK_THROWS_WITH_AS(quantize_bias(b, 3, 0.0f, wp, "fc"), doctest::Contains("scale_d"), amctq::error);
  }
}

TEST_SUITE("algorithms.weights") {
TEST_CASE("weight_layout traversals: padded (non-dense) views equal the dense tensor") {
  // [8, 4, 3, 3] stored with the in-channel stride padded to 10 and the out stride to 41, so
  // neither neighbour of the spatial dims merges with it.
  const std::ptrdiff_t O = 8, I = 4;
  auto dense = amctq_test::random_weights(O * I * 9, 31u);
  std::vector<float> padded(static_cast<std::size_t>(O * 41), 99.0f);
  for (std::ptrdiff_t o = 0; o < O; ++o)
    for (std::ptrdiff_t i = 0; i < I; ++i)
      for (std::ptrdiff_t k = 0; k < 9; ++k)
        padded[static_cast<std::size_t>(o * 41 + i * 10 + k)] = dense[static_cast<std::size_t>((o * I + i) * 9 + k)];
  const auto dv = make_view(dense.data(), {O, I, 3, 3});
  const auto pv = make_strided_view(padded.data(), {O, I, 3, 3}, {41, 10, 3, 1});
  for (int g : {1, 2}) {
    const auto Ld = conv_weight_layout(dv, g), Lp = conv_weight_layout(pv, g);
    for (auto side : {channel_side::output, channel_side::input}) {
      CHECK(channel_absmax(dv, Ld, side) == channel_absmax(pv, Lp, side));
      std::vector<float> f(static_cast<std::size_t>(Ld.channels(side)));
      for (std::size_t c = 0; c < f.size(); ++c) f[c] = 0.5f + static_cast<float>(c);
      scale_channels(dv, Ld, side, f);
      scale_channels(pv, Lp, side, f);
    }
  }
  std::size_t bad = 0;
  for (std::ptrdiff_t o = 0; o < O; ++o)
    for (std::ptrdiff_t i = 0; i < I; ++i)
      for (std::ptrdiff_t k = 0; k < 10; ++k) {
        const float p = padded[static_cast<std::size_t>(o * 41 + i * 10 + k)];
        bad += k == 9 ? p != 99.0f : p != dense[static_cast<std::size_t>((o * I + i) * 9 + k)];
      }
  CHECK(bad == 0);
  // A zero, negative or NaN factor is refused, naming it, before anything is written.
  const auto L = conv_weight_layout(dv, 1);
  const std::vector<float> before = dense;
  for (float f : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN()}) {
    std::vector<float> fs(static_cast<std::size_t>(L.out_channels()), 1.0f);
    fs.back() = f;
    CHECK_THROWS_WITH_AS(scale_channels(dv, L, channel_side::output, fs), doctest::Contains("factor["), amctq::error);
  }
  CHECK(dense == before);
}
}  // TEST_SUITE

}  // namespace test_weight_arq
