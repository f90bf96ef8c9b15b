// Version and build configuration: whether SIMD kernels are compiled (xsimd present and not
// disabled with AMCTQ_NO_SIMD), the overridable error macros' switches and a forced-inline
// marker.
#ifndef AMCTQ_CONFIG_HPP
#define AMCTQ_CONFIG_HPP

#define AMCTQ_VERSION_MAJOR 0
#define AMCTQ_VERSION_MINOR 1
#define AMCTQ_VERSION_PATCH 0

#if !defined(AMCTQ_NO_SIMD) && defined(__has_include)
#  if __has_include(<xsimd/xsimd.hpp>)
#    define AMCTQ_HAS_XSIMD 1
#  endif
#endif
#ifndef AMCTQ_HAS_XSIMD
#  define AMCTQ_HAS_XSIMD 0
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#  define AMCTQ_HAS_EXCEPTIONS 1
#else
#  define AMCTQ_HAS_EXCEPTIONS 0
#endif

// For the few small helpers whose inlining a hot loop depends on, where the compiler's size
// heuristic can decide against it (GCC 12 leaves count_bins out of line in the histogram
// kernel, whose row loop has two bodies).
#if defined(__GNUC__) || defined(__clang__)
#  define AMCTQ_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#  define AMCTQ_ALWAYS_INLINE __forceinline
#else
#  define AMCTQ_ALWAYS_INLINE inline
#endif

#endif  // AMCTQ_CONFIG_HPP
