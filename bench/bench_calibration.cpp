// Activation calibration against its targets: histogram accumulation (>= 1 G
// elements/s), entropy search 2048 bins -> 128 levels (<= 1 ms), MSE / HFMG search (<= 1 ms),
// full IFMR of 16M floats (<= 3x one minmax pass). A plain copy and one minmax pass of the same
// bytes run in the same binary, so every figure is also a ratio.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "amctq/algorithms/observer.hpp"

namespace {

constexpr std::size_t kN = std::size_t{1} << 24;  // 16M floats

const std::vector<float>& data() {
  static const std::vector<float> v = [] {
    std::vector<float> d(kN);
    std::mt19937 rng(42);
    std::normal_distribution<float> n(0.0f, 1.0f);
    for (std::size_t i = 0; i < kN; ++i) d[i] = (i % 3 == 0) ? std::fmax(n(rng), 0.0f) : n(rng);
    return d;
  }();
  return v;
}

const amctq::binned_histogram& fine_histogram() {
  static const amctq::binned_histogram h = [] {
    amctq::pow2_histogram p;
    p.add(data().data(), data().size());
    return p.to_binned();
  }();
  return h;
}

void BM_copy(benchmark::State& s) {
  std::vector<float> out(kN);
  for (auto _ : s) {
    std::memcpy(out.data(), data().data(), kN * sizeof(float));
    benchmark::DoNotOptimize(out.data());
  }
  s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * kN));
  s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * kN * sizeof(float)));
}

void BM_minmax_pass(benchmark::State& s) {
  for (auto _ : s) {
    auto r = amctq::minmax(amctq::make_view(data().data(), {static_cast<std::ptrdiff_t>(kN)}));
    benchmark::DoNotOptimize(r);
  }
  s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * kN));
}

// The accumulation kernel alone (grid already set), and the streaming add (minmax + kernel).
void BM_histogram_accumulate(benchmark::State& s) {
  amctq::pow2_histogram h;
  const auto r = amctq::minmax(amctq::make_view(data().data(), {static_cast<std::ptrdiff_t>(kN)}));
  h.cover(r.min, r.max);
  for (auto _ : s) {
    h.accumulate(data().data(), kN);
    h.flush();
  }
  s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * kN));
}

// The counting step alone: the bin indices of the first 65536 values on the same grid are
// computed beforehand and counted 256 times over (16M increments). The indices sit in L2, so
// this is one scattered increment per value and nothing else: neither the binning nor the
// memory read of the data, which a real pass can overlap with it. It is the floor of any
// histogram that counts every value, on this machine.
void BM_histogram_count_only(benchmark::State& s) {
  amctq::pow2_histogram h;
  const auto r = amctq::minmax(amctq::make_view(data().data(), {static_cast<std::ptrdiff_t>(kN)}));
  h.cover(r.min, r.max);
  const float inv = std::ldexp(1.0f, -h.exponent()), base = amctq::kernels::pow2_bin_of(r.min, inv);
  const std::uint32_t bins = h.capacity();
  constexpr std::size_t kHeld = 65536;
  std::vector<std::int32_t> idx(kHeld);
  for (std::size_t i = 0; i < kHeld; ++i) idx[i] = static_cast<std::int32_t>(amctq::kernels::pow2_bin_of(data()[i], inv) - base);
  std::vector<std::uint32_t> counts(bins + 1);
  for (auto _ : s) {
    for (std::size_t rep = 0; rep < kN / kHeld; ++rep) amctq::kernels::count_bins(idx.data(), kHeld, counts.data());
    benchmark::DoNotOptimize(counts.data());
  }
  s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * kN));
}

void BM_histogram_add(benchmark::State& s) {
  amctq::pow2_histogram h;
  for (auto _ : s) h.add(data().data(), kN);
  s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * kN));
}

void BM_entropy_search_2048_to_128(benchmark::State& s) {
  amctq::quant_spec spec;
  for (auto _ : s) {
    auto r = amctq::entropy_range(fine_histogram(), spec);
    benchmark::DoNotOptimize(r);
  }
}

void BM_mse_search(benchmark::State& s) {
  amctq::quant_spec spec;
  spec.symmetric = s.range(0) != 0;
  for (auto _ : s) {
    auto r = amctq::mse_range(fine_histogram(), spec);
    benchmark::DoNotOptimize(r);
  }
}

// Args: preset (0 amct, 1 pytorch), bins.
void BM_hfmg_search(benchmark::State& s) {
  amctq::quant_spec spec;
  spec.symmetric = false;
  const auto how = s.range(0) ? amctq::preset::pytorch : amctq::preset::amct;
  amctq::hfmg_options o;
  o.bins = static_cast<int>(s.range(1));
  for (auto _ : s) {
    auto r = amctq::hfmg_range(fine_histogram(), spec, how, o);
    benchmark::DoNotOptimize(r);
  }
}

// A full IFMR calibration from a fresh observer: observe the 16M floats, then the result.
amctq::calib_result ifmr_calibration() {
  amctq::observer_options o;
  o.method = amctq::calib_method::ifmr;
  amctq::activation_observer ob(o);
  ob.observe(amctq::make_view(data().data(), {static_cast<std::ptrdiff_t>(kN)}));
  return ob.result();
}

void BM_ifmr_full_16M(benchmark::State& s) {
  for (auto _ : s) {
    auto r = ifmr_calibration();
    benchmark::DoNotOptimize(r);
  }
  s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * kN));
}

// The IFMR target is a ratio, and a shared VM's memory bandwidth drifts between benchmarks run
// seconds apart. Here each iteration times one
// minmax pass and one full IFMR back to back on the same data, so both see the same machine;
// the counter is the ratio of their totals.
void BM_ifmr_over_minmax(benchmark::State& s) {
  using clock = std::chrono::steady_clock;
  double minmax_s = 0.0, ifmr_s = 0.0;
  for (auto _ : s) {
    const auto t0 = clock::now();
    auto r = amctq::minmax(amctq::make_view(data().data(), {static_cast<std::ptrdiff_t>(kN)}));
    benchmark::DoNotOptimize(r);
    const auto t1 = clock::now();
    auto q = ifmr_calibration();
    benchmark::DoNotOptimize(q);
    const auto t2 = clock::now();
    minmax_s += std::chrono::duration<double>(t1 - t0).count();
    ifmr_s += std::chrono::duration<double>(t2 - t1).count();
  }
  s.counters["ratio"] = ifmr_s / minmax_s;
  s.counters["minmax_ms"] = minmax_s * 1e3 / static_cast<double>(s.iterations());
  s.counters["ifmr_ms"] = ifmr_s * 1e3 / static_cast<double>(s.iterations());
}

}  // namespace

BENCHMARK(BM_copy)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_minmax_pass)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_histogram_accumulate)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_histogram_count_only)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_histogram_add)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_entropy_search_2048_to_128)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_mse_search)->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_hfmg_search)->Args({0, 4096})->Args({0, 2048})->Args({1, 2048})->Args({1, 4096})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ifmr_full_16M)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ifmr_over_minmax)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
