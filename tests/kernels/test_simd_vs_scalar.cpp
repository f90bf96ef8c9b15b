// Every SIMD arch this machine can run must give the scalar reference's bits, on awkward
// sizes, misaligned pointers, every round mode, with and without the STE mask; and the same
// histogram counts and out-of-range values, through the kernel and through the pow2_histogram
// entry points the observers call.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "amctq/algorithms/histogram.hpp"
#include "amctq/amctq.hpp"
#include "amctq/kernels/histogram.hpp"
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

// Histogram grids of the kernel's two binning cases: narrow bins (inv_width > 1), and bins
// wider than 1, where a tiny negative value times inv_width underflows to -0 and still belongs
// to bin -1 (the kernel's rule). awkward_values supplies NaN, +-inf, +-0, subnormals of both
// signs, 1e30 and -FLT_MAX (bin indices past int32: spilled), and ties on the grid.
struct grid {
  float inv_width, base;
  std::uint32_t bins;
};
const grid grids[] = {{32.0f, -128.0f, 256}, {1.0f / 16.0f, -8.0f, 16}};

// size awkward values (scale 0.07), copied from one pool made once from a start that depends on
// seed: the random draws would otherwise cost more than the histograms of all the archs.
inline std::vector<float> histogram_input(std::size_t size, std::size_t seed) {
  static const std::vector<float> pool = awkward_values(120000, 0.07f, 77);
  const std::size_t start = seed * 7919 % (pool.size() - size);
  return std::vector<float>(pool.begin() + static_cast<std::ptrdiff_t>(start),
                            pool.begin() + static_cast<std::ptrdiff_t>(start + size));
}

// The values of the row outside [lo, hi], NaN and inf included, in row order: what
// kernels::outside_values must collect on every path.
inline bool same_outside(const float* got, std::size_t got_n, const float* want, std::size_t want_n) {
  if (got_n != want_n) return false;
  for (std::size_t i = 0; i < got_n; ++i)
    if (!amctq_test::same_bits(got[i], want[i])) return false;
  return true;
}

template <class Arch>
void check_histogram_row(Arch arch, const std::string& name) {
  // Lengths past the read-ahead too: the unchecked loop needs more than 16384 readable values
  // ahead, and 40007 leaves a partial batch; offsets give a scalar head before the first
  // full-width boundary.
  std::vector<std::size_t> lengths(std::begin(counts), std::end(counts));
  lengths.insert(lengths.end(), {16384, 20000, 40007});
  for (const grid& g : grids) {
    for (std::size_t n : lengths) {
      for (std::size_t off : offsets) {
        for (std::size_t readable_after : {std::size_t{0}, std::size_t{17000}}) {
          CAPTURE(name);
          CAPTURE(g.inv_width);
          CAPTURE(n);
          CAPTURE(off);
          CAPTURE(readable_after);
          // The row ends where the allocation ends but for readable_after values: a read
          // further ahead is a heap overflow under the sanitizers.
          const std::vector<float> src = histogram_input(off + n + readable_after, n * 3 + off);
          const float* x = src.data() + off;
          std::vector<std::uint32_t> c_simd(g.bins + 1, 0), c_ref(g.bins + 1, 0), c_watch(g.bins + 1, 0);
          kernels::histogram_row(arch, x, n, g.inv_width, g.base, c_simd.data(), g.bins, readable_after);
          kernels::histogram_row(kernels::scalar_arch{}, x, n, g.inv_width, g.base, c_ref.data(), g.bins);
          CHECK(c_simd == c_ref);
          const float lo = -3.5f, hi = 2.25f;
          std::vector<float> out_simd(n + 1, 0.0f), out_ref(n + 1, 0.0f);
          kernels::outside_values w_simd{lo, hi, out_simd.data()}, w_ref{lo, hi, out_ref.data()};
          kernels::histogram_row(arch, x, n, g.inv_width, g.base, c_watch.data(), g.bins, readable_after, &w_simd);
          std::vector<std::uint32_t> c_watch_ref(g.bins + 1, 0);
          kernels::histogram_row(kernels::scalar_arch{}, x, n, g.inv_width, g.base, c_watch_ref.data(), g.bins, 0,
                                 &w_ref);
          CHECK(c_watch == c_ref);
          CHECK(c_watch_ref == c_ref);
          CHECK(same_outside(out_simd.data(), w_simd.count, out_ref.data(), w_ref.count));
        }
      }
    }
  }
}

