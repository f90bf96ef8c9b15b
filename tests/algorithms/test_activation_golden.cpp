// amctq's compatibility presets against thresholds computed by the real peers (ONNX Runtime's
// calibrators, PyTorch's observers) on the same data: tests/golden/make_golden.py made
// tests/golden/activation_golden.json; this test regenerates the data with the same generator
// and requires agreement within one of the peer's histogram bins (exactly, for min/max params).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amctq/algorithms/observer.hpp"

namespace test_activation_golden {

using namespace amctq;

namespace {

struct splitmix64 {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  double normal() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.141592653589793 * u2);
  }
};

std::vector<float> dataset(const std::string& name, std::size_t n) {
  const std::uint64_t seed = name == "normal" ? 1 : name == "laplace_outliers" ? 2 : name == "relu" ? 3 : 4;
  splitmix64 g{seed};
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    double x;
    if (name == "normal") {
      x = g.normal();
    } else if (name == "laplace_outliers") {
      const double u = g.uniform() - 0.5;
      x = -0.5 * std::copysign(1.0, u) * std::log(1.0 - 2.0 * std::fabs(u));
      if (i % 997 == 0) x = std::copysign(8.0 + 8.0 * g.uniform(), u);
    } else if (name == "relu") {
      x = std::fmax(0.2 + g.normal(), 0.0);
    } else {
      x = g.uniform() < 0.4 ? -2.0 + 0.5 * g.normal() : 3.0 + 0.8 * g.normal();
    }
    v[i] = static_cast<float>(x);
  }
  return v;
}

nlohmann::json golden() {
  std::string path = __FILE__;
  path = path.substr(0, path.rfind("algorithms")) + "golden/activation_golden.json";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  return nlohmann::json::parse(in);
}

calib_range run(const std::vector<float>& v, calib_method m, preset how, quant_spec spec, double percentile = 99.99,
                bool torch_int_range = false) {
  observer_options o;
  o.hfmg.torch_int_range = torch_int_range;
  o.method = m;
  o.how = how;
  o.spec = spec;
  o.percentile.percentile = percentile;
  activation_observer ob(o);
  // Two batches: the peers saw one, amctq's result must not care. Except entropy under the
  // onnxruntime preset, which follows ORT's batch-order-dependent histogram (ort_histogram.hpp)
  // and so gets the one batch ORT saw; it then equals ORT exactly.
  if (m == calib_method::entropy && how == preset::onnxruntime) {
    ob.observe(make_view(v.data(), {static_cast<std::ptrdiff_t>(v.size())}));
    return ob.result().ranges[0];
  }
  ob.observe(make_view(v.data(), {static_cast<std::ptrdiff_t>(v.size() / 3)}));
  ob.observe(make_view(v.data() + v.size() / 3, {static_cast<std::ptrdiff_t>(v.size() - v.size() / 3)}));
  return ob.result().ranges[0];
}

quant_spec make_spec(bool is_signed, bool symmetric, bool narrow = false) {
  quant_spec s;
  s.is_signed = is_signed;
  s.symmetric = symmetric;
  s.narrow_range = narrow;
  return s;
}

}  // namespace

TEST_CASE("golden: the generator reproduces the script's data") {
  const auto g = golden();
  for (const auto& [name, d] : g["datasets"].items()) {
    const auto v = dataset(name, g["n"].get<std::size_t>());
    float mn = v[0], mx = v[0];
    for (float x : v) {
      mn = std::fmin(mn, x);
      mx = std::fmax(mx, x);
    }
    double s = 0.0;
    for (std::size_t i = 0; i < 100; ++i) s += v[i];
    CAPTURE(name);
    CHECK(mn == d["min"].get<float>());
    CHECK(mx == d["max"].get<float>());
    CHECK(s == doctest::Approx(d["sum_first_100"].get<double>()).epsilon(1e-12));
  }
}

