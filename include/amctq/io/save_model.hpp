// save_model: lowers a calibrated quantizer to the fake-quant and deploy models and writes
// them with record.json as one set (io/file_set.hpp). Everything is built in memory and written
// to temp files first; nothing is replaced until all of them are complete, so an error leaves
// the old files as they were. The files are then renamed one by one between the removal and the
// rewriting of DIR/amctq_manifest.json, which lists each file's size and SHA-256: a process
// killed between two renames leaves no manifest, so a reader that checks it (verify_file_set)
// never takes a new fake-quant model beside an old deploy model and record.
#ifndef AMCTQ_IO_SAVE_MODEL_HPP
#define AMCTQ_IO_SAVE_MODEL_HPP

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/passes/lower_qoperator.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/file_set.hpp"
#include "amctq/io/onnx_writer.hpp"
#include "amctq/io/record_json.hpp"

namespace amctq::io {

struct saved_paths {
  std::string fake_quant;
  std::string deploy;
  std::string record;
  std::string float_layers;        ///< DIR/float_layers.json: the layers left in float, and why
  std::string manifest;            ///< DIR/amctq_manifest.json, written last
  std::vector<std::string> notes;  ///< graph::deploy_exactness_notes: what a caller should tell the user
};

/// The newest default-domain opset whose operators amctq's lowerings write (QuantizeLinear,
/// DequantizeLinear, QLinearConv, ConvInteger, MatMulInteger, Cast, Mul, Add, Clip, Max):
/// models importing a newer one are refused rather than written with semantics amctq has
/// not checked.
inline constexpr std::int64_t newest_written_opset = 22;

/// Throws unless amctq can write quantized models of m's opset (callers check before
/// calibrating; save_model checks again).
inline void check_written_opset(const graph::model& m) {
  const std::int64_t v = m.opset();
  AMCTQ_CHECK(v <= newest_written_opset, errc::unsupported, "save_model", "the model imports opset ", v,
              " of the default domain; amctq writes quantized models up to opset ", newest_written_opset,
              ": convert it with onnx.version_converter.convert_version(model, ", newest_written_opset, ")");
}

/// record.json and the nodes the lowerings add are keyed by layer name, which for an unnamed
/// node is its output's name and can then equal another layer's: refused (amctq quantize checks
/// before calibrating; save_model checks again) instead of losing a layer from the record.
inline void check_layer_names(const graph::quantizer& q) {
  const auto& ls = q.layers();
  std::size_t a = 0, b = 0;
  if (detail::first_repeat(ls, [](const graph::quant_layer& l) -> const std::string& { return l.name; }, false, a, b))
    AMCTQ_THROW(errc::invalid_argument, "save_model", "two layers are named '", detail::clip(ls[b].name),
                "' (", ls[a].op_type, " and ", ls[b].op_type, "; a layer takes its node's name, or its output's when "
                "the node has none): give the nodes distinct names");
}

struct save_options {
  /// Tests: runs after each file of the set is renamed into place (a throw simulates a kill).
  std::function<void(const std::string&)> after_rename;
  /// Called as the steps are done: (steps done, steps total).
  std::function<void(int, int)> progress;
};

/// Writes DIR/<stem>_fake_quant_model.onnx, DIR/<stem>_deploy_model.onnx, DIR/record.json and
/// DIR/float_layers.json,
/// creating DIR if needed, then DIR/amctq_manifest.json listing them (the set is complete only
/// while the manifest exists and matches: verify_file_set). Tensors the source model kept in external data are written inline
/// (or, past protobuf's 2 GB, to each output's own <model>.onnx.data), never to the source's
/// data file, which may sit in the same folder.
inline saved_paths save_model(const graph::quantizer& q, const std::string& dir, const std::string& stem,
                              const save_options& opt = {}) {
  AMCTQ_CHECK(q.calibrated(), errc::invalid_argument, "save_model", "calibrate() must run before save_model()");
  check_written_opset(q.float_model());
  check_layer_names(q);
  saved_paths p;
  const std::string base = dir.empty() ? std::string(".") : dir;
  p.fake_quant = base + "/" + stem + "_fake_quant_model.onnx";
  p.deploy = base + "/" + stem + "_deploy_model.onnx";
  p.record = base + "/record.json";
  p.float_layers = base + "/float_layers.json";
  p.manifest = detail::manifest_path(base);
  for (const std::string* path : {&p.fake_quant, &p.deploy, &p.record, &p.float_layers, &p.manifest}) {
    std::error_code ec;
    const auto st = std::filesystem::status(*path, ec);
    AMCTQ_CHECK(!std::filesystem::exists(st) || std::filesystem::is_regular_file(st), errc::io, "save_model", "'",
                *path, "' exists and is not a regular file; nothing was written");
  }
  constexpr int steps = 5;
  auto step = [&opt](int done) {
    if (opt.progress) opt.progress(done, steps);
  };
  step(0);
  // One lowered model at a time, written to its temp file and freed before the next is built:
  // each can be as large as the float model.
  std::optional<graph::model> lowered = graph::lower_qdq(q.float_model(), q.layers(), q.record());
  step(1);
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  AMCTQ_CHECK(!ec, errc::io, "save_model", "cannot create the output folder '", base, "': ", ec.message());
  onnx_write_options own_data;
  own_data.keep_external = false;
  own_data.hash_files = true;
  staged_onnx fq_file = stage_onnx(*lowered, p.fake_quant, own_data);
  lowered.reset();
  step(2);
  lowered = graph::lower_qoperator(q.float_model(), q.layers(), q.record());
  step(3);
  staged_onnx dp_file = stage_onnx(*lowered, p.deploy, own_data);
  lowered.reset();
  step(4);
  const std::string rec = write_record_json(q.record());
  const std::string floats = write_float_layers_json(q.layers().size(), q.float_layers());
  atomic_file rec_file(p.record);
  rec_file.hash_contents();
  rec_file.write(rec.data(), rec.size());
  std::vector<atomic_file*> files = fq_file.files();
  for (atomic_file* f : dp_file.files()) files.push_back(f);
  files.push_back(&rec_file);
  atomic_file float_file(p.float_layers);
  float_file.hash_contents();
  float_file.write(floats.data(), floats.size());
  files.push_back(&float_file);
  commit_file_set(base, files, stem, opt.after_rename);
  step(steps);
  p.notes = graph::deploy_exactness_notes(q.float_model(), q.layers(), q.record());
  return p;
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_SAVE_MODEL_HPP
