// save_model: lowers a calibrated quantizer to the fake-quant and deploy models and writes
// them with record.json. Everything is built in memory and written to temp files first; the
// three files are renamed into place only once all of them are complete, so a failure leaves
// neither a partial file nor a new file beside stale ones.
#ifndef AMCTQ_IO_SAVE_MODEL_HPP
#define AMCTQ_IO_SAVE_MODEL_HPP

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/passes/lower_qoperator.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/onnx_writer.hpp"
#include "amctq/io/record_json.hpp"

namespace amctq::io {

struct saved_paths {
  std::string fake_quant;
  std::string deploy;
  std::string record;
  std::vector<std::string> notes;  ///< graph::deploy_exactness_notes: what a caller should tell the user
};

/// Writes DIR/<stem>_fake_quant_model.onnx, DIR/<stem>_deploy_model.onnx and DIR/record.json,
/// creating DIR if needed. Tensors the source model kept in external data are written inline
/// (or, past protobuf's 2 GB, to each output's own <model>.onnx.data), never to the source's
/// data file, which may sit in the same folder.
inline saved_paths save_model(const graph::quantizer& q, const std::string& dir, const std::string& stem) {
  AMCTQ_CHECK(q.calibrated(), errc::invalid_argument, "save_model", "calibrate() must run before save_model()");
  saved_paths p;
  const std::string base = dir.empty() ? std::string(".") : dir;
  p.fake_quant = base + "/" + stem + "_fake_quant_model.onnx";
  p.deploy = base + "/" + stem + "_deploy_model.onnx";
  p.record = base + "/record.json";
  for (const std::string* path : {&p.fake_quant, &p.deploy, &p.record}) {
    std::error_code ec;
    const auto st = std::filesystem::status(*path, ec);
    AMCTQ_CHECK(!std::filesystem::exists(st) || std::filesystem::is_regular_file(st), errc::io, "save_model", "'",
                *path, "' exists and is not a regular file; nothing was written");
  }
  const graph::model fq = graph::lower_qdq(q.float_model(), q.layers(), q.record());
  const graph::model dp = graph::lower_qoperator(q.float_model(), q.layers(), q.record());
  const std::string rec = write_record_json(q.record());
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  AMCTQ_CHECK(!ec, errc::io, "save_model", "cannot create the output folder '", base, "': ", ec.message());
  onnx_write_options own_data;
  own_data.keep_external = false;
  staged_onnx fq_file = stage_onnx(fq, p.fake_quant, own_data);
  staged_onnx dp_file = stage_onnx(dp, p.deploy, own_data);
  atomic_file rec_file(p.record);
  rec_file.write(rec.data(), rec.size());
  fq_file.prepare();
  dp_file.prepare();
  rec_file.prepare();
  fq_file.commit();
  dp_file.commit();
  rec_file.commit();
  p.notes = graph::deploy_exactness_notes(q.float_model(), q.layers(), q.record());
  return p;
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_SAVE_MODEL_HPP
