// Observer state through JSON: shards serialised, parsed back and merged give the same params
// as one observer over all the data; malformed states are parse errors naming the key.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "amctq/io/observer_json.hpp"

namespace test_observer_json {

using namespace amctq;

TEST_CASE("observer state JSON round trip merges exactly, per-tensor and per-channel") {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.5f, 2.0f);
  std::vector<float> v(4000);
  for (auto& x : v) x = n(rng);
  for (calib_method m : all_calib_methods) {
    for (int axis : {per_tensor, 1}) {
      const std::string method = to_string(m);
      CAPTURE(method);
      observer_options o;
      o.method = m;
      o.spec.axis = axis;
      o.histogram_capacity = 1024;
      o.tail_capacity = 64;
      activation_observer whole(o), a(o), b(o);
      whole.observe(make_view(v.data(), {1000, 4}));
      a.observe(make_view(v.data(), {400, 4}));
      b.observe(make_view(v.data() + 1600, {600, 4}));
      auto through_json = [&](const activation_observer& ob) {
        const std::string text = io::to_json(ob.to_state()).dump();
        return activation_observer::from_state(o, io::observer_state_from_json(nlohmann::json::parse(text)));
      };
      activation_observer back = through_json(a);
      const auto ra = a.result(), rb = back.result();
      CHECK(ra.params.scale == rb.params.scale);
      CHECK(ra.params.zero_point == rb.params.zero_point);
      if (m == calib_method::moving_average || m == calib_method::pot_diffs) continue;  // per-batch by definition
      back.merge(through_json(b));
      const auto rm = back.result(), rw = whole.result();
      CHECK(rm.params.scale == rw.params.scale);
      CHECK(rm.params.zero_point == rw.params.zero_point);
    }
  }
  observer_options o;
  activation_observer e(o);
  const auto empty = io::observer_state_from_json(io::to_json(e.to_state()));
  CHECK(empty.channels.empty());
}

TEST_CASE("ONNX Runtime histogram states (entropy; percentile on x and on |x|) survive JSON") {
  // A second batch beyond the first's range grows ORT's histogram: by whole bins on both sides
  // for x, by np.arange edges for |x|, which the state must carry.
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(3000);
  for (auto& x : v) x = n(rng);
  for (std::size_t i = 2000; i < v.size(); ++i) v[i] *= 4.0f;
  for (calib_method m : {calib_method::entropy, calib_method::percentile}) {
    for (bool sym : {false, true}) {
      CAPTURE(to_string(m));
      CAPTURE(sym);
      observer_options o;
      o.method = m;
      o.how = preset::onnxruntime;
      o.spec.symmetric = sym;
      o.entropy.bins = o.percentile.bins = 256;
      o.percentile.percentile = 99.9;
      activation_observer a(o);
      a.observe(make_view(v.data(), {2000}));
      a.observe(make_view(v.data() + 2000, {1000}));
      const auto state = a.to_state();
      CHECK(state.channels[0].ort_histogram.edges.size() ==
            (m == calib_method::percentile && sym ? state.channels[0].ort_histogram.counts.size() + 1 : 0));
      CHECK(state.channels[0].ort_histogram.counts.size() > 256);  // grown
      const auto back = activation_observer::from_state(
          o, io::observer_state_from_json(nlohmann::json::parse(io::to_json(state).dump())));
      const auto ra = a.result(), rb = back.result();
      CHECK(ra.ranges[0].min == rb.ranges[0].min);
      CHECK(ra.ranges[0].max == rb.ranges[0].max);
    }
  }
}

TEST_CASE("malformed observer state JSON names the key") {
  observer_options o;
  activation_observer a(o);
  std::vector<float> v{1, 2, 3};
  a.observe(make_view(v.data(), {3}));
  auto j = io::to_json(a.to_state());
  j["channels"][0].erase("histogram");
  try {
    io::observer_state_from_json(j);
    FAIL("no error");
  } catch (const amctq::error& e) {
    CHECK(e.code() == errc::parse);
    CHECK(std::string(e.what()).find("histogram") != std::string::npos);
  }
  j = io::to_json(a.to_state());
  j["channels"][0]["histogram"]["counts"] = "oops";
  CHECK_THROWS_AS(io::observer_state_from_json(j), amctq::error);
  j = io::to_json(a.to_state());
  j["format"] = "other";
  CHECK_THROWS_AS(io::observer_state_from_json(j), amctq::error);
  j = io::to_json(a.to_state());
  j["channels"][0]["histogram"]["base"] = 12345;  // inconsistent with min/max
  CHECK_THROWS_AS(activation_observer::from_state(o, io::observer_state_from_json(j)), amctq::error);
}

}  // namespace test_observer_json
