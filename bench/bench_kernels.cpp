// Throughput of every kernel next to a plain memcpy of the same floats, in one binary, so the
// ratio kernel GB/s / copy GB/s says how close a kernel gets to the memory system's limit.
// Bytes counted are the bytes the kernel must read plus those it must write (codes, mask).
// bench/run_bench.py runs this with repetitions, takes medians and adds the PyTorch peer.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
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

constexpr std::int64_t kInCache = std::int64_t{1} << 16;  // 2 x 256 KiB: inside L2, so compute shows
constexpr std::int64_t kSmall = std::int64_t{1} << 20;
constexpr std::int64_t kLarge = std::int64_t{1} << 24;

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("n")->Arg(kSmall)->Arg(kLarge)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

/// Adds the L2-resident size, where the copy is not the limit and SIMD vs scalar code shows.
void sizes_and_in_cache(benchmark::internal::Benchmark* b) {
  b->Arg(kInCache);
  sizes(b);
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

BENCHMARK(BM_copy)->Apply(sizes_and_in_cache);
BENCHMARK(BM_fake_quantize_per_tensor)->Apply(sizes_and_in_cache);
BENCHMARK(BM_fake_quantize_per_tensor_scalar)->Apply(sizes_and_in_cache);
BENCHMARK(BM_fake_quantize_per_channel)->Apply(channel_layouts);
BENCHMARK(BM_fake_quantize_masked)->Apply(sizes);
BENCHMARK(BM_quantize_int8)->Apply(sizes);
BENCHMARK(BM_quantize_uint8)->Apply(sizes);
BENCHMARK(BM_quantize_int16)->Apply(sizes);
BENCHMARK(BM_quantize_int4)->Apply(sizes);
BENCHMARK(BM_dequantize_int8)->Apply(sizes);
BENCHMARK(BM_minmax)->Apply(sizes);
BENCHMARK(BM_minmax_per_channel)->Apply(channel_layouts);

namespace {

/// Values that stress the grid: exact .5 ties, NaN, infinities, huge values, among normal noise.
std::vector<float> awkward(std::size_t n, float scale) {
  std::mt19937 rng(7u);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 15), level(-140, 140);
  std::vector<float> v(n);
  for (auto& x : v) {
    switch (pick(rng)) {
      case 0: x = (static_cast<float>(level(rng)) + 0.5f) * scale; break;
      case 1: x = std::numeric_limits<float>::quiet_NaN(); break;
      case 2: x = (level(rng) & 1) ? std::numeric_limits<float>::infinity() : -1e30f; break;
      default: x = normal(rng);
    }
  }
  return v;
}

bool same_bytes(const void* a, const void* b, std::size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

/// The streaming-store path only runs on outputs of stream_store_bytes or more, which the unit
/// tests do not reach; before timing it, check it is bit-identical to the scalar reference:
/// row by row over every alignment, mask offset and short length, and on whole 16M tensors.
bool streaming_matches_scalar() {
  namespace k = amctq::kernels;
  using amctq::round_mode;
  const auto p = symmetric_params(8);
  const k::uniform_grid ug{p.scale[0], 0.0f, -128.0f, 127.0f};
  std::vector<float> sc(301), zp(301);
  for (std::size_t c = 0; c < sc.size(); ++c) {
    sc[c] = p.scale[0] * (0.5f + static_cast<float>(c) / 300.0f);
    zp[c] = static_cast<float>(static_cast<int>(c % 21) - 10);
  }
  const k::lane_grid lg{sc.data(), zp.data(), -128.0f, 127.0f};
  const auto x = awkward(300, p.scale[0]);
  bool ok = true;
  for (std::size_t n : {0u, 1u, 7u, 15u, 16u, 17u, 40u, 255u, 300u - 24u})
    for (std::size_t off = 0; off < 24; ++off)
      for (std::size_t bit0 : {0u, 3u, 8u, 13u}) {
        std::vector<float> ys(n + 24, 9.0f), yr(n + 24, 9.0f);
        std::vector<std::uint8_t> ms(64, 0x5Au), mr(64, 0x5Au);
        k::fake_quantize_row<round_mode::half_even>(k::default_arch{}, x.data() + off, ys.data() + off, n, ug,
                                                    ms.data(), bit0, true);
        k::fake_quantize_row<round_mode::half_even>(k::scalar_arch{}, x.data() + off, yr.data() + off, n, ug,
                                                    mr.data(), bit0);
        k::detail::stream_fence();
        ok &= same_bytes(ys.data(), yr.data(), ys.size() * sizeof(float)) && ms == mr;
        k::fake_quantize_row<round_mode::half_away>(k::default_arch{}, x.data() + off, ys.data() + off, n, lg,
                                                    nullptr, 0, true);
        k::fake_quantize_row<round_mode::half_away>(k::scalar_arch{}, x.data() + off, yr.data() + off, n, lg);
        k::detail::stream_fence();
        ok &= same_bytes(ys.data(), yr.data(), ys.size() * sizeof(float));
      }
  const std::size_t n = static_cast<std::size_t>(kLarge);
  const auto big = awkward(n, p.scale[0]);
  std::vector<float> ys(n), yr(n);
  std::vector<std::uint8_t> ms(n / 8), mr(n / 8);
  const auto xv = amctq::make_view(big.data(), {static_cast<std::ptrdiff_t>(n)});
  amctq::fake_quantize(xv, amctq::make_view(ys.data(), {static_cast<std::ptrdiff_t>(n)}), p,
                       round_mode::half_even, ms.data());
  amctq::fake_quantize<k::scalar_arch>(xv, amctq::make_view(yr.data(), {static_cast<std::ptrdiff_t>(n)}), p,
                                       round_mode::half_even, mr.data());
  ok &= same_bytes(ys.data(), yr.data(), n * sizeof(float)) && ms == mr;
  const auto pc = channel_params(64, 1);
  const auto xm = amctq::make_view(big.data(), {static_cast<std::ptrdiff_t>(n / 64), 64});
  amctq::fake_quantize(xm, amctq::make_view(ys.data(), {static_cast<std::ptrdiff_t>(n / 64), 64}), pc);
  amctq::fake_quantize<k::scalar_arch>(xm, amctq::make_view(yr.data(), {static_cast<std::ptrdiff_t>(n / 64), 64}), pc);
  ok &= same_bytes(ys.data(), yr.data(), n * sizeof(float));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (!streaming_matches_scalar()) {
    std::fprintf(stderr, "bench_kernels: the streaming-store fake-quant differs from the scalar reference\n");
    return 2;
  }
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Name the ISA the kernels were compiled for, so every report says what it measured.
  benchmark::AddCustomContext("amctq_arch", amctq::kernels::default_arch::name());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
