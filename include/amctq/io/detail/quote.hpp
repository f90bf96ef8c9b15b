// Quoting values read from files in error messages: at most about 100 characters, so that a
// hostile or mistaken value (a megabyte-long key, a JSON array dumped whole) cannot turn a
// one-line error into a megabyte of output.
#ifndef AMCTQ_IO_DETAIL_QUOTE_HPP
#define AMCTQ_IO_DETAIL_QUOTE_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace amctq::io::detail {

/// The most characters of a value an error message quotes.
inline constexpr std::size_t quote_limit = 100;

/// `s` itself when it has at most `limit` bytes; else its first `limit` bytes (not cutting a
/// UTF-8 sequence) followed by "...(N bytes)".
inline std::string clip(std::string_view s, std::size_t limit = quote_limit) {
  if (s.size() <= limit) return std::string(s);
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) --n;  // s[n] continues a sequence
  return std::string(s.substr(0, n)) + "...(" + std::to_string(s.size()) + " bytes)";
}

}  // namespace amctq::io::detail

#endif  // AMCTQ_IO_DETAIL_QUOTE_HPP
