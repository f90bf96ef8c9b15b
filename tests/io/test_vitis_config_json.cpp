// The Vitis AI (vai_q_pytorch) config reader on the bundled Fashion-MNIST CNN: format
// detection, the guide's default and example configs, each key on its own, the hierarchy
// (overall < tensor < layer_type < layer_name), a layer's input grid taken from the layer whose
// output it reads, and the errors (missing keys, unknown layer names, both / neither of
// layer_type and layer_name, values amctq cannot honour naming their key).
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/vitis_config_json.hpp"

namespace test_vitis_config_json {

using namespace amctq;
using json = nlohmann::ordered_json;

#ifdef AMCTQ_SOURCE_DIR
namespace {

const graph::model& cnn() {
  static const graph::model m = io::read_onnx(std::string(AMCTQ_SOURCE_DIR) + "/models/fmnist_cnn.onnx");
  return m;
}

// A config amctq honours in full: the guide's keys, float scales, half-even rounding, int32 bias.
json honoured() {
  return json::parse(R"({
    "convert_relu6_to_relu": false, "include_cle": false, "include_bias_corr": false,
    "keep_first_last_layer_accuracy": false, "keep_add_layer_accuracy": true, "target_device": "CPU",
    "quantizable_data_type": ["input", "weights", "bias", "activation"],
    "overall_quantize_config": {"bit_width": 8, "method": "maxmin", "round_mode": "half_even", "symmetry": true,
      "per_channel": false, "signed": true, "narrow_range": false, "scale_type": "float",
      "calib_statistic_method": "modal"},
    "tensor_quantize_config": {"bias": {"bit_width": 32}}
  })");
}

graph::quant_config resolve(const json& j) {
  return io::vitis::to_quant_config(io::vitis::parse_vitis_config(j.dump()), cnn());
}

const graph::layer_settings& layer(const graph::quant_config& c, const char* name) {
  const auto* l = c.find(name);
  REQUIRE(l != nullptr);
  return l->settings;
}

// The error a config gives, as "code|message".
std::string refusal(const json& j) {
  try {
    resolve(j);
  } catch (const error& e) {
    return std::string(e.code() == errc::unsupported ? "unsupported|" : "invalid|") + e.what();
  }
  return "accepted";
}

bool mentions(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("vitis config: detected by overall_quantize_config; amctq's own format is not") {
  CHECK(io::vitis::is_vitis_config_text(honoured().dump()));
  CHECK_FALSE(io::vitis::is_vitis_config_text(R"({"version": 1, "overall": {"num_bits": 8}})"));
  CHECK_FALSE(io::vitis::is_vitis_config_text("not json"));
}

TEST_CASE("vitis config: a config of honoured keys maps onto every layer") {
  const auto c = resolve(honoured());
  CHECK(c.layers.size() == 7);
  for (const auto& l : c.layers) {
    CHECK(l.settings.quant_enable);
    if (l.op_type == "AveragePool") continue;  // no weights of its own
    CHECK(l.settings.weights.num_bits == 8);
    CHECK_FALSE(l.settings.weights.channel_wise);
    CHECK(l.settings.activation.algo == calib_method::minmax);
    CHECK_FALSE(l.settings.activation.asymmetric);
    CHECK_FALSE(l.settings.activation.channel_wise);
  }
  CHECK_FALSE(c.global.include_cle);
  CHECK_FALSE(c.global.include_bias_corr);
}

TEST_CASE("vitis config: the guide's default config, as `amctq config --format vitis` writes it") {
  const json d = json::parse(io::vitis::vitis_default_config_json());
  CHECK(d["overall_quantize_config"]["method"] == "diffs");
  CHECK(d["overall_quantize_config"]["round_mode"] == "std_round");
  CHECK(d["overall_quantize_config"]["scale_type"] == "power_of_two");
  CHECK(d["overall_quantize_config"]["per_channel"] == false);
  CHECK(d["include_cle"] == true);
  CHECK(d["include_bias_corr"] == true);
  const auto v = io::vitis::parse_vitis_config(d.dump());
  CHECK(v.global.params[io::vitis::activation].round_mode == "half_up");
  CHECK(v.global.params[io::vitis::weights].scale_type == "power_of_two");
  // Read as written: Add / Concat and every layer output quantized, an 8-bit diffs bias rounded
  // half away, activations rounded half up, all on power-of-two grids.
  const auto c = io::vitis::to_quant_config(v, cnn());
  CHECK_FALSE(c.global.keep_add_layer_accuracy);
  CHECK(c.global.quantize_outputs);
  CHECK(c.activation.algo == calib_method::pot_diffs);
  CHECK(c.activation.rounding == round_mode::half_up);
  const auto& conv = layer(c, "/7/Conv");
  CHECK(conv.bias.num_bits == 8);
  CHECK(conv.bias.rounding == round_mode::half_away);
  CHECK(conv.bias.scale_kind == scale_type::power_of_two);
  CHECK(conv.bias.diffs_scope == 5);
  REQUIRE(conv.output.has_value());
  CHECK(conv.output->rounding == round_mode::half_up);
  CHECK(conv.output->algo == calib_method::pot_diffs);
  CHECK(conv.weights.rounding == round_mode::half_away);
  CHECK(layer(c, "/0/Conv").activation.diffs_scope == 1);  // the graph input: one position, as vai_q_pytorch
}

TEST_CASE("vitis config: the guide's example config (layer_type and layer_name entries)") {
  json j = honoured();
  j["tensor_quantize_config"]["activation"] = {{"method", "percentile"}, {"percentage", 99.9}};
  j["layer_quantize_config"] = json::parse(R"([
    {"layer_type": "torch.nn.Conv2d", "quantizable_data_type": ["weights", "bias", "activation"],
     "overall_quantize_config": {"bit_width": 8, "method": "maxmin", "round_mode": "half_even", "symmetry": true,
       "per_channel": true, "signed": true, "narrow_range": false, "scale_type": "float"},
     "tensor_quantize_config": {"bias": {"bit_width": 32}, "activation": {"method": "mse"}}},
    {"layer_name": "/16/Gemm", "quantizable_data_type": ["weights", "bias", "activation"],
     "overall_quantize_config": {"bit_width": 4, "method": "maxmin", "symmetry": true, "scale_type": "float",
       "round_mode": "half_even"},
     "tensor_quantize_config": {"bias": {"bit_width": 32}, "activation": {"bit_width": 8, "method": "entropy"}}}
  ])");
  const auto c = resolve(j);
  // Conv weights per channel; a Gemm's stay per tensor, except /16/Gemm's 4 bits by name.
  CHECK(layer(c, "/0/Conv").weights.channel_wise);
  CHECK_FALSE(layer(c, "/18/Gemm").weights.channel_wise);
  CHECK(layer(c, "/16/Gemm").weights.num_bits == 4);
  CHECK(layer(c, "/18/Gemm").weights.num_bits == 8);
  // /0/Conv reads the image: the top level's "input" grid (maxmin).
  CHECK(layer(c, "/0/Conv").activation.algo == calib_method::minmax);
  // /4/Conv reads /0/Conv's output (through Relu, MaxPool): the Conv2d entry's activation, mse.
  CHECK(layer(c, "/4/Conv").activation.algo == calib_method::mse);
  // /16/Gemm reads the AveragePool's output (not a Conv2d): the top level's percentile.
  CHECK(layer(c, "/16/Gemm").activation.algo == calib_method::percentile);
  CHECK(layer(c, "/16/Gemm").activation.percentile == doctest::Approx(99.9));
  // /18/Gemm reads /16/Gemm's output: that layer's own activation, entropy.
  CHECK(layer(c, "/18/Gemm").activation.algo == calib_method::entropy);
}

// UG1414's example pytorch_quantize_config.json as the guide prints it, with its layer_name (a
// vai_q_pytorch module name) replaced by the bundled model's first Conv.
json guide_example() {
  return json::parse(R"({
    "convert_relu6_to_relu": false, "convert_silu_to_hswish": false, "include_cle": false,
    "keep_first_last_layer_accuracy": false, "keep_add_layer_accuracy": false, "include_bias_corr": false,
    "target_device": "CPU", "quantizable_data_type": ["input", "weights", "bias", "activation"],
    "overall_quantize_config": {"bit_width": 8, "method": "maxmin", "round_mode": "half_even", "symmetry": true,
      "per_channel": false, "signed": true, "narrow_range": false, "scale_type": "float",
      "calib_statistic_method": "max"},
    "tensor_quantize_config": {"activation": {"method": "mse"}},
    "layer_quantize_config": [
      {"layer_type": "torch.nn.Conv2d", "layer_name": null, "quantizable_data_type": ["weights", "bias", "activation"],
       "overall_quantize_config": {"bit_width": 8, "method": "maxmin", "round_mode": "half_even", "symmetry": true,
         "per_channel": false, "signed": true, "narrow_range": false, "scale_type": "float",
         "calib_statistic_method": "max"},
       "tensor_quantize_config": {"weights": {"per_channel": true}, "activation": {"method": "entropy"}}},
      {"layer_type": null, "layer_name": "/0/Conv", "quantizable_data_type": ["weights", "bias", "activation"],
       "overall_quantize_config": {"bit_width": 8, "method": "maxmin", "round_mode": "half_even", "symmetry": true,
         "per_channel": false, "signed": true, "narrow_range": false, "scale_type": "float",
         "calib_statistic_method": "max"},
       "tensor_quantize_config": {"activation": {"round_mode": "half_up"}}}
    ]
  })");
}

