// libFuzzer target for the JSON config reader: arbitrary bytes must give a config or raise
// amctq::error (never another exception, a crash, a leak, or memory beyond linear in the
// input: libFuzzer's -rss_limit_mb catches the 17 GB nesting of issue 15). Whatever parses
// must write and read back to the same text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "amctq/io/config_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const amctq::graph::quant_config c = amctq::io::read_config_json_text(text);
    const std::string once = amctq::io::write_config_json(c);
    const std::string twice = amctq::io::write_config_json(amctq::io::read_config_json_text(once));
    if (once != twice) {
      std::fprintf(stderr, "config round trip changed the text:\n%s\n---\n%s\n", once.c_str(), twice.c_str());
      std::abort();
    }
  } catch (const amctq::error&) {
  }
  return 0;
}
