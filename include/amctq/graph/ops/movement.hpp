// Ops that copy regions of a tensor without arithmetic: Slice, Split, Expand, Tile, DepthToSpace,
// SpaceToDepth. Any element type with a fixed byte width (copies go by element size).
#ifndef AMCTQ_GRAPH_OPS_MOVEMENT_HPP
#define AMCTQ_GRAPH_OPS_MOVEMENT_HPP

#include <algorithm>
#include <cstring>
#include <limits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"
#include "amctq/graph/ops/shape.hpp"

namespace amctq::graph::ops {

namespace detail {
/// y[o] = x[base + walk over `in_strides`] for every element of y's shape: a strided view copy.
inline void strided_copy(const context& c, const tensor& x, std::int64_t base, const std::vector<std::int64_t>& in_strides,
                         tensor& y) {
  if (y.size() == 0) return;
  visit_bytes(c, x.type(), [&](auto tag) {
    using U = decltype(tag);
    const U* px = reinterpret_cast<const U*>(x.bytes().data()) + base;
    U* py = reinterpret_cast<U*>(y.bytes().data());
    strided_walk<1>(y.shape(), {in_strides}, [&](std::int64_t o, const std::array<std::int64_t, 1>& off, std::int64_t n,
                                                 const std::array<std::int64_t, 1>& s) {
      if (s[0] == 1) std::memcpy(py + o, px + off[0], static_cast<std::size_t>(n) * sizeof(U));
      else for (std::int64_t i = 0; i < n; ++i) py[o + i] = px[off[0] + i * s[0]];
    });
  });
}
}  // namespace detail

/// Slice: starts / ends / axes attributes before opset 10, inputs (plus steps) from 10. Negative
/// indices count from the end, out-of-range ones clamp, negative steps walk backwards.
inline void slice(context& c) {
  const tensor& x = c.input(0);
  const auto rank = static_cast<std::int64_t>(x.rank());
  std::vector<std::int64_t> starts, ends, axes, steps;
  if (c.opset < 10) {
    c.require_inputs(1, 1);
    starts = c.n.get_ints("starts");
    ends = c.n.get_ints("ends");
    axes = c.n.get_ints("axes");
  } else {
    c.require_inputs(3, 5);
    starts = int_values(c, c.input(1), "starts");
    ends = int_values(c, c.input(2), "ends");
    if (c.has_input(3)) axes = int_values(c, c.input(3), "axes");
    if (c.has_input(4)) steps = int_values(c, c.input(4), "steps");
  }
  AMCTQ_CHECK(starts.size() == ends.size(), errc::invalid_argument, c.where(), "starts has ", starts.size(),
              " values, ends ", ends.size());
  if (axes.empty())
    for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<std::int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  AMCTQ_CHECK(axes.size() == starts.size() && steps.size() == starts.size(), errc::invalid_argument, c.where(),
              "starts, ends, axes and steps must have the same length");
  std::vector<std::int64_t> shape = x.shape(), strides = strides_of(x.shape());
  std::vector<bool> seen(x.rank(), false);
  std::int64_t base = 0;
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const auto d = static_cast<std::size_t>(normalize_axis(c, axes[i], rank));
    AMCTQ_CHECK(!seen[d], errc::invalid_argument, c.where(), "axes repeat ", d);
    seen[d] = true;
    const std::int64_t n = x.dim(d), step = steps[i];
    AMCTQ_CHECK(step != 0, errc::invalid_argument, c.where(), "steps must not be 0");
    std::int64_t b = starts[i] < 0 ? starts[i] + n : starts[i];
    std::int64_t e = ends[i] < 0 ? ends[i] + n : ends[i];
    // INT_MAX ends mean "to the end" whichever way the step goes, as in ONNX Runtime.
    if (ends[i] == std::numeric_limits<std::int64_t>::max() || ends[i] == std::numeric_limits<std::int32_t>::max())
      e = step < 0 ? -1 : n;
    std::int64_t len;
    if (n == 0) {
      len = 0;
    } else if (step > 0) {
      b = std::clamp<std::int64_t>(b, 0, n);
      e = std::clamp<std::int64_t>(e, 0, n);
      len = e > b ? (e - b + step - 1) / step : 0;
    } else {
      b = std::clamp<std::int64_t>(b, 0, n - 1);
      e = std::clamp<std::int64_t>(e, -1, n - 1);
      len = b > e ? (b - e + (-step) - 1) / (-step) : 0;
    }
    shape[d] = len;
    if (len > 0) base += b * strides[d];
    strides[d] *= step;
  }
  detail::strided_copy(c, x, base, strides, c.make_output(0, x.type(), shape));
}

