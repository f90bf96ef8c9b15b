// The README's pipeline quick start: read a model, make the default config, calibrate, save
// the fake-quant model, the deploy model and record.json.
// Usage: example_03_pipeline_api model.onnx calib.npy out_dir
#include <amctq/graph/pipeline.hpp>
#include <amctq/io/npy.hpp>
#include <amctq/io/onnx.hpp>
#include <amctq/io/save_model.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s model.onnx calib.npy out_dir\n", argv[0]);
    return 2;
  }
  try {
    amctq::graph::model model = amctq::io::read_onnx(argv[1]);
    amctq::graph::quant_config config = amctq::graph::create_quant_config(model, /*skip_layers=*/{}, /*batch_num=*/1);
    for (auto& layer : config.layers) layer.settings.activation.algo = amctq::calib_method::mse;  // each layer resolved
    amctq::graph::quantizer q(model, config);
    const std::string input = model.main.inputs.at(0).name;
    const std::vector<amctq::graph::batch> batches = {{{input, amctq::io::read_npy(argv[2])}}};
    q.quantize_preprocess(batches);  // DMQ balance where a layer asks for it; nothing here
    q.quantize_model();
    q.calibrate(batches, [](int done, int total) { std::fprintf(stderr, "calibration batch %d/%d\n", done, total); });
    const auto files = amctq::io::save_model(q, argv[3], "model");
    std::printf("%s\n%s\n%s\n", files.fake_quant.c_str(), files.deploy.c_str(), files.record.c_str());
    for (const auto& note : files.notes) std::fprintf(stderr, "note: %s\n", note.c_str());  // exactness caveats
  } catch (const amctq::error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
