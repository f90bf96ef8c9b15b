// MaxPool, AveragePool (count_include_pad, ceil_mode, pads, auto_pad, dilations) and the
// global forms. Windows are walked tap by tap over the shared 3-D window geometry.
#ifndef AMCTQ_GRAPH_OPS_POOL_HPP
#define AMCTQ_GRAPH_OPS_POOL_HPP

#include <algorithm>
#include <limits>
#include <vector>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"
#include "amctq/graph/ops/window.hpp"

namespace amctq::graph::ops {

namespace detail {

/// Taps of one output position along one dim: the range of kernel indices reading inside [lo, hi).
struct tap_range {
  std::int64_t first, last, origin;  ///< kernel indices [first, last), input index of tap 0
};
inline tap_range taps(const window& w, std::size_t d, std::int64_t o, std::int64_t lo, std::int64_t hi) {
  const std::int64_t origin = o * w.stride[d] - w.pad_begin[d];
  const std::int64_t first = std::clamp<std::int64_t>(ceil_div(lo - origin, w.dilation[d]), 0, w.kernel[d]);
  const std::int64_t last = std::clamp<std::int64_t>(ceil_div(hi - origin, w.dilation[d]), first, w.kernel[d]);
  return {first, last, origin};
}

/// Calls reduce(plane_in, plane_out, window taps per dim, count of padded-window taps) per output element.
/// The tap ranges depend on the output coordinate only, so they are resolved once per call rather
/// than per plane and element (the divisions in taps() dominated small windows like ResNet's 3x3 pool).
template <class F>
void pool_walk(const context& c, const tensor& x, tensor& y, const window& w, F&& f) {
  (void)c;
  struct dim_taps {
    std::vector<tap_range> real;
    std::vector<std::int64_t> padded;  ///< taps inside the padded input
  };
  auto resolve = [&](std::size_t d) {
    dim_taps t;
    for (std::int64_t o = 0; o < w.out[d]; ++o) {
      t.real.push_back(taps(w, d, o, 0, w.in[d]));
      const tap_range p = taps(w, d, o, -w.pad_begin[d], w.in[d] + w.pad_end[d]);
      t.padded.push_back(p.last - p.first);
    }
    return t;
  };
  const dim_taps td = resolve(0), th = resolve(1), tw = resolve(2);
  const std::int64_t planes = x.dim(0) * x.dim(1);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (std::int64_t p = 0; p < planes; ++p) {
    const float* xin = px + p * w.in_size();
    float* yout = py + p * w.out_size();
    for (std::int64_t od = 0; od < w.out[0]; ++od)
      for (std::int64_t oh = 0; oh < w.out[1]; ++oh) {
        const std::int64_t padded_dh = td.padded[od] * th.padded[oh];
        for (std::int64_t ow = 0; ow < w.out[2]; ++ow)
          *yout++ = f(xin, td.real[od], th.real[oh], tw.real[ow], padded_dh * tw.padded[ow]);
      }
  }
}

template <class Acc>
float over_taps(const float* x, const window& w, const tap_range& td, const tap_range& th, const tap_range& tw,
                float init, Acc acc) {
  float r = init;
  for (std::int64_t kd = td.first; kd < td.last; ++kd) {
    const std::int64_t id = td.origin + kd * w.dilation[0];
    for (std::int64_t kh = th.first; kh < th.last; ++kh) {
      const float* row = x + (id * w.in[1] + th.origin + kh * w.dilation[1]) * w.in[2] + tw.origin;
      for (std::int64_t kw = tw.first; kw < tw.last; ++kw) r = acc(r, row[kw * w.dilation[2]]);
    }
  }
  return r;
}

inline window pool_window(context& c) {
  c.require_inputs(1, 1);
  c.require_type(c.input(0), dtype::float32, "X");
  const auto kernel = c.n.get_ints("kernel_shape");
  AMCTQ_CHECK(!kernel.empty(), errc::invalid_argument, c.where(), "attribute kernel_shape is required");
  return forward_window(c, c.input(0).shape(), kernel, c.n.get_int("ceil_mode", 0) != 0);
}

inline tensor& pool_output(context& c, const window& w) {
  const tensor& x = c.input(0);
  std::vector<std::int64_t> shape{x.dim(0), x.dim(1)};
  for (std::size_t d = 3 - w.spatial; d < 3; ++d) shape.push_back(w.out[d]);
  return c.make_output_uninit(0, dtype::float32, std::move(shape));
}

}  // namespace detail

namespace detail {
/// MaxPool over planes of x into y, tap by tap with the output row innermost: the same taps in
/// the same order per output as over_taps, but branch-free selects over contiguous output runs
/// instead of a data-dependent branch per tap (which mispredicted on half of them).
inline void max_pool_planes(const float* x, std::int64_t planes, const window& w, float* y) {
  const std::int64_t D = w.in[0], H = w.in[1], W = w.in[2];
  const std::int64_t OD = w.out[0], OH = w.out[1], OW = w.out[2];
  for (std::int64_t p = 0; p < planes; ++p, x += w.in_size(), y += w.out_size()) {
    std::fill(y, y + w.out_size(), -std::numeric_limits<float>::infinity());
    for (std::int64_t od = 0; od < OD; ++od)
      for (std::int64_t kd = 0; kd < w.kernel[0]; ++kd) {
        const std::int64_t id = od * w.stride[0] - w.pad_begin[0] + kd * w.dilation[0];
        if (id < 0 || id >= D) continue;
        for (std::int64_t oh = 0; oh < OH; ++oh)
          for (std::int64_t kh = 0; kh < w.kernel[1]; ++kh) {
            const std::int64_t ih = oh * w.stride[1] - w.pad_begin[1] + kh * w.dilation[1];
            if (ih < 0 || ih >= H) continue;
            const float* row = x + (id * H + ih) * W;
            float* dst = y + (od * OH + oh) * OW;
            for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw) {
              const std::int64_t shift = kw * w.dilation[2] - w.pad_begin[2], s = w.stride[2];
              const std::int64_t lo = std::clamp<std::int64_t>(ceil_div(-shift, s), 0, OW);
              const std::int64_t hi = std::clamp<std::int64_t>(ceil_div(W - shift, s), lo, OW);
              for (std::int64_t ow = lo; ow < hi; ++ow) {
                const float a = dst[ow], b = row[ow * s + shift];
                const float m = b > a ? b : a;
                dst[ow] = b != b ? b : m;  // NaN propagates, as in over_taps
              }
            }
          }
      }
  }
}
}  // namespace detail

