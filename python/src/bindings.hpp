// The parts of the _core extension module, one function per source file.
#ifndef AMCTQ_PYTHON_BINDINGS_HPP
#define AMCTQ_PYTHON_BINDINGS_HPP

#include <nanobind/nanobind.h>

namespace amctq::python {

void bind_kernels(nanobind::module_& m);
void bind_observer(nanobind::module_& m);
void bind_pipeline(nanobind::module_& m);

}  // namespace amctq::python

#endif  // AMCTQ_PYTHON_BINDINGS_HPP
