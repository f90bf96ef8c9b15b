#include <doctest/doctest.h>

#include <string>

#include "amctq/io/config_json.hpp"

namespace test_config_json {

using namespace amctq;

namespace {

graph::quant_config two_layer_config() {
  graph::quant_config c;
  graph::layer_config a;
  a.name = "/conv1/Conv";
  a.op_type = "Conv";
  graph::layer_config b;
  b.name = "/fc/Gemm";
  b.op_type = "Gemm";
  c.layers = {a, b};
  return c;
}

std::string error_of(const std::string& text) {
  try {
    io::read_config_json_text(text);
  } catch (const amctq::error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("config json: write then read gives the same resolved config") {
  auto c = two_layer_config();
  c.batch_num = 4;
  c.skip_layers = {"/fc/Gemm"};
  c.global.include_cle = true;
  c.layer_type["Gemm"].activation.algo = calib_method::hfmg;
  c.layers[1].settings.activation.algo = calib_method::hfmg;
  c.layers[0].settings.activation.search_step = 0.02f;
  c.layers[0].settings.dmq_balancer_param = 0.3f;
  c.layers[1].settings.weights.how = preset::pytorch;
  const auto text = io::write_config_json(c);
  CHECK(text.find("\"search_step\": 0.02") != std::string::npos);
  CHECK(text.find("0.999999,") != std::string::npos);  // shortest float text, not 0.99999898...
  const auto r = io::read_config_json_text(text);
  CHECK(r.batch_num == 4);
  CHECK(r.global.include_cle);
  REQUIRE(r.layers.size() == 2);
  CHECK(r.layers[0].name == "/conv1/Conv");
  CHECK(r.layers[0].settings.activation.search_step == doctest::Approx(0.02f));
  CHECK(r.layers[0].settings.dmq_balancer_param.value() == doctest::Approx(0.3f));
  CHECK(r.layers[1].settings.activation.algo == calib_method::hfmg);
  CHECK(!r.layers[1].settings.dmq_balancer_param);
  CHECK(r.layers[1].settings.weights.how == preset::pytorch);
  CHECK(r.layers[0].settings.weights.how == preset::amct);
  CHECK(r.skip_layers == std::vector<std::string>{"/fc/Gemm"});
  CHECK(io::write_config_json(r) == text);
}

TEST_CASE("config json: hierarchy overall -> activation -> layer_type -> layer name") {
  const auto c = io::read_config_json_text(R"({
    "overall": {"num_bits": 4},
    "activation": {"num_bits": 8, "act_algo": "entropy"},
    "layer_type": {"Gemm": {"activation": {"act_algo": "minmax"}, "weights": {"channel_wise": false}}},
    "layers": {"/a/Conv": {"op_type": "Conv"},
               "/b/Gemm": {"op_type": "Gemm"},
               "/c/Gemm": {"op_type": "Gemm", "activation": {"act_algo": "percentile", "percentile": 99.9}}}})");
  REQUIRE(c.layers.size() == 3);
  CHECK(c.layers[0].settings.weights.num_bits == 4);  // from overall
  CHECK(c.layers[0].settings.activation.num_bits == 8);
  CHECK(c.layers[0].settings.activation.algo == calib_method::entropy);
  CHECK(c.layers[0].settings.weights.channel_wise);
  CHECK(c.layers[1].settings.activation.algo == calib_method::minmax);
  CHECK(!c.layers[1].settings.weights.channel_wise);
  CHECK(c.layers[2].settings.activation.algo == calib_method::percentile);
  CHECK(c.layers[2].settings.activation.percentile == doctest::Approx(99.9f));
  CHECK(!c.layers[2].settings.weights.channel_wise);  // layer_type still applies
}

TEST_CASE("config json: activation_offset is the default of asymmetric") {
  const auto c = io::read_config_json_text(R"({"activation_offset": false, "layers": {"x": {"op_type": "Conv"}}})");
  CHECK(!c.layers[0].settings.activation.asymmetric);
}

TEST_CASE("config json: errors name the key path") {
  CHECK(error_of(R"({"layers": {"/conv1/Conv": {"op_type": "Conv", "activation": {"search_step": 2}}}})")
            .find("config.layers./conv1/Conv.activation.search_step: must be in (0, 0.6], got 2") != std::string::npos);
  CHECK(error_of(R"({"batch_num": 0})").find("config.batch_num: must be >= 1, got 0") != std::string::npos);
  CHECK(error_of(R"({"bogus": 1})").find("config.bogus: unknown key") != std::string::npos);
  CHECK(error_of(R"({"activation": {"act_algo": "kl"}})").find("config.activation.act_algo: must be one of") !=
        std::string::npos);
  CHECK(error_of(R"({"activation": {"num_of_bins": 100}})").find("config.activation.num_of_bins") != std::string::npos);
  CHECK(error_of(R"({"weights": {"num_bits": 9}})").find("config.weights.num_bits: must be in [2, 8]") !=
        std::string::npos);
  CHECK(error_of(R"({"weights": {"wts_algo": "nuq", "num_steps": 8}})").find("config.weights.num_steps") !=
        std::string::npos);
  CHECK(error_of(R"({"weights": {"preset": "tf"}})").find("config.weights.preset: must be amct, onnxruntime or pytorch") !=
        std::string::npos);
  CHECK(error_of(R"({"global": {"include_cle": "yes"}})").find("config.global.include_cle: must be true or false") !=
        std::string::npos);
  CHECK(error_of(R"({"layer_type": {"Relu": {}}})").find("config.layer_type.Relu: is not a quantizable") !=
        std::string::npos);
  CHECK(error_of(R"({"layers": {"a": {"op_type": "Conv", "dmq_balancer_param": 0.9}}})")
            .find("config.layers.a.dmq_balancer_param: must be in [0.2, 0.8], got 0.9") != std::string::npos);
  CHECK(error_of(R"({"layers": {"a": {"op_type": "Conv", "weights": {"extra": 1}}}})")
            .find("config.layers.a.weights.extra: unknown key") != std::string::npos);
  CHECK(error_of(R"({"layers": {"a": {"quant_enable": true}}})").find("config.layers.a.op_type: is required") !=
        std::string::npos);
  CHECK(error_of(R"({"skip_layers": ["nope"], "layers": {"a": {"op_type": "Conv"}}})")
            .find("config.skip_layers: names 'nope'") != std::string::npos);
  CHECK(error_of(R"({"activation": {"search_range": [1.3, 0.7]}})").find("config.activation.search_range") !=
        std::string::npos);
  CHECK(error_of("{not json").find("[amctq.parse]") != std::string::npos);
  CHECK(error_of(R"({"activation": {"max_percentile": 1e400}})").find("[amctq.parse] config: not valid JSON") !=
        std::string::npos);
  // overall.num_bits sets the weights' width too: the error names the key the user wrote.
  CHECK(error_of(R"({"overall": {"num_bits": 16}})").find("config.overall.num_bits: sets the weights' width") !=
        std::string::npos);
  CHECK(error_of(R"({"overall": {"num_bits": 16}, "weights": {"num_bits": 8}})").empty());
  // A key twice in one object (JSON readers keep one of the two silently) is refused, with its
  // path, at any depth; the same key in different objects is fine.
  CHECK(error_of(R"({"layers": {"a": {"op_type": "Conv"}, "a": {"op_type": "Gemm"}}})")
            .find("config.layers.a: appears twice in one object") != std::string::npos);
  CHECK(error_of(R"({"batch_num": 2, "batch_num": 3})").find("config.batch_num: appears twice") != std::string::npos);
  CHECK(error_of(R"({"layers": {"a": {"op_type": "Conv", "activation": {"num_bits": 8, "num_bits": 4}}}})")
            .find("config.layers.a.activation.num_bits: appears twice") != std::string::npos);
  CHECK(error_of(R"({"weights": {"num_bits": 8}, "activation": {"num_bits": 8},
                     "layers": {"a": {"op_type": "Conv", "weights": {"num_bits": 8}}, "b": {"op_type": "Conv"}}})")
            .empty());
  CHECK(error_of(R"({"skip_layers": ["a", "b"], "layers": {"a": {"op_type": "Conv"}, "b": {"op_type": "Conv"}}})")
            .empty());
  // Inside arrays the path carries the element's index.
  CHECK(error_of(R"({"skip_layers": ["a", {"q": 1, "q": 2}]})").find("config.skip_layers[1].q: appears twice") !=
        std::string::npos);
  CHECK(error_of(R"({"x": [[{"z": 1}], {"y": {"k": [1, 2]}, "z": 1, "z": 2}]})").find("config.x[1].z: appears twice") !=
        std::string::npos);
}

TEST_CASE("config json: nesting is limited to 256 levels; bad values are quoted short") {
  auto arrays = [](std::size_t n) { return "{\"x\": " + std::string(n, '[') + std::string(n, ']') + "}"; };
  // 256 levels in all (the object and 255 arrays) pass the reader; the key is then unknown.
  CHECK(error_of(arrays(255)).find("config.x: unknown key") != std::string::npos);
  const std::string deep = error_of(arrays(256));
  CHECK(deep.find("nested deeper than 256 levels") != std::string::npos);
  CHECK(deep.find("config.x[0][0][0]") != std::string::npos);
  CHECK(deep.size() < 600);
  // The issue's 200 kB file of 100 000 '[': refused at level 257, the message stays short.
  const std::string flat = error_of(std::string(100000, '[') + std::string(100000, ']'));
  CHECK(flat.find("[amctq.invalid_argument] config: config[0][0]") != std::string::npos);
  CHECK(flat.find("nested deeper than 256 levels") != std::string::npos);
  CHECK(flat.size() < 600);
  std::string objects;
  for (int i = 0; i < 300; ++i) objects += "{\"a\": ";
  objects += "1" + std::string(300, '}');
  const std::string obj = error_of(objects);
  CHECK(obj.find("config.a.a.a") != std::string::npos);
  CHECK(obj.find("nested deeper than 256 levels") != std::string::npos);
  CHECK(obj.size() < 600);
  // Duplicate keys deep down are still found with their path; long keys in it are cut.
  const std::string long_key(5000, 'k');
  const std::string dup = error_of("{\"x\": {\"" + long_key + "\": {\"q\": 1, \"q\": 2}}}");
  CHECK(dup.find("config.x.kkkk") != std::string::npos);
  CHECK(dup.find("...(5000 bytes).q: appears twice") != std::string::npos);
  CHECK(dup.size() < 300);
  // Values: an array of 100 000 numbers, a 100 kB string, a 100 kB key.
  std::string big_array = "[1";
  for (int i = 0; i < 100000; ++i) big_array += ",1";
  big_array += "]";
  const std::string arr = error_of("{\"batch_num\": " + big_array + "}");
  CHECK(arr.find("config.batch_num: must be an integer, got [1,1,1") != std::string::npos);
  CHECK(arr.find("...(200003 bytes)") != std::string::npos);
  CHECK(arr.size() < 250);
  const std::string str = error_of("{\"activation\": {\"act_algo\": \"" + std::string(100000, 'z') + "\"}}");
  CHECK(str.find("config.activation.act_algo: must be one of") != std::string::npos);
  CHECK(str.size() < 350);
  const std::string key = error_of("{\"" + std::string(100000, 'b') + "\": 1}");
  CHECK(key.find("unknown key") != std::string::npos);
  CHECK(key.size() < 250);
}

TEST_CASE("config json: save is atomic and validates first") {
  auto c = two_layer_config();
  c.batch_num = 0;
  const std::string path = "amctq_test_config_invalid.json";
  std::remove(path.c_str());
  CHECK_THROWS_AS(io::save_config_json(c, path), amctq::error);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  CHECK(f == nullptr);
  if (f) std::fclose(f);
  c.batch_num = 2;
  io::save_config_json(c, path);
  CHECK(io::read_config_json(path).batch_num == 2);
  std::remove(path.c_str());
}

}  // namespace test_config_json
