// fake_quantize, quantize, dequantize on caller-owned buffers: the arrays are viewed in place,
// the output is written where the caller says (the Python layer allocates it when not given),
// and the GIL is released while the kernel runs.
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "amctq/algorithms/lsq.hpp"
#include "amctq/amctq.hpp"
#include "arrays.hpp"
#include "bindings.hpp"

namespace amctq::python {

namespace {

round_mode round_mode_from(const std::string& s, const char* where) {
  for (round_mode m : {round_mode::half_even, round_mode::half_away, round_mode::half_up, round_mode::half_down})
    if (s == to_string(m)) return m;
  AMCTQ_THROW(errc::invalid_argument, where, "unknown round_mode '", s, "' (half_even, half_away, half_up, half_down)");
}

// Calls f(Q{}) with Q the integer code type of dtype t.
template <class F>
void with_code_type(nb::dlpack::dtype t, const char* name, const char* where, F&& f) {
  if (holds<std::int8_t>(t)) f(std::int8_t{});
  else if (holds<std::uint8_t>(t)) f(std::uint8_t{});
  else if (holds<std::int16_t>(t)) f(std::int16_t{});
  else if (holds<std::uint16_t>(t)) f(std::uint16_t{});
  else if (holds<std::int32_t>(t)) f(std::int32_t{});
  else AMCTQ_THROW(errc::invalid_argument, where, name, " has dtype ", dtype_name(t), "; codes are int8, uint8, int16, uint16 or int32");
}

struct grid_args {
  std::vector<float> scale;
  std::vector<std::int32_t> zero_point;
  int bits;
  bool is_signed;
  bool narrow_range;
  nb::object axis;
};

quant_params params_for(const grid_args& g, std::size_t ndim, const char* where) {
  quant_spec spec;
  spec.bits = g.bits;
  spec.is_signed = g.is_signed;
  spec.narrow_range = g.narrow_range;
  validate(spec, where);
  const qrange r = integer_range(spec);
  quant_params p;
  p.scale = g.scale;
  p.zero_point = g.zero_point;
  p.qmin = r.qmin;
  p.qmax = r.qmax;
  p.axis = normalize_axis(g.axis, ndim, where);
  validate(p, where);
  return p;
}

void fake_quantize_into(const in_array& x, const out_array& out, const grid_args& g, const std::string& mode,
                        const nb::object& mask) {
  constexpr const char* where = "fake_quantize";
  check_same_shape(x, out, where);
  const quant_params p = params_for(g, x.ndim(), where);
  const round_mode m = round_mode_from(mode, where);
  const auto xv = as_view<const float>(x, "x", where);
  const auto yv = as_view<float>(out, "out", where);
  std::uint8_t* bits = nullptr;
  if (!mask.is_none()) {
    const auto mk = nb::cast<out_array>(mask);
    const auto need = static_cast<std::size_t>((xv.size() + 7) / 8);
    AMCTQ_CHECK(holds<std::uint8_t>(mk.dtype()) && mk.ndim() == 1 && mk.shape(0) == need &&
                    (need == 0 || mk.stride(0) == 1),
                errc::invalid_argument, where, "mask must be a contiguous uint8 array of ", need, " bytes");
    bits = static_cast<std::uint8_t*>(mk.data());
  }
  nb::gil_scoped_release unlocked;
  fake_quantize(xv, yv, p, m, bits);
}

void quantize_into(const in_array& x, const out_array& out, const grid_args& g, const std::string& mode) {
  constexpr const char* where = "quantize";
  check_same_shape(x, out, where);
  const quant_params p = params_for(g, x.ndim(), where);
  const round_mode m = round_mode_from(mode, where);
  const auto xv = as_view<const float>(x, "x", where);
  auto run = [&](auto code) {
    using Q = decltype(code);
    const auto qv = as_view<Q>(out, "out", where);
    nb::gil_scoped_release unlocked;
    quantize(xv, qv, p, m);
  };
  with_code_type(out.dtype(), "out", where, run);
}

void dequantize_into(const in_array& q, const out_array& out, const grid_args& g) {
  constexpr const char* where = "dequantize";
  check_same_shape(q, out, where);
  const quant_params p = params_for(g, q.ndim(), where);
  const auto yv = as_view<float>(out, "out", where);
  auto run = [&](auto code) {
    using Q = decltype(code);
    const auto qv = as_view<const Q>(q, "q", where);
    nb::gil_scoped_release unlocked;
    dequantize(qv, yv, p);
  };
  with_code_type(q.dtype(), "q", where, run);
}

// QAT backward (algorithms/lsq.hpp): dx written into `dx`, the parameter gradients returned.
std::pair<std::vector<float>, std::vector<float>> lsq_backward_into(const in_array& x, const in_array& dy,
                                                                    const out_array& dx, const grid_args& g,
                                                                    float grad_scale, const std::string& mode) {
  constexpr const char* where = "lsq_backward";
  check_same_shape(x, dy, where);
  check_same_shape(x, dx, where);
  const quant_params p = params_for(g, x.ndim(), where);
  const round_mode m = round_mode_from(mode, where);
  const auto xv = as_view<const float>(x, "x", where);
  const auto gv = as_view<const float>(dy, "dy", where);
  const auto dv = as_view<float>(dx, "dx", where);
  std::vector<float> ds(p.scale.size()), dz(p.scale.size());
  nb::gil_scoped_release unlocked;
  lsq_backward(xv, gv, p, dv, ds.data(), dz.data(), grad_scale, m);
  return {ds, dz};
}

std::pair<std::vector<float>, std::vector<float>> ulq_backward_into(const in_array& x, const in_array& dy,
                                                                    const out_array& dx, const std::vector<float>& cmin,
                                                                    const std::vector<float>& cmax, int bits,
                                                                    bool fixed_min, const nb::object& axis,
                                                                    float grad_scale) {
  constexpr const char* where = "ulq_backward";
  check_same_shape(x, dy, where);
  check_same_shape(x, dx, where);
  const int a = normalize_axis(axis, x.ndim(), where);
  const auto xv = as_view<const float>(x, "x", where);
  const auto gv = as_view<const float>(dy, "dy", where);
  const auto dv = as_view<float>(dx, "dx", where);
  std::vector<float> dmin(cmax.size()), dmax(cmax.size());
  nb::gil_scoped_release unlocked;
  ulq_backward(xv, gv, cmin, cmax, bits, fixed_min, a, dv, dmin.data(), dmax.data(), grad_scale);
  return {dmin, dmax};
}

}  // namespace

void bind_kernels(nb::module_& m) {
  m.def(
      "_fake_quantize",
      [](const in_array& x, const out_array& out, std::vector<float> scale, std::vector<std::int32_t> zp, int bits,
         bool is_signed, bool narrow, nb::object axis, const std::string& mode, nb::object mask) {
        fake_quantize_into(x, out, {std::move(scale), std::move(zp), bits, is_signed, narrow, std::move(axis)}, mode,
                           mask);
      },
      nb::arg("x"), nb::arg("out"), nb::arg("scale"), nb::arg("zero_point"), nb::arg("bits"), nb::arg("signed"),
      nb::arg("narrow_range"), nb::arg("axis").none(), nb::arg("round_mode"), nb::arg("mask").none());
  m.def(
      "_quantize",
      [](const in_array& x, const out_array& out, std::vector<float> scale, std::vector<std::int32_t> zp, int bits,
         bool is_signed, bool narrow, nb::object axis, const std::string& mode) {
        quantize_into(x, out, {std::move(scale), std::move(zp), bits, is_signed, narrow, std::move(axis)}, mode);
      },
      nb::arg("x"), nb::arg("out"), nb::arg("scale"), nb::arg("zero_point"), nb::arg("bits"), nb::arg("signed"),
      nb::arg("narrow_range"), nb::arg("axis").none(), nb::arg("round_mode"));
  m.def(
      "_dequantize",
      [](const in_array& q, const out_array& out, std::vector<float> scale, std::vector<std::int32_t> zp, int bits,
         bool is_signed, bool narrow, nb::object axis) {
        dequantize_into(q, out, {std::move(scale), std::move(zp), bits, is_signed, narrow, std::move(axis)});
      },
      nb::arg("q"), nb::arg("out"), nb::arg("scale"), nb::arg("zero_point"), nb::arg("bits"), nb::arg("signed"),
      nb::arg("narrow_range"), nb::arg("axis").none());
  m.def(
      "_lsq_backward",
      [](const in_array& x, const in_array& dy, const out_array& dx, std::vector<float> scale,
         std::vector<std::int32_t> zp, int bits, nb::object axis, float grad_scale, const std::string& mode) {
        return lsq_backward_into(x, dy, dx, {std::move(scale), std::move(zp), bits, true, false, std::move(axis)},
                                 grad_scale, mode);
      },
      nb::arg("x"), nb::arg("dy"), nb::arg("dx"), nb::arg("scale"), nb::arg("zero_point"), nb::arg("bits"),
      nb::arg("axis").none(), nb::arg("grad_scale"), nb::arg("round_mode"));
  m.def("_ulq_backward", &ulq_backward_into, nb::arg("x"), nb::arg("dy"), nb::arg("dx"), nb::arg("clip_min"),
        nb::arg("clip_max"), nb::arg("bits"), nb::arg("fixed_min"), nb::arg("axis").none(), nb::arg("grad_scale"));
  m.def(
      "_ulq_params",
      [](std::vector<float> cmin, std::vector<float> cmax, int bits, bool fixed_min) {
        const quant_params p = ulq_params(cmin, cmax, bits, fixed_min, cmax.size() == 1 ? per_tensor : 0);
        return std::make_tuple(p.scale, p.zero_point, p.qmin, p.qmax);
      },
      nb::arg("clip_min"), nb::arg("clip_max"), nb::arg("bits"), nb::arg("fixed_min"));
}

}  // namespace amctq::python
