// Regression tests of the deploy lowering (graph/passes/lower_qoperator.hpp) for layer forms the
// bundled CNN does not have; tests/pipeline_peers/layers_peers.py runs the same forms in ONNX
// Runtime.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "amctq/graph/integer_sim.hpp"
#include "amctq/graph/passes/lower_qoperator.hpp"
#include "amctq/graph/pipeline.hpp"
#include "graph/builder.hpp"

namespace test_lower_qoperator {

using namespace amctq;

namespace {

graph::tensor random_tensor(std::vector<std::int64_t> shape, unsigned seed) {
  graph::tensor t(graph::dtype::float32, std::move(shape));
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (std::size_t i = 0; i < t.size(); ++i) t.data<float>()[i] = d(gen);
  return t;
}

// One quantizable layer `op` reading graph input x, writing graph output y; quantized with the
// default config and calibrated on x.
struct one_layer {
  graph::model m;
  graph::tensor x;
  one_layer(const std::string& op, graph::tensor w, graph::tensor b, std::vector<graph::attribute> attrs,
            std::vector<std::int64_t> x_shape) {
    test::single_node s(op, {"x", "w", "b"}, std::move(attrs));
    s.constant("w", std::move(w)).constant("b", std::move(b));
    m = s.m;
    m.main.inputs.push_back(test::info("x", graph::dtype::float32));
    x = random_tensor(std::move(x_shape), 7);
  }
  graph::model deploy(graph::quantizer& q) const {
    q.quantize_model();
    q.calibrate({{{"x", x}}});
    return graph::lower_qoperator(q.float_model(), q.layers(), q.record());
  }
};

}  // namespace

TEST_CASE("deploy: a per-channel Conv that ends the graph gets ConvInteger with one weight zero point") {
  // ORT's ConvInteger refuses a per-channel weight zero point ("Non per-tensor quantization is
  // not supported now"); the weights are symmetric, so one scalar 0 is exact.
  one_layer t("Conv", random_tensor({3, 2, 3, 3}, 1), random_tensor({3}, 2), {test::attr_ints("pads", {1, 1, 1, 1})},
              {4, 2, 5, 5});
  graph::quantizer q(t.m, graph::create_quant_config(t.m));
  const graph::model d = t.deploy(q);
  REQUIRE(q.record().layers.at(0).wts.scale.size() == 3);
  bool seen = false;
  for (const auto& n : d.main.nodes) {
    if (n.op_type != "ConvInteger") continue;
    seen = true;
    const graph::initializer* zp = d.main.find_initializer(n.inputs.at(3));
    REQUIRE(zp != nullptr);
    CHECK(zp->value.size() == 1);
    CHECK(zp->value.data<std::int8_t>()[0] == 0);
  }
  CHECK(seen);
}

namespace {

// A ConvTranspose layer [C -> G * Mg channels, K x K kernel, stride S, pads P, output_padding OP]
// on a random [2, C, H, W] input, quantized and lowered. The deploy ConvTranspose runs in float
// over the integer codes, so its output must be float(exact sum of x_code * w_code + bias_code)
// * s_d * s_w, bit for bit. Dequantizing to real values first rounds every partial sum (and ORT
// sums in another order than amctq).
struct conv_transpose_case {
  std::int64_t C, Mg, G, H, W, K, S, P, OP;
  one_layer t;
  graph::quantizer q;
  graph::model deploy;
  conv_transpose_case(std::int64_t C_, std::int64_t Mg_, std::int64_t G_, std::int64_t H_, std::int64_t W_, std::int64_t K_,
                      std::int64_t S_, std::int64_t P_, std::int64_t OP_, unsigned seed)
      : C(C_), Mg(Mg_), G(G_), H(H_), W(W_), K(K_), S(S_), P(P_), OP(OP_),
        t("ConvTranspose", random_tensor({C, Mg, K, K}, seed), random_tensor({G * Mg}, seed + 1),
          {test::attr_i("group", G), test::attr_ints("strides", {S, S}), test::attr_ints("pads", {P, P, P, P}),
           test::attr_ints("output_padding", {OP, OP})},
          {2, C, H, W}),
        q(t.m, graph::create_quant_config(t.m)),
        deploy(t.deploy(q)) {}