TEST_CASE("vitis config: UG1414's example config as printed (null layer_type / layer_name, max statistic)") {
  REQUIRE(io::vitis::is_vitis_config_text(guide_example().dump()));
  const auto c = resolve(guide_example());
  CHECK_FALSE(c.global.keep_add_layer_accuracy);
  CHECK(c.global.quantize_outputs);
  CHECK(c.activation.algo == calib_method::mse);  // Add / Concat: the top level's activation
  CHECK(layer(c, "/7/Conv").weights.channel_wise);  // the Conv2d entry
  CHECK_FALSE(layer(c, "/16/Gemm").weights.channel_wise);
  CHECK(layer(c, "/0/Conv").activation.algo == calib_method::minmax);  // the graph input: maxmin
  // /0/Conv's name entry stacks on its type entry and sets every listed type back to maxmin,
  // per tensor, its output rounding half up; /4/Conv reads that output.
  REQUIRE(layer(c, "/0/Conv").output.has_value());
  CHECK(layer(c, "/0/Conv").output->algo == calib_method::minmax);
  CHECK(layer(c, "/0/Conv").output->rounding == round_mode::half_up);
  CHECK_FALSE(layer(c, "/0/Conv").weights.channel_wise);
  CHECK(layer(c, "/4/Conv").activation.rounding == round_mode::half_up);
  CHECK(layer(c, "/7/Conv").output->algo == calib_method::entropy);
  CHECK(layer(c, "/11/Conv").activation.algo == calib_method::entropy);  // reads /7/Conv's output
  CHECK(layer(c, "/16/Gemm").bias.num_bits == 8);  // overall bit_width 8 reaches the bias
  CHECK(layer(c, "/16/Gemm").bias.scale_kind == scale_type::float32);
  json j = guide_example();
  j["convert_silu_to_hswish"] = true;
  CHECK(mentions(refusal(j), "unsupported|[amctq.unsupported] config: config.convert_silu_to_hswish: true"));
}

