#!/usr/bin/env bash
# Builds sluice with exactly the CMake options that the vcpkg port
# (packaging/vcpkg/ports/sluice/portfile.cmake) and the Conan recipe
# (packaging/conan/conanfile.py) pass, taken from the recipes themselves by
# running them with stand-ins for vcpkg and Conan (packaging/tools/), so that
# "the recipes' CMake invocation matches ours" is tested without either tool.
#
#   scripts/package-build.sh [--configure-only] [--features LIST]
#     --features LIST   vcpkg features to build with, comma-separated
#                       (redis,tls; default: none). The Conan options
#                       with_<feature>=True must give the same CMake options.
#     --configure-only  check and configure only (what the CTest test
#                       package.recipes runs); default: also build, install
#                       into a scratch prefix, build examples/consumer against
#                       it with find_package and run it.
# Environment: SLUICE_PACKAGE_BUILD_DIR (default build/package; its build/ is
# reused between runs), CMAKE, PYTHON,
# CMAKE_GENERATOR (default Ninja when available), CXX.
#
# Checks, every feature set (none, redis, tls, redis+tls):
#   - the port and the recipe pass the same -D options;
#   - vcpkg.json, the recipe (set_version) and include/sluice/version.hpp agree;
#   - the recipe's components use every requirement (as Conan checks);
#   - Conan's test_package.cpp is examples/consumer/main.cpp;
# then configures with the options of --features and fails on any
# "Manually-specified variables were not used" warning.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

configure_only=0
features=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --configure-only) configure_only=1 ;;
    --features) features=${2:?--features needs a list}; shift ;;
    --features=*) features=${1#--features=} ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "package-build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

cmake=${CMAKE:-cmake}
python=${PYTHON:-python3}
work=${SLUICE_PACKAGE_BUILD_DIR:-$root/build/package}
generator=${CMAKE_GENERATOR:-}
if [[ -z "$generator" ]] && command -v ninja >/dev/null 2>&1; then generator=Ninja; fi
gen_args=()
[[ -n "$generator" ]] && gen_args=(-G "$generator")
rm -rf "$work/vcpkg-run" "$work/consumer" "$work/prefix"
mkdir -p "$work"

fail() { echo "package-build.sh: FAIL: $*" >&2; exit 1; }

# The options the port passes for a feature list ("redis,tls" or "").
vcpkg_options() {
  local list=${1//,/;} out="$work/vcpkg-${1//,/+}.txt"
  "$cmake" -DPORT_DIR="$root/packaging/vcpkg/ports/sluice" -DFEATURES="$list" \
    -DWORK_DIR="$work/vcpkg-run" -DOUT="$out" -P "$root/packaging/tools/vcpkg_options.cmake" >/dev/null
  [[ "$(cat "$out.source")" -ef "$root" ]] || fail "the portfile builds $(cat "$out.source"), not this tree"
  sort "$out"
}

# The options the recipe passes for the same features.
conan_options() {
  local args=() f
  IFS=, read -ra fs <<<"$1"
  for f in "${fs[@]}"; do [[ -n "$f" ]] && args+=("with_$f=True"); done
  "$python" "$root/packaging/tools/conan_options.py" "$root/packaging/conan/conanfile.py" "${args[@]}" \
    2>"$work/conan-version.txt" | sort
}

header_version=$(sed -n 's/^#define SLUICE_VERSION_STRING "\(.*\)"$/\1/p' include/sluice/version.hpp)
port_version=$(sed -n 's/.*"version-semver": *"\([^"]*\)".*/\1/p' packaging/vcpkg/ports/sluice/vcpkg.json)
[[ "$port_version" == "$header_version" ]] || fail "vcpkg.json says $port_version, version.hpp $header_version"

for fs in "" redis tls redis,tls; do
  v=$(vcpkg_options "$fs") || fail "running the portfile (features '$fs')"
  c=$(conan_options "$fs") || { cat "$work/conan-version.txt" >&2; fail "running the Conan recipe (features '$fs')"; }
  if [[ "$v" != "$c" ]]; then
    diff <(echo "$v") <(echo "$c") >&2 || true
    fail "the port (<) and the recipe (>) pass different options for features '$fs'"
  fi
  conan_version=$(sed -n 's/^version=//p' "$work/conan-version.txt")
  [[ "$conan_version" == "$header_version" ]] || fail "the recipe says $conan_version, version.hpp $header_version"
done
echo "package-build.sh: vcpkg port and Conan recipe pass the same options for every feature set (version $header_version)"

# Conan's test_package is the consumer example (below its own header comment).
diff <(sed -n '/^#include/,$p' examples/consumer/main.cpp) \
     <(sed -n '/^#include/,$p' packaging/conan/test_package/test_package.cpp) >/dev/null ||
  fail "packaging/conan/test_package/test_package.cpp differs from examples/consumer/main.cpp"

mapfile -t options < <(vcpkg_options "$features")
echo "package-build.sh: configuring with: ${options[*]}"
cxx_args=()
[[ -n "${CXX:-}" ]] && cxx_args=(-DCMAKE_CXX_COMPILER="$CXX")
"$cmake" -S "$root" -B "$work/build" "${gen_args[@]}" "${cxx_args[@]}" -DCMAKE_BUILD_TYPE=Release \
  "${options[@]}" >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; fail "configure"; }
if grep -q "Manually-specified variables were not used" "$work/configure.log"; then
  cat "$work/configure.log" >&2
  fail "the recipes pass options this project does not use"
fi
for f in redis tls; do
  want=OFF
  [[ ",$features," == *",$f,"* ]] && want=ON
  grep -q "^set(SLUICE_WITH_${f^^} $want)" "$work/build/sluiceConfig.cmake" ||
    fail "sluiceConfig.cmake does not record SLUICE_WITH_${f^^} $want"
done
echo "package-build.sh: configured cleanly in $work/build"
[[ $configure_only == 1 ]] && exit 0

"$cmake" --build "$work/build"
"$cmake" --install "$work/build" --prefix "$work/prefix"
"$cmake" -S "$root/examples/consumer" -B "$work/consumer" "${gen_args[@]}" "${cxx_args[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix"
"$cmake" --build "$work/consumer"
"$work/consumer/sluice_consumer"
echo "package-build.sh: built, installed to $work/prefix, consumer ran"
