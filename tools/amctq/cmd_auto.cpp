// `amctq auto`: accuracy-driven automatic quantization (io/auto_quantize.hpp) judged by a shell
// command that prints the metric of a model (higher is better) as its last line.
//
//   amctq auto --model M.onnx --calib DATA [--config C.json] --eval-cmd "CMD {model}" --max-drop D
//              [--strategy fallback|nuq|mixed] [--max-evals K] [--out DIR] [--input NAME] [--quiet]
#include <sys/wait.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/io/auto_quantize.hpp"
#include "cli_report.hpp"
#include "pipeline_inputs.hpp"

namespace {

const char* const auto_usage =
    "usage: amctq auto --model M.onnx --calib DATA [--calib ...] [--config C.json] --eval-cmd \"CMD {model}\"\n"
    "                  --max-drop D [--strategy fallback|nuq|mixed] [--max-evals K] [--out DIR] [--input NAME]\n"
    "                  [--quiet]\n"
    "Searches, per layer, how far M.onnx can be quantized while a metric of your own stays within D\n"
    "of the float model's (docs/auto_search.md). Layers are ranked by sensitivity (cosine similarity of\n"
    "the model outputs on the calibration data, float vs only that layer quantized); a binary search\n"
    "then finds how many of the most sensitive layers need the safest level.\n"
    "  --model M.onnx     the float model (required); the evaluator scores it first\n"
    "  --calib DATA       calibration data (required), as for amctq quantize\n"
    "  --config C.json    the starting config (default: amctq config's default)\n"
    "  --eval-cmd CMD     shell command scoring a model (required): {model} is replaced by the quoted\n"
    "                     path of the model to score; its last non-empty stdout line is the metric\n"
    "                     (higher is better); a non-zero exit or no number there is an error\n"
    "  --max-drop D       satisfied when original - new <= D (required, >= 0)\n"
    "  --strategy S       fallback (default): layers quantized as the config says or kept float;\n"
    "                     nuq: weights NUQ 16, NUQ 32 or uniform; mixed: W4A4, W4A8 or W8A8\n"
    "  --max-evals K      at most K evaluations of quantized models (cached configs are free);\n"
    "                     stops with the best satisfying result so far (default: no limit)\n"
    "  --out DIR          output folder (default: .): <stem>_fake_quant_model.onnx,\n"
    "                     <stem>_deploy_model.onnx, record.json, final_config.json (amctq quantize\n"
    "                     --config reproduces the result), ranking_info.json, auto_search.json\n"
    "  --input NAME       the graph input a single X.npy feeds\n"
    "  --quiet            no progress on stderr\n"
    "Prints the evaluations used, the metrics and the layers per level on stdout. Exit status 0 on\n"
    "success; 1 when no configuration satisfies (no model is written) or on bad input; 2 for bad usage.\n";

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string clip_text(std::string s, std::size_t n = 200) {
  s = amctq::cli::one_line(s);
  return s.size() > n ? s.substr(0, n) + "..." : s;
}

// Runs the command through the shell; its stdout's last non-empty line is the metric.
class command_evaluator : public amctq::io::auto_evaluator {
 public:
  command_evaluator(std::string cmd, double max_drop) : cmd_(std::move(cmd)), max_drop_(max_drop) {}

