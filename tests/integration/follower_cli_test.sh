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
# shellcheck source-path=SCRIPTDIR source=cli_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
require_executables "$hub" "$follow"

lines_at_least() { [[ $(grep -c '' "$1" 2>/dev/null) -ge $2 ]]; }
matches_at_least() { [[ $(grep -c -- "$2" "$1" 2>/dev/null) -ge $3 ]]; }

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
if ! start_hub hub1 --listen 127.0.0.1:0 --allow-publish; then
    not_ok "the hub starts" "$(cat "$tmp/hub1.err")"
    summary
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

    check "$mode: subscribed" eventually 15 matches_at_least "$err" "^subscribed: $topic " 1
    for i in 1 2 3 4 5; do
        publish_ok "$port" "$topic" "{\"i\":$i}" || not_ok "$mode: publish $i"
    done
    check "$mode: 5 events on stdout" eventually 15 lines_at_least "$out" 5

    # The hub goes away and comes back on the same port: a new in-memory hub,
    # so a new epoch.
    kill -TERM "$hub_pid"
    wait_exit "$hub_pid" 10
    check "$mode: the hub exits 0 (got $status)" test "$status" = 0
    check "$mode: the follower notices (reconnecting)" eventually 15 matches_at_least "$err" '^state: reconnecting' 1
    generation=$((generation + 1))
    started=
    for _ in $(seq 50); do # the port may linger a moment
        if start_hub "hub$generation" --listen "127.0.0.1:$port" --allow-publish; then
            started=1
            break
        fi
        sleep 0.1
    done
    if [[ -z $started ]]; then
        not_ok "$mode: the hub restarts on port $port" "$(cat "$tmp/hub$generation.err")"
        break
    fi
    check "$mode: subscribed again" eventually 30 matches_at_least "$err" "^subscribed: $topic " 2
    check "$mode: the new epoch is reported recovered=false" grep -q "^recovered=false: $topic " "$err"
    for i in 6 7 8 9 10; do
        publish_ok "$port" "$topic" "{\"i\":$i}" || not_ok "$mode: publish $i"
    done
    check "$mode: 10 events on stdout" eventually 15 lines_at_least "$out" 10

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
check "SIGTERM: subscribed" eventually 15 matches_at_least "$tmp/term.err" '^subscribed: term:1 ' 1
kill -TERM "$fpid"
wait_exit "$fpid" 10
check "SIGTERM exits 0 (got $status)" test "$status" = 0

kill -TERM "$hub_pid" 2>/dev/null
wait_exit "$hub_pid" 10

summary
