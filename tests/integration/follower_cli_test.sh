#!/usr/bin/env bash
# sluice-follow as a process (examples/follower, docs/clients.md): against a
# real sluice-hub it prints every event once as a JSON line, follows the topic
# through a hub restart on the same port (a new epoch: `recovered=false` on
# stderr, the new epoch's events delivered), reports its state changes on
# stderr, exits 0 on SIGINT/SIGTERM and 2 for bad arguments. Both transports.
#
# usage: follower_cli_test.sh /path/to/sluice-hub /path/to/sluice-follow
# Needs only bash (its /dev/tcp), coreutils, grep, sed and awk. Every wait is
# bounded.
set -u

hub=${1:?usage: follower_cli_test.sh /path/to/sluice-hub /path/to/sluice-follow}
follow=${2:?usage: follower_cli_test.sh /path/to/sluice-hub /path/to/sluice-follow}
for exe in "$hub" "$follow"; do
    if [[ ! -x $exe ]]; then
        echo "follower_cli_test: not an executable: $exe" >&2
        exit 1
    fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1${2:+: $2}"; }
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# start_hub NAME LISTEN: runs the hub in the background; sets hub_pid and
# hub_port once it printed its line (false if it did not within 10 s).
start_hub() {
    local name=$1 listen=$2
    "$hub" --listen "$listen" --allow-publish >"$tmp/$name.out" 2>"$tmp/$name.err" &
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

# wait_for SECONDS COMMAND...: true once COMMAND succeeds, false after SECONDS.
wait_for() {
    local limit=$1
    shift
    for _ in $(seq $((limit * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

lines_at_least() { [[ $(grep -c '' "$1" 2>/dev/null) -ge $2 ]]; }
matches_at_least() { [[ $(grep -c -- "$2" "$1" 2>/dev/null) -ge $3 ]]; }

# publish PORT TOPIC I: POST /publish {"topic":TOPIC,"data":{"i":I}}; true on 200.
publish() {
    local body="{\"topic\":\"$2\",\"data\":{\"i\":$3}}" fd answer
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
        "${#body}" "$body" >&"$fd"
    answer=$(timeout 5 cat <&"$fd")
    exec {fd}>&-
    grep -q '^HTTP/1.1 200' <<<"$answer"
}

# ---------------------------------------------------------------------------
# 1. Bad arguments -> 2 with a message
bad_args=(
    ""
    "ws://127.0.0.1:1/ws"
    "--bogus ws://127.0.0.1:1/ws t"
    "--token"
    "--ca"
    "ftp://127.0.0.1:1/ws t"
    "--sse ws://127.0.0.1:1/ws t"
    "http://127.0.0.1:1/events t"
    "not-a-url t"
)
for args in "${bad_args[@]}"; do
    # shellcheck disable=SC2086
    timeout 10 "$follow" $args >"$tmp/bad.out" 2>"$tmp/bad.err" </dev/null
    status=$?
    check "bad arguments '$args' exit 2 (got $status)" test "$status" = 2
    check "bad arguments '$args' say why on stderr" test -s "$tmp/bad.err"
    check "bad arguments '$args' print nothing on stdout" test ! -s "$tmp/bad.out"
done

# ---------------------------------------------------------------------------
# 2. Follow through a hub restart, for each transport
if ! start_hub hub1 127.0.0.1:0; then
    not_ok "the hub starts" "$(cat "$tmp/hub1.err")"
    echo "$passed passed, $failed failed"
    exit 1
fi
port=$hub_port
generation=1

for mode in ws sse; do
    topic="follow:$mode"
    out="$tmp/$mode.out"
    err="$tmp/$mode.err"
    if [[ $mode == ws ]]; then
        "$follow" "ws://127.0.0.1:$port/ws" "$topic" >"$out" 2>"$err" &
    else
        "$follow" --sse "http://127.0.0.1:$port/events" "$topic" >"$out" 2>"$err" &
    fi
    fpid=$!
    pids+=("$fpid")

    check "$mode: subscribed" wait_for 15 matches_at_least "$err" "^subscribed: $topic " 1
    for i in 1 2 3 4 5; do
        publish "$port" "$topic" "$i" || not_ok "$mode: publish $i"
    done
    check "$mode: 5 events on stdout" wait_for 15 lines_at_least "$out" 5

    # The hub goes away and comes back on the same port: a new in-memory hub,
    # so a new epoch.
    kill -TERM "$hub_pid"
    wait_exit "$hub_pid" 10
    check "$mode: the hub exits 0 (got $status)" test "$status" = 0
    check "$mode: the follower notices (reconnecting)" wait_for 15 matches_at_least "$err" '^state: reconnecting' 1
    generation=$((generation + 1))
    started=
    for _ in $(seq 50); do # the port may linger a moment
        if start_hub "hub$generation" "127.0.0.1:$port"; then
            started=1
            break
        fi
        sleep 0.1
    done
    if [[ -z $started ]]; then
        not_ok "$mode: the hub restarts on port $port" "$(cat "$tmp/hub$generation.err")"
        break
    fi
    check "$mode: subscribed again" wait_for 30 matches_at_least "$err" "^subscribed: $topic " 2
    check "$mode: the new epoch is reported recovered=false" grep -q "^recovered=false: $topic " "$err"
    for i in 6 7 8 9 10; do
        publish "$port" "$topic" "$i" || not_ok "$mode: publish $i"
    done
    check "$mode: 10 events on stdout" wait_for 15 lines_at_least "$out" 10

    kill -INT "$fpid"
    wait_exit "$fpid" 10
    check "$mode: SIGINT exits 0 (got $status)" test "$status" = 0

    # Every line is an event object with the protocol's fields.
    check "$mode: every stdout line is an event" \
        test "$(grep -c '^{"type":"event","sub":"'"$topic"'","topic":"'"$topic"'","offset":[0-9]*,"epoch":"[^"]*","ts":[0-9]*,"data":{"i":[0-9]*}}$' "$out")" = "$(grep -c '' "$out")"
    data=$(sed -n 's/.*"data":{"i":\([0-9]*\)}.*/\1/p' "$out" | tr '\n' ' ')
    check "$mode: every event exactly once, in order (got: $data)" test "$data" = "1 2 3 4 5 6 7 8 9 10 "
    # Offsets 1..5 in the first epoch, 1..5 in the second, each once.
    positions=$(sed -n 's/.*"offset":\([0-9]*\),"epoch":"\([^"]*\)".*/\2 \1/p' "$out" |
        awk '{ if ($1 != e) { n++; e = $1 } printf "%d:%d ", n, $2 }')
    check "$mode: every offset once per epoch (got: $positions)" \
        test "$positions" = "1:1 1:2 1:3 1:4 1:5 2:1 2:2 2:3 2:4 2:5 "
    check "$mode: stderr shows connecting" grep -q '^state: connecting attempt=0' "$err"
    check "$mode: stderr shows two connections" matches_at_least "$err" '^state: connected' 2
    check "$mode: stderr shows the reconnection delay" grep -Eq '^state: reconnecting attempt=[0-9]+ delay_ms=[0-9]+' "$err"
    check "$mode: stderr shows closed after SIGINT" grep -q '^state: closed$' "$err"
done

# 3. SIGTERM -> 0 as well
"$follow" "ws://127.0.0.1:$port/ws" term:1 >"$tmp/term.out" 2>"$tmp/term.err" &
fpid=$!
pids+=("$fpid")
check "SIGTERM: subscribed" wait_for 15 matches_at_least "$tmp/term.err" '^subscribed: term:1 ' 1
kill -TERM "$fpid"
wait_exit "$fpid" 10
check "SIGTERM exits 0 (got $status)" test "$status" = 0

kill -TERM "$hub_pid" 2>/dev/null
wait_exit "$hub_pid" 10

echo
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
