// The arch tags kernels are written against, and the few batch helpers xsimd 8.1 lacks:
// rounding in every round_mode, a NaN-defined clamp, and a batch_bool -> bit mask.
#ifndef AMCTQ_KERNELS_DETAIL_SIMD_HPP
#define AMCTQ_KERNELS_DETAIL_SIMD_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "amctq/config.hpp"
#include "amctq/rounding.hpp"

#if AMCTQ_HAS_XSIMD
#  include <xsimd/xsimd.hpp>
#  if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
#    undef AMCTQ_HAS_XSIMD
#    define AMCTQ_HAS_XSIMD 0
#  endif
#endif

namespace amctq::kernels {

/// The arch tag of the plain C++ path: reference, tail handler and AMCTQ_NO_SIMD fallback.
struct scalar_arch {
  static constexpr const char* name() noexcept { return "scalar"; }
  static constexpr bool available() noexcept { return true; }
};

#if AMCTQ_HAS_XSIMD
/// The best arch the including translation unit is compiled for (its -m flags decide).
using default_arch = xsimd::default_arch;
#else
using default_arch = scalar_arch;
#endif

namespace detail {

template <class Arch>
inline constexpr bool is_simd_arch = !std::is_same_v<Arch, scalar_arch>;

/// NaN-defined clamp: NaN maps to lo, matching x86's max(v, lo) then min(., hi) and ONNX
/// Runtime's QuantizeLinear, so SIMD and scalar agree on every input. (ORT's int4 per-channel
/// kernel converts to int32 before clamping, so there NaN and |x/s| >= 2^31 wrap instead of
/// saturating; amctq keeps the saturating rule — tests/peers documents the difference.)
inline float clamp_nan_low(float v, float lo, float hi) noexcept {
  v = v > lo ? v : lo;
  return v < hi ? v : hi;
}

#if AMCTQ_HAS_XSIMD
template <class A>
inline xsimd::batch<float, A> clamp_nan_low(const xsimd::batch<float, A>& v, const xsimd::batch<float, A>& lo,
                                           const xsimd::batch<float, A>& hi) noexcept {
  const auto a = xsimd::select(v > lo, v, lo);
  return xsimd::select(a < hi, a, hi);
}

/// Batch twin of amctq::round_as<M>, bit-identical to it for every float.
template <round_mode M, class A>
inline xsimd::batch<float, A> round_as(const xsimd::batch<float, A>& v) noexcept {
  using B = xsimd::batch<float, A>;
  if constexpr (M == round_mode::half_even) {
    return xsimd::nearbyint(v);
  } else if constexpr (M == round_mode::half_away) {
    const B t = xsimd::trunc(v);
    return xsimd::select(xsimd::abs(v - t) >= B(0.5f), t + xsimd::copysign(B(1.0f), v), t);
  } else {
    if constexpr (M == round_mode::half_up) {
      const B f = xsimd::floor(v);
      return xsimd::select(v - f >= B(0.5f), f + B(1.0f), f);
    } else {  // as the scalar one: v - floor(v) is inexact for some v in (-1, 0)
      return B(0.0f) - round_as<round_mode::half_up>(-v);
    }
  }
}

/// Lane i of b as bit i of the result.
template <class A>
inline std::uint32_t to_bits(const xsimd::batch_bool<float, A>& b) noexcept {
#  if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) return static_cast<std::uint32_t>(b.data);
#  endif
#  if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A> && !std::is_base_of_v<xsimd::avx512f, A>)
    return static_cast<std::uint32_t>(_mm256_movemask_ps(b.data));
#  endif
#  if defined(__SSE2__)
  if constexpr (std::is_base_of_v<xsimd::sse2, A> && !std::is_base_of_v<xsimd::avx, A>)
    return static_cast<std::uint32_t>(_mm_movemask_ps(b.data));
#  endif
  constexpr std::size_t n = xsimd::batch_bool<float, A>::size;
  alignas(64) bool lanes[n];
  b.store_unaligned(lanes);
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < n; ++i) bits |= static_cast<std::uint32_t>(lanes[i]) << i;
  return bits;
}

/// Stores b at p, which must be aligned to sizeof(b), bypassing the cache where the ISA can.
template <class A>
inline void store_stream(const xsimd::batch<float, A>& b, float* p) noexcept {
#  if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    _mm512_stream_ps(p, b);
    return;
  }
#  endif
#  if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A> && !std::is_base_of_v<xsimd::avx512f, A>) {
    _mm256_stream_ps(p, b);
    return;
  }
#  endif
#  if defined(__SSE2__)
  if constexpr (std::is_base_of_v<xsimd::sse2, A> && !std::is_base_of_v<xsimd::avx, A>) {
    _mm_stream_ps(p, b);
    return;
  }
#  endif
  b.store_aligned(p);
}
#endif

/// Index of the lowest set bit of a non-zero mask.
inline unsigned lowest_bit(std::uint32_t mask) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  return static_cast<unsigned>(__builtin_ctz(mask));
#else
  unsigned k = 0;
  while (!(mask & 1u)) {
    mask >>= 1;
    ++k;
  }
  return k;
#endif
}

/// Asks for the cache line holding p ahead of a read (a hint: it never faults). Into L2, not
/// L1: the callers stream data past a table that should keep L1 to itself.
inline void prefetch(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 1);
#else
  (void)p;
