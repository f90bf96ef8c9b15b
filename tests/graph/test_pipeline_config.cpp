#include <doctest/doctest.h>

#include <string>

#include "amctq/graph/pipeline.hpp"
#include "amctq/io/onnx_reader.hpp"

using namespace amctq;

namespace {
std::string model_path() { return std::string(AMCTQ_SOURCE_DIR) + "/models/fmnist_cnn.onnx"; }
}  // namespace

#ifdef AMCTQ_SOURCE_DIR
TEST_CASE("pipeline: create_quant_config finds every quantizable layer of the bundled CNN") {
  const auto m = io::read_onnx(model_path());
  const auto c = graph::create_quant_config(m, {"/18/Gemm"}, 2, false);
  REQUIRE(c.layers.size() == 7);  // 4 Conv (incl. depthwise and 1x1), AveragePool, 2 Gemm
  CHECK(c.layers[1].op_type == "Conv");
  CHECK(c.layers[4].op_type == "AveragePool");
  CHECK(c.layers[6].name == "/18/Gemm");
  CHECK(!c.layers[0].settings.activation.asymmetric);
  graph::quantizer q(m, c);
  CHECK(q.layers().size() == 6);  // skip_layers honoured
  for (const auto& n : q.float_model().main.nodes) CHECK(n.op_type != "BatchNormalization");
}

TEST_CASE("pipeline: too few calibration batches says how many are needed") {
  const auto m = io::read_onnx(model_path());
  graph::quantizer q(m, graph::create_quant_config(m, {}, 3));
  graph::tensor x(graph::dtype::float32, {1, 1, 28, 28});
  try {
    q.calibrate({{{"image", x}}});
    FAIL("expected an error");
  } catch (const amctq::error& e) {
    CHECK(std::string(e.what()).find("calibration needs 3 batches (config batch_num = 3), got 1") != std::string::npos);
  }
}

TEST_CASE("pipeline: layers sharing a weight are refused") {
  auto m = io::read_onnx(model_path());
  auto& nodes = m.main.nodes;
  std::string w16;
  for (auto& n : nodes)
    if (n.name == "/16/Gemm") w16 = n.inputs[1];
  for (auto& n : nodes)
    if (n.name == "/18/Gemm") n.inputs[1] = w16;
  CHECK_THROWS_WITH_AS(graph::create_quant_config(m), doctest::Contains("share the weight"), amctq::error);
}

TEST_CASE("pipeline: a config naming a layer the model lacks is refused") {
  const auto m = io::read_onnx(model_path());
  auto c = graph::create_quant_config(m);
  c.layers[0].name = "/nope/Conv";
  CHECK_THROWS_WITH_AS(graph::quantizer(m, c), doctest::Contains("config.layers./nope/Conv"), amctq::error);
}
#endif
