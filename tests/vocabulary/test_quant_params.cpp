// Range -> (scale, zero point) for each preset, checked against values computed by hand from
// each tool's published formula, and the argument errors.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <string>

#include "amctq/quant_params.hpp"
#include "amctq/tensor_view.hpp"

namespace test_quant_params {

using namespace amctq;

namespace {
std::string message_of(void (*f)()) {
  try {
    f();
  } catch (const amctq::error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_SUITE("vocabulary") {
  TEST_CASE("integer_range for signed, unsigned, narrow") {
    CHECK(integer_range(quant_spec{8, true}).qmin == -128);
    CHECK(integer_range(quant_spec{8, true}).qmax == 127);
    CHECK(integer_range(quant_spec{8, false}).qmax == 255);
    CHECK(integer_range(quant_spec{4, true}).qmin == -8);
    CHECK(integer_range(quant_spec{16, false}).qmax == 65535);
    quant_spec narrow{8, true};
    narrow.narrow_range = true;
    CHECK(integer_range(narrow).qmin == -127);
    CHECK(integer_range(quant_spec{2, true}).qmax == 1);
  }

  TEST_CASE("amct preset: 127 when max dominates, 128 when min dominates or ties") {
    const quant_spec sym{8, true, true};
    CHECK(params_from_range(-1.0f, 2.54f, sym).scale[0] == 2.54f / 127.0f);
    CHECK(params_from_range(-2.56f, 1.0f, sym).scale[0] == -2.56f / -128.0f);
    CHECK(params_from_range(-2.0f, 2.0f, sym).scale[0] == 2.0f / 128.0f);
    CHECK(params_from_range(-2.0f, 2.0f, sym).zero_point[0] == 0);
    // Asymmetric: span [min(min,0), max(max,0)] over 255 steps, zp = round(-min/s) - 128.
    const quant_spec asym{8, true, false};
    const auto p = params_from_range(-1.0f, 3.0f, asym);
    CHECK(p.scale[0] == 4.0f / 255.0f);
    CHECK(p.zero_point[0] == static_cast<int>(std::round(1.0f / (4.0f / 255.0f))) - 128);
    const auto pos = params_from_range(0.5f, 3.0f, asym);  // min clamps to 0
    CHECK(pos.zero_point[0] == -128);
    // A scale below FLT_EPSILON becomes 1 (all-zero data).
    CHECK(params_from_range(0.0f, 0.0f, sym).scale[0] == 1.0f);
    CHECK(params_from_range(0.0f, 0.0f, asym).zero_point[0] == -128);
  }

  TEST_CASE("onnxruntime preset: double-precision scale, half-even zero point, narrow symmetric int8") {
    quant_spec sym{8, true, true};
    sym.narrow_range = true;  // ORT's symmetric int8 range is [-127, 127]
    const auto p = params_from_range(-1.0f, 2.0f, sym, preset::onnxruntime);
    CHECK(p.scale[0] == static_cast<float>(4.0 / 254.0));
    CHECK(p.zero_point[0] == 0);
    const auto u = params_from_range(-1.0f, 2.0f, quant_spec{8, false, true}, preset::onnxruntime);
    CHECK(u.zero_point[0] == 128);  // round_half_even(255 / 2)
    const auto a = params_from_range(-0.3f, 1.7f, quant_spec{8, false, false}, preset::onnxruntime);
    const double s = (1.7 - static_cast<double>(-0.3f)) / 255.0;
    CHECK(a.scale[0] == static_cast<float>((static_cast<double>(1.7f) - static_cast<double>(-0.3f)) / 255.0));
    CHECK(a.zero_point[0] == static_cast<int>(std::nearbyint(0.0 - static_cast<double>(-0.3f) / s)));
    CHECK(params_from_range(0.0f, 0.0f, quant_spec{8, false, false}, preset::onnxruntime).zero_point[0] == 0);
  }

  TEST_CASE("pytorch preset: symmetric divides by 127.5, eps floor, uint8 symmetric zero point 128") {
    const auto p = params_from_range(-1.0f, 2.0f, quant_spec{8, true, true}, preset::pytorch);
    CHECK(p.scale[0] == 2.0f / 127.5f);
    CHECK(p.zero_point[0] == 0);
    const auto u = params_from_range(-1.0f, 2.0f, quant_spec{8, false, true}, preset::pytorch);
    CHECK(u.zero_point[0] == 128);
    CHECK(params_from_range(0.0f, 0.0f, quant_spec{8, false, false}, preset::pytorch).scale[0] == FLT_EPSILON);
  }

  TEST_CASE("power-of-two scales cover the range") {
    quant_spec spec{8, true, true};
    spec.scale_kind = scale_type::power_of_two;
    const auto p = params_from_range(-3.0f, 3.0f, spec);
    CHECK(p.scale[0] == 0.03125f);  // 3/128 = 0.0234 -> 2^-5
    CHECK(std::log2(p.scale[0]) == std::floor(std::log2(p.scale[0])));
    // Scales one ulp above a power of two round up to the next one (log2 would round them
    // down to the power itself); exact powers stay.
    quant_spec asym{8, true, false};
    asym.scale_kind = scale_type::power_of_two;
    int rounded_up = 0;
    for (int e = -20; e <= 20; ++e) {
      const float pow2 = std::ldexp(1.0f, e);
      CHECK(params_from_range(0.0f, pow2 * 255.0f, asym).scale[0] == pow2);
      for (float hi = pow2 * 255.0f, k = 0; k < 4; ++k) {
        hi = std::nextafter(hi, INFINITY);
        const float float_scale = hi / 255.0f;  // amct's asymmetric scale of [0, hi]
        const float s = params_from_range(0.0f, hi, asym).scale[0];
        int ex = 0;
        CHECK(std::frexp(s, &ex) == 0.5f);  // a power of two
        CHECK(s >= float_scale);            // that covers the range
        CHECK(s < 2.0f * float_scale);      // and is the smallest that does
        rounded_up += s > pow2;
      }
    }
    CHECK(rounded_up > 0);
    // A range whose power-of-two scale passes FLT_MAX is an error, not an infinite scale.
    CHECK(message_of([] {
            quant_spec two{2, true, true};
            two.scale_kind = scale_type::power_of_two;
            params_from_range(0.0f, 2e38f, two);
          }).find("power-of-two scale") != std::string::npos);
  }

  TEST_CASE("onnxruntime preset: an all-zero range on an unsigned narrow grid keeps the zero point on the grid") {
    quant_spec spec{8, false, false};
    spec.narrow_range = true;
    const auto p = params_from_range(0.0f, 0.0f, spec, preset::onnxruntime);
    CHECK(p.zero_point[0] == 1);
    validate(p);
  }

  TEST_CASE("per-channel params keep one entry per channel and the axis") {
    quant_spec spec{8, true, true};
    spec.axis = 1;
    const auto p = params_from_range(std::vector<float>{-1, 0, -4}, std::vector<float>{1, 0, 2}, spec);
    CHECK(p.axis == 1);
    CHECK(p.scale.size() == 3);
    CHECK(p.scale[1] == 1.0f);
    CHECK(p.scale[2] == 4.0f / 128.0f);
  }

  TEST_CASE("bad specs and ranges name the argument") {
    CHECK(message_of([] { params_from_range(-1, 1, quant_spec{1}); }).find("bits") != std::string::npos);
    CHECK(message_of([] { params_from_range(-1, 1, quant_spec{17}); }).find("bits") != std::string::npos);
    CHECK(message_of([] { params_from_range(std::numeric_limits<float>::quiet_NaN(), 1, quant_spec{}); })
              .find("non_finite") != std::string::npos);
    CHECK(message_of([] { params_from_range(-1, std::numeric_limits<float>::infinity(), quant_spec{}); })
              .find("not finite") != std::string::npos);
    CHECK(message_of([] { params_from_range(2, 1, quant_spec{}); }).find("min > max") != std::string::npos);
    CHECK(message_of([] {
            quant_spec s{};
            s.axis = 0;
            params_from_range(std::vector<float>{0, 1}, std::vector<float>{1}, s);
          }).find("mins has 2") != std::string::npos);
    CHECK(message_of([] {
            quant_spec s{};
            s.axis = -2;
            params_from_range(0, 1, s);
          }).find("axis") != std::string::npos);
  }
}

TEST_SUITE("vocabulary") {
  TEST_CASE("tensor_view: row-major strides, contiguity, const conversion") {
    float buf[24];
    for (int i = 0; i < 24; ++i) buf[i] = static_cast<float>(i);
    auto v = make_view(buf, {2, 3, 4});
    CHECK(v.stride(0) == 12);
    CHECK(v.stride(2) == 1);
    CHECK(v.size() == 24);
    CHECK(v.is_contiguous());
    CHECK(v(1, 2, 3) == 23.0f);
    tensor_view<const float, 3> cv = v;
    CHECK(cv(0, 1, 0) == 4.0f);
    auto t = make_strided_view(buf, {4, 6}, {1, 4});
    CHECK_FALSE(t.is_contiguous());
    CHECK(t(3, 5) == 23.0f);
    auto e = make_view(buf, {0, 5});
    CHECK(e.empty());
  }
}

}  // namespace test_quant_params
