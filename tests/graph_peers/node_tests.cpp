// Runs ONNX's own backend node tests (made by generate_node_data.py) through the reference
// executor. A test runs when every op in its graph is one the executor implements; its outputs
// must match the stored ones to ONNX's default tolerance (rtol 1e-3, atol 1e-7), NaNs matching
// NaNs. Tests whose ops the executor rejects as unsupported (a dtype or attribute it does not
// implement, with a clear amctq::error) are counted and listed, not failed. Exit code 1 when
// any test fails that is not listed in the exclusions file.
//
// The same runner checks the peer models (export_models.py writes them in the same layout)
// with --strict (an unsupported op or feature fails) and a tighter tolerance.
//
// usage: amctq_onnx_node_tests DATA_DIR [--exclusions FILE] [--rtol R] [--atol A]
//                              [--atol-of-max] [--strict] [-v]
//   --atol-of-max: atol is A times the largest |expected| of each output (a tolerance relative
//   to the output's range, for whole networks whose outputs cross zero).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "amctq/graph/executor.hpp"
#include "amctq/io/onnx_reader.hpp"

namespace fs = std::filesystem;
using namespace amctq;

namespace {

std::set<std::string> read_exclusions(const std::string& path) {
  std::set<std::string> names;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto hash = line.find('#');
    std::istringstream words(line.substr(0, hash));
    std::string name;
    if (words >> name) names.insert(name);
  }
  return names;
}

struct tolerance {
  double rtol = 1e-3, atol = 1e-7;
  bool atol_of_max = false;
};

template <class T>
bool close_float(const graph::tensor& got, const graph::tensor& want, tolerance tol, std::string& why) {
  const T* g = got.data<T>();
  const T* w = want.data<T>();
  double rtol = tol.rtol, atol = tol.atol;
  if (tol.atol_of_max) {
    double m = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
      if (std::isfinite(double(w[i]))) m = std::max(m, std::abs(double(w[i])));
    atol *= m;
  }
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double a = g[i], b = w[i];
    if (std::isnan(b) && std::isnan(a)) continue;
    if (std::isinf(b) && a == b) continue;
    if (!(std::abs(a - b) <= atol + rtol * std::abs(b))) {
      why = "element " + std::to_string(i) + ": got " + std::to_string(a) + ", want " + std::to_string(b);
      return false;
    }
  }
  return true;
}

bool compare(const graph::tensor& got, const graph::tensor& want, tolerance tol, std::string& why) {
  if (got.type() != want.type()) {
    why = std::string("type ") + graph::to_string(got.type()) + " vs " + graph::to_string(want.type());
    return false;
  }
  if (got.shape() != want.shape()) {
    why = "shape " + graph::ops::shape_string(got.shape()) + " vs " + graph::ops::shape_string(want.shape());
    return false;
  }
  if (got.type() == graph::dtype::float32) return close_float<float>(got, want, tol, why);
  if (got.type() == graph::dtype::float64) return close_float<double>(got, want, tol, why);
  if (got.bytes() != want.bytes()) {
    why = "bytes differ";
    return false;
  }
  return true;
}

enum class outcome { pass, fail, unsupported_op, unsupported_feature };