inline bool same_state(const histogram_state& a, const histogram_state& b) {
  return a.capacity == b.capacity && a.exponent == b.exponent && a.base == b.base && a.counts == b.counts &&
         amctq_test::same_bits(a.min, b.min) && amctq_test::same_bits(a.max, b.max);
}

// The pow2_histogram entry points the observers call, with Arch against scalar_arch: add (a
// min/max pass then a count), accumulate (into the scratch table, with a read-ahead hint),
// accumulate_direct (strided too) and accumulate_watched (the fused pass: blocks that grow
// the grid and hand back their outside values).
template <class Arch>
void check_pow2_histogram(const std::string& name) {
  for (std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{1000}, std::size_t{40007}}) {
    for (std::size_t off : offsets) {
      CAPTURE(name);
      CAPTURE(n);
      CAPTURE(off);
      // Finite values spread over a few hundred bins (awkward_values' +-1e30 and -FLT_MAX would
      // put nearly all of them in one), with NaN and +-inf among them.
      auto v = histogram_input(off + n, n + off);
      for (float& x : v)
        if (std::abs(x) > 1e6f && std::abs(x) < std::numeric_limits<float>::infinity()) x = x > 0 ? -3.75f : 2.875f;
      const float* x = v.data() + off;
      auto both = [&](auto&& f) {
        pow2_histogram a(1024), b(1024);
        f(a, Arch{});
        f(b, kernels::scalar_arch{});
        CHECK(a.total() == b.total());
        CHECK(same_state(a.to_state(), b.to_state()));
      };
      both([&](pow2_histogram& h, auto arch) { h.add<decltype(arch)>(x, n); });
      both([&](pow2_histogram& h, auto arch) {
        h.cover(-4.0f, 3.0f);
        h.accumulate<decltype(arch)>(x, n / 2, n - n / 2);
        h.accumulate<decltype(arch)>(x + n / 2, n - n / 2);
        h.flush();
      });
      both([&](pow2_histogram& h, auto arch) {
        h.cover(-4.0f, 3.0f);
        h.accumulate_direct<decltype(arch)>(x, n);
        h.accumulate_direct<decltype(arch)>(x, n / 3, 3);
      });
      std::vector<float> out_a(n), out_b(n);
      std::size_t m_a = 0, m_b = 0;
      both([&](pow2_histogram& h, auto arch) {
        const bool simd = !std::is_same_v<decltype(arch), kernels::scalar_arch>;
        float* out = simd ? out_a.data() : out_b.data();
        std::size_t& m = simd ? m_a : m_b;
        h.cover(-0.25f, 0.25f);  // narrow: the blocks grow the grid
        for (std::size_t at = 0; at < n; at += 4096) {
          const std::size_t len = std::min<std::size_t>(4096, n - at);
          const std::size_t k = h.accumulate_watched<decltype(arch)>(x + at, len, -1.0f, 1.5f, out + m, n - at - len);
          m += k;
        }
        h.flush();
      });
      CHECK(same_outside(out_a.data(), m_a, out_b.data(), m_b));
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
      check_histogram_row(arch, name);
      check_pow2_histogram<decltype(arch)>(name);
    });
#if AMCTQ_HAS_XSIMD
    CHECK(archs >= 1);
#endif
  }
}

}  // namespace test_simd_vs_scalar
