// Throughput of every kernel next to a plain memcpy of the same floats, in one binary, so the
// ratio kernel GB/s / copy GB/s says how close a kernel gets to the memory system's limit.
// Bytes counted are the bytes the kernel must read plus those it must write (codes, mask).
// bench/run_bench.py runs this with repetitions, takes medians and adds the PyTorch peer.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "amctq/kernels/dequantize.hpp"
#include "amctq/kernels/fake_quantize.hpp"
#include "amctq/kernels/quantize.hpp"
#include "amctq/kernels/reduce.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/tensor_view.hpp"

namespace {

// Data are N(0, 1); a grid whose edge sits at 2.17 sigma clips |x| > 2.17, about 3% of the
// values, so the clamp and the STE mask see realistic, not all-in-range, data.
constexpr float kClipSigma = 2.17f;

/// The input of size n, generated once per size: regenerating 16M normals per benchmark call
/// would dominate the run. Vectors are written on creation, so no page is first touched while timed.
const std::vector<float>& normal_data(std::size_t n) {
  static std::map<std::size_t, std::vector<float>> cache;
  auto it = cache.find(n);
  if (it == cache.end()) {
    std::mt19937 rng(20261122u);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = normal(rng);
    it = cache.emplace(n, std::move(v)).first;
  }
  return it->second;
}

std::size_t size_arg(const benchmark::State& st) { return static_cast<std::size_t>(st.range(0)); }

/// Records bytes moved per iteration; the JSON then carries bytes_per_second.
void set_bytes(benchmark::State& st, std::size_t bytes_per_iteration) {
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(bytes_per_iteration));
}

/// Symmetric signed grid of `bits` whose edge is kClipSigma.
amctq::quant_params symmetric_params(int bits) {
  const std::int32_t qmax = (1 << (bits - 1)) - 1;
  return amctq::make_params(kClipSigma / static_cast<float>(qmax), 0, -qmax - 1, qmax);
}

/// Per-channel symmetric int8 params along `axis`: channel scales spread over +-10% around the
/// per-tensor one, so every channel clips a slightly different share of its values.
amctq::quant_params channel_params(std::size_t channels, int axis) {
  amctq::quant_params p = symmetric_params(8);
  const float base = p.scale[0];
  p.scale.resize(channels);
  p.zero_point.assign(channels, 0);
  for (std::size_t c = 0; c < channels; ++c)
    p.scale[c] = base * (0.9f + 0.2f * static_cast<float>(c) / static_cast<float>(channels));
  p.axis = axis;
  return p;
}

void BM_copy(benchmark::State& st) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  std::vector<float> y(n, 1.0f);
  for (auto _ : st) {
    std::memcpy(y.data(), x.data(), n * sizeof(float));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, 2 * n * sizeof(float));
}

template <class Arch>
void fake_quantize_per_tensor(benchmark::State& st) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  std::vector<float> y(n, 1.0f);
  const auto p = symmetric_params(8);
  const auto xv = amctq::make_view(x.data(), {static_cast<std::ptrdiff_t>(n)});
  const auto yv = amctq::make_view(y.data(), {static_cast<std::ptrdiff_t>(n)});
  for (auto _ : st) {
    amctq::fake_quantize<Arch>(xv, yv, p);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, 2 * n * sizeof(float));
}

void BM_fake_quantize_per_tensor(benchmark::State& st) { fake_quantize_per_tensor<amctq::kernels::default_arch>(st); }
void BM_fake_quantize_per_tensor_scalar(benchmark::State& st) {
  fake_quantize_per_tensor<amctq::kernels::scalar_arch>(st);
}

/// Shape [C, n/C] with axis 0 (args C, axis=0) or [n/C, C] with axis 1, the last (axis=1).
struct channel_layout {
  std::ptrdiff_t rows;
  std::ptrdiff_t cols;
  int axis;
  std::size_t channels;
};

channel_layout layout_arg(const benchmark::State& st) {
  const auto n = static_cast<std::ptrdiff_t>(st.range(0)), c = static_cast<std::ptrdiff_t>(st.range(1));
  if (st.range(2) == 0) return {c, n / c, 0, static_cast<std::size_t>(c)};
  return {n / c, c, 1, static_cast<std::size_t>(c)};
}

void BM_fake_quantize_per_channel(benchmark::State& st) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  std::vector<float> y(n, 1.0f);
  const auto l = layout_arg(st);
  const auto p = channel_params(l.channels, l.axis);
  const auto xv = amctq::make_view(x.data(), {l.rows, l.cols});
  const auto yv = amctq::make_view(y.data(), {l.rows, l.cols});
  for (auto _ : st) {
    amctq::fake_quantize(xv, yv, p);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, 2 * n * sizeof(float));
}

