// Conv and ConvTranspose: hand-computed cases for every attribute, and a brute-force
// direct convolution as oracle over random shapes.
#include <doctest/doctest.h>

#include <random>

#include "graph/builder.hpp"

namespace test_conv {

using namespace amctq;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::attr_s;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::single_node;

namespace {
std::vector<float> iota(std::size_t n, float start = 0) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}
}  // namespace

TEST_CASE("Conv 2-D: valid, padded + strided, depthwise with bias") {
  const auto x = ft({1, 1, 3, 3}, iota(9));
  single_node valid("Conv", {"x", "w"});
  valid.constant("w", ft({1, 1, 2, 2}, {1, 1, 1, 1}));
  check_close(valid.run({{"x", x}}), {1, 1, 2, 2}, {8, 12, 20, 24});

  single_node padded("Conv", {"x", "w"}, {attr_ints("pads", {1, 1, 1, 1}), attr_ints("strides", {2, 2})});
  padded.constant("w", ft({1, 1, 2, 2}, {1, 1, 1, 1}));
  check_close(padded.run({{"x", x}}), {1, 1, 2, 2}, {0, 3, 9, 24});

  single_node dw("Conv", {"x", "w", "b"}, {attr_i("group", 2)});
  dw.constant("w", ft({2, 1, 1, 1}, {2, 3})).constant("b", ft({2}, {1, -1}));
  check_close(dw.run({{"x", ft({1, 2, 2, 2}, iota(8))}}), {1, 2, 2, 2}, {1, 3, 5, 7, 11, 14, 17, 20});
}

TEST_CASE("Conv 1-D: dilation and auto_pad SAME_UPPER / SAME_LOWER / VALID") {
  const auto x = ft({1, 1, 5}, iota(5, 1));
  single_node dil("Conv", {"x", "w"}, {attr_ints("dilations", {2})});
  dil.constant("w", ft({1, 1, 2}, {1, 1}));
  check_close(dil.run({{"x", x}}), {1, 1, 3}, {4, 6, 8});

  const auto x4 = ft({1, 1, 4}, iota(4, 1));
  single_node upper("Conv", {"x", "w"}, {attr_s("auto_pad", "SAME_UPPER")});
  upper.constant("w", ft({1, 1, 2}, {1, 1}));
  check_close(upper.run({{"x", x4}}), {1, 1, 4}, {3, 5, 7, 4});
  single_node lower("Conv", {"x", "w"}, {attr_s("auto_pad", "SAME_LOWER")});
  lower.constant("w", ft({1, 1, 2}, {1, 1}));
  check_close(lower.run({{"x", x4}}), {1, 1, 4}, {1, 3, 5, 7});
  single_node valid("Conv", {"x", "w"}, {attr_s("auto_pad", "VALID"), attr_ints("pads", {5, 5})});
  valid.constant("w", ft({1, 1, 2}, {1, 1}));
  check_close(valid.run({{"x", x4}}), {1, 1, 3}, {3, 5, 7});
}

TEST_CASE("Conv 3-D sums a 2x2x2 cube") {
  single_node n("Conv", {"x", "w"});
  n.constant("w", ft({1, 1, 2, 2, 2}, std::vector<float>(8, 1.0f)));
  check_close(n.run({{"x", ft({1, 1, 2, 2, 2}, iota(8))}}), {1, 1, 1, 1, 1}, {28});
}

