// The power-of-two histogram: kernel SIMD == scalar, exact counts, exact merging, order and
// batching independence, state round trip, and the resampling the searches read.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "amctq/algorithms/detail/select.hpp"
#include "amctq/algorithms/histogram.hpp"
#include "amctq/algorithms/histogram_moments.hpp"
#include "amctq/algorithms/extreme_values.hpp"
#include "amctq/kernels/histogram.hpp"

namespace test_activation_histogram {

using namespace amctq;

namespace {

std::vector<float> normal_data(std::size_t n, unsigned seed, float sigma = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Independent oracle: bin by exact floor division in double.
std::vector<std::uint64_t> oracle_counts(const std::vector<float>& v, int e, std::int64_t base, std::size_t bins) {
  std::vector<std::uint64_t> c(bins, 0);
  for (float x : v) {
    if (!std::isfinite(x)) continue;
    const auto j = static_cast<std::int64_t>(std::floor(std::ldexp(static_cast<double>(x), -e)));
    if (j - base >= 0 && j - base < static_cast<std::int64_t>(bins)) ++c[static_cast<std::size_t>(j - base)];
  }
  return c;
}

}  // namespace

TEST_CASE("histogram kernel: SIMD and scalar agree and match exact floor division") {
  std::vector<float> v = normal_data(10007, 1, 3.0f);
  v[5] = -1e-45f;  // underflows to -0 when divided: must still land in bin -1
  v[6] = std::numeric_limits<float>::quiet_NaN();
  v[7] = std::numeric_limits<float>::infinity();
  v[8] = -0.0f;
  const int e = -6;
  const float inv = std::ldexp(1.0f, -e);
  const std::uint32_t bins = 2048;
  const float base = -1024.0f;
  // 10007 values: whole index blocks, a partial block and a scalar tail on the SIMD path.
  std::vector<std::uint32_t> simd(bins + 1, 0), scalar(bins + 1, 0);  // the last one counts spills
  kernels::histogram_row(kernels::default_arch{}, v.data(), v.size(), inv, base, simd.data(), bins);
  kernels::histogram_row(kernels::scalar_arch{}, v.data(), v.size(), inv, base, scalar.data(), bins);
  CHECK(simd == scalar);
  const auto want = oracle_counts(v, e, -1024, bins);
  std::size_t mismatches = 0;
  for (std::uint32_t k = 0; k < bins; ++k) mismatches += simd[k] != want[k];
  CHECK(mismatches == 0);
  const std::uint64_t spilled = simd[bins];
  CHECK(v.size() - spilled == std::accumulate(want.begin(), want.end(), std::uint64_t{0}));
  CHECK(spilled >= 2);  // NaN and inf
  CHECK(want[1023] >= 1);  // the -1e-45 value
}

TEST_CASE("pow2_histogram: counts every finite value exactly and chooses the smallest grid") {
  const auto v = normal_data(50000, 2);
  pow2_histogram h(1024);
  h.add(v.data(), v.size());
  CHECK(h.total() == v.size());
  const auto mm = std::minmax_element(v.begin(), v.end());
  CHECK(h.min() == *mm.first);
  CHECK(h.max() == *mm.second);
  const int e = h.exponent();
  // Smallest: one step finer would not fit in 1024 bins.
  const auto span = [&](int ex) {
    return std::floor(std::ldexp(static_cast<double>(*mm.second), -ex)) - std::floor(std::ldexp(static_cast<double>(*mm.first), -ex)) + 1;
  };
  CHECK(span(e) <= 1024);
  CHECK(span(e - 1) > 1024);
  const auto st = h.to_state();
  const auto want = oracle_counts(v, e, st.base, st.counts.size());
  CHECK(st.counts == want);
}

TEST_CASE("pow2_histogram: any batching, order and shard merge gives the identical state") {
  auto v = normal_data(40000, 3, 2.0f, 0.5f);
  for (std::size_t i = 0; i < v.size(); i += 997) v[i] *= 40.0f;  // outliers force regridding
  pow2_histogram one(2048);
  one.add(v.data(), v.size());
  std::mt19937 rng(7);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<float> w = v;
    std::shuffle(w.begin(), w.end(), rng);
    pow2_histogram a(2048), b(2048);
    std::size_t pos = 0;
    std::uniform_int_distribution<std::size_t> len(1, 5000);
    bool to_a = true;
    while (pos < w.size()) {
      const std::size_t n = std::min(len(rng), w.size() - pos);
      (to_a ? a : b).add(w.data() + pos, n);
      pos += n;
      to_a = !to_a;
    }
    if (trial % 2) std::swap(a, b);
    a.merge(b);
    const auto sa = a.to_state(), so = one.to_state();
    CHECK(sa.exponent == so.exponent);
    CHECK(sa.base == so.base);
    CHECK(sa.counts == so.counts);
    CHECK(sa.min == so.min);
    CHECK(sa.max == so.max);
  }
}

TEST_CASE("pow2_histogram: state round trip, constant and tiny data, hostile states") {
  const auto v = normal_data(1000, 4);
  pow2_histogram h;
  h.add(v.data(), v.size());
  const auto r = pow2_histogram::from_state(h.to_state());
  CHECK(r.to_state().counts == h.to_state().counts);
  CHECK(r.total() == h.total());

  pow2_histogram c;
  const std::vector<float> constant(100, 3.25f);
  c.add(constant.data(), constant.size());
  CHECK(c.total() == 100);
  CHECK(c.to_binned().bins() == 1);
  pow2_histogram z;
  const std::vector<float> zeros(10, 0.0f), huge{3e38f, -3e38f}, tiny{1e-40f, -1e-40f};
  z.add(zeros.data(), zeros.size());
  z.add(tiny.data(), tiny.size());
  z.add(huge.data(), huge.size());
  CHECK(z.total() == 14);
  CHECK(z.max() == 3e38f);

  auto bad = h.to_state();
  bad.counts.pop_back();
  CHECK_THROWS_AS(pow2_histogram::from_state(bad), amctq::error);
  bad = h.to_state();
  bad.min = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(pow2_histogram::from_state(bad), amctq::error);
  CHECK_THROWS_AS(pow2_histogram(3), amctq::error);
}

TEST_CASE("resample keeps the mass and the shape; |x| folding mirrors negatives") {
  binned_histogram h;
  h.lo = -2.0;
  h.width = 1.0;
  h.counts = {4, 0, 2, 6};  // [-2,-1) [-1,0) [0,1) [1,2)
  h.total = 12;
  const auto r = resample(h, -2.0, 2.0, 8);
  CHECK(std::accumulate(r.counts.begin(), r.counts.end(), 0.0) == doctest::Approx(12));
  CHECK(r.counts[0] == doctest::Approx(2));
  CHECK(r.counts[7] == doctest::Approx(3));
  const auto a = resample(h, 0.0, 2.0, 2, true);
  CHECK(a.counts[0] == doctest::Approx(2));
  CHECK(a.counts[1] == doctest::Approx(10));
}

TEST_CASE("histogram_moments: L2 loss equals a direct integral") {
  binned_histogram h;
  h.lo = 0.0;
  h.width = 0.5;
  h.counts = {2, 0, 4, 1};
  h.total = 7;
  const histogram_moments m(h);
  // Direct: integrate each bin numerically against levels {0, 0.6, 1.2}.
  double want = 0.0;
  const int steps = 20000;
  for (std::size_t k = 0; k < h.counts.size(); ++k)
    for (int i = 0; i < steps; ++i) {
      const double x = h.lo + h.width * (k + (i + 0.5) / steps);
      const double q = std::clamp(std::round(x / 0.6), 0.0, 2.0) * 0.6;
      want += h.counts[k] / steps * (x - q) * (x - q);
    }
  CHECK(m.loss(0.0, 0.6, 3) == doctest::Approx(want).epsilon(1e-6));
  CHECK(m.total() == doctest::Approx(7));
}

TEST_CASE("histogram kernel: underflow to -0, huge values and wide bins on the SIMD path") {
  // With bins wider than 1 (inv < 1) a tiny negative value times inv underflows to -0; it
  // still belongs to bin -1. Values whose index overflows int32 and +-inf spill, as does NaN.
  const float inv = 1.0f / 16.0f, base = -8.0f;
  const std::uint32_t bins = 16;
  std::vector<float> v(200);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 17) * 7.0f - 60.0f;
  for (std::size_t i : {3u, 20u, 37u, 100u, 150u}) v[i] = -1e-45f;
  v[41] = 1e30f;
  v[42] = -1e30f;
  v[43] = 3e9f;   // floor(t) near 2^27: in int range, far out of the grid
  v[44] = -std::numeric_limits<float>::infinity();
  v[45] = std::numeric_limits<float>::quiet_NaN();
  v[46] = -0.0f;
  std::vector<std::uint32_t> simd(bins + 1, 0), scalar(bins + 1, 0);
  kernels::histogram_row(kernels::default_arch{}, v.data(), v.size(), inv, base, simd.data(), bins);
  kernels::histogram_row(kernels::scalar_arch{}, v.data(), v.size(), inv, base, scalar.data(), bins);
  CHECK(simd == scalar);
  std::vector<std::uint32_t> one(bins + 1, 0);
  const float tiny = -1e-45f;
  kernels::histogram_row(kernels::scalar_arch{}, &tiny, 1, inv, base, one.data(), bins);
  CHECK(one[7] == 1);  // bin -1, base -8
  const auto want = oracle_counts(v, 4, -8, bins);
  for (std::uint32_t k = 0; k < bins; ++k) CHECK(simd[k] == want[k]);
  CHECK(simd[bins] >= 5);  // 1e30, -1e30, 3e9, -inf, NaN
}