  // Outputs of the deploy model that differ from the exact accumulator's float.
  std::size_t differing_outputs() const {
    const graph::layer_record& r = q.record().layers.at(0);
    const graph::tensor y = graph::simulate(deploy, {{"x", t.x}}).at("y");
    const std::int64_t OH = (H - 1) * S - 2 * P + K + OP, OW = (W - 1) * S - 2 * P + K + OP, M = G * Mg, Cg = C / G;
    REQUIRE(y.shape() == std::vector<std::int64_t>{2, M, OH, OW});
    const auto bias_scale = graph::detail::bias_scales(r, r.wts.channels());
    std::vector<std::int64_t> acc(y.size(), 0);
    auto at = [&](std::int64_t n, std::int64_t m, std::int64_t h, std::int64_t w) -> std::int64_t& {
      return acc[static_cast<std::size_t>(((n * M + m) * OH + h) * OW + w)];
    };
    for (std::int64_t n = 0; n < 2; ++n)
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t h = 0; h < OH; ++h)
          for (std::int64_t w = 0; w < OW; ++w) at(n, m, h, w) = r.bias_q.at(static_cast<std::size_t>(m));
    const float* xf = t.x.data<float>();
    const std::int8_t* wq = r.weight_q.data<std::int8_t>();
    for (std::int64_t n = 0; n < 2; ++n)
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t ih = 0; ih < H; ++ih)
          for (std::int64_t iw = 0; iw < W; ++iw) {
            const std::int64_t xq =
                graph::detail::quantize_one(xf[((n * C + c) * H + ih) * W + iw], r.act) - r.act.zero_point[0];
            const std::int64_t g = c / Cg;
            for (std::int64_t m = 0; m < Mg; ++m)
              for (std::int64_t kh = 0; kh < K; ++kh)
                for (std::int64_t kw = 0; kw < K; ++kw) {
                  const std::int64_t oh = ih * S - P + kh, ow = iw * S - P + kw;
                  if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                  at(n, g * Mg + m, oh, ow) += xq * wq[((c * Mg + m) * K + kh) * K + kw];
                }
          }
    std::size_t differ = 0;
    for (std::size_t i = 0; i < acc.size(); ++i) {
      const std::size_t m = static_cast<std::size_t>(static_cast<std::int64_t>(i) / (OH * OW) % M);
      const float want = static_cast<float>(acc[i]) * bias_scale[bias_scale.size() == 1 ? 0 : m];
      differ += std::memcmp(&want, y.data<float>() + i, sizeof(float)) != 0;
    }
    return differ;
  }

  std::size_t convtranspose_nodes() const {
    return static_cast<std::size_t>(std::count_if(deploy.main.nodes.begin(), deploy.main.nodes.end(),
                                                  [](const graph::node& n) { return n.op_type == "ConvTranspose"; }));
  }
};

}  // namespace

TEST_CASE("deploy: ConvTranspose (groups, stride, pads, output_padding) gives the exact integer accumulator") {
  const conv_transpose_case c(8, 3, 2, 4, 5, 3, 2, 1, 1, 3);
  REQUIRE(c.q.record().layers.at(0).wts.scale.size() == 1);  // groups: one weight scale
  CHECK(c.convtranspose_nodes() == 1);
  CHECK(c.differing_outputs() == 0);
}

