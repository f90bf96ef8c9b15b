# Finds amctq's optional header-only dependencies and links those found into a target.
# Shared by the build tree and the installed package config, so both behave the same.
include_guard(GLOBAL)

find_package(xsimd 8 QUIET)
if(xsimd_FOUND AND NOT TARGET xtl)
  # Debian's xsimd export names an "xtl" link library that no package installs; an empty
  # interface target of that name satisfies it (xsimd itself needs nothing from xtl here).
  add_library(xtl INTERFACE IMPORTED)
endif()
find_package(Eigen3 3.3 QUIET NO_MODULE)
find_package(nlohmann_json 3.9 QUIET)

function(amctq_link_dependencies target)
  if(xsimd_FOUND)
    target_link_libraries(${target} INTERFACE xsimd)
  endif()
  if(TARGET Eigen3::Eigen)
    target_link_libraries(${target} INTERFACE Eigen3::Eigen)
  endif()
  if(TARGET nlohmann_json::nlohmann_json)
    target_link_libraries(${target} INTERFACE nlohmann_json::nlohmann_json)
  endif()
endfunction()