TEST_CASE("histogram kernel: the pipelined SIMD path agrees with scalar at every short length and alignment") {
  // The SIMD path counts each batch four batches after binning it; lengths around 0..6 batches
  // exercise the pipeline's start, drain and scalar tail, and start offsets the scalar head
  // that reaches an aligned address. A prefetch hint changes nothing. The watched values (those
  // outside [lo, hi], NaN and inf included) come out in row order on both paths.
  std::vector<float> v = normal_data(420, 9, 2.0f);
  v[40] = std::numeric_limits<float>::quiet_NaN();
  v[77] = -std::numeric_limits<float>::infinity();
  const float inv = 16.0f, base = -128.0f, lo = -2.5f, hi = 3.0f;
  const std::uint32_t bins = 256;
  for (std::size_t start : {0u, 1u, 3u, 15u}) {
    for (std::size_t n : {0u, 1u, 7u, 8u, 15u, 16u, 17u, 31u, 32u, 33u, 47u, 48u, 64u, 65u, 100u, 113u, 300u, 400u}) {
      const float* x = v.data() + start;
      std::vector<std::uint32_t> simd(bins + 1, 0), hinted(bins + 1, 0), scalar(bins + 1, 0), watched(bins + 1, 0),
          watched_scalar(bins + 1, 0);
      kernels::histogram_row(kernels::default_arch{}, x, n, inv, base, simd.data(), bins);
      kernels::histogram_row(kernels::default_arch{}, x, n, inv, base, hinted.data(), bins, v.size() - start - n);
      kernels::histogram_row(kernels::scalar_arch{}, x, n, inv, base, scalar.data(), bins);
      std::vector<float> out(n + 1, 0.0f), out_scalar(n + 1, 0.0f);
      kernels::outside_values w{lo, hi, out.data()}, ws{lo, hi, out_scalar.data()};
      kernels::histogram_row(kernels::default_arch{}, x, n, inv, base, watched.data(), bins, 0, &w);
      kernels::histogram_row(kernels::scalar_arch{}, x, n, inv, base, watched_scalar.data(), bins, 0, &ws);
      CAPTURE(start);
      CAPTURE(n);
      CHECK(simd == scalar);
      CHECK(hinted == scalar);
      CHECK(watched == scalar);
      CHECK(watched_scalar == scalar);
      CHECK(std::accumulate(simd.begin(), simd.end(), std::uint64_t{0}) == n);
      std::vector<float> want;
      for (std::size_t i = 0; i < n; ++i)
        if (!(x[i] >= lo && x[i] <= hi)) want.push_back(x[i]);
      auto same_values = [&](const std::vector<float>& got, std::size_t count) {
        if (count != want.size()) return false;
        for (std::size_t i = 0; i < count; ++i)
          if (!(got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i])))) return false;
        return true;
      };
      CHECK(same_values(out, w.count));
      CHECK(same_values(out_scalar, ws.count));
    }
  }
}

