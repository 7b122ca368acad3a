#!/usr/bin/env bash
# Installs the Debian packages sluice needs, only those that are missing.
# Quiet when everything is present. Runs apt-get as root, or through sudo.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --runtime  only what building the hub needs
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config python3
  libasio-dev libwebsocketpp-dev rapidjson-dev libssl-dev libhiredis-dev
)
if [[ "${1:-}" != "--runtime" ]]; then
  # doxygen: the docs.api test builds the API reference (the Doxyfile uses no dot).
  packages+=(catch2 clang-14 libclang-rt-14-dev redis-server doxygen)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "sluice: installing missing Debian packages: ${missing[*]}"
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "sluice: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