void BM_fake_quantize_masked(benchmark::State& st) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  std::vector<float> y(n, 1.0f);
  std::vector<std::uint8_t> mask((n + 7) / 8, 0xA5u);
  const auto p = symmetric_params(8);
  const auto xv = amctq::make_view(x.data(), {static_cast<std::ptrdiff_t>(n)});
  const auto yv = amctq::make_view(y.data(), {static_cast<std::ptrdiff_t>(n)});
  for (auto _ : st) {
    amctq::fake_quantize(xv, yv, p, amctq::round_mode::half_even, mask.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(mask.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, 2 * n * sizeof(float) + mask.size());
}

template <class Q>
void quantize_to(benchmark::State& st, const amctq::quant_params& p) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  std::vector<Q> q(n, Q{1});
  const auto xv = amctq::make_view(x.data(), {static_cast<std::ptrdiff_t>(n)});
  const auto qv = amctq::make_view(q.data(), {static_cast<std::ptrdiff_t>(n)});
  for (auto _ : st) {
    amctq::quantize(xv, qv, p);
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n * (sizeof(float) + sizeof(Q)));
}

void BM_quantize_int8(benchmark::State& st) { quantize_to<std::int8_t>(st, symmetric_params(8)); }
void BM_quantize_int16(benchmark::State& st) { quantize_to<std::int16_t>(st, symmetric_params(16)); }
void BM_quantize_uint8(benchmark::State& st) {
  // Asymmetric: a ReLU-like range [-0.5, 2 * kClipSigma] with its zero point inside the grid.
  quantize_to<std::uint8_t>(st, amctq::make_params((2.0f * kClipSigma + 0.5f) / 255.0f, 26, 0, 255));
}

void BM_quantize_int4(benchmark::State& st) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  std::vector<std::uint8_t> packed((n + 1) / 2, 0x11u);
  const auto p = symmetric_params(4);
  const auto xv = amctq::make_view(x.data(), {static_cast<std::ptrdiff_t>(n)});
  for (auto _ : st) {
    amctq::quantize_int4(xv, packed.data(), p);
    benchmark::DoNotOptimize(packed.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n * sizeof(float) + packed.size());
}

void BM_dequantize_int8(benchmark::State& st) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  const auto p = symmetric_params(8);
  std::vector<std::int8_t> q(n);
  std::vector<float> y(n, 1.0f);
  amctq::quantize(amctq::make_view(x.data(), {static_cast<std::ptrdiff_t>(n)}),
                  amctq::make_view(q.data(), {static_cast<std::ptrdiff_t>(n)}), p);
  const auto qv = amctq::make_view(static_cast<const std::int8_t*>(q.data()), {static_cast<std::ptrdiff_t>(n)});
  const auto yv = amctq::make_view(y.data(), {static_cast<std::ptrdiff_t>(n)});
  for (auto _ : st) {
    amctq::dequantize(qv, yv, p);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n * (sizeof(std::int8_t) + sizeof(float)));
}

void BM_minmax(benchmark::State& st) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  const auto xv = amctq::make_view(x.data(), {static_cast<std::ptrdiff_t>(n)});
  for (auto _ : st) {
    auto r = amctq::minmax(xv);
    benchmark::DoNotOptimize(r);
  }
  set_bytes(st, n * sizeof(float));
}

void BM_minmax_per_channel(benchmark::State& st) {
  const std::size_t n = size_arg(st);
  const auto& x = normal_data(n);
  const auto l = layout_arg(st);
  const auto xv = amctq::make_view(x.data(), {l.rows, l.cols});
  for (auto _ : st) {
    auto r = amctq::minmax_per_channel(xv, l.axis);
    benchmark::DoNotOptimize(r.min.data());
    benchmark::DoNotOptimize(r.max.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n * sizeof(float));
}

constexpr std::int64_t kSmall = std::int64_t{1} << 20;
constexpr std::int64_t kLarge = std::int64_t{1} << 24;

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("n")->Arg(kSmall)->Arg(kLarge)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

/// n x {C=64 along axis 0, C=64 last, C=256 last}.
void channel_layouts(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "C", "last"})->UseRealTime()->Unit(benchmark::kMicrosecond);
  for (std::int64_t n : {kSmall, kLarge}) {
    b->Args({n, 64, 0});
    b->Args({n, 64, 1});
    b->Args({n, 256, 1});
  }
}

}  // namespace

BENCHMARK(BM_copy)->Apply(sizes);
BENCHMARK(BM_fake_quantize_per_tensor)->Apply(sizes);
BENCHMARK(BM_fake_quantize_per_tensor_scalar)->Apply(sizes);
BENCHMARK(BM_fake_quantize_per_channel)->Apply(channel_layouts);
BENCHMARK(BM_fake_quantize_masked)->Apply(sizes);
BENCHMARK(BM_quantize_int8)->Apply(sizes);
BENCHMARK(BM_quantize_uint8)->Apply(sizes);
BENCHMARK(BM_quantize_int16)->Apply(sizes);
BENCHMARK(BM_quantize_int4)->Apply(sizes);
BENCHMARK(BM_dequantize_int8)->Apply(sizes);
BENCHMARK(BM_minmax)->Apply(sizes);
BENCHMARK(BM_minmax_per_channel)->Apply(channel_layouts);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Name the ISA the kernels were compiled for, so every report says what it measured.
  benchmark::AddCustomContext("amctq_arch", amctq::kernels::default_arch::name());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
