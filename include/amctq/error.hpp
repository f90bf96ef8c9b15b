// The one exception type amctq throws, its error codes, and the check macros every public
// entry point uses. Kernels never throw; they sit behind these checks.
#ifndef AMCTQ_ERROR_HPP
#define AMCTQ_ERROR_HPP

#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "amctq/config.hpp"

namespace amctq {

enum class errc { invalid_argument, shape_mismatch, non_finite, unsupported, io, parse, overflow };

inline const char* errc_name(errc c) noexcept {
  switch (c) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::shape_mismatch: return "shape_mismatch";
    case errc::non_finite: return "non_finite";
    case errc::unsupported: return "unsupported";
    case errc::io: return "io";
    case errc::parse: return "parse";
    case errc::overflow: return "overflow";
  }
  return "unknown";
}

/// Thrown by every amctq entry point that rejects its input. what() reads
/// "[amctq.<code>] <function>: <message>", so logs can be grepped by code.
class error : public std::runtime_error {
 public:
  error(errc code, const std::string& where, const std::string& message)
      : std::runtime_error("[amctq." + std::string(errc_name(code)) + "] " + where + ": " + message),
        code_(code),
        body_(where + ": " + message) {}
  errc code() const noexcept { return code_; }
  /// what() without the "[amctq.<code>] " tag: for rethrowing with more context in front.
  const std::string& body() const noexcept { return body_; }

 private:
  errc code_;
  std::string body_;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  out.precision(9);
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace amctq

/// Raise amctq::error. Override before including amctq to route errors elsewhere; without
/// exceptions the default prints nothing and aborts.
#ifndef AMCTQ_THROW
#  if AMCTQ_HAS_EXCEPTIONS
#    define AMCTQ_THROW(code, where, ...) \
      throw ::amctq::error((code), (where), ::amctq::detail::concat(__VA_ARGS__))
#  else
#    define AMCTQ_THROW(code, where, ...) std::abort()
#  endif
#endif

/// Always-on argument check of public entry points.
#define AMCTQ_CHECK(cond, code, where, ...) \
  do {                                      \
    if (!(cond)) AMCTQ_THROW(code, where, __VA_ARGS__); \
  } while (false)

/// Internal invariant; compiled out unless AMCTQ_DEBUG is defined.
#ifdef AMCTQ_DEBUG
#  include <cassert>
#  define AMCTQ_ASSERT(cond) assert(cond)
#else
#  define AMCTQ_ASSERT(cond) ((void)0)
#endif

#endif  // AMCTQ_ERROR_HPP
