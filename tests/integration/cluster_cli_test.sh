#!/usr/bin/env bash
# The two-hub cluster of examples/cluster/run.sh as processes (PROTOCOL.md
# section 9): run.sh starts a redis-server and two `sluice-hub --redis`; a
# publish on hub A reaches an SSE subscriber of hub B with the offset and
# epoch that A answered, and a publish on B continues the same sequence; both
# /health say ok. Redis killed: both /health say degraded (still 200) and
# publishes answer 503 while the SSE stream stays open. Redis restarted (empty,
# same port): both /health say ok again, publishes work, and the SSE
# subscriber that never reconnected gets the new events. SIGTERM to run.sh
# stops everything and exits 0.
#
# usage: cluster_cli_test.sh /path/to/sluice-hub [/path/to/redis-server]
# Needs bash (its /dev/tcp), coreutils and redis-server. Every wait is bounded.
set -u

hub=${1:?usage: cluster_cli_test.sh /path/to/sluice-hub [/path/to/redis-server]}
redis_server=${2:-/usr/bin/redis-server}
run_sh="$(cd "$(dirname "$0")/../.." && pwd)/examples/cluster/run.sh"
# shellcheck source-path=SCRIPTDIR source=cli_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
require_executables "$hub" "$redis_server" "$run_sh"

health_is() { # health_is PORT STATUS BACKPLANE
    local h
    h=$(health "$1") || return 1
    grep -q '^HTTP/1.1 200' <<<"$h" && grep -q "\"status\":\"$2\"" <<<"$h" &&
        grep -q "\"backplane\":\"$3\"" <<<"$h"
}
json_field() { # json_field NAME <<<JSON: a number or string field's value
    sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n1
}
# sse_has OFFSET EPOCH: the subscriber got an event with both.
sse_has() {
    grep '^data: ' "$tmp/sse.out" | grep '"type":"event"' | grep "\"offset\":$1[,}]" |
        grep -q "\"epoch\":\"$2\""
}

# ---------------------------------------------------------------------------
# 1. run.sh starts Redis and two hubs on free ports.
"$run_sh" --hub "$hub" --redis-server "$redis_server" --ports 0,0 >"$tmp/run.out" 2>"$tmp/run.err" &
run_pid=$!
pids+=("$run_pid")
if ! eventually 40 grep -q '^Ctrl-C stops everything' "$tmp/run.out"; then
    not_ok "run.sh starts the cluster" "$(cat "$tmp/run.out" "$tmp/run.err")"
    summary
    exit 1
