// `amctq quantize`: the whole AMCT flow on one model — config (given or default), BatchNorm
// folding, DMQ balance when the config asks, ARQ weights, activation calibration, and the three
// outputs: <stem>_fake_quant_model.onnx, <stem>_deploy_model.onnx, record.json.
//
//   amctq quantize --model M.onnx --calib X.npy|DATA.npz|NAME=FILE.npy... [--config C.json] [--out DIR]
//                  [--input NAME] [--threads N] [--max-memory SIZE] [--slice-rows R] [--strict] [--quiet]
//
// The calibration arrays' first axis is split into batch_num equal batches (config batch_num,
// 1 by default): batch b holds rows [b*per, (b+1)*per) of every input with per = N / batch_num;
// the last N mod batch_num rows are not used (a note says so). io/calibration_data.hpp. The
// files are mapped and run a slice of rows at a time on --threads executors; under mpirun each
// rank runs its share and rank 0 writes (graph/calibration_run.hpp, docs/scale.md).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
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
#include "mpi_session.hpp"
#include "pipeline_inputs.hpp"
#include "progress.hpp"

namespace {

const char* const quantize_usage =
    "usage: amctq quantize --model M.onnx --calib DATA [--calib ...] [--config C.json] [--out DIR] [--input NAME]\n"
    "                      [--threads N] [--max-memory SIZE] [--slice-rows R] [--strict] [--quiet]\n"
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
    "  --threads N      calibrate on N threads, each running its share of the rows (default: the\n"
    "                   cores there are, shared among the MPI ranks on this machine); the outputs\n"
    "                   are byte-identical for every N\n"
    "  --max-memory SIZE  activations one thread may hold at once, e.g. 512M, 2G (default 256M);\n"
    "                   rows are read from the mapped files and run in slices that fit it. A\n"
    "                   bound that not even one row fits is an error saying what would\n"
    "  --slice-rows R   at most R rows per slice (default 4); the outputs depend on it and on\n"
    "                   --max-memory, never on --threads or the MPI ranks\n"
    "  --strict         a layer left in float that the config did not ask for is an error\n"
    "  --quiet          no progress on stderr (the float layers are still named)\n"
    "Under `mpirun -np N amctq quantize ...` (a build that found MPI), each rank calibrates its share\n"
    "of the rows, the observers merge across ranks, and rank 0 writes the files, byte-identical to\n"
    "one process; an error on any rank stops them all and nothing is written.\n"
    "Exit status 0 on success; on error, one line on stderr and status 1 (2 for bad usage).\n";

}  // namespace

