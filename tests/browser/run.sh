#!/usr/bin/env bash
# Browser test of the live dashboard (CTest: browser.dashboard).
#   tests/browser/run.sh <sluice-hub path> <dashboard dir> <out dir>
# Runs sluice_client_test.mjs (sluice.js against a fake WebSocket, plain Node),
# installs what is missing (Debian's chromium with apt-get, the npm package
# playwright-core into <out dir>/npm; no browser download), then runs
# dashboard_test.mjs, which writes its screenshots into <out dir>.
# Exit status: 0 pass, 77 skipped (Chromium or Node cannot be installed here),
# anything else a failure.
set -euo pipefail

PLAYWRIGHT_VERSION=1.65.1
CHROMIUM=${SLUICE_CHROMIUM:-/usr/bin/chromium}

if [[ $# -ne 3 ]]; then
  echo "usage: $0 <sluice-hub path> <dashboard dir> <out dir>" >&2
  exit 2
fi
hub=$1 dashboard=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

skip() {
  echo "SKIP: browser.dashboard: $*" >&2
  exit 77
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null ||
   (( $(node -p 'process.versions.node.split(".")[0]') < 18 )); then
  skip "node and npm (Node 18 or later) are needed to drive Chromium (apt-get install nodejs npm)"
fi

# The client library's protocol logic first (plain Node, no browser needed).
node "$here/sluice_client_test.mjs" "$dashboard"

if [[ ! -x $CHROMIUM ]]; then
  echo "browser.dashboard: $CHROMIUM is missing; installing Debian's chromium with apt-get" >&2
  if ! command -v apt-get >/dev/null; then
    skip "$CHROMIUM is missing and there is no apt-get to install it"
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! { as_root apt-get -o DPkg::Lock::Timeout=300 update -qq &&
         as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium; } >&2; then
    skip "could not install chromium with apt-get (no root/sudo, or no package repository reachable)"
  fi
  [[ -x $CHROMIUM ]] || skip "apt-get ran but $CHROMIUM is still missing"
fi

npm_dir=$out/npm
if [[ ! -f $npm_dir/node_modules/playwright-core/package.json ]] ||
   ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$npm_dir/node_modules/playwright-core/package.json"; then
  echo "browser.dashboard: installing playwright-core@$PLAYWRIGHT_VERSION into $npm_dir" >&2
  mkdir -p "$npm_dir"
  [[ -f $npm_dir/package.json ]] || echo '{"name":"sluice-browser-test","private":true}' >"$npm_dir/package.json"
  # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing anyway; belt and braces.
  if ! (cd "$npm_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --no-audit --no-fund \
          --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION" >&2); then
    echo "browser.dashboard: FAIL: npm could not install playwright-core@$PLAYWRIGHT_VERSION" >&2
    exit 1
  fi
fi

export SLUICE_NPM_DIR=$npm_dir
export SLUICE_CHROMIUM=$CHROMIUM
exec node "$here/dashboard_test.mjs" "$hub" "$dashboard" "$out"
