# Shared by the package test scripts (cmake -P). Inputs: BUILD_DIR, SOURCE_DIR,
# WORK_DIR, CONFIG, GENERATOR, CXX_COMPILER, CXX_FLAGS, EXE_LINKER_FLAGS, VERSION.
cmake_minimum_required(VERSION 3.16)

# Runs a command; on failure stops the test with the command and its output.
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  if(NOT _rc EQUAL 0)
    string(REPLACE ";" " " _cmd "${ARGN}")
    message(FATAL_ERROR "step failed (${_rc}): ${_cmd}\n${_out}")
  endif()
  set(step_output "${_out}" PARENT_SCOPE)
endfunction()

# Installs BUILD_DIR (already built: no rebuild) into `prefix`; sets
# sluice_libdir to the directory holding cmake/sluice and pkgconfig/sluice.pc.
function(install_build prefix)
  set(_config_args)
  if(CONFIG)
    set(_config_args --config ${CONFIG})
  endif()
  run_step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${_config_args})
  file(GLOB_RECURSE _configs LIST_DIRECTORIES false "${prefix}/*/sluiceConfig.cmake")
  list(LENGTH _configs _n)
  if(NOT _n EQUAL 1)
    message(FATAL_ERROR "expected one sluiceConfig.cmake under ${prefix}, found: ${_configs}")
  endif()
  get_filename_component(_dir "${_configs}" DIRECTORY)  # <libdir>/cmake/sluice
  get_filename_component(_dir "${_dir}" DIRECTORY)
  get_filename_component(_dir "${_dir}" DIRECTORY)
  set(sluice_libdir "${_dir}" PARENT_SCOPE)
endfunction()

# The compiler and flags of the build under test (sanitizer builds need them
# at link time too), as arguments for configuring a scratch project.
set(scratch_cmake_args -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}")
if(CONFIG)
  list(APPEND scratch_cmake_args -DCMAKE_BUILD_TYPE=${CONFIG})
else()
  list(APPEND scratch_cmake_args -DCMAKE_BUILD_TYPE=Release)
endif()