TEST_CASE("Conv matches a direct convolution on random shapes") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  struct cfg { std::int64_t n, c, h, w, m, k, stride, pad, dil, group; };
  for (const cfg& g : {cfg{2, 4, 7, 6, 6, 3, 1, 1, 1, 1}, cfg{1, 6, 9, 9, 6, 3, 2, 1, 1, 6}, cfg{1, 4, 8, 5, 8, 3, 2, 2, 2, 2},
                       cfg{1, 3, 5, 5, 2, 1, 1, 0, 1, 1}, cfg{1, 2, 6, 7, 4, 2, 3, 0, 1, 2},
                       cfg{1, 3, 6, 6, 6, 3, 1, 2, 2, 3} /* depthwise, multiplier 2, dilated */,
                       // Past one GEMM block both ways (630 taps, 575 positions: whole panels and a tail).
                       cfg{1, 70, 23, 25, 20, 3, 1, 1, 1, 1}, cfg{1, 9, 30, 31, 12, 3, 2, 1, 1, 1},
                       // Maps big enough for the direct path (see the fits test below):
                       // two images and a short last channel panel; dilated; groups; 1x1 over two
                       // depth blocks; 5x5.
                       cfg{2, 5, 20, 18, 13, 3, 1, 1, 1, 1}, cfg{1, 8, 21, 19, 9, 3, 1, 2, 2, 1},
                       cfg{1, 8, 24, 24, 16, 3, 1, 1, 1, 2}, cfg{1, 300, 16, 16, 10, 1, 1, 0, 1, 1},
                       cfg{1, 4, 30, 30, 8, 5, 1, 2, 1, 1},
                       // Strided on the direct path: ResNet's first conv's shape; stride 3, dilated.
                       cfg{1, 3, 45, 41, 8, 7, 2, 3, 1, 1}, cfg{1, 6, 40, 38, 10, 3, 3, 1, 2, 1}}) {
    CAPTURE(g.c);
    CAPTURE(g.group);
    std::vector<float> xv(static_cast<std::size_t>(g.n * g.c * g.h * g.w)), wv(static_cast<std::size_t>(g.m * (g.c / g.group) * g.k * g.k)), bv(static_cast<std::size_t>(g.m));
    for (auto* v : {&xv, &wv, &bv})
      for (auto& e : *v) e = u(rng);
    single_node node("Conv", {"x", "w", "b"},
                     {attr_ints("strides", {g.stride, g.stride}), attr_ints("pads", {g.pad, g.pad, g.pad, g.pad}),
                      attr_ints("dilations", {g.dil, g.dil}), attr_i("group", g.group)});
    node.constant("w", ft({g.m, g.c / g.group, g.k, g.k}, wv)).constant("b", ft({g.m}, bv));
    const auto y = node.run({{"x", ft({g.n, g.c, g.h, g.w}, xv)}});
    const std::int64_t ek = (g.k - 1) * g.dil + 1;
    const std::int64_t oh = (g.h + 2 * g.pad - ek) / g.stride + 1, ow = (g.w + 2 * g.pad - ek) / g.stride + 1;
    REQUIRE(y.shape() == std::vector<std::int64_t>{g.n, g.m, oh, ow});
    const std::int64_t cg = g.c / g.group, mg = g.m / g.group;
    std::vector<float> want;
    for (std::int64_t n = 0; n < g.n; ++n)
      for (std::int64_t m = 0; m < g.m; ++m)
        for (std::int64_t i = 0; i < oh; ++i)
          for (std::int64_t j = 0; j < ow; ++j) {
            double s = bv[static_cast<std::size_t>(m)];
            for (std::int64_t c = 0; c < cg; ++c)
              for (std::int64_t a = 0; a < g.k; ++a)
                for (std::int64_t b = 0; b < g.k; ++b) {
                  const std::int64_t ih = i * g.stride - g.pad + a * g.dil, iw = j * g.stride - g.pad + b * g.dil;
                  if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                  const std::int64_t ch = (m / mg) * cg + c;
                  s += double(xv[static_cast<std::size_t>(((n * g.c + ch) * g.h + ih) * g.w + iw)]) *
                       wv[static_cast<std::size_t>(((m * cg + c) * g.k + a) * g.k + b)];
                }
            want.push_back(static_cast<float>(s));
          }
    check_close(y, y.shape(), want, 1e-4f);
  }
}

namespace {
graph::ops::window conv_window(std::int64_t h, std::int64_t w, std::int64_t k, std::int64_t stride, std::int64_t pad,
                               std::int64_t dil) {
  graph::ops::window win;
  win.spatial = 2;
  win.in = {1, h, w};
  win.kernel = {1, k, k};
  win.stride = {1, stride, stride};
  win.dilation = {1, dil, dil};
  win.pad_begin = {0, pad, pad};
  win.pad_end = {0, pad, pad};
  win.out = {1, (h + 2 * pad - (k - 1) * dil - 1) / stride + 1, (w + 2 * pad - (k - 1) * dil - 1) / stride + 1};
  return win;
}
}  // namespace

