// What `amctq quantize` and `amctq report` both start from: the model, the config (given, in
// either format, or the default) and the calibration batches, each file checked and named in
// errors with the subcommand.
#ifndef AMCTQ_TOOLS_PIPELINE_INPUTS_HPP
#define AMCTQ_TOOLS_PIPELINE_INPUTS_HPP

#include <filesystem>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/calibration_data.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/save_model.hpp"
#include "amctq/io/vitis_config_json.hpp"

namespace amctq::cli {

struct pipeline_inputs {
  amctq::graph::model model;
  amctq::graph::quant_config config;
  amctq::io::calibration_data data;
  std::vector<amctq::graph::batch> batches;  ///< empty unless read_pipeline_inputs was asked to split
};

inline pipeline_inputs read_pipeline_inputs(const std::string& model_path, const std::string& config_path,
                                            const std::vector<std::string>& calib_specs, const std::string& input_name,
                                            const char* who, bool split = true) {
  using namespace amctq;
  AMCTQ_CHECK(std::filesystem::is_regular_file(model_path), errc::io, who, "--model ", model_path, ": no such file");
  AMCTQ_CHECK(config_path.empty() || std::filesystem::is_regular_file(config_path), errc::io, who, "--config ",
              config_path, ": no such file");
  pipeline_inputs in;
  in.model = io::read_onnx(model_path);
  io::check_written_opset(in.model);  // before the long part
  in.data = io::read_calibration_data(calib_specs, in.model, input_name);  // on the inputs as the model states them
  if (config_path.empty()) {
    // Prepared in place rather than copied for the config: a large model is not held twice, and
    // the quantizer's own prepare_float_model then finds nothing left to do.
    graph::prepare_float_model(in.model);
    in.config = graph::create_quant_config_prepared(in.model);
  } else {
    in.config = io::read_quant_config(config_path, in.model);
  }
  if (split) in.batches = io::split_batches(in.data, in.config.batch_num);
  else io::check_rows(in.data, in.config.batch_num);
  return in;
}

}  // namespace amctq::cli

#endif  // AMCTQ_TOOLS_PIPELINE_INPUTS_HPP
