// `amctq quantize`: the whole AMCT flow on one model — config (given or default), BatchNorm
// folding, DMQ balance when the config asks, ARQ weights, activation calibration, and the three
// outputs: <stem>_fake_quant_model.onnx, <stem>_deploy_model.onnx, record.json.
//
//   amctq quantize --model M.onnx --calib X.npy|DATA.npz|NAME=FILE.npy... [--config C.json] [--out DIR]
//                  [--input NAME] [--strict] [--quiet]
//
// The calibration arrays' first axis is split into batch_num equal batches (config batch_num,
// 1 by default): batch b holds rows [b*per, (b+1)*per) of every input with per = N / batch_num;
// the last N mod batch_num rows are not used (a note says so). io/calibration_data.hpp.
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
#include "amctq/io/vitis_config_json.hpp"
#include "amctq/io/calibration_data.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/save_model.hpp"
#include "cli_report.hpp"
#include "pipeline_inputs.hpp"

namespace {

const char* const quantize_usage =
    "usage: amctq quantize --model M.onnx --calib DATA [--calib ...] [--config C.json] [--out DIR] [--input NAME]\n"
    "                      [--strict] [--quiet]\n"
    "Quantizes M.onnx (AMCT flow: BatchNorm folding, optional DMQ balance, ARQ weights, activation\n"
    "calibration) and writes DIR/<stem>_fake_quant_model.onnx (QuantizeLinear/DequantizeLinear),\n"
    "DIR/<stem>_deploy_model.onnx (int8 weights, int32 bias, QLinearConv/ConvInteger/MatMulInteger),\n"
    "DIR/record.json and DIR/float_layers.json (the layers left in float, and why), where <stem> is\n"
    "M's file name without .onnx. It prints 'N of M layers quantized' and names every layer left in float.\n"
    "  --model M.onnx   the float model (required)\n"
    "  --calib DATA     calibration data (required), one of:\n"
    "                     X.npy           the model's one input (or the one --input names)\n"
    "                     DATA.npz        one array per model input, by name (numpy.savez)\n"
    "                     NAME=FILE.npy   one input's array; repeat --calib for every input\n"
    "                   any dtype the input has (float64 is converted to a float32 input, integer\n"
    "                   widths to each other); the first axis N holds the rows, split into batch_num\n"
    "                   batches of N / batch_num rows (the last N mod batch_num rows are unused)\n"
    "  --config C.json  quantization config (see `amctq config`); default: amctq config's default.\n"
    "                   A Vitis AI vai_q_pytorch config (with overall_quantize_config) is read as written\n"
    "                   (batch_num 1, IFMR activations, ARQ per-channel int8 weights); its\n"
    "                   global.convert_relu6_to_relu / include_cle / include_bias_corr turn on\n"
    "                   the Vitis AI passes (see docs/pipeline.md)\n"
    "  --out DIR        output folder, created if missing (default: .)\n"
    "  --input NAME     the graph input a single X.npy feeds (default: the model's only input)\n"
    "  --strict         a layer left in float that the config did not ask for is an error\n"
    "  --quiet          no progress on stderr (the float layers are still named)\n"
    "Exit status 0 on success; on error, one line on stderr and status 1 (2 for bad usage).\n";

}  // namespace

