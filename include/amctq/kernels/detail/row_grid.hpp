// The one traversal every tensor-level quantizer uses: each row of a plan with the grid its
// elements are quantized on. A short channel axis that is innermost and densely stacked is
// folded: its rows are joined into long runs whose per-lane parameters repeat with period C,
// so a [N, 28] tensor quantized per column runs as long SIMD rows, not N rows of 28.
#ifndef AMCTQ_KERNELS_DETAIL_ROW_GRID_HPP
#define AMCTQ_KERNELS_DETAIL_ROW_GRID_HPP

#include <cstddef>
#include <vector>

#include "amctq/kernels/detail/checks.hpp"
#include "amctq/kernels/detail/grid.hpp"
#include "amctq/kernels/detail/rows.hpp"

namespace amctq::kernels::detail {

/// Calls fn(offset_a, offset_b, n, grid, linear) for consecutive runs of n elements: offsets
/// in elements from the views' origins, grid a uniform_grid or lane_grid, linear the row-major
/// index of the run's first element. Runs have the plan's innermost strides.
template <std::size_t R, class F>
void for_each_grid_row(const row_plan<R>& plan, const float_params& f, F&& fn) {
  const std::size_t d = plan.dims;
  const std::ptrdiff_t c = plan.row_length();
  constexpr std::ptrdiff_t fold_below = 512;  // a channel row this short leaves SIMD lanes idle
  if (plan.channel_is_row() && d >= 2 && c < fold_below && plan.stride_a[d - 1] == 1 && plan.stride_b[d - 1] == 1 &&
      plan.stride_a[d - 2] == c && plan.stride_b[d - 2] == c) {
    const std::ptrdiff_t period = c * ((fold_below + c - 1) / c);
    std::vector<float> scale(static_cast<std::size_t>(period)), zero(static_cast<std::size_t>(period));
    for (std::ptrdiff_t i = 0; i < period; ++i) {
      scale[static_cast<std::size_t>(i)] = f.scale[static_cast<std::size_t>(i % c)];
      zero[static_cast<std::size_t>(i)] = f.zero_point[static_cast<std::size_t>(i % c)];
    }
    row_plan<R> joined = plan;
    joined.extent[d - 2] *= c;
    joined.stride_a[d - 2] = 1;
    joined.stride_b[d - 2] = 1;
    joined.dims = d - 1;
    joined.channel_dim = -1;
    const lane_grid g{scale.data(), zero.data(), f.lo, f.hi};
    const std::ptrdiff_t total = joined.row_length();
    for_each_row(joined, [&](std::ptrdiff_t oa, std::ptrdiff_t ob, std::ptrdiff_t, std::ptrdiff_t lin) {
      for (std::ptrdiff_t s = 0; s < total; s += period)
        fn(oa + s, ob + s, total - s < period ? total - s : period, g, lin + s);
    });
    return;
  }
  for_each_row(plan, [&](std::ptrdiff_t oa, std::ptrdiff_t ob, std::ptrdiff_t ch, std::ptrdiff_t lin) {
    with_row_grid(plan.channel_is_row(), ch, f.scale.data(), f.zero_point.data(), f.lo, f.hi,
                  [&](const auto& g) { fn(oa, ob, c, g, lin); });
  });
}

}  // namespace amctq::kernels::detail

#endif  // AMCTQ_KERNELS_DETAIL_ROW_GRID_HPP
