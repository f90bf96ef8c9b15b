// LSQ / LSQ+ / ULQ backward (algorithms/lsq.hpp) against central finite differences of the
// same forward with round() linearised at the evaluation point (the straight-through
// estimator's definition of the derivative), per tensor and per channel along each axis.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "amctq/algorithms/lsq.hpp"

namespace test_qat_lsq {

using namespace amctq;

namespace {

struct data {
  std::vector<float> x, dy;
};

data make(std::size_t n, unsigned seed, float spread) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, spread), e(0.0f, 1.0f);
  data r;
  for (std::size_t i = 0; i < n; ++i) {
    r.x.push_back(d(g));
    r.dy.push_back(e(g));
  }
  return r;
}

std::ptrdiff_t channel_of(std::size_t i, const std::array<std::ptrdiff_t, 3>& ext, int axis) {
  if (axis < 0) return 0;
  std::ptrdiff_t inner = 1;
  for (int r = 2; r > axis; --r) inner *= ext[static_cast<std::size_t>(r)];
  return (static_cast<std::ptrdiff_t>(i) / inner) % ext[static_cast<std::size_t>(axis)];
}

// Σ dy · x̂ with x̂ = (clamp(R(x/s) + R(zf), qmin, qmax) − R(zf))·s, R(v) = round(v0) + (v − v0)
// around the base point's v0, the clamp side frozen at the base point.
double linearised_loss(const data& d, const std::array<std::ptrdiff_t, 3>& ext, int axis, const quant_params& base,
                       const std::vector<double>& s, const std::vector<double>& zf) {
  double sum = 0.0;
  for (std::size_t i = 0; i < d.x.size(); ++i) {
    const auto c = static_cast<std::size_t>(channel_of(i, ext, axis));
    const double v0 = static_cast<double>(d.x[i]) / base.scale[c];
    const double code0 = std::nearbyint(v0) + base.zero_point[c];
    const double z = static_cast<double>(base.zero_point[c]) + (zf[c] - base.zero_point[c]);
    const double code = std::nearbyint(v0) + (static_cast<double>(d.x[i]) / s[c] - v0) + z;
    double q = code;
    if (code0 < base.qmin) q = base.qmin;
    if (code0 > base.qmax) q = base.qmax;
    sum += d.dy[i] * (q - z) * s[c];
  }
  return sum;
}

void check_lsq(int axis, int bits) {
  const std::array<std::ptrdiff_t, 3> ext{3, 4, 5};
  const data d = make(60, 7u + static_cast<unsigned>(axis + 1), 1.5f);
  const std::ptrdiff_t C = axis < 0 ? 1 : ext[static_cast<std::size_t>(axis)];
  quant_params p;
  p.axis = axis;
  p.qmin = -(1 << (bits - 1));
  p.qmax = (1 << (bits - 1)) - 1;
  for (std::ptrdiff_t c = 0; c < C; ++c) {
    p.scale.push_back(0.21f + 0.05f * static_cast<float>(c));
    p.zero_point.push_back(static_cast<std::int32_t>(c % 2));
  }
  std::vector<float> dx(d.x.size()), ds(p.scale.size()), dz(p.scale.size());
  tensor_view<const float, 3> xv(d.x.data(), ext), gv(d.dy.data(), ext);
  lsq_backward(xv, gv, p, tensor_view<float, 3>(dx.data(), ext), ds.data(), dz.data());
  std::vector<double> s(p.scale.begin(), p.scale.end()), z(p.zero_point.begin(), p.zero_point.end());
  const double h = 1e-4;
  for (std::size_t c = 0; c < s.size(); ++c) {
    auto sp = s, sm = s, zp = z, zm = z;
    sp[c] += h;
    sm[c] -= h;
    zp[c] += h;
    zm[c] -= h;
    const double fds = (linearised_loss(d, ext, axis, p, sp, z) - linearised_loss(d, ext, axis, p, sm, z)) / (2 * h);
    const double fdz = (linearised_loss(d, ext, axis, p, s, zp) - linearised_loss(d, ext, axis, p, s, zm)) / (2 * h);
    CHECK(ds[c] == doctest::Approx(fds).epsilon(1e-4));
    CHECK(dz[c] == doctest::Approx(fdz).epsilon(1e-4));
  }
  // dx: dy inside, 0 outside; at least one of each in this data.
  int inside = 0, outside = 0;
  for (std::size_t i = 0; i < d.x.size(); ++i) {
    const auto c = static_cast<std::size_t>(channel_of(i, ext, axis));
    const double code = std::nearbyint(static_cast<double>(d.x[i]) / p.scale[c]) + p.zero_point[c];
    const bool in = code >= p.qmin && code <= p.qmax;
    CHECK(dx[i] == (in ? d.dy[i] : 0.0f));
    (in ? inside : outside)++;
  }
  CHECK(inside > 0);
  if (bits < 8) CHECK(outside > 0);  // 8 bits: the data lies inside the grid
}

