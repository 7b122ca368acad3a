# shellcheck shell=bash
# Helpers shared by the process tests hub_cli_test.sh, follower_cli_test.sh
# and cluster_cli_test.sh. Not a test itself: a test sources it with
#
#     source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
#
# The caller sets first:
#   hub    the path to sluice-hub (used by start_hub; a test that never calls
#          start_hub need not set it)
# and should run under `set -u`, as all three do.
#
# Sourcing it makes a temporary directory `tmp` and installs an EXIT trap that
# kills every pid in the array `pids` (add each background process to it) and
# removes `tmp`. It defines:
#   require_executables FILE...   exit 1 with a message unless each is executable
#   ok NAME, not_ok NAME [WHY], check NAME COMMAND...
#                                 TAP-like result lines, counted in `passed`
#                                 and `failed`
#   summary                       prints the counts; true when nothing failed
#                                 (the last command of a test, or `summary;
#                                 exit 1` to give up early)
#   start_hub NAME ARGS...        runs "$hub" ARGS... in the background; sets
#                                 `hub_pid` and `hub_port`
#   wait_exit PID SECONDS         sets `status` to PID's exit status or "timeout"
#   eventually SECONDS COMMAND... polls COMMAND until it succeeds
#   http PORT REQUEST, health PORT
#                                 one HTTP exchange on 127.0.0.1, the answer on
#                                 stdout
#   publish PORT TOPIC DATA       POST /publish, the answer on stdout
#   publish_ok PORT TOPIC DATA    the same, true on 200
# Every wait is bounded.

# The script's name without .sh, for messages.
test_name=$(basename "$0" .sh)

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# require_executables FILE...: exits 1 with a message unless each is executable.
require_executables() {
    local f
    for f in "$@"; do
        if [[ ! -x $f ]]; then
            echo "$test_name: not an executable: $f" >&2
            exit 1
        fi
    done
}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1${2:+: $2}"; }
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
summary() {
    echo
    echo "$passed passed, $failed failed"
    [[ $failed == 0 ]]
}

# start_hub NAME ARGS...: runs "$hub" ARGS... in the background (stdout and
# stderr in $tmp/NAME.out and .err); sets hub_pid, and hub_port once the hub
# printed `listening on 127.0.0.1:PORT`. False if the hub exited or did not
# print the line within 10 s.
# shellcheck disable=SC2154,SC2034 # hub is the caller's; hub_port is for it
start_hub() {
    local name=$1
    shift
    "$hub" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    hub_pid=$!
    pids+=("$hub_pid")
    hub_port=
    for _ in $(seq 100); do
        if grep -q '^listening on ' "$tmp/$name.out" 2>/dev/null; then
            hub_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.out" | head -n1)
            return 0
        fi
        kill -0 "$hub_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_exit PID SECONDS: sets `status` to the exit status, or "timeout".
# (Not in a subshell: only the parent shell can wait for its children.)
# shellcheck disable=SC2034 # status is for the caller
wait_exit() {
    local pid=$1 limit=$2
    for _ in $(seq $((limit * 10))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            status=$?
            return
        fi
        sleep 0.1
    done
    status=timeout
}

# eventually SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds;
# false if it still fails after SECONDS.
eventually() {
    local limit=$1
    shift
    for _ in $(seq $((limit * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

# http PORT REQUEST: sends REQUEST (printf %b escapes) and prints the answer
# (the request should say Connection: close).
http() {
    local fd
    { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf '%b' "$2" >&"$fd"
    timeout 5 cat <&"$fd"
    exec {fd}>&-
}
health() { http "$1" 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'; }

# publish PORT TOPIC DATA: POST /publish {"topic":TOPIC,"data":DATA} (DATA is
# JSON); prints the whole answer.
publish() {
    local body="{\"topic\":\"$2\",\"data\":$3}"
    http "$1" "POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${#body}\r\n\r\n$body"
}
# publish_ok PORT TOPIC DATA: the same; true on 200.
publish_ok() {
    local answer
    answer=$(publish "$@") || return 1
    grep -q '^HTTP/1.1 200' <<<"$answer"
}
