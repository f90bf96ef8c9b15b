// `amctq quantize`: the whole AMCT flow on one model — config (given or default), BatchNorm
// folding, DMQ balance when the config asks, ARQ weights, activation calibration, and the three
// outputs: <stem>_fake_quant_model.onnx, <stem>_deploy_model.onnx, record.json.
//
//   amctq quantize --model M.onnx --calib X.npy [--config C.json] [--out DIR] [--input NAME] [--quiet]
//
// The calibration tensor's first axis is split into batch_num equal batches (config batch_num,
// 1 by default): batch b holds rows [b*per, (b+1)*per) with per = N / batch_num; the last
// N mod batch_num rows are not used (a note says so).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "amctq/error.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/config_json.hpp"
#include "amctq/io/npy.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/save_model.hpp"
#include "cli_report.hpp"

namespace {

const char* const quantize_usage =
    "usage: amctq quantize --model M.onnx --calib X.npy [--config C.json] [--out DIR] [--input NAME] [--quiet]\n"
    "Quantizes M.onnx (AMCT flow: BatchNorm folding, optional DMQ balance, ARQ weights, activation\n"
    "calibration) and writes DIR/<stem>_fake_quant_model.onnx (QuantizeLinear/DequantizeLinear),\n"
    "DIR/<stem>_deploy_model.onnx (int8 weights, int32 bias, QLinearConv/ConvInteger/MatMulInteger)\n"
    "and DIR/record.json, where <stem> is M's file name without .onnx, then DIR/amctq_manifest.json\n"
    "(each file's size and SHA-256; without it the folder holds no complete set: docs/pipeline.md).\n"
    "  --model M.onnx   the float model (required)\n"
    "  --calib X.npy    calibration data, float32, shaped like the model input (required); its first\n"
    "                   axis N is split into batch_num batches of N / batch_num rows (the last\n"
    "                   N mod batch_num rows are unused); N must be >= batch_num\n"
    "  --config C.json  quantization config (see `amctq config`); default: amctq config's default\n"
    "                   (batch_num 1, IFMR activations, ARQ per-channel int8 weights); its\n"
    "                   global.convert_relu6_to_relu / include_cle / include_bias_corr turn on\n"
    "                   the Vitis AI passes (see docs/pipeline.md)\n"
    "  --out DIR        output folder, created if missing (default: .)\n"
    "  --input NAME     the graph input the calibration data feeds (default: the first input\n"
    "                   that is not an initializer)\n"
    "  --quiet          no progress on stderr\n"
    "Exit status 0 on success; on error, one line on stderr and status 1 (2 for bad usage).\n";

// Rows [begin, end) of the first axis.
amctq::graph::tensor rows_of(const amctq::graph::tensor& t, std::int64_t begin, std::int64_t end) {
  auto shape = t.shape();
  const std::size_t row_bytes = t.bytes().size() / static_cast<std::size_t>(shape[0]);
  shape[0] = end - begin;
  amctq::graph::tensor s(t.type(), shape);
  std::memcpy(s.bytes().data(), t.bytes().data() + static_cast<std::size_t>(begin) * row_bytes,
              static_cast<std::size_t>(end - begin) * row_bytes);
  return s;
}

// The output folder, or the nearest folder above it that exists, must be writable: checked
// before calibration so that a typo fails in a second, not after the whole run, and without
// creating anything.
void check_writable_folder(const std::string& out_dir) {
  std::filesystem::path p = std::filesystem::absolute(out_dir);
  std::error_code ec;
  while (!std::filesystem::exists(p, ec) && p.has_parent_path() && p.parent_path() != p) p = p.parent_path();
  AMCTQ_CHECK(std::filesystem::is_directory(p, ec), amctq::errc::io, "amctq quantize", "--out ", out_dir, ": '", p.string(),
              "' is not a folder");
  AMCTQ_CHECK(::access(p.c_str(), W_OK | X_OK) == 0, amctq::errc::io, "amctq quantize", "--out ", out_dir, ": cannot write in '",
              p.string(), "': ", std::strerror(errno));
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
  using namespace amctq;
  std::string model_path, calib_path, config_path, out_dir = ".", input_name;
  bool quiet = false;
  int i = 0;
  try {
    for (; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "quantize" && i == 0) continue;  // tolerate being passed the subcommand itself
      if (a == "-h" || a == "--help") {
        std::cout << quantize_usage;
        return 0;
      }
      auto value = [&]() -> std::string {
        AMCTQ_CHECK(i + 1 < argc, errc::invalid_argument, "amctq quantize", "option ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--model") model_path = value();
      else if (a == "--calib") calib_path = value();
      else if (a == "--config") config_path = value();
      else if (a == "--out") out_dir = cli::path_value(value(), a, "amctq quantize");
      else if (a == "--input") input_name = value();
      else if (a == "--quiet") quiet = true;
      else AMCTQ_THROW(errc::invalid_argument, "amctq quantize", "unknown option '", a, "' (see amctq quantize --help)");
    }
    AMCTQ_CHECK(!model_path.empty(), errc::invalid_argument, "amctq quantize", "--model is required");
    AMCTQ_CHECK(!calib_path.empty(), errc::invalid_argument, "amctq quantize", "--calib is required");
  } catch (const std::exception& e) {
    return cli::report(e, "amctq quantize", cli::bad_usage);
  }
  try {
    AMCTQ_CHECK(std::filesystem::is_regular_file(model_path), errc::io, "amctq quantize", "--model ", model_path,
                ": no such file");
    AMCTQ_CHECK(std::filesystem::is_regular_file(calib_path), errc::io, "amctq quantize", "--calib ", calib_path,
                ": no such file");
    AMCTQ_CHECK(config_path.empty() || std::filesystem::is_regular_file(config_path), errc::io, "amctq quantize",
                "--config ", config_path, ": no such file");
    const graph::model m = io::read_onnx(model_path);
    io::check_written_opset(m);  // before the long part
    const graph::quant_config cfg = config_path.empty() ? graph::create_quant_config(m) : io::read_config_json(config_path);
    if (input_name.empty()) {
      for (const auto& vi : m.main.inputs)
        if (!m.main.find_initializer(vi.name)) {
          input_name = vi.name;
          break;
        }
      AMCTQ_CHECK(!input_name.empty(), errc::invalid_argument, "amctq quantize", "the model has no graph input");
    }
    const graph::tensor calib = io::read_npy(calib_path);
    AMCTQ_CHECK(calib.type() == graph::dtype::float32 && calib.rank() >= 1, errc::invalid_argument, "amctq quantize",
                "--calib ", calib_path, " must hold float32 data with a batch axis, got ", graph::to_string(calib.type()),
                " of rank ", calib.rank());
    const std::int64_t n = calib.dim(0);
    AMCTQ_CHECK(n >= cfg.batch_num, errc::invalid_argument, "amctq quantize", "calibration needs ", cfg.batch_num,
                " batches (config batch_num) of at least one row each, but ", calib_path, " has ", n,
                " rows on its first axis; give at least ", cfg.batch_num, " rows or lower batch_num");
    const std::int64_t per = n / cfg.batch_num;
    std::vector<graph::batch> batches;
    for (int b = 0; b < cfg.batch_num; ++b) batches.push_back({{input_name, rows_of(calib, b * per, (b + 1) * per)}});
    if (!quiet && n % cfg.batch_num != 0)
      std::cerr << "amctq quantize: note: " << n % cfg.batch_num << " of " << n
                << " calibration rows are unused (batch_num " << cfg.batch_num << " x " << per << " rows)\n";

    check_writable_folder(out_dir);  // before the long part; the folder itself is made only when saving
    graph::quantizer q(m, cfg);
    io::check_layer_names(q);  // before the long part
    if (q.layers().empty())
      std::cerr << "amctq quantize: warning: no layer is quantized (the model has none amctq can quantize, or the "
                   "config skips them all; amctq inspect lists them): the outputs compute in float\n";
    if (!quiet) {
      const auto& fg = q.float_globals();
      if (cfg.global.convert_relu6_to_relu)
        std::cerr << "amctq quantize: convert_relu6_to_relu: " << fg.relu6_rewritten << " ReLU6 now Relu\n";
      if (fg.cle) {
        std::cerr << "amctq quantize: include_cle: " << fg.cle->pairs << " layer pairs and " << fg.cle->triplets
                  << " depthwise triplets equalised (" << fg.cle->sweeps << " sweeps)";
        if (!fg.cle->relu6_skipped.empty())
          std::cerr << "; " << fg.cle->relu6_skipped.size() << " chains through a ReLU6 left alone (see convert_relu6_to_relu)";
        std::cerr << "\n";
      }
    }
    try {
      q.quantize_preprocess(batches, [&](int done, int total) {
        if (!quiet) std::cerr << "amctq quantize: balance batch " << done << "/" << total << "\n";
      });
      q.quantize_model();
      q.calibrate(batches, [&](int done, int total) {
        if (!quiet) std::cerr << "amctq quantize: calibration batch " << done << "/" << total << "\n";
      });
    } catch (const amctq::error& e) {  // name the data file, not only the graph input it feeds
      AMCTQ_THROW(e.code(), "amctq quantize", "calibrating with --calib ", calib_path, ": ", e.body());
    }
    if (!quiet && cfg.global.include_bias_corr)
      std::cerr << "amctq quantize: include_bias_corr: " << q.bias_corrections().size() << " biases corrected\n";
    const std::string stem = std::filesystem::path(model_path).stem().string();
    const auto paths = io::save_model(q, out_dir, stem);
    for (const auto& note : paths.notes) std::cerr << "amctq quantize: note: " << note << "\n";
    if (!quiet)
      std::cerr << "amctq quantize: " << q.layers().size() << " layers quantized; wrote " << paths.fake_quant << ", "
                << paths.deploy << ", " << paths.record << "\n";
    return 0;
  } catch (const std::exception& e) {
    return cli::report(e, "amctq quantize", cli::bad_input);
  }
}
