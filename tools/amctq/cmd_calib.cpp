// `amctq calib`: calibrates one tensor from .npy files (each file one batch) with any of
// amctq's activation calibration methods and prints one JSON object with the chosen range and
// quantization parameters (arrays when per-channel).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amctq/algorithms/observer.hpp"
#include "amctq/io/npy.hpp"
#include "calib_fields.hpp"
#include "cli_report.hpp"

namespace {

using namespace amctq;

void print_help(std::ostream& out) {
  const observer_options d;
  out << "usage: amctq calib --method M [options] X.npy [more.npy ...]\n"
         "Calibrates one tensor; every .npy file is one batch (float32/float16/int8/uint8/int32/int64).\n"
         "Prints one JSON object: method, preset, min, max, scale, zero_point, qmin, qmax (arrays when\n"
         "per-channel), batches, nonfinite.\n\n"
         "methods (--method, default ifmr):\n"
         "  minmax          exact min / max\n"
         "  moving_average  min / max averaged over batches (--averaging-constant)\n"
         "  percentile      k-th largest / smallest, AMCT rank; onnxruntime preset: ORT's histogram rule\n"
         "  entropy         TensorRT-style KL (--bins, --levels); onnxruntime preset: ORT's EntropyCalibrater\n"
         "  mse             least L2 error over the histogram (--search-points)\n"
         "  ifmr            AMCT IFMR (--max-percentile, --min-percentile, --search-range, --search-step)\n"
         "  hfmg            AMCT HFMG (--bins, default 4096); pytorch preset: HistogramObserver's search\n"
         "  aciq_laplace    ACIQ clipping for a Laplace fit\n"
         "  aciq_gaussian   ACIQ clipping for a Gaussian fit\n"
         "  pot_diffs       Vitis AI power-of-two 'diffs' per batch (--scope, --statistic)\n\n"
         "options (default):\n"
         "  --bits B                 bit width, 2..16 (8)\n"
         "  --symmetric | --asymmetric  grid symmetric around zero or not (asymmetric)\n"
         "  --unsigned               unsigned grid [0, 2^B-1] (signed)\n"
         "  --narrow-range           drop the lowest code (off)\n"
         "  --axis N                 per-channel along axis N (per-tensor)\n"
         "  --preset P               amct | onnxruntime | pytorch: range formula and peer variants (amct)\n"
         "  --skip-nonfinite         ignore NaN / inf instead of failing (off)\n"
         "  --percentile P           percentile method, in percent (" << d.percentile.percentile << ")\n"
         "  --bins N                 entropy / percentile(onnxruntime) histogram bins (2048); hfmg bins (4096 amct, 2048 pytorch)\n"
         "  --levels N               entropy quantization levels (2^(B-1) symmetric, 2^B asymmetric, 128 onnxruntime)\n"
         "  --max-rounds N           entropy (" << d.entropy.max_rounds << ") / mse (" << d.mse.max_rounds
      << "): asymmetric alternations of the two window ends\n"
         "  --max-percentile F       ifmr (" << d.ifmr.max_percentile << ")\n"
         "  --min-percentile F       ifmr (" << d.ifmr.min_percentile << ")\n"
         "  --search-range A,B       ifmr clipping ratios (" << d.ifmr.search_start << "," << d.ifmr.search_end << ")\n"
         "  --search-step S          ifmr ratio step (" << d.ifmr.search_step << ")\n"
         "  --search-points N        mse coarse candidates (" << d.mse.search_points << ")\n"
         "  --refine-points N        mse fine candidates around the best coarse one (" << d.mse.refine_points << ")\n"
         "  --averaging-constant C   moving_average (" << d.moving_average.averaging_constant << ")\n"
         "  --scope N                pot_diffs positions tried (" << d.pot.scope << ")\n"
         "  --max-fix-pos N          pot_diffs largest fix position; all-zero data takes it (" << d.pot.max_fix_pos << ")\n"
         "  --statistic S            pot_diffs across batches: modal | max | mean | median (modal)\n"
         "  --torch-int-range        hfmg/pytorch: emulate torch <= 1.13's int() histogram range (off)\n"
         "  --histogram-capacity N   streaming histogram bins (" << d.histogram_capacity << ")\n"
         "  --tail-capacity N        percentile / ifmr: exact extreme values kept per side (" << d.tail_capacity << ")\n"
         "Method options given for another method are an error.\n"
         "Exit status 0 on success; on error, one line on stderr and status 1 (2 for bad usage).\n";
}

// Method options and the methods they tune: any other method refuses them, so a typo in
// --method cannot leave a tuning option silently unused.
const std::map<std::string, std::vector<calib_method>>& method_options() {
  using m = calib_method;
  static const std::map<std::string, std::vector<calib_method>> table = {
      {"--percentile", {m::percentile}},
      {"--bins", {m::entropy, m::percentile, m::hfmg}},
      {"--levels", {m::entropy}},
      {"--max-rounds", {m::entropy, m::mse}},
      {"--max-percentile", {m::ifmr}},
      {"--min-percentile", {m::ifmr}},
      {"--search-range", {m::ifmr}},
      {"--search-step", {m::ifmr}},
      {"--search-points", {m::mse}},
      {"--refine-points", {m::mse}},
      {"--averaging-constant", {m::moving_average}},
      {"--scope", {m::pot_diffs}},
      {"--max-fix-pos", {m::pot_diffs}},
      {"--statistic", {m::pot_diffs}},
      {"--torch-int-range", {m::hfmg}},
      {"--tail-capacity", {m::percentile, m::ifmr}},
  };
  return table;
}

void check_applies(const std::string& opt, calib_method method) {
  const auto& methods = method_options().at(opt);
  if (std::find(methods.begin(), methods.end(), method) != methods.end()) return;
  std::string names;
  for (calib_method m : methods) names += (names.empty() ? "" : ", ") + std::string(to_string(m));
  AMCTQ_THROW(errc::invalid_argument, "amctq calib", "option ", opt, " does not apply to --method ", to_string(method),
              "; it tunes ", names);
}

double to_number(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  AMCTQ_CHECK(!v.empty() && end && *end == '\0', errc::invalid_argument, "amctq calib", "option ", opt,
              " needs a number, got '", v, "'");
  return x;
}

int to_int(const std::string& opt, const std::string& v) {
  const double x = to_number(opt, v);
  AMCTQ_CHECK(std::fabs(x) <= 2147483647.0 && x == std::trunc(x), errc::invalid_argument, "amctq calib", "option ",
              opt, " needs an integer, got '", v, "'");
  return static_cast<int>(x);
}

std::uint32_t to_count(const std::string& opt, const std::string& v) {
  const int x = to_int(opt, v);
  AMCTQ_CHECK(x >= 0, errc::invalid_argument, "amctq calib", "option ", opt, " needs a count >= 0, got '", v, "'");
  return static_cast<std::uint32_t>(x);
}

template <std::size_t R>
void observe_rank(activation_observer& ob, const std::vector<float>& data, const std::vector<std::int64_t>& shape) {
  std::array<std::ptrdiff_t, R> e{};
  for (std::size_t r = 0; r < R; ++r) e[r] = static_cast<std::ptrdiff_t>(shape[r]);
  ob.observe(tensor_view<const float, R>(data.data(), e));
}

void observe_file(activation_observer& ob, const std::string& path) {
  const graph::tensor t = io::read_npy(path);
  const std::vector<float> data = io::npy_to_float(t);
  std::vector<std::int64_t> shape = t.shape();
  if (shape.empty()) shape = {1};
  switch (shape.size()) {
    case 1: return observe_rank<1>(ob, data, shape);
    case 2: return observe_rank<2>(ob, data, shape);
    case 3: return observe_rank<3>(ob, data, shape);
    case 4: return observe_rank<4>(ob, data, shape);
    case 5: return observe_rank<5>(ob, data, shape);
    case 6: return observe_rank<6>(ob, data, shape);
    default:
      AMCTQ_THROW(errc::unsupported, "amctq calib", "'", path, "' has rank ", shape.size(), "; ranks 0..6 are supported");
  }
}

}  // namespace

