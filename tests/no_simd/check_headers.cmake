# For each header under include/amctq (top level), kernels/ and algorithms/: compile it alone
# with -DAMCTQ_NO_SIMD and only include/ on the path, then fail if its dependency list names
# xsimd, Eigen or nlohmann.
file(GLOB headers ${ROOT}/include/amctq/*.hpp ${ROOT}/include/amctq/kernels/*.hpp
     ${ROOT}/include/amctq/kernels/detail/*.hpp ${ROOT}/include/amctq/algorithms/*.hpp
     ${ROOT}/include/amctq/algorithms/detail/*.hpp)
set(failed "")
foreach(h ${headers})
  file(RELATIVE_PATH rel ${ROOT}/include ${h})
  execute_process(COMMAND ${CXX} -std=c++17 -fsyntax-only -DAMCTQ_NO_SIMD -Wall -Wextra -Werror
                          -I${ROOT}/include -M -x c++ ${h}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE deps ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    list(APPEND failed "${rel}: does not compile alone with AMCTQ_NO_SIMD:\n${err}")
  elseif(deps MATCHES "xsimd|eigen3|nlohmann")
    list(APPEND failed "${rel}: includes a third-party header under AMCTQ_NO_SIMD")
  endif()
endforeach()
list(LENGTH headers n)
if(failed)
  string(REPLACE ";" "\n" msg "${failed}")
  message(FATAL_ERROR "${msg}")
endif()
message(STATUS "${n} headers compile alone with AMCTQ_NO_SIMD and the standard library only")
