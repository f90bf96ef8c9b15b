// The Vitis AI globals inside the quantizer, on the bundled Fashion-MNIST CNN: include_cle
// equalises its chains without changing the float function, convert_relu6_to_relu lets CLE
// through a ReLU6, include_bias_corr corrects (and records) every biased layer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "amctq/graph/pipeline.hpp"
#include "amctq/io/npy.hpp"
#include "amctq/io/onnx_reader.hpp"

namespace test_pipeline_vitis {

using namespace amctq;

#ifdef AMCTQ_SOURCE_DIR
namespace {

std::string path(const char* f) { return std::string(AMCTQ_SOURCE_DIR) + "/models/" + f; }

graph::quant_config config_with(const graph::model& m, bool relu6, bool cle, bool bias_corr) {
  auto c = graph::create_quant_config(m);
  c.global.convert_relu6_to_relu = relu6;
  c.global.include_cle = cle;
  c.global.include_bias_corr = bias_corr;
  return c;
}

graph::tensor logits(const graph::model& m, const graph::tensor& x) { return graph::run(m, {{"image", x}}).at("logits"); }

}  // namespace

TEST_CASE("pipeline include_cle: one triplet and three pairs equalised, float function kept") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  const auto x = io::read_npy(path("fmnist_calib.npy"));
  const graph::quantizer plain(m, config_with(m, false, false, false));
  const graph::quantizer q(m, config_with(m, false, true, false));
  CHECK_FALSE(plain.float_globals().cle.has_value());
  REQUIRE(q.float_globals().cle.has_value());
  const auto& rep = *q.float_globals().cle;
  CHECK(rep.triplets == 1);  // /0/Conv -> MaxPool -> depthwise /4/Conv -> /7/Conv
  // /7/Conv -> MaxPool -> /11/Conv; /11/Conv -> Pad -> AveragePool -> Flatten -> /16/Gemm;
  // /16/Gemm -> /18/Gemm
  CHECK(rep.pairs == 3);
  CHECK(rep.relu6_skipped.empty());
  const auto a = logits(plain.float_model(), x), b = logits(q.float_model(), x);
  float scale = 0.0f, diff = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(a.data<float>()[i]));
    diff = std::max(diff, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  }
  CHECK(diff <= 1e-5f * scale);
}

TEST_CASE("pipeline convert_relu6_to_relu: a ReLU6 blocks CLE until it is converted") {
  auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  for (auto& n : m.main.nodes)
    if (n.name == "/17/Relu") {  // between the two Gemms
      n.op_type = "Clip";
      n.inputs = {n.inputs[0], "lo", "hi"};
    }
  for (auto [name, v] : {std::pair<const char*, float>{"lo", 0.0f}, {"hi", 6.0f}}) {
    graph::initializer i;
    i.name = name;
    i.value = graph::tensor::from<float>({}, std::vector<float>{v});
    m.main.initializers.push_back(std::move(i));
  }
  const graph::quantizer kept(m, config_with(m, false, true, false));
  CHECK(kept.float_globals().relu6_rewritten == 0);
  CHECK(kept.float_globals().cle->pairs == 2);
  CHECK(kept.float_globals().cle->relu6_skipped == std::vector<std::string>{"/16/Gemm -> /18/Gemm"});
  const graph::quantizer converted(m, config_with(m, true, true, false));
  CHECK(converted.float_globals().relu6_rewritten == 1);
  CHECK(converted.float_globals().cle->pairs == 3);
}

TEST_CASE("pipeline include_bias_corr: every Conv and Gemm bias corrected before it is quantized") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  const auto x = io::read_npy(path("fmnist_calib.npy"));
  auto c = config_with(m, false, false, true);
  c.weights.num_bits = 4;  // a visible weight error to correct
  for (auto& l : c.layers) l.settings.weights.num_bits = 4;
  graph::quantizer q(m, c);
  q.calibrate({{{"image", x}}});
  REQUIRE(q.bias_corrections().size() == 6);  // 4 Conv + 2 Gemm; AveragePool has no bias
  for (const auto& e : q.bias_corrections()) {
    INFO(e.layer);
    CHECK(e.mean_abs_shift > 0);
  }
  for (std::size_t i = 0; i < q.layers().size(); ++i) {
    if (q.layers()[i].weight.empty()) continue;
    INFO(q.layers()[i].name);
    CHECK_FALSE(q.layers()[i].bias.empty());
    CHECK(q.record().layers[i].bias_q.size() == q.record().layers[i].wts.channels());
  }
  // A second calibrate() keeps the correction instead of adding the shift again.
  const auto bias0 = q.float_model().main.find_initializer(q.layers()[0].bias)->value;
  q.calibrate({{{"image", x}}});
  CHECK(q.float_model().main.find_initializer(q.layers()[0].bias)->value == bias0);
}
#endif

}  // namespace test_pipeline_vitis
