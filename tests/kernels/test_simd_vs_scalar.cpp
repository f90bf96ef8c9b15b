// Every SIMD arch this machine can run must give the scalar reference's bits, on awkward
// sizes, misaligned pointers, every round mode, with and without the STE mask.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "amctq/amctq.hpp"
#include "support/test_data.hpp"

namespace test_simd_vs_scalar {

using namespace amctq;
using amctq_test::awkward_values;
using amctq_test::count_bit_mismatches;

namespace {

const std::size_t counts[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 1000, 4099};
const std::size_t offsets[] = {0, 1, 3};

#if AMCTQ_HAS_XSIMD
template <class F>
void for_each_runnable_arch(F&& f) {
  const unsigned best = xsimd::available_architectures().best;
  xsimd::supported_architectures::for_each([&](auto arch) {
    if (decltype(arch)::version() <= best) f(arch);
  });
}
#else
template <class F>
void for_each_runnable_arch(F&&) {}
#endif

template <class Arch, round_mode M>
void check_fake_quantize(Arch arch, const std::string& name) {
  const float scale = 0.0371f;
  std::vector<float> chan_scale(4200), chan_zero(4200);
  for (std::size_t i = 0; i < chan_scale.size(); ++i) {
    chan_scale[i] = scale * (1.0f + 0.37f * static_cast<float>(i % 7));
    chan_zero[i] = static_cast<float>(static_cast<int>(i % 11) - 5);
  }
  for (std::size_t n : counts) {
    for (std::size_t off : offsets) {
      const auto src = awkward_values(n + off, scale, static_cast<unsigned>(n * 7 + off));
      const float* x = src.data() + off;
      for (std::size_t bit0 : {std::size_t{0}, std::size_t{3}}) {
        CAPTURE(name);
        CAPTURE(n);
        CAPTURE(off);
        CAPTURE(bit0);
        CAPTURE(to_string(M));
        const kernels::uniform_grid ug{scale, 3.0f, -128.0f, 127.0f};
        const kernels::lane_grid lg{chan_scale.data(), chan_zero.data(), -8.0f, 7.0f};
        std::vector<float> y_simd(n + 1), y_ref(n + 1);
        std::vector<std::uint8_t> m_simd((n + bit0) / 8 + 2, 0xA5), m_ref((n + bit0) / 8 + 2, 0xA5);
        kernels::fake_quantize_row<M>(arch, x, y_simd.data() + 1, n, ug, m_simd.data(), bit0);
        kernels::fake_quantize_row<M>(kernels::scalar_arch{}, x, y_ref.data() + 1, n, ug, m_ref.data(), bit0);
        CHECK(count_bit_mismatches(y_simd, y_ref) == 0);
        CHECK(m_simd == m_ref);
        // The non-temporal store path (used for outputs of 32 MiB and more) must not change a bit.
        std::fill(m_simd.begin(), m_simd.end(), std::uint8_t{0xA5});
        kernels::fake_quantize_row<M>(arch, x, y_simd.data() + 1, n, ug, m_simd.data(), bit0, /*stream=*/true);
        kernels::detail::stream_fence();
        CHECK(count_bit_mismatches(y_simd, y_ref) == 0);
        CHECK(m_simd == m_ref);
        kernels::fake_quantize_row<M>(arch, x, y_simd.data(), n, lg);
        kernels::fake_quantize_row<M>(kernels::scalar_arch{}, x, y_ref.data(), n, lg);
        CHECK(count_bit_mismatches(y_simd, y_ref) == 0);
      }
    }
  }
}

template <class Arch, class Q>
void check_quantize_dequantize(Arch arch, float lo, float hi, const std::string& name) {
  const float scale = 0.0213f;
  for (std::size_t n : counts) {
    for (std::size_t off : offsets) {
      CAPTURE(name);
      CAPTURE(n);
      CAPTURE(off);
      const auto src = awkward_values(n + off, scale, static_cast<unsigned>(n * 13 + off));
      const kernels::uniform_grid g{scale, lo < 0 ? -2.0f : 100.0f, lo, hi};
      std::vector<Q> q_simd(n + off), q_ref(n + off);
      kernels::quantize_row<round_mode::half_even>(arch, src.data() + off, q_simd.data() + off, n, g);
      kernels::quantize_row<round_mode::half_even>(kernels::scalar_arch{}, src.data() + off, q_ref.data() + off, n, g);
      CHECK(q_simd == q_ref);
      std::vector<float> d_simd(n), d_ref(n);
      kernels::dequantize_row(arch, q_ref.data() + off, d_simd.data(), n, g);
      kernels::dequantize_row(kernels::scalar_arch{}, q_ref.data() + off, d_ref.data(), n, g);
      CHECK(count_bit_mismatches(d_simd, d_ref) == 0);
    }
  }
}

template <class Arch>
void check_minmax(Arch arch, const std::string& name) {
  for (std::size_t n : counts) {
    for (bool nonfinite : {false, true}) {
      CAPTURE(name);
      CAPTURE(n);
      const auto src = awkward_values(n + 1, 0.5f, static_cast<unsigned>(n), nonfinite);
      value_range a, b;
      kernels::minmax_row(arch, src.data() + 1, n, a);
      kernels::minmax_row(kernels::scalar_arch{}, src.data() + 1, n, b);
      CHECK(amctq_test::same_bits(a.min, b.min));
      CHECK(amctq_test::same_bits(a.max, b.max));
      CHECK(a.nonfinite == b.nonfinite);
      std::vector<float> mins_a(n, 1e38f), maxs_a(n, -1e38f), mins_b = mins_a, maxs_b = maxs_a;
      std::size_t bad_a = 0, bad_b = 0;
      kernels::minmax_lanes(arch, src.data() + 1, n, mins_a.data(), maxs_a.data(), bad_a);
      kernels::minmax_lanes(kernels::scalar_arch{}, src.data() + 1, n, mins_b.data(), maxs_b.data(), bad_b);
      CHECK(count_bit_mismatches(mins_a, mins_b) == 0);
      CHECK(count_bit_mismatches(maxs_a, maxs_b) == 0);
      CHECK(bad_a == bad_b);
    }
  }
}

}  // namespace

TEST_SUITE("kernels") {
  TEST_CASE("SIMD archs reproduce the scalar reference bit for bit") {
    int archs = 0;
    for_each_runnable_arch([&](auto arch) {
      ++archs;
      const std::string name = decltype(arch)::name();
      MESSAGE("checking arch ", name);
      check_fake_quantize<decltype(arch), round_mode::half_even>(arch, name);
      check_fake_quantize<decltype(arch), round_mode::half_away>(arch, name);
      check_fake_quantize<decltype(arch), round_mode::half_up>(arch, name);
      check_fake_quantize<decltype(arch), round_mode::half_down>(arch, name);
      check_quantize_dequantize<decltype(arch), std::int8_t>(arch, -128.0f, 127.0f, name);
      check_quantize_dequantize<decltype(arch), std::uint8_t>(arch, 0.0f, 255.0f, name);
      check_quantize_dequantize<decltype(arch), std::int16_t>(arch, -32768.0f, 32767.0f, name);
      check_quantize_dequantize<decltype(arch), std::uint16_t>(arch, 0.0f, 65535.0f, name);
      check_minmax(arch, name);
    });
#if AMCTQ_HAS_XSIMD
    CHECK(archs >= 1);
#endif
  }
}

}  // namespace test_simd_vs_scalar
