// Weight-side algorithms on realistic sizes, next to a memcpy of the same bytes:
// * NUQ on a 1M-weight layer (histogram of the int8 codes + clustering), exact DP vs seeded
//   Lloyd, each reporting its squared error (counter "error") so the two can be compared;
// * CLE over the 8 Conv→ReLU→Conv pairs of ResNet-18's basic blocks;
// * DMQ balance (weight absmax per input channel, factors, folding) over all 21 weight layers
//   of ResNet-18 (11.7M weights).
// Targets: NUQ <= 1 ms with error <= Lloyd's; balance or CLE <= 10 ms.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "amctq/algorithms/arq.hpp"
#include "amctq/algorithms/balance.hpp"
#include "amctq/algorithms/cle.hpp"
#include "amctq/algorithms/nuq.hpp"
#include "amctq/algorithms/weight_layout.hpp"

namespace {

std::vector<float> normal(std::size_t n, float sd, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// 1M conv weights [256, 256, 4, 4] quantized per channel by ARQ: the NUQ input.
const std::vector<std::int8_t>& nuq_codes() {
  static const std::vector<std::int8_t> codes = [] {
    auto w = normal(std::size_t{1} << 20, 0.02f, 1u);
    const auto v = amctq::make_view(w.data(), {256, 256, 4, 4});
    const auto L = amctq::conv_weight_layout(v);
    const auto p = amctq::arq_params(v, L);
    std::vector<std::int8_t> q(w.size());
    amctq::arq_quantize(amctq::tensor_view<const float, 4>(v), L, p, q.data());
    return q;
  }();
  return codes;
}

void BM_nuq_optimal_1M(benchmark::State& st) {
  const auto& q = nuq_codes();
  const int k = static_cast<int>(st.range(0));
  double err = 0.0;
  for (auto _ : st) {
    const auto h = amctq::int8_level_histogram(q.data(), q.size());
    const auto r = amctq::nuq_optimal(h, k);
    benchmark::DoNotOptimize(r.centers.data());
    err = r.error;
  }
  st.counters["error"] = err;
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * q.size()));
}
BENCHMARK(BM_nuq_optimal_1M)->Arg(16)->Arg(32)->Unit(benchmark::kMicrosecond);

void BM_nuq_lloyd_1M(benchmark::State& st) {
  const auto& q = nuq_codes();
  const int k = static_cast<int>(st.range(0));
  double err = 0.0;
  std::uint64_t seed = 0;
  for (auto _ : st) {
    const auto h = amctq::int8_level_histogram(q.data(), q.size());
    const auto r = amctq::nuq_lloyd(h, k, seed++);
    benchmark::DoNotOptimize(r.centers.data());
    err = r.error;
  }
  st.counters["error"] = err;
  // Lloyd's error over 16 seeds, to compare with the optimum on the same histogram.
  const auto h = amctq::int8_level_histogram(q.data(), q.size());
  double best = 1e300, worst = 0.0;
  for (std::uint64_t s = 0; s < 16; ++s) {
    const double e = amctq::nuq_lloyd(h, k, s).error;
    best = e < best ? e : best;
    worst = e > worst ? e : worst;
  }
  st.counters["error_best16"] = best;
  st.counters["error_worst16"] = worst;
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * q.size()));
}
BENCHMARK(BM_nuq_lloyd_1M)->Arg(16)->Arg(32)->Unit(benchmark::kMicrosecond);

void BM_int8_histogram_1M(benchmark::State& st) {
  const auto& q = nuq_codes();
  for (auto _ : st) {
    auto h = amctq::int8_level_histogram(q.data(), q.size());
    benchmark::DoNotOptimize(h.count.data());
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * q.size()));
}
BENCHMARK(BM_int8_histogram_1M)->Unit(benchmark::kMicrosecond);

struct conv_shape {
  std::ptrdiff_t o, i, k;
};

