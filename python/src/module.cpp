// amctq._core: the C++ half of the amctq Python package (python/amctq/__init__.py is the API).
#include "bindings.hpp"
#include "errors.hpp"

NB_MODULE(_core, m) {
  amctq::python::register_errors(m);
  amctq::python::bind_kernels(m);
  amctq::python::bind_observer(m);
  amctq::python::bind_pipeline(m);
}
