// Each search against an independent brute-force version written from the reference text:
// IFMR on raw data (AMCT C++ loss), HFMG with AMCT's O(bins) loss, TensorRT KL computed bin by
// bin, MSE on raw data, exact percentiles, ACIQ's published alphas, Vitis diffs on raw data.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "amctq/algorithms/observer.hpp"

namespace test_activation_methods {

using namespace amctq;

namespace {

std::vector<float> laplace_outliers(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> e(1.0f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(n);
  for (auto& x : v) x = (sign(rng) ? 1.0f : -1.0f) * e(rng) * 0.5f;
  for (std::size_t i = 0; i < n; i += 2003) v[i] = 12.0f + static_cast<float>(i % 7);
  return v;
}

std::vector<float> relu_normal(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = std::fmax(d(rng), 0.0f);
  return v;
}

binned_histogram histogram_of(const std::vector<float>& v) {
  pow2_histogram h;
  h.add(v.data(), v.size());
  return h.to_binned();
}

double data_mse(const std::vector<float>& v, const quant_params& p) {
  double e = 0.0;
  for (float x : v) {
    const float q = std::clamp(std::nearbyint(x / p.scale[0]) + p.zero_point[0], float(p.qmin), float(p.qmax));
    const double d = (q - p.zero_point[0]) * p.scale[0] - x;
    e += d * d;
  }
  return e / static_cast<double>(v.size());
}

}  // namespace

TEST_CASE("IFMR matches AMCT's IFMR on the raw data within one candidate step") {
  for (unsigned seed : {1u, 2u}) {
    for (bool sym : {true, false}) {
      const auto v = seed == 1 ? laplace_outliers(60000, seed) : relu_normal(60000, seed);
      quant_spec spec;
      spec.symmetric = sym;
      extreme_values t;
      t.add(v.data(), v.size());
      const auto h = histogram_of(v);
      const ifmr_options o;
      const calib_range got = ifmr_range(t, h, spec, preset::amct, o);
      // AMCT C++ on the data: percentile init, 60 ratios, clip-then-round loss, first argmin.
      std::vector<float> s = v;
      std::sort(s.begin(), s.end());
      const std::size_t n = s.size();
      const std::size_t k = n - static_cast<std::size_t>(std::floor(o.max_percentile * n));
      const double max0 = std::max(0.0f, s[n - k]), min0 = std::min(0.0f, s[k - 1]);
      double best = 1e300, best_r = 0.0;
      for (int i = 0; i < 60; ++i) {
        const double r = 0.7 + 0.01 * i;
        double loss = 0.0;
        double lo, hi, sc;
        if (sym) {
          const double a = std::fabs(max0) > std::fabs(min0) ? max0 : min0;
          const double c = r * std::fabs(a);
          sc = c / (a > 0 ? 127.0 : 128.0);
          lo = -c;
          hi = c;
        } else {
          hi = r * max0;
          lo = min0;
          sc = (hi - lo) / 255.0;
        }
        for (float x : v) {
          const double d = std::round(std::clamp<double>(x, lo, hi) / sc) * sc - x;
          loss += d * d;
        }
        if (loss < best) {
          best = loss;
          best_r = r;
        }
      }
      const double ref = sym ? std::max(std::fabs(max0), std::fabs(min0)) : max0;
      const double got_r = sym ? std::max(std::fabs(got.min), std::fabs(got.max)) / ref : got.max / ref;
      CAPTURE(seed);
      CAPTURE(sym);
      CHECK(std::fabs(got_r - best_r) <= 0.0101);
      if (!sym) CHECK(got.min == static_cast<float>(min0));
    }
  }
  CHECK(ifmr_candidate_count(ifmr_options{}) == 60);
}

TEST_CASE("percentile: AMCT's k-th largest / smallest exactly") {
  const auto v = laplace_outliers(200000, 3);
  std::vector<float> s = v;
  std::sort(s.begin(), s.end());
  extreme_values t;
  t.add(v.data(), v.size());
  const auto h = histogram_of(v);
  percentile_options o;
  o.percentile = 99.99;
  const auto k = amct_rank(o.percentile / 100.0, s.size());
  CHECK(k >= 20);
  CHECK(k <= 21);
  const auto r = percentile_range(t, h, quant_spec{}, preset::amct, o);
  CHECK(r.max == s[s.size() - k]);
  CHECK(r.min == s[k - 1]);
  // Beyond the tails buffer the histogram interpolation stays within one fine bin.
  extreme_values small(8);
  small.add(v.data(), v.size());
  const auto r2 = percentile_range(small, h, quant_spec{}, preset::amct, o);
  CHECK(std::fabs(r2.max - r.max) <= h.width);
  CHECK(amct_rank(0.999999, 100000) == 1);
  CHECK(amct_rank(0.999, 100000) == 100);
}

// TensorRT's KL of the window [a, b) of a histogram, bin by bin: the mass outside folded into
// the end bins, each level's mass spread evenly over its non-empty bins.
double kl_bin_by_bin(const std::vector<double>& counts, std::size_t a, std::size_t b, std::size_t levels) {
  std::vector<double> p(counts.begin() + a, counts.begin() + b);
  const std::size_t len = b - a;
  double left = 0.0, right = 0.0;
  for (std::size_t k = 0; k < a; ++k) left += counts[k];
  for (std::size_t k = b; k < counts.size(); ++k) right += counts[k];
  std::vector<double> q(len, 0.0);
  const std::size_t per = len / levels;
  for (std::size_t j = 0; j < levels; ++j) {
    const std::size_t s = j * per, e = j + 1 == levels ? len : s + per;
    double mass = 0.0;
    std::size_t nz = 0;
    for (std::size_t k = s; k < e; ++k) {
      mass += p[k];
      nz += p[k] > 0;
    }
    for (std::size_t k = s; k < e; ++k)
      if (p[k] > 0) q[k] = mass / nz;
  }
  p.front() += left;  // after q: the outliers enter P only, as in TensorRT
  p.back() += right;
  double sp = 0, sq = 0, kl = 0;
  for (std::size_t k = 0; k < len; ++k) {
    sp += p[k];
    sq += q[k];
  }
  for (std::size_t k = 0; k < len; ++k) {
    if (p[k] == 0) continue;
    if (q[k] == 0) return std::numeric_limits<double>::infinity();
    kl += p[k] / sp * std::log((p[k] / sp) / (q[k] / sq));
  }
  return kl;
}

TEST_CASE("entropy: a spike of exact zeros does not cap the window (issue 17)") {
  // Post-ReLU data: half the values are exactly 0. Before, KL charged the spike ~P0 log 2 as
  // soon as the zero level held two bins, so no window wider than 2 x levels bins won: the
  // range stopped at 1/4 (asymmetric, 256 of 2048 bins) or 1/8 (symmetric) of the data's.
  for (bool sym : {false, true}) {
    CAPTURE(sym);
    const auto v = relu_normal(100000, 11);
    quant_spec spec;
    spec.symmetric = sym;
    const auto h = histogram_of(v);
    const auto r = entropy_range(h, spec);
    CHECK(r.max > 0.5f * h.max);
    const auto pe = params_from_range(r.min, r.max, spec), pm = params_from_range(h.min, h.max, spec);
    CHECK(data_mse(v, pe) < 2.0 * data_mse(v, pm));  // before: hundreds of times minmax's
  }
}

TEST_CASE("entropy: a spike just above 0 (a Softmax output) does not cap the window (issue 17)") {
  // Attention weights: rows of a softmax over 49 peaked logits, all > 0, most of the mass in
  // the first bins. The range's low end is made 0 on export, so that bin sits on the zero
  // level like exact zeros; left unflattened it kept the window at 2 x levels bins.
  std::mt19937 rng(23);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> v;
  for (int row = 0; row < 4000; ++row) {
    float e[49], sum = 0.0f;
    for (float& x : e) sum += (x = std::exp(d(rng)));
    for (float x : e) v.push_back(x / sum);
  }
  quant_spec spec;
  spec.symmetric = false;
  const auto h = histogram_of(v);
  REQUIRE(h.min > 0.0f);
  const auto r = entropy_range(h, spec);
  CHECK(r.max > 0.4f * h.max);
}

TEST_CASE("entropy: the prefix-sum KL equals TensorRT's KL computed bin by bin") {
  const auto v = laplace_outliers(100000, 4);
  const auto fine = histogram_of(v);
  const std::size_t Q = 32;
  SUBCASE("symmetric windows [0, i), in a scan's order (levels before the last are reused)") {
    const float amax = std::max(std::fabs(fine.min), std::fabs(fine.max));
    const auto h = resample(fine, 0.0, amax, 512, true);
    detail::kl_windows fast(h.counts, Q);
    for (std::size_t i : {32u, 33u, 63u, 64u, 100u, 257u, 511u, 512u}) {
      CAPTURE(i);
      const double want = kl_bin_by_bin(h.counts, 0, i, Q);
      if (std::isinf(want)) CHECK(std::isinf(fast(0, i)));
      else CHECK(fast(0, i) == doctest::Approx(want).epsilon(1e-9));
    }
  }
  SUBCASE("asymmetric windows [a, b), the start moving and standing in turn") {
    const auto h = resample(fine, fine.min, fine.max, 512);
    detail::kl_windows fast(h.counts, Q);
    // The bulk lies in bins 60..190 of 512; windows ending there have non-empty end bins.
    const std::pair<std::size_t, std::size_t> windows[] = {{0, 512},  {80, 170}, {80, 171}, {80, 180}, {81, 180},
                                                           {60, 180}, {60, 92},  {60, 93},  {80, 170}, {120, 160}};
    int finite = 0;
    for (const auto& [a, b] : windows) {
      CAPTURE(a);
      CAPTURE(b);
      const double want = kl_bin_by_bin(h.counts, a, b, Q);
      finite += std::isfinite(want);
      if (std::isinf(want)) CHECK(std::isinf(fast(a, b)));
      else CHECK(fast(a, b) == doctest::Approx(want).epsilon(1e-9));
    }
    CHECK(finite >= 9);
  }
}

TEST_CASE("HFMG: the O(levels) window loss equals AMCT's O(bins) loss, signed") {
  const auto v = relu_normal(50000, 5);
  const auto fine = histogram_of(v);
  const auto h = resample(fine, fine.min, fine.max, 1024);
  const histogram_moments m(h);
  const std::int64_t D = 256;
  const detail::window_scorer score{m, h, D};
  for (auto lr : {std::pair<std::size_t, std::size_t>{0, 1023}, {10, 700}, {300, 1000}, {500, 520}}) {
    const auto [left, right] = lr;
    const double w = h.width, dw = w * (right - left + 1) / D;
    double loss = 0.0;
    for (std::size_t k = 0; k < h.bins(); ++k) {
      const double rho = h.counts[k] / w;
      const double b0 = (static_cast<double>(k) - static_cast<double>(left)) * w, b1 = b0 + w;
      const auto d0 = std::clamp<double>(std::floor(b0 / dw), 0, D - 1), d1 = std::clamp<double>(std::floor(b1 / dw), 0, D - 1);
      auto N = [&](double a, double b) { return rho * (b * b * b - a * a * a) / 3.0; };
      auto c = [&](double d) { return d * dw + dw / 2; };
      if (d0 == d1) loss += N(b0 - c(d0), b1 - c(d0));
      else loss += N(b0 - c(d0), dw / 2) + (d1 - d0 - 1) * N(-dw / 2, dw / 2) + N(-dw / 2, b1 - c(d1));
    }
    CHECK(score(left, right) == doctest::Approx(loss).epsilon(1e-7));
  }
  // HFMG's pick is never worse on the data than the full range (which is its first candidate),
  // and on post-ReLU data at 4 bits it clips.
  quant_spec spec4;
  spec4.bits = 4;
  spec4.symmetric = false;
  const auto r = hfmg_range(fine, spec4, preset::amct);
  CHECK(r.max < fine.max);
  CHECK(data_mse(v, params_from_range(r.min, r.max, spec4)) < data_mse(v, params_from_range(fine.min, fine.max, spec4)));
}

TEST_CASE("MSE and IFMR beat minmax on post-ReLU and outlier-heavy data; MSE is near the brute-force optimum") {
  for (int bits : {8, 4}) {
    for (int dist = 0; dist < 2; ++dist) {
      const auto v = dist == 0 ? relu_normal(40000, 7) : laplace_outliers(40000, 8);
      quant_spec spec;
      spec.bits = bits;
      spec.symmetric = false;
      const auto h = histogram_of(v);
      const auto mm = params_from_range(h.min, h.max, spec);
      const auto r = mse_range(h, spec);
      const auto pm = params_from_range(r.min, r.max, spec);
      extreme_values t;
      t.add(v.data(), v.size());
      const auto ri = ifmr_range(t, h, spec);
      const auto pi = params_from_range(ri.min, ri.max, spec);
      CAPTURE(bits);
      CAPTURE(dist);
      CHECK(data_mse(v, pm) < data_mse(v, mm));
      CHECK(data_mse(v, pi) < data_mse(v, mm));
      // Brute force over the max end with the same min.
      double best = 1e300;
      for (int i = 1; i <= 400; ++i) {
        const float hi = h.max * i / 400.0f;
        best = std::min(best, data_mse(v, params_from_range(r.min, hi, spec)));
      }
      CHECK(data_mse(v, pm) <= best * 1.02);
    }
  }
}

TEST_CASE("ACIQ reproduces Banner et al.'s clipping ratios") {
  CHECK(aciq_alpha(aciq_distribution::laplace, 8) == doctest::Approx(9.89).epsilon(0.01));
  CHECK(aciq_alpha(aciq_distribution::laplace, 4) == doctest::Approx(5.03).epsilon(0.01));
  CHECK(aciq_alpha(aciq_distribution::laplace, 2) == doctest::Approx(2.83).epsilon(0.01));
  CHECK(aciq_alpha(aciq_distribution::gaussian, 4) == doctest::Approx(2.55).epsilon(0.01));
  CHECK(aciq_alpha(aciq_distribution::gaussian, 8) == doctest::Approx(3.92).epsilon(0.02));
  std::mt19937 rng(9);
  std::normal_distribution<float> d(1.0f, 2.0f);
  std::vector<float> v(100000);
  for (auto& x : v) x = d(rng);
  quant_spec spec;
  spec.bits = 4;
  const auto r = aciq_range(histogram_of(v), spec, aciq_distribution::gaussian);
  CHECK(r.max == doctest::Approx(1.0 + 2.55 * 2.0).epsilon(0.02));
}

TEST_CASE("pot_diffs equals Vitis diffs on raw data; batch statistics aggregate as Vitis") {
  const auto v = laplace_outliers(30000, 10);
  quant_spec spec;
  const int got = pot_fix_pos(histogram_of(v), spec);
  const float mx = *std::max_element(v.begin(), v.end()), mn = *std::min_element(v.begin(), v.end());
  const double step = std::max(mn / -128.5, mx / 127.5);
  const int first = static_cast<int>(std::floor(std::log2(1.0 / step)));
  int best = first;
  double best_loss = 1e300;
  for (int fp = first; fp < first + 5; ++fp) {
    const double s = std::ldexp(1.0, -fp);
    double loss = 0.0;
    for (float x : v) {
      const double q = std::clamp(std::nearbyint(x / s), -128.0, 127.0) * s - x;
      loss += q * q;
    }
    if (loss < best_loss) {
      best_loss = loss;
      best = fp;
    }
  }
  CHECK(got == best);
  CHECK(aggregate({3, 4, 4, 5, 5}, batch_statistic::modal) == 4);
  CHECK(aggregate({3, 4, 9}, batch_statistic::max) == 9);
  CHECK(aggregate({3, 4, 8}, batch_statistic::mean) == 5);
  CHECK(aggregate({9, 3, 4, 8}, batch_statistic::median) == 4);
  CHECK_THROWS_AS(aggregate({}, batch_statistic::mean), amctq::error);
}

}  // namespace test_activation_methods