#if AMCTQ_HAS_XSIMD
TEST_CASE("Conv's direct path takes 1-D and 2-D convs on maps where little of its work is wasted") {
  namespace d = graph::ops::detail;
  CHECK(d::direct_conv_fits(conv_window(56, 56, 3, 1, 1, 1), 64));   // ResNet's layer1
  CHECK(d::direct_conv_fits(conv_window(14, 14, 3, 1, 1, 1), 256));  // layer3
  CHECK(d::direct_conv_fits(conv_window(20, 18, 3, 1, 1, 1), 5));    // the random cases above
  CHECK(d::direct_conv_fits(conv_window(21, 19, 3, 1, 2, 2), 8));
  CHECK(d::direct_conv_fits(conv_window(16, 16, 1, 1, 0, 1), 300));
  CHECK(d::direct_conv_fits(conv_window(30, 30, 5, 1, 2, 1), 4));
  CHECK(d::direct_conv_fits(conv_window(56, 56, 3, 2, 1, 1), 64));   // strided: layer2's first
  CHECK(d::direct_conv_fits(conv_window(224, 224, 7, 2, 3, 1), 3));  // ResNet's first
  CHECK(d::direct_conv_fits(conv_window(45, 41, 7, 2, 3, 1), 3));
  CHECK(d::direct_conv_fits(conv_window(40, 38, 3, 3, 1, 2), 6));
  CHECK_FALSE(d::direct_conv_fits(conv_window(7, 7, 3, 1, 1, 1), 512));   // 64 positions computed for 49
  CHECK_FALSE(d::direct_conv_fits(conv_window(14, 14, 3, 2, 1, 1), 256));  // layer4's first: the same
  CHECK_FALSE(d::direct_conv_fits(conv_window(56, 56, 3, 1, 1, 1), 1));   // one channel: depthwise's
}
#endif

TEST_CASE("Conv with uneven pads and strides matches a direct convolution (the direct path pads each side)") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  const std::int64_t C = 6, H = 19, W = 23, M = 10, K = 3;
  const std::int64_t top = 0, left = 2, bottom = 2, right = 1;
  struct strides { std::int64_t h, w; };
  for (const strides st : {strides{1, 1}, strides{2, 1}, strides{1, 3}}) {
    const std::int64_t sh = st.h, sw = st.w;
    std::vector<float> xv(static_cast<std::size_t>(C * H * W)), wv(static_cast<std::size_t>(M * C * K * K)),
        bv(static_cast<std::size_t>(M));
    for (auto* v : {&xv, &wv, &bv})
      for (auto& e : *v) e = u(rng);
    CAPTURE(sh);
    CAPTURE(sw);
    single_node node("Conv", {"x", "w", "b"}, {attr_ints("pads", {top, left, bottom, right}), attr_ints("strides", {sh, sw})});
    node.constant("w", ft({M, C, K, K}, wv)).constant("b", ft({M}, bv));
    const auto y = node.run({{"x", ft({1, C, H, W}, xv)}});
    const std::int64_t OH = (H + top + bottom - K) / sh + 1, OW = (W + left + right - K) / sw + 1;
    REQUIRE(y.shape() == std::vector<std::int64_t>{1, M, OH, OW});
    std::vector<float> want;
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t i = 0; i < OH; ++i)
        for (std::int64_t j = 0; j < OW; ++j) {
          double s = bv[static_cast<std::size_t>(m)];
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t a = 0; a < K; ++a)
              for (std::int64_t b = 0; b < K; ++b) {
                const std::int64_t ih = i * sh - top + a, iw = j * sw - left + b;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += double(xv[static_cast<std::size_t>((c * H + ih) * W + iw)]) *
                     wv[static_cast<std::size_t>(((m * C + c) * K + a) * K + b)];
              }
          want.push_back(static_cast<float>(s));
        }
    check_close(y, y.shape(), want, 1e-4f);
  }
}

