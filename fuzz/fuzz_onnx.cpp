// libFuzzer target for the ONNX reader: arbitrary bytes must either parse or raise
// amctq::error — never crash, leak, over-read or trip a sanitizer. Whatever parses must
// serialize and parse back to the same bytes (the writer/reader round trip on odd IRs).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>

#include "amctq/io/onnx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  try {
    // No base folder: external-data tensors are rejected without touching the file system.
    const amctq::graph::model m = amctq::io::parse_onnx(bytes, size);
    const auto once = amctq::io::serialize_onnx(m);
    const auto again = amctq::io::serialize_onnx(amctq::io::parse_onnx(once.data(), once.size()));
    if (once != again) {
      std::fprintf(stderr, "round trip changed the model: %zu vs %zu bytes\n", once.size(), again.size());
      std::abort();
    }
  } catch (const amctq::error&) {
  }
  try {
    (void)amctq::io::parse_onnx_tensor(bytes, size);  // the .pb test-data entry point
  } catch (const amctq::error&) {
  }
  return 0;
}
