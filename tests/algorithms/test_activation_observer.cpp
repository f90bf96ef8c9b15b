// activation_observer: every method per-tensor and per-channel; order independence (the same
// data shuffled into other batchings and shards merged gives identical params); state round
// trips; NaN/Inf, empty, constant and all-zero tensors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "amctq/algorithms/observer.hpp"

using namespace amctq;

namespace {

std::vector<float> mixed_data(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.3f, 1.0f);
  std::exponential_distribution<float> ed(1.0f);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = (i % 3 == 0) ? ed(rng) * 2.0f : nd(rng);
  for (std::size_t i = 0; i < n; i += 4001) v[i] = 25.0f;  // outliers
  return v;
}

observer_options opts(calib_method m, bool symmetric = false, int axis = per_tensor) {
  observer_options o;
  o.method = m;
  o.spec.symmetric = symmetric;
  o.spec.axis = axis;
  o.histogram_capacity = 4096;
  o.tail_capacity = 256;
  return o;
}

bool same(const calib_result& a, const calib_result& b) {
  if (a.ranges.size() != b.ranges.size()) return false;
  for (std::size_t c = 0; c < a.ranges.size(); ++c)
    if (a.ranges[c].min != b.ranges[c].min || a.ranges[c].max != b.ranges[c].max) return false;
  return a.params.scale == b.params.scale && a.params.zero_point == b.params.zero_point;
}

// Observes v (as rows of `cols` values, per-channel along axis 1 when asked) in batches of
// `rows_per_batch` rows, alternating between two shards merged at the end.
calib_result calibrate(const observer_options& o, const std::vector<float>& v, std::size_t cols,
                       std::size_t rows_per_batch) {
  activation_observer a(o), b(o);
  const std::size_t rows = v.size() / cols;
  bool to_a = true;
  for (std::size_t r = 0; r < rows; r += rows_per_batch) {
    const std::size_t n = std::min(rows_per_batch, rows - r);
    const auto view = make_view(v.data() + r * cols, {static_cast<std::ptrdiff_t>(n), static_cast<std::ptrdiff_t>(cols)});
    (to_a ? a : b).observe(view);
    to_a = !to_a;
  }
  b.merge(a);
  return b.result();
}

// Shuffles whole rows so per-channel data stays in its column.
std::vector<float> shuffle_rows(const std::vector<float>& v, std::size_t cols, unsigned seed) {
  std::vector<std::size_t> idx(v.size() / cols);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::mt19937 rng(seed);
  std::shuffle(idx.begin(), idx.end(), rng);
  std::vector<float> out;
  out.reserve(v.size());
  for (std::size_t i : idx) out.insert(out.end(), v.begin() + static_cast<std::ptrdiff_t>(i * cols),
                                       v.begin() + static_cast<std::ptrdiff_t>((i + 1) * cols));
  return out;
}

}  // namespace

TEST_CASE("every order-independent method: shuffled batchings and shard merges give identical params") {
  const std::size_t cols = 8;
  const auto v = mixed_data(cols * 6000, 11);
  for (calib_method m : all_calib_methods) {
    if (m == calib_method::moving_average || m == calib_method::pot_diffs) continue;
    for (int axis : {per_tensor, 1}) {
      for (bool sym : {true, false}) {
        const std::string method = to_string(m);
    CAPTURE(method);
        CAPTURE(axis);
        CAPTURE(sym);
        const auto o = opts(m, sym, axis);
        const calib_result ref = calibrate(o, v, cols, 6000);
        const calib_result r1 = calibrate(o, shuffle_rows(v, cols, 1), cols, 37);
        const calib_result r2 = calibrate(o, shuffle_rows(v, cols, 2), cols, 1001);
        CHECK(same(ref, r1));
        CHECK(same(ref, r2));
        CHECK(ref.ranges.size() == (axis == per_tensor ? 1u : cols));
        validate(ref.params);
      }
    }
  }
}