TEST_CASE("im2col_block in panels is im2col's matrix; the generated-lhs GEMM is the packed GEMM bit for bit") {
  namespace detail = amctq::graph::ops::detail;
  using amctq::graph::ops::window;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  for (const std::int64_t stride : {1, 2}) {
    CAPTURE(stride);
    const std::int64_t C = 70, H = 19, W = 23, K = 3, M = 24;
    window w;
    w.in = {1, H, W};
    w.kernel = {1, K, K};
    w.stride = {1, stride, stride};
    w.dilation = {1, 1, 1};
    w.pad_begin = {0, 1, 1};
    w.pad_end = {0, 1, 1};
    w.out = {1, (H + 2 - K) / stride + 1, (W + 2 - K) / stride + 1};
    const std::int64_t rows = C * K * K, O = w.out_size();
    std::vector<float> x(static_cast<std::size_t>(C * H * W)), wt(static_cast<std::size_t>(M * rows));
    for (auto* v : {&x, &wt})
      for (auto& e : *v) e = u(rng);
    std::vector<float> col(static_cast<std::size_t>(rows * O));
    detail::im2col(x.data(), C, w, col.data());
    // Any block in panels of 5: panel j holds positions [5j, 5j + 5), tap after tap.
    const std::int64_t k0 = 7, k1 = 50, p0 = 13, p1 = 61, panel = 5;
    std::vector<float> block(static_cast<std::size_t>((k1 - k0) * (p1 - p0)), -9.0f);
    detail::im2col_block(x.data(), w, k0, k1, p0, p1, panel, block.data());
    bool same = true;
    for (std::int64_t k = k0; k < k1; ++k)
      for (std::int64_t p = p0; p < p1; ++p) {
        const std::int64_t q = p - p0, start = q / panel * panel, size = std::min(panel, p1 - p0 - start);
        same = same && block[static_cast<std::size_t>(start * (k1 - k0) + (k - k0) * size + q % panel)] ==
                           col[static_cast<std::size_t>(k * O + p)];
      }
    CHECK(same);
    // Y^T (O x M) = col^T * W^T, both ways, with Eigen's blocking (several row and depth blocks).
    const detail::gemm_blocking b(O, rows, M);
    std::vector<float> packed_w(static_cast<std::size_t>(detail::packed_rhs_size(rows, M, b.kc)));
    detail::pack_rhs_blocks(wt.data(), rows, rows, M, b.kc, packed_w.data());
    std::vector<float> work(static_cast<std::size_t>(detail::generated_lhs_gemm_work(b)));
    std::vector<float> y1(static_cast<std::size_t>(O * M), 0.5f), y2 = y1;
    detail::packed_gemm(O, rows, M, b, {col.data(), O, false}, {packed_w.data(), 0, true}, y1.data(), O, work.data());
    detail::generated_lhs_gemm(
        rows, M, b,
        [&](std::int64_t i, std::int64_t m, std::int64_t k2, std::int64_t kc, std::int64_t pn, float* out) {
          detail::im2col_block(x.data(), w, k2, k2 + kc, i, i + m, pn, out);
        },
        packed_w.data(), y2.data(), O, work.data(), {{0, O}, {0, M}});
    CHECK(y1 == y2);
  }
}