TEST_CASE("vitis config: hierarchy overall < tensor < layer_type < layer_name") {
  json j = honoured();
  j["overall_quantize_config"]["bit_width"] = 8;
  j["tensor_quantize_config"]["weights"] = {{"bit_width", 7}};
  SUBCASE("tensor overrides overall") { CHECK(layer(resolve(j), "/7/Conv").weights.num_bits == 7); }
  j["layer_quantize_config"] = json::array();
  j["layer_quantize_config"].push_back(
      {{"layer_type", "Conv"},
       {"quantizable_data_type", {"weights", "bias", "activation"}},
       {"overall_quantize_config", {{"bit_width", 6}}},
       {"tensor_quantize_config", {{"bias", {{"bit_width", 32}}}, {"activation", {{"bit_width", 8}}}}}});
  SUBCASE("layer_type overrides tensor") {
    const auto c = resolve(j);
    CHECK(layer(c, "/7/Conv").weights.num_bits == 6);
    CHECK(layer(c, "/16/Gemm").weights.num_bits == 7);
  }
  j["layer_quantize_config"].push_back(
      {{"layer_name", "/7/Conv"},
       {"quantizable_data_type", {"weights", "bias", "activation"}},
       {"overall_quantize_config", {{"bit_width", 5}}},
       {"tensor_quantize_config", {{"bias", {{"bit_width", 32}}}, {"activation", {{"bit_width", 8}}}}}});
  SUBCASE("layer_name overrides layer_type, whatever the order in the file") {
    std::swap(j["layer_quantize_config"][0], j["layer_quantize_config"][1]);
    const auto c = resolve(j);
    CHECK(layer(c, "/7/Conv").weights.num_bits == 5);
    CHECK(layer(c, "/11/Conv").weights.num_bits == 6);
  }
  SUBCASE("a layer entry listing no tensor type leaves that layer, and its output, in float") {
    j["layer_quantize_config"][1]["quantizable_data_type"] = json::array();
    // /11/Conv reads /7/Conv's output, which would stay float.
    CHECK(mentions(refusal(j), "config.layer_quantize_config[1].quantizable_data_type: leaves '/10/MaxPool_output_0', "
                               "the input of layer '/11/Conv', float"));
    j["layer_quantize_config"][1]["layer_name"] = "/18/Gemm";  // its output is the model's
    const auto c = resolve(j);
    CHECK_FALSE(layer(c, "/18/Gemm").quant_enable);
    CHECK(layer(c, "/16/Gemm").quant_enable);
  }
}

