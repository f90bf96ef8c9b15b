// libFuzzer target for the .npz reader: arbitrary bytes must parse or raise amctq::error, never
// read outside the buffer (the zip offsets and sizes are the attack surface).
#include <cstddef>
#include <cstdint>

#include "amctq/io/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    (void)amctq::io::parse_npz(data, size, "fuzz");
  } catch (const amctq::error&) {
  }
  return 0;
}
