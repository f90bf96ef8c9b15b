// Generates the quality table of docs/algorithms/activation.md: quantization MSE on the data of
// every activation method x distribution, at 8 and 4 bits (asymmetric signed grid, AMCT preset,
// round half to even). Build and run from the repo root:
//   g++ -std=c++17 -O2 -march=native -I include docs/algorithms/activation_quality.cpp -o /tmp/q && /tmp/q
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "amctq/algorithms/observer.hpp"

using namespace amctq;

static std::vector<float> dataset(int kind, std::size_t n) {
  std::mt19937 rng(100 + kind);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    double x = 0.0;
    switch (kind) {
      case 0: x = nd(rng); break;
      case 1: {
        const double a = u(rng) - 0.5;
        x = -0.5 * std::copysign(1.0, a) * std::log(1.0 - 2.0 * std::fabs(a));
        if (i % 997 == 0) x = std::copysign(8.0 + 8.0 * u(rng), a);
        break;
      }
      case 2: x = std::fmax(0.2 + nd(rng), 0.0); break;
      default: x = u(rng) < 0.4 ? -2.0 + 0.5 * nd(rng) : 3.0 + 0.8 * nd(rng);
    }
    v[i] = static_cast<float>(x);
  }
  return v;
}

int main() {
  const char* dists[] = {"normal", "laplace+outliers", "post-ReLU", "bimodal"};
  const std::size_t n = 200000, batch = 10000;
  std::printf("| method |");
  for (int bits : {8, 4})
    for (const char* d : dists) std::printf(" %s %d-bit |", d, bits);
  std::printf("\n|---|");
  for (int i = 0; i < 8; ++i) std::printf("---|");
  std::printf("\n");
  for (calib_method m : all_calib_methods) {
    std::printf("| %s |", to_string(m));
    for (int bits : {8, 4}) {
      for (int k = 0; k < 4; ++k) {
        const auto v = dataset(k, n);
        observer_options o;
        o.method = m;
        o.spec.bits = bits;
        o.spec.symmetric = false;
        activation_observer ob(o);
        for (std::size_t s = 0; s < n; s += batch) ob.observe(make_view(v.data() + s, {static_cast<std::ptrdiff_t>(batch)}));
        const quant_params p = ob.result().params;
        double e = 0.0;
        for (float x : v) {
          float q = std::nearbyint(x / p.scale[0]) + static_cast<float>(p.zero_point[0]);
          q = std::fmin(std::fmax(q, static_cast<float>(p.qmin)), static_cast<float>(p.qmax));
          const double d = (q - p.zero_point[0]) * p.scale[0] - x;
          e += d * d;
        }
        std::printf(" %.3g |", e / n);
      }
    }
    std::printf("\n");
  }
}
