// The Vitis AI globals inside the quantizer, on the bundled Fashion-MNIST CNN: include_cle
// equalises its chains without changing the float function, convert_relu6_to_relu lets CLE
// through a ReLU6, include_bias_corr corrects (and records) every biased layer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "amctq/graph/integer_sim.hpp"
#include "amctq/graph/layers/lowering.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/kernels/fake_quantize.hpp"
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

TEST_CASE("saved-model rounding: the op chain for half_up / half_down / half_away equals the kernel's fake_quantize") {
  // Exact ties (k + 0.5) * s of both signs, their float neighbours, values past the grid, zero,
  // and random values; a power-of-two scale keeps the ties exact, a float one tests the division.
  for (const float s : {0.125f, 0.0173f}) {
    std::vector<float> x = {0.0f, -0.0f, 1e9f, -1e9f};
    for (int k = -140; k <= 140; ++k) {
      const float t = (static_cast<float>(k) + 0.5f) * s;
      x.insert(x.end(), {t, std::nextafter(t, 1e9f), std::nextafter(t, -1e9f), static_cast<float>(k) * s});
    }
    for (const int zp : {0, -3})
      for (const round_mode mode : {round_mode::half_up, round_mode::half_down, round_mode::half_away}) {
        INFO(s, " ", zp, " ", std::string(to_string(mode)));
        const quant_params p = make_params(s, zp, -128, 127);
        graph::model m;
        m.opset_imports.push_back({"", 17});
        graph::value_info in;
        in.name = "x";
        in.elem_type = graph::dtype::float32;
        m.main.inputs.push_back(in);
        const std::string y = graph::detail::emit_fake_quantize(m.main, m.main.nodes, "x", "t", p, 1, mode);
        graph::value_info out;
        out.name = y;
        out.elem_type = graph::dtype::float32;
        m.main.outputs.push_back(out);
        const auto got = graph::simulate(m, {{"x", graph::tensor::from<float>({static_cast<std::int64_t>(x.size())}, x)}}).at(y);
        std::vector<float> want(x.size());
        fake_quantize(make_view(x.data(), {static_cast<std::ptrdiff_t>(x.size())}),
                      make_view(want.data(), {static_cast<std::ptrdiff_t>(x.size())}), p, mode);
        std::size_t differ = 0;
        for (std::size_t i = 0; i < x.size(); ++i) differ += got.data<float>()[i] != want[i];
        CHECK(differ == 0);
        // The modes do differ on the ties, so the check can fail.
        std::vector<float> even(x.size());
        fake_quantize(make_view(x.data(), {static_cast<std::ptrdiff_t>(x.size())}),
                      make_view(even.data(), {static_cast<std::ptrdiff_t>(x.size())}), p, round_mode::half_even);
        CHECK(even != want);
      }
  }
}

TEST_CASE("pipeline scale_type power_of_two: every activation and weight scale is 2^k, for any method") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  const auto x = io::read_npy(path("fmnist_calib.npy"));
  auto is_pot = [](float s) {
    int e = 0;
    return s > 0.0f && std::frexp(s, &e) == 0.5f;
  };
  struct variant {
    calib_method act;
    bool channel_wise;
    int diffs_scope;
  };
  for (const variant v : {variant{calib_method::ifmr, true, 0}, variant{calib_method::mse, false, 0},
                          variant{calib_method::pot_diffs, false, 5}}) {
    auto c = config_with(m, false, false, false);
    for (auto& l : c.layers) {
      l.settings.activation.algo = v.act;
      l.settings.activation.scale_kind = scale_type::power_of_two;
      l.settings.weights.scale_kind = scale_type::power_of_two;
      l.settings.weights.channel_wise = v.channel_wise;
      l.settings.weights.diffs_scope = v.diffs_scope;
    }
    graph::quantizer q(m, c);
    q.calibrate({{{"image", x}}});
    std::size_t scales = 0;
    for (const auto& r : q.record().layers) {
      INFO(r.name, " ", to_string(v.act));
      for (const auto* scale : {&r.act.scale, &r.wts.scale})
        for (float s : *scale) {
          CHECK(is_pot(s));
          ++scales;
        }
      if (!r.wts.scale.empty()) CHECK(r.wts.is_per_channel() == v.channel_wise);
    }
    CHECK(scales > 7);
  }
  // Without power_of_two, ARQ and IFMR scales are not powers of two.
  graph::quantizer q(m, config_with(m, false, false, false));
  q.calibrate({{{"image", x}}});
  CHECK_FALSE(is_pot(q.record().layers[2].act.scale[0]));
  CHECK_FALSE(is_pot(q.record().layers[2].wts.scale[0]));
}

TEST_CASE("pipeline diffs weights: the position with the least squared error, not always the covering one") {
  const auto m = io::read_onnx(path("fmnist_cnn.onnx"));
  const auto x = io::read_npy(path("fmnist_calib.npy"));
  auto c = config_with(m, false, false, false);
  for (auto& l : c.layers) {
    l.settings.weights.scale_kind = scale_type::power_of_two;
    l.settings.weights.channel_wise = false;
  }
  graph::quantizer maxmin(m, c);
  maxmin.quantize_model();
  for (auto& l : c.layers) l.settings.weights.diffs_scope = 5;
  graph::quantizer diffs(m, c);
  diffs.quantize_model();
  maxmin.calibrate({{{"image", x}}});
  diffs.calibrate({{{"image", x}}});
  int finer = 0;
  for (std::size_t i = 0; i < maxmin.record().layers.size(); ++i) {
    const auto& a = maxmin.record().layers[i].wts.scale;
    const auto& b = diffs.record().layers[i].wts.scale;
    if (a.empty()) continue;
    CHECK(b[0] <= a[0]);  // diffs starts at the covering position and tries finer ones
    finer += b[0] < a[0];
  }
  CHECK(finer > 0);
}
#endif

}  // namespace test_pipeline_vitis