TEST_CASE("vitis config: each key on its own") {
  SUBCASE("globals") {
    json j = honoured();
    j["convert_relu6_to_relu"] = true;
    j["include_cle"] = true;
    j["include_bias_corr"] = true;
    j["keep_first_last_layer_accuracy"] = true;
    const auto c = resolve(j);
    CHECK(c.global.convert_relu6_to_relu);
    CHECK(c.global.include_cle);
    CHECK(c.global.include_bias_corr);
    CHECK(c.global.keep_first_last_layer_accuracy);
  }
  SUBCASE("target_device: CPU, GPU and DPU read; DPU refuses per-channel activations") {
    json j = honoured();
    for (const char* t : {"CPU", "GPU", "DPU"}) {
      j["target_device"] = t;
      CHECK(resolve(j).layers.size() == 7);
    }
    j["tensor_quantize_config"]["activation"] = {{"per_channel", true}};
    CHECK(mentions(refusal(j), "config.target_device: DPU takes per-tensor activations"));
    j["target_device"] = "FPGA";
    CHECK(mentions(refusal(j), "config.target_device: must be one of DPU, CPU, GPU"));
  }
  SUBCASE("bit_width") {
    json j = honoured();
    j["overall_quantize_config"]["bit_width"] = 4;
    const auto c = resolve(j);
    CHECK(layer(c, "/7/Conv").weights.num_bits == 4);
    CHECK(layer(c, "/7/Conv").activation.num_bits == 4);
    j["overall_quantize_config"]["bit_width"] = 16;
    CHECK(mentions(refusal(j), "unsupported|"));
    CHECK(mentions(refusal(j), "config.overall_quantize_config.bit_width: bit_width 16 for activation"));
    j["tensor_quantize_config"]["activation"] = {{"bit_width", 8}};
    j["tensor_quantize_config"]["input"] = {{"bit_width", 8}};
    CHECK(mentions(refusal(j), "config.overall_quantize_config.bit_width: bit_width 16 for weights"));
  }
  SUBCASE("method, activations: maxmin, percentile, entropy, mse, diffs") {
    json j = honoured();
    const std::pair<const char*, calib_method> methods[] = {{"maxmin", calib_method::minmax},
                                                            {"percentile", calib_method::percentile},
                                                            {"entropy", calib_method::entropy},
                                                            {"mse", calib_method::mse},
                                                            {"diffs", calib_method::pot_diffs}};
    for (const auto& [name, m] : methods) {
      j["tensor_quantize_config"]["activation"] = {{"method", name}};
      j["tensor_quantize_config"]["input"] = {{"method", name}};
      if (m == calib_method::pot_diffs) {
        j["tensor_quantize_config"]["activation"]["scale_type"] = "power_of_two";
        j["tensor_quantize_config"]["input"]["scale_type"] = "poweroftwo";  // vai_q_pytorch's spelling
      }
      CHECK(layer(resolve(j), "/11/Conv").activation.algo == m);
      CHECK(layer(resolve(j), "/0/Conv").activation.algo == m);
      // diffs on a graph input tries one position, as vai_q_pytorch does.
      if (m == calib_method::pot_diffs) CHECK(layer(resolve(j), "/0/Conv").activation.diffs_scope == 1);
    }
    j["tensor_quantize_config"]["activation"] = {{"method", "kl"}};
    CHECK(mentions(refusal(j), "config.tensor_quantize_config.activation.method: must be one of maxmin"));
  }
  SUBCASE("method, weights: maxmin (ARQ) and diffs") {
    json j = honoured();
    CHECK(layer(resolve(j), "/7/Conv").weights.diffs_scope == 0);
    j["tensor_quantize_config"]["weights"] = {{"method", "diffs"}, {"scale_type", "power_of_two"}};
    const graph::weight_quant w = layer(resolve(j), "/7/Conv").weights;  // a copy: resolve() returns a temporary
    CHECK(w.diffs_scope == 5);
    CHECK(w.scale_kind == scale_type::power_of_two);
    j["tensor_quantize_config"]["weights"]["per_channel"] = true;
    CHECK(mentions(refusal(j), "config.tensor_quantize_config.weights.per_channel: per-channel diffs weights"));
    j["tensor_quantize_config"]["weights"] = {{"method", "diffs"}};
    CHECK(mentions(refusal(j), "config.overall_quantize_config.scale_type: method diffs searches"));
    j["tensor_quantize_config"]["weights"] = {{"method", "mse"}};
    CHECK(mentions(refusal(j), "unsupported|[amctq.unsupported] config: config.tensor_quantize_config.weights.method"));
  }
  SUBCASE("round_mode: every mode for weights and per-tensor activations; half_even for the bias") {
    json j = honoured();
    const std::pair<const char*, round_mode> modes[] = {{"half_even", round_mode::half_even},
                                                        {"half_up", round_mode::half_up},
                                                        {"half_down", round_mode::half_down},
                                                        {"std_round", round_mode::half_away}};
    for (const auto& [name, m] : modes) {
      j["tensor_quantize_config"]["activation"] = {{"round_mode", name}};
      j["tensor_quantize_config"]["weights"] = {{"round_mode", name}};
      const auto c = resolve(j);
      CHECK(layer(c, "/7/Conv").activation.rounding == m);
      CHECK(layer(c, "/7/Conv").weights.rounding == m);
      CHECK(layer(c, "/0/Conv").activation.rounding == round_mode::half_even);  // the "input" type's
    }
    j["tensor_quantize_config"]["activation"]["per_channel"] = true;
    CHECK(mentions(refusal(j), "config.tensor_quantize_config.activation.round_mode: round_mode std_round for "
                               "per-channel activation"));
    j = honoured();
    j["overall_quantize_config"]["round_mode"] = "half_up";
    CHECK(layer(resolve(j), "/7/Conv").bias.rounding == round_mode::half_up);  // the int32 code rounds half up
  }
  SUBCASE("symmetry") {
    json j = honoured();
    j["tensor_quantize_config"]["activation"] = {{"symmetry", false}};
    j["tensor_quantize_config"]["input"] = {{"symmetry", false}};
    CHECK(layer(resolve(j), "/7/Conv").activation.asymmetric);
    j["tensor_quantize_config"]["weights"] = {{"symmetry", false}};
    CHECK(mentions(refusal(j), "config.tensor_quantize_config.weights.symmetry: asymmetric weights"));
  }
  SUBCASE("per_channel") {
    json j = honoured();
    j["tensor_quantize_config"]["weights"] = {{"per_channel", true}};
    j["tensor_quantize_config"]["activation"] = {{"per_channel", true}};
    const auto c = resolve(j);
    CHECK(layer(c, "/7/Conv").weights.channel_wise);
    CHECK(layer(c, "/7/Conv").activation.channel_wise);
    CHECK_FALSE(layer(c, "/0/Conv").activation.channel_wise);  // reads the graph input
  }
  SUBCASE("signed false: unsigned activations; weights and biases refuse it") {
    json j = honoured();
    j["tensor_quantize_config"]["activation"] = {{"signed", false}};
    const auto c = resolve(j);
    CHECK_FALSE(layer(c, "/7/Conv").activation.is_signed);
    CHECK(layer(c, "/0/Conv").activation.is_signed);  // reads the graph input: the "input" type's
    j["overall_quantize_config"]["signed"] = false;
    CHECK(mentions(refusal(j), "config.overall_quantize_config.signed: unsigned weights"));
  }
  SUBCASE("narrow_range: activations and weights") {
    json j = honoured();
    j["tensor_quantize_config"]["weights"] = {{"narrow_range", true}};
    j["tensor_quantize_config"]["activation"] = {{"narrow_range", true}};
    const auto c = resolve(j);
    CHECK(layer(c, "/7/Conv").weights.narrow_range);
    CHECK(layer(c, "/7/Conv").activation.narrow_range);
    CHECK_FALSE(layer(c, "/0/Conv").activation.narrow_range);
    j["tensor_quantize_config"]["bias"] = {{"bit_width", 8}, {"narrow_range", true}};
    CHECK(mentions(refusal(j), "config.tensor_quantize_config.bias.narrow_range: a narrow_range bias"));
  }
  SUBCASE("scale_type: float, power_of_two with any method; diffs needs power_of_two") {
    json j = honoured();
    CHECK(layer(resolve(j), "/7/Conv").activation.scale_kind == scale_type::float32);
    CHECK(layer(resolve(j), "/7/Conv").weights.scale_kind == scale_type::float32);
    j["overall_quantize_config"]["scale_type"] = "power_of_two";
    for (const char* m : {"maxmin", "percentile", "entropy", "mse"}) {
      j["tensor_quantize_config"]["activation"] = {{"method", m}};
      const auto c = resolve(j);
      CHECK(layer(c, "/7/Conv").activation.scale_kind == scale_type::power_of_two);
      CHECK(layer(c, "/7/Conv").weights.scale_kind == scale_type::power_of_two);
      CHECK(layer(c, "/7/Conv").weights.diffs_scope == 0);
    }
    j = honoured();
    j["tensor_quantize_config"]["activation"] = {{"method", "diffs"}};
    CHECK(mentions(refusal(j), "config.overall_quantize_config.scale_type: method diffs searches"));
  }
  SUBCASE("calib_statistic_method (diffs)") {
    json j = honoured();
    for (const char* s : {"modal", "max", "mean", "median"}) {
      j["tensor_quantize_config"]["activation"] = {{"method", "diffs"}, {"scale_type", "power_of_two"},
                                                   {"calib_statistic_method", s}};
      CHECK(std::string(to_string(layer(resolve(j), "/7/Conv").activation.calib_statistic_method)) == s);
    }
    // maxmin's range is over all batches: "max" (and the guide's default "modal") say just that.
    j["tensor_quantize_config"]["activation"] = {{"calib_statistic_method", "max"}};
    CHECK(layer(resolve(j), "/7/Conv").activation.algo == calib_method::minmax);
    j["tensor_quantize_config"]["activation"] = {{"calib_statistic_method", "mean"}};
    CHECK(mentions(refusal(j), "calib_statistic_method mean with method maxmin is not supported"));
    // The histogram methods merge every batch, whatever the statistic.
    j["tensor_quantize_config"]["activation"] = {{"calib_statistic_method", "median"}, {"method", "mse"}};
    CHECK(layer(resolve(j), "/7/Conv").activation.algo == calib_method::mse);
  }
  SUBCASE("bias: 32 bits on the accumulator grid, or 2 to 8 on a grid of its own") {
    json j = honoured();
    CHECK(layer(resolve(j), "/7/Conv").bias.num_bits == 32);
    j["tensor_quantize_config"]["bias"] = {{"bit_width", 8}};
    auto b = layer(resolve(j), "/7/Conv").bias;
    CHECK(b.num_bits == 8);
    CHECK(b.scale_kind == scale_type::float32);
    CHECK(b.diffs_scope == 0);
    j["tensor_quantize_config"]["bias"] = {{"bit_width", 6}, {"method", "diffs"}, {"scale_type", "power_of_two"}};
    b = layer(resolve(j), "/7/Conv").bias;
    CHECK(b.num_bits == 6);
    CHECK(b.diffs_scope == 5);
    j["tensor_quantize_config"]["bias"] = {{"bit_width", 16}};
    CHECK(mentions(refusal(j), "config.tensor_quantize_config.bias.bit_width: bias bit_width 16"));
    j["tensor_quantize_config"]["bias"] = {{"bit_width", 8}, {"method", "entropy"}};
    CHECK(mentions(refusal(j), "config.tensor_quantize_config.bias.method: method entropy for the bias"));
  }
  SUBCASE("quantizable_data_type") {
    json j = honoured();
    j["quantizable_data_type"] = {"input", "bias", "activation"};
    CHECK(mentions(refusal(j), "config.quantizable_data_type: layer '/0/Conv' leaves its weights float"));
    j["quantizable_data_type"] = {"weights", "bias", "activation"};
    CHECK(mentions(refusal(j), "config.quantizable_data_type: leaves 'image', the input of layer '/0/Conv', float"));
    j["quantizable_data_type"] = {"weights", "weights"};
    CHECK(mentions(refusal(j), "config.quantizable_data_type[1]: \"weights\" is listed twice"));
  }
  SUBCASE("keep_add_layer_accuracy, activation: Add / Concat and layer outputs") {
    json j = honoured();
    auto c = resolve(j);
    CHECK(c.global.keep_add_layer_accuracy);
    CHECK(c.global.quantize_outputs);
    j["keep_add_layer_accuracy"] = false;
    j["quantizable_data_type"] = {"input", "weights", "bias"};
    j["layer_quantize_config"] = json::parse(R"([{"layer_type": "Conv", "quantizable_data_type": ["weights", "bias", "activation"],
        "overall_quantize_config": {"bit_width": 8}}])");
    // /16/Gemm reads the AveragePool's output, which no layer's activation now quantizes.
    CHECK(mentions(refusal(j), "leaves '/15/Flatten_output_0', the input of layer '/16/Gemm', float"));
  }
}

