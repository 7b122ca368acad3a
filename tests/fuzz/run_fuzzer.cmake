# Runs one libFuzzer target for a bounded time on a scratch copy of its seed
# corpus, so that the repository is never written (new inputs and crash
# artifacts go to WORK_DIR). Called by the fuzz.<name> CTest tests:
#   cmake -DFUZZER=<exe> -DCORPUS=<seed dir> -DWORK_DIR=<scratch>
#         [-DMAX_TOTAL_TIME=20] [-DTIMEOUT=5] -P run_fuzzer.cmake
foreach(_var FUZZER CORPUS WORK_DIR)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "run_fuzzer.cmake: ${_var} is required")
  endif()
endforeach()
if(NOT EXISTS "${FUZZER}")
  message(FATAL_ERROR "${FUZZER} is not built (build its target first)")
endif()
if(NOT DEFINED MAX_TOTAL_TIME)
  set(MAX_TOTAL_TIME 20)
endif()
if(NOT DEFINED TIMEOUT)
  set(TIMEOUT 5)
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus" "${WORK_DIR}/artifacts")
if(IS_DIRECTORY "${CORPUS}")
  file(GLOB _seeds "${CORPUS}/*")
  if(_seeds)
    file(COPY ${_seeds} DESTINATION "${WORK_DIR}/corpus")
  endif()
endif()

execute_process(
  COMMAND "${FUZZER}" "${WORK_DIR}/corpus" -max_total_time=${MAX_TOTAL_TIME} -timeout=${TIMEOUT}
          -artifact_prefix=${WORK_DIR}/artifacts/ -print_final_stats=1
  WORKING_DIRECTORY "${WORK_DIR}"
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  file(GLOB _artifacts "${WORK_DIR}/artifacts/*")
  message(FATAL_ERROR "${FUZZER} failed (${_rc}); inputs: ${_artifacts}")
endif()
