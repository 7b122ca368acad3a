#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine:
# installs what is missing, builds with -j2 and runs every CTest test in the
# dev preset, then the AddressSanitizer+UBSan preset, then the ThreadSanitizer
# preset (multi-threaded tests) and the fuzzers for a bounded time.
# Set SLUICE_SKIP_SANITIZERS=1 for a quick local run of the dev preset only.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

run_preset() {
  local preset=$1
  echo "=== sluice: preset ${preset}"
  cmake --preset "${preset}" >/dev/null
  cmake --build --preset "${preset}"
  ctest --preset "${preset}" --no-tests=error
}

start=$(date +%s)
run_preset dev
if [[ "${SLUICE_SKIP_SANITIZERS:-0}" != "1" ]]; then
  run_preset asan
  run_preset tsan
  run_preset fuzz
fi
echo "=== sluice: all test presets passed in $(( $(date +%s) - start )) s"
