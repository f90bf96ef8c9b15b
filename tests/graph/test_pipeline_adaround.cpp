// AdaRound weights in the pipeline (wts_algo adaround; docs/algorithms/weights.md, "AdaRound"):
// on the bundled Fashion CNN at 4-bit weights every learned code is floor or ceil of w / s on
// ARQ's grid, each layer's reconstruction error does not grow and the model's output moves closer
// to float than ARQ's; the result is a function of the seed; ConvTranspose and depthwise Conv
// learn too; too little data and non-finite losses are errors naming the layer.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "amctq/graph/integer_sim.hpp"
#include "amctq/graph/passes/lower_qoperator.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/npy.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "graph/builder.hpp"

namespace test_pipeline_adaround {

using namespace amctq;

namespace {

// Output SQNR (dB) of q's deploy model, in amctq's integer simulation, against the float output.
double deploy_sqnr(const graph::quantizer& q, const graph::batch& in, const graph::tensor& ref, const std::string& out) {
  return test::sqnr_db(ref, graph::simulate(graph::lower_qoperator(q.float_model(), q.layers(), q.record()), in).at(out));
}

graph::quant_config config_for(const graph::model& m, graph::wts_algo algo, int wbits, int iterations = 400,
                               std::uint64_t seed = 0) {
  auto c = graph::create_quant_config(m);
  for (auto& l : c.layers) {
    l.settings.weights.num_bits = wbits;
    l.settings.weights.algo = algo;
    l.settings.weights.how = preset::pytorch;
    l.settings.weights.adaround.iterations = iterations;
    l.settings.weights.adaround.seed = seed;
    l.settings.activation.algo = calib_method::mse;
  }
  return c;
}

std::vector<std::int8_t> codes_of(const graph::quantizer& q) {
  std::vector<std::int8_t> all;
  for (const auto& r : q.record().layers)
    if (r.weight_q.type() == graph::dtype::int8)
      all.insert(all.end(), r.weight_q.data<std::int8_t>(), r.weight_q.data<std::int8_t>() + r.weight_q.size());
  return all;
}

}  // namespace

#ifdef AMCTQ_SOURCE_DIR
namespace {
std::string path(const char* f) { return std::string(AMCTQ_SOURCE_DIR) + "/models/" + f; }
}  // namespace

TEST_CASE("pipeline: AdaRound at 4-bit weights keeps ARQ's grid, lowers every layer's error and the model's") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  const graph::batch calib{{"image", io::read_npy(path("fmnist_calib.npy"))}};
  const auto ref = graph::run(m, calib).at("logits");

  graph::quantizer arq(m, config_for(m, graph::wts_algo::arq, 4));
  arq.calibrate({calib});
  graph::quantizer ada(m, config_for(m, graph::wts_algo::adaround, 4));
  ada.calibrate({calib});
  REQUIRE(ada.rounding_reports().size() == 6);  // 4 Conv + 2 Gemm; the AveragePool has no weight
  for (const auto& rep : ada.rounding_reports()) {
    CAPTURE(rep.layer);
    CHECK(rep.learned_loss <= rep.nearest_loss * 1.0001);
    CHECK(rep.changed > 0);
    CHECK(rep.columns > 0);
  }
  // Every code is floor(w / s) or that plus one, with ARQ's scales.
  for (std::size_t i = 0; i < ada.layers().size(); ++i) {
    const graph::quant_layer& l = ada.layers()[i];
    if (l.weight.empty()) continue;
    CAPTURE(l.name);
    const graph::layer_record& r = ada.record().layers[i];
    const graph::layer_record& a = arq.record().layers[i];
    CHECK(r.wts.scale == a.wts.scale);
    graph::tensor w = ada.float_model().main.find_initializer(l.weight)->value;
    const weight_layout L = graph::layout_of(ada.float_model().main.nodes[l.node_index], w);
    int off_grid = 0;
    for (std::ptrdiff_t g = 0; g < L.groups; ++g)
      for (std::ptrdiff_t o = 0; o < L.out_per_group; ++o)
        for (std::ptrdiff_t in = 0; in < L.in_per_group; ++in)
          for (std::ptrdiff_t s = 0; s < L.spatial; ++s) {
            const std::ptrdiff_t off = g * L.group_offset + o * L.stride_out + in * L.stride_in + s * L.stride_spatial;
            const float sc = r.wts.scale[r.wts.is_per_channel() ? static_cast<std::size_t>(g * L.out_per_group + o) : 0];
            const float f = std::floor(w.data<float>()[off] / sc);
            const int c = r.weight_q.data<std::int8_t>()[off];
            const bool ok = (c == static_cast<int>(f) || c == static_cast<int>(f) + 1 || c == r.wts.qmin || c == r.wts.qmax);
            off_grid += !ok;
          }
    CHECK(off_grid == 0);
  }
  const double s_arq = deploy_sqnr(arq, calib, ref, "logits"), s_ada = deploy_sqnr(ada, calib, ref, "logits");
  MESSAGE("4-bit weights, mse activations: deploy logits SQNR vs float ARQ ", s_arq, " dB, AdaRound ", s_ada, " dB");
  CHECK(s_ada > s_arq + 1.0);
}