fi
ok "run.sh starts the cluster"
redis_port=$(sed -n 's/^redis: *127\.0\.0\.1:\([0-9]*\) (pid \([0-9]*\).*/\1/p' "$tmp/run.out")
redis_pid=$(sed -n 's/^redis: *127\.0\.0\.1:\([0-9]*\) (pid \([0-9]*\).*/\2/p' "$tmp/run.out")
port_a=$(sed -n 's|^hub A: *http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$tmp/run.out")
port_b=$(sed -n 's|^hub B: *http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$tmp/run.out")
hub_a_pid=$(sed -n 's|^hub A: .*(pid \([0-9]*\))|\1|p' "$tmp/run.out")
hub_b_pid=$(sed -n 's|^hub B: .*(pid \([0-9]*\))|\1|p' "$tmp/run.out")
check "run.sh prints Redis's port and pid" test -n "$redis_port" -a -n "$redis_pid"
check "run.sh prints two hub URLs on free ports" test -n "$port_a" -a -n "$port_b" -a \
    "${port_a:-0}" != 0 -a "${port_b:-0}" != 0 -a "$port_a" != "$port_b"

# 2. Both hubs joined: /health ok, backplane up.
check "hub A /health: ok, backplane up" eventually 10 health_is "$port_a" ok up
check "hub B /health: ok, backplane up" eventually 10 health_is "$port_b" ok up

# 3. An SSE subscriber on hub B; a publish on hub A reaches it with the same
#    offset and epoch.
exec {sse}<>"/dev/tcp/127.0.0.1/$port_b"
printf 'GET /events?topic=cl:1 HTTP/1.1\r\nHost: x\r\n\r\n' >&"$sse"
timeout 170 cat <&"$sse" >"$tmp/sse.out" &
sse_pid=$!
pids+=("$sse_pid")
check "hub B answers the SSE subscription" eventually 10 grep -q '^event: subscribed' "$tmp/sse.out"

ans=$(publish "$port_a" cl:1 '{"n":1}')
check "publish on hub A answers 200" grep -q '^HTTP/1.1 200' <<<"$ans"
body=$(tail -n1 <<<"$ans")
offset1=$(json_field offset <<<"$body")
epoch1=$(json_field epoch <<<"$body")
check "publish on hub A gives an offset and an epoch" test -n "$offset1" -a -n "$epoch1"
check "the SSE subscriber on hub B gets it with offset $offset1 and A's epoch" \
    eventually 10 sse_has "$offset1" "$epoch1"

ans=$(publish "$port_b" cl:1 '{"n":2}')
body=$(tail -n1 <<<"$ans")
offset2=$(json_field offset <<<"$body")
check "a publish on hub B continues the sequence (offset $((offset1 + 1)))" \
    test "$offset2" = "$((offset1 + 1))"
check "a publish on hub B keeps the topic's epoch" test "$(json_field epoch <<<"$body")" = "$epoch1"
check "the SSE subscriber on hub B gets it too" eventually 10 sse_has "$offset2" "$epoch1"

# 4. Resume on the other hub: an SSE client that saw up to offset2 on hub B
#    reconnects to hub A with its last id and gets what it missed, then live.
last_id=$(grep '^id: ' "$tmp/sse.out" | tail -n1 | cut -c5- | tr -d '\r')
offset3=$(publish "$port_a" cl:1 '{"n":3}' | tail -n1 | json_field offset)
offset4=$(publish "$port_b" cl:1 '{"n":4}' | tail -n1 | json_field offset)
check "two more publishes continue the sequence" \
    test "$offset3" = "$((offset2 + 1))" -a "$offset4" = "$((offset2 + 2))"
exec {resume}<>"/dev/tcp/127.0.0.1/$port_a"
printf 'GET /events?topic=cl:1 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: %s\r\n\r\n' "$last_id" >&"$resume"
timeout 20 cat <&"$resume" >"$tmp/resume.out" &
resume_pid=$!
pids+=("$resume_pid")
resumed_has() {
    grep '^data: ' "$tmp/resume.out" | grep '"type":"event"' | grep -q "\"offset\":$1[,}]"
}
check "resuming on hub A with hub B's Last-Event-ID: recovered" \
    eventually 10 grep -q '"recovered":true' "$tmp/resume.out"
check "the resumed stream replays offsets $offset3 and $offset4" \
    eventually 10 resumed_has "$offset4"
check "the resumed stream starts right after the last id (offset $offset3, no duplicate)" \
    test "$(grep '^data: ' "$tmp/resume.out" | grep '"type":"event"' | head -n1 |
        json_field offset)" = "$offset3"
kill "$resume_pid" 2>/dev/null
exec {resume}>&-

# 5. Redis killed: degraded, 503, clients stay connected.
kill -KILL "$redis_pid"
check "hub A /health: degraded, backplane down (still 200)" eventually 15 health_is "$port_a" degraded down
check "hub B /health: degraded, backplane down (still 200)" eventually 15 health_is "$port_b" degraded down
check "publish on hub A answers 503 while Redis is down" \
    grep -q '^HTTP/1.1 503' <<<"$(publish "$port_a" cl:1 '{"n":5}')"
check "publish on hub B answers 503 while Redis is down" \
    grep -q '^HTTP/1.1 503' <<<"$(publish "$port_b" cl:1 '{"n":5}')"
check "the SSE stream of hub B stays open" kill -0 "$sse_pid"
check "run.sh says Redis exited and how to start it again" \
    eventually 5 grep -q '^redis exited' "$tmp/run.out"
check "both hubs keep running" kill -0 "$hub_a_pid" "$hub_b_pid"

# 6. Redis back (empty, same port): ok again, publishes flow to the subscriber
#    that never reconnected (a new epoch: Redis lost the topic's position).
"$redis_server" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --dir "$tmp" --loglevel warning >"$tmp/redis2.log" 2>&1 &
redis2_pid=$!
pids+=("$redis2_pid")
check "hub A /health: ok again after Redis returned" eventually 20 health_is "$port_a" ok up
check "hub B /health: ok again after Redis returned" eventually 20 health_is "$port_b" ok up
ans=$(publish "$port_a" cl:1 '{"n":6}')
check "publish on hub A answers 200 again" grep -q '^HTTP/1.1 200' <<<"$ans"
body=$(tail -n1 <<<"$ans")
offset4=$(json_field offset <<<"$body")
epoch4=$(json_field epoch <<<"$body")
check "Redis lost the topic: a new epoch" test -n "$epoch4" -a "$epoch4" != "$epoch1"
check "the SSE subscriber on hub B gets the new event (offset $offset4)" \
    eventually 10 sse_has "$offset4" "$epoch4"
check "the SSE stream of hub B was never closed" kill -0 "$sse_pid"

# 7. SIGTERM to run.sh stops the hubs (and its Redis) and exits 0.
kill -TERM "$run_pid"
wait_exit "$run_pid" 20
check "run.sh exits 0 on SIGTERM (got $status)" test "$status" = 0
check "hub A is gone" eventually 5 bash -c "! kill -0 $hub_a_pid 2>/dev/null"
check "hub B is gone" eventually 5 bash -c "! kill -0 $hub_b_pid 2>/dev/null"
check "the SSE stream ended with hub B" eventually 5 bash -c "! kill -0 $sse_pid 2>/dev/null"
exec {sse}>&-
kill -TERM "$redis2_pid" 2>/dev/null
eventually 5 bash -c "! kill -0 $redis2_pid 2>/dev/null" && wait "$redis2_pid" 2>/dev/null

summary
