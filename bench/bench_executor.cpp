// Times the reference executor on one model, single-threaded: reads model.onnx and
// test_data_set_0/input_*.pb from a case folder (the layout tests/graph_peers/export_models.py
// writes), runs it `warmup` + `runs` times and prints the median and minimum wall time in ms as
// one JSON line. bench_executor.py runs ONNX Runtime on the same folder and prints the ratio.
//
// usage: bench_executor CASE_DIR [runs=20] [warmup=3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <vector>

#include "amctq/graph/executor.hpp"
#include "amctq/io/onnx_reader.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using namespace amctq;
  if (argc < 2) {
    std::cerr << "usage: bench_executor CASE_DIR [runs] [warmup]\n";
    return 2;
  }
  const fs::path dir = argv[1];
  const int runs = argc > 2 ? std::atoi(argv[2]) : 20, warmup = argc > 3 ? std::atoi(argv[3]) : 3;
  try {
    const graph::model m = io::read_onnx((dir / "model.onnx").string());
    std::vector<std::string> free_inputs;
    for (const auto& vi : m.main.inputs)
      if (!m.main.find_initializer(vi.name)) free_inputs.push_back(vi.name);
    std::map<std::string, graph::tensor> feeds;
    for (std::size_t j = 0; j < free_inputs.size(); ++j)
      feeds[free_inputs[j]] =
          io::read_onnx_tensor((dir / "test_data_set_0" / ("input_" + std::to_string(j) + ".pb")).string()).value;
    graph::executor ex(m);
    std::vector<double> ms;
    for (int i = 0; i < warmup + runs; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto out = ex.run(feeds);
      const auto t1 = std::chrono::steady_clock::now();
      if (i >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("{\"model\": \"%s\", \"runs\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f}\n", dir.filename().c_str(), runs,
                ms[ms.size() / 2], ms.front());
  } catch (const std::exception& e) {
    std::cerr << "bench_executor: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
