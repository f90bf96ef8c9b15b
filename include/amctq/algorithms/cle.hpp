// Cross-layer equalisation (Nagel et al. 2019, "Data-Free Quantization", §4.1; Vitis AI
// include_cle, AIMET ScaleFactorCalculator): for two layers joined by a positively homogeneous
// activation, divide output channel c of the first by s_c and multiply input channel c of the
// second by s_c, with s_c = sqrt(r1_c · r2_c) / r2_c (r = per-channel max |w|), so both
// channels end with range sqrt(r1_c · r2_c). For Conv → depthwise Conv → Conv triplets all three
// ranges become cbrt(r1 · r2 · r3).
//
// Exactness: ReLU and identity commute with a positive per-channel scale. ReLU6 does not: the
// transform is exact only if channel c's clip becomes 6 / s_c, which the result reports
// (relu6_clip); Vitis and AIMET instead replace ReLU6 by ReLU, which changes the function.
// Repair: a channel with a zero range on either side keeps s_c = 1.
#ifndef AMCTQ_ALGORITHMS_CLE_HPP
#define AMCTQ_ALGORITHMS_CLE_HPP

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <vector>

#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/error.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

enum class cle_activation { identity, relu, relu6 };

struct cle_result {
  std::vector<float> scale;       ///< s per joined channel (first pair: layer1 out / layer2 in)
  std::vector<float> scale2;      ///< triplets only: depthwise out / layer3 in
  std::vector<float> relu6_clip;  ///< ReLU6 only: per-channel clip after layer 1 (6 / s)
  std::vector<float> relu6_clip2; ///< ReLU6 triplets only: clip after the depthwise layer
};

namespace detail {

inline void check_join(const weight_layout& a, const weight_layout& b, const char* where, const char* an,
                       const char* bn) {
  AMCTQ_CHECK(a.out_channels() == b.in_channels(), errc::shape_mismatch, where, an, " (", to_string(a.kind), ") has ",
              a.out_channels(), " output channels but ", bn, " (", to_string(b.kind), ") has ", b.in_channels(),
              " input channels");
}

inline void check_bias(const float* bias, std::size_t n, std::ptrdiff_t channels, const char* where, const char* name) {
  if (bias == nullptr) return;
  AMCTQ_CHECK(static_cast<std::ptrdiff_t>(n) == channels, errc::shape_mismatch, where, name, " has ", n,
              " entries for ", channels, " channels");
  for (std::size_t c = 0; c < n; ++c)
    AMCTQ_CHECK(std::isfinite(bias[c]), errc::non_finite, where, name, "[", c, "] is ", bias[c]);
}

inline std::vector<float> clip_for(const std::vector<float>& s, cle_activation act) {
  std::vector<float> clip;
  if (act != cle_activation::relu6) return clip;
  for (float v : s) clip.push_back(6.0f / v);
  return clip;
}

inline bool usable_range(float r) noexcept { return r >= FLT_EPSILON; }

}  // namespace detail

/// Equalises layer1 → act → layer2 in place (weights and layer1's bias, which may be null).
/// @throws amctq::error for mismatched channel counts, non-finite weights or bias.
template <std::size_t R1, std::size_t R2>
cle_result equalize_pair(const tensor_view<float, R1>& w1, const weight_layout& L1, float* b1, std::size_t b1_size,
                         const tensor_view<float, R2>& w2, const weight_layout& L2,
                         cle_activation act = cle_activation::relu) {
  constexpr const char* where = "equalize_pair";
  detail::check_join(L1, L2, where, "layer1", "layer2");
  detail::check_bias(b1, b1_size, L1.out_channels(), where, "bias1");
  const auto r1 = channel_absmax(w1, L1, channel_side::output, "layer1 weights");
  const auto r2 = channel_absmax(w2, L2, channel_side::input, "layer2 weights");
  cle_result res;
  res.scale.resize(r1.size());
  for (std::size_t c = 0; c < r1.size(); ++c)
    res.scale[c] = detail::usable_range(r1[c]) && detail::usable_range(r2[c])
                       ? static_cast<float>(std::sqrt(static_cast<double>(r1[c]) * r2[c]) / r2[c])
                       : 1.0f;
  scale_channels(w1, L1, channel_side::output, res.scale, /*divide=*/true);
  if (b1)
    for (std::size_t c = 0; c < b1_size; ++c) b1[c] /= res.scale[c];
  scale_channels(w2, L2, channel_side::input, res.scale);
  res.relu6_clip = detail::clip_for(res.scale, act);
  return res;
}

/// Equalises layer1 → act → depthwise → act → layer3 in place; the depthwise layer must have
/// one input and one output channel per group.
template <std::size_t R1, std::size_t R2, std::size_t R3>
cle_result equalize_depthwise_triplet(const tensor_view<float, R1>& w1, const weight_layout& L1, float* b1,
                                      std::size_t b1_size, const tensor_view<float, R2>& w2, const weight_layout& L2,
                                      float* b2, std::size_t b2_size, const tensor_view<float, R3>& w3,
                                      const weight_layout& L3, cle_activation act = cle_activation::relu) {
  constexpr const char* where = "equalize_depthwise_triplet";
  AMCTQ_CHECK(L2.in_per_group == 1 && L2.out_per_group == 1, errc::unsupported, where,
              "the middle layer must be depthwise with multiplier 1 (groups == channels), got ", L2.groups,
              " groups of ", L2.in_per_group, " -> ", L2.out_per_group);
  detail::check_join(L1, L2, where, "layer1", "depthwise");
  detail::check_join(L2, L3, where, "depthwise", "layer3");
  detail::check_bias(b1, b1_size, L1.out_channels(), where, "bias1");
  detail::check_bias(b2, b2_size, L2.out_channels(), where, "bias2");
  const auto r1 = channel_absmax(w1, L1, channel_side::output, "layer1 weights");
  const auto r2 = channel_absmax(w2, L2, channel_side::output, "depthwise weights");
  const auto r3 = channel_absmax(w3, L3, channel_side::input, "layer3 weights");
  cle_result res;
  res.scale.assign(r1.size(), 1.0f);
  res.scale2.assign(r1.size(), 1.0f);
  std::vector<float> mid(r1.size());
  for (std::size_t c = 0; c < r1.size(); ++c) {
    if (detail::usable_range(r1[c]) && detail::usable_range(r2[c]) && detail::usable_range(r3[c])) {
      const double R = std::cbrt(static_cast<double>(r1[c]) * r2[c] * r3[c]);
      res.scale[c] = static_cast<float>(r1[c] / R);
      res.scale2[c] = static_cast<float>(R / r3[c]);
    }
    mid[c] = res.scale[c] / res.scale2[c];
  }
  scale_channels(w1, L1, channel_side::output, res.scale, /*divide=*/true);
  if (b1)
    for (std::size_t c = 0; c < b1_size; ++c) b1[c] /= res.scale[c];
  scale_channels(w2, L2, channel_side::output, mid);
  if (b2)
    for (std::size_t c = 0; c < b2_size; ++c) b2[c] /= res.scale2[c];
  scale_channels(w3, L3, channel_side::input, res.scale2);
  res.relu6_clip = detail::clip_for(res.scale, act);
  res.relu6_clip2 = detail::clip_for(res.scale2, act);
  return res;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_CLE_HPP