TEST_CASE("per-channel equals per-tensor on each channel's own data, on any axis") {
  const std::size_t rows = 3000, cols = 5;
  auto v = mixed_data(rows * cols, 12);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) v[r * cols + c] *= static_cast<float>(c + 1);
  for (calib_method m : {calib_method::minmax, calib_method::percentile, calib_method::entropy, calib_method::mse,
                         calib_method::ifmr, calib_method::hfmg, calib_method::aciq_laplace}) {
    const std::string method = to_string(m);
    CAPTURE(method);
    for (int axis : {0, 1}) {
      activation_observer pc(opts(m, false, axis));
      // axis 0: view the data transposed (channels first) through strides.
      if (axis == 1) pc.observe(make_view(v.data(), {static_cast<std::ptrdiff_t>(rows), static_cast<std::ptrdiff_t>(cols)}));
      else
        pc.observe(make_strided_view(v.data(), {static_cast<std::ptrdiff_t>(cols), static_cast<std::ptrdiff_t>(rows)},
                                     {1, static_cast<std::ptrdiff_t>(cols)}));
      const auto res = pc.result();
      REQUIRE(res.ranges.size() == cols);
      CHECK(res.params.axis == axis);
      for (std::size_t c = 0; c < cols; ++c) {
        std::vector<float> col(rows);
        for (std::size_t r = 0; r < rows; ++r) col[r] = v[r * cols + c];
        activation_observer pt(opts(m, false));
        pt.observe(make_view(col.data(), {static_cast<std::ptrdiff_t>(rows)}));
        const auto want = pt.result();
        CHECK(res.ranges[c].min == want.ranges[0].min);
        CHECK(res.ranges[c].max == want.ranges[0].max);
      }
    }
  }
}

TEST_CASE("state round trip restores an observer that gives the same result and merges on") {
  const auto v = mixed_data(20000, 13);
  for (calib_method m : all_calib_methods) {
    const std::string method = to_string(m);
    CAPTURE(method);
    const auto o = opts(m, false);
    activation_observer a(o);
    a.observe(make_view(v.data(), {10000}));
    activation_observer b = activation_observer::from_state(o, a.to_state());
    CHECK(same(a.result(), b.result()));
    if (m == calib_method::moving_average) {
      CHECK_THROWS_AS(b.merge(a), amctq::error);
      continue;
    }
    activation_observer whole(o);
    whole.observe(make_view(v.data(), {10000}));
    whole.observe(make_view(v.data() + 10000, {10000}));
    activation_observer rest(o);
    rest.observe(make_view(v.data() + 10000, {10000}));
    b.merge(rest);
    CHECK(same(whole.result(), b.result()));
  }
  auto o = opts(calib_method::mse);
  activation_observer a(o);
  a.observe(make_view(v.data(), {100}));
  auto st = a.to_state();
  st.method = "entropy";
  CHECK_THROWS_AS(activation_observer::from_state(o, st), amctq::error);
}

TEST_CASE("NaN/Inf: an error naming the tensor, or skipped on request") {
  std::vector<float> v{1.0f, -2.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f, std::numeric_limits<float>::infinity()};
  for (calib_method m : all_calib_methods) {
    const std::string method = to_string(m);
    CAPTURE(method);
    auto o = opts(m);
    o.name = "conv1.input";
    activation_observer a(o);
    try {
      a.observe(make_view(v.data(), {5}));
      FAIL("no error");
    } catch (const amctq::error& e) {
      CHECK(e.code() == errc::non_finite);
      CHECK(std::string(e.what()).find("conv1.input") != std::string::npos);
    }
    o.skip_nonfinite = true;
    activation_observer b(o);
    b.observe(make_view(v.data(), {5}));
    CHECK(b.nonfinite() == 2);
    const auto r = b.result();
    if (m != calib_method::pot_diffs) {  // a power-of-two grid may reach past the data
      CHECK(r.ranges[0].max <= 3.0f);
      CHECK(r.ranges[0].min >= -2.0f);
    }
    validate(r.params);
  }
}