// ResNet-18 (torchvision) weight layers in order; fc as a 1x1 "conv" [1000, 512, 1, 1].
const std::vector<conv_shape>& resnet18() {
  static const std::vector<conv_shape> s = {
      {64, 3, 7},    {64, 64, 3},   {64, 64, 3},   {64, 64, 3},   {64, 64, 3},   {128, 64, 3},  {128, 128, 3},
      {128, 64, 1},  {128, 128, 3}, {128, 128, 3}, {256, 128, 3}, {256, 256, 3}, {256, 128, 1}, {256, 256, 3},
      {256, 256, 3}, {512, 256, 3}, {512, 512, 3}, {512, 256, 1}, {512, 512, 3}, {512, 512, 3}, {1000, 512, 1}};
  return s;
}

std::vector<std::vector<float>>& resnet18_weights() {
  static std::vector<std::vector<float>> w = [] {
    std::vector<std::vector<float>> out;
    unsigned seed = 10;
    for (const auto& s : resnet18()) out.push_back(normal(static_cast<std::size_t>(s.o * s.i * s.k * s.k), 0.05f, seed++));
    return out;
  }();
  return w;
}

std::size_t resnet18_bytes() {
  std::size_t n = 0;
  for (const auto& w : resnet18_weights()) n += w.size() * sizeof(float);
  return n;
}

amctq::tensor_view<float, 4> view(std::size_t layer) {
  const auto& s = resnet18()[layer];
  return amctq::make_view(resnet18_weights()[layer].data(), {s.o, s.i, s.k, s.k});
}

// Basic-block pairs conv1 -> ReLU -> conv2 (indices into resnet18()).
const std::size_t kPairs[8][2] = {{1, 2}, {3, 4}, {5, 6}, {8, 9}, {10, 11}, {13, 14}, {15, 16}, {18, 19}};

void BM_cle_resnet18(benchmark::State& st) {
  for (auto _ : st) {
    for (const auto& p : kPairs) {
      const auto a = view(p[0]), b = view(p[1]);
      const auto r = amctq::equalize_pair(a, amctq::conv_weight_layout(a), nullptr, 0, b, amctq::conv_weight_layout(b));
      benchmark::DoNotOptimize(r.scale.data());
    }
  }
  std::size_t bytes = 0;
  for (const auto& p : kPairs) bytes += (resnet18_weights()[p[0]].size() + resnet18_weights()[p[1]].size()) * 4;
  st.counters["weights_MB"] = static_cast<double>(bytes) / 1e6;
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * bytes));
}
BENCHMARK(BM_cle_resnet18)->Unit(benchmark::kMillisecond);

void BM_dmq_resnet18(benchmark::State& st) {
  // Activation absmax per input channel, as an observer would have collected.
  std::vector<std::vector<float>> act;
  for (const auto& s : resnet18()) act.push_back(normal(static_cast<std::size_t>(s.i), 1.0f, 99u));
  for (auto& a : act)
    for (auto& x : a) x = std::fabs(x) + 0.1f;
  for (auto _ : st) {
    for (std::size_t l = 0; l < resnet18().size(); ++l) {
      const auto v = view(l);
      const auto L = amctq::conv_weight_layout(v);
      const auto s = amctq::dmq_balance_factors(act[l], amctq::channel_absmax(v, L, amctq::channel_side::input));
      amctq::apply_balance(v, L, s);
    }
  }
  st.counters["weights_MB"] = static_cast<double>(resnet18_bytes()) / 1e6;
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * resnet18_bytes()));
}
BENCHMARK(BM_dmq_resnet18)->Unit(benchmark::kMillisecond);

// The physical reference: one copy of all ResNet-18 weights.
void BM_memcpy_resnet18(benchmark::State& st) {
  std::vector<std::vector<float>> dst;
  for (const auto& w : resnet18_weights()) dst.emplace_back(w.size());
  for (auto _ : st) {
    for (std::size_t l = 0; l < dst.size(); ++l)
      std::memcpy(dst[l].data(), resnet18_weights()[l].data(), dst[l].size() * sizeof(float));
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * resnet18_bytes()));
}
BENCHMARK(BM_memcpy_resnet18)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
