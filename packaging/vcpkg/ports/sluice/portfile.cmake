# vcpkg port of sluice. Used as an overlay port from this repository:
#   vcpkg install sluice[redis,tls] --overlay-ports=packaging/vcpkg/ports
# It builds the sources of the checkout it sits in (set SLUICE_SOURCE_DIR, or
# VCPKG_KEEP_ENV_VARS=SLUICE_SOURCE_DIR, to use another tree). A registry copy
# would replace that block with vcpkg_from_github(... REF "v${VERSION}" ...).
if(DEFINED ENV{SLUICE_SOURCE_DIR})
  set(SOURCE_PATH "$ENV{SLUICE_SOURCE_DIR}")
else()
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)
endif()
if(NOT EXISTS "${SOURCE_PATH}/include/sluice/version.hpp")
  message(FATAL_ERROR "sluice sources not found at ${SOURCE_PATH}")
endif()

# No export macros: a DLL would export nothing.
vcpkg_check_linkage(ONLY_STATIC_LIBRARY)

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    redis SLUICE_WITH_REDIS
    tls   SLUICE_WITH_TLS
)

# scripts/package-build.sh configures with exactly these options (and the
# package.recipes test checks that they configure cleanly): keep them in sync
# with packaging/conan/conanfile.py.
vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DSLUICE_BUILD_TESTS=OFF
    -DSLUICE_BUILD_EXAMPLES=OFF
    -DSLUICE_BUILD_BENCHMARKS=OFF
    -DSLUICE_INSTALL=ON
    ${FEATURE_OPTIONS}
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME sluice CONFIG_PATH lib/cmake/sluice)
vcpkg_fixup_pkgconfig()

# Headers and CMake files once; the changelog installed to share/doc is not
# where vcpkg keeps documents.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include" "${CURRENT_PACKAGES_DIR}/debug/share"
                    "${CURRENT_PACKAGES_DIR}/share/doc")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
