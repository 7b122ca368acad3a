#!/usr/bin/env bash
# A two-hub sluice cluster on this machine (PROTOCOL.md section 9): starts its
# own redis-server (persistence off, loopback only) and two `sluice-hub
# --redis` processes on 127.0.0.1, prints their URLs, and stops everything on
# Ctrl-C (or SIGTERM). See examples/cluster/README.md for what to try.
#
#   examples/cluster/run.sh [--hub PATH] [--redis-server PATH] [--redis-port N]
#                           [--ports A,B] [--demo] [-- extra sluice-hub flags...]
#
#   --hub PATH           sluice-hub to run (default: $SLUICE_HUB, else
#                        build/release/ or build/dev/ of this repository, else PATH)
#   --redis-server PATH  default /usr/bin/redis-server (Debian package redis-server)
#   --redis-port N       Redis port (default: a free one from 16379 up)
#   --ports A,B          the hubs' ports (default 8081,8082; 0 picks free ones)
#   --demo               hub A also runs the simulated market feed (--demo), and
#                        both serve the dashboard of examples/dashboard/
#   -- FLAGS...          passed to both hubs (default flags: --allow-publish)
#
# When Redis exits (kill it to see the hubs degrade) the script keeps the hubs
# running and prints the command that starts Redis again on the same port (a
# Redis started that way is not stopped by this script).
# Every wait is bounded; a hub that fails to start stops everything (status 1).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
hub=${SLUICE_HUB:-}
redis_server=/usr/bin/redis-server
redis_port=
ports=8081,8082
demo=0
hub_flags=(--allow-publish)

die() {
    echo "run.sh: $*" >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case $1 in
    --hub) hub=${2:?--hub needs a path}; shift 2 ;;
    --redis-server) redis_server=${2:?--redis-server needs a path}; shift 2 ;;
    --redis-port) redis_port=${2:?--redis-port needs a number}; shift 2 ;;
    --ports) ports=${2:?--ports needs A,B}; shift 2 ;;
    --demo) demo=1; shift ;;
    --) shift; hub_flags+=("$@"); break ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown flag '$1' (try --help)" ;;
    esac
done

if [[ -z $hub ]]; then
    for candidate in "$repo/build/release/examples/hub/sluice-hub" \
        "$repo/build/dev/examples/hub/sluice-hub" "$(command -v sluice-hub || true)"; do
        if [[ -n $candidate && -x $candidate ]]; then
            hub=$candidate
            break
        fi
    done
fi
[[ -n $hub && -x $hub ]] ||
    die "no sluice-hub found: build it (cmake --preset release && cmake --build --preset release) or pass --hub PATH"
[[ -x $redis_server ]] ||
    die "no $redis_server: install the Debian package redis-server (scripts/install-deps.sh does)"
[[ $ports =~ ^([0-9]+),([0-9]+)$ ]] || die "--ports needs two numbers A,B, not '$ports'"
port_a=${BASH_REMATCH[1]}
port_b=${BASH_REMATCH[2]}

# A port nobody answers on (a connection attempt is refused).
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z $redis_port ]]; then
    redis_port=16379
    while ! port_is_free "$redis_port"; do
        redis_port=$((redis_port + 1))
        ((redis_port < 16479)) || die "no free Redis port in 16379-16478; pass --redis-port"
    done
fi
[[ $redis_port =~ ^[0-9]+$ ]] || die "--redis-port needs a number, not '$redis_port'"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cluster-XXXXXX")
redis_pid=
hub_pids=()
hub_names=(A B)

stop_all() {
    trap - INT TERM EXIT
    for p in "${hub_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    # Hubs close their clients and exit 0 on SIGTERM; give them 10 s.
    for p in "${hub_pids[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [[ -n $redis_pid ]]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$redis_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$redis_pid" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap 'stop_all; exit 1' EXIT
trap 'echo; echo "stopping the cluster"; stop_all; exit 0' INT TERM

redis_cmd=("$redis_server" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no
    --daemonize no --dir "$tmp" --loglevel warning)
"${redis_cmd[@]}" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
redis_up=0
for _ in $(seq 50); do
    kill -0 "$redis_pid" 2>/dev/null || break
    # RESP inline PING over bash's /dev/tcp: no redis-cli needed.
    if { exec 3<>"/dev/tcp/127.0.0.1/$redis_port"; } 2>/dev/null; then
        printf 'PING\r\n' >&3
        if read -r -t 1 line <&3 && [[ $line == +PONG* ]]; then redis_up=1; fi
        exec 3>&-
        [[ $redis_up == 1 ]] && break
    fi
    sleep 0.1
done
if [[ $redis_up != 1 ]]; then
    echo "run.sh: redis-server did not start on 127.0.0.1:$redis_port:" >&2
    cat "$tmp/redis.log" >&2
    exit 1
fi

if [[ $demo == 1 && -f $repo/examples/dashboard/index.html ]]; then
    hub_flags+=(--static "$repo/examples/dashboard")
fi

# start_hub NAME PORT FLAGS...: sets hub_url once it printed `listening on`
# (it does once joined to Redis, or after 5 s in degraded mode).
start_hub() {
    local name=$1 port=$2
    shift 2
    "$hub" --listen "127.0.0.1:$port" --redis "127.0.0.1:$redis_port" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    local pid=$!
    hub_pids+=("$pid")
    for _ in $(seq 150); do
        local line
        line=$(grep -m1 '^listening on ' "$tmp/$name.out" 2>/dev/null || true)
        if [[ -n $line ]]; then
            hub_url="http://${line#listening on }"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "run.sh: $name did not start:" >&2
    cat "$tmp/$name.err" >&2
    return 1
}

a_flags=("${hub_flags[@]}")
[[ $demo == 1 ]] && a_flags+=(--demo)
start_hub hub-a "$port_a" "${a_flags[@]}" || exit 1
url_a=$hub_url
start_hub hub-b "$port_b" "${hub_flags[@]}" || exit 1
url_b=$hub_url

cat <<EOF
redis:  127.0.0.1:$redis_port (pid $redis_pid, persistence off)
hub A:  $url_a (pid ${hub_pids[0]})
hub B:  $url_b (pid ${hub_pids[1]})
logs:   $tmp
try:
  curl -N '$url_b/events?topic=demo:1'
  curl -s -H 'Content-Type: application/json' -d '{"topic":"demo:1","data":{"n":1}}' $url_a/publish
  curl -s $url_a/health $url_b/health
Ctrl-C stops everything
EOF

# Wait for a signal; report children that exit meanwhile.
while true; do
    wait -n 2>/dev/null || true
    for i in 0 1; do
        if ! kill -0 "${hub_pids[$i]}" 2>/dev/null; then
            echo "run.sh: hub ${hub_names[$i]} (pid ${hub_pids[$i]}) exited; stopping" >&2
            exit 1
        fi
    done
    if [[ -n $redis_pid ]] && ! kill -0 "$redis_pid" 2>/dev/null; then
        echo "redis exited: the hubs are degraded (publish answers 503) until it is back;"
        echo "start it again in another terminal (Ctrl-C there stops it):"
        printf '  '
        printf '%q ' "${redis_cmd[@]}"
        echo
        redis_pid=
    fi
done