/// Split along `axis`: sizes from the `split` attribute (before opset 13) or input, else equal
/// chunks, one per output; opset 18's num_outputs makes the last chunk smaller when uneven.
inline void split(context& c) {
  const tensor& x = c.input(0);
  const auto rank = static_cast<std::int64_t>(x.rank());
  const auto axis = static_cast<std::size_t>(normalize_axis(c, c.n.get_int("axis", 0), rank));
  const std::int64_t n = x.dim(axis);
  std::vector<std::int64_t> sizes;
  if (c.opset < 13) {
    c.require_inputs(1, 2);
    sizes = c.has_input(1) ? int_values(c, c.input(1), "split") : c.n.get_ints("split");  // opset 1 had an input
  } else {
    c.require_inputs(1, 2);
    if (c.has_input(1)) sizes = int_values(c, c.input(1), "split");
  }
  const auto outputs = static_cast<std::int64_t>(c.n.outputs.size());
  if (sizes.empty()) {
    const attribute* num = c.opset >= 18 ? c.n.find("num_outputs") : nullptr;
    if (num) {
      AMCTQ_CHECK(num->i == outputs, errc::invalid_argument, c.where(), "num_outputs ", num->i, " but the node has ",
                  outputs, " outputs");
      const std::int64_t chunk = (n + outputs - 1) / outputs;
      for (std::int64_t i = 0; i < outputs; ++i) sizes.push_back(std::clamp<std::int64_t>(n - i * chunk, 0, chunk));
    } else {
      AMCTQ_CHECK(outputs > 0 && n % outputs == 0, errc::shape_mismatch, c.where(), "dim ", n, " of axis ", axis,
                  " does not split evenly into ", outputs, " outputs");
      sizes.assign(static_cast<std::size_t>(outputs), n / outputs);
    }
  }
  AMCTQ_CHECK(static_cast<std::int64_t>(sizes.size()) == outputs, errc::invalid_argument, c.where(), "split has ",
              sizes.size(), " sizes, the node has ", outputs, " outputs");
  std::int64_t total = 0;
  for (auto s : sizes) {
    AMCTQ_CHECK(s >= 0, errc::invalid_argument, c.where(), "split size ", s, " is negative");
    total += s;
  }
  AMCTQ_CHECK(total == n, errc::shape_mismatch, c.where(), "split sizes sum to ", total, ", axis ", axis, " has ", n);
  const std::size_t es = element_size(x.type());
  AMCTQ_CHECK(es > 0, errc::unsupported, c.where(), "element type ", to_string(x.type()), " is not supported");
  std::int64_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= x.dim(d);
  for (std::size_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  std::int64_t at = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::vector<std::int64_t> shape = x.shape();
    shape[axis] = sizes[i];
    tensor& y = c.make_output(i, x.type(), shape);
    const std::size_t chunk = static_cast<std::size_t>(sizes[i] * inner) * es;
    for (std::int64_t o = 0; o < outer && chunk; ++o)
      std::memcpy(y.bytes().data() + static_cast<std::size_t>(o) * chunk,
                  x.bytes().data() + static_cast<std::size_t>((o * n + at) * inner) * es, chunk);
    at += sizes[i];
  }
}

/// Expand: numpy broadcast of the input against `shape` (either side may hold the 1s).
inline void expand(context& c) {
  c.require_inputs(2, 2);
  const tensor& x = c.input(0);
  const auto shape = broadcast_shapes(c, x.shape(), int_values(c, c.input(1), "shape"));
  detail::strided_copy(c, x, 0, broadcast_strides(x.shape(), shape), c.make_output(0, x.type(), shape));
}

