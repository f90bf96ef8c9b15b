// Tensor-level entry points: per-tensor and per-channel along every axis, contiguous and
// strided views, the STE mask, packed int4, and the errors they raise.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "amctq/amctq.hpp"
#include "support/test_data.hpp"

namespace test_tensor_ops {

using namespace amctq;
using amctq_test::count_bit_mismatches;

namespace {

// Independent element formula written from the convention, not from the kernels.
float expected_fq(float x, float s, int zp, int qmin, int qmax, round_mode m) {
  float r = round_as(x / s, m) + static_cast<float>(zp);
  float c = r > qmin ? r : static_cast<float>(qmin);  // NaN -> qmin
  c = c < qmax ? c : static_cast<float>(qmax);
  return (c - static_cast<float>(zp)) * s;
}

quant_params channel_params(std::size_t channels, int axis, int qmin, int qmax) {
  quant_params p;
  p.axis = axis;
  p.qmin = qmin;
  p.qmax = qmax;
  for (std::size_t c = 0; c < channels; ++c) {
    p.scale.push_back(0.01f + 0.0137f * static_cast<float>(c));
    p.zero_point.push_back(qmin < 0 ? static_cast<int>(c % 5) - 2 : static_cast<int>(100 + c % 100));
  }
  return p;
}

}  // namespace

TEST_SUITE("kernels") {
  TEST_CASE("fake_quantize per-channel along every axis of a 3-D tensor matches the element formula") {
    const std::array<std::ptrdiff_t, 3> ext{5, 7, 19};
    const auto x = amctq_test::awkward_values(5 * 7 * 19, 0.02f, 42);
    for (int axis = 0; axis < 3; ++axis) {
      CAPTURE(axis);
      const auto p = channel_params(static_cast<std::size_t>(ext[axis]), axis, -128, 127);
      std::vector<float> y(x.size()), want(x.size());
      std::vector<std::uint8_t> mask((x.size() + 7) / 8);
      tensor_view<const float, 3> xv(x.data(), ext);
      fake_quantize(xv, tensor_view<float, 3>(y.data(), ext), p, round_mode::half_even, mask.data());
      std::size_t k = 0;
      for (std::ptrdiff_t i = 0; i < ext[0]; ++i)
        for (std::ptrdiff_t j = 0; j < ext[1]; ++j)
          for (std::ptrdiff_t l = 0; l < ext[2]; ++l, ++k) {
            const std::ptrdiff_t idx[3] = {i, j, l};
            const auto c = static_cast<std::size_t>(idx[axis]);
            want[k] = expected_fq(x[k], p.scale[c], p.zero_point[c], p.qmin, p.qmax, round_mode::half_even);
            const float r = std::nearbyint(x[k] / p.scale[c]) + static_cast<float>(p.zero_point[c]);
            const bool in = r >= p.qmin && r <= p.qmax;
            CHECK(((mask[k / 8] >> (k % 8)) & 1) == static_cast<int>(in));
          }
      CHECK(count_bit_mismatches(y, want) == 0);
    }
  }

  TEST_CASE("an innermost channel axis, short (folded into long runs) or long, matches the element formula") {
    for (auto shape : {std::array<std::ptrdiff_t, 2>{33, 3}, std::array<std::ptrdiff_t, 2>{1000, 28},
                       std::array<std::ptrdiff_t, 2>{4, 700}, std::array<std::ptrdiff_t, 2>{1, 5}}) {
      CAPTURE(shape[0]);
      CAPTURE(shape[1]);
      const auto x = amctq_test::awkward_values(static_cast<std::size_t>(shape[0] * shape[1]), 0.02f, 9);
      const auto p = channel_params(static_cast<std::size_t>(shape[1]), 1, 0, 255);
      std::vector<float> y(x.size()), want(x.size()), dq(x.size());
      std::vector<std::uint8_t> mask((x.size() + 7) / 8), q(x.size());
      fake_quantize(tensor_view<const float, 2>(x.data(), shape), tensor_view<float, 2>(y.data(), shape), p,
                    round_mode::half_away, mask.data());
      quantize(tensor_view<const float, 2>(x.data(), shape), tensor_view<std::uint8_t, 2>(q.data(), shape), p,
               round_mode::half_away);
      dequantize(tensor_view<const std::uint8_t, 2>(q.data(), shape), tensor_view<float, 2>(dq.data(), shape), p);
      for (std::size_t k = 0; k < x.size(); ++k) {
        const auto c = k % static_cast<std::size_t>(shape[1]);
        want[k] = expected_fq(x[k], p.scale[c], p.zero_point[c], p.qmin, p.qmax, round_mode::half_away);
        const float r = round_as(x[k] / p.scale[c], round_mode::half_away) + static_cast<float>(p.zero_point[c]);
        CHECK(((mask[k / 8] >> (k % 8)) & 1) == static_cast<int>(r >= p.qmin && r <= p.qmax));
      }
      CHECK(count_bit_mismatches(y, want) == 0);
      CHECK(count_bit_mismatches(dq, want) == 0);
    }
  }

  TEST_CASE("strided and negative-stride views give the same bits as their dense copies") {
    // A transposed view of a [6, 10] buffer, and a reversed slice of every other column.
    const auto buf = amctq_test::awkward_values(60, 0.05f, 7);
    const auto p = params_from_range(-3.0f, 2.0f, quant_spec{8, true, false});
    auto dense_of = [&](const tensor_view<const float, 2>& v) {
      std::vector<float> d;
      for (std::ptrdiff_t i = 0; i < v.extent(0); ++i)
        for (std::ptrdiff_t j = 0; j < v.extent(1); ++j) d.push_back(v(i, j));
      return d;
    };
    const tensor_view<const float, 2> views[] = {
        make_strided_view(buf.data(), {10, 6}, {1, 10}),
        make_strided_view(buf.data() + 59, {6, 5}, {-10, -2}),
    };
    for (const auto& v : views) {
      const auto d = dense_of(v);
      std::vector<float> got(d.size()), want(d.size());
      fake_quantize(v, make_view(got.data(), {v.extent(0), v.extent(1)}), p);
      fake_quantize(make_view(d.data(), {v.extent(0), v.extent(1)}), make_view(want.data(), {v.extent(0), v.extent(1)}), p);
      CHECK(count_bit_mismatches(got, want) == 0);
      std::vector<std::int8_t> q(d.size()), qd(d.size());
      quantize(v, make_view(q.data(), {v.extent(0), v.extent(1)}), p);
      quantize(make_view(d.data(), {v.extent(0), v.extent(1)}), make_view(qd.data(), {v.extent(0), v.extent(1)}), p);
      CHECK(q == qd);
      const auto r = minmax(v);
      const auto rd = minmax(make_view(d.data(), {static_cast<std::ptrdiff_t>(d.size())}));
      CHECK(r.min == rd.min);
      CHECK(r.max == rd.max);
      CHECK(r.nonfinite == rd.nonfinite);
    }
  }

  TEST_CASE("fake_quantize in place equals out of place") {
    auto x = amctq_test::awkward_values(1001, 0.1f, 3);
    std::vector<float> y(x.size());
    const auto p = params_from_range(-10.0f, 10.0f, quant_spec{});
    fake_quantize(make_view(x.data(), {1001}), make_view(y.data(), {1001}), p);
    fake_quantize(make_view(x.data(), {1001}), make_view(x.data(), {1001}), p);
    CHECK(count_bit_mismatches(x, y) == 0);
  }

  TEST_CASE("quantize -> dequantize equals fake_quantize for every code type") {
    const auto x = amctq_test::awkward_values(3000, 0.3f, 11);
    const auto run = [&](auto tag, quant_spec spec) {
      using Q = decltype(tag);
      spec.axis = 1;
      std::vector<float> mins(30, -20.0f), maxs(30, 35.0f);
      mins[3] = 0.0f;
      maxs[3] = 0.0f;  // a constant channel still gets a usable scale
      const auto p = params_from_range(mins, maxs, spec);
      std::vector<Q> q(x.size());
      std::vector<float> dq(x.size()), fq(x.size());
      quantize(make_view(x.data(), {100, 30}), make_view(q.data(), {100, 30}), p);
      dequantize(make_view(q.data(), {100, 30}), make_view(dq.data(), {100, 30}), p);
      fake_quantize(make_view(x.data(), {100, 30}), make_view(fq.data(), {100, 30}), p);
      CHECK(count_bit_mismatches(dq, fq) == 0);
    };
    run(std::int8_t{}, quant_spec{8, true, true});
    run(std::uint8_t{}, quant_spec{8, false, false});
    run(std::int16_t{}, quant_spec{16, true, true});
    run(std::uint16_t{}, quant_spec{16, false, false});
  }

  TEST_CASE("packed int4: nibble order, odd sizes, per-channel, round trip") {
    const float v[] = {1.0f, -1.0f, 7.0f, -8.0f, 100.0f};
    quant_params p = make_params(1.0f, 0, -8, 7);
    std::uint8_t packed[3] = {0xFF, 0xFF, 0xFF};
    quantize_int4(make_view(v, {5}), packed, p);
    CHECK(packed[0] == 0xF1);  // element 0 (1) low nibble, element 1 (-1 = 0xF) high nibble
    CHECK(packed[1] == 0x87);
    CHECK((packed[2] & 0x0F) == 0x07);  // 100 saturates to 7; the high nibble is not touched
    CHECK((packed[2] & 0xF0) == 0xF0);
    float back[5];
    dequantize_int4(packed, true, make_view(back, {5}), p);
    CHECK(back[0] == 1.0f);
    CHECK(back[1] == -1.0f);
    CHECK(back[3] == -8.0f);
    CHECK(back[4] == 7.0f);

    const auto x = amctq_test::awkward_values(3 * 37, 0.4f, 5, false);
    quant_spec spec{4, false, false};
    spec.axis = 0;
    const auto pc = params_from_range(std::vector<float>{-1, -2, 0}, std::vector<float>{3, 1, 6}, spec);
    std::vector<std::uint8_t> pk((x.size() + 1) / 2);
    quantize_int4(make_view(x.data(), {3, 37}), pk.data(), pc);
    std::vector<float> dq(x.size()), fq(x.size());
    dequantize_int4(pk.data(), false, make_view(dq.data(), {3, 37}), pc);
    fake_quantize(make_view(x.data(), {3, 37}), make_view(fq.data(), {3, 37}), pc);
    CHECK(count_bit_mismatches(dq, fq) == 0);
    // uint4 codes read as int4 would turn 12 into -4: refused, naming the storage.
    CHECK_THROWS_WITH_AS(dequantize_int4(pk.data(), true, make_view(dq.data(), {3, 37}), pc),
                         doctest::Contains("does not fit int4"), amctq::error);
  }

  TEST_CASE("documented edge semantics: NaN -> qmin, +-inf saturate, ties per round mode") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const float x[] = {nan, inf, -inf, 2.5f, -2.5f, 3.5f, 0.49999997f, -0.0f};
    const auto p = make_params(1.0f, 0, -128, 127);
    float y[8];
    std::uint8_t mask[1] = {0};
    fake_quantize(make_view(x, {8}), make_view(y, {8}), p, round_mode::half_even, mask);
    CHECK(y[0] == -128.0f);
    CHECK(y[1] == 127.0f);
    CHECK(y[2] == -128.0f);
    CHECK(y[3] == 2.0f);
    CHECK(y[4] == -2.0f);
    CHECK(y[5] == 4.0f);
    CHECK(y[6] == 0.0f);
    CHECK(mask[0] == 0xF8);  // NaN and the infinities are outside the grid; the rest inside
    fake_quantize(make_view(x, {8}), make_view(y, {8}), p, round_mode::half_away);
    CHECK(y[3] == 3.0f);
    CHECK(y[4] == -3.0f);
    CHECK(y[6] == 0.0f);  // floor(x + 0.5) would give 1 here
    fake_quantize(make_view(x, {8}), make_view(y, {8}), p, round_mode::half_up);
    CHECK(y[3] == 3.0f);
    CHECK(y[4] == -2.0f);
    fake_quantize(make_view(x, {8}), make_view(y, {8}), p, round_mode::half_down);
    CHECK(y[3] == 2.0f);
    CHECK(y[4] == -3.0f);
  }

