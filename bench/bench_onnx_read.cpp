// Target: read a ~100 MB ONNX model at >= 1 GB/s. Writes the model once with amctq's
// writer (a few big Gemm weights), then times read_onnx (best of N, page cache warm) next to a
// plain memcpy of the same bytes into fresh memory, the floor any reader that returns owning
// tensors pays.
//
//   bench_onnx_read [MB=100] [RUNS=7] [DIR=/tmp]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "amctq/io/onnx.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

amctq::graph::model big_gemm_model(std::size_t mb) {
  using namespace amctq::graph;
  model m;
  m.opset_imports = {{"", 13}};
  m.producer_name = "bench_onnx_read";
  const std::int64_t k = 2048;  // a [2048 x 2048] float weight is 16 MiB
  const std::size_t layers = std::max<std::size_t>(1, (mb + 8) / 16);
  std::string prev = "x";
  m.main.inputs.push_back({"x", dtype::float32, std::vector<dimension>{{1, ""}, {k, ""}}, "", ""});
  for (std::size_t l = 0; l < layers; ++l) {
    initializer w;
    w.name = "w" + std::to_string(l);
    w.value = tensor(dtype::float32, {k, k});
    float* p = w.value.data<float>();
    for (std::size_t i = 0; i < w.value.size(); ++i) p[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f;
    m.main.initializers.push_back(std::move(w));
    node n;
    n.op_type = "Gemm";
    n.name = "gemm" + std::to_string(l);
    n.inputs = {prev, "w" + std::to_string(l)};
    n.outputs = {"y" + std::to_string(l)};
    prev = n.outputs[0];
    m.main.nodes.push_back(std::move(n));
  }
  m.main.outputs.push_back({prev, dtype::float32, std::nullopt, "", ""});
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  const std::filesystem::path dir = argc > 3 ? argv[3] : std::filesystem::temp_directory_path();
  const std::string path = (dir / "amctq_bench_onnx_read.onnx").string();

  amctq::io::write_onnx(big_gemm_model(mb), path);
  const double bytes = static_cast<double>(std::filesystem::file_size(path));

  double best_read = 1e30;
  std::size_t check = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const amctq::graph::model m = amctq::io::read_onnx(path);
    best_read = std::min(best_read, seconds_since(t0));
    check += m.main.initializers.size();
  }
  // memcpy floor: same byte count into freshly allocated memory (as the reader's tensors are).
  std::vector<char> src(static_cast<std::size_t>(bytes), 1);
  double best_copy = 1e30, best_warm = 1e30;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<char> dst(src.begin(), src.end());
    best_copy = std::min(best_copy, seconds_since(t0));
    check += static_cast<std::size_t>(dst[dst.size() / 2]);
  }
  std::vector<char> warm(src.size(), 0);
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(warm.data(), src.data(), src.size());
    best_warm = std::min(best_warm, seconds_since(t0));
    check += static_cast<std::size_t>(warm[warm.size() / 3]);
  }
  std::printf("model: %.1f MB (%zu checks)\n", bytes / 1e6, check);
  std::printf("read_onnx:          %.3f s  %.2f GB/s\n", best_read, bytes / best_read / 1e9);
  std::printf("memcpy (fresh dst): %.3f s  %.2f GB/s\n", best_copy, bytes / best_copy / 1e9);
  std::printf("memcpy (warm dst):  %.3f s  %.2f GB/s\n", best_warm, bytes / best_warm / 1e9);
  std::printf("read_onnx time / fresh memcpy time: %.2f\n", best_read / best_copy);
  std::filesystem::remove(path);
  return bytes / best_read >= 1e9 ? 0 : 1;
}