TEST_CASE("deploy: ConvTranspose layers past 2^24 sum their codes in two exact parts, and are reported past that") {
  // Output channel m = g * Mg + o of weight codes [C, Mg, K, K] sums over the C / G input channels
  // of group g; written here from the output channel's side, the opposite of the library's loop.
  auto bound_by_hand = [](const graph::layer_record& r, const graph::tensor& codes, std::int64_t G) {
    const std::int64_t C = codes.dim(0), Mg = codes.dim(1), taps = codes.dim(2) * codes.dim(3);
    const std::int8_t* w = codes.data<std::int8_t>();
    const double x_max = std::max(r.act.qmax - r.act.zero_point[0], r.act.zero_point[0] - r.act.qmin);
    double worst = 0.0;
    for (std::int64_t m = 0; m < G * Mg; ++m) {
      const std::int64_t g = m / Mg, o = m % Mg;
      double s = 0.0;
      for (std::int64_t c = g * (C / G); c < (g + 1) * (C / G); ++c)
        for (std::int64_t k = 0; k < taps; ++k) s += std::abs(w[(c * Mg + o) * taps + k]);
      worst = std::max(worst, s * x_max + std::abs(static_cast<double>(r.bias_q.at(static_cast<std::size_t>(m)))));
    }
    return worst;
  };
  SUBCASE("small grouped layer: one part, no note") {
    const conv_transpose_case c(8, 3, 2, 4, 4, 3, 2, 0, 0, 11);
    const graph::layer_record& r = c.q.record().layers.at(0);
    const double bound = graph::conv_transpose_sum_bound(r, r.weight_q, 2);
    CHECK(bound == bound_by_hand(r, r.weight_q, 2));
    CHECK(bound > 0.0);
    CHECK(bound < graph::float_exact_integers);
    CHECK(graph::conv_transpose_parts(r, 2).parts.size() == 1);
    CHECK(c.convtranspose_nodes() == 1);
    CHECK(graph::deploy_exactness_notes(c.q.float_model(), c.q.layers(), c.q.record()).empty());
  }
  SUBCASE("a decoder-sized layer (512 input channels, 4x4 kernel): two exact parts, bit for bit, no note") {
    const conv_transpose_case c(512, 2, 1, 2, 2, 4, 2, 1, 0, 13);
    const graph::layer_record& r = c.q.record().layers.at(0);
    CHECK(graph::conv_transpose_sum_bound(r, r.weight_q, 1) == bound_by_hand(r, r.weight_q, 1));
    CHECK(graph::conv_transpose_sum_bound(r, r.weight_q, 1) >= graph::float_exact_integers);
    const graph::conv_transpose_form f = graph::conv_transpose_parts(r, 1);
    REQUIRE(f.parts.size() == 2);
    CHECK(f.exact);
    for (std::size_t i = 0; i < r.weight_q.size(); ++i) {  // w = 16 * high + low, both in [-8, 8]
      const int h = f.parts[0].data<std::int8_t>()[i], l = f.parts[1].data<std::int8_t>()[i];
      REQUIRE(16 * h + l == r.weight_q.data<std::int8_t>()[i]);
      REQUIRE(std::abs(h) <= 8);
      REQUIRE(std::abs(l) <= 8);
    }
    CHECK(c.convtranspose_nodes() == 2);
    CHECK(c.differing_outputs() == 0);
    CHECK(graph::deploy_exactness_notes(c.q.float_model(), c.q.layers(), c.q.record()).empty());
  }
  SUBCASE("2048 input channels: past 2^24 even in two parts, reported by name") {
    const conv_transpose_case c(2048, 1, 1, 1, 1, 4, 2, 0, 0, 15);
    const graph::layer_record& r = c.q.record().layers.at(0);
    CHECK_FALSE(graph::conv_transpose_parts(r, 1).exact);
    const auto notes = graph::deploy_exactness_notes(c.q.float_model(), c.q.layers(), c.q.record());
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].find("layer '" + c.q.layers().at(0).name + "' (ConvTranspose)") != std::string::npos);
    CHECK(notes[0].find("2^24") != std::string::npos);
  }
}

TEST_CASE("lowering: a quantized weight another node still reads is copied whole; one only its layer reads is not kept") {
  // n0 = MatMul(x, w), quantized. The quantizer refuses a weight another node reads, but the
  // lowerings take any model: here they also get n1 = MatMul(y0, w) reading the float w.
  test::single_node s("MatMul", {"x", "w"}, {}, 13, {"y"});
  s.constant("w", random_tensor({8, 8}, 3));
  s.m.main.inputs.push_back(test::info("x", graph::dtype::float32));
  graph::quantizer q(s.m, graph::create_quant_config(s.m));
  REQUIRE(q.layers().size() == 1);
  q.calibrate({{{"x", random_tensor({4, 8}, 5)}}});
  graph::model shared = q.float_model();
  shared.main.nodes[0].outputs = {"y0"};
  graph::node n1 = shared.main.nodes[0];
  n1.name = "n1";
  n1.inputs = {"y0", "w"};
  n1.outputs = {"y"};
  shared.main.nodes.push_back(n1);
  const graph::tensor& w = q.float_model().main.initializers.at(0).value;
  for (const graph::model* m : {&q.float_model(), static_cast<const graph::model*>(&shared)}) {
    const bool read_twice = m == &shared;
    CAPTURE(read_twice);
    for (const graph::model& out : {graph::lower_qdq(*m, q.layers(), q.record()),
                                    graph::lower_qoperator(*m, q.layers(), q.record())}) {
      const graph::initializer* kept = out.main.find_initializer("w");
      REQUIRE((kept != nullptr) == read_twice);
      if (read_twice) CHECK(std::memcmp(kept->value.bytes().data(), w.bytes().data(), w.bytes().size()) == 0);
    }
  }
}

}  // namespace test_lower_qoperator
