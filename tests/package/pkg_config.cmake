# package.pkg_config: install the build under test into a scratch prefix, then
# compile and link the one-file program examples/consumer/main.cpp with nothing
# but `pkg-config --cflags --libs sluice`, and run it. Input: PKG_CONFIG.
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
file(REMOVE_RECURSE ${WORK_DIR})
set(_prefix ${WORK_DIR}/prefix)
install_build(${_prefix})
set(ENV{PKG_CONFIG_PATH} "${sluice_libdir}/pkgconfig")

run_step(${PKG_CONFIG} --validate sluice)
run_step(${PKG_CONFIG} --modversion sluice)
string(STRIP "${step_output}" _version)
if(NOT _version STREQUAL VERSION)
  message(FATAL_ERROR "pkg-config --modversion sluice: '${_version}', the build is ${VERSION}")
endif()
run_step(${PKG_CONFIG} --cflags --libs sluice)
string(STRIP "${step_output}" _flags)
message(STATUS "pkg-config --cflags --libs sluice: ${_flags}")
separate_arguments(_flags UNIX_COMMAND "${_flags}")
# Relocatable (${pcfiledir}): the first -I is the scratch prefix's include/.
set(_includes ${_flags})
list(FILTER _includes INCLUDE REGEX "^-I")
list(GET _includes 0 _first)
string(SUBSTRING "${_first}" 2 -1 _first)
get_filename_component(_first "${_first}" REALPATH)
get_filename_component(_want "${_prefix}/include" REALPATH)
if(NOT _first STREQUAL _want OR NOT "-lsluice" IN_LIST _flags)
  message(FATAL_ERROR "pkg-config: expected -I${_want} and -lsluice")
endif()

separate_arguments(_extra UNIX_COMMAND "${CXX_FLAGS} ${EXE_LINKER_FLAGS}")

file(MAKE_DIRECTORY ${WORK_DIR}/bin)
run_step(${CXX_COMPILER} -std=c++17 ${_extra} ${SOURCE_DIR}/examples/consumer/main.cpp
         -o ${WORK_DIR}/bin/sluice_consumer ${_flags})
run_step(${WORK_DIR}/bin/sluice_consumer)
message(STATUS "${step_output}")