TEST_CASE("pipeline: AdaRound learns on the balanced weights beside DMQ balance and CLE") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  const graph::batch calib{{"image", io::read_npy(path("fmnist_calib.npy"))}};
  const auto ref = graph::run(m, calib).at("logits");
  auto run = [&](graph::wts_algo algo) {
    auto c = config_for(m, algo, 4, 300);
    c.global.include_cle = true;
    for (auto& l : c.layers)
      if (l.op_type == "Conv" || l.op_type == "Gemm") l.settings.dmq_balancer_param = 0.5f;
    graph::quantizer q(m, c);
    q.quantize_preprocess({calib});
    q.calibrate({calib});
    return q;
  };
  const graph::quantizer arq = run(graph::wts_algo::arq), ada = run(graph::wts_algo::adaround);
  REQUIRE(ada.rounding_reports().size() == 6);
  for (const auto& rep : ada.rounding_reports()) {
    CAPTURE(rep.layer);
    CHECK(rep.learned_loss <= rep.nearest_loss * 1.0001);
  }
  const double s_arq = deploy_sqnr(arq, calib, ref, "logits"), s_ada = deploy_sqnr(ada, calib, ref, "logits");
  MESSAGE("with CLE and DMQ balance, 4-bit weights: deploy SQNR ARQ ", s_arq, " dB, AdaRound ", s_ada, " dB");
  CHECK(s_ada > s_arq);
}

TEST_CASE("pipeline: AdaRound is a function of its seed") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  const graph::batch calib{{"image", io::read_npy(path("fmnist_calib.npy"))}};
  auto run = [&](std::uint64_t seed) {
    graph::quantizer q(m, config_for(m, graph::wts_algo::adaround, 3, 60, seed));
    q.calibrate({calib});
    return codes_of(q);
  };
  const auto a = run(1), b = run(1), c = run(2);
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("pipeline: AdaRound refuses too little data and a non-finite loss, naming the layer") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  graph::tensor x = io::read_npy(path("fmnist_calib.npy"));
  {
    auto c = config_for(m, graph::wts_algo::adaround, 4, 10);
    for (auto& l : c.layers) l.settings.weights.adaround.batch = 512;  // the Gemms see one row per image: 256
    graph::quantizer q(m, c);
    CHECK_THROWS_WITH_AS(q.calibrate({{{"image", x}}}),
                         doctest::Contains("layer '/16/Gemm': needs at least 512 input columns"), amctq::error);
  }
  {
    for (std::size_t i = 0; i < x.size(); ++i) x.data<float>()[i] *= 1e19f;  // finite, but W·X squared overflows
    graph::quantizer q(m, config_for(m, graph::wts_algo::adaround, 4, 10));
    CHECK_THROWS_WITH_AS(q.calibrate({{{"image", x}}}), doctest::Contains("adaround: layer '/0/Conv': the reconstruction loss became"),
                         amctq::error);
  }
}
#endif

namespace {

// x -> Conv (depthwise 3x3, 4 channels) -> ConvTranspose (stride 2, 4 -> 3) -> y, random weights.
graph::model depthwise_then_transpose() {
  std::mt19937 rng(7);
  graph::model m;
  m.opset_imports = {{"", 17}};
  auto& g = m.main;
  g.inputs = {test::info("x", graph::dtype::float32)};
  g.outputs = {test::info("y", graph::dtype::float32)};
  auto add = [&g](const char* name, graph::tensor t) {
    graph::initializer i;
    i.name = name;
    i.value = std::move(t);
    g.initializers.push_back(std::move(i));
  };
  add("dw_w", test::ft({4, 1, 3, 3}, test::uniform_floats(rng, 36)));
  add("ct_w", test::ft({4, 3, 2, 2}, test::uniform_floats(rng, 48)));
  g.nodes.push_back(test::make_node("dw", "Conv", {"x", "dw_w"}, {"h"},
                                            {test::attr_i("group", 4), test::attr_ints("pads", {1, 1, 1, 1})}));
  g.nodes.push_back(test::make_node("ct", "ConvTranspose", {"h", "ct_w"}, {"y"},
                                            {test::attr_ints("strides", {2, 2})}));
  return m;
}

}  // namespace

TEST_CASE("pipeline: AdaRound learns depthwise Conv and ConvTranspose rounding on their own columns") {
  const graph::model m = depthwise_then_transpose();
  std::mt19937 rng(3);
  // Correlated inputs (a shared, 2x2-blocky base plus noise per channel): on uncorrelated ones
  // round-to-nearest is already the least-error rounding and there is nothing to learn.
  const auto base = test::uniform_floats(rng, 8 * 36, -2, 2), noise = test::uniform_floats(rng, 8 * 4 * 144, -0.5f, 0.5f);
  std::vector<float> xs(noise.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const std::size_t n = i / 576, h = (i / 12) % 12, w = i % 12;
    xs[i] = base[n * 36 + (h / 2) * 6 + w / 2] + noise[i];
  }
  const graph::batch calib{{"x", test::ft({8, 4, 12, 12}, xs)}};
  const auto ref = graph::run(m, calib).at("y");
  auto q_of = [&](graph::wts_algo algo) {
    auto c = config_for(m, algo, 3, 300);
    graph::quantizer q(m, c);
    q.calibrate({calib});
    return q;
  };
  const graph::quantizer arq = q_of(graph::wts_algo::arq), ada = q_of(graph::wts_algo::adaround);
  REQUIRE(ada.rounding_reports().size() == 2);
  for (const auto& rep : ada.rounding_reports()) {
    CAPTURE(rep.layer);
    MESSAGE(rep.layer, ": ", rep.changed, " of ", rep.weights, " changed, ", rep.nearest_loss, " -> ", rep.learned_loss);
    CHECK(rep.learned_loss < rep.nearest_loss);
  }
  const double s_arq = deploy_sqnr(arq, calib, ref, "y"), s_ada = deploy_sqnr(ada, calib, ref, "y");
  MESSAGE("depthwise Conv + ConvTranspose, 3-bit weights: output SQNR ARQ ", s_arq, " dB, AdaRound ", s_ada, " dB");
  CHECK(s_ada > s_arq);
}

}  // namespace test_pipeline_adaround