#endif
}

/// Reads *p and discards it, for its side effect on the caches and the TLB: unlike a prefetch,
/// a real read always completes its page-table walk. p must point into readable memory.
inline void touch(const float* p) noexcept { static_cast<void>(*static_cast<const volatile float*>(p)); }

#if AMCTQ_HAS_XSIMD
/// B::size integer codes from p as a float batch (exact: every code type converts exactly or,
/// for int32, rounds as static_cast<float> does). xsimd 8.1 converts a narrow-integer load one
/// lane at a time; widening through an int32 block lets the compiler use one extending move.
template <class B, class Q>
inline B load_codes(const Q* p) noexcept {
  using A = typename B::arch_type;
  using I = xsimd::batch<std::int32_t, A>;
  if constexpr (std::is_same_v<Q, std::int32_t>) {
    return xsimd::batch_cast<float>(I::load_unaligned(p));
  } else {
    // Used only by the AVX2 / AVX-512 branches; an SSE-only build must not warn about them.
    [[maybe_unused]] constexpr bool s8 = std::is_same_v<Q, std::int8_t>, u8 = std::is_same_v<Q, std::uint8_t>;
    [[maybe_unused]] constexpr bool s16 = std::is_same_v<Q, std::int16_t>;
#  if defined(__AVX512F__)
    if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
      if constexpr (s8 || u8) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        return _mm512_cvtepi32_ps(s8 ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v));
      } else {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        return _mm512_cvtepi32_ps(s16 ? _mm512_cvtepi16_epi32(v) : _mm512_cvtepu16_epi32(v));
      }
    }
#  endif
#  if defined(__AVX2__)
    if constexpr (std::is_base_of_v<xsimd::avx2, A> && !std::is_base_of_v<xsimd::avx512f, A>) {
      if constexpr (s8 || u8) {
        const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
        return _mm256_cvtepi32_ps(s8 ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v));
      } else {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        return _mm256_cvtepi32_ps(s16 ? _mm256_cvtepi16_epi32(v) : _mm256_cvtepu16_epi32(v));
      }
    }
#  endif
    alignas(64) std::int32_t wide[B::size];
    for (std::size_t k = 0; k < B::size; ++k) wide[k] = p[k];
    return xsimd::batch_cast<float>(I::load_aligned(wide));
  }
}
#endif

/// Outputs at least this large are written with non-temporal stores: they cannot stay in cache
/// anyway, and bypassing it saves the read-for-ownership of every output line. Smaller outputs
/// may still be cache-resident, where non-temporal stores would evict what the next read wants.
inline constexpr std::size_t stream_store_bytes = std::size_t{32} << 20;

/// Orders earlier non-temporal stores before any later store, so the output is visible to
/// another thread once the kernel returns, as with ordinary stores.
inline void stream_fence() noexcept {
#if AMCTQ_HAS_XSIMD && defined(__SSE2__)
  _mm_sfence();
#endif
}

/// Elements to handle before p + result is aligned to `bytes` (a power of two).
inline std::size_t elements_to_alignment(const float* p, std::size_t bytes) noexcept {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  return ((bytes - (addr & (bytes - 1))) & (bytes - 1)) / sizeof(float);
}

/// Writes one bit per element, LSB first, from bit `pos` of `out` on. push() buffers whole
/// batches and stores whole bytes; put() writes a single bit in place (read-modify-write), for
/// the unaligned head and the tail. flush() before put() after a push().
class bit_writer {
 public:
  bit_writer(std::uint8_t* out, std::size_t pos) noexcept : out_(out), pos_(pos) {}

  void put(bool bit) noexcept {
    std::uint8_t& byte = out_[pos_ >> 3];
    const unsigned k = pos_ & 7u;
    byte = static_cast<std::uint8_t>((byte & ~(1u << k)) | (static_cast<unsigned>(bit) << k));
    ++pos_;
  }

  /// Appends the low `count` (<= 32) bits of `bits`; needs byte_aligned() or begin_push() first.
  void push(std::uint32_t bits, unsigned count) noexcept {
    acc_ |= static_cast<std::uint64_t>(bits) << held_;
    held_ += count;
    while (held_ >= 8) {
      out_[pos_ >> 3] = static_cast<std::uint8_t>(acc_);
      acc_ >>= 8;
      held_ -= 8;
      pos_ += 8;
    }
  }

  void flush() noexcept {
    const unsigned held = held_;
    held_ = 0;
    for (unsigned i = 0; i < held; ++i) put(((acc_ >> i) & 1u) != 0);
    acc_ = 0;
  }

  /// Lets push() start at any bit: takes the bits already written in the current byte into the
  /// accumulator, so whole-byte stores keep them. Call before the first push().
  void begin_push() noexcept {
    const unsigned k = pos_ & 7u;
    if (k == 0) return;
    pos_ -= k;
    acc_ = out_[pos_ >> 3] & ((1u << k) - 1u);
    held_ = k;
  }

  bool byte_aligned() const noexcept { return (pos_ & 7u) == 0; }

 private:
  std::uint8_t* out_;
  std::size_t pos_;
  std::uint64_t acc_ = 0;
  unsigned held_ = 0;
};

}  // namespace detail
}  // namespace amctq::kernels

#endif  // AMCTQ_KERNELS_DETAIL_SIMD_HPP
