// Tensors quantized where they are made (graph/tensor_points.hpp, passes/quantize_tensors.hpp):
// layer outputs, Add / Concat inputs and outputs; a bias on a grid of its own; unsigned and
// narrow-range grids. The models are checked with amctq's simulation here and against ONNX
// Runtime in tests/pipeline_peers.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "amctq/graph/integer_sim.hpp"
#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/passes/lower_qoperator.hpp"
#include "amctq/graph/pipeline.hpp"
#include "builder.hpp"

namespace test_tensor_points {

using namespace amctq;
using namespace amctq::test;

namespace {

void add_init(graph::model& m, const std::string& name, graph::tensor t) {
  graph::initializer i;
  i.name = name;
  i.value = std::move(t);
  m.main.initializers.push_back(std::move(i));
}

// x -> Gemm a -> Relu -> r; r -> Gemm b; Add(b, r) -> s; Reshape(s, Concat(Shape(s), [1])) ->
// Flatten -> s2; Concat(s2, x) -> Gemm c -> y. The Concat of shape values is int64.
graph::model residual_model() {
  graph::model m;
  m.opset_imports.push_back({"", 13});
  graph::value_info x = info("x", graph::dtype::float32);
  x.shape = std::vector<graph::dimension>{graph::dimension{std::nullopt, "n"}, graph::dimension{4, ""}};
  m.main.inputs = {x};
  std::mt19937 rng(11);
  add_init(m, "wa", ft({4, 4}, uniform_floats(rng, 16)));
  add_init(m, "ba", ft({4}, uniform_floats(rng, 4)));
  add_init(m, "wb", ft({4, 4}, uniform_floats(rng, 16)));
  add_init(m, "bb", ft({4}, uniform_floats(rng, 4)));
  add_init(m, "wc", ft({3, 8}, uniform_floats(rng, 24)));
  add_init(m, "bc", ft({3}, uniform_floats(rng, 3)));
  add_init(m, "one", it64({1}, {1}));
  const auto tb = attr_i("transB", 1);
  m.main.nodes = {make_node("a", "Gemm", {"x", "wa", "ba"}, {"a_out"}, {tb}),
                  make_node("relu", "Relu", {"a_out"}, {"r"}),
                  make_node("b", "Gemm", {"r", "wb", "bb"}, {"b_out"}, {tb}),
                  make_node("add", "Add", {"b_out", "r"}, {"s"}),
                  make_node("shape", "Shape", {"s"}, {"sh"}),
                  make_node("cat_shape", "Concat", {"sh", "one"}, {"sh3"}, {attr_i("axis", 0)}),
                  make_node("reshape", "Reshape", {"s", "sh3"}, {"s3"}),
                  make_node("flatten", "Flatten", {"s3"}, {"s2"}, {attr_i("axis", 1)}),
                  make_node("cat", "Concat", {"s2", "x"}, {"cx"}, {attr_i("axis", 1)}),
                  make_node("c", "Gemm", {"cx", "wc", "bc"}, {"y"}, {tb})};
  m.main.outputs = {info("y", graph::dtype::float32)};
  return m;
}

graph::tensor inputs(std::size_t rows, unsigned seed) {
  std::mt19937 rng(seed);
  return ft({static_cast<std::int64_t>(rows), 4}, uniform_floats(rng, rows * 4, -2.0f, 2.0f));
}

// Every value of t is an integer multiple of s (a value on a zero-point-free grid of scale s).
bool on_grid(const graph::tensor& t, float s, std::int32_t zp) {
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double q = static_cast<double>(t.data<float>()[i]) / s + zp;
    if (std::fabs(q - std::nearbyint(q)) > 1e-3) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("tensor points: layer outputs and Add / Concat inputs and outputs, int64 Concats passed over") {
  const graph::model m = residual_model();
  auto c = graph::create_quant_config(m);
  SUBCASE("off by default") {
    graph::quantizer q(m, c);
    CHECK(q.tensor_points().empty());
  }
  c.global.quantize_outputs = true;
  c.global.keep_add_layer_accuracy = false;
  graph::quantizer q(m, c);
  std::map<std::string, std::string> why;
  for (const auto& p : q.tensor_points()) why[p.tensor] = p.reason;
  // a's output after its Relu (two readers: b and the Add); b's before the Add; the model's output;
  // the Add's output; both Concats' inputs; not cx, which only the Gemm c reads (its own input).
  CHECK(why["r"] == "output of layer 'a'");
  CHECK(why["b_out"] == "output of layer 'b'");
  CHECK(why["y"] == "output of layer 'c'");
  CHECK(why["s"] == "output of Add 'add'");
  CHECK(why["s2"] == "input of Concat 'cat'");
  CHECK(why["x"] == "input of Concat 'cat'");
  CHECK(why["sh"] == "input of Concat 'cat_shape'");
  CHECK(why.count("cx") == 0);
  CHECK(why.count("one") == 0);  // a constant
  CHECK(why.size() == 8);
  const auto x = inputs(64, 3);
  q.calibrate({{{"x", x}}});
  // The int64 shape Concat is left alone, with a note each for its input and output.
  CHECK(q.record().tensors.size() == 6);
  CHECK(q.tensor_notes().size() == 2);
  std::map<std::string, graph::tensor_record> rec;
  for (const auto& t : q.record().tensors) rec[t.tensor] = t;
  REQUIRE(rec.count("y"));
  const graph::model fq = graph::lower_qdq(q.float_model(), q.layers(), q.record());
  const graph::model dp = graph::lower_qoperator(q.float_model(), q.layers(), q.record());
  const auto xt = inputs(16, 4);
  for (const graph::model* model : {&fq, &dp}) {
    const auto out = graph::executor(*model, graph::simulation_ops()).run({{"x", xt}}, {"y", "s", "r"});
    // The model output, the Add's output and the Relu's output all lie on their grids.
    for (const char* t : {"y", "s", "r"})
      CHECK(on_grid(out.at(t), rec[t].act.scale[0], rec[t].act.zero_point[0]));
    // The Concat reads the graph input through its quantized copy.
    bool concat_reads_quantized_x = false;
    for (const auto& n : model->main.nodes)
      if (n.name == "cat") concat_reads_quantized_x = n.inputs[1] != "x";
    CHECK(concat_reads_quantized_x);
  }
  // The float model's function is close: every grid is 8 bits.
  const auto ref = graph::run(m, {{"x", xt}}).at("y");
  const auto got = graph::simulate(dp, {{"x", xt}}).at("y");
  CHECK(test::sqnr_db(ref, got) > 25.0);
}

TEST_CASE("tensor points: a layer output that only quantized layers read is theirs; an Add of a constant is a bias") {
  graph::model m;
  m.opset_imports.push_back({"", 13});
  m.main.inputs = {info("x", graph::dtype::float32)};
  std::mt19937 rng(2);
  add_init(m, "w1", ft({4, 4}, uniform_floats(rng, 16)));
  add_init(m, "w2", ft({4, 4}, uniform_floats(rng, 16)));
  add_init(m, "bias", ft({4}, uniform_floats(rng, 4)));
  m.main.nodes = {make_node("m1", "MatMul", {"x", "w1"}, {"h"}), make_node("bias_add", "Add", {"h", "bias"}, {"hb"}),
                  make_node("relu", "Relu", {"hb"}, {"r"}), make_node("m2", "MatMul", {"r", "w2"}, {"y"})};
  m.main.outputs = {info("y", graph::dtype::float32)};
  auto c = graph::create_quant_config(m);
  c.global.quantize_outputs = true;
  c.global.keep_add_layer_accuracy = false;
  graph::quantizer q(m, c);
  // m1's output runs through its bias Add and the Relu into m2, which quantizes it: no point
  // there; the bias Add is no residual Add. Only the model's output is a point.
  REQUIRE(q.tensor_points().size() == 1);
  CHECK(q.tensor_points()[0].tensor == "y");
}

TEST_CASE("bias on a grid of its own: 8 bits, power of two, the int32 code made from its values") {
  const graph::model m = residual_model();
  auto c = graph::create_quant_config(m);
  for (auto& l : c.layers) {
    l.settings.bias.num_bits = 8;
    l.settings.bias.scale_kind = scale_type::power_of_two;
    l.settings.bias.rounding = round_mode::half_away;
  }
  graph::quantizer q(m, c);
  q.calibrate({{{"x", inputs(64, 5)}}});
  for (const auto& r : q.record().layers) {
    REQUIRE(r.bias_grid.scale.size() == 1);
    CHECK(r.bias_grid.qmin == -128);
    const double e = std::log2(static_cast<double>(r.bias_grid.scale[0]));
    CHECK(e == std::round(e));
    REQUIRE(r.bias_grid_q.size() == r.bias_q.size());
    for (std::size_t k = 0; k < r.bias_q.size(); ++k) {
      const double value = r.bias_grid_q[k] * static_cast<double>(r.bias_grid.scale[0]);
      const double acc = static_cast<double>(r.act.scale[0]) * r.wts.scale[r.wts.scale.size() == 1 ? 0 : k];
      CHECK(r.bias_q[k] == static_cast<std::int32_t>(std::nearbyint(value / acc)));
    }
  }
  // The fake-quant model adds the bias' own values: int8 codes through DequantizeLinear.
  const graph::model fq = graph::lower_qdq(q.float_model(), q.layers(), q.record());
  int int8_biases = 0;
  for (const auto& i : fq.main.initializers)
    int8_biases += i.name.size() > 15 && i.name.substr(i.name.size() - 15) == "_bias_quantized" &&
                   i.value.type() == graph::dtype::int8;
  CHECK(int8_biases == 3);
}

TEST_CASE("unsigned and narrow-range activation grids are stored in int8 with the same values") {
  graph::activation_quant a;
  a.asymmetric = false;
  a.is_signed = false;
  a.algo = calib_method::minmax;
  graph::model m = residual_model();
  auto c = graph::create_quant_config(m);
  c.layers[1].settings.activation = a;  // b reads the Relu's output: non-negative
  graph::activation_quant n;
  n.asymmetric = false;
  n.narrow_range = true;
  n.algo = calib_method::minmax;
  c.layers[2].settings.activation = n;
  c.layers[2].settings.weights.narrow_range = true;
  graph::quantizer q(m, c);
  q.calibrate({{{"x", inputs(64, 6)}}});
  const auto& b = q.record().layers[1].act;
  CHECK(b.qmin == -128);
  CHECK(b.qmax == 127);
  CHECK(b.zero_point[0] == -128);  // the unsigned grid's 0
  const auto& cr = q.record().layers[2];
  CHECK(cr.act.qmin == -127);
  CHECK(cr.act.zero_point[0] == 0);
  CHECK(cr.wts.qmin == -127);
  for (std::size_t i = 0; i < cr.weight_q.size(); ++i) CHECK(cr.weight_q.data<std::int8_t>()[i] >= -127);
}

}  // namespace test_tensor_points
