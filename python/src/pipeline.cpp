// quantize_model and create_quant_config: the flow of `amctq quantize` / `amctq config` on
// calibration arrays held by Python. The pipeline owns its batches, so the arrays are copied
// once into graph tensors (the only copy the package makes); everything else is the CLI's code.
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nanobind/stl/string.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "amctq/graph/layer_report.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/auto_quantize.hpp"
#include "amctq/io/calibration_data.hpp"
#include "amctq/io/config_json.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/report_html.hpp"
#include "amctq/io/save_model.hpp"
#include "amctq/io/vitis_config_json.hpp"
#include "arrays.hpp"
#include "bindings.hpp"

namespace amctq::python {

namespace {

using contiguous_array = nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>;

graph::dtype graph_dtype(nb::dlpack::dtype t, const std::string& name) {
  if (holds<float>(t)) return graph::dtype::float32;
  if (holds<double>(t)) return graph::dtype::float64;
  if (holds<std::int8_t>(t)) return graph::dtype::int8;
  if (holds<std::uint8_t>(t)) return graph::dtype::uint8;
  if (holds<std::int16_t>(t)) return graph::dtype::int16;
  if (holds<std::uint16_t>(t)) return graph::dtype::uint16;
  if (holds<std::int32_t>(t)) return graph::dtype::int32;
  if (holds<std::int64_t>(t)) return graph::dtype::int64;
  if (holds<bool>(t)) return graph::dtype::boolean;
  AMCTQ_THROW(errc::invalid_argument, "calibration data", "array '", name, "' has dtype ", dtype_name(t),
              "; calibration arrays are float32/64, int8/16/32/64, uint8/16 or bool");
}

graph::tensor to_tensor(const contiguous_array& a, const std::string& name) {
  std::vector<std::int64_t> shape(a.ndim());
  for (std::size_t r = 0; r < a.ndim(); ++r) shape[r] = static_cast<std::int64_t>(a.shape(r));
  graph::tensor t(graph_dtype(a.dtype(), name), shape);
  if (!t.bytes().empty()) std::memcpy(t.bytes().data(), a.data(), t.bytes().size());
  return t;
}

// What io::read_calibration_data does with the arrays once it has read its files: the same
// checks and conversions, each error naming the input. The key "" stands for the model's one
// fed input, as a lone X.npy does on the command line.
io::calibration_data calibration_from(const graph::model& m, const std::map<std::string, contiguous_array>& arrays) {
  const auto ins = io::fed_inputs(m);
  AMCTQ_CHECK(!ins.empty(), errc::invalid_argument, "calibration data", "the model has no graph input to feed");
  std::map<std::string, std::pair<io::row_array, std::string>> given;
  for (const auto& [key, a] : arrays) {
    std::string name = key;
    if (name.empty()) {
      AMCTQ_CHECK(ins.size() == 1, errc::invalid_argument, "calibration data", "the model has ", ins.size(),
                  " inputs (", io::detail::input_names(ins), "); give a dict of arrays by input name");
      name = ins[0]->name;
    }
    given.emplace(name, std::make_pair(io::row_array(to_tensor(a, name)), "array '" + name + "'"));
  }
  return io::calibration_from(m, std::move(given));
}

graph::quant_config config_for(const graph::model& m, const std::string& path, const std::string& text) {
  if (!path.empty()) return io::read_quant_config(path, m);
  if (text.empty()) return graph::create_quant_config(m);
  if (io::vitis::is_vitis_config_text(text)) return io::vitis::to_quant_config(io::vitis::parse_vitis_config(text), m);
  return io::read_config_json_text(text);
}

graph::model read_model(const std::string& path) {
  AMCTQ_CHECK(std::filesystem::is_regular_file(path), errc::io, "quantize_model", "model ", path, ": no such file");
  return io::read_onnx(path);
}

// The files save_model wrote, by the keys quantize_model and auto_quantize return them under.
nb::dict paths_dict(const io::saved_paths& paths) {
  nb::dict out;
  out["fake_quant_model"] = paths.fake_quant;
  out["deploy_model"] = paths.deploy;
  out["record"] = paths.record;
  out["float_layers"] = paths.float_layers;
  out["manifest"] = paths.manifest;
  return out;
}

// Learned parameters by layer name (amctq.qat): {"act": (scale, zero_point, bits) or None,
// "wts_scale": [floats] or None}.
std::map<std::string, graph::given_params> given_params_from(const nb::dict& given) {
  std::map<std::string, graph::given_params> out;
  for (const auto& [k, v] : given) {
    graph::given_params g;
    const nb::dict d = nb::cast<nb::dict>(v);
    if (d.contains("act") && !d["act"].is_none()) {
      const auto [s, z, bits] = nb::cast<std::tuple<float, std::int32_t, int>>(d["act"]);
      g.act = make_params(s, z, -(1 << (bits - 1)), (1 << (bits - 1)) - 1);
      validate(g.act, "quantize_model");
    }
    if (d.contains("wts_scale") && !d["wts_scale"].is_none()) g.wts_scale = nb::cast<std::vector<float>>(d["wts_scale"]);
    out.emplace(nb::cast<std::string>(k), std::move(g));
  }
  return out;
}

// `batches` holds one dict per batch; with split, the one dict's rows are cut into the config's
// batch_num batches as `amctq quantize --calib` cuts them.
using batch_arrays = std::vector<std::map<std::string, contiguous_array>>;

// The batches the pipeline runs, from the arrays Python gave.
std::vector<graph::batch> batches_from(const graph::model& m, const graph::quant_config& cfg, const batch_arrays& batches,
                                       bool split, std::vector<std::string>& notes, const char* where) {
  AMCTQ_CHECK(!batches.empty(), errc::invalid_argument, where, "no calibration data given");
  std::vector<graph::batch> data;
  for (const auto& b : batches) {
    io::calibration_data d = calibration_from(m, b);
    notes.insert(notes.end(), d.notes.begin(), d.notes.end());
    if (split) data = io::split_batches(d, cfg.batch_num);
    else data.push_back(io::split_batches(d, 1).front());
  }
  return data;
}

nb::dict quantize_model(const std::string& model_path, const std::string& config_path, const std::string& config_text,
                        const batch_arrays& batches, bool split, const std::string& out_dir, const std::string& stem,
                        const nb::dict& given, int threads) {
  AMCTQ_CHECK(threads >= 0, errc::invalid_argument, "quantize_model", "threads must be >= 1 (or None: one per core), got ",
              threads);
  graph::model m = read_model(model_path);
  io::check_written_opset(m);
  const graph::quant_config cfg = config_for(m, config_path, config_text);
  std::vector<std::string> notes;
  const std::vector<graph::batch> data = batches_from(m, cfg, batches, split, notes, "quantize_model");
  std::map<std::string, graph::given_params> gp = given_params_from(given);
  io::saved_paths paths;
  std::vector<graph::float_layer> left;
  std::size_t quantized = 0;
  {
    nb::gil_scoped_release unlocked;
    graph::quantizer q(std::move(m), cfg);  // moved: a large model is not held twice
    io::check_layer_names(q);
    q.set_given_params(gp);
    // Calibrated as `amctq quantize` calibrates: the same slices, so the same bytes.
    const graph::batches_in_memory src(data);
    const graph::calibration_options opt = graph::default_calibration_options(threads);
    q.quantize_preprocess(src, opt);
    q.release_float_weights();  // as `amctq quantize` does: nothing reads them after calibration
    q.quantize_model();
    q.calibrate(src, opt);
    // What `amctq quantize` prints as notes: tensors it passed over (not float).
    notes.insert(notes.end(), q.tensor_notes().begin(), q.tensor_notes().end());
    paths = io::save_model(q, out_dir, stem);
    left = q.float_layers();
    quantized = q.layers().size();
  }
  notes.insert(notes.end(), paths.notes.begin(), paths.notes.end());
  nb::dict out = paths_dict(paths);
  out["notes"] = notes;
  out["quantized"] = quantized;
  return out;
}

// amctq.AutoEvaluatorBase seen from C++: its two methods, called with the GIL held (auto_quantize
// does not release it).
class python_evaluator : public io::auto_evaluator {
 public:
  explicit python_evaluator(nb::object ev) : ev_(std::move(ev)) {}
  double eval_model(const std::string& model_path, int batch_num) override {
    return nb::cast<double>(ev_.attr("eval_model")(model_path, batch_num));
  }
  bool is_satisfied(double original, double now) override {
    return nb::cast<bool>(ev_.attr("is_satisfied")(original, now));
  }

