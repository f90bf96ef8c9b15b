# Two checks on the headers under ${ROOT}/include/amctq (cmake -DCXX=... -DROOT=... -P this file):
#
# 1. The embedded promise: each header at the top level, under kernels/ and algorithms/ compiles
#    alone with -DAMCTQ_NO_SIMD and only include/ on the path, and the compiler's list of the
#    files it read names no xsimd, Eigen or nlohmann header.
# 2. The layer direction of DESIGN.md §1, on amctq's own includes in every header of every
#    layer: vocabulary (include/amctq/*.hpp) includes only vocabulary; kernels/ vocabulary and
#    kernels/; algorithms/ those and algorithms/; graph/ anything but io/ and dist/; io/
#    anything but dist/. A header in a folder the table does not name is a violation too.
#    Checking each file's direct includes is enough: the layers are ordered, so a chain of
#    allowed includes never leads upwards.
#
# Each violation is reported as file:line and the rule; any violation fails the run.
# tests/no_simd/check_headers_selftest.cmake runs this file on a fixture tree with deliberate
# violations and checks that it fails with exactly those.

cmake_minimum_required(VERSION 3.16)  # policies for -P: IN_LIST

# Known exceptions to (2), one per entry: "includer|layer it may include|reason". An entry no
# header needs any more fails the run, so the list cannot go stale.
set(layer_exceptions
  "amctq/amctq.hpp|kernels|the umbrella header includes the kernels for users who want one include")

# Layer of a path relative to include/: 0 vocabulary ... 5 dist, or -1 when amctq has no such layer.
function(amctq_layer_of rel out)
  set(names kernels algorithms graph io dist)
  if(rel MATCHES "^amctq/[^/]+$")
    set(${out} 0 PARENT_SCOPE)
  elseif(rel MATCHES "^amctq/([^/]+)/")
    list(FIND names "${CMAKE_MATCH_1}" i)
    if(i GREATER_EQUAL 0)
      math(EXPR i "${i} + 1")
    endif()
    set(${out} ${i} PARENT_SCOPE)
  else()
    set(${out} -1 PARENT_SCOPE)
  endif()
endfunction()

# Appends one message per upward include found under ${include}/amctq to the list named by out.
function(amctq_layer_violations include out)
  set(layer_names vocabulary kernels algorithms graph io dist)
  set(rules
    "vocabulary (include/amctq/*.hpp) may include only vocabulary"
    "kernels/ may include only vocabulary and kernels/"
    "algorithms/ may include only vocabulary, kernels/ and algorithms/"
    "graph/ may not include io/ or dist/"
    "io/ may not include dist/"
    "dist/ may include every layer")
  set(found "")
  set(used_exceptions "")
  file(GLOB_RECURSE files ${include}/amctq/*.hpp ${include}/amctq/*.h ${include}/amctq/*.ipp ${include}/amctq/*.inl)
  list(SORT files)
  foreach(f ${files})
    file(RELATIVE_PATH from ${include} ${f})
    amctq_layer_of("${from}" from_layer)
    if(from_layer LESS 0)
      list(APPEND found "include/${from}:1: header outside the layer table of DESIGN.md §1 (add its folder there and here)")
      continue()
    endif()
    list(GET rules ${from_layer} rule)
    get_filename_component(dir ${f} DIRECTORY)
    # Each include directive with its line number: a leading newline makes every match start
    # with one, and the newlines before a match give its line.
    file(READ ${f} content)
    string(PREPEND content "\n")
    string(REGEX MATCHALL "\n[ \t]*#[ \t]*include[ \t]*[<\"][^>\"\n]+[>\"]" directives "${content}")
    set(rest "${content}")
    set(line 0)
    foreach(d ${directives})
      string(FIND "${rest}" "${d}" pos)
      string(SUBSTRING "${rest}" 0 ${pos} before)
      string(REGEX MATCHALL "\n" nls "${before}")
      list(LENGTH nls skipped)
      math(EXPR line "${line} + ${skipped} + 1")
      string(LENGTH "${d}" len)
      math(EXPR pos "${pos} + ${len}")
      string(SUBSTRING "${rest}" ${pos} -1 rest)
      string(REGEX MATCH "([<\"])([^>\"]+)" _ "${d}")
      set(target "${CMAKE_MATCH_2}")
      # Where the compiler finds it: a quoted name next to the includer first, then include/.
      set(path "${include}/${target}")
      if(CMAKE_MATCH_1 STREQUAL "\"" AND EXISTS "${dir}/${target}")
        set(path "${dir}/${target}")
      endif()
      get_filename_component(path "${path}" ABSOLUTE)
      file(RELATIVE_PATH to ${include} ${path})
      if(NOT to MATCHES "^amctq/")
        continue()  # the standard library or a third party: check (1) covers the core
      endif()
      amctq_layer_of("${to}" to_layer)
      if(to_layer LESS 0)
        list(APPEND found "include/${from}:${line}: includes ${to}, outside the layer table of DESIGN.md §1")
      elseif(to_layer GREATER from_layer)
        list(GET layer_names ${to_layer} to_name)
        set(key "${from}|${to_name}")
        set(excepted OFF)
        foreach(e ${layer_exceptions})
          string(FIND "${e}" "${key}|" at)
          if(at EQUAL 0)
            set(excepted ON)
          endif()
        endforeach()
        if(excepted)
          list(APPEND used_exceptions "${key}")
        else()
          list(APPEND found "include/${from}:${line}: includes ${to} (${to_name}): ${rule} (DESIGN.md §1)")
        endif()
      endif()
    endforeach()
  endforeach()
  foreach(e ${layer_exceptions})
    string(REGEX MATCH "^[^|]+\\|[^|]+" key "${e}")
    if(NOT key IN_LIST used_exceptions)
      list(APPEND found "check_headers.cmake: the layer exception \"${key}\" is no longer needed: remove it")
    endif()
  endforeach()
  set(${out} ${${out}} ${found} PARENT_SCOPE)
endfunction()

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
amctq_layer_violations(${ROOT}/include failed)
if(failed)
  # One unwrapped line per violation (message(FATAL_ERROR) would re-wrap file:line), then the verdict.
  foreach(f ${failed})
    message("${f}")
  endforeach()
  list(LENGTH failed k)
  message(FATAL_ERROR "check_headers: ${k} violation(s), listed above")
endif()
message(STATUS "${n} headers compile alone with AMCTQ_NO_SIMD and the standard library only; "
               "every header under include/amctq includes only its own layer and those below")