  double eval_model(const std::string& model_path, int) override {
    std::string cmd = cmd_;
    const std::string q = shell_quote(model_path);
    for (std::size_t at = cmd.find("{model}"); at != std::string::npos; at = cmd.find("{model}", at + q.size()))
      cmd.replace(at, 7, q);
    std::fflush(stdout);
    FILE* f = ::popen(cmd.c_str(), "r");
    AMCTQ_CHECK(f != nullptr, amctq::errc::io, "amctq auto", "--eval-cmd '", clip_text(cmd_), "': cannot start: ",
                std::strerror(errno));
    std::string out;
    char buf[4096];
    for (std::size_t k; (k = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, k);
    const int st = ::pclose(f);
    std::string last;
    std::size_t end = out.size();
    while (end > 0) {
      const std::size_t start = out.rfind('\n', end - 1);
      const std::size_t b = start == std::string::npos ? 0 : start + 1;
      std::string line = out.substr(b, end - b);
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
      std::size_t lead = 0;
      while (lead < line.size() && std::isspace(static_cast<unsigned char>(line[lead]))) ++lead;
      line = line.substr(lead);
      if (!line.empty()) {
        last = line;
        break;
      }
      if (start == std::string::npos) break;
      end = start;
    }
    const int code = st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    AMCTQ_CHECK(code == 0, amctq::errc::invalid_argument, "amctq auto", "--eval-cmd '", clip_text(cmd_),
                "' exited with status ", code, " on ", model_path, "; its last output line: '", clip_text(last), "'");
    char* stop = nullptr;
    const double v = last.empty() ? NAN : std::strtod(last.c_str(), &stop);
    AMCTQ_CHECK(!last.empty() && stop && *stop == '\0' && std::isfinite(v), amctq::errc::parse, "amctq auto",
                "--eval-cmd '", clip_text(cmd_), "' must print the metric as its last line; on ", model_path,
                " it printed ", last.empty() ? std::string("nothing") : "'" + clip_text(last) + "'");
    return v;
  }

  bool is_satisfied(double original, double now) override { return original - now <= max_drop_; }

 private:
  std::string cmd_;
  double max_drop_;
};

double number_value(const std::string& v, const std::string& option) {
  char* stop = nullptr;
  const double d = std::strtod(v.c_str(), &stop);
  AMCTQ_CHECK(!v.empty() && stop && *stop == '\0' && std::isfinite(d), amctq::errc::invalid_argument, "amctq auto",
              option, " needs a number, got '", v, "'");
  return d;
}

}  // namespace

int cmd_auto(int argc, char** argv) {
  using namespace amctq;
  std::string model_path, config_path, out_dir = ".", input_name, eval_cmd, strategy = "fallback";
  std::vector<std::string> calib_specs;
  double max_drop = -1;
  int max_evals = 0;
  bool quiet = false;
  try {
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "auto" && i == 0) continue;
      if (a == "-h" || a == "--help") {
        std::cout << auto_usage;
        return 0;
      }
      auto value = [&]() -> std::string {
        AMCTQ_CHECK(i + 1 < argc, errc::invalid_argument, "amctq auto", "option ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--model") model_path = value();
      else if (a == "--calib") calib_specs.push_back(value());
      else if (a == "--config") config_path = value();
      else if (a == "--eval-cmd") eval_cmd = value();
      else if (a == "--max-drop") max_drop = number_value(value(), a);
      else if (a == "--strategy") strategy = value();
      else if (a == "--max-evals") {
        const double k = number_value(value(), a);
        AMCTQ_CHECK(k >= 1 && k == std::floor(k) && k < 1e6, errc::invalid_argument, "amctq auto",
                    "--max-evals needs a whole number >= 1, got ", k);
        max_evals = static_cast<int>(k);
      } else if (a == "--out") out_dir = cli::path_value(value(), a, "amctq auto");
      else if (a == "--input") input_name = value();
      else if (a == "--quiet") quiet = true;
      else AMCTQ_THROW(errc::invalid_argument, "amctq auto", "unknown option '", a, "' (see amctq auto --help)");
    }
    AMCTQ_CHECK(!model_path.empty(), errc::invalid_argument, "amctq auto", "--model is required");
    AMCTQ_CHECK(!calib_specs.empty(), errc::invalid_argument, "amctq auto", "--calib is required");
    AMCTQ_CHECK(!eval_cmd.empty(), errc::invalid_argument, "amctq auto", "--eval-cmd is required");
    AMCTQ_CHECK(eval_cmd.find("{model}") != std::string::npos, errc::invalid_argument, "amctq auto",
                "--eval-cmd '", eval_cmd, "' has no {model} for the model path");
    AMCTQ_CHECK(max_drop >= 0, errc::invalid_argument, "amctq auto", "--max-drop is required and must be >= 0");
    io::parse_auto_strategy(strategy);
  } catch (const std::exception& e) {
    return cli::report(e, "amctq auto", cli::bad_usage);
  }
  try {
    const cli::pipeline_inputs in = cli::read_pipeline_inputs(model_path, config_path, calib_specs, input_name, "amctq auto");
    const graph::model& m = in.model;
    const graph::quant_config& cfg = in.config;
    const std::vector<graph::batch>& batches = in.batches;
    cli::check_writable_folder(out_dir, "amctq auto");  // before the long part
    command_evaluator ev(eval_cmd, max_drop);
    io::auto_options opt;
    opt.strategy = io::parse_auto_strategy(strategy);
    opt.max_evals = max_evals;
    if (!quiet) opt.note = [](const std::string& s) { std::cerr << "amctq auto: " << s << "\n"; };
    const std::string stem = std::filesystem::path(model_path).stem().string();
    const io::auto_result r = io::auto_quantize(m, model_path, cfg, batches, ev, out_dir, stem, opt);
    std::cout << "strategy: " << strategy << "\n";
    std::cout << "evaluations: " << r.evaluations << " (float model included)"
              << (r.budget_exhausted ? "; --max-evals reached, best satisfying result so far" : "") << "\n";
    std::cout << "original metric: " << r.original_metric << "\n";
    std::cout << "all " << r.level_names.front() << " metric: " << r.compressed_metric << "\n";
    std::cout << "final metric: " << r.final_metric << "\n";
    for (const auto& level : r.level_names) {
      std::string names;
      int count = 0;
      for (const auto& l : r.layers)
        if (l.chosen == level) {
          ++count;
          names += (names.empty() ? "" : ", ") + l.name;
        }
      std::cout << "layers " << level << ": " << count << (count && level != r.level_names.front() ? " (" + names + ")" : "")
                << "\n";
    }
    std::cout << "weight bytes of the searched layers: " << r.weight_bytes << " (all " << r.level_names.front() << ": "
              << r.compressed_weight_bytes << ", float: " << r.float_weight_bytes << ")\n";
    std::cout << "wrote " << r.paths.fake_quant << ", " << r.paths.deploy << ", " << r.paths.record << ", "
              << r.final_config << ", " << r.ranking_info << ", " << r.search_log << "\n";
    return 0;
  } catch (const std::exception& e) {
    return cli::report(e, "amctq auto", cli::bad_input);
  }
}
