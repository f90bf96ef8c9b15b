// searchN against a brute-force double-precision statement of AMCT's criterion (floor shift,
// int16 saturation), the smallest-N tie rule, batch-split invariance; and the AscendDequant
// uint64 packing round trip, bit positions and s19 truncation.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "amctq/algorithms/dequant_pack.hpp"
#include "amctq/algorithms/search_n.hpp"

namespace test_weight_search_n {

using namespace amctq;

namespace {
double ref_error(const std::vector<std::int32_t>& v, int n) {
  double e = 0;
  for (auto x : v) {
    double t = std::floor(static_cast<double>(x) / std::ldexp(1.0, n));
    t = std::fmin(std::fmax(t, -32768.0), 32767.0);
    const double d = t * std::ldexp(1.0, n) - x;
    e += d * d;
  }
  return e;
}
}  // namespace

TEST_SUITE("algorithms.weights") {
  TEST_CASE("searchN matches the brute-force criterion per channel") {
    std::mt19937 rng(3);
    const std::ptrdiff_t C = 6, P = 500;
    std::vector<std::int32_t> acc(static_cast<std::size_t>(C * P));
    for (std::ptrdiff_t c = 0; c < C; ++c) {
      std::normal_distribution<double> d(0.0, std::ldexp(1.0, static_cast<int>(8 + 3 * c)));
      for (std::ptrdiff_t j = 0; j < P; ++j) acc[static_cast<std::size_t>(j * C + c)] = static_cast<std::int32_t>(d(rng));
    }
    search_n_observer obs(static_cast<std::size_t>(C));
    obs.observe(make_view(acc.data(), {P, C}), 1);
    const auto n = obs.result();
    for (std::ptrdiff_t c = 0; c < C; ++c) {
      std::vector<std::int32_t> ch;
      for (std::ptrdiff_t j = 0; j < P; ++j) ch.push_back(acc[static_cast<std::size_t>(j * C + c)]);
      int best = 1;
      for (int k = 1; k <= 16; ++k) {
        CHECK(obs.errors(static_cast<std::size_t>(c))[static_cast<std::size_t>(k - 1)] == doctest::Approx(ref_error(ch, k)));
        if (ref_error(ch, k) < ref_error(ch, best)) best = k;
      }
      CHECK(n[static_cast<std::size_t>(c)] == best);
    }
    CHECK(n[0] < n[5]);  // wider accumulators need larger shifts
    // Split into two batches and merged: the same errors.
    search_n_observer a(static_cast<std::size_t>(C)), b(static_cast<std::size_t>(C));
    a.observe(make_view(acc.data(), {P / 2, C}), 1);
    b.observe(make_view(acc.data() + (P / 2) * C, {P - P / 2, C}), 1);
    a.merge(b);
    for (std::size_t c = 0; c < static_cast<std::size_t>(C); ++c)
      for (std::size_t k = 0; k < 16; ++k) CHECK(a.errors(c)[k] == doctest::Approx(obs.errors(c)[k]));
    CHECK(a.result() == n);
  }

  TEST_CASE("searchN: floor shift, saturation, smallest N on ties") {
    CHECK(search_n_observer::shift_error(-1, 1) == 1.0);   // floor(-0.5) = -1 -> -2
    CHECK(search_n_observer::shift_error(-3, 1) == 1.0);   // floor(-1.5) = -2 -> -4
    CHECK(search_n_observer::shift_error(3, 1) == 1.0);    // 1 -> 2
    CHECK(search_n_observer::shift_error(1 << 30, 15) == std::pow(static_cast<double>((1 << 30) - 32767 * 32768), 2));
    CHECK(search_n_observer::shift_error(1 << 30, 16) == 0.0);
    std::vector<std::int32_t> v = {4, -8, 0, 0};  // exact for N = 1 and N = 2
    search_n_observer obs(1);
    obs.observe(make_view(v.data(), {4, std::ptrdiff_t{1}}), 1);
    CHECK(obs.errors(0)[0] == 0.0);
    CHECK(obs.errors(0)[1] == 0.0);
    CHECK(obs.result()[0] == 1);
    std::vector<std::int32_t> z(10, 0);
    search_n_observer zo(2);
    zo.observe(make_view(z.data(), {2, std::ptrdiff_t{5}}), 0);
    CHECK(zo.result() == std::vector<int>{1, 1});
    std::vector<std::int32_t> big = {1 << 30, -(1 << 30)};
    search_n_observer bo(1);
    bo.observe(make_view(big.data(), {std::ptrdiff_t{1}, std::ptrdiff_t{2}}), 0);
    CHECK(bo.result()[0] == 16);
  }

  TEST_CASE("searchN from float outputs and bad input") {
    std::vector<float> y = {0.5f, -1.0f, 2.0f, 4.0f};
    search_n_observer obs(2);
    obs.observe_float(make_view(y.data(), {2, 2}), 1, {0.001f, 0.002f});
    search_n_observer ref(2);
    std::vector<std::int32_t> acc = {500, -500, 2000, 2000};
    ref.observe(make_view(acc.data(), {2, 2}), 1);
    for (std::size_t k = 0; k < 16; ++k) CHECK(obs.errors(0)[k] == ref.errors(0)[k]);
    for (std::size_t k = 0; k < 16; ++k) CHECK(obs.errors(1)[k] == ref.errors(1)[k]);
    CHECK_THROWS_WITH_AS(obs.observe_float(make_view(y.data(), {2, 2}), 1, {0.0f}), doctest::Contains("deq_scale[0]"),
                         amctq::error);
    CHECK_THROWS_WITH_AS(obs.observe(make_view(acc.data(), {4, std::ptrdiff_t{1}}), 1), doctest::Contains("channels"),
                         amctq::error);
    y[2] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(obs.observe_float(make_view(y.data(), {2, 2}), 1, {0.01f}), doctest::Contains("NaN"),
                         amctq::error);
    // The refused batch left nothing behind.
    for (std::size_t k = 0; k < 16; ++k) CHECK(obs.errors(0)[k] == ref.errors(0)[k]);
    for (std::size_t k = 0; k < 16; ++k) CHECK(obs.errors(1)[k] == ref.errors(1)[k]);
    search_n_observer three(3);
    CHECK_THROWS_AS(obs.merge(three), amctq::error);
  }

  TEST_CASE("AscendDequant uint64 packing: bit positions, round trip, s19") {
    const float s = 0.0123456789f;
    std::uint32_t sb;
    std::memcpy(&sb, &s, 4);
    const auto v = pack_dequant_param({s, 7, -3});
    CHECK((v & 0xFFFFFFFFull) == sb);
    CHECK(((v >> 32) & 0xFF) == 7);
    CHECK(((v >> 40) & 0xFF) == 0xFD);  // -3 as uint8
    CHECK((v >> 48) == 0);
    const auto p = unpack_dequant_param(v);
    CHECK(p.deq_scale == s);
    CHECK(p.shift_n == 7);
    CHECK(p.offset_w == -3);
    // s19: the low 13 bits cleared, value truncated toward zero, within 2^-10 relative.
    const float t = truncate_s19(s);
    std::uint32_t tb;
    std::memcpy(&tb, &t, 4);
    CHECK((tb & 0x1FFFu) == 0);
    CHECK(tb == (sb & 0xFFFFE000u));
    CHECK(t <= s);
    CHECK((s - t) / s < std::ldexp(1.0f, -10));
    CHECK(unpack_dequant_param(pack_dequant_param({s, 0, 0}, true)).deq_scale == t);
    const auto all = pack_dequant_params(0.5f, {0.25f, 0.125f}, {3, 4});
    CHECK(unpack_dequant_param(all[0]).deq_scale == 0.125f);
    CHECK(unpack_dequant_param(all[1]).shift_n == 4);
    CHECK_THROWS_WITH_AS(pack_dequant_param({s, 17, 0}), doctest::Contains("shift_n"), amctq::error);
    CHECK_THROWS_WITH_AS(pack_dequant_param({-1.0f, 0, 0}), doctest::Contains("deq_scale"), amctq::error);
    // A subnormal with no bit in the top 19 would be a zero scale on the device under s19; the
    // plain float keeps it.
    const float tiny = std::ldexp(1.0f, -140);
    CHECK_THROWS_WITH_AS(pack_dequant_param({tiny, 0, 0}, true), doctest::Contains("truncates to 0 in s19"),
                         amctq::error);
    CHECK(unpack_dequant_param(pack_dequant_param({tiny, 0, 0})).deq_scale == tiny);
    CHECK(unpack_dequant_param(pack_dequant_param({std::ldexp(1.0f, -136), 0, 0}, true)).deq_scale ==
          std::ldexp(1.0f, -136));
    CHECK_THROWS_WITH_AS(pack_dequant_param({s, 0, 200}), doctest::Contains("offset_w"), amctq::error);
    CHECK_THROWS_AS(unpack_dequant_param(1ull << 50), amctq::error);
    CHECK_THROWS_WITH_AS(unpack_dequant_param(std::uint64_t{17} << 32 | 0x3f800000u), doctest::Contains("shift_n 17"),
                         amctq::error);
    CHECK_THROWS_WITH_AS(pack_dequant_params(1.0f, {1.0f, 1.0f}, {0, 3}), doctest::Contains("all 0"), amctq::error);
    // Each factor is checked on its own (a product of two negatives is positive) and named.
    CHECK_THROWS_WITH_AS(pack_dequant_params(-0.5f, {-0.25f}), doctest::Contains("scale_d"), amctq::error);
    CHECK_THROWS_WITH_AS(pack_dequant_params(0.5f, {0.25f, -0.25f}), doctest::Contains("scale_w[1]"), amctq::error);
    CHECK_THROWS_WITH_AS(pack_dequant_params(1e-20f, {1e-10f, 1e-30f}), doctest::Contains("channel 1"), amctq::error);
  }
}

}  // namespace test_weight_search_n
