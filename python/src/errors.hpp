// amctq::error -> the Python classes of amctq/_errors.py, with what() as the message, so a
// Python caller reads exactly what the CLI would print.
#ifndef AMCTQ_PYTHON_ERRORS_HPP
#define AMCTQ_PYTHON_ERRORS_HPP

#include <exception>

#include <nanobind/nanobind.h>

#include "amctq/error.hpp"

namespace amctq::python {

namespace nb = nanobind;

inline void register_errors(nb::module_& m) {
  // The classes live in Python (their `code` property is Python); the module keeps them alive.
  nb::module_ errs = nb::module_::import_("amctq._errors");
  m.attr("_Error") = errs.attr("Error");
  m.attr("_FileError") = errs.attr("FileError");
  m.attr("_UnsupportedError") = errs.attr("UnsupportedError");
  static PyObject* error = m.attr("_Error").ptr();
  static PyObject* file_error = m.attr("_FileError").ptr();
  static PyObject* unsupported = m.attr("_UnsupportedError").ptr();
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const amctq::error& e) {
      PyObject* cls = e.code() == errc::io ? file_error : e.code() == errc::unsupported ? unsupported : error;
      PyErr_SetString(cls, e.what());
    }
  });
}

}  // namespace amctq::python

#endif  // AMCTQ_PYTHON_ERRORS_HPP
