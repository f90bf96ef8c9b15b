// Runs ONNX's own backend node tests (made by generate_node_data.py) through the reference
// executor. A test runs when every op in its graph is one the executor implements; its outputs
// must match the stored ones to ONNX's default tolerance (rtol 1e-3, atol 1e-7), NaNs matching
// NaNs.
//
// Three outcomes besides a pass, each with its own list:
// - unsupported: an op the executor does not implement, or a dtype / attribute it rejects with
//   errc::unsupported. Such a test must be pinned in the --unsupported file (one test a line,
//   '#' and the reason); an unsupported test that is not pinned fails the run (an op that
//   regresses into "unsupported" is noticed), and so does a pinned test that now runs, or
//   one the data does not hold (the list cannot go stale). Without --unsupported nothing may
//   be unsupported. A pinned test whose reason changed is reported but does not fail.
// - excluded (--exclusions): tests known to fail for a stated reason; one that passes fails
//   the run.
// - any other failure fails the run.
// Every failure message names the line to add to or remove from which file. After adding ops
// to the executor, --write-unsupported FILE rewrites the pinned list from this run (grouped by
// op, the file's leading comment kept); `cmake --build build --target update_node_test_unsupported`
// regenerates the data and does that for tests/graph_peers/node_test_unsupported.txt.
//
// The same runner checks the peer models (export_models.py writes them in the same layout)
// with no --unsupported list (every op and feature must run) and a tighter tolerance.
//
// usage: amctq_onnx_node_tests DATA_DIR [--exclusions FILE] [--unsupported FILE]
//                              [--write-unsupported FILE] [--rtol R] [--atol A] [--atol-of-max] [-v]
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

// A list of tests, one a line: the test's name, then optionally '#' and the reason. Lines that
// hold only a comment are skipped. A name listed twice is an error.
struct listed {
  std::string reason;
  int line = 0;
};

std::map<std::string, listed> read_list(const std::string& path) {
  std::map<std::string, listed> names;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    const auto hash = text.find('#');
    std::istringstream words(text.substr(0, hash));
    std::string name;
    if (!(words >> name)) continue;
    std::string reason = hash == std::string::npos ? "" : text.substr(hash + 1);
    reason.erase(0, reason.find_first_not_of(' '));
    if (!names.emplace(name, listed{reason, line}).second)
      throw std::runtime_error(path + ":" + std::to_string(line) + ": " + name + " is listed twice");
  }
  return names;
}

// The line of a pinned list that names the onnx version whose node tests it was made from.
const std::string version_tag = "made from the node tests of onnx ";

