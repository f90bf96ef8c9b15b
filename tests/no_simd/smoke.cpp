// Runs the scalar build of the kernels once and checks a hand-computed answer.
#include <cstdio>
#include <cstdint>

#include "amctq/amctq.hpp"

int main() {
  static_assert(!AMCTQ_HAS_XSIMD, "this test must build without xsimd");
  const float x[] = {-1.0f, 0.26f, 0.25f, 2.0f, 300.0f};
  float y[5];
  std::uint8_t mask[1] = {0};
  const auto p = amctq::make_params(0.5f, 0, -4, 3);
  amctq::fake_quantize(amctq::make_view(x, {5}), amctq::make_view(y, {5}), p, amctq::round_mode::half_even, mask);
  const float want[] = {-1.0f, 0.5f, 0.0f, 1.5f, 1.5f};
  for (int i = 0; i < 5; ++i)
    if (y[i] != want[i]) {
      std::printf("element %d: got %g want %g\n", i, y[i], want[i]);
      return 1;
    }
  if (mask[0] != 0x07) {
    std::printf("mask 0x%02x want 0x07\n", mask[0]);
    return 1;
  }
  std::puts("scalar kernels OK");
  return 0;
}