TEST_CASE("golden: ONNX Runtime entropy, percentile and min/max params") {
  const auto g = golden();
  for (const auto& [name, d] : g["datasets"].items()) {
    CAPTURE(name);
    const auto v = dataset(name, g["n"].get<std::size_t>());
    const auto& ort = d["onnxruntime"];
    const double amax = std::fmax(std::fabs(d["min"].get<double>()), std::fabs(d["max"].get<double>()));
    const double signed_bin = 2.0 * amax / 2048.0, abs_bin = amax / 2048.0;

    const auto e = run(v, calib_method::entropy, preset::onnxruntime, make_spec(false, false));
    CHECK(e.min == ort["entropy"][0].get<float>());
    CHECK(e.max == ort["entropy"][1].get<float>());

    const auto ps = run(v, calib_method::percentile, preset::onnxruntime, make_spec(true, true));
    CHECK(std::fabs(ps.min - ort["percentile_symmetric"][0].get<double>()) <= abs_bin * 1.001);
    CHECK(std::fabs(ps.max - ort["percentile_symmetric"][1].get<double>()) <= abs_bin * 1.001);
    const auto pa = run(v, calib_method::percentile, preset::onnxruntime, make_spec(true, false));
    CHECK(std::fabs(pa.min - ort["percentile_asymmetric"][0].get<double>()) <= signed_bin * 1.001);
    CHECK(std::fabs(pa.max - ort["percentile_asymmetric"][1].get<double>()) <= signed_bin * 1.001);

    const auto mm = run(v, calib_method::minmax, preset::onnxruntime, make_spec(false, false));
    auto p = params_from_range(mm.min, mm.max, make_spec(false, false), preset::onnxruntime);
    CHECK(p.scale[0] == doctest::Approx(ort["minmax_uint8"]["scale"].get<double>()).epsilon(1e-7));
    CHECK(p.zero_point[0] == ort["minmax_uint8"]["zero_point"].get<int>());
    p = params_from_range(mm.min, mm.max, make_spec(true, true, true), preset::onnxruntime);
    CHECK(p.scale[0] == doctest::Approx(ort["minmax_int8_symmetric"]["scale"].get<double>()).epsilon(1e-7));
    CHECK(p.zero_point[0] == ort["minmax_int8_symmetric"]["zero_point"].get<int>());
  }
}

TEST_CASE("golden: PyTorch MinMaxObserver and HistogramObserver") {
  const auto g = golden();
  for (const auto& [name, d] : g["datasets"].items()) {
    CAPTURE(name);
    const auto v = dataset(name, g["n"].get<std::size_t>());
    const auto& pt = d["pytorch"];
    const auto mm = run(v, calib_method::minmax, preset::pytorch, make_spec(false, false));
    auto p = params_from_range(mm.min, mm.max, make_spec(false, false), preset::pytorch);
    CHECK(p.scale[0] == doctest::Approx(pt["minmax_quint8"]["scale"].get<double>()).epsilon(1e-7));
    CHECK(p.zero_point[0] == pt["minmax_quint8"]["zero_point"].get<int>());
    p = params_from_range(mm.min, mm.max, make_spec(true, true), preset::pytorch);
    CHECK(p.scale[0] == doctest::Approx(pt["minmax_qint8_symmetric"]["scale"].get<double>()).epsilon(1e-7));
    CHECK(p.zero_point[0] == pt["minmax_qint8_symmetric"]["zero_point"].get<int>());

    const auto& h = pt["histogram"];
    const double bin = (h["data_max"].get<double>() - h["data_min"].get<double>()) / 2048.0;
    // The golden numbers come from torch 1.13 (Debian 12), whose HistogramObserver histograms
    // over [int(min), int(max)]; amctq's emulation of that is opt-in.
    const bool int_range = g["torch_version"].get<std::string>().rfind("1.", 0) == 0;
    const auto r = run(v, calib_method::hfmg, preset::pytorch, make_spec(false, false), 99.99, int_range);
    CHECK(std::fabs(r.min - h["min"].get<double>()) <= bin * 1.001);
    CHECK(std::fabs(r.max - h["max"].get<double>()) <= bin * 1.001);

    // torch 2.x histograms the first batch over [min, max]: the pytorch preset as it is, with
    // no emulation, must reproduce it.
    if (d.contains("pytorch_2")) {
      const auto& h2 = d["pytorch_2"]["histogram"];
      const double bin2 = (h2["data_max"].get<double>() - h2["data_min"].get<double>()) / 2048.0;
      const auto r2 = run(v, calib_method::hfmg, preset::pytorch, make_spec(false, false), 99.99, false);
      CHECK(std::fabs(r2.min - h2["min"].get<double>()) <= bin2 * 1.001);
      CHECK(std::fabs(r2.max - h2["max"].get<double>()) <= bin2 * 1.001);
      const auto p2 = params_from_range(r2.min, r2.max, make_spec(false, false), preset::pytorch);
      CHECK(p2.scale[0] == doctest::Approx(h2["scale"].get<double>()).epsilon(1.001 * bin2 / (r2.max - r2.min)));
    }
  }
  CHECK(g.contains("torch_2_version"));  // the stored numbers include a torch 2.x run
}

}  // namespace test_activation_golden