TEST_CASE("empty, constant and all-zero tensors give valid params") {
  const std::vector<float> zeros(64, 0.0f), constant(64, 1.5f), negative(64, -0.75f);
  for (calib_method m : all_calib_methods) {
    for (bool sym : {true, false}) {
      const std::string method = to_string(m);
    CAPTURE(method);
      CAPTURE(sym);
      activation_observer e(opts(m, sym));
      e.observe(make_view(zeros.data(), {0}));
      auto r = e.result();
      validate(r.params);
      CHECK(r.ranges[0].min == 0.0f);
      CHECK(r.ranges[0].max == 0.0f);
      activation_observer z(opts(m, sym));
      z.observe(make_view(zeros.data(), {64}));
      r = z.result();
      validate(r.params);
      if (m != calib_method::pot_diffs) CHECK(r.params.scale[0] == 1.0f);
      for (const auto* c : {&constant, &negative}) {
        activation_observer k(opts(m, sym));
        k.observe(make_view(c->data(), {64}));
        r = k.result();
        validate(r.params);
        const float x = c->front();
        // The constant must be representable within half a step.
        const float q = std::nearbyint(x / r.params.scale[0]) + static_cast<float>(r.params.zero_point[0]);
        const float back = (std::clamp(q, float(r.params.qmin), float(r.params.qmax)) - r.params.zero_point[0]) * r.params.scale[0];
        CHECK(std::fabs(back - x) <= 0.5f * r.params.scale[0] + 1e-6f);
      }
    }
  }
}

TEST_CASE("bad arguments are errors that name them") {
  auto o = opts(calib_method::ifmr);
  o.ifmr.search_step = 0.0;
  CHECK_THROWS_AS(activation_observer{o}, amctq::error);
  o = opts(calib_method::entropy);
  o.entropy.levels = 5000;
  CHECK_THROWS_AS(activation_observer{o}, amctq::error);
  o = opts(calib_method::mse, false, 3);
  activation_observer a(o);
  std::vector<float> v(6, 1.0f);
  CHECK_THROWS_AS(a.observe(make_view(v.data(), {2, 3})), amctq::error);
  o = opts(calib_method::mse, false, 1);
  activation_observer b(o);
  b.observe(make_view(v.data(), {2, 3}));
  CHECK_THROWS_AS(b.observe(make_view(v.data(), {3, 2})), amctq::error);
  CHECK_THROWS_AS(calib_method_from_string("kl"), amctq::error);
  CHECK(calib_method_from_string("hfmg") == calib_method::hfmg);
}

TEST_CASE("IFMR / percentile: one large batch (single fused pass) equals many small ones, state and all") {
  // 1M values is above the observer's fuse threshold; 1000-row batches of 8 stay below it.
  const std::size_t cols = 8;
  auto v = mixed_data(cols * 131072, 5);
  v[v.size() / 2] = -40.0f;  // the range grows late in the batch: the grid must re-bin mid-pass
  v[v.size() - 3] = 90.0f;
  for (calib_method m : {calib_method::ifmr, calib_method::percentile}) {
    const std::string method = to_string(m);
    CAPTURE(method);
    const auto o = opts(m);
    activation_observer whole(o), pieces(o);
    whole.observe(make_view(v.data(), {static_cast<std::ptrdiff_t>(v.size() / cols), static_cast<std::ptrdiff_t>(cols)}));
    for (std::size_t off = 0; off < v.size(); off += 1000 * cols)
      pieces.observe(make_view(v.data() + off, {static_cast<std::ptrdiff_t>(std::min(1000 * cols, v.size() - off))}));
    const observer_state a = whole.to_state(), b = pieces.to_state();
    REQUIRE(a.channels.size() == 1);
    CHECK(a.channels[0].histogram.counts == b.channels[0].histogram.counts);
    CHECK(a.channels[0].histogram.exponent == b.channels[0].histogram.exponent);
    CHECK(a.channels[0].tails.largest == b.channels[0].tails.largest);
    CHECK(a.channels[0].tails.smallest == b.channels[0].tails.smallest);
    CHECK(same(whole.result(), pieces.result()));

    // A rejected large batch (NaN near its end) leaves the observer exactly as it was.
    auto bad = v;
    bad[bad.size() - 10] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(whole.observe(make_view(bad.data(), {static_cast<std::ptrdiff_t>(bad.size())})), amctq::error);
    const observer_state c = whole.to_state();
    CHECK(c.channels[0].histogram.counts == a.channels[0].histogram.counts);
    CHECK(c.channels[0].tails.largest == a.channels[0].tails.largest);
    // Skipped on request: the batch counts except its one NaN.
    auto so = o;
    so.skip_nonfinite = true;
    activation_observer skip(so);
    skip.observe(make_view(bad.data(), {static_cast<std::ptrdiff_t>(bad.size())}));
    CHECK(skip.nonfinite() == 1);
    CHECK(skip.to_state().channels[0].histogram.counts != a.channels[0].histogram.counts);
  }
}
