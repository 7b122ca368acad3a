#!/usr/bin/env bash
# The main job, from a fresh Debian machine: installs what is missing, builds
# in Release with -j2 and runs the reference hub `sluice-hub` with its
# simulated data feed (--demo) and the live dashboard, on the embedded
# in-memory backplane. Prints the URL to open; stop it with Ctrl-C.
#   scripts/demo.sh [extra sluice-hub flags, e.g. --listen 0.0.0.0:8080]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --runtime
cmake --preset release >/dev/null
cmake --build --preset release

listen="127.0.0.1:${SLUICE_DEMO_PORT:-8080}"
static_args=()
[[ -f examples/dashboard/index.html ]] && static_args=(--static examples/dashboard)
echo "sluice: starting the demo hub; open http://${listen}/ once it says 'listening' (Ctrl-C stops it)"
exec build/release/examples/hub/sluice-hub --listen "${listen}" --demo --allow-publish "${static_args[@]}" "$@"
