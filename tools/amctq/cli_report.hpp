// How every amctq subcommand reports a failure: one line on stderr, and exit status 2 when the
// command line itself is wrong (unknown option, missing or malformed value), 1 when the input
// is (a file, a model, data, a config).
#ifndef AMCTQ_TOOLS_CLI_REPORT_HPP
#define AMCTQ_TOOLS_CLI_REPORT_HPP

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>

#include <unistd.h>

#include "amctq/error.hpp"

namespace amctq::cli {

inline constexpr int bad_input = 1;
inline constexpr int bad_usage = 2;

inline std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

/// Prints e as one line and returns `status`. An amctq::error already reads
/// "[amctq.<code>] <where>: <message>"; anything else gets the subcommand as its prefix.
inline int report(const std::exception& e, const char* command, int status) {
  const bool ours = dynamic_cast<const amctq::error*>(&e) != nullptr;
  std::cerr << (ours ? std::string() : std::string(command) + ": ") << one_line(e.what()) << "\n";
  return status;
}

/// A command that succeeded has printed its result: flush stdout and, when anything printed was
/// lost (stdout on a full device, a closed file), say so in one line and turn the status into
/// bad_input. A command whose output is its result must not exit 0 without it.
inline int check_stdout(int status, const char* command) {
  if (status != 0) return status;
  errno = 0;
  std::cout.flush();
  const bool lost = !std::cout || std::fflush(stdout) != 0 || std::ferror(stdout);
  if (!lost) return status;
  const int e = errno;
  std::cerr << "[amctq.io] " << command << ": cannot write to stdout: " << (e ? std::strerror(e) : "write error")
            << "\n";
  return bad_input;
}

/// The value of an option that names a file or folder: an empty one is a usage error (it
/// would otherwise mean stdout, or the current folder, by accident).
inline std::string path_value(const std::string& v, const std::string& option, const char* command) {
  AMCTQ_CHECK(!v.empty(), amctq::errc::invalid_argument, command, option, " needs a non-empty path");
  return v;
}

/// A whole number option in [lo, hi].
inline std::int64_t count_value(const std::string& v, const std::string& option, const char* command, std::int64_t lo,
                                std::int64_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  AMCTQ_CHECK(!v.empty() && end && *end == '\0' && errno == 0 && n >= lo && n <= hi, amctq::errc::invalid_argument,
              command, option, " needs a whole number from ", lo, " to ", hi, ", got '", v, "'");
  return n;
}

/// A byte count: a number with an optional K, M, G or T (powers of 1024; "512M", "1.5G").
inline std::size_t size_value(const std::string& v, const std::string& option, const char* command) {
  char* end = nullptr;
  errno = 0;
  const double n = std::strtod(v.c_str(), &end);
  double unit = 1;
  std::string tail = end ? std::string(end) : std::string();
  if (!tail.empty() && (tail.back() == 'B' || tail.back() == 'b') && tail.size() == 2) tail.pop_back();
  if (tail.size() == 1) {
    const char* units = "KMGT";
    for (int i = 0; i < 4; ++i)
      if (tail[0] == units[i] || tail[0] == units[i] + ('a' - 'A')) unit = std::ldexp(1.0, 10 * (i + 1));
  }
  const double bytes = n * unit;
  AMCTQ_CHECK(!v.empty() && errno == 0 && (tail.empty() || unit > 1) && std::isfinite(bytes) && bytes >= 1 &&
                  bytes < 1e18,
              amctq::errc::invalid_argument, command, option, " needs a size such as 512M or 2G, got '", v, "'");
  return static_cast<std::size_t>(bytes);
}

/// The output folder, or the nearest folder above it that exists, must be writable: checked
/// before calibration so that a typo fails in a second, not after the whole run, and without
/// creating anything.
inline void check_writable_folder(const std::string& out_dir, const char* command) {
  std::filesystem::path p = std::filesystem::absolute(out_dir);
  std::error_code ec;
  while (!std::filesystem::exists(p, ec) && p.has_parent_path() && p.parent_path() != p) p = p.parent_path();
  AMCTQ_CHECK(std::filesystem::is_directory(p, ec), amctq::errc::io, command, "--out ", out_dir, ": '", p.string(),
              "' is not a folder");
  AMCTQ_CHECK(::access(p.c_str(), W_OK | X_OK) == 0, amctq::errc::io, command, "--out ", out_dir, ": cannot write in '",
              p.string(), "': ", std::strerror(errno));
}

}  // namespace amctq::cli

#endif  // AMCTQ_TOOLS_CLI_REPORT_HPP
