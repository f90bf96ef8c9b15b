// Peer driver: quantizes a model end to end with amctq, saves the exported models, and writes
// amctq's own simulation of each on the given inputs, for pipeline_peers.py to compare with
// ONNX Runtime.  usage: pipeline_driver MODEL.onnx CALIB.npy INPUTS.npy OUTDIR [CONFIG.json]
// (amctq's config format or a Vitis AI one)
#include <cstdint>
#include <cstdio>
#include <iostream>

#include "amctq/graph/integer_sim.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/config_json.hpp"
#include "amctq/io/onnx.hpp"
#include "amctq/io/save_model.hpp"
#include "amctq/io/vitis_config_json.hpp"
#include "npy_min.hpp"

using namespace amctq;

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: pipeline_driver MODEL.onnx CALIB.npy INPUTS.npy OUTDIR [CONFIG.json]\n";
    return 2;
  }
  try {
    const graph::model m = io::read_onnx(argv[1]);
    graph::quant_config cfg = argc > 5 ? io::read_quant_config(argv[5], m) : graph::create_quant_config(m);
    io::save_config_json(cfg, std::string(argv[4]) + "/config_used.json");
    graph::quantizer q(m, cfg);
    const std::string input = m.main.inputs.at(0).name;
    const graph::tensor calib = npy_read_f32(argv[2]);
    std::vector<graph::batch> batches;
    const std::int64_t n = calib.dim(0), per = n / cfg.batch_num;
    for (int b = 0; b < cfg.batch_num; ++b) batches.push_back({{input, slice_rows(calib, b * per, (b + 1) * per)}});
    q.quantize_preprocess(batches, [](std::int64_t d, std::int64_t t) {
      std::fprintf(stderr, "balance %lld/%lld rows\n", static_cast<long long>(d), static_cast<long long>(t));
    });
    q.quantize_model();
    q.calibrate(batches, [](std::int64_t d, std::int64_t t) {
      std::fprintf(stderr, "calibration %lld/%lld rows\n", static_cast<long long>(d), static_cast<long long>(t));
    });
    const auto paths = io::save_model(q, argv[4], "model");
    const graph::tensor x = npy_read_f32(argv[3]);
    const std::string out = m.main.outputs.at(0).name;
    const auto fq = graph::simulate(io::read_onnx(paths.fake_quant), {{input, x}});
    npy_write_f32(std::string(argv[4]) + "/fake_quant_sim.npy", fq.at(out));
    if (!paths.deploy.empty()) {
      const auto dp = graph::simulate(io::read_onnx(paths.deploy), {{input, x}});
      npy_write_f32(std::string(argv[4]) + "/deploy_sim.npy", dp.at(out));
    }
  } catch (const std::exception& e) {
    std::cerr << "pipeline_driver: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