/// Tile: output dim d is input dim d times repeats[d]; walked as [repeat_d, dim_d] pairs.
inline void tile(context& c) {
  c.require_inputs(2, 2);
  const tensor& x = c.input(0);
  const auto repeats = int_values(c, c.input(1), "repeats");
  AMCTQ_CHECK(repeats.size() == x.rank(), errc::invalid_argument, c.where(), "repeats has ", repeats.size(),
              " values, input rank is ", x.rank());
  const auto xs = strides_of(x.shape());
  std::vector<std::int64_t> shape, pairs, strides;
  for (std::size_t d = 0; d < x.rank(); ++d) {
    AMCTQ_CHECK(repeats[d] >= 0, errc::invalid_argument, c.where(), "repeats[", d, "] = ", repeats[d], " is negative");
    shape.push_back(x.dim(d) * repeats[d]);
    pairs.insert(pairs.end(), {repeats[d], x.dim(d)});
    strides.insert(strides.end(), {0, xs[d]});
  }
  tensor& y = c.make_output(0, x.type(), shape);
  y.reshape(pairs);
  detail::strided_copy(c, x, 0, strides, y);
  y.reshape(shape);
}

namespace detail {
inline std::int64_t blocksize_of(const context& c) {
  const attribute* b = c.n.find("blocksize");
  AMCTQ_CHECK(b && b->i > 0, errc::invalid_argument, c.where(), "attribute blocksize must be positive");
  return b->i;
}
}  // namespace detail

/// DepthToSpace, DCR (depth-column-row, the default) and CRD (column-row-depth) orders.
inline void depth_to_space(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  AMCTQ_CHECK(x.rank() == 4, errc::shape_mismatch, c.where(), "input ", shape_string(x.shape()), " must have rank 4");
  const std::int64_t b = detail::blocksize_of(c), N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  AMCTQ_CHECK(C % (b * b) == 0, errc::shape_mismatch, c.where(), "channels ", C, " are not a multiple of blocksize^2");
  const std::string mode = c.n.get_string("mode", "DCR");
  AMCTQ_CHECK(mode == "DCR" || mode == "CRD", errc::unsupported, c.where(), "mode '", mode, "' is not supported");
  tensor& y = c.make_output(0, x.type(), {N, C / (b * b), H * b, W * b});
  if (mode == "DCR") detail::permuted_copy(c, x, {N, b, b, C / (b * b), H, W}, {0, 3, 4, 1, 5, 2}, y);
  else detail::permuted_copy(c, x, {N, C / (b * b), b, b, H, W}, {0, 1, 4, 2, 5, 3}, y);
}

/// SpaceToDepth, the inverse; opset 28 adds the same DCR / CRD mode.
inline void space_to_depth(context& c) {
  c.require_inputs(1, 1);
  const tensor& x = c.input(0);
  AMCTQ_CHECK(x.rank() == 4, errc::shape_mismatch, c.where(), "input ", shape_string(x.shape()), " must have rank 4");
  const std::int64_t b = detail::blocksize_of(c), N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  AMCTQ_CHECK(H % b == 0 && W % b == 0, errc::shape_mismatch, c.where(), "spatial dims ", shape_string(x.shape()),
              " are not multiples of blocksize ", b);
  const std::string mode = c.n.get_string("mode", "DCR");  // an attribute from opset 28
  AMCTQ_CHECK(mode == "DCR" || mode == "CRD", errc::unsupported, c.where(), "mode '", mode, "' is not supported");
  tensor& y = c.make_output(0, x.type(), {N, C * b * b, H / b, W / b});
  if (mode == "DCR") detail::permuted_copy(c, x, {N, C, H / b, b, W / b, b}, {0, 3, 5, 1, 2, 4}, y);
  else detail::permuted_copy(c, x, {N, C, H / b, b, W / b, b}, {0, 1, 3, 5, 2, 4}, y);
}

/// The movement ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table movement_ops() {
  return {{"Slice", slice},   {"Split", split}, {"Expand", expand}, {"Tile", tile}, {"DepthToSpace", depth_to_space},
          {"SpaceToDepth", space_to_depth}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_MOVEMENT_HPP