// ULQ's loss as a function of the clips, round() linearised at the base clips.
double ulq_loss(const data& d, float cmin0, float cmax0, double cmin, double cmax, int bits) {
  const quant_params p0 = ulq_params({cmin0}, {cmax0}, bits, false);
  const double steps = p0.qmax - p0.qmin;
  const double s0 = p0.scale[0], s = (cmax - cmin) / steps;
  const double u0 = -static_cast<double>(cmin0) / s0, u = -cmin / s;
  const double o = std::nearbyint(u0) + (u - u0) + p0.qmin;
  double sum = 0.0;
  for (std::size_t i = 0; i < d.x.size(); ++i) {
    const double v0 = static_cast<double>(d.x[i]) / s0;
    const double code0 = std::nearbyint(v0) + p0.zero_point[0];
    double q = std::nearbyint(v0) + (d.x[i] / s - v0) + o;
    if (code0 < p0.qmin) q = p0.qmin;
    if (code0 > p0.qmax) q = p0.qmax;
    sum += d.dy[i] * (q - o) * s;
  }
  return sum;
}

}  // namespace

TEST_CASE("lsq_backward equals finite differences per tensor and per channel on each axis") {
  for (int bits : {2, 4, 8}) {
    CAPTURE(bits);
    for (int axis : {-1, 0, 1, 2}) {
      CAPTURE(axis);
      check_lsq(axis, bits);
    }
  }
}

TEST_CASE("ulq_backward equals finite differences of the clips") {
  const data d = make(200, 3u, 1.0f);
  for (int bits : {4, 8}) {
    CAPTURE(bits);
    const float cmin = -1.23f, cmax = 1.71f;  // -cmin / s away from a tie
    std::vector<float> dx(d.x.size());
    float dmin = 0, dmax = 0;
    const std::array<std::ptrdiff_t, 1> e{static_cast<std::ptrdiff_t>(d.x.size())};
    ulq_backward(tensor_view<const float, 1>(d.x.data(), e), tensor_view<const float, 1>(d.dy.data(), e), {cmin},
                 {cmax}, bits, false, per_tensor, tensor_view<float, 1>(dx.data(), e), &dmin, &dmax);
    const double h = 1e-4;
    const double fmax = (ulq_loss(d, cmin, cmax, cmin, cmax + h, bits) - ulq_loss(d, cmin, cmax, cmin, cmax - h, bits)) / (2 * h);
    const double fmin = (ulq_loss(d, cmin, cmax, cmin + h, cmax, bits) - ulq_loss(d, cmin, cmax, cmin - h, cmax, bits)) / (2 * h);
    CHECK(dmax == doctest::Approx(fmax).epsilon(1e-4));
    CHECK(dmin == doctest::Approx(fmin).epsilon(1e-4));
  }
}

TEST_CASE("ulq fixed_min: clip_min is 0 and gets no gradient; params follow AMCT's asymmetric formula") {
  const quant_params p = ulq_params({-5.0f}, {2.55f}, 8, true);
  CHECK(p.scale[0] == doctest::Approx(0.01f));
  CHECK(p.zero_point[0] == -128);
  std::vector<float> x{0.1f, 3.0f, -0.2f}, dy{1.0f, 1.0f, 1.0f}, dx(3);
  float dmin = 7.0f, dmax = 0.0f;
  const std::array<std::ptrdiff_t, 1> e{3};
  ulq_backward(tensor_view<const float, 1>(x.data(), e), tensor_view<const float, 1>(dy.data(), e), {-5.0f}, {2.55f}, 8,
               true, per_tensor, tensor_view<float, 1>(dx.data(), e), &dmin, &dmax);
  CHECK(dmin == 0.0f);
  CHECK(dx == std::vector<float>{1.0f, 0.0f, 0.0f});
}

