# Proves that check_headers.cmake can fail: writes a small include tree to ${OUT}/fixture with
# one deliberate violation of each rule next to allowed includes, runs the checker on it, and
# passes only if the checker fails and reports exactly the expected file:line entries, each
# with its rule (no violation missed, none invented).
# usage: cmake -DCXX=... -DCHECKER=.../check_headers.cmake -DOUT=... -P this file
cmake_minimum_required(VERSION 3.16)

set(root ${OUT}/fixture)
file(REMOVE_RECURSE ${root})
function(put rel)
  string(REPLACE ";" "\n" text "${ARGN}")  # one argument a line; SEMI stands for a semicolon
  string(REPLACE "SEMI" ";" text "${text}")
  file(WRITE ${root}/include/${rel} "${text}\n")
endfunction()

# Allowed: each layer includes itself and those below, quoted names resolve next to the includer.
put(amctq/config.hpp "#include <cstddef>")
put(amctq/vocab.hpp "#include \"amctq/config.hpp\"" "#include \"config.hpp\"")
put(amctq/kernels/detail/kd.hpp "#include \"amctq/vocab.hpp\"")
put(amctq/kernels/k.hpp "#include \"amctq/config.hpp\"" "#include \"detail/kd.hpp\"")
put(amctq/algorithms/a.hpp "#include \"amctq/kernels/k.hpp\"" "#include \"../vocab.hpp\"")
put(amctq/graph/g.hpp "#include \"amctq/algorithms/a.hpp\"")
put(amctq/io/i.hpp "#include \"amctq/graph/g.hpp\"")
put(amctq/dist/d.hpp "#include \"amctq/io/i.hpp\"")
# A stand-in third-party header, found through include/ like the real one would be.
put(xsimd/xsimd.hpp "// fixture")

# Violations, each on a known line.
put(amctq/bad_vocab.hpp "#include <vector>" "#include \"amctq/kernels/k.hpp\"")
put(amctq/kernels/up_angle.hpp "// a comment with SEMI and [ to upset CMake lists" "#  include <amctq/graph/g.hpp>")
put(amctq/kernels/up_relative.hpp "#include \"k.hpp\"" "" "#include \"../algorithms/a.hpp\"")
put(amctq/kernels/third_party.hpp "#include <xsimd/xsimd.hpp>")
put(amctq/algorithms/up.hpp "#include \"amctq/algorithms/a.hpp\"" "#include \"amctq/io/i.hpp\"")
put(amctq/graph/up.hpp "#include \"amctq/io/i.hpp\"" "#include \"g.hpp\"" "#include \"amctq/dist/d.hpp\"")
put(amctq/io/up.hpp "#include \"i.hpp\"" "#include \"amctq/dist/d.hpp\"")
put(amctq/extras/x.hpp "#include \"amctq/config.hpp\"")
put(amctq/kernels/stray.hpp "#include \"amctq/extras/x.hpp\"")

# "path:line: phrase of its rule"; the umbrella exception of the real tree has no use here.
set(expected
  "include/amctq/bad_vocab.hpp:2: includes amctq/kernels/k.hpp (kernels): vocabulary (include/amctq/*.hpp) may include only vocabulary"
  "include/amctq/kernels/up_angle.hpp:2: includes amctq/graph/g.hpp (graph): kernels/ may include only vocabulary and kernels/"
  "include/amctq/kernels/up_relative.hpp:3: includes amctq/algorithms/a.hpp (algorithms): kernels/ may include only vocabulary and kernels/"
  "include/amctq/kernels/stray.hpp:1: includes amctq/extras/x.hpp, outside the layer table"
  "include/amctq/algorithms/up.hpp:2: includes amctq/io/i.hpp (io): algorithms/ may include only vocabulary, kernels/ and algorithms/"
  "include/amctq/graph/up.hpp:1: includes amctq/io/i.hpp (io): graph/ may not include io/ or dist/"
  "include/amctq/graph/up.hpp:3: includes amctq/dist/d.hpp (dist): graph/ may not include io/ or dist/"
  "include/amctq/io/up.hpp:2: includes amctq/dist/d.hpp (dist): io/ may not include dist/"
  "include/amctq/extras/x.hpp:1: header outside the layer table"
  "amctq/kernels/third_party.hpp: includes a third-party header under AMCTQ_NO_SIMD"
  "the layer exception \"amctq/amctq.hpp|kernels\" is no longer needed: remove it")

execute_process(COMMAND ${CMAKE_COMMAND} -DCXX=${CXX} -DROOT=${root} -P ${CHECKER}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(log "${out}${err}")
set(problems "")
if(rc EQUAL 0)
  list(APPEND problems "the checker passed a tree with deliberate violations")
endif()
foreach(e ${expected})
  string(FIND "${log}" "${e}" at)
  if(at LESS 0)
    list(APPEND problems "not reported: ${e}")
  endif()
endforeach()
# Nothing beyond the expected: count the reported file:line entries.
string(REGEX MATCHALL "(^|\n)include/amctq/[^:\n]+:[0-9]+: " reported "${log}")
list(LENGTH reported n_reported)
if(NOT n_reported EQUAL 9)
  list(APPEND problems "expected 9 file:line violations, the checker reported ${n_reported}")
endif()
if(problems)
  string(REPLACE ";" "\n" msg "${problems}")
  message(FATAL_ERROR "${msg}\n--- checker output ---\n${log}")
endif()
message(STATUS "check_headers.cmake failed on the fixture with exactly the ${n_reported} planted layer violations, "
               "the planted third-party include and the unused exception")