TEST_CASE("vitis config: written in amctq's format it reads back the same (scale_type, round_mode, diffs_scope)") {
  json j = honoured();
  j["overall_quantize_config"]["scale_type"] = "power_of_two";
  j["tensor_quantize_config"]["weights"] = {{"method", "diffs"}, {"round_mode", "std_round"}};
  j["tensor_quantize_config"]["activation"] = {{"method", "mse"}, {"round_mode", "half_up"}};
  const auto c = resolve(j);
  const auto back = io::read_config_json_text(io::write_config_json(c));
  REQUIRE(back.layers.size() == c.layers.size());
  for (std::size_t i = 0; i < c.layers.size(); ++i) {
    const auto& a = c.layers[i].settings;
    const auto& b = back.layers[i].settings;
    INFO(c.layers[i].name);
    CHECK(b.activation.scale_kind == a.activation.scale_kind);
    CHECK(b.activation.rounding == a.activation.rounding);
    CHECK(b.activation.algo == a.activation.algo);
    CHECK(b.weights.scale_kind == a.weights.scale_kind);
    CHECK(b.weights.rounding == a.weights.rounding);
    CHECK(b.weights.diffs_scope == a.weights.diffs_scope);
  }
  CHECK(layer(back, "/7/Conv").weights.diffs_scope == 5);
  CHECK(layer(back, "/7/Conv").activation.rounding == round_mode::half_up);
}

