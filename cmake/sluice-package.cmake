# Included from the top-level CMakeLists.txt inside if(SLUICE_INSTALL), before
# sluiceConfig.cmake is configured. Sets what cmake/sluiceConfig.cmake.in
# records (features, library kind), generates and installs sluice.pc, and
# installs the changelog and licence beside the package.

# Features (the vcpkg port and the Conan recipe map their `redis` and `tls`
# features to these). SLUICE_WITH_REDIS builds the Redis backplane (src/redis/,
# hiredis, found again by sluiceConfig.cmake for a static library); until TLS
# listeners land, SLUICE_WITH_TLS changes nothing but what the package records.
if(SLUICE_WITH_REDIS)
  set(SLUICE_PACKAGE_WITH_REDIS ON)
else()
  set(SLUICE_PACKAGE_WITH_REDIS OFF)
endif()
if(SLUICE_WITH_TLS)
  set(SLUICE_PACKAGE_WITH_TLS ON)
else()
  set(SLUICE_PACKAGE_WITH_TLS OFF)
endif()

get_target_property(_sluice_type sluice TYPE)
if(_sluice_type STREQUAL "SHARED_LIBRARY")
  set(SLUICE_LIBRARY_KIND "a shared library")
elseif(_sluice_type STREQUAL "STATIC_LIBRARY")
  set(SLUICE_LIBRARY_KIND "a static library")
else()
  set(SLUICE_LIBRARY_KIND "an interface library")
endif()

# sluice.pc. A static libsluice needs libssl, libcrypto (and hiredis) when the
# consumer links, so they go to Requires; for a shared one they are private.
set(_sluice_pc_deps libssl libcrypto)
if(SLUICE_PACKAGE_WITH_REDIS)
  list(APPEND _sluice_pc_deps hiredis)
endif()
set(SLUICE_PC_REQUIRES RapidJSON)
set(SLUICE_PC_REQUIRES_PRIVATE "")
set(SLUICE_PC_LIBS "-pthread")
set(SLUICE_PC_LIBS_PRIVATE "")
if(_sluice_type STREQUAL "SHARED_LIBRARY")
  string(REPLACE ";" " " SLUICE_PC_REQUIRES_PRIVATE "${_sluice_pc_deps}")
else()
  list(APPEND SLUICE_PC_REQUIRES ${_sluice_pc_deps})
endif()
string(REPLACE ";" " " SLUICE_PC_REQUIRES "${SLUICE_PC_REQUIRES}")

set(SLUICE_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${SLUICE_PC_DIR}")
  set(SLUICE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  # Relocatable: ${pcfiledir}/../.. for lib/pkgconfig, /../../.. for
  # lib/x86_64-linux-gnu/pkgconfig.
  file(RELATIVE_PATH _sluice_up "/_/${SLUICE_PC_DIR}" "/_")
  string(REGEX REPLACE "/$" "" _sluice_up "${_sluice_up}")
  set(SLUICE_PC_PREFIX "\${pcfiledir}/${_sluice_up}")
endif()
foreach(_kind INCLUDEDIR LIBDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_kind}}")
    set(SLUICE_PC_${_kind} "${CMAKE_INSTALL_${_kind}}")
  else()
    set(SLUICE_PC_${_kind} "\${prefix}/${CMAKE_INSTALL_${_kind}}")
  endif()
endforeach()
# Asio's headers: only a non-default location needs a flag (pkg-config drops
# -I/usr/include anyway). This path is the build machine's.
set(SLUICE_PC_ASIO_CFLAGS "")
if(SLUICE_ASIO_INCLUDE_DIR AND NOT SLUICE_ASIO_INCLUDE_DIR IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
  set(SLUICE_PC_ASIO_CFLAGS " -I${SLUICE_ASIO_INCLUDE_DIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/sluice.pc.in ${CMAKE_CURRENT_BINARY_DIR}/sluice.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sluice.pc DESTINATION ${SLUICE_PC_DIR})

install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

unset(_sluice_type)
unset(_sluice_pc_deps)
unset(_sluice_up)