TEST_CASE("histogram kernel: long rows read ahead only into what the caller says is readable") {
  // Rows long enough for the unchecked eight-batch loop, the checked remainder and the drain.
  // Each row sits at the end of its own allocation, followed by exactly readable_after values,
  // so a read ahead past them is a heap overflow that the sanitizer build reports.
  const std::vector<float> src = normal_data(90000, 31, 2.0f);
  const float inv = 64.0f, base = -512.0f, lo = -5.0f, hi = 5.5f;
  const std::uint32_t bins = 1024;
  for (std::size_t n : {16384u, 20000u, 40000u, 65536u + 7u}) {
    for (std::size_t readable_after : {0u, 100u, 2048u, 16384u, 20000u}) {
      for (std::size_t start : {0u, 5u, 16u}) {
        std::vector<float> mem(start + n + readable_after);
        std::copy(src.begin(), src.begin() + static_cast<std::ptrdiff_t>(mem.size()), mem.begin());
        const float* x = mem.data() + start;
        std::vector<std::uint32_t> fast(bins + 1, 0), slow(bins + 1, 0), watched(bins + 1, 0);
        std::vector<float> out(n);
        kernels::outside_values w{lo, hi, out.data()};
        kernels::histogram_row(kernels::default_arch{}, x, n, inv, base, fast.data(), bins, readable_after);
        kernels::histogram_row(kernels::default_arch{}, x, n, inv, base, watched.data(), bins, readable_after, &w);
        kernels::histogram_row(kernels::scalar_arch{}, x, n, inv, base, slow.data(), bins);
        std::vector<float> want;
        for (std::size_t i = 0; i < n; ++i)
          if (!(x[i] >= lo && x[i] <= hi)) want.push_back(x[i]);
        CAPTURE(n);
        CAPTURE(readable_after);
        CAPTURE(start);
        CHECK(fast == slow);
        CHECK(watched == slow);
        REQUIRE(w.count == want.size());
        CHECK(std::equal(want.begin(), want.end(), out.begin()));
      }
    }
  }
}