TEST_CASE("vitis config: errors name the entry") {
  json j = honoured();
  j.erase("target_device");
  CHECK(mentions(refusal(j), "config.target_device: is required"));
  j = honoured();
  j["bogus"] = 1;
  CHECK(mentions(refusal(j), "config.bogus: unknown key"));
  j = honoured();
  j["overall_quantize_config"]["bits"] = 8;
  CHECK(mentions(refusal(j), "config.overall_quantize_config.bits: unknown key"));
  const json entry = {{"layer_type", "torch.nn.Linear"},
                      {"quantizable_data_type", {"weights", "bias", "activation"}},
                      {"overall_quantize_config", {{"bit_width", 8}}}};
  j = honoured();
  j["layer_quantize_config"] = {entry, entry};
  j["layer_quantize_config"][1]["layer_name"] = "/16/Gemm";
  CHECK(mentions(refusal(j), "config.layer_quantize_config[1]: gives both layer_type and layer_name"));
  j["layer_quantize_config"][1].erase("layer_name");
  j["layer_quantize_config"][1].erase("layer_type");
  CHECK(mentions(refusal(j), "config.layer_quantize_config[1]: needs layer_type or layer_name"));
  j["layer_quantize_config"][1]["layer_name"] = "/99/Conv";
  CHECK(mentions(refusal(j), "config.layer_quantize_config[1].layer_name: \"/99/Conv\" is not a quantizable layer"));
  j["layer_quantize_config"][1] = entry;
  j["layer_quantize_config"][1].erase("quantizable_data_type");
  CHECK(mentions(refusal(j), "config.layer_quantize_config[1].quantizable_data_type: is required"));
  j["layer_quantize_config"][1] = entry;
  j["layer_quantize_config"][1]["layer_type"] = "torch.nn.LSTM";
  CHECK(mentions(refusal(j), "config.layer_quantize_config[1].layer_type: \"torch.nn.LSTM\" is not a quantizable"));
}

#endif  // AMCTQ_SOURCE_DIR

}  // namespace test_vitis_config_json
