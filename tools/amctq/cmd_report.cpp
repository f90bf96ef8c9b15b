// `amctq report`: calibrates a model as `amctq quantize` does and writes one self-contained HTML
// page showing why each layer got the range it got (graph/layer_report.hpp, io/report_html.hpp;
// docs/report.md).
//
//   amctq report --model M.onnx --calib DATA [--calib ...] [--config C.json] [--out report.html]
//                [--input NAME] [--quiet]
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/layer_report.hpp"
#include "amctq/io/atomic_file.hpp"
#include "amctq/io/report_html.hpp"
#include "cli_report.hpp"
#include "pipeline_inputs.hpp"
#include "progress.hpp"

namespace {

const char* const report_usage =
    "usage: amctq report --model M.onnx --calib DATA [--calib ...] [--config C.json] [--out report.html]\n"
    "                    [--input NAME] [--quiet]\n"
    "Calibrates M.onnx as `amctq quantize` does (same config, same batches) and writes one\n"
    "self-contained HTML page (inline SVG, nothing fetched from the network): a summary table ordered\n"
    "by each layer's output SQNR against the float model (worst first), then per layer its settings,\n"
    "its input's histogram (log scale) with the range each calibration method picks and the chosen\n"
    "grid, and its weights' per-channel ranges against their grid. No model is written.\n"
    "  --model, --calib, --config, --input   as for amctq quantize\n"
    "  --out FILE       the page (default: report.html), replaced atomically\n"
    "  --quiet          no progress on stderr\n"
    "Exit status 0 on success; on error, one line on stderr and status 1 (2 for bad usage).\n";

}  // namespace

int cmd_report(int argc, char** argv) {
  using namespace amctq;
  std::string model_path, config_path, out = "report.html", input_name;
  std::vector<std::string> calib_specs;
  bool quiet = false;
  try {
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "report" && i == 0) continue;
      if (a == "-h" || a == "--help") {
        std::cout << report_usage;
        return 0;
      }
      auto value = [&]() -> std::string {
        AMCTQ_CHECK(i + 1 < argc, errc::invalid_argument, "amctq report", "option ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--model") model_path = value();
      else if (a == "--calib") calib_specs.push_back(value());
      else if (a == "--config") config_path = value();
      else if (a == "--out") out = cli::path_value(value(), a, "amctq report");
      else if (a == "--input") input_name = value();
      else if (a == "--quiet") quiet = true;
      else AMCTQ_THROW(errc::invalid_argument, "amctq report", "unknown option '", a, "' (see amctq report --help)");
    }
    AMCTQ_CHECK(!model_path.empty(), errc::invalid_argument, "amctq report", "--model is required");
    AMCTQ_CHECK(!calib_specs.empty(), errc::invalid_argument, "amctq report", "--calib is required");
  } catch (const std::exception& e) {
    return cli::report(e, "amctq report", cli::bad_usage);
  }
  try {
    const cli::pipeline_inputs in = cli::read_pipeline_inputs(model_path, config_path, calib_specs, input_name, "amctq report");
    graph::quantizer q(in.model, in.config);
    // Calibrated as `amctq quantize` calibrates, so the page shows the ranges it would save.
    const graph::batches_in_memory src(in.batches);
    graph::calibration_options opt = graph::default_calibration_options();
    q.quantize_preprocess(src, opt);
    q.quantize_model();
    cli::progress_meter meter("amctq report", "calibration", "rows", quiet);
    opt.progress = [&meter](std::int64_t done, std::int64_t all) { meter(done, all); };
    q.calibrate(src, opt);
    meter.finish();
    const auto layers = graph::build_layer_report(q, in.batches);
    const std::string page = io::render_report_html(layers, std::filesystem::path(model_path).filename().string());
    io::write_file_atomic(out, page.data(), page.size());
    if (!quiet) std::cerr << "amctq report: " << layers.size() << " layers, wrote " << out << "\n";
    return 0;
  } catch (const std::exception& e) {
    return cli::report(e, "amctq report", cli::bad_input);
  }
}