TEST_CASE("pow2_histogram: a watched pass that leaves the grid equals a min/max pass then a count") {
  // accumulate_watched starts from a grid far too narrow; values past it come back through the
  // watch, the grid grows (a coarser exponent and a lower base, re-binned in place) and they
  // are counted on the new grid. The state equals add() of the same values.
  std::vector<float> v = normal_data(50000, 21, 1.0f);
  v[30000] = -300.0f;  // a late new minimum (the base moves down) and maximum (the grid coarsens)
  v[40000] = 900.0f;
  v[45000] = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t block : {1000u, 4096u, 50000u}) {
    pow2_histogram watched(1024), plain(1024);
    watched.cover(-0.5f, 0.5f);
    plain.cover(-0.5f, 0.5f);
    std::vector<float> out(block);
    std::size_t nonfinite = 0, returned = 0;
    for (std::size_t off = 0; off < v.size(); off += block) {
      const std::size_t len = std::min(block, v.size() - off);
      // What comes back is outside [-2, 2] or outside the range seen before this block.
      const float inner_lo = std::fmax(-2.0f, watched.min()), inner_hi = std::fmin(2.0f, watched.max());
      const std::size_t m = watched.accumulate_watched(v.data() + off, len, -2.0f, 2.0f, out.data());
      returned += m;
      std::size_t inside = 0;
      for (std::size_t k = 0; k < m; ++k) {
        nonfinite += !std::isfinite(out[k]);
        inside += out[k] >= inner_lo && out[k] <= inner_hi;
      }
      CHECK(inside == 0);
      watched.flush();
    }
    plain.add(v.data(), v.size());
    CAPTURE(block);
    const histogram_state a = watched.to_state(), b = plain.to_state();
    CHECK(a.counts == b.counts);
    CHECK(a.exponent == b.exponent);
    CHECK(a.base == b.base);
    CHECK(a.min == -300.0f);
    CHECK(a.max == 900.0f);
    CHECK(watched.total() == v.size() - 1);
    CHECK(nonfinite == 1);
    CHECK(returned >= std::count_if(v.begin(), v.end(), [](float x) { return std::fabs(x) > 2.0f; }));
  }
  // A first block with no grid yet and no finite value: all of it comes back, nothing counted.
  pow2_histogram fresh(1024);
  std::vector<float> nans(64, std::numeric_limits<float>::quiet_NaN()), out(64);
  CHECK(fresh.accumulate_watched(nans.data(), nans.size(), 0.0f, 0.0f, out.data()) == 64);
  fresh.flush();
  CHECK(fresh.empty());
}

