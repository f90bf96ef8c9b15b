// Times the reference executor on one model (one thread unless told): reads model.onnx and
// test_data_set_0/input_*.pb from a case folder (the layout tests/graph_peers/export_models.py
// writes), runs it `warmup` + `runs` times and prints the median and minimum wall time in ms as
// one JSON line, with the median CPU time of the process per run (what a shared, oversubscribed
// machine distorts least) and the largest difference from ONNX Runtime's stored output.
// bench_executor.py runs ONNX Runtime on the same folder and prints the ratio.
//
// After runs and warmup: `profile` also prints the time spent per op type (measured between
// consecutive tensor hooks, so the hook cost is included) on stderr, largest first; `threads=N`
// gives the executor N intra-op threads.
//
// usage: bench_executor CASE_DIR [runs=20] [warmup=3] [profile] [threads=N]
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <utility>
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
    bool profile = false;
    for (int a = 4; a < argc; ++a) {
      const std::string arg = argv[a];
      if (arg == "profile") profile = true;
      else if (arg.rfind("threads=", 0) == 0) ex.set_intra_op_threads(std::atoi(arg.c_str() + 8));
      else throw std::invalid_argument("unknown argument '" + arg + "'");
    }
    std::map<std::string, std::string> op_of;
    for (const auto& n : m.main.nodes)
      for (const auto& o : n.outputs) op_of[o] = n.op_type;
    std::map<std::string, double> per_op;
    auto last = std::chrono::steady_clock::now();
    if (profile)
      ex.hooks().on_any([&](const std::string& name, const graph::tensor&) {
        const auto now = std::chrono::steady_clock::now();
        auto it = op_of.find(name);
        if (it != op_of.end()) per_op[it->second] += std::chrono::duration<double, std::milli>(now - last).count();
        last = now;
      });
    std::vector<double> ms, cpu_ms;
    auto cpu_now = [] {
      timespec ts{};
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
    };
    for (int i = 0; i < warmup + runs; ++i) {
      if (i == warmup) per_op.clear();
      const double c0 = cpu_now();
      const auto t0 = std::chrono::steady_clock::now();
      last = t0;
      const auto out = ex.run(feeds);
      const auto t1 = std::chrono::steady_clock::now();
      const double c1 = cpu_now();
      if (i >= warmup) {
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        cpu_ms.push_back(c1 - c0);
      }
    }
    // Same answer as ONNX Runtime's stored output: the largest absolute difference, printed.
    double max_diff = 0;
    const fs::path expected = dir / "test_data_set_0" / "output_0.pb";
    if (fs::exists(expected) && !m.main.outputs.empty()) {
      const graph::tensor want = io::read_onnx_tensor(expected.string()).value;
      const auto got = ex.run(feeds);
      const graph::tensor& y = got.at(m.main.outputs[0].name);
      if (y.size() != want.size()) throw std::runtime_error("output size differs from output_0.pb");
      for (std::size_t k = 0; k < y.size(); ++k)
        max_diff = std::max(max_diff, static_cast<double>(std::abs(y.data<float>()[k] - want.data<float>()[k])));
    }
    std::sort(ms.begin(), ms.end());
    std::sort(cpu_ms.begin(), cpu_ms.end());
    std::vector<std::pair<double, std::string>> ranked;
    for (const auto& [op, t] : per_op) ranked.emplace_back(t / runs, op);
    std::sort(ranked.rbegin(), ranked.rend());
    for (const auto& [t, op] : ranked) std::fprintf(stderr, "%-24s %8.3f ms/run\n", op.c_str(), t);
    std::printf("{\"model\": \"%s\", \"runs\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f, \"cpu_median_ms\": %.3f, \"max_abs_diff_vs_ort\": %.3g}\n",
                dir.filename().c_str(), runs, ms[ms.size() / 2], ms.front(), cpu_ms[cpu_ms.size() / 2], max_diff);
  } catch (const std::exception& e) {
    std::cerr << "bench_executor: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