TEST_CASE("gather_block over pad_input's copy is im2col_block: 1-D, 2-D and 3-D, strides, dilations, uneven pads") {
  namespace detail = amctq::graph::ops::detail;
  using amctq::graph::ops::window;
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> u(-1, 1);
  // spatial, in, kernel, out (computed below), stride, dilation, pad_begin, pad_end
  for (window w : {window{3, {1, 7, 7}, {1, 3, 3}, {}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},  // ResNet's layer 4
                   window{3, {1, 14, 13}, {1, 3, 3}, {}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
                   window{3, {1, 11, 12}, {1, 3, 2}, {}, {1, 1, 3}, {1, 2, 2}, {0, 0, 2}, {0, 3, 1}},
                   window{3, {1, 1, 29}, {1, 1, 5}, {}, {1, 1, 2}, {1, 1, 1}, {0, 0, 3}, {0, 0, 0}},
                   window{3, {5, 6, 4}, {2, 3, 2}, {}, {2, 1, 1}, {1, 1, 2}, {1, 1, 0}, {0, 2, 1}}}) {
    for (std::size_t d = 0; d < 3; ++d)
      w.out[d] = (w.in[d] + w.pad_begin[d] + w.pad_end[d] - w.effective_kernel(d)) / w.stride[d] + 1;
    const std::int64_t C = 6, rows = C * w.kernel_size(), O = w.out_size();
    CAPTURE(O);
    std::vector<float> x(static_cast<std::size_t>(C * w.in_size()));
    for (auto& e : x) e = u(rng);
    const detail::padded_extents p(w);
    std::vector<float> padded(static_cast<std::size_t>(C * p.plane()), -9.0f);
    detail::pad_input(x.data(), C, w, p, padded.data());
    std::vector<std::int64_t> taps(static_cast<std::size_t>(rows)), positions(static_cast<std::size_t>(O));
    detail::padded_tap_offsets(w, p, C, taps.data());
    detail::padded_position_offsets(w, p, positions.data());
    for (const std::int64_t panel : {std::int64_t{4}, O}) {
      const std::int64_t k0 = 3, k1 = rows - 2, p0 = 1, p1 = O;
      std::vector<float> want(static_cast<std::size_t>((k1 - k0) * (p1 - p0)), -7.0f), got(want.size(), -8.0f);
      detail::im2col_block(x.data(), w, k0, k1, p0, p1, panel, want.data());
      detail::gather_block(padded.data(), taps.data() + k0, k1 - k0, positions.data() + p0, p1 - p0, panel, got.data());
      CHECK(want == got);
    }
  }
}

TEST_CASE("ConvTranspose: strides, output_padding, pads, output_shape, groups") {
  const auto x = ft({1, 1, 3}, {1, 2, 3});
  auto make = [](std::vector<amctq::graph::attribute> attrs) {
    single_node n("ConvTranspose", {"x", "w"}, std::move(attrs));
    n.constant("w", ft({1, 1, 2}, {1, 1}));
    return n;
  };
  check_close(make({}).run({{"x", x}}), {1, 1, 4}, {1, 3, 5, 3});
  check_close(make({attr_ints("strides", {2})}).run({{"x", x}}), {1, 1, 6}, {1, 1, 2, 2, 3, 3});
  check_close(make({attr_ints("strides", {2}), attr_ints("output_padding", {1})}).run({{"x", x}}), {1, 1, 7},
              {1, 1, 2, 2, 3, 3, 0});
  check_close(make({attr_ints("strides", {2}), attr_ints("pads", {1, 0})}).run({{"x", x}}), {1, 1, 5}, {1, 2, 2, 3, 3});
  check_close(make({attr_ints("strides", {2}), attr_ints("output_shape", {7})}).run({{"x", x}}), {1, 1, 7},
              {1, 1, 2, 2, 3, 3, 0});
  check_close(make({attr_ints("strides", {2}), attr_s("auto_pad", "SAME_UPPER")}).run({{"x", x}}), {1, 1, 6},
              {1, 1, 2, 2, 3, 3});

  single_node grouped("ConvTranspose", {"x", "w", "b"}, {attr_i("group", 2)});
  grouped.constant("w", ft({2, 1, 1}, {3, 4})).constant("b", ft({2}, {0.5f, -0.5f}));
  check_close(grouped.run({{"x", ft({1, 2, 1}, {1, 2})}}), {1, 2, 1}, {3.5f, 7.5f});

  // 2-D, 2 output channels: each input pixel stamps its kernel.
  single_node two("ConvTranspose", {"x", "w"}, {attr_ints("strides", {2, 2})});
  two.constant("w", ft({1, 2, 1, 1}, {1, -1}));
  check_close(two.run({{"x", ft({1, 1, 2, 2}, {1, 2, 3, 4})}}), {1, 2, 3, 3},
              {1, 0, 2, 0, 0, 0, 3, 0, 4, -1, 0, -2, 0, 0, 0, -3, 0, -4});
}

TEST_CASE("Conv errors name the node") {
  single_node n("Conv", {"x", "w"});
  n.constant("w", ft({1, 2, 1, 1}, {1, 1}));
  try {
    n.run({{"x", ft({1, 3, 2, 2}, std::vector<float>(12, 0))}});
    FAIL("expected an error");
  } catch (const amctq::error& e) {
    CHECK(std::string(e.what()).find("node 'n0' (Conv)") != std::string::npos);
    CHECK(e.code() == amctq::errc::shape_mismatch);
  }
  single_node k("Conv", {"x", "w"}, {attr_ints("kernel_shape", {2, 2})});
  k.constant("w", ft({1, 1, 1, 1}, {1}));
  CHECK_THROWS_AS(k.run({{"x", ft({1, 1, 2, 2}, std::vector<float>(4, 0))}}), amctq::error);
  single_node wrong("Conv", {"x"});
  CHECK_THROWS_WITH_AS(wrong.run({{"x", ft({1, 1, 2, 2}, std::vector<float>(4, 0))}}),
                       doctest::Contains("expects 2 to 3 inputs"), amctq::error);
}

}  // namespace test_conv