TEST_CASE("select_nth: std::nth_element's contract on random, tied, sorted and hostile orders") {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<std::vector<float>> inputs;
  for (std::size_t n : {1u, 2u, 31u, 33u, 100u, 1000u, 8192u}) {
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    inputs.push_back(v);                                  // random
    std::vector<float> t(n);
    for (auto& x : t) x = std::round(nd(rng));              // a few distinct values, many ties
    inputs.push_back(t);
    inputs.push_back(std::vector<float>(n, 2.5f));          // constant
    std::sort(v.begin(), v.end());
    inputs.push_back(v);                                  // sorted
    std::reverse(v.begin(), v.end());
    inputs.push_back(v);                                  // reversed
    std::vector<float> pipe(n);                           // organ pipe
    for (std::size_t i = 0; i < n; ++i) pipe[i] = static_cast<float>(std::min(i, n - 1 - i));
    inputs.push_back(pipe);
  }
  for (const auto& in : inputs) {
    for (std::size_t k : {std::size_t{0}, in.size() / 3, in.size() / 2, in.size() - 1}) {
      std::vector<float> got = in, want = in;
      detail::select_nth(got, k, std::greater<float>());
      std::sort(want.begin(), want.end(), std::greater<float>());
      CAPTURE(in.size());
      CAPTURE(k);
      CHECK(got[k] == want[k]);
      bool ordered = true;
      for (std::size_t i = 0; i < k; ++i) ordered = ordered && !(got[i] < got[k]);
      for (std::size_t i = k + 1; i < got.size(); ++i) ordered = ordered && !(got[i] > got[k]);
      CHECK(ordered);
      std::sort(got.begin(), got.end(), std::greater<float>());
      CHECK(got == want);  // a permutation of the input
    }
  }
}

