// activation_observer: every method per-tensor and per-channel; order independence (the same
// data shuffled into other batchings and shards merged gives identical params); state round
// trips; NaN/Inf, empty (an error naming the tensor), constant and all-zero tensors; pot_diffs
// near FLT_MAX.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "amctq/algorithms/observer.hpp"

namespace test_activation_observer {

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

TEST_CASE("pot_diffs: the same batches in any order and any shard split give identical params") {
  // pot_diffs keeps one statistic per batch, so the batching is part of its input (documented);
  // the order of the batches and the shards they were observed in are not.
  const std::size_t cols = 8, rows_per_batch = 500, batches = 12;
  const auto v = mixed_data(cols * rows_per_batch * batches, 21);
  for (batch_statistic st : {batch_statistic::modal, batch_statistic::max, batch_statistic::mean, batch_statistic::median}) {
    for (int axis : {per_tensor, 1}) {
      CAPTURE(axis);
      auto o = opts(calib_method::pot_diffs, true, axis);
      o.statistic = st;
      auto batch = [&](std::size_t b) {
        return make_view(v.data() + b * rows_per_batch * cols,
                         {static_cast<std::ptrdiff_t>(rows_per_batch), static_cast<std::ptrdiff_t>(cols)});
      };
      activation_observer in_order(o);
      for (std::size_t b = 0; b < batches; ++b) in_order.observe(batch(b));
      std::vector<std::size_t> order(batches);
      for (std::size_t b = 0; b < batches; ++b) order[b] = b;
      for (unsigned seed : {1u, 2u, 3u}) {
        std::mt19937 rng(seed);
        std::shuffle(order.begin(), order.end(), rng);
        activation_observer shards[3] = {activation_observer(o), activation_observer(o), activation_observer(o)};
        for (std::size_t k = 0; k < batches; ++k) shards[(k * seed) % 3].observe(batch(order[k]));
        shards[2].merge(shards[0]);
        shards[1].merge(shards[2]);
        CHECK(same(in_order.result(), shards[1].result()));
      }
    }
  }
}

TEST_CASE("per-channel equals per-tensor on each channel's own data, on any axis") {
  const std::size_t rows = 3000, cols = 5;
  auto v = mixed_data(rows * cols, 12);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) v[r * cols + c] *= static_cast<float>(c + 1);
  for (calib_method m : all_calib_methods) {
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

namespace {

// Data holding NaN / inf at the given positions, and the same data without them.
struct dirty_data {
  std::vector<float> with, without;
  std::size_t bad = 0;
};

dirty_data dirty(std::size_t n, std::size_t nan_at, std::size_t nan_run, unsigned seed, bool infinities = true) {
  dirty_data d;
  d.with = mixed_data(n, seed);
  for (std::size_t i = nan_at; i < nan_at + nan_run; ++i) d.with[i] = std::numeric_limits<float>::quiet_NaN();
  if (infinities) {
    d.with[n / 3] = std::numeric_limits<float>::infinity();
    d.with[n - 1] = -std::numeric_limits<float>::infinity();
  }
  for (float x : d.with) {
    if (std::isfinite(x)) d.without.push_back(x);
    else ++d.bad;
  }
  return d;
}

}  // namespace

TEST_CASE("NaN/Inf: an error naming the tensor, or skipped on request, on every path") {
  // Sizes reach the scalar tail, whole SIMD widths of NaN (a run of 32 inside the tails' cuts),
  // and the single fused pass of a large batch (>= 2^18 values).
  const dirty_data cases[] = {dirty(5, 2, 1, 1),         dirty(200, 64, 32, 2),
                              dirty(200, 128, 32, 5, false), dirty(20000, 16000, 32, 3),
                              dirty(std::size_t{1} << 19, 300000, 48, 4)};
  for (const dirty_data& d : cases) {
    for (calib_method m : all_calib_methods) {
      const std::string method = to_string(m);
      const std::size_t n = d.with.size();
      CAPTURE(method);
      CAPTURE(n);
      auto o = opts(m);
      o.name = "conv1.input";
      activation_observer a(o);
      try {
        a.observe(make_view(d.with.data(), {static_cast<std::ptrdiff_t>(n)}));
        FAIL("no error");
      } catch (const amctq::error& e) {
        CHECK(e.code() == errc::non_finite);
        CHECK(std::string(e.what()).find("conv1.input") != std::string::npos);
      }
      o.skip_nonfinite = true;
      activation_observer skipping(o), clean(o);
      skipping.observe(make_view(d.with.data(), {static_cast<std::ptrdiff_t>(n)}));
      clean.observe(make_view(d.without.data(), {static_cast<std::ptrdiff_t>(d.without.size())}));
      CHECK(skipping.nonfinite() == d.bad);
      // Skipping means exactly that: the result is the one of the finite values alone.
      CHECK(same(skipping.result(), clean.result()));
      validate(skipping.result().params);
    }
  }
}

TEST_CASE("NaN/Inf per channel: counted in every channel, and a channel or batch with no finite value is harmless") {
  const std::size_t rows = 400, cols = 4;
  auto v = mixed_data(rows * cols, 31);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t r = 0; r < rows; ++r) v[r * cols + 2] = nan;  // channel 2: nothing finite
  v[7 * cols + 1] = std::numeric_limits<float>::infinity();
  const std::vector<float> all_nan(rows * cols, nan);
  for (calib_method m : all_calib_methods) {
    const std::string method = to_string(m);
    CAPTURE(method);
    auto o = opts(m, false, 1);
    o.name = "fc.input";
    activation_observer strict(o);
    CHECK_THROWS_WITH_AS(strict.observe(make_view(v.data(), {static_cast<std::ptrdiff_t>(rows), static_cast<std::ptrdiff_t>(cols)})),
                         doctest::Contains("fc.input"), amctq::error);
    o.skip_nonfinite = true;
    activation_observer a(o);
    a.observe(make_view(all_nan.data(), {static_cast<std::ptrdiff_t>(rows), static_cast<std::ptrdiff_t>(cols)}));
    a.observe(make_view(v.data(), {static_cast<std::ptrdiff_t>(rows), static_cast<std::ptrdiff_t>(cols)}));
    CHECK(a.nonfinite() == rows * cols + rows + 1);
    const auto r = a.result();
    validate(r.params);
    REQUIRE(r.ranges.size() == cols);
    CHECK(r.ranges[2].min == 0.0f);  // no data: [0, 0]
    CHECK(r.ranges[2].max == 0.0f);
    // The other channels are what their finite values alone give.
    for (std::size_t c : {0u, 1u, 3u}) {
      std::vector<float> col;
      for (std::size_t i = 0; i < rows; ++i)
        if (std::isfinite(v[i * cols + c])) col.push_back(v[i * cols + c]);
      activation_observer pt(opts(m));
      pt.observe(make_view(col.data(), {static_cast<std::ptrdiff_t>(col.size())}));
      CHECK(r.ranges[c].min == pt.result().ranges[0].min);
      CHECK(r.ranges[c].max == pt.result().ranges[0].max);
    }
    // Per-tensor: an all-NaN batch between two good ones changes nothing.
    auto pto = opts(m);
    pto.skip_nonfinite = true;
    activation_observer with_gap(pto), without(pto);
    for (auto* ob : {&with_gap, &without}) ob->observe(make_view(v.data(), {static_cast<std::ptrdiff_t>(cols), static_cast<std::ptrdiff_t>(2)}));
    with_gap.observe(make_view(all_nan.data(), {static_cast<std::ptrdiff_t>(all_nan.size())}));
    for (auto* ob : {&with_gap, &without}) ob->observe(make_view(v.data() + 8 * cols, {static_cast<std::ptrdiff_t>(100)}));
    CHECK(same(with_gap.result(), without.result()));
  }
}

TEST_CASE("per-channel: empty, constant and all-zero channels give valid params; a zero-channel axis is an error") {
  const std::size_t rows = 64, cols = 3;
  std::vector<float> v(rows * cols);
  for (std::size_t r = 0; r < rows; ++r) {
    v[r * cols + 0] = 0.0f;
    v[r * cols + 1] = 1.5f;
    v[r * cols + 2] = -0.75f;
  }
  for (calib_method m : all_calib_methods) {
    for (bool sym : {true, false}) {
      const std::string method = to_string(m);
      CAPTURE(method);
      CAPTURE(sym);
      auto eo = opts(m, sym, 1);
      eo.name = "conv1.input";
      activation_observer e(eo);  // every channel empty: no data at all is an error naming the tensor
      e.observe(make_view(v.data(), {0, static_cast<std::ptrdiff_t>(cols)}));
      CHECK_THROWS_WITH_AS(e.result(), "[amctq.invalid_argument] activation_observer::result: tensor 'conv1.input' has "
                                       "no data to calibrate: every batch was empty", amctq::error);
      activation_observer k(opts(m, sym, 1));
      calib_result r;
      k.observe(make_view(v.data(), {static_cast<std::ptrdiff_t>(rows), static_cast<std::ptrdiff_t>(cols)}));
      r = k.result();
      validate(r.params);
      if (m != calib_method::pot_diffs) CHECK(r.params.scale[0] == 1.0f);
      for (std::size_t c = 1; c < cols; ++c) {
        const float x = v[c], s = r.params.scale[c];
        const float q = std::nearbyint(x / s) + static_cast<float>(r.params.zero_point[c]);
        const float back = (std::clamp(q, float(r.params.qmin), float(r.params.qmax)) - r.params.zero_point[c]) * s;
        CHECK(std::fabs(back - x) <= 0.5f * s + 1e-6f);
      }
      activation_observer none(opts(m, sym, 1));
      CHECK_THROWS_WITH_AS(none.observe(make_view(v.data(), {4, 0})), doctest::Contains("extent 0"), amctq::error);
    }
  }
}

TEST_CASE("pot_diffs near FLT_MAX: the grid's range saturates to float instead of becoming infinite") {
  const std::vector<float> big = {-3e38f, 3e38f, 1.0f, -2.0f};
  auto o = opts(calib_method::pot_diffs, true);
  activation_observer ob(o);
  ob.observe(make_view(big.data(), {4}));
  const calib_result r = ob.result();
  CHECK(std::isfinite(r.ranges[0].min));
  CHECK(std::isfinite(r.ranges[0].max));
  CHECK(r.ranges[0].min == -std::numeric_limits<float>::max());  // -128 * 2^121 is past FLT_MAX
  CHECK(r.ranges[0].max == std::ldexp(127.0f, 121));
  CHECK(r.params.scale[0] == std::ldexp(1.0f, 121));
  // Asymmetric, AMCT's float span (max - min) overflows: an overflow error quoting a finite range.
  activation_observer asym(opts(calib_method::pot_diffs, false));
  asym.observe(make_view(big.data(), {4}));
  CHECK_THROWS_WITH_AS(asym.result(), "[amctq.overflow] params_from_range: range [-3.40282347e+38, 3.37623911e+38] gives "
                                      "a scale that is not finite", amctq::error);
  // IFMR's clip ratios above 1 likewise: its range was [min, inf] on data at FLT_MAX.
  const std::vector<float> top = {-3.4e38f, 3.4e38f, 1.0f};
  activation_observer ifmr(opts(calib_method::ifmr, true));
  ifmr.observe(make_view(top.data(), {3}));
  const calib_result ri = ifmr.result();
  CHECK(std::isfinite(ri.ranges[0].min));
  CHECK(std::isfinite(ri.ranges[0].max));
  CHECK(std::isfinite(ri.params.scale[0]));
}

TEST_CASE("empty (an error naming the tensor), constant and all-zero tensors give valid params") {
  const std::vector<float> zeros(64, 0.0f), constant(64, 1.5f), negative(64, -0.75f);
  for (calib_method m : all_calib_methods) {
    for (bool sym : {true, false}) {
      const std::string method = to_string(m);
    CAPTURE(method);
      CAPTURE(sym);
      auto eo = opts(m, sym);
      eo.name = "fc.input";
      activation_observer e(eo);  // no data is an error naming the tensor, not a silent scale 1
      CHECK_THROWS_WITH_AS(e.result(), "[amctq.invalid_argument] activation_observer::result: tensor 'fc.input' has no "
                                       "data to calibrate: no batch was observed", amctq::error);
      e.observe(make_view(zeros.data(), {0}));
      CHECK_THROWS_WITH_AS(e.result(), doctest::Contains("tensor 'fc.input' has no data to calibrate: every batch was empty"),
                           amctq::error);
      eo.skip_nonfinite = true;
      activation_observer nan_only(eo);
      const std::vector<float> nans(5, std::numeric_limits<float>::quiet_NaN());
      nan_only.observe(make_view(nans.data(), {5}));
      nan_only.observe(make_view(zeros.data(), {0}));
      CHECK_THROWS_WITH_AS(nan_only.result(), "[amctq.non_finite] activation_observer::result: tensor 'fc.input' has no "
                                              "data to calibrate: all 5 values were NaN/inf (skipped)", amctq::error);
      nan_only.observe(make_view(zeros.data(), {1}));  // one finite value is enough
      calib_result r = nan_only.result();
      validate(r.params);
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

TEST_CASE("histogram methods: one large batch (single fused pass) equals many small ones, state and all") {
  // 1M values is above the observer's fuse threshold; 1000-row batches of 8 stay below it.
  // Percentile and IFMR take their min/max from the tails, the others from a min/max pass.
  const std::size_t cols = 8;
  auto v = mixed_data(cols * 131072, 5);
  v[v.size() / 2] = -40.0f;  // the range grows late in the batch: the grid must re-bin mid-pass
  v[v.size() - 3] = 90.0f;
  for (calib_method m : {calib_method::ifmr, calib_method::percentile, calib_method::entropy, calib_method::mse,
                         calib_method::hfmg, calib_method::aciq_laplace, calib_method::aciq_gaussian}) {
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
    CHECK(a.channels[0].min == b.channels[0].min);
    CHECK(a.channels[0].max == b.channels[0].max);
    CHECK(a.channels[0].min == -40.0f);
    CHECK(a.channels[0].max == 90.0f);
    CHECK(a.channels[0].histogram.min == b.channels[0].histogram.min);
    CHECK(a.channels[0].histogram.max == b.channels[0].histogram.max);
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

    // Whole blocks with nothing finite at the start of a fused pass (the grid does not exist
    // yet) are skipped; the result is that of the finite values alone.
    auto lead = v;
    const std::size_t nan_run = 10000;
    std::fill(lead.begin(), lead.begin() + nan_run, std::numeric_limits<float>::quiet_NaN());
    activation_observer led(so), finite_only(o);
    led.observe(make_view(lead.data(), {static_cast<std::ptrdiff_t>(lead.size())}));
    finite_only.observe(make_view(lead.data() + nan_run, {static_cast<std::ptrdiff_t>(lead.size() - nan_run)}));
    CHECK(led.nonfinite() == nan_run);
    CHECK(led.to_state().channels[0].histogram.counts == finite_only.to_state().channels[0].histogram.counts);
    CHECK(same(led.result(), finite_only.result()));
  }
}

TEST_CASE("fused pass: a wrong tail guess, tied tails and constant data still give the exact tails") {
  // The fused pass offers the tails only the values past cuts guessed from a strided sample,
  // then checks the guess. Data built so that the sample sees only huge values makes the guess
  // wrong (the batch holds too few values past it); post-ReLU zeros tie the lower tail and
  // constant data ties both, which must give no cut on that side. All equal small batches.
  const std::size_t n = std::size_t{1} << 20;
  auto adversarial = mixed_data(n, 8);
  const std::size_t stride = n / 512;  // guess_tail_cuts reads 512 runs of 32
  for (std::size_t r = 0; r < 512; ++r)
    for (std::size_t j = 0; j < 32; ++j) adversarial[r * stride + j] = 1000.0f + static_cast<float>(r * 32 + j);
  auto relu = mixed_data(n, 9);
  for (float& x : relu) x = std::fmax(x, 0.0f);
  const std::vector<float> constant(n, 3.0f);

  {  // The adversarial guess is indeed wrong, so the test reaches the fallback.
    const tail_cuts g = guess_tail_cuts(adversarial.data(), n, 256);
    extreme_values exact(256);
    exact.add(adversarial.data(), n);
    CHECK(g.hi >= 1000.0f);
    CHECK(!exact.beyond(g));
    const tail_cuts tied = guess_tail_cuts(relu.data(), n, 256);
    CHECK(tied.lo == std::numeric_limits<float>::infinity());  // no lower cut at the zeros
    CHECK(tied.hi > 0.0f);
  }
  const std::vector<float>* sets[] = {&adversarial, &relu, &constant};
  for (const std::vector<float>* data : sets) {
    for (calib_method m : {calib_method::ifmr, calib_method::percentile}) {
      const std::string method = to_string(m);
      CAPTURE(method);
      const auto o = opts(m);
      activation_observer whole(o), pieces(o);
      whole.observe(make_view(data->data(), {static_cast<std::ptrdiff_t>(n)}));
      for (std::size_t off = 0; off < n; off += 8000)
        pieces.observe(make_view(data->data() + off, {static_cast<std::ptrdiff_t>(std::min<std::size_t>(8000, n - off))}));
      const observer_state a = whole.to_state(), b = pieces.to_state();
      CHECK(a.channels[0].tails.largest == b.channels[0].tails.largest);
      CHECK(a.channels[0].tails.smallest == b.channels[0].tails.smallest);
      CHECK(a.channels[0].histogram.counts == b.channels[0].histogram.counts);
      CHECK(same(whole.result(), pieces.result()));
    }
  }
}

}  // namespace test_activation_observer