void print_calib_help(std::ostream& out) { print_help(out); }

int cmd_calib(int argc, char** argv) {
  observer_options o;
  std::vector<std::string> files;
  std::optional<activation_observer> ob;  // made once the options are complete (it validates them)
  try {
    o.spec.symmetric = false;
    o.name = "calibration data";
    std::vector<std::string> tuned;
    int bins = 0;
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "calib" && i == 0) continue;
      if (a == "-h" || a == "--help") {
        print_help(std::cout);
        return 0;
      }
      auto value = [&]() -> std::string {
        AMCTQ_CHECK(i + 1 < argc, errc::invalid_argument, "amctq calib", "option ", a, " needs a value");
        return argv[++i];
      };
      if (method_options().count(a)) tuned.push_back(a);
      if (a == "--method") o.method = calib_method_from_string(value());
      else if (a == "--bits") o.spec.bits = to_int(a, value());
      else if (a == "--symmetric") o.spec.symmetric = true;
      else if (a == "--asymmetric") o.spec.symmetric = false;
      else if (a == "--unsigned") o.spec.is_signed = false;
      else if (a == "--narrow-range") o.spec.narrow_range = true;
      else if (a == "--axis") o.spec.axis = to_int(a, value());
      else if (a == "--preset") {
        const std::string p = value();
        AMCTQ_CHECK(preset_from_string(p, o.how), errc::invalid_argument, "amctq calib", "unknown preset '", p,
                    "' (amct, onnxruntime, pytorch)");
      } else if (a == "--skip-nonfinite") o.skip_nonfinite = true;
      else if (a == "--percentile") o.percentile.percentile = to_number(a, value());
      else if (a == "--bins") bins = to_int(a, value());
      else if (a == "--levels") o.entropy.levels = to_int(a, value());
      else if (a == "--max-rounds") o.entropy.max_rounds = o.mse.max_rounds = to_int(a, value());
      else if (a == "--refine-points") o.mse.refine_points = to_int(a, value());
      else if (a == "--max-fix-pos") o.pot.max_fix_pos = to_int(a, value());
      else if (a == "--max-percentile") o.ifmr.max_percentile = to_number(a, value());
      else if (a == "--min-percentile") o.ifmr.min_percentile = to_number(a, value());
      else if (a == "--search-range") {
        const std::string v = value();
        const auto comma = v.find(',');
        AMCTQ_CHECK(comma != std::string::npos, errc::invalid_argument, "amctq calib",
                    "--search-range needs START,END, got '", v, "'");
        o.ifmr.search_start = to_number(a, v.substr(0, comma));
        o.ifmr.search_end = to_number(a, v.substr(comma + 1));
      } else if (a == "--search-step") o.ifmr.search_step = to_number(a, value());
      else if (a == "--search-points") o.mse.search_points = to_int(a, value());
      else if (a == "--averaging-constant") o.moving_average.averaging_constant = to_number(a, value());
      else if (a == "--scope") o.pot.scope = to_int(a, value());
      else if (a == "--statistic") {
        const std::string s = value();
        if (s == "modal") o.statistic = batch_statistic::modal;
        else if (s == "max") o.statistic = batch_statistic::max;
        else if (s == "mean") o.statistic = batch_statistic::mean;
        else if (s == "median") o.statistic = batch_statistic::median;
        else AMCTQ_THROW(errc::invalid_argument, "amctq calib", "unknown statistic '", s, "' (modal, max, mean, median)");
      } else if (a == "--torch-int-range") o.hfmg.torch_int_range = true;
      else if (a == "--histogram-capacity") o.histogram_capacity = to_count(a, value());
      else if (a == "--tail-capacity") o.tail_capacity = to_count(a, value());
      else if (!a.empty() && a[0] == '-') AMCTQ_THROW(errc::invalid_argument, "amctq calib", "unknown option '", a, "' (see amctq calib --help)");
      else files.push_back(a);
    }
    for (const std::string& t : tuned) check_applies(t, o.method);
    if (bins != 0) {
      if (o.method == calib_method::entropy) o.entropy.bins = bins;
      if (o.method == calib_method::percentile) o.percentile.bins = bins;
      if (o.method == calib_method::hfmg) o.hfmg.bins = bins;
    }
    AMCTQ_CHECK(!files.empty(), errc::invalid_argument, "amctq calib", "no .npy file given (see amctq calib --help)");
    o.name = files.size() == 1 ? files[0] : files[0] + " and " + std::to_string(files.size() - 1) + " more";
    ob.emplace(o);
  } catch (const std::exception& e) {
    return cli::report(e, "amctq calib", cli::bad_usage);
  }
  try {
    for (const auto& f : files) {
      try {
        observe_file(*ob, f);
      } catch (const amctq::error& e) {  // name the batch file
        AMCTQ_THROW(e.code(), "amctq calib", "batch '", f, "': ", e.body());
      }
    }
    const calib_result r = ob->result();
    nlohmann::json j;
    cli::put_calib_fields(j, nullptr, o, r, ob->nonfinite());
    j["batches"] = files.size();
    std::cout << j.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    return cli::report(e, "amctq calib", cli::bad_input);
  }
}
