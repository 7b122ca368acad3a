# package.find_package: install the build under test into a scratch prefix,
# check the installed package, then configure, build and run examples/consumer
# (a separate project: find_package(sluice 0.1 CONFIG REQUIRED)) against it.
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
file(REMOVE_RECURSE ${WORK_DIR})
set(_prefix ${WORK_DIR}/prefix)
install_build(${_prefix})
set(_cmake_dir ${sluice_libdir}/cmake/sluice)

# websocketpp is private to libsluice: no installed header, target or config
# file may refer to it (consumers of the static library never need it).
file(GLOB_RECURSE _installed LIST_DIRECTORIES false ${_prefix}/include/*.hpp ${_cmake_dir}/*.cmake)
foreach(_file IN LISTS _installed)
  file(STRINGS ${_file} _hits REGEX "^[^#]*websocketpp")  # comments may explain
  if(_hits)
    message(FATAL_ERROR "${_file} mentions websocketpp:\n${_hits}")
  endif()
endforeach()

# The version file: 0.x accepts the same MAJOR.MINOR only (CHANGELOG.md).
string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _mm "${VERSION}")
set(_major ${CMAKE_MATCH_1})
set(_minor ${CMAKE_MATCH_2})
math(EXPR _next_minor "${_minor} + 1")
math(EXPR _next_major "${_major} + 1")
foreach(_case "${_major}.${_minor};TRUE" "${_major}.${_minor}.0;TRUE" "${_major}.${_next_minor};FALSE"
              "${_next_major}.0;FALSE")
  list(GET _case 0 PACKAGE_FIND_VERSION)
  list(GET _case 1 _want)
  string(REPLACE "." ";" _parts "${PACKAGE_FIND_VERSION}")
  list(GET _parts 0 PACKAGE_FIND_VERSION_MAJOR)
  list(GET _parts 1 PACKAGE_FIND_VERSION_MINOR)
  set(PACKAGE_FIND_VERSION_PATCH 0)
  set(PACKAGE_FIND_VERSION_COUNT 2)
  set(PACKAGE_VERSION_COMPATIBLE)
  include(${_cmake_dir}/sluiceConfigVersion.cmake)
  if(NOT PACKAGE_VERSION STREQUAL VERSION)
    message(FATAL_ERROR "sluiceConfigVersion.cmake says ${PACKAGE_VERSION}, the build is ${VERSION}")
  endif()
  if((_want AND NOT PACKAGE_VERSION_COMPATIBLE) OR (NOT _want AND PACKAGE_VERSION_COMPATIBLE))
    message(FATAL_ERROR "find_package(sluice ${PACKAGE_FIND_VERSION}) compatible=${PACKAGE_VERSION_COMPATIBLE}, want ${_want}")
  endif()
endforeach()

# The consumer, with websocketpp made unfindable: the package must not need it.
run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/consumer -B ${WORK_DIR}/build ${scratch_cmake_args}
         -DCMAKE_PREFIX_PATH=${_prefix} -DCMAKE_DISABLE_FIND_PACKAGE_websocketpp=ON)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step(${WORK_DIR}/build/sluice_consumer)
message(STATUS "${step_output}")
message(STATUS "consumer built and ran against ${_prefix}")