 private:
  nb::object ev_;
};

// `amctq report`: calibrates as quantize_model does and writes the HTML page; returns each
// layer's output SQNR and cosine, worst first as the page's summary.
std::vector<std::tuple<std::string, double, double>> report(const std::string& model_path, const std::string& config_path,
                                                            const std::string& config_text, const batch_arrays& batches,
                                                            bool split, const std::string& out) {
  const graph::model m = read_model(model_path);
  io::check_written_opset(m);
  const graph::quant_config cfg = config_for(m, config_path, config_text);
  std::vector<std::string> notes;
  const std::vector<graph::batch> data = batches_from(m, cfg, batches, split, notes, "report");
  std::vector<graph::layer_report> layers;
  {
    nb::gil_scoped_release unlocked;
    graph::quantizer q(m, cfg);
    const graph::batches_in_memory src(data);
    const graph::calibration_options opt = graph::default_calibration_options();
    q.quantize_preprocess(src, opt);
    q.quantize_model();
    q.calibrate(src, opt);
    layers = graph::build_layer_report(q, data);
    const std::string page = io::render_report_html(layers, std::filesystem::path(model_path).filename().string());
    io::write_file_atomic(out, page.data(), page.size());
  }
  std::vector<std::tuple<std::string, double, double>> summary;
  for (const auto& l : layers) summary.emplace_back(l.name, l.sqnr_db, l.cosine);
  std::stable_sort(summary.begin(), summary.end(), [](const auto& a, const auto& b) { return std::get<1>(a) < std::get<1>(b); });
  return summary;
}

nb::dict auto_quantize(const std::string& model_path, const std::string& config_path, const std::string& config_text,
                       const batch_arrays& batches, bool split, const std::string& out_dir, const std::string& stem,
                       const std::string& strategy, int max_evals, nb::object evaluator) {
  const graph::model m = read_model(model_path);
  io::check_written_opset(m);
  const graph::quant_config cfg = config_for(m, config_path, config_text);
  std::vector<std::string> notes;
  const std::vector<graph::batch> data = batches_from(m, cfg, batches, split, notes, "auto_quantize");
  python_evaluator ev(std::move(evaluator));
  io::auto_options opt;
  opt.strategy = io::parse_auto_strategy(strategy);
  opt.max_evals = max_evals;
  const io::auto_result r = io::auto_quantize(m, model_path, cfg, data, ev, out_dir, stem, opt);
  nb::dict out = paths_dict(r.paths);  // the metrics: auto_search.json, which the Python side reads
  out["final_config"] = r.final_config;
  out["ranking_info"] = r.ranking_info;
  out["auto_search"] = r.search_log;
  out["notes"] = notes;
  return out;
}

std::string create_config(const std::string& model_path, const std::vector<std::string>& skip, int batch_num,
                          bool activation_offset) {
  return io::write_config_json(graph::create_quant_config(read_model(model_path), skip, batch_num, activation_offset));
}

// The config as amctq reads it (keys checked, defaults resolved), written back.
std::string canonical_config(const std::string& model_path, const std::string& text) {
  return io::write_config_json(config_for(read_model(model_path), "", text));
}

}  // namespace

void bind_pipeline(nb::module_& m) {
  m.def("_quantize_model", &quantize_model, nb::arg("model_path"), nb::arg("config_path"), nb::arg("config_text"),
        nb::arg("batches"), nb::arg("split"), nb::arg("out_dir"), nb::arg("stem"), nb::arg("given") = nb::dict(), nb::arg("threads") = 0);
  m.def("_report", &report, nb::arg("model_path"), nb::arg("config_path"), nb::arg("config_text"), nb::arg("batches"),
        nb::arg("split"), nb::arg("out"));
  m.def("_create_quant_config", &create_config, nb::arg("model_path"), nb::arg("skip_layers"), nb::arg("batch_num"),
        nb::arg("activation_offset"));
  m.def("_canonical_config", &canonical_config, nb::arg("model_path"), nb::arg("text"));
  m.def("_auto_quantize", &auto_quantize, nb::arg("model_path"), nb::arg("config_path"), nb::arg("config_text"),
        nb::arg("batches"), nb::arg("split"), nb::arg("out_dir"), nb::arg("stem"), nb::arg("strategy"),
        nb::arg("max_evals"), nb::arg("evaluator"));
}

}  // namespace amctq::python
