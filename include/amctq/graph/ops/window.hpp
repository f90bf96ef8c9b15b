// The sliding-window geometry Conv, ConvTranspose and the pools share: kernel, strides,
// dilations, begin/end pads and auto_pad resolved to concrete per-dimension numbers. Up to
// three spatial dims; lower ranks are padded in front with size-1 dims so one loop nest serves 1-D, 2-D and 3-D.
#ifndef AMCTQ_GRAPH_OPS_WINDOW_HPP
#define AMCTQ_GRAPH_OPS_WINDOW_HPP

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

struct window {
  using dims = std::array<std::int64_t, 3>;
  std::size_t spatial = 0;  ///< how many of the three dims are real (the rest lead with size 1)
  dims in{1, 1, 1}, kernel{1, 1, 1}, out{1, 1, 1}, stride{1, 1, 1}, dilation{1, 1, 1}, pad_begin{0, 0, 0},
      pad_end{0, 0, 0};
  std::int64_t in_size() const noexcept { return in[0] * in[1] * in[2]; }
  std::int64_t out_size() const noexcept { return out[0] * out[1] * out[2]; }
  std::int64_t kernel_size() const noexcept { return kernel[0] * kernel[1] * kernel[2]; }
  std::int64_t effective_kernel(std::size_t d) const noexcept { return (kernel[d] - 1) * dilation[d] + 1; }
  /// The output shape's spatial part, without the leading padding dims.
  std::vector<std::int64_t> out_spatial() const { return {out.begin() + (3 - spatial), out.end()}; }
};

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) noexcept { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

namespace detail {
inline std::vector<std::int64_t> spatial_attr(const context& c, const char* name, std::size_t n, std::int64_t fallback) {
  std::vector<std::int64_t> v = c.n.get_ints(name, std::vector<std::int64_t>(n, fallback));
  AMCTQ_CHECK(v.size() == n, errc::invalid_argument, c.where(), "attribute ", name, " has ", v.size(),
              " values, expected ", n);
  return v;
}
}  // namespace detail

/// Resolves the window for Conv and the pools (not ConvTranspose, whose output grows).
/// `x_shape` is [N, C, spatial...]; `kernel` the spatial kernel size.
inline window forward_window(const context& c, const std::vector<std::int64_t>& x_shape,
                             const std::vector<std::int64_t>& kernel, bool ceil_mode) {
  AMCTQ_CHECK(x_shape.size() >= 3 && x_shape.size() <= 5, errc::unsupported, c.where(), "input has rank ",
              x_shape.size(), "; only 1-D, 2-D and 3-D windows ([N,C,...] of rank 3 to 5) are supported");
  const std::size_t ns = x_shape.size() - 2;
  AMCTQ_CHECK(kernel.size() == ns, errc::shape_mismatch, c.where(), "kernel has ", kernel.size(),
              " spatial dims, input has ", ns);
  window w;
  w.spatial = ns;
  const auto strides = detail::spatial_attr(c, "strides", ns, 1);
  const auto dil = detail::spatial_attr(c, "dilations", ns, 1);
  const auto pads = detail::spatial_attr(c, "pads", 2 * ns, 0);
  const std::string auto_pad = c.n.get_string("auto_pad", "NOTSET");
  for (std::size_t i = 0; i < ns; ++i) {
    const std::size_t d = 3 - ns + i;
    w.in[d] = x_shape[2 + i];
    w.kernel[d] = kernel[i];
    w.stride[d] = strides[i];
    w.dilation[d] = dil[i];
    AMCTQ_CHECK(w.stride[d] > 0 && w.dilation[d] > 0 && w.kernel[d] > 0, errc::invalid_argument, c.where(),
                "kernel, strides and dilations must be positive");
    const std::int64_t ek = w.effective_kernel(d);
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      w.out[d] = ceil_div(w.in[d], w.stride[d]);
      const std::int64_t total = std::max<std::int64_t>(0, (w.out[d] - 1) * w.stride[d] + ek - w.in[d]);
      const std::int64_t small = total / 2;
      w.pad_begin[d] = auto_pad == "SAME_UPPER" ? small : total - small;
      w.pad_end[d] = total - w.pad_begin[d];
    } else {
      AMCTQ_CHECK(auto_pad == "NOTSET" || auto_pad == "VALID" || auto_pad.empty(), errc::invalid_argument,
                  c.where(), "unknown auto_pad '", auto_pad, "'");
      if (auto_pad != "VALID") {
        w.pad_begin[d] = pads[i];
        w.pad_end[d] = pads[ns + i];
      }
      const std::int64_t span = w.in[d] + w.pad_begin[d] + w.pad_end[d] - ek;
      AMCTQ_CHECK(span >= 0, errc::shape_mismatch, c.where(), "window of ", ek, " does not fit input dim ", i,
                  " of ", w.in[d], " with pads ", w.pad_begin[d], "+", w.pad_end[d]);
      w.out[d] = (ceil_mode ? ceil_div(span, w.stride[d]) : span / w.stride[d]) + 1;
      // A window that would start inside the end padding is dropped (ONNX, PyTorch and ORT agree).
      if (ceil_mode && (w.out[d] - 1) * w.stride[d] >= w.in[d] + w.pad_begin[d]) --w.out[d];
    }
  }
  return w;
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_WINDOW_HPP
