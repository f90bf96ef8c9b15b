// Resize and Upsample as torch.onnx exports them (nn.Upsample / F.interpolate, scale 2 and sizes,
// nearest and bilinear with align_corners False / True), the opset 10 and Upsample forms, and
// nearest on integer tensors, antialias; the ONNX node tests cover the other modes and transforms.
#include <doctest/doctest.h>

#include <limits>

#include "graph/builder.hpp"

namespace test_resize {

using namespace amctq;
using amctq::test::attr_f;
using amctq::test::attr_i;
using amctq::test::attr_s;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::it64;
using amctq::test::single_node;

namespace {
const auto x22 = ft({1, 1, 2, 2}, {1, 2, 3, 4});

/// The 2x2 input upsampled to 4x4 by separable 1-D weights w (4 rows of (weight of first, of second)).
std::vector<float> upsampled(const std::array<std::array<float, 2>, 4>& w) {
  const float in[2][2] = {{1, 2}, {3, 4}};
  std::vector<float> out;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      float v = 0;
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b) v += w[i][a] * w[j][b] * in[a][b];
      out.push_back(v);
    }
  return out;
}
}  // namespace

TEST_CASE("Resize: nn.Upsample(scale_factor=2, mode='nearest') as torch exports it (asymmetric, floor)") {
  single_node r("Resize", {"x", "", "scales"},
                {attr_s("mode", "nearest"), attr_s("coordinate_transformation_mode", "asymmetric"),
                 attr_s("nearest_mode", "floor")},
                17);
  r.constant("scales", ft({4}, {1, 1, 2, 2}));
  check_close(r.run({{"x", x22}}), {1, 1, 4, 4}, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
}

TEST_CASE("Resize: bilinear, align_corners=False (pytorch_half_pixel and half_pixel) and True, scales and sizes") {
  const auto half = upsampled({{{1, 0}, {0.75f, 0.25f}, {0.25f, 0.75f}, {0, 1}}});
  for (const char* transform : {"pytorch_half_pixel", "half_pixel"}) {
    INFO(transform);
    single_node r("Resize", {"x", "", "scales"},
                  {attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", transform)}, 13);
    r.constant("scales", ft({4}, {1, 1, 2, 2}));
    check_close(r.run({{"x", x22}}), {1, 1, 4, 4}, half);
  }
  const auto corners = upsampled({{{1, 0}, {2.0f / 3, 1.0f / 3}, {1.0f / 3, 2.0f / 3}, {0, 1}}});
  single_node ac("Resize", {"x", "", "", "sizes"},
                 {attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", "align_corners")}, 13);
  ac.constant("sizes", it64({4}, {1, 1, 4, 4}));
  check_close(ac.run({{"x", x22}}), {1, 1, 4, 4}, corners);
  // opset 11 spells the omitted roi / scales as empty tensors.
  single_node r11("Resize", {"x", "roi", "scales", "sizes"},
                  {attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", "pytorch_half_pixel")}, 11);
  r11.constant("roi", ft({0}, {})).constant("scales", ft({0}, {})).constant("sizes", it64({4}, {1, 1, 4, 4}));
  check_close(r11.run({{"x", x22}}), {1, 1, 4, 4}, half);
}

TEST_CASE("Resize: opset 10 and Upsample (asymmetric; nearest floors), nearest on integers, errors") {
  const auto asym = upsampled({{{1, 0}, {0.5f, 0.5f}, {0, 1}, {0, 1}}});
  single_node r10("Resize", {"x", "scales"}, {attr_s("mode", "linear")}, 10);
  r10.constant("scales", ft({4}, {1, 1, 2, 2}));
  check_close(r10.run({{"x", x22}}), {1, 1, 4, 4}, asym);
  single_node up9("Upsample", {"x", "scales"}, {attr_s("mode", "linear")}, 9);
  up9.constant("scales", ft({4}, {1, 1, 2, 2}));
  check_close(up9.run({{"x", x22}}), {1, 1, 4, 4}, asym);
  graph::attribute scales;
  scales.name = "scales";
  scales.type = graph::attribute::kind::floats;
  scales.floats = {1, 1, 3, 1};
  single_node up7("Upsample", {"x"}, {attr_s("mode", "nearest"), scales}, 7);
  check_close(up7.run({{"x", x22}}), {1, 1, 6, 2}, {1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4});

  single_node ints("Resize", {"x", "", "scales"}, {attr_s("coordinate_transformation_mode", "asymmetric")}, 13);
  ints.constant("scales", ft({2}, {1, 2}));
  const auto y = ints.run({{"x", it64({2, 2}, {7, -8, 9, 10})}});
  REQUIRE(y.shape() == std::vector<std::int64_t>{2, 4});
  CHECK(std::vector<std::int64_t>(y.data<std::int64_t>(), y.data<std::int64_t>() + 8) ==
        std::vector<std::int64_t>{7, 7, -8, -8, 9, 9, 10, 10});

  single_node lin_int("Resize", {"x", "", "scales"}, {attr_s("mode", "linear")}, 13);
  lin_int.constant("scales", ft({2}, {1, 2}));
  CHECK_THROWS_WITH_AS(lin_int.run({{"x", it64({2, 2}, {1, 2, 3, 4})}}), doctest::Contains("n0"), amctq::error);
  single_node aa("Resize", {"x", "", "scales"}, {attr_i("antialias", 1)}, 18);  // nearest
  aa.constant("scales", ft({4}, {1, 1, 0.5f, 0.5f}));
  CHECK_THROWS_WITH_AS(aa.run({{"x", x22}}), doctest::Contains("antialias"), amctq::error);
}

TEST_CASE("Resize: antialias stretches the linear / cubic kernel by 1 / scale when shrinking, not when growing") {
  const auto x = ft({1, 1, 1, 4}, {1, 2, 3, 4});
  auto shrunk = [&](const char* mode, std::int64_t exclude_outside) {
    single_node r("Resize", {"x", "", "scales"},
                  {attr_s("mode", mode), attr_i("antialias", 1), attr_i("exclude_outside", exclude_outside)}, 18);
    r.constant("scales", ft({4}, {1, 1, 1, 0.5f}));
    return r.run({{"x", x}});
  };
  // Linear, half_pixel, scale 0.5: output 0 sits at 0.5, the triangle of half-width 2 weighs rows
  // -1, 0, 1, 2 by 1/4, 3/4, 3/4, 1/4 (over 2); row -1 is row 0's value, or dropped by exclude_outside.
  check_close(shrunk("linear", 0), {1, 1, 1, 2}, {3.25f / 2, 6.75f / 2});
  check_close(shrunk("linear", 1), {1, 1, 1, 2}, {3.0f / 1.75f, 5.75f / 1.75f});
  // Cubic (a = -0.75) of half-width 4: rows -3..4 at distances 1.75 .. 0.25 .. 1.75 weigh
  // -0.03515625, -0.10546875, 0.26171875, 0.87890625 and back (summing to 2); ONNX Runtime agrees.
  check_close(shrunk("cubic", 0), {1, 1, 1, 2}, {1.490234375f, 3.509765625f});
  check_close(shrunk("cubic", 1), {1, 1, 1, 2}, {1.5673468f, 3.432653f});
  // Growing: the kernel keeps its width, so the result is plain linear / cubic interpolation.
  for (const char* mode : {"linear", "cubic"}) {
    single_node plain("Resize", {"x", "", "scales"}, {attr_s("mode", mode)}, 18);
    single_node aa("Resize", {"x", "", "scales"}, {attr_s("mode", mode), attr_i("antialias", 1)}, 18);
    plain.constant("scales", ft({4}, {1, 1, 2, 2.5f}));
    aa.constant("scales", ft({4}, {1, 1, 2, 2.5f}));
    const auto want = plain.run({{"x", x22}});
    check_close(aa.run({{"x", x22}}), want.shape(), amctq::test::values(want));
  }
}

TEST_CASE("Resize: downsampling nearest and linear, a non-integer scale, tf_crop_and_resize extrapolation") {
  const auto x = ft({1, 1, 1, 4}, {1, 2, 3, 4});
  single_node lin("Resize", {"x", "", "scales"}, {attr_s("mode", "linear")}, 13);
  lin.constant("scales", ft({4}, {1, 1, 1, 0.5f}));
  check_close(lin.run({{"x", x}}), {1, 1, 1, 2}, {1.5f, 3.5f});  // half_pixel: sources 0.5 and 2.5
  single_node near("Resize", {"x", "", "scales"}, {}, 13);
  near.constant("scales", ft({4}, {1, 1, 1, 0.75f}));
  // 3 outputs; half_pixel sources 1/6, 3/2, 17/6 round (prefer floor) to 0, 1, 3.
  check_close(near.run({{"x", x}}), {1, 1, 1, 3}, {1, 2, 4});
  single_node crop("Resize", {"x", "roi", "", "sizes"},
                   {attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", "tf_crop_and_resize"),
                    attr_f("extrapolation_value", -1), amctq::test::attr_ints("axes", {3})},
                   18);
  crop.constant("roi", ft({2}, {0.5f, 1.5f})).constant("sizes", it64({1}, {3}));
  // Sources 1.5, 3 and 4.5 (outside [0, 3]).
  check_close(crop.run({{"x", x}}), {1, 1, 1, 3}, {2.5f, 4, -1});
}

}  // namespace test_resize