// The first line of a file ("" when there is none).
std::string first_line(const fs::path& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

std::string list_version(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  while (std::getline(in, text))
    if (text.rfind("# --- " + version_tag, 0) == 0) return text.substr(6 + version_tag.size());
  return "";
}

// The leading comment block of a list file (kept when the file is rewritten).
std::string leading_comment(const std::string& path) {
  std::ifstream in(path);
  std::string text, head;
  while (std::getline(in, text) && (text.empty() || text[0] == '#')) {
    if (text.rfind("# --- ", 0) == 0) break;  // a group header: the list has begun
    head += text + "\n";
  }
  return head;
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
  std::vector<std::string> missing;  // in graph order, each once
  for (const auto& n : m.main.nodes)
    if (!graph::is_supported(n) && std::find(missing.begin(), missing.end(), n.op_type) == missing.end())
      missing.push_back(n.op_type);
  if (!missing.empty()) {
    why = missing[0] + ": op not implemented";
    for (std::size_t k = 1; k < missing.size(); ++k) why += (k == 1 ? " (nor " : ", ") + missing[k];
    if (missing.size() > 1) why += ")";
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
    if (e.code() != errc::unsupported) {
      why = e.what();
      return outcome::fail;
    }
    // "node 'name' (Op): message" becomes "Op: message": the reason a pinned line gives, and the
    // op the pinned list is grouped by. Node names are left out: ONNX's tests leave them empty.
    why = e.body();
    const auto open = why.find(" ("), close = why.find("): ");
    if (why.rfind("node '", 0) == 0 && open != std::string::npos && close != std::string::npos && open < close)
      why = why.substr(open + 2, close - open - 2) + ": " + why.substr(close + 3);
    return outcome::unsupported_feature;
  } catch (const std::exception& e) {
    why = e.what();
    return outcome::fail;
  }
  return outcome::pass;
}


// The pinned list as --write-unsupported writes it: the kept leading comment, then one group a
// op (the op before the reason's ':'), tests in name order.
void write_unsupported(const std::string& path, const std::string& head, const std::string& onnx_version,
                       const std::map<std::string, std::string>& now) {
  std::map<std::string, std::vector<std::string>> by_op;
  for (const auto& [name, reason] : now) by_op[reason.substr(0, reason.find(':'))].push_back(name);
  std::ostringstream out;
  out << head;
  out << "# --- " << version_tag << onnx_version << "\n";
  for (const auto& [op, names] : by_op) {
    out << "# --- " << op << " (" << names.size() << ")\n";
    for (const auto& name : names) out << name << "  # " << now.at(name) << "\n";
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << out.str();
    if (!f.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  fs::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: amctq_onnx_node_tests DATA_DIR [--exclusions FILE] [--unsupported FILE] "
                 "[--write-unsupported FILE] [--rtol R] [--atol A] [--atol-of-max] [-v]\n";
    return 2;
  }
  const fs::path root = argv[1];
  bool verbose = false;
  tolerance tol;
  std::map<std::string, listed> excluded, pinned;
  std::string exclusions_file = "the exclusions file", pinned_file, write_file;
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
    else if (a == "--atol-of-max") tol.atol_of_max = true;
    else if (a == "--rtol") tol.rtol = std::stod(value());
    else if (a == "--atol") tol.atol = std::stod(value());
    else if (a == "--exclusions") excluded = read_list(exclusions_file = value());
    else if (a == "--unsupported") pinned = read_list(pinned_file = value());
    else if (a == "--write-unsupported") write_file = value();
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
  const std::string data_version = first_line(root / "onnx_version.txt");
  const std::string pinned_name = pinned_file.empty() ? "an --unsupported file" : pinned_file;
  int pass = 0, fail = 0, unsupported_op = 0, unsupported_feature = 0, excluded_fail = 0, excluded_pass = 0;
  std::map<std::string, std::string> unsupported_now;  // test -> reason, this run
  std::vector<std::string> to_pin, to_unpin, to_unexclude, reason_changed;
  std::map<std::string, int> missing_ops;
  std::set<std::string> seen;
  for (const auto& dir : cases) {
    const std::string name = dir.filename().string();
    seen.insert(name);
    std::string why;
    outcome o;
    try {
      o = run_case(dir, tol, why);
    } catch (const std::exception& e) {  // the model itself did not read
      o = outcome::fail;
      why = std::string("reading: ") + e.what();
    }
    const auto ex = excluded.find(name);
    const auto pin = pinned.find(name);
    if (ex != excluded.end() && pin != pinned.end()) {
      ++fail;
      std::cout << "FAIL " << name << ": listed both in " << exclusions_file << ":" << ex->second.line << " and in "
                << pinned_name << ":" << pin->second.line << "; keep the line of the list that matches: " << why
                << "\n";
      continue;
    }
    const bool unsupported = o == outcome::unsupported_op || o == outcome::unsupported_feature;
    if (unsupported) {
      unsupported_now[name] = why;
      ++(o == outcome::unsupported_op ? unsupported_op : unsupported_feature);
      if (o == outcome::unsupported_op) ++missing_ops[why.substr(0, why.find(':'))];
      if (pin == pinned.end()) {
        to_pin.push_back(name + "  # " + why);
        std::cout << "FAIL " << name << ": unsupported and not pinned (" << why << ")\n";
      } else {
        if (pin->second.reason != why) reason_changed.push_back(name + "  # " + why);
        if (verbose) std::cout << "unsupported (pinned) " << name << ": " << why << "\n";
      }
      continue;
    }
    if (pin != pinned.end()) {
      to_unpin.push_back(pinned_name + ":" + std::to_string(pin->second.line) + ": " + name + "  # " +
                         pin->second.reason);
      std::cout << "FAIL " << name << ": pinned as unsupported (" << pin->second.reason << ") but now "
                << (o == outcome::pass ? "passes" : "runs and fails: " + why) << "\n";
    }
    switch (o) {
      case outcome::pass:
        ++pass;
        if (ex != excluded.end()) {
          ++excluded_pass;
          to_unexclude.push_back(exclusions_file + ":" + std::to_string(ex->second.line) + ": " + name);
          std::cout << "FAIL " << name << ": NOW PASSES, remove it from " << exclusions_file << "\n";
        }
        if (verbose) std::cout << "pass " << name << "\n";
        break;
      default:
        if (ex != excluded.end()) {
          ++excluded_fail;
          std::cout << "excluded " << name << ": " << why << "\n";
        } else {
          ++fail;
          std::cout << "FAIL " << name << ": " << why << "\n";
        }
        break;
    }
  }
  // Listed tests the data does not hold: an entry for a renamed or dropped test, or data from
  // another onnx version.
  std::vector<std::string> unknown;
  for (const auto& [name, l] : pinned)
    if (!seen.count(name)) unknown.push_back(pinned_name + ":" + std::to_string(l.line) + ": " + name);
  for (const auto& [name, l] : excluded)
    if (!seen.count(name)) unknown.push_back(exclusions_file + ":" + std::to_string(l.line) + ": " + name);

  if (verbose) {
    std::cout << "ops missing (tests):";
    for (const auto& [op, n] : missing_ops) std::cout << " " << op << "(" << n << ")";
    std::cout << "\n";
  }
  std::cout << "ONNX node tests: " << cases.size() << " total; ran " << pass + fail + excluded_fail
            << " with supported ops: " << pass << " passed, " << fail << " failed, " << excluded_fail
            << " excluded (known, see " << exclusions_file << "); " << unsupported_feature
            << " rejected with errc::unsupported (dtype/attribute) and " << unsupported_op
            << " with an op not implemented, " << unsupported_now.size() - to_pin.size() << " of them pinned in "
            << pinned_name << "\n";

  if (!write_file.empty()) {
    write_unsupported(write_file, leading_comment(write_file), data_version, unsupported_now);
    std::cout << "wrote " << unsupported_now.size() << " unsupported tests to " << write_file
              << " (review the diff before committing)\n";
    return fail == 0 && excluded_pass == 0 ? 0 : 1;
  }
  std::string rewrite = "Or rewrite the whole list from this run (cmake --build <build> --target "
                        "update_node_test_unsupported does, with fresh data):\n ";
  for (int i = 0; i < argc; ++i) rewrite += std::string(" ") + argv[i];
  rewrite += " --write-unsupported " + (pinned_file.empty() ? std::string("FILE") : pinned_file);
  if (!to_pin.empty()) {
    std::cout << "\n" << to_pin.size() << " test(s) are unsupported but not pinned. If that is expected, add "
              << (to_pin.size() == 1 ? "this line" : "these lines") << " to " << pinned_name << ":\n";
    for (const auto& l : to_pin) std::cout << l << "\n";
  }
  if (!to_unpin.empty()) {
    std::cout << "\n" << to_unpin.size() << " pinned test(s) now run. Remove "
              << (to_unpin.size() == 1 ? "this line" : "these lines") << ":\n";
    for (const auto& l : to_unpin) std::cout << l << "\n";
  }
  if (!to_unexclude.empty()) {
    std::cout << "\n" << to_unexclude.size() << " excluded test(s) now pass. Remove:\n";
    for (const auto& l : to_unexclude) std::cout << l << "\n";
  }
  if (!unknown.empty()) {
    std::cout << "\n" << unknown.size() << " listed test(s) are not in " << root.string()
              << " (renamed, dropped, or data from another onnx version). Remove:\n";
    for (const auto& l : unknown) std::cout << l << "\n";
  }
  if (!reason_changed.empty()) {
    std::cout << "\nnote: " << reason_changed.size() << " pinned test(s) are unsupported for another reason now "
              << "(not a failure); their lines would read:\n";
    for (const auto& l : reason_changed) std::cout << l << "\n";
  }
  if (!to_pin.empty() || !to_unpin.empty() || !reason_changed.empty() || !unknown.empty())
    std::cout << rewrite << "\n";
  const std::string pinned_version = pinned_file.empty() ? "" : list_version(pinned_file);
  if (!pinned_version.empty() && pinned_version != data_version)
    std::cout << "note: " << pinned_file << " was made from the node tests of onnx " << pinned_version
              << ", the data is from onnx " << (data_version.empty() ? "(unknown)" : data_version)
              << " (scripts/setup.sh pins the version)\n";
  return fail == 0 && excluded_pass == 0 && to_pin.empty() && to_unpin.empty() && unknown.empty() ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "amctq_onnx_node_tests: " << e.what() << "\n";
  return 2;
}
