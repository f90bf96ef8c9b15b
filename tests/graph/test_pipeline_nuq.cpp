// NUQ weights in the pipeline (AMCT nuq_quantize; docs/pipeline.md, "NUQ weights"): after ARQ int8
// quantization each layer keeps at most num_steps levels, the deploy model stores only those
// levels, the fake-quant model their dequantization, and the record lists them. The output error
// against plain ARQ is reported.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amctq/graph/integer_sim.hpp"
#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/passes/lower_qoperator.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/npy.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/record_json.hpp"
#include "graph/builder.hpp"

namespace test_pipeline_nuq {

using namespace amctq;

#ifdef AMCTQ_SOURCE_DIR
namespace {

std::string path(const char* f) { return std::string(AMCTQ_SOURCE_DIR) + "/models/" + f; }

graph::quant_config nuq_config(const graph::model& m, int steps) {
  auto c = graph::create_quant_config(m);
  for (auto& l : c.layers) {
    l.settings.weights.algo = graph::wts_algo::nuq;
    l.settings.weights.num_steps = steps;
  }
  return c;
}

using test::sqnr_db;

// Weight SQNR in dB of the layer's dequantized codes against its float weights.
double weight_sqnr(const graph::quantizer& q, const graph::quant_layer& l) {
  graph::model f = q.float_model();
  graph::tensor& w = f.main.find_initializer(l.weight)->value;
  const graph::tensor ref = w;
  const graph::layer_record& r = *q.record().find(l.name);
  arq_dequantize(r.weight_q.data<std::int8_t>(), tensor_view<float, 1>(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())}),
                 graph::layout_of(f.main.nodes[l.node_index], w), r.wts);
  return sqnr_db(ref, w);
}

}  // namespace

TEST_CASE("pipeline: NUQ keeps at most num_steps int8 levels per layer, in both exported models and the record") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  const graph::batch calib{{"image", io::read_npy(path("fmnist_calib.npy"))}};
  const auto ref = graph::run(m, calib).at("logits");

  graph::quantizer arq(m, graph::create_quant_config(m));
  arq.calibrate({calib});
  const auto arq_out = graph::simulate(graph::lower_qoperator(arq.float_model(), arq.layers(), arq.record()), calib);
  const double arq_sqnr = sqnr_db(ref, arq_out.at("logits"));

  for (int steps : {16, 32}) {
    CAPTURE(steps);
    graph::quantizer q(m, nuq_config(m, steps));
    q.calibrate({calib});
    const graph::model deploy = graph::lower_qoperator(q.float_model(), q.layers(), q.record());
    const graph::model fake = graph::lower_qdq(q.float_model(), q.layers(), q.record());
    std::string per_layer;
    for (const auto& l : q.layers()) {
      if (l.weight.empty()) continue;
      CAPTURE(l.name);
      const graph::layer_record& r = *q.record().find(l.name);
      REQUIRE(r.clusters.size() == static_cast<std::size_t>(steps));
      CHECK(std::is_sorted(r.clusters.begin(), r.clusters.end()));
      const std::set<std::int32_t> centres(r.clusters.begin(), r.clusters.end());
      CHECK(centres.size() == r.clusters.size());
      std::set<int> levels;
      for (std::size_t i = 0; i < r.weight_q.size(); ++i) levels.insert(r.weight_q.data<std::int8_t>()[i]);
      CHECK(levels.size() <= static_cast<std::size_t>(steps));
      for (int v : levels) CHECK(centres.count(v) == 1);
      // Both models carry exactly these codes (the deploy Gemm's are transposed, same values).
      for (const graph::model* g : {&deploy, &fake}) {
        const graph::initializer* wq = g->main.find_initializer(l.name + "_weight_quantized");
        REQUIRE(wq != nullptr);
        std::multiset<int> a, b;
        for (std::size_t i = 0; i < wq->value.size(); ++i) a.insert(wq->value.data<std::int8_t>()[i]);
        for (std::size_t i = 0; i < r.weight_q.size(); ++i) b.insert(r.weight_q.data<std::int8_t>()[i]);
        CHECK(a == b);
      }
      const graph::quant_layer* al = nullptr;
      for (const auto& x : arq.layers()) al = x.name == l.name ? &x : al;
      per_layer += " " + l.name + " " + std::to_string(weight_sqnr(arq, *al)).substr(0, 5) + "->" +
                   std::to_string(weight_sqnr(q, l)).substr(0, 5);
    }
    const double dep = sqnr_db(ref, graph::simulate(deploy, calib).at("logits"));
    const double fq = sqnr_db(ref, graph::simulate(fake, calib).at("logits"));
    MESSAGE("NUQ num_steps ", steps, ": logits SQNR vs float on the 256 calibration images: deploy ", dep,
            " dB, fake-quant ", fq, " dB (plain ARQ deploy ", arq_sqnr, " dB); weight SQNR dB ARQ->NUQ:", per_layer);
    CHECK(dep > 10.0);  // still a working model, not a broken one
    CHECK(dep <= arq_sqnr + 3.0);

    const auto rec = nlohmann::json::parse(io::write_record_json(q.record()));
    CHECK(rec["/0/Conv"]["clusters"].size() == static_cast<std::size_t>(steps));
    CHECK(rec["/0/Conv"]["clusters"][0].is_number_integer());
  }
}

TEST_CASE("pipeline: NUQ with weights narrower than 8 bits is refused naming the layer") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  auto c = nuq_config(m, 16);
  c.layers[1].settings.weights.num_bits = 4;
  CHECK_THROWS_WITH_AS(graph::quantizer(m, c),
                       doctest::Contains("config.layers./4/Conv.weights.num_bits: NUQ selects levels of the 8-bit grid"),
                       amctq::error);
}
#endif

}  // namespace test_pipeline_nuq