TEST_CASE("extreme_values: offering only past given cuts is the same on the SIMD and scalar paths") {
  // Values inside `only` go to neither tail on either path (nor into the running extremes);
  // values past it go only to the tail whose cut they pass.
  std::vector<float> v(37, 5.0f);
  v[3] = -20.0f;
  v[30] = 40.0f;
  v[35] = std::numeric_limits<float>::quiet_NaN();
  const tail_cuts only{0.0f, 10.0f};
  extreme_values simd(8), scalar(8);
  CHECK(simd.add<kernels::default_arch>(v.data(), v.size(), only) == 1);
  CHECK(scalar.add<kernels::scalar_arch>(v.data(), v.size(), only) == 1);
  CHECK(simd.largest() == scalar.largest());
  CHECK(simd.smallest() == scalar.smallest());
  CHECK(simd.smallest() == -20.0f);
  CHECK(simd.largest() == 40.0f);
  const extreme_values_state a = simd.to_state(), b = scalar.to_state();
  CHECK(a.largest == std::vector<float>{40.0f});
  CHECK(a.smallest == std::vector<float>{-20.0f});
  CHECK(b.largest == a.largest);
  CHECK(b.smallest == a.smallest);
}

TEST_CASE("extreme_values: exact k-th largest/smallest and exact merge") {
  auto v = normal_data(20000, 5);
  extreme_values all(64), a(64), b(64);
  all.add(v.data(), v.size());
  a.add(v.data(), 7000);
  b.add(v.data() + 7000, v.size() - 7000);
  a.merge(b);
  std::vector<float> s = v;
  std::sort(s.begin(), s.end());
  for (std::size_t k : {1u, 2u, 17u, 64u}) {
    CHECK(all.kth_largest(k) == s[s.size() - k]);
    CHECK(a.kth_largest(k) == s[s.size() - k]);
    CHECK(a.kth_smallest(k) == s[k - 1]);
  }
  std::vector<float> absv(v.size());
  std::transform(v.begin(), v.end(), absv.begin(), [](float x) { return std::fabs(x); });
  std::sort(absv.begin(), absv.end(), std::greater<float>());
  CHECK(a.kth_largest_abs(10) == absv[9]);
  // Rank queries select without sorting; any order of queries, and a state taken between
  // them, gives the same answers.
  for (std::size_t k : {64u, 1u, 17u, 2u, 64u}) {
    CHECK(a.kth_largest(k) == s[s.size() - k]);
    CHECK(a.kth_smallest(k) == s[k - 1]);
    const extreme_values_state st = a.to_state();
    CHECK(std::is_sorted(st.largest.begin(), st.largest.end(), std::greater<float>()));
    CHECK(std::is_sorted(st.smallest.begin(), st.smallest.end()));
  }
  // The running extremes (the fused observer's min/max) after add, merge and a state trip.
  CHECK(all.largest() == s.back());
  CHECK(all.smallest() == s.front());
  CHECK(a.largest() == s.back());
  CHECK(a.smallest() == s.front());
  const extreme_values back = extreme_values::from_state(a.to_state());
  CHECK(back.largest() == s.back());
  CHECK(back.smallest() == s.front());
  CHECK(extreme_values(64).largest() == -std::numeric_limits<float>::infinity());
  CHECK(extreme_values(64).smallest() == std::numeric_limits<float>::infinity());
  // A hand-made state with one side empty still reports both extremes.
  const extreme_values one_sided = extreme_values::from_state(extreme_values_state{64, {}, {-2.0f, 5.0f}});
  CHECK(one_sided.largest() == 5.0f);
  CHECK(one_sided.smallest() == -2.0f);
  // Few values: both tails hold everything, |x| ranks must not count a value twice.
  extreme_values few(64);
  const std::vector<float> f{1.0f, -3.0f, 2.0f};
  few.add(f.data(), f.size());
  CHECK(few.kth_largest_abs(1) == 3.0f);
  CHECK(few.kth_largest_abs(2) == 2.0f);
  CHECK(few.kth_largest_abs(3) == 1.0f);
}

}  // namespace test_activation_histogram