int cmd_quantize(int argc, char** argv) {
  using namespace amctq;
  std::string model_path, config_path, out_dir = ".", input_name;
  std::vector<std::string> calib_specs;
  bool quiet = false, strict = false;
  int threads = 0;
  std::size_t max_memory = 0;
  bool memory_given = false;
  std::int64_t slice_rows = graph::default_calibration_options().max_slice_rows;
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
      else if (a == "--threads") threads = static_cast<int>(cli::count_value(value(), a, "amctq quantize", 1, 4096));
      else if (a == "--max-memory") {
        max_memory = cli::size_value(value(), a, "amctq quantize");
        memory_given = true;
      } else if (a == "--slice-rows") slice_rows = cli::count_value(value(), a, "amctq quantize", 1, INT32_MAX);
      else if (a == "--quiet") quiet = true;
      else if (a == "--strict") strict = true;
      else AMCTQ_THROW(errc::invalid_argument, "amctq quantize", "unknown option '", a, "' (see amctq quantize --help)");
    }
    AMCTQ_CHECK(!model_path.empty(), errc::invalid_argument, "amctq quantize", "--model is required");
    AMCTQ_CHECK(!calib_specs.empty(), errc::invalid_argument, "amctq quantize", "--calib is required");
  } catch (const std::exception& e) {
    return cli::report(e, "amctq quantize", cli::bad_usage);
  }
  std::unique_ptr<cli::mpi_session> mpi;
  try {
    mpi = std::make_unique<cli::mpi_session>();
  } catch (const std::exception& e) {
    return cli::report(e, "amctq quantize", cli::bad_input);
  }
  // Only rank 0 speaks and writes; every rank reports its own error and stops the others.
  const bool root = mpi->root();
  quiet = quiet || !root;
  try {
    cli::pipeline_inputs in = cli::read_pipeline_inputs(model_path, config_path, calib_specs, input_name,
                                                              "amctq quantize", /*split=*/false);
    const graph::quant_config& cfg = in.config;
    const io::calibration_data& data = in.data;
    const io::calibration_batches batches(data, cfg.batch_num);
    std::string calib_text;
    for (const auto& c : calib_specs) calib_text += (calib_text.empty() ? "" : " ") + c;
    if (!quiet) {
      for (const auto& note : data.notes) std::cerr << "amctq quantize: note: " << note << "\n";
      if (data.rows % cfg.batch_num != 0)
        std::cerr << "amctq quantize: note: " << data.rows % cfg.batch_num << " of " << data.rows
                  << " calibration rows are unused (batch_num " << cfg.batch_num << " x " << data.rows / cfg.batch_num
                  << " rows)\n";
    }

    if (root) cli::check_writable_folder(out_dir, "amctq quantize");  // before the long part; the folder itself is made only when saving
    graph::quantizer q(std::move(in.model), cfg);  // moved: a large model is not held twice
    io::check_layer_names(q);  // before the long part
    // No layer stays float without a word: the count, then each float layer and why.
    const std::size_t total = q.layers().size() + q.float_layers().size();
    if (root && (!quiet || !q.float_layers().empty()))
      std::cerr << "amctq quantize: " << q.layers().size() << " of " << total << " layers quantized\n";
    std::string unasked;
    for (const auto& f : q.float_layers()) {
      if (root) std::cerr << "amctq quantize: float: " << f.name << " (" << f.op_type << "): " << f.reason << "\n";
      if (!f.asked) unasked += (unasked.empty() ? "'" : ", '") + f.name + "'";
    }
    AMCTQ_CHECK(!strict || unasked.empty(), errc::unsupported, "amctq quantize", "--strict: ", unasked,
                " would stay float without the config asking (see the lines above); add them to skip_layers to "
                "accept that, or leave out --strict");
    if (root && q.layers().empty())
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
    graph::calibration_options opt = graph::default_calibration_options(threads > 0 ? threads : mpi->default_threads());
    if (memory_given) {
      opt.max_memory = max_memory;
      opt.strict_memory = true;
    }
    opt.max_slice_rows = slice_rows;
    opt.rank = mpi->rank();
    opt.ranks = mpi->ranks();
    opt.exchange = mpi->exchange();
    opt.job_slices = mpi->job_slices();
    try {
      {
        cli::progress_meter meter("amctq quantize", "balance", "rows", quiet);
        opt.progress = [&meter](std::int64_t done, std::int64_t all) { meter(done, all); };
        q.quantize_preprocess(batches, opt);
      }
      q.release_float_weights();  // nothing here reads them after calibration: a model's worth of memory back
      q.quantize_model();
      cli::progress_meter meter("amctq quantize", "calibration", "rows", quiet);
      opt.progress = [&meter](std::int64_t done, std::int64_t all) { meter(done, all); };
      q.calibrate(batches, opt);
    } catch (const amctq::error& e) {  // name the data file, not only the graph input it feeds
      AMCTQ_THROW(e.code(), "amctq quantize", "calibrating with --calib ", calib_text, ": ", e.body());
    }
    if (!quiet && cfg.global.include_bias_corr)
      std::cerr << "amctq quantize: include_bias_corr: " << q.bias_corrections().size() << " biases corrected\n";
    if (!quiet && !q.tensor_points().empty())
      std::cerr << "amctq quantize: " << q.record().tensors.size()
                << " tensors quantized where they are made (layer outputs, Add / Concat; record.json quantized_tensors)\n";
    if (root)
      for (const auto& note : q.tensor_notes()) std::cerr << "amctq quantize: note: " << note << "\n";
    if (!root) return 0;
    q.release_calibration_model();  // saving needs none of it: a model's worth of memory back
    const std::string stem = std::filesystem::path(model_path).stem().string();
    io::save_options so;
    cli::progress_meter meter("amctq quantize", "saving", "steps", quiet, /*rate=*/false);
    so.progress = [&meter](int done, int all) { meter(done, all); };
    auto saving = std::async(mpi->active() ? std::launch::async : std::launch::deferred,
                             [&] { return io::save_model(q, out_dir, stem, so); });
    mpi->finalize();  // every rank has handed in its share: the save needs no other
    const auto paths = saving.get();
    meter.finish();
    for (const auto& note : paths.notes) std::cerr << "amctq quantize: note: " << note << "\n";
    if (!quiet)
      std::cerr << "amctq quantize: wrote " << paths.fake_quant << ", " << paths.deploy << ", " << paths.record
                << ", " << paths.float_layers << "\n";
    return 0;
  } catch (const std::exception& e) {
    if (mpi->active()) {
      std::cerr << "amctq quantize: rank " << mpi->rank() << " of " << mpi->ranks() << ": ";
      cli::report(e, "amctq quantize", cli::bad_input);
      std::cerr.flush();
      mpi->abort(cli::bad_input);
    }
    return cli::report(e, "amctq quantize", cli::bad_input);
  }
}
