// Resize (opsets 10-19) and Upsample (opsets 7-9): nearest (every nearest_mode, any fixed-width
// element type), linear and cubic (float32), every coordinate_transformation_mode, scales or sizes,
// opset 18's axes, keep_aspect_ratio_policy and antialias. Interpolation is separable, so the op runs
// one pass per resized axis, each from a precomputed table of (source row, weight) taps per output row.
#ifndef AMCTQ_GRAPH_OPS_RESIZE_HPP
#define AMCTQ_GRAPH_OPS_RESIZE_HPP

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

namespace detail {

enum class resize_mode { nearest, linear, cubic };

struct resize_options {
  resize_mode mode = resize_mode::nearest;
  std::string transform = "half_pixel";   ///< coordinate_transformation_mode
  std::string nearest = "round_prefer_floor";  ///< nearest_mode; "simple" is opset 10 / Upsample
  float cubic_a = -0.75f;
  bool exclude_outside = false;
  bool antialias = false;  ///< opset 18: linear / cubic kernel stretched by 1 / scale when downsampling
  float extrapolation = 0.0f;
};

/// One axis of the resize: for output row j, taps[j*k + t] source rows with weights; `outside[j]`
/// marks rows tf_crop_and_resize puts outside the input (they take the extrapolation value).
struct resize_table {
  std::size_t k = 1;
  std::vector<std::int64_t> index;
  std::vector<float> weight;
  std::vector<char> outside;
  bool identity(std::int64_t in_len) const {
    if (static_cast<std::int64_t>(outside.size()) != in_len) return false;
    for (std::size_t j = 0; j < outside.size(); ++j) {
      if (outside[j]) return false;
      for (std::size_t t = 0; t < k; ++t) {
        const float w = weight[j * k + t];
        if (w != 0.0f && (w != 1.0f || index[j * k + t] != static_cast<std::int64_t>(j))) return false;
      }
    }
    return true;
  }
};

/// Output row j's coordinate in the input (ONNX's coordinate_transformation_mode), computed in
/// float like ONNX Runtime: nearest rounding of coordinates that land on .0 / .5 depends on it.
inline float original_coordinate(const context& c, const std::string& m, float j, float scale, float in_len,
                                 float out_len, float roi_start, float roi_end) {
  if (m == "half_pixel") return (j + 0.5f) / scale - 0.5f;
  if (m == "pytorch_half_pixel") return out_len > 1 ? (j + 0.5f) / scale - 0.5f : 0.0f;
  if (m == "align_corners") return out_len == 1 ? 0.0f : j * (in_len - 1) / (out_len - 1);
  if (m == "asymmetric") return j / scale;
  if (m == "tf_half_pixel_for_nn") return (j + 0.5f) / scale;
  if (m == "half_pixel_symmetric") {
    const float adjustment = out_len / (scale * in_len), center = in_len / 2, offset = center * (1 - adjustment);
    return static_cast<float>(offset + (j + 0.5) / scale - 0.5);  // the tail in double, as ORT has it
  }
  AMCTQ_CHECK(m == "tf_crop_and_resize", errc::unsupported, c.where(), "coordinate_transformation_mode '", m,
              "' is not supported");
  return out_len > 1 ? roi_start * (in_len - 1) + j * (roi_end - roi_start) * (in_len - 1) / (out_len - 1)
                     : 0.5f * (roi_start + roi_end) * (in_len - 1);
}

inline std::int64_t nearest_index(const context& c, const std::string& m, double x, bool downsampling) {
  if (m == "round_prefer_floor") return static_cast<std::int64_t>(x == std::floor(x) + 0.5 ? std::floor(x) : std::round(x));
  if (m == "round_prefer_ceil") return static_cast<std::int64_t>(std::ceil(x) - x == 0.5 ? std::ceil(x) : std::round(x));
  if (m == "floor") return static_cast<std::int64_t>(std::floor(x));
  if (m == "ceil") return static_cast<std::int64_t>(std::ceil(x));
  AMCTQ_CHECK(m == "simple", errc::unsupported, c.where(), "nearest_mode '", m, "' is not supported");
  return static_cast<std::int64_t>(downsampling ? std::ceil(x) : std::floor(x));
}

/// The cubic convolution kernel (Keys, coefficient a) at distance |s| <= 1 and 1 < |s| < 2.
inline double cubic_near(double s, double a) { return ((a + 2) * s - (a + 3)) * s * s + 1; }
inline double cubic_far(double s, double a) { return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a; }

inline void cubic_weights(double r, double a, double w[4]) {
  w[0] = cubic_far(1 + r, a);
  w[1] = cubic_near(r, a);
  w[2] = cubic_near(1 - r, a);
  w[3] = cubic_far(2 - r, a);
}

/// Taps of one output row (at source coordinate x) into w / first, t.k of them.
/// Without antialias: linear's 2 or cubic's 4 neighbours of x. With antialias (opset 18), as ONNX's
/// reference and ONNX Runtime define it: the kernel (triangle of support 1, cubic of support 2) is
/// evaluated at s * (i - x) with s = min(scale, 1), so when downsampling it is stretched over
/// ceil(support / s) source rows each side of x; the weights are normalised to sum 1. The k rows
/// start k / 2 - 1 left of floor(x) (of x - 1 when x is whole, as in ONNX's reference): every row
/// the stretched kernel reaches, plus rows of weight 0.
inline void interpolation_taps(const resize_options& o, double x, double scale, std::size_t k, double* w,
                               std::int64_t& first) {
  const double f = std::floor(x), r = x - f;
  if (!o.antialias) {
    first = static_cast<std::int64_t>(f);
    w[0] = 1 - r;
    w[1] = r;
    if (o.mode == resize_mode::cubic) {
      cubic_weights(r, o.cubic_a, w);
      --first;
    }
    return;
  }
  const double s = std::min(scale, 1.0);
  const auto base = static_cast<std::int64_t>(r == 0 ? f - 1 : f);
  first = base + 1 - static_cast<std::int64_t>(k / 2);
  for (std::size_t t = 0; t < k; ++t) {
    const double u = std::abs(s * (static_cast<double>(first + static_cast<std::int64_t>(t)) - x));
    if (o.mode == resize_mode::linear) w[t] = std::max(0.0, 1 - u);
    else w[t] = u <= 1 ? cubic_near(u, o.cubic_a) : u < 2 ? cubic_far(u, o.cubic_a) : 0.0;
  }
}

/// Taps per output row: 1 (nearest), 2 (linear), 4 (cubic); with antialias 2 * ceil(support / s).
inline std::size_t taps_per_row(const resize_options& o, double scale) {
  if (o.mode == resize_mode::nearest) return 1;
  const double support = o.mode == resize_mode::linear ? 1 : 2;
  if (!o.antialias) return static_cast<std::size_t>(2 * support);
  return 2 * static_cast<std::size_t>(std::ceil(support / std::min(scale, 1.0)));
}

inline resize_table make_resize_table(const context& c, const resize_options& o, std::int64_t in_len, std::int64_t out_len,
                                      double scale, double roi_start, double roi_end) {
  resize_table t;
  const auto n = static_cast<std::size_t>(out_len);
  t.k = n == 0 ? 1 : taps_per_row(o, scale);  // no rows: sizes of 0 give scale 0
  t.index.assign(n * t.k, 0);
  t.weight.assign(n * t.k, 0.0f);
  t.outside.assign(n, 0);
  std::vector<double> w(t.k);
  for (std::size_t j = 0; j < n; ++j) {
    const double x = original_coordinate(c, o.transform, static_cast<float>(j), static_cast<float>(scale),
                                         static_cast<float>(in_len), static_cast<float>(out_len),
                                         static_cast<float>(roi_start), static_cast<float>(roi_end));
    if (o.transform == "tf_crop_and_resize" && (x < 0 || x > static_cast<double>(in_len - 1))) {
      t.outside[j] = 1;
      continue;
    }
    auto clamp = [in_len](std::int64_t i) { return std::clamp<std::int64_t>(i, 0, in_len - 1); };
    if (o.mode == resize_mode::nearest) {
      t.index[j] = clamp(nearest_index(c, o.nearest, x, scale < 1));
      t.weight[j] = 1.0f;
      continue;
    }
    std::int64_t first = 0;
    interpolation_taps(o, x, scale, t.k, w.data(), first);
    double sum = 0;
    for (std::size_t k = 0; k < t.k; ++k) {
      const std::int64_t i = first + static_cast<std::int64_t>(k);
      if (o.exclude_outside && (i < 0 || i >= in_len)) w[k] = 0;
      sum += w[k];
    }
    // Rows past the edges take the edge row's value (so their weight adds to it) unless
    // exclude_outside drops them; either way antialias and exclude_outside renormalise.
    const bool normalise = (o.exclude_outside || o.antialias) && sum != 0;
    for (std::size_t k = 0; k < t.k; ++k) {
      t.index[j * t.k + k] = clamp(first + static_cast<std::int64_t>(k));
      t.weight[j * t.k + k] = static_cast<float>(normalise ? w[k] / sum : w[k]);
    }
  }
  return t;
}

/// One pass: `src` resized along `axis` by table `t` into a new tensor.
inline tensor resize_axis(const context& c, const resize_options& o, const tensor& src, std::size_t axis,
                          std::int64_t out_len, const resize_table& t) {
  std::vector<std::int64_t> shape = src.shape();
  const std::int64_t in_len = shape[axis];
  shape[axis] = out_len;
  tensor dst(src.type(), shape);
  std::int64_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= shape[d];
  for (std::size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  const auto in_ = static_cast<std::size_t>(inner);
  if (o.mode == resize_mode::nearest) {
    visit_bytes(c, src.type(), [&](auto tag) {
      using U = decltype(tag);
      U fill{};
      if (o.transform == "tf_crop_and_resize")
        visit_numeric(c, src.type(), [&](auto num) {
          using V = decltype(num);
          if constexpr (sizeof(V) == sizeof(U)) {
            const auto v = static_cast<V>(o.extrapolation);
            std::memcpy(&fill, &v, sizeof(U));
          }
        });
      const U* ps = reinterpret_cast<const U*>(src.bytes().data());
      U* pd = reinterpret_cast<U*>(dst.bytes().data());
      for (std::int64_t b = 0; b < outer; ++b)
        for (std::int64_t j = 0; j < out_len; ++j) {
          U* row = pd + (b * out_len + j) * inner;
          const U* from = ps + (b * in_len + t.index[static_cast<std::size_t>(j)]) * inner;
          if (t.outside[static_cast<std::size_t>(j)]) std::fill(row, row + in_, fill);
          else if (in_ == 1) *row = *from;  // the last axis: one element a row
          else std::memcpy(row, from, in_ * sizeof(U));
        }
    });
    return dst;
  }
  const float* ps = src.data<float>();
  float* pd = dst.data<float>();
  for (std::int64_t b = 0; b < outer; ++b)
    for (std::int64_t j = 0; j < out_len; ++j) {
      float* row = pd + (b * out_len + j) * inner;
      const auto jj = static_cast<std::size_t>(j);
      if (t.outside[jj]) {
        std::fill(row, row + in_, o.extrapolation);
        continue;
      }
      std::fill(row, row + in_, 0.0f);
      for (std::size_t k = 0; k < t.k; ++k) {
        const float w = t.weight[jj * t.k + k];
        if (w == 0.0f) continue;
        const float* s = ps + (b * in_len + t.index[jj * t.k + k]) * inner;
        for (std::size_t i = 0; i < in_; ++i) row[i] += w * s[i];
      }
    }
  return dst;
}

/// Resizes every axis whose table is not the identity, one pass each, into c.out[0].
inline void run_resize(context& c, const resize_options& o, const std::vector<std::int64_t>& out_shape,
                       const std::vector<double>& scales, const std::vector<double>& roi) {
  const tensor& x = c.input(0);
  if (o.mode != resize_mode::nearest) c.require_type(x, dtype::float32, "X");
  const std::size_t r = x.rank();
  tensor cur = x;
  for (std::size_t d = 0; d < r; ++d) {
    const double rs = roi.empty() ? 0.0 : roi[d], re = roi.empty() ? 1.0 : roi[r + d];
    if (out_shape[d] == x.dim(d) && scales[d] == 1.0 && o.transform != "tf_crop_and_resize") continue;
    AMCTQ_CHECK(x.dim(d) > 0 || out_shape[d] == 0, errc::shape_mismatch, c.where(), "cannot resize empty dim ", d,
                " to ", out_shape[d]);
    const resize_table t = make_resize_table(c, o, x.dim(d), out_shape[d], scales[d], rs, re);
    if (t.identity(x.dim(d))) continue;
    cur = resize_axis(c, o, cur, d, out_shape[d], t);
  }
  c.out[0] = std::move(cur);
}

inline resize_mode resize_mode_of(const context& c) {
  const std::string m = c.n.get_string("mode", "nearest");
  if (m == "nearest") return resize_mode::nearest;
  if (m == "linear" || m == "bilinear") return resize_mode::linear;
  AMCTQ_CHECK(m == "cubic", errc::unsupported, c.where(), "mode '", m, "' is not supported");
  return resize_mode::cubic;
}

inline std::vector<double> float_values(const context& c, const tensor& t, const char* what) {
  std::vector<double> v(t.size());
  if (t.type() == dtype::float32) std::copy(t.data<float>(), t.data<float>() + t.size(), v.begin());
  else if (t.type() == dtype::float64) std::copy(t.data<double>(), t.data<double>() + t.size(), v.begin());
  else AMCTQ_THROW(errc::unsupported, c.where(), what, " must be float or double, got ", to_string(t.type()));
  return v;
}

/// Output dims from scales as ORT computes them: floor(float(scale) * dim).
inline std::vector<std::int64_t> dims_from_scales(const context& c, const tensor& x, const std::vector<double>& scales) {
  AMCTQ_CHECK(scales.size() == x.rank(), errc::invalid_argument, c.where(), "scales has ", scales.size(),
              " values, input rank is ", x.rank());
  std::vector<std::int64_t> shape(x.rank());
  for (std::size_t d = 0; d < x.rank(); ++d) {
    AMCTQ_CHECK(scales[d] > 0, errc::invalid_argument, c.where(), "scales[", d, "] = ", scales[d], " must be positive");
    shape[d] = static_cast<std::int64_t>(std::floor(static_cast<float>(scales[d]) * static_cast<float>(x.dim(d))));
  }
  return shape;
}

inline bool present(const context& c, std::size_t i) { return c.has_input(i) && c.input(i).size() > 0; }

}  // namespace detail

/// Upsample (opsets 7-9; scales an attribute at 7, an input at 9): asymmetric coordinates,
/// nearest takes floor (ceil when shrinking), linear interpolates.
inline void upsample(context& c) {
  c.require_inputs(1, 2);
  detail::resize_options o;
  o.mode = detail::resize_mode_of(c);
  AMCTQ_CHECK(o.mode != detail::resize_mode::cubic, errc::unsupported, c.where(), "mode 'cubic' is not supported");
  o.transform = "asymmetric";
  o.nearest = "simple";
  const std::vector<double> scales = c.opset < 9 ? [&] {
    const attribute* a = c.n.find("scales");
    AMCTQ_CHECK(a, errc::invalid_argument, c.where(), "attribute scales is required");
    return std::vector<double>(a->floats.begin(), a->floats.end());
  }() : detail::float_values(c, c.input(1), "scales");
  detail::run_resize(c, o, detail::dims_from_scales(c, c.input(0), scales), scales, {});
}

/// Resize (opsets 10-19). Opset 10 behaves like Upsample; from 11 the attributes choose the
/// coordinate transform, nearest rounding, cubic coefficient and extrapolation; 18 adds axes,
/// keep_aspect_ratio_policy and antialias (linear and cubic).
inline void resize(context& c) {
  const tensor& x = c.input(0);
  const std::size_t r = x.rank();
  detail::resize_options o;
  o.mode = detail::resize_mode_of(c);
  if (c.opset < 11) {
    c.require_inputs(2, 2);
    AMCTQ_CHECK(o.mode != detail::resize_mode::cubic, errc::unsupported, c.where(), "mode 'cubic' needs opset 11");
    o.transform = "asymmetric";
    o.nearest = "simple";
    const auto scales = detail::float_values(c, c.input(1), "scales");
    detail::run_resize(c, o, detail::dims_from_scales(c, x, scales), scales, {});
    return;
  }
  c.require_inputs(1, 4);
  o.transform = c.n.get_string("coordinate_transformation_mode", "half_pixel");
  o.nearest = c.n.get_string("nearest_mode", "round_prefer_floor");
  AMCTQ_CHECK(o.nearest != "simple", errc::unsupported, c.where(), "nearest_mode 'simple' is not supported");
  o.cubic_a = c.n.get_float("cubic_coeff_a", -0.75f);
  o.exclude_outside = c.n.get_int("exclude_outside", 0) != 0;
  o.extrapolation = c.n.get_float("extrapolation_value", 0.0f);
  o.antialias = c.opset >= 18 && c.n.get_int("antialias", 0) != 0;  // the attribute is new in 18
  AMCTQ_CHECK(!o.antialias || o.mode != detail::resize_mode::nearest, errc::invalid_argument, c.where(),
              "antialias needs mode linear or cubic");
  std::vector<std::int64_t> axes = c.n.get_ints("axes");
  if (axes.empty())
    for (std::size_t d = 0; d < r; ++d) axes.push_back(static_cast<std::int64_t>(d));
  std::vector<bool> seen(r, false);
  for (auto& a : axes) {
    a = normalize_axis(c, a, static_cast<std::int64_t>(r));
    AMCTQ_CHECK(!seen[static_cast<std::size_t>(a)], errc::invalid_argument, c.where(), "axes repeat ", a);
    seen[static_cast<std::size_t>(a)] = true;
  }
  // roi: starts then ends for the listed axes; the others keep [0, 1].
  std::vector<double> roi;
  if (o.transform == "tf_crop_and_resize") {
    AMCTQ_CHECK(detail::present(c, 1), errc::invalid_argument, c.where(), "tf_crop_and_resize needs roi");
    const auto given = detail::float_values(c, c.input(1), "roi");
    AMCTQ_CHECK(given.size() == 2 * axes.size(), errc::invalid_argument, c.where(), "roi has ", given.size(),
                " values, expected ", 2 * axes.size());
    roi.assign(2 * r, 0.0);
    std::fill(roi.begin() + static_cast<std::ptrdiff_t>(r), roi.end(), 1.0);
    for (std::size_t i = 0; i < axes.size(); ++i) {
      roi[static_cast<std::size_t>(axes[i])] = given[i];
      roi[r + static_cast<std::size_t>(axes[i])] = given[axes.size() + i];
    }
  }
  std::vector<double> scales(r, 1.0);
  std::vector<std::int64_t> shape = x.shape();
  const bool has_scales = detail::present(c, 2), has_sizes = detail::present(c, 3);
  AMCTQ_CHECK(has_scales != has_sizes, errc::invalid_argument, c.where(), "exactly one of scales and sizes must be given");
  if (has_scales) {
    const auto given = detail::float_values(c, c.input(2), "scales");
    AMCTQ_CHECK(given.size() == axes.size(), errc::invalid_argument, c.where(), "scales has ", given.size(),
                " values, expected ", axes.size());
    for (std::size_t i = 0; i < axes.size(); ++i) scales[static_cast<std::size_t>(axes[i])] = given[i];
    shape = detail::dims_from_scales(c, x, scales);
  } else {
    const auto given = int_values(c, c.input(3), "sizes");
    AMCTQ_CHECK(given.size() == axes.size(), errc::invalid_argument, c.where(), "sizes has ", given.size(),
                " values, expected ", axes.size());
    const std::string policy = c.n.get_string("keep_aspect_ratio_policy", "stretch");
    AMCTQ_CHECK(policy == "stretch" || policy == "not_larger" || policy == "not_smaller", errc::unsupported, c.where(),
                "keep_aspect_ratio_policy '", policy, "' is not supported");
    if (policy == "stretch") {
      for (std::size_t i = 0; i < axes.size(); ++i) {
        const auto d = static_cast<std::size_t>(axes[i]);
        shape[d] = given[i];
        scales[d] = static_cast<double>(static_cast<float>(given[i]) / static_cast<float>(x.dim(d)));
      }
    } else {
      // One scale for all the axes (the smallest or largest ratio), output dims rounded, in float like ORT.
      float s = policy == "not_larger" ? std::numeric_limits<float>::max() : 0.0f;
      for (std::size_t i = 0; i < axes.size(); ++i) {
        const float q = static_cast<float>(given[i]) / static_cast<float>(x.dim(static_cast<std::size_t>(axes[i])));
        s = policy == "not_larger" ? std::min(s, q) : std::max(s, q);
      }
      for (auto a : axes) {
        const auto d = static_cast<std::size_t>(a);
        scales[d] = s;
        shape[d] = static_cast<std::int64_t>(std::round(s * static_cast<float>(x.dim(d))));
      }
    }
  }
  for (std::size_t d = 0; d < r; ++d)
    AMCTQ_CHECK(shape[d] >= 0, errc::invalid_argument, c.where(), "output dim ", d, " = ", shape[d], " is negative");
  detail::run_resize(c, o, shape, scales, roi);
}

/// The resize ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table resize_ops() { return {{"Resize", resize}, {"Upsample", upsample}}; }

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_RESIZE_HPP
