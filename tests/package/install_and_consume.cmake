# cmake -P script: install BUILD_DIR to WORK_DIR/prefix, build CONSUMER_DIR
# against it and run the consumer. Any failure fails the test.
file(REMOVE_RECURSE ${WORK_DIR})
set(_prefix ${WORK_DIR}/prefix)

function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "step failed (${_rc}): ${ARGN}\n${_out}")
  endif()
endfunction()

set(_config_args)
if(CONFIG)
  set(_config_args --config ${CONFIG})
endif()
run_step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${_prefix} ${_config_args})
if(NOT EXISTS ${_prefix}/lib/cmake/sluice/sluiceConfig.cmake AND NOT EXISTS ${_prefix}/lib64/cmake/sluice/sluiceConfig.cmake
   AND NOT EXISTS ${_prefix}/lib/x86_64-linux-gnu/cmake/sluice/sluiceConfig.cmake)
  message(FATAL_ERROR "no sluiceConfig.cmake under ${_prefix}")
endif()
run_step(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${_prefix}
         -DCMAKE_BUILD_TYPE=Release)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step(${WORK_DIR}/build/sluice_consumer)
message(STATUS "consumer built and ran against ${_prefix}")
