# Conan 2 recipe of sluice, kept in the sluice repository and built from the
# checkout it sits in:
#   conan create packaging/conan -o "sluice/*:with_redis=True" --build=missing
# scripts/package-build.sh configures sluice with exactly the CMake cache
# variables generate() sets (the package.recipes test checks them).
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

required_conan_version = ">=2.0"


class SluiceConan(ConanFile):
    name = "sluice"
    description = ("Embeddable real-time streaming (WebSocket, Server-Sent Events) "
                   "for Asio-based C++ services")
    license = "BSL-1.0"
    topics = ("websocket", "server-sent-events", "sse", "asio", "pubsub", "real-time")
    # No export macros yet: the compiled part is a static library only.
    package_type = "static-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_redis": [True, False],  # Redis backplane (hiredis)
        "with_tls": [True, False],    # TLS listeners (OpenSSL)
    }
    default_options = {
        "with_redis": False,
        "with_tls": False,
        # sluice uses only websocketpp's frame processor, never its Asio
        # transport: take standalone Asio (already required) rather than Boost.
        "websocketpp/*:asio": "standalone",
    }

    @property
    def _source_root(self):
        return os.path.join(self.recipe_folder, "..", "..")

    def set_version(self):
        # The one source of the version: include/sluice/version.hpp.
        header = load(self, os.path.join(self._source_root, "include", "sluice", "version.hpp"))
        parts = [re.search(r"#define SLUICE_VERSION_%s (\d+)" % p, header).group(1)
                 for p in ("MAJOR", "MINOR", "PATCH")]
        self.version = ".".join(parts)

    def export_sources(self):
        for pattern in ("CMakeLists.txt", "LICENSE", "CHANGELOG.md", "cmake/*", "include/*", "src/*"):
            copy(self, pattern, self._source_root, self.export_sources_folder)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # Public headers include Asio and RapidJSON: consumers get their headers.
        self.requires("asio/[>=1.22.0 <2]", transitive_headers=True)
        self.requires("rapidjson/cci.20230929", transitive_headers=True)
        # Used by src/ only (the static library links libcrypto).
        self.requires("openssl/[>=1.1 <4]")
        # Header-only and private to src/: not visible to consumers' compilers.
        self.requires("websocketpp/0.8.2")
        if self.options.with_redis:
            self.requires("hiredis/[>=1.0 <2]")

    def validate(self):
        check_min_cppstd(self, 17)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["SLUICE_BUILD_TESTS"] = False
        tc.cache_variables["SLUICE_BUILD_EXAMPLES"] = False
        tc.cache_variables["SLUICE_BUILD_BENCHMARKS"] = False
        tc.cache_variables["SLUICE_INSTALL"] = True
        tc.cache_variables["SLUICE_WITH_REDIS"] = bool(self.options.with_redis)
        tc.cache_variables["SLUICE_WITH_TLS"] = bool(self.options.with_tls)
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.install()
        # Conan generates the consumers' CMake and pkg-config files itself.
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "sluice")
        self.cpp_info.set_property("pkg_config_name", "sluice")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "sluice::core")
        core.bindirs = []
        core.libdirs = []
        core.requires = ["rapidjson::rapidjson"]

        lib = self.cpp_info.components["sluice"]
        lib.set_property("cmake_target_name", "sluice::sluice")
        lib.libs = ["sluice"]
        lib.requires = ["core", "asio::asio", "openssl::crypto", "websocketpp::websocketpp"]
        if self.options.with_redis:
            lib.requires.append("hiredis::hiredislib")
        if self.settings.os in ("Linux", "FreeBSD"):
            lib.system_libs = ["pthread"]