outcome run_case(const fs::path& dir, tolerance tol, std::string& why) {
  const graph::model m = io::read_onnx((dir / "model.onnx").string());
  for (const auto& n : m.main.nodes)
    if (!graph::is_supported(n)) {
      why = n.op_type;
      return outcome::unsupported_op;
    }
  try {
    graph::executor ex(m);
    std::vector<fs::path> sets;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
    std::sort(sets.begin(), sets.end());
    std::vector<std::string> free_inputs;
    for (const auto& vi : m.main.inputs)
      if (!m.main.find_initializer(vi.name)) free_inputs.push_back(vi.name);
    for (const auto& ds : sets) {
      std::map<std::string, graph::tensor> feeds;
      for (std::size_t j = 0; fs::exists(ds / ("input_" + std::to_string(j) + ".pb")); ++j) {
        if (j >= free_inputs.size()) throw std::runtime_error("more input files than graph inputs");
        feeds[free_inputs[j]] = io::read_onnx_tensor((ds / ("input_" + std::to_string(j) + ".pb")).string()).value;
      }
      const auto out = ex.run(feeds);
      for (std::size_t j = 0; j < m.main.outputs.size(); ++j) {
        const auto file = ds / ("output_" + std::to_string(j) + ".pb");
        if (!fs::exists(file)) continue;
        const graph::tensor want = io::read_onnx_tensor(file.string()).value;
        if (!compare(out.at(m.main.outputs[j].name), want, tol, why)) {
          why = ds.filename().string() + " output " + m.main.outputs[j].name + ": " + why;
          return outcome::fail;
        }
      }
    }
  } catch (const amctq::error& e) {
    why = e.what();
    return e.code() == errc::unsupported ? outcome::unsupported_feature : outcome::fail;
  } catch (const std::exception& e) {
    why = e.what();
    return outcome::fail;
  }
  return outcome::pass;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: amctq_onnx_node_tests DATA_DIR [--exclusions FILE] [--rtol R] [--atol A] [--atol-of-max] "
                 "[--strict] [-v]\n";
    return 2;
  }
  const fs::path root = argv[1];
  bool verbose = false, strict = false;
  tolerance tol;
  std::set<std::string> excluded;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-v") verbose = true;
    else if (a == "--strict") strict = true;
    else if (a == "--atol-of-max") tol.atol_of_max = true;
    else if (a == "--rtol") tol.rtol = std::stod(value());
    else if (a == "--atol") tol.atol = std::stod(value());
    else if (a == "--exclusions") excluded = read_exclusions(value());
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());
  if (cases.empty()) {
    std::cerr << "no node tests under " << root << "\n";
    return 2;
  }
  int pass = 0, fail = 0, unsupported_op = 0, unsupported_feature = 0, excluded_fail = 0, excluded_pass = 0;
  std::map<std::string, int> missing_ops;
  for (const auto& dir : cases) {
    const std::string name = dir.filename().string();
    std::string why;
    outcome o;
    try {
      o = run_case(dir, tol, why);
    } catch (const std::exception& e) {  // the model itself did not read
      o = outcome::fail;
      why = std::string("reading: ") + e.what();
    }
    const bool skip = excluded.count(name) > 0;
    switch (o) {
      case outcome::pass:
        ++pass;
        if (skip) {
          ++excluded_pass;
          std::cout << "NOW PASSES (remove from exclusions) " << name << "\n";
        }
        if (verbose) std::cout << "pass " << name << "\n";
        break;
      case outcome::fail:
        if (skip) {
          ++excluded_fail;
          std::cout << "excluded " << name << ": " << why << "\n";
        } else {
          ++fail;
          std::cout << "FAIL " << name << ": " << why << "\n";
        }
        break;
      case outcome::unsupported_op:
        ++unsupported_op;
        ++missing_ops[why];
        if (strict) std::cout << "FAIL " << name << ": op " << why << " is not implemented\n";
        break;
      case outcome::unsupported_feature:
        ++unsupported_feature;
        std::cout << "unsupported " << name << ": " << why << "\n";
        break;
    }
  }
  if (verbose) {
    std::cout << "ops missing (tests):";
    for (const auto& [op, n] : missing_ops) std::cout << " " << op << "(" << n << ")";
    std::cout << "\n";
  }
  std::cout << "ONNX node tests: " << cases.size() << " total; ran " << pass + fail + excluded_fail << " with supported ops: "
            << pass << " passed, " << fail << " failed, " << excluded_fail << " excluded (known, see exclusions file); "
            << unsupported_feature << " rejected with errc::unsupported (dtype/attribute); " << unsupported_op
            << " skipped (op not implemented)\n";
  if (strict && (unsupported_op || unsupported_feature)) return 1;
  return fail == 0 && excluded_pass == 0 ? 0 : 1;
}
