# The API reference: `cmake --build <dir> --target docs` runs Doxygen on the
# public headers (include/sluice, not include/sluice/detail) and writes HTML to
# <dir>/docs/html. Defined only when Doxygen is found; not part of `all`.
# Any Doxygen warning (an undocumented public entity, a bad @param...) fails
# the target (WARN_AS_ERROR = FAIL_ON_WARNINGS); the warnings are also kept in
# <dir>/docs/doxygen-warnings.txt.
# Included from the top-level CMakeLists.txt: include(cmake/docs.cmake)
# Only for sluice as the top-level project (a host's own `docs` target must not
# clash), and only from a full checkout (package managers export no docs/).
if(NOT SLUICE_TOP_LEVEL OR NOT EXISTS ${PROJECT_SOURCE_DIR}/docs/Doxyfile.in)
  return()
endif()
find_package(Doxygen 1.9 QUIET)
if(NOT DOXYGEN_FOUND)
  message(STATUS "sluice: Doxygen not found, no `docs` target (apt-get install doxygen)")
  return()
endif()

set(SLUICE_DOCS_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs)
set(SLUICE_DOXYFILE ${SLUICE_DOCS_OUTPUT_DIR}/Doxyfile)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${SLUICE_DOXYFILE} @ONLY)
file(GLOB_RECURSE _sluice_doc_inputs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/sluice/*.hpp)
add_custom_command(
  OUTPUT ${SLUICE_DOCS_OUTPUT_DIR}/html/index.html
  COMMAND ${CMAKE_COMMAND} -E remove_directory ${SLUICE_DOCS_OUTPUT_DIR}/html
  COMMAND Doxygen::doxygen ${SLUICE_DOXYFILE}
  DEPENDS ${SLUICE_DOXYFILE} ${_sluice_doc_inputs} ${PROJECT_SOURCE_DIR}/docs/api-mainpage.md
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "Doxygen: API reference in ${SLUICE_DOCS_OUTPUT_DIR}/html (warnings are errors)"
  VERBATIM)
add_custom_target(docs DEPENDS ${SLUICE_DOCS_OUTPUT_DIR}/html/index.html)
unset(_sluice_doc_inputs)
