// Version and build configuration: whether SIMD kernels are compiled (xsimd present and not
// disabled with AMCTQ_NO_SIMD) and the overridable error macros' switches.
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

#endif  // AMCTQ_CONFIG_HPP
