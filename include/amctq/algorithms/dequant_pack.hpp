// AscendDequant's uint64 deq_scale (docs/algorithms/weights.md, "AscendDequant packing"): bits 31:0
// the float32 bit pattern of s_d · s_w, bits 39:32 the shift N, bits 47:40 offset_w as int8, the
// rest 0. In FORCE_FP16_QUANT mode the float is first truncated to "s19" (its top 19 bits: sign,
// exponent, 10 mantissa bits).
#ifndef AMCTQ_ALGORITHMS_DEQUANT_PACK_HPP
#define AMCTQ_ALGORITHMS_DEQUANT_PACK_HPP

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "amctq/error.hpp"

namespace amctq {

/// The fields of one packed deq_scale.
struct dequant_param {
  float deq_scale = 1.0f;
  int shift_n = 0;    ///< 0 (no int16 stage) or 1..16
  int offset_w = 0;   ///< int8; AMCT weights are symmetric so this is 0 in practice
};

/// Keeps the top 19 bits of the float32 pattern (truncation toward zero of the mantissa).
inline float truncate_s19(float v) noexcept {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  b &= 0xFFFFE000u;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

/// @throws amctq::error for a non-finite or non-positive deq_scale (or one that s19 truncates
/// to 0), N outside {0} ∪ [1, 16], or offset_w outside int8.
inline std::uint64_t pack_dequant_param(const dequant_param& p, bool force_fp16 = false) {
  constexpr const char* where = "pack_dequant_param";
  AMCTQ_CHECK(std::isfinite(p.deq_scale) && p.deq_scale > 0.0f, errc::invalid_argument, where,
              "deq_scale must be finite and > 0, got ", p.deq_scale);
  AMCTQ_CHECK(p.shift_n >= 0 && p.shift_n <= 16, errc::invalid_argument, where, "shift_n must be 0 or in [1, 16], got ",
              p.shift_n);
  AMCTQ_CHECK(p.offset_w >= -128 && p.offset_w <= 127, errc::invalid_argument, where,
              "offset_w must fit int8, got ", p.offset_w);
  const float s = force_fp16 ? truncate_s19(p.deq_scale) : p.deq_scale;
  // A subnormal below 2^-136 keeps no set bit in the top 19: the device would scale by 0.
  AMCTQ_CHECK(s > 0.0f, errc::invalid_argument, where, "deq_scale ", p.deq_scale,
              " truncates to 0 in s19 (force_fp16); the scales are too small to represent");
  std::uint32_t bits;
  std::memcpy(&bits, &s, sizeof bits);
  return std::uint64_t{bits} | (std::uint64_t{static_cast<std::uint8_t>(p.shift_n)} << 32) |
         (std::uint64_t{static_cast<std::uint8_t>(static_cast<std::int8_t>(p.offset_w))} << 40);
}

/// Inverse of pack_dequant_param. Bits above 47 must be 0.
inline dequant_param unpack_dequant_param(std::uint64_t v) {
  AMCTQ_CHECK((v >> 48) == 0, errc::invalid_argument, "unpack_dequant_param", "bits 63:48 are not zero in 0x",
              std::hex, v);
  dequant_param p;
  const auto bits = static_cast<std::uint32_t>(v & 0xFFFFFFFFu);
  std::memcpy(&p.deq_scale, &bits, sizeof bits);
  p.shift_n = static_cast<int>((v >> 32) & 0xFFu);
  p.offset_w = static_cast<int>(static_cast<std::int8_t>(static_cast<std::uint8_t>((v >> 40) & 0xFFu)));
  AMCTQ_CHECK(p.shift_n <= 16, errc::invalid_argument, "unpack_dequant_param", "shift_n ", p.shift_n,
              " is above 16 in 0x", std::hex, v);
  return p;
}

/// One packed value per output channel: deq_c = s_d · s_w[c] (s_w may have one entry),
/// shift_n empty (all 0) or one per channel, offset_w 0.
inline std::vector<std::uint64_t> pack_dequant_params(float scale_d, const std::vector<float>& scale_w,
                                                      const std::vector<int>& shift_n = {}, bool force_fp16 = false) {
  constexpr const char* where = "pack_dequant_params";
  AMCTQ_CHECK(!scale_w.empty(), errc::invalid_argument, where, "scale_w is empty");
  AMCTQ_CHECK(shift_n.empty() || shift_n.size() == scale_w.size(), errc::shape_mismatch, where, "shift_n has ",
              shift_n.size(), " entries for ", scale_w.size(), " channels");
  // AMCT's record rule: N is all 0 (no int16 stage) or all in [1, 16].
  for (std::size_t c = 0; c < shift_n.size(); ++c)
    AMCTQ_CHECK((shift_n[c] == 0) == (shift_n[0] == 0), errc::invalid_argument, where,
                "shift_n must be all 0 or all in [1, 16]; shift_n[0] = ", shift_n[0], ", shift_n[", c, "] = ", shift_n[c]);
  AMCTQ_CHECK(std::isfinite(scale_d) && scale_d > 0.0f, errc::invalid_argument, where,
              "scale_d must be finite and > 0, got ", scale_d);
  std::vector<std::uint64_t> out(scale_w.size());
  for (std::size_t c = 0; c < scale_w.size(); ++c) {
    AMCTQ_CHECK(std::isfinite(scale_w[c]) && scale_w[c] > 0.0f, errc::invalid_argument, where, "scale_w[", c,
                "] must be finite and > 0, got ", scale_w[c]);
    dequant_param p;
    p.deq_scale = scale_d * scale_w[c];
    AMCTQ_CHECK(std::isfinite(p.deq_scale) && p.deq_scale > 0.0f, errc::invalid_argument, where, "channel ", c,
                ": scale_d * scale_w[", c, "] = ", scale_d, " * ", scale_w[c], " is not a positive finite float");
    p.shift_n = shift_n.empty() ? 0 : shift_n[c];
    out[c] = pack_dequant_param(p, force_fp16);
  }
  return out;
}

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_DEQUANT_PACK_HPP