  TEST_CASE("reductions: finite min/max, non-finite count, per-channel on every axis, empty") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> x = {1, -2, nan, 5, std::numeric_limits<float>::infinity(), 0, 3, -7, 2, 4, 6, -1};
    const auto r = minmax(make_view(x.data(), {12}));
    CHECK(r.min == -7.0f);
    CHECK(r.max == 6.0f);
    CHECK(r.nonfinite == 2);
    CHECK(absmax(make_view(x.data(), {12})) == 7.0f);
    const auto c0 = minmax_per_channel(make_view(x.data(), {3, 4}), 0);
    CHECK(c0.min == std::vector<float>{-2, -7, -1});
    CHECK(c0.max == std::vector<float>{5, 3, 6});
    CHECK(c0.nonfinite == 2);
    const auto c1 = minmax_per_channel(make_view(x.data(), {3, 4}), 1);
    CHECK(c1.min == std::vector<float>{1, -2, 3, -7});
    CHECK(c1.max == std::vector<float>{2, 4, 6, 5});
    const auto e = minmax(make_view(x.data(), {0}));
    CHECK(e.empty());
    CHECK(absmax(make_view(x.data(), {0})) == 0.0f);
  }

  TEST_CASE("bad arguments raise amctq::error naming the argument") {
    std::vector<float> x(12, 1.0f), y(12);
    const auto p = make_params(0.5f, 0, -128, 127);
    auto message_of = [](auto&& f) -> std::string {
      try {
        f();
      } catch (const amctq::error& e) {
        return e.what();
      }
      return "no error";
    };
    CHECK(message_of([&] { fake_quantize(make_view(x.data(), {3, 4}), make_view(y.data(), {4, 3}), p); })
              .find("shape_mismatch") != std::string::npos);
    for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
      const auto q = make_params(bad, 0, -128, 127);
      CHECK(message_of([&] { fake_quantize(make_view(x.data(), {12}), make_view(y.data(), {12}), q); }).find("scale[0]") !=
            std::string::npos);
    }
    quant_params pc = make_params(0.5f, 0, -128, 127);
    pc.axis = 2;
    CHECK(message_of([&] { fake_quantize(make_view(x.data(), {3, 4}), make_view(y.data(), {3, 4}), pc); }).find("axis 2") !=
          std::string::npos);
    pc.axis = 1;  // 1 channel for an extent of 4
    CHECK(message_of([&] { fake_quantize(make_view(x.data(), {3, 4}), make_view(y.data(), {3, 4}), pc); })
              .find("channels") != std::string::npos);
    const auto u = make_params(0.5f, 0, 0, 255);
    std::vector<std::int8_t> q(12);
    CHECK(message_of([&] { quantize(make_view(x.data(), {12}), make_view(q.data(), {12}), u); }).find("int8") !=
          std::string::npos);
    std::vector<std::uint8_t> packed(6);
    CHECK(message_of([&] { quantize_int4(make_view(x.data(), {12}), packed.data(), p); }).find("int4") !=
          std::string::npos);
    CHECK(message_of([&] { minmax_per_channel(make_view(x.data(), {12}), 1); }).find("axis") != std::string::npos);
    const auto zp_out = make_params(0.5f, 300, -128, 127);
    CHECK(message_of([&] { fake_quantize(make_view(x.data(), {12}), make_view(y.data(), {12}), zp_out); })
              .find("zero_point[0]") != std::string::npos);
  }
}

}  // namespace test_tensor_ops
