// The README's engine-author quick start: stream batches through an observer, read the params
// back, fake-quantize with the STE mask. Shards calibrated apart merge to the one-pass result.
#include <amctq/algorithms/observer.hpp>
#include <amctq/amctq.hpp>

#include <cstdio>
#include <random>
#include <vector>

int main() {
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<std::vector<float>> batches(4, std::vector<float>(8 * 16 * 7 * 7));
  for (auto& b : batches)
    for (auto& v : b) v = std::fmax(0.0f, noise(rng));  // post-ReLU activations

  amctq::observer_options opt;                         // default: IFMR with AMCT's defaults
  opt.method = amctq::calib_method::mse;               // minmax, percentile, entropy, ifmr, hfmg, ...
  opt.spec = amctq::quant_spec{8, /*is_signed=*/true, /*symmetric=*/false};
  amctq::activation_observer whole(opt), shard_a(opt), shard_b(opt);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    auto view = amctq::make_view(batches[i].data(), {8, 16, 7, 7});
    whole.observe(view);
    (i % 2 ? shard_b : shard_a).observe(view);         // e.g. two processes
  }
  shard_a.merge(shard_b);
  const amctq::quant_params p = whole.result().params;
  const bool same = p.scale == shard_a.result().params.scale && p.zero_point == shard_a.result().params.zero_point;

  std::vector<float> y(batches[0].size());
  std::vector<std::uint8_t> ste((y.size() + 7) / 8);
  amctq::fake_quantize(amctq::make_view(batches[0].data(), {8, 16, 7, 7}), amctq::make_view(y.data(), {8, 16, 7, 7}),
                       p, amctq::round_mode::half_even, ste.data());
  std::printf("mse observer: scale %.6g zero_point %d, sharded == one pass: %s\n", p.scale[0], p.zero_point[0],
              same ? "yes" : "NO");
  return same ? 0 : 1;
}
