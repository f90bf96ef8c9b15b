// libFuzzer target for the .npy reader: arbitrary bytes must parse or raise amctq::error.
// Whatever parses must serialize and parse back to the same tensor.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "amctq/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const amctq::graph::tensor t = amctq::io::parse_npy(data, size, "fuzz");
    const auto bytes = amctq::io::serialize_npy(t);
    if (amctq::io::parse_npy(bytes.data(), bytes.size(), "fuzz round trip") != t) {
      std::fprintf(stderr, "npy round trip changed the tensor\n");
      std::abort();
    }
  } catch (const amctq::error&) {
  }
  return 0;
}