TEST_CASE("lsq_backward: NaN in x or dy is an error; dx may alias dy") {
  std::vector<float> x{0.1f, NAN}, dy{1.0f, 1.0f}, dx(2);
  float ds = 0;
  const std::array<std::ptrdiff_t, 1> e{2};
  const quant_params p = make_params(0.1f, 0, -8, 7);
  CHECK_THROWS_AS(lsq_backward(tensor_view<const float, 1>(x.data(), e), tensor_view<const float, 1>(dy.data(), e), p,
                               tensor_view<float, 1>(dx.data(), e), &ds, nullptr),
                  amctq::error);
  x[1] = 0.2f;
  dy[0] = NAN;
  CHECK_THROWS_AS(lsq_backward(tensor_view<const float, 1>(x.data(), e), tensor_view<const float, 1>(dy.data(), e), p,
                               tensor_view<float, 1>(dx.data(), e), &ds, nullptr),
                  amctq::error);
  x = {0.14f, 0.26f};
  dy = {1.0f, 2.0f};  // dx may be dy itself
  lsq_backward(tensor_view<const float, 1>(x.data(), e), tensor_view<const float, 1>(dy.data(), e), p,
               tensor_view<float, 1>(dy.data(), e), &ds, nullptr);
  CHECK(dy == std::vector<float>{1.0f, 2.0f});
  CHECK(ds == doctest::Approx(1.0 * -0.4 + 2.0 * 0.4).epsilon(1e-5));  // (x̂ - x) / s
  CHECK(lsq_grad_scale(100, 127) == doctest::Approx(1.0 / std::sqrt(12700.0)));
}

}  // namespace test_qat_lsq

namespace test_qat_lsq {

TEST_CASE("lsq / ulq backward: the SIMD pass equals the scalar pass (dx exactly, sums to float rounding)") {
  const data d = make(20011, 11u, 3.0f);  // > 256 batches per row, and a tail
  const std::array<std::ptrdiff_t, 2> e{1, static_cast<std::ptrdiff_t>(d.x.size())};
  const tensor_view<const float, 2> xv(d.x.data(), e), gv(d.dy.data(), e);
  const quant_params p = make_params(0.37f, 2, -8, 7);
  std::vector<float> dx_v(d.x.size()), dx_s(d.x.size());
  float ds_v = 0, dz_v = 0, ds_s = 0, dz_s = 0;
  lsq_backward(xv, gv, p, tensor_view<float, 2>(dx_v.data(), e), &ds_v, &dz_v, 0.5f);
  lsq_backward<kernels::scalar_arch>(xv, gv, p, tensor_view<float, 2>(dx_s.data(), e), &ds_s, &dz_s, 0.5f);
  CHECK(dx_v == dx_s);
  CHECK(ds_v == doctest::Approx(ds_s).epsilon(1e-5));
  CHECK(dz_v == doctest::Approx(dz_s).epsilon(1e-5));
  float a_v = 0, b_v = 0, a_s = 0, b_s = 0;
  ulq_backward(xv, gv, {-4.1f}, {6.3f}, 4, false, per_tensor, tensor_view<float, 2>(dx_v.data(), e), &a_v, &b_v);
  ulq_backward<kernels::scalar_arch>(xv, gv, {-4.1f}, {6.3f}, 4, false, per_tensor,
                                     tensor_view<float, 2>(dx_s.data(), e), &a_s, &b_s);
  CHECK(dx_v == dx_s);
  CHECK(a_v == doctest::Approx(a_s).epsilon(1e-5));
  CHECK(b_v == doctest::Approx(b_s).epsilon(1e-5));
}

}  // namespace test_qat_lsq
