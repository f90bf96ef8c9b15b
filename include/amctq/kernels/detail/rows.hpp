// Traversal of one or two same-shaped strided views as innermost rows, after merging every run
// of dimensions that is contiguous in both views. A dense tensor per-tensor is a single row;
// a dense tensor per-channel is one row per (outer index, channel).
#ifndef AMCTQ_KERNELS_DETAIL_ROWS_HPP
#define AMCTQ_KERNELS_DETAIL_ROWS_HPP

#include <array>
#include <cstddef>

namespace amctq::kernels::detail {

template <std::size_t R>
struct row_plan {
  std::array<std::ptrdiff_t, R> extent{};
  std::array<std::ptrdiff_t, R> stride_a{};
  std::array<std::ptrdiff_t, R> stride_b{};
  std::size_t dims = 0;
  int channel_dim = -1;  ///< collapsed dim holding the channel axis, or -1 (per-tensor)
  bool empty = false;

  std::ptrdiff_t row_length() const noexcept { return dims == 0 ? 1 : extent[dims - 1]; }
  bool channel_is_row() const noexcept { return channel_dim >= 0 && static_cast<std::size_t>(channel_dim) == dims - 1; }
};

/// Merges adjacent dims that are contiguous in both views; never merges across the channel
/// axis, so each collapsed row has one channel or is the channel axis itself.
template <std::size_t R>
row_plan<R> make_row_plan(const std::array<std::ptrdiff_t, R>& extent, const std::array<std::ptrdiff_t, R>& sa,
                          const std::array<std::ptrdiff_t, R>& sb, int channel_axis) noexcept {
  row_plan<R> p;
  for (std::size_t r = 0; r < R; ++r) {
    if (extent[r] == 0) p.empty = true;
    const bool is_channel = static_cast<int>(r) == channel_axis;
    if (extent[r] == 1 && !is_channel) continue;
    if (p.dims > 0 && !is_channel && p.channel_dim != static_cast<int>(p.dims - 1)) {
      const std::size_t d = p.dims - 1;
      if (p.stride_a[d] == extent[r] * sa[r] && p.stride_b[d] == extent[r] * sb[r]) {
        p.extent[d] *= extent[r];
        p.stride_a[d] = sa[r];
        p.stride_b[d] = sb[r];
        continue;
      }
    }
    if (is_channel) p.channel_dim = static_cast<int>(p.dims);
    p.extent[p.dims] = extent[r];
    p.stride_a[p.dims] = sa[r];
    p.stride_b[p.dims] = sb[r];
    ++p.dims;
  }
  if (p.dims == 0) {  // every extent is 1: a single element
    p.extent[0] = 1;
    p.dims = 1;
  }
  return p;
}

/// Calls f(offset_a, offset_b, channel, linear) for each row of the plan: offsets in elements
/// from the views' origins, channel the row's channel index (-1 when per-tensor or when the
/// channel is the row), linear the row-major index of the row's first element.
template <std::size_t R, class F>
void for_each_row(const row_plan<R>& p, F&& f) {
  if (p.empty) return;
  const std::size_t outer = p.dims - 1;
  std::array<std::ptrdiff_t, R> idx{};
  std::ptrdiff_t off_a = 0, off_b = 0, linear = 0;
  const std::ptrdiff_t n = p.row_length();
  for (;;) {
    const std::ptrdiff_t channel =
        (p.channel_dim >= 0 && static_cast<std::size_t>(p.channel_dim) < outer) ? idx[p.channel_dim] : -1;
    f(off_a, off_b, channel, linear);
    linear += n;
    std::size_t d = outer;
    while (d-- > 0) {
      ++idx[d];
      off_a += p.stride_a[d];
      off_b += p.stride_b[d];
      if (idx[d] < p.extent[d]) break;
      off_a -= p.stride_a[d] * p.extent[d];
      off_b -= p.stride_b[d] * p.extent[d];
      idx[d] = 0;
    }
    if (d == static_cast<std::size_t>(-1)) return;
  }
}

}  // namespace amctq::kernels::detail

#endif  // AMCTQ_KERNELS_DETAIL_ROWS_HPP
