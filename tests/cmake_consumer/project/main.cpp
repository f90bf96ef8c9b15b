#include <amctq/amctq.hpp>

int main() {
  const float x[] = {0.1f, -0.2f, 0.3f};
  float y[3];
  const auto p = amctq::params_from_range(-0.2f, 0.3f, amctq::quant_spec{});
  amctq::fake_quantize(amctq::make_view(x, {3}), amctq::make_view(y, {3}), p);
  return y[2] > 0.29f && y[2] < 0.31f ? 0 : 1;
}
