# package.add_subdirectory: a scratch host project pulls sluice in with
# FetchContent and a local SOURCE_DIR (no download), as a vendored copy or a
# git submodule would. Checks that sluice, as a subproject, builds none of its
# tests, examples or benchmarks, defines sluice::core and sluice::sluice, and
# that a host target using sluice::core builds and runs. The library itself is
# compiled only with -DFULL=ON (it is already compiled by the build under test).
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/host)
file(WRITE ${WORK_DIR}/host/CMakeLists.txt "
cmake_minimum_required(VERSION 3.16)
project(sluice_host LANGUAGES CXX)
include(FetchContent)
FetchContent_Declare(sluice SOURCE_DIR \"${SOURCE_DIR}\")
FetchContent_MakeAvailable(sluice)
foreach(_t sluice::core sluice::sluice)
  if(NOT TARGET \${_t})
    message(FATAL_ERROR \"\${_t} is not defined\")
  endif()
endforeach()
foreach(_opt SLUICE_BUILD_TESTS SLUICE_BUILD_EXAMPLES SLUICE_BUILD_BENCHMARKS)
  if(\${_opt})
    message(FATAL_ERROR \"\${_opt} defaults to ON in a subproject\")
  endif()
endforeach()
if(TARGET sluice-hub OR TARGET backoff_test OR TARGET docs)
  message(FATAL_ERROR \"sluice's own programs are part of the host's build\")
endif()
add_executable(uses_core uses_core.cpp)
target_link_libraries(uses_core PRIVATE sluice::core)
add_executable(uses_sluice \"${SOURCE_DIR}/examples/consumer/main.cpp\")
target_link_libraries(uses_sluice PRIVATE sluice::sluice)
")
file(WRITE ${WORK_DIR}/host/uses_core.cpp "
#include <sluice/filter.hpp>
#include <sluice/topic.hpp>
#include <sluice/version.hpp>
#include <cstdio>
#include <cstring>
int main() {
    if (std::strcmp(SLUICE_VERSION_STRING, \"${VERSION}\") != 0) return 1;
    if (!sluice::pattern_matches(\"prices:*\", \"prices:AAPL\")) return 1;
    std::printf(\"sluice::core %s via add_subdirectory\\n\", SLUICE_VERSION_STRING);
    return 0;
}
")
run_step(${CMAKE_COMMAND} -S ${WORK_DIR}/host -B ${WORK_DIR}/build ${scratch_cmake_args})
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build --target uses_core)
run_step(${WORK_DIR}/build/uses_core)
message(STATUS "${step_output}")
if(FULL)
  run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build --target uses_sluice)
  run_step(${WORK_DIR}/build/uses_sluice)
  message(STATUS "${step_output}")
endif()
