#include <doctest/doctest.h>

#include <string>

#include "amctq/graph/pipeline.hpp"
#include "amctq/io/onnx_reader.hpp"

namespace test_pipeline_config {

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
  const graph::quant_config c = graph::create_quant_config(m);
  CHECK_THROWS_WITH_AS(graph::quantizer(m, c), doctest::Contains("share the weight"), amctq::error);
  // Skipping one is not enough (the quantized one would still share its weight with a float
  // reader); skipping both, as the message advises, is.
  graph::quant_config skip = c;
  skip.skip_layers = {"/18/Gemm"};
  CHECK_THROWS_WITH_AS(graph::quantizer(m, skip), doctest::Contains("is also used by node '/18/Gemm'"), amctq::error);
  skip.skip_layers = {"/16/Gemm", "/18/Gemm"};
  const graph::quantizer q(m, skip);
  CHECK(q.layers().size() == c.layers.size() - 2);
}

TEST_CASE("pipeline: a Gemm with transA or alpha != 1 stays in float, and skip_layers without a layer list works") {
  auto m = io::read_onnx(model_path());
  for (auto& n : m.main.nodes)
    if (n.name == "/18/Gemm") graph::passes::detail::set_float_attribute(n, "alpha", 0.5f);
  const graph::quant_config c = graph::create_quant_config(m);
  for (const auto& l : c.layers) CHECK(l.name != "/18/Gemm");
  graph::quant_config minimal;  // no layer list, as a hand-written {"skip_layers": [...]} gives
  minimal.skip_layers = {"/16/Gemm"};
  const graph::quantizer q(m, minimal);
  CHECK(q.layers().size() == c.layers.size() - 1);
  minimal.skip_layers = {"/nope/Gemm"};
  CHECK_THROWS_WITH_AS(graph::quantizer(m, minimal), doctest::Contains("config.skip_layers: names '/nope/Gemm'"),
                       amctq::error);
}

TEST_CASE("pipeline: old opsets and 16-bit activations are refused before calibration") {
  auto m = io::read_onnx(model_path());
  graph::quant_config c = graph::create_quant_config(m);
  c.layers[1].settings.activation.num_bits = 16;  // valid for AMCT, not exportable as int8
  CHECK_THROWS_WITH_AS(graph::quantizer(m, c), doctest::Contains("16-bit activations cannot be exported"),
                       amctq::error);
  for (auto& o : m.opset_imports)
    if (o.domain.empty() || o.domain == "ai.onnx") o.version = 11;
  CHECK_THROWS_WITH_AS(graph::quantizer(m, graph::create_quant_config(m)), doctest::Contains("opset 11 is below 13"),
                       amctq::error);
}

TEST_CASE("pipeline: a config naming a layer the model lacks is refused") {
  const auto m = io::read_onnx(model_path());
  auto c = graph::create_quant_config(m);
  c.layers[0].name = "/nope/Conv";
  CHECK_THROWS_WITH_AS(graph::quantizer(m, c), doctest::Contains("config.layers./nope/Conv"), amctq::error);
}
#endif

}  // namespace test_pipeline_config
