// How every amctq subcommand reports a failure: one line on stderr, and exit status 2 when the
// command line itself is wrong (unknown option, missing or malformed value), 1 when the input
// is (a file, a model, data, a config).
#ifndef AMCTQ_TOOLS_CLI_REPORT_HPP
#define AMCTQ_TOOLS_CLI_REPORT_HPP

#include <exception>
#include <iostream>
#include <string>

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

}  // namespace amctq::cli

#endif  // AMCTQ_TOOLS_CLI_REPORT_HPP
