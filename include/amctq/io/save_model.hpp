// save_model: lowers a calibrated quantizer to the fake-quant and deploy models and writes
// them with record.json. Everything is built in memory first and each file is written
// atomically, so a failure never leaves a partial file behind.
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
/// creating DIR if needed.
/// Both models are lowered and serialised before the first file is written.
inline saved_paths save_model(const graph::quantizer& q, const std::string& dir, const std::string& stem) {
  AMCTQ_CHECK(q.calibrated(), errc::invalid_argument, "save_model", "calibrate() must run before save_model()");
  saved_paths p;
  const std::string base = dir.empty() ? std::string(".") : dir;
  p.fake_quant = base + "/" + stem + "_fake_quant_model.onnx";
  p.deploy = base + "/" + stem + "_deploy_model.onnx";
  p.record = base + "/record.json";
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  AMCTQ_CHECK(!ec, errc::io, "save_model", "cannot create the output folder '", base, "': ", ec.message());
  const graph::model fq = graph::lower_qdq(q.float_model(), q.layers(), q.record());
  const graph::model dp = graph::lower_qoperator(q.float_model(), q.layers(), q.record());
  const std::string rec = write_record_json(q.record());
  write_onnx(fq, p.fake_quant);
  write_onnx(dp, p.deploy);
  write_file_atomic(p.record, rec.data(), rec.size());
  p.notes = graph::deploy_exactness_notes(q.float_model(), q.layers(), q.record());
  return p;
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_SAVE_MODEL_HPP
