// Python buffers (numpy arrays, anything with the buffer protocol or DLPack) as amctq
// tensor_views, without a copy. Every array becomes a view of one fixed rank, padded with
// trailing extent-1 dims: the kernels skip extent-1 dims when they plan rows, and a trailing
// pad keeps the caller's axis numbers, so one template instantiation serves every rank.
#ifndef AMCTQ_PYTHON_ARRAYS_HPP
#define AMCTQ_PYTHON_ARRAYS_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "amctq/error.hpp"
#include "amctq/quant_spec.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq::python {

namespace nb = nanobind;

inline constexpr std::size_t max_rank = 8;

template <class T>
using view = tensor_view<T, max_rank>;

using in_array = nb::ndarray<nb::ro, nb::device::cpu>;  // read-only arrays welcome
using out_array = nb::ndarray<nb::device::cpu>;         // must be writable

inline std::string dtype_name(nb::dlpack::dtype t) {
  const char* kind = "?";
  switch (static_cast<nb::dlpack::dtype_code>(t.code)) {
    case nb::dlpack::dtype_code::Int: kind = "int"; break;
    case nb::dlpack::dtype_code::UInt: kind = "uint"; break;
    case nb::dlpack::dtype_code::Float: kind = "float"; break;
    case nb::dlpack::dtype_code::Bool: return "bool";
    default: kind = "other"; break;
  }
  return std::string(kind) + std::to_string(t.bits);
}

template <class T>
bool holds(const nb::dlpack::dtype& t) {
  return t == nb::dtype<T>();
}

/// The axis a caller gave (None -> per_tensor, negative counts from the end), checked against
/// the array's rank here because the padded view would accept any axis below max_rank.
inline int normalize_axis(const nb::handle& axis, std::size_t ndim, const char* where) {
  if (axis.is_none()) return per_tensor;
  const long a = nb::cast<long>(axis);
  const long n = static_cast<long>(ndim);
  AMCTQ_CHECK(a >= -n && a < n, errc::invalid_argument, where, "axis ", a, " is out of range for an array of rank ",
              ndim);
  return static_cast<int>(a < 0 ? a + n : a);
}

/// View of `a` as T (which must be its dtype: no silent conversion, the caller is told how
/// to convert).
template <class T, class Array>
view<T> as_view(const Array& a, const char* name, const char* where) {
  using U = std::remove_const_t<T>;
  AMCTQ_CHECK(holds<U>(a.dtype()), errc::invalid_argument, where, name, " has dtype ", dtype_name(a.dtype()),
              ", expected ", dtype_name(nb::dtype<U>()), " (amctq reads buffers in place and does not convert them)");
  AMCTQ_CHECK(a.ndim() <= max_rank, errc::invalid_argument, where, name, " has rank ", a.ndim(), "; at most ",
              max_rank, " is supported");
  typename view<T>::extents_type e{}, s{};
  for (std::size_t r = 0; r < max_rank; ++r) {
    e[r] = r < a.ndim() ? static_cast<std::ptrdiff_t>(a.shape(r)) : 1;
    s[r] = r < a.ndim() ? static_cast<std::ptrdiff_t>(a.stride(r)) : 1;
  }
  return view<T>(static_cast<T*>(const_cast<void*>(static_cast<const void*>(a.data()))), e, s);
}

/// Throws unless out has x's shape (named as the caller names them).
template <class A, class B>
void check_same_shape(const A& x, const B& out, const char* where) {
  bool same = x.ndim() == out.ndim();
  for (std::size_t r = 0; same && r < x.ndim(); ++r) same = x.shape(r) == out.shape(r);
  AMCTQ_CHECK(same, errc::shape_mismatch, where, "out must have the shape of the input");
}

}  // namespace amctq::python

#endif  // AMCTQ_PYTHON_ARRAYS_HPP
