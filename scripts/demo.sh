#!/usr/bin/env bash
# The main job, from a fresh Debian machine: installs what is missing, builds
# in Release with -j2 and runs the demo. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --runtime
cmake --preset release >/dev/null
cmake --build --preset release
exec build/release/examples/resilience/sluice_resilience_example "$@"
