#!/usr/bin/env python3
"""Runs the Conan 2 recipe with stand-ins for the conan API and prints what it
tells CMake: one -DVAR=VALUE per line for each CMakeToolchain cache variable.

    python3 conan_options.py packaging/conan/conanfile.py [with_redis=True ...]

Also checks, as Conan would, that every direct requirement is used by some
component and that component requirements name declared packages, and prints
the recipe's version on stderr as "version=X.Y.Z". No Conan installation needed.
"""
import importlib.util
import os
import re
import sys
import types


class _Namespace:
    def __init__(self, values):
        self.__dict__.update(values)

    def __getattr__(self, name):
        raise AttributeError(f"the recipe read an unknown option or setting: {name}")


class _Component:
    def __init__(self):
        self.requires = []
        self.libs = []
        self.system_libs = []
        self.bindirs = ["bin"]
        self.libdirs = ["lib"]
        self.includedirs = ["include"]
        self.properties = {}

    def set_property(self, name, value):
        self.properties[name] = value


class _Components(dict):
    """components[...] creates on first use, like Conan's."""

    def __missing__(self, key):
        self[key] = _Component()
        return self[key]


class _CppInfo(_Component):
    def __init__(self):
        super().__init__()
        self.components = _Components()


def _install_stubs(recorded):
    conan = types.ModuleType("conan")

    class ConanFile:
        def __init__(self):
            self.requirements_list = []

        def requires(self, ref, **traits):
            self.requirements_list.append((ref, traits))

    conan.ConanFile = ConanFile
    errors = types.ModuleType("conan.errors")

    class ConanInvalidConfiguration(Exception):
        pass

    errors.ConanInvalidConfiguration = ConanInvalidConfiguration
    errors.ConanException = Exception
    tools = types.ModuleType("conan.tools")
    build = types.ModuleType("conan.tools.build")
    build.check_min_cppstd = lambda conanfile, v: recorded.setdefault("min_cppstd", v)
    build.can_run = lambda conanfile: True
    cmake = types.ModuleType("conan.tools.cmake")

    class CMakeToolchain:
        def __init__(self, conanfile):
            self.cache_variables = {}
            self.variables = {}
            self.preprocessor_definitions = {}

        def generate(self):
            if self.variables:
                raise SystemExit("use tc.cache_variables (-D), not tc.variables (toolchain file)")
            recorded["cache_variables"] = dict(self.cache_variables)

    class CMakeDeps:
        def __init__(self, conanfile):
            pass

        def generate(self):
            recorded["cmakedeps"] = True

    class CMake:
        def __init__(self, conanfile):
            pass

    cmake.CMakeToolchain = CMakeToolchain
    cmake.CMakeDeps = CMakeDeps
    cmake.CMake = CMake
    cmake.cmake_layout = lambda conanfile, **kw: None
    files = types.ModuleType("conan.tools.files")

    def load(conanfile, path, **kw):
        with open(path, encoding="utf-8") as f:
            return f.read()

    files.load = load
    files.copy = lambda *a, **kw: None
    files.rmdir = lambda *a, **kw: None
    for name, mod in {"conan": conan, "conan.errors": errors, "conan.tools": tools,
                      "conan.tools.build": build, "conan.tools.cmake": cmake,
                      "conan.tools.files": files}.items():
        sys.modules[name] = mod
    return ConanFile


def _value(v):
    if isinstance(v, bool):
        return "ON" if v else "OFF"
    return str(v)


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    path = os.path.abspath(sys.argv[1])
    recorded = {}
    base = _install_stubs(recorded)
    spec = importlib.util.spec_from_file_location("sluice_conanfile", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, base) and c is not base]
    if len(classes) != 1:
        raise SystemExit(f"expected one ConanFile class in {path}")
    cls = classes[0]

    options = {k: v for k, v in cls.default_options.items() if "/" not in k}
    for arg in sys.argv[2:]:
        key, _, val = arg.partition("=")
        if key not in cls.options:
            raise SystemExit(f"the recipe has no option {key}")
        options[key] = val == "True"
    for key, allowed in cls.options.items():
        if options.get(key) not in allowed:
            raise SystemExit(f"option {key}={options.get(key)} not in {allowed}")

    recipe = cls()
    recipe.recipe_folder = os.path.dirname(path)
    recipe.options = _Namespace(options)
    recipe.settings = _Namespace({"os": "Linux", "arch": "x86_64", "compiler": "gcc",
                                  "build_type": "Release"})
    recipe.cpp_info = _CppInfo()
    recipe.set_version()
    recipe.requirements()
    recipe.validate()
    recipe.generate()
    recipe.package_info()

    # Conan's component checks (conans/model/build_info.py, check_component_requires).
    direct = {ref.split("/")[0] for ref, _ in recipe.requirements_list}
    external, internal = set(), set()
    for comp in recipe.cpp_info.components.values():
        external.update(r.split("::")[0] for r in comp.requires if "::" in r)
        internal.update(r for r in comp.requires if "::" not in r)
    problems = []
    if internal - set(recipe.cpp_info.components):
        problems.append(f"internal components not found: {sorted(internal - set(recipe.cpp_info.components))}")
    if external - direct:
        problems.append(f"components require undeclared packages: {sorted(external - direct)}")
    if direct - external:
        problems.append(f"requirements used by no component: {sorted(direct - external)}")
    if problems:
        raise SystemExit("; ".join(problems))
    if not re.fullmatch(r"\d+\.\d+\.\d+", recipe.version):
        raise SystemExit(f"bad version {recipe.version!r}")

    for key, val in recorded["cache_variables"].items():
        print(f"-D{key}={_value(val)}")
    print(f"version={recipe.version}", file=sys.stderr)


if __name__ == "__main__":
    main()
