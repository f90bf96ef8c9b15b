// `amctq config`: writes the default quantization config of a model (create_quant_config), to
// edit and pass to `amctq quantize --config`.
//
//   amctq config --model M.onnx [--out C.json] [--batch-num N] [--skip LAYER]... [--symmetric-activations]
//   amctq config --model M.onnx --format vitis [--out C.json]
#include <iostream>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/config_json.hpp"
#include "amctq/io/vitis_config_json.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "cli_report.hpp"

namespace {

const char* const config_usage =
    "usage: amctq config --model M.onnx [--out C.json] [--batch-num N] [--skip LAYER]... [--symmetric-activations]\n"
    "       amctq config --model M.onnx --format vitis [--out C.json]\n"
    "Writes the default quantization config of M.onnx as JSON (to stdout without --out): global\n"
    "settings, overall / weights / activation / bias defaults, layer_type overrides and one entry\n"
    "per quantizable layer (Conv, ConvTranspose, Gemm, MatMul, AveragePool; BatchNorm folded first).\n"
    "  --model M.onnx            the float model (required)\n"
    "  --out C.json              write here (atomically) instead of stdout\n"
    "  --batch-num N             calibration batches quantize will need (default 1)\n"
    "  --skip LAYER              leave this layer in float (repeatable; names as in the config)\n"
    "  --symmetric-activations   activation_offset false: activations without zero point\n"
    "  --format amctq|vitis      amctq (default): the config above; vitis: the Vitis AI user guide's default\n"
    "                            vai_q_pytorch config (diffs, power-of-two, std_round, CLE and bias correction)\n"
    "Exit status 0 on success; on error, one line on stderr and status 1 (2 for bad usage).\n";

}  // namespace

int cmd_config(int argc, char** argv) {
  using namespace amctq;
  std::string model_path, out;
  std::vector<std::string> skip;
  int batch_num = 1;
  bool offset = true;
  std::string format = "amctq";
  try {
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "config" && i == 0) continue;  // tolerate being passed the subcommand itself
      if (a == "-h" || a == "--help") {
        std::cout << config_usage;
        return 0;
      }
      auto value = [&]() -> std::string {
        AMCTQ_CHECK(i + 1 < argc, errc::invalid_argument, "amctq config", "option ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--model") model_path = value();
      else if (a == "--out") out = cli::path_value(value(), a, "amctq config");
      else if (a == "--skip") skip.push_back(value());
      else if (a == "--symmetric-activations") offset = false;
      else if (a == "--format") {
        format = value();
        AMCTQ_CHECK(format == "amctq" || format == "vitis", errc::invalid_argument, "amctq config",
                    "--format must be amctq or vitis, got '", format, "'");
      }
      else if (a == "--batch-num") {
        const std::string v = value();
        std::size_t used = 0;
        int n = 0;
        try { n = std::stoi(v, &used); } catch (const std::exception&) { used = 0; }
        AMCTQ_CHECK(used == v.size() && n >= 1, errc::invalid_argument, "amctq config", "--batch-num must be a positive integer, got '", v, "'");
        batch_num = n;
      } else AMCTQ_THROW(errc::invalid_argument, "amctq config", "unknown option '", a, "' (see amctq config --help)");
    }
    AMCTQ_CHECK(!model_path.empty(), errc::invalid_argument, "amctq config", "--model is required");
    AMCTQ_CHECK(format == "amctq" || (skip.empty() && batch_num == 1 && offset), errc::invalid_argument, "amctq config",
                "--skip, --batch-num and --symmetric-activations apply to --format amctq only");
  } catch (const std::exception& e) {
    return cli::report(e, "amctq config", cli::bad_usage);
  }
  try {
    const graph::model m = io::read_onnx(model_path);
    if (format == "vitis") {
      // The guide's default is the same for every model; the model is still read, so that a bad
      // path fails here and not at quantize time.
      const std::string text = io::vitis::vitis_default_config_json();
      if (out.empty()) std::cout << text;
      else io::write_file_atomic(out, text.data(), text.size());
      return 0;
    }
    const graph::quant_config c = graph::create_quant_config(m, skip, batch_num, offset);
    if (out.empty()) std::cout << io::write_config_json(c);
    else io::save_config_json(c, out);
    return 0;
  } catch (const std::exception& e) {
    return cli::report(e, "amctq config", cli::bad_input);
  }
}
