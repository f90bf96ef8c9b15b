// Prints amctq::params_from_range for ranges read from stdin, for check_presets.py.
// Each input line: PRESET BITS SIGNED SYMMETRIC NARROW N LO_1 HI_1 ... LO_N HI_N, where PRESET is
// amct|onnxruntime|pytorch, the flags are 0/1 and the bounds are floats (hex floats keep them
// exact). N == 1 uses the per-tensor overload, N > 1 the per-channel one (axis 0).
// Each output line: "ok" then N pairs "SCALE_HEX ZERO_POINT", or "error MESSAGE".
#include <amctq/quant_params.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

amctq::preset preset_named(const std::string& s) {
  if (s == "amct") return amctq::preset::amct;
  if (s == "onnxruntime") return amctq::preset::onnxruntime;
  if (s == "pytorch") return amctq::preset::pytorch;
  throw std::invalid_argument("unknown preset " + s);
}

float parse_float(const std::string& s) {
  char* end = nullptr;
  const float v = std::strtof(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') throw std::invalid_argument("bad float " + s);
  return v;
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    try {
      std::istringstream in(line);
      std::string name, lo_s, hi_s;
      int sign = 0, sym = 0, narrow = 0;
      std::size_t n = 0;
      amctq::quant_spec spec;
      if (!(in >> name >> spec.bits >> sign >> sym >> narrow >> n) || n == 0)
        throw std::invalid_argument("bad line: " + line);
      spec.is_signed = sign != 0;
      spec.symmetric = sym != 0;
      spec.narrow_range = narrow != 0;
      std::vector<float> lo(n), hi(n);
      for (std::size_t c = 0; c < n; ++c) {
        if (!(in >> lo_s >> hi_s)) throw std::invalid_argument("missing range in: " + line);
        lo[c] = parse_float(lo_s);
        hi[c] = parse_float(hi_s);
      }
      amctq::quant_params p;
      if (n == 1) {
        p = amctq::params_from_range(lo[0], hi[0], spec, preset_named(name));
      } else {
        spec.axis = 0;
        p = amctq::params_from_range(lo, hi, spec, preset_named(name));
      }
      std::printf("ok");
      for (std::size_t c = 0; c < n; ++c)
        std::printf(" %a %d", static_cast<double>(p.scale[c]), static_cast<int>(p.zero_point[c]));
      std::printf("\n");
    } catch (const std::exception& e) {
      std::printf("error %s\n", e.what());
    }
  }
  return 0;
}
