#!/usr/bin/env bash
# sluice-hub as a process (PROTOCOL.md section 8): `--listen 127.0.0.1:0`
# prints `listening on 127.0.0.1:PORT`, it serves, it exits 0 on SIGTERM and
# SIGINT (closing WebSockets with 1001), and exits 2 with a message on stderr
# for a bad flag or a busy port.
#
# usage: hub_cli_test.sh /path/to/sluice-hub
# Needs only bash (its /dev/tcp), coreutils and od. Every wait is bounded.
set -u

hub=${1:?usage: hub_cli_test.sh /path/to/sluice-hub}
# shellcheck source-path=SCRIPTDIR source=cli_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
require_executables "$hub"

# ---------------------------------------------------------------------------
# 1. Port 0, the listening line, /health, SIGTERM -> 0
if start_hub main --listen 127.0.0.1:0; then
    ok "prints 'listening on 127.0.0.1:PORT'"
    check "the printed port is not 0" test -n "$hub_port" -a "${hub_port:-0}" != 0
    check "prints the line once" test "$(grep -c '^listening on' "$tmp/main.out")" = 1
    health=$(health "$hub_port")
    check "/health answers 200" grep -q '^HTTP/1.1 200' <<<"$health"
    check "/health says ok" grep -q '"status":"ok"' <<<"$health"
    pub=$(http "$hub_port" 'POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{"topic":"a","data":1}  ')
    check "publish is refused without --allow-publish (403)" grep -q '^HTTP/1.1 403' <<<"$pub"

    # A WebSocket client connected when SIGTERM arrives gets close 1001.
    exec {ws}<>"/dev/tcp/127.0.0.1/$hub_port"
    printf 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' >&"$ws"
    sleep 0.3
    kill -TERM "$hub_pid"
    bytes=$(timeout 8 od -An -v -tx1 <&"$ws" | tr -s ' \n' ' ')
    exec {ws}>&-
    check "the upgrade was answered 101" grep -q '48 54 54 50 2f 31 2e 31 20 31 30 31' <<<"$bytes"
    # A close frame: 0x88, a length, then 1001 = 0x03 0xe9.
    check "SIGTERM closes WebSockets with 1001" grep -Eq '88 [0-7][0-9a-f] 03 e9' <<<"$bytes"
    wait_exit "$hub_pid" 10
    check "SIGTERM exits 0 (got $status)" test "$status" = 0
else
    not_ok "prints 'listening on 127.0.0.1:PORT'" "$(cat "$tmp/main.err")"
fi

# 2. SIGINT -> 0; --allow-publish and --static
www="$tmp/www"
mkdir -p "$www"
echo '<!doctype html><title>sluice test page</title>' >"$www/index.html"
if start_hub second --listen 127.0.0.1:0 --allow-publish --static "$www" --ping-interval 0.5; then
    pub=$(http "$hub_port" 'POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{"topic":"a","data":1}  ')
    check "--allow-publish: publish answers 200" grep -q '^HTTP/1.1 200' <<<"$pub"
    page=$(http "$hub_port" 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    check "--static serves index.html at /" grep -q 'sluice test page' <<<"$page"
    check "--static: text/html" grep -qi '^Content-Type: text/html' <<<"$page"
    kill -INT "$hub_pid"
    wait_exit "$hub_pid" 10
    check "SIGINT exits 0 (got $status)" test "$status" = 0
else
    not_ok "starts with --allow-publish --static" "$(cat "$tmp/second.err")"
fi

# 3. --jwt-secret: no token, 401
if start_hub jwt --listen 127.0.0.1:0 --jwt-secret a-secret-of-at-least-32-bytes-for-tests; then
    ans=$(http "$hub_port" 'GET /events?topic=a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    check "--jwt-secret: SSE without a token is 401" grep -q '^HTTP/1.1 401' <<<"$ans"
    kill -TERM "$hub_pid"
    wait_exit "$hub_pid" 10
    check "SIGTERM exits 0 with --jwt-secret (got $status)" test "$status" = 0
else
    not_ok "starts with --jwt-secret" "$(cat "$tmp/jwt.err")"
fi

# 4. A busy port -> 2 with a message
if start_hub holder --listen 127.0.0.1:0; then
    busy=$hub_port
    holder=$hub_pid
    "$hub" --listen "127.0.0.1:$busy" >"$tmp/busy.out" 2>"$tmp/busy.err" &
    bpid=$!
    pids+=("$bpid")
    wait_exit "$bpid" 10
    check "a busy port exits 2 (got $status)" test "$status" = 2
    check "a busy port says why on stderr" test -s "$tmp/busy.err"
    check "a busy port prints no listening line" test ! -s "$tmp/busy.out"
    kill -TERM "$holder"
    wait_exit "$holder" 10
else
    not_ok "starts a hub to hold a port"
fi

# 5. Bad flags -> 2 with a message
bad_flags=(
    "--bogus"
    "--listen"
    "--listen nope"
    "--listen 127.0.0.1:99999"
    "--listen 127.0.0.1:abc"
    "--history abc"
    "--history -1"
    "--client-rate 0"
    "--ping-interval -1"
    "--ping-interval 0"
    "--pong-timeout x"
    "--max-message-bytes 0"
    "--token-grace -5"
    "--jwt-secret"
)
for flags in "${bad_flags[@]}"; do
    # shellcheck disable=SC2086
    timeout 10 "$hub" --listen 127.0.0.1:0 $flags >"$tmp/bad.out" 2>"$tmp/bad.err" </dev/null &
    bpid=$!
    pids+=("$bpid")
    wait_exit "$bpid" 10
    if [[ $status != 2 ]]; then
        kill -KILL "$bpid" 2>/dev/null
    fi
    check "bad flag '$flags' exits 2 (got $status)" test "$status" = 2
    check "bad flag '$flags' says why on stderr" test -s "$tmp/bad.err"
done

summary
