// `amctq run`: runs a model on .npy inputs with amctq's executor and writes .npy outputs. The op
// table is graph::simulation_ops() (amctq/graph/integer_sim.hpp): the float reference executor's
// ops plus QuantizeLinear / DequantizeLinear / QLinearConv / ConvInteger / MatMulInteger computed
// as ONNX Runtime computes them, so `amctq run` also simulates the fake-quant and deploy models
// that `amctq quantize` saves (the deploy model bit for bit).
//
//   amctq run --model M.onnx --input X.npy [--input more.npy | --input NAME=file.npy]...
//             [--output Y.npy | --output-dir DIR]
//
// Inputs given as plain paths bind, in order, to the graph inputs that are not initializers;
// NAME=path binds by name. --output writes the first graph output; --output-dir writes every
// output as DIR/<name>.npy (characters outside [A-Za-z0-9_.-] become '_'). Without either, the
// first output goes to stdout's summary only (shape and a few values).
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/executor.hpp"
#include "amctq/graph/integer_sim.hpp"
#include "amctq/io/npy.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "cli_report.hpp"

namespace {

const char* const run_usage =
    "usage: amctq run --model M.onnx --input X.npy [--input more.npy | --input NAME=X.npy]...\n"
    "                 [--output Y.npy | --output-dir DIR] [--threads N]\n"
    "Runs M.onnx with amctq's executor: the float reference ops plus QuantizeLinear,\n"
    "DequantizeLinear, QLinearConv, ConvInteger and MatMulInteger as ONNX Runtime computes them,\n"
    "so it also simulates the fake-quant and deploy models amctq quantize saves (the deploy model\n"
    "bit for bit). Positional --input files bind in order to the graph's\n"
    "non-initializer inputs; NAME=path binds by name. --output writes the first output,\n"
    "--output-dir writes every output as DIR/<name>.npy (characters other than letters, digits,\n"
    "'_', '-' and '.' become '_'; a name that then repeats gets _2, _3, ...). --threads N: the\n"
    "threads Conv, MatMul and the row-wise ops share their work over (default: one per core);\n"
    "the outputs are the same bytes for every N.\n"
    "Exit status 0 on success; on error, one line on stderr and status 1 (2 for bad usage).\n";

std::string file_stem_for(const std::string& name) {
  std::string s = name.empty() ? "output" : name;
  for (char& ch : s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.')) ch = '_';
  return s;
}

}  // namespace

int cmd_run(int argc, char** argv) {
  using namespace amctq;
  std::string model_path, output, output_dir;
  std::vector<std::string> inputs;
  int threads = 0;
  try {
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "run" && i == 0) continue;  // tolerate being passed the subcommand itself
      if (a == "-h" || a == "--help") {
        std::cout << run_usage;
        return 0;
      }
      auto value = [&]() -> std::string {
        AMCTQ_CHECK(i + 1 < argc, errc::invalid_argument, "amctq run", "option ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--model") model_path = value();
      else if (a == "--input") inputs.push_back(value());
      else if (a == "--output") output = cli::path_value(value(), a, "amctq run");
      else if (a == "--output-dir") output_dir = cli::path_value(value(), a, "amctq run");
      else if (a == "--threads") threads = static_cast<int>(cli::count_value(value(), a, "amctq run", 1, 4096));
      else AMCTQ_THROW(errc::invalid_argument, "amctq run", "unknown option '", a, "' (see amctq run --help)");
    }
    AMCTQ_CHECK(!model_path.empty(), errc::invalid_argument, "amctq run", "--model is required");
    AMCTQ_CHECK(!inputs.empty(), errc::invalid_argument, "amctq run", "at least one --input is required");
    AMCTQ_CHECK(output.empty() || output_dir.empty(), errc::invalid_argument, "amctq run",
                "--output and --output-dir are exclusive");
  } catch (const std::exception& e) {
    return cli::report(e, "amctq run", cli::bad_usage);
  }
  try {

    const graph::model m = io::read_onnx(model_path);
    std::vector<std::string> free_inputs;
    for (const auto& vi : m.main.inputs)
      if (!m.main.find_initializer(vi.name)) free_inputs.push_back(vi.name);
    std::map<std::string, graph::tensor> feeds;
    std::size_t next = 0;
    for (const auto& spec : inputs) {
      std::string name, path = spec;
      const auto eq = spec.find('=');
      if (eq != std::string::npos && !std::filesystem::exists(spec)) {
        name = spec.substr(0, eq);
        path = spec.substr(eq + 1);
      } else {
        AMCTQ_CHECK(next < free_inputs.size(), errc::invalid_argument, "amctq run", "--input ", spec,
                    ": the model has only ", free_inputs.size(), " inputs");
        name = free_inputs[next++];
      }
      AMCTQ_CHECK(!feeds.count(name), errc::invalid_argument, "amctq run", "input '", name, "' is given twice");
      feeds[name] = io::read_npy(path);
    }

    graph::executor ex(m, graph::simulation_ops());
    ex.set_intra_op_threads(threads > 0 ? threads : graph::ops::available_cores());
    const auto out = ex.run(feeds);
    AMCTQ_CHECK(!m.main.outputs.empty(), errc::invalid_argument, "amctq run", "the model has no outputs");
    if (!output_dir.empty()) {
      std::filesystem::create_directories(output_dir);
      std::set<std::string> taken;  // "a:b" and "a_b" both map to a_b: the second becomes a_b_2
      for (const auto& o : m.main.outputs) {
        std::string stem = file_stem_for(o.name);
        for (int k = 2; taken.count(stem); ++k) stem = file_stem_for(o.name) + "_" + std::to_string(k);
        taken.insert(stem);
        const auto path = (std::filesystem::path(output_dir) / (stem + ".npy")).string();
        io::write_npy(path, out.at(o.name));
        std::cerr << "amctq run: wrote " << o.name << " " << graph::ops::shape_string(out.at(o.name).shape()) << " to "
                  << path << "\n";
      }
    } else {
      const auto& first = m.main.outputs.front().name;
      const graph::tensor& y = out.at(first);
      if (!output.empty()) {
        io::write_npy(output, y);
        std::cerr << "amctq run: wrote " << first << " " << graph::ops::shape_string(y.shape()) << " to " << output << "\n";
      } else {
        std::cout << first << " " << graph::to_string(y.type()) << graph::ops::shape_string(y.shape()) << "\n";
      }
    }
    return 0;
  } catch (const std::exception& e) {
    return cli::report(e, "amctq run", cli::bad_input);
  }
}