inline void max_pool(context& c) {
  c.only_first_output();
  AMCTQ_CHECK(c.n.get_int("storage_order", 0) == 0, errc::unsupported, c.where(), "storage_order 1 is not supported");
  const window w = detail::pool_window(c);
  tensor& y = detail::pool_output(c, w);
  const tensor& x = c.input(0);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  c.parallel_rows(x.dim(0) * x.dim(1), w.in_size(), [&](std::int64_t begin, std::int64_t end) {
    detail::max_pool_planes(px + begin * w.in_size(), end - begin, w, py + begin * w.out_size());
  });
}

inline void average_pool(context& c) {
  const window w = detail::pool_window(c);
  const bool include_pad = c.n.get_int("count_include_pad", 0) != 0;
  tensor& y = detail::pool_output(c, w);
  detail::pool_walk(c, c.input(0), y, w, [&](const float* x, auto& td, auto& th, auto& tw, std::int64_t padded) {
    const float s = detail::over_taps(x, w, td, th, tw, 0.0f, [](float a, float b) { return a + b; });
    const std::int64_t n = include_pad ? padded : (td.last - td.first) * (th.last - th.first) * (tw.last - tw.first);
    return n > 0 ? s / static_cast<float>(n) : 0.0f;
  });
}

namespace detail {
template <class F>
void global_pool(context& c, F reduce) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  c.require_type(x, dtype::float32, "X");
  AMCTQ_CHECK(x.rank() >= 3, errc::shape_mismatch, c.where(), "X ", shape_string(x.shape()), " must have rank >= 3");
  std::vector<std::int64_t> shape(x.rank(), 1);
  shape[0] = x.dim(0);
  shape[1] = x.dim(1);
  tensor& y = c.make_output_uninit(0, dtype::float32, shape);
  const std::int64_t planes = x.dim(0) * x.dim(1);
  const std::int64_t len = planes ? static_cast<std::int64_t>(x.size()) / planes : 0;
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (std::int64_t p = 0; p < planes; ++p) py[p] = reduce(px + p * len, len);
}
}  // namespace detail

inline void global_average_pool(context& c) {
  detail::global_pool(c, [](const float* x, std::int64_t n) {
    double s = 0;
    for (std::int64_t i = 0; i < n; ++i) s += x[i];
    return static_cast<float>(s / static_cast<double>(n));
  });
}

inline void global_max_pool(context& c) {
  detail::global_pool(c, [](const float* x, std::int64_t n) {
    float m = -std::numeric_limits<float>::infinity();
    for (std::int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
    return m;
  });
}

/// The pool ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table pool_ops() {
  return {
      {"MaxPool", max_pool}, {"AveragePool", average_pool}, {"GlobalAveragePool", global_average_pool},
      {"GlobalMaxPool", global_max_pool}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_POOL_HPP