int cmd_quantize(int argc, char** argv) {
  using namespace amctq;
  std::string model_path, config_path, out_dir = ".", input_name;
  std::vector<std::string> calib_specs;
  bool quiet = false, strict = false;
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
      else if (a == "--calib") calib_specs.push_back(value());
      else if (a == "--config") config_path = value();
      else if (a == "--out") out_dir = cli::path_value(value(), a, "amctq quantize");
      else if (a == "--input") input_name = value();
      else if (a == "--quiet") quiet = true;
      else if (a == "--strict") strict = true;
      else AMCTQ_THROW(errc::invalid_argument, "amctq quantize", "unknown option '", a, "' (see amctq quantize --help)");
    }
    AMCTQ_CHECK(!model_path.empty(), errc::invalid_argument, "amctq quantize", "--model is required");
    AMCTQ_CHECK(!calib_specs.empty(), errc::invalid_argument, "amctq quantize", "--calib is required");
  } catch (const std::exception& e) {
    return cli::report(e, "amctq quantize", cli::bad_usage);
  }
  try {
    const cli::pipeline_inputs in = cli::read_pipeline_inputs(model_path, config_path, calib_specs, input_name,
                                                              "amctq quantize");
    const graph::model& m = in.model;
    const graph::quant_config& cfg = in.config;
    const io::calibration_data& data = in.data;
    const std::vector<graph::batch>& batches = in.batches;
    std::string calib_text;
    for (const auto& c : calib_specs) calib_text += (calib_text.empty() ? "" : " ") + c;
    if (!quiet) {
      for (const auto& note : data.notes) std::cerr << "amctq quantize: note: " << note << "\n";
      if (data.rows % cfg.batch_num != 0)
        std::cerr << "amctq quantize: note: " << data.rows % cfg.batch_num << " of " << data.rows
                  << " calibration rows are unused (batch_num " << cfg.batch_num << " x " << data.rows / cfg.batch_num
                  << " rows)\n";
    }

    cli::check_writable_folder(out_dir, "amctq quantize");  // before the long part; the folder itself is made only when saving
    graph::quantizer q(m, cfg);
    io::check_layer_names(q);  // before the long part
    // No layer stays float without a word: the count, then each float layer and why.
    const std::size_t total = q.layers().size() + q.float_layers().size();
    if (!quiet || !q.float_layers().empty())
      std::cerr << "amctq quantize: " << q.layers().size() << " of " << total << " layers quantized\n";
    std::string unasked;
    for (const auto& f : q.float_layers()) {
      std::cerr << "amctq quantize: float: " << f.name << " (" << f.op_type << "): " << f.reason << "\n";
      if (!f.asked) unasked += (unasked.empty() ? "'" : ", '") + f.name + "'";
    }
    AMCTQ_CHECK(!strict || unasked.empty(), errc::unsupported, "amctq quantize", "--strict: ", unasked,
                " would stay float without the config asking (see the lines above); add them to skip_layers to "
                "accept that, or leave out --strict");
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
    if (!quiet) {
      graph::passes::rounding_options ro;
      ro.on_layer = [](const graph::passes::rounding_report& r) {
        std::cerr << "amctq quantize: adaround: " << r.layer << ": " << r.changed << " of " << r.weights
                  << " codes off round-to-nearest, output error " << r.nearest_loss << " -> " << r.learned_loss << " ("
                  << r.columns << " columns, " << r.seconds << " s)\n";
      };
      q.set_rounding_options(std::move(ro));
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
      AMCTQ_THROW(e.code(), "amctq quantize", "calibrating with --calib ", calib_text, ": ", e.body());
    }
    if (!quiet && cfg.global.include_bias_corr)
      std::cerr << "amctq quantize: include_bias_corr: " << q.bias_corrections().size() << " biases corrected\n";
    if (!quiet && !q.tensor_points().empty())
      std::cerr << "amctq quantize: " << q.record().tensors.size()
                << " tensors quantized where they are made (layer outputs, Add / Concat; record.json quantized_tensors)\n";
    for (const auto& note : q.tensor_notes()) std::cerr << "amctq quantize: note: " << note << "\n";
    const std::string stem = std::filesystem::path(model_path).stem().string();
    const auto paths = io::save_model(q, out_dir, stem);
    for (const auto& note : paths.notes) std::cerr << "amctq quantize: note: " << note << "\n";
    if (!quiet)
      std::cerr << "amctq quantize: wrote " << paths.fake_quant << ", " << paths.deploy << ", " << paths.record
                << ", " << paths.float_layers << "\n";
    return 0;
  } catch (const std::exception& e) {
    return cli::report(e, "amctq quantize", cli::bad_input);
  }
}
