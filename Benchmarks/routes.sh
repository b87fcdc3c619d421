#!/usr/bin/env bash
# Benchmarks/routes.sh - does route selection slow down with the number of routes? (issue 16 item 3)
#
# One `lodestar edge` (one thread, pinned to CPU 0) in front of `lodestar origin`, with N routes: N exact-host sites
# `site-0.example.test` ... `site-(N-1).example.test`, each its own route, then a catch-all `*` route; every route
# caches. wrk (CPU 1) asks for /static/app.css on the LAST site, so a linear scan would look at every route before
# it; the object is a cache hit after the first request. For each N it reports req/s and the edge's CPU per request
# (utime+stime from /proc/PID/stat over the measured run) and, at the end, the ratio of each N's CPU per request to
# N=1's (target: within 1.1x).
#
# Usage:  Benchmarks/routes.sh            (env: ROUTES="1 2000 20000" DURATION=8 WARMUP=2 CONNECTIONS=64
#                                          LODESTAR_BIN=.build/release/lodestar PORT=18480 ORIGIN_PORT=18481 SAVE=1)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUTES=${ROUTES:-"1 2000 20000"}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18480}
ORIGIN_PORT=${ORIGIN_PORT:-18481}
BIN=${LODESTAR_BIN:-$ROOT/.build/release/lodestar}
if [ "${SAVE:-0}" = 1 ]; then
    mkdir -p "$HERE/results"
    exec > >(tee "$HERE/results/$(date +%Y-%m-%d)-routes.txt") 2>&1
fi
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
[ -x "$BIN" ] || (cd "$ROOT" && make release)
WORK=$(mktemp -d /tmp/lodestar-routes.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

"$BIN" origin --listen "127.0.0.1:$ORIGIN_PORT" >"$WORK/origin.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN_PORT"
echo "lodestar routes benchmark: $(date -u +%FT%TZ), $("$BIN" version 2>/dev/null || echo lodestar), load $(cut -d' ' -f1 /proc/loadavg)"
echo "routes | req/s   | edge CPU us/request | edge RSS MiB | non-2xx"
declare -A CPU
for n in $ROUTES; do
    python3 - "$n" "$PORT" "$ORIGIN_PORT" >"$WORK/topology-$n.json" <<'PY'
import json, sys
n, port, origin = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
routes = [{"hosts": [f"site-{i}.example.test"], "pool": "o", "cache": {"enabled": True}} for i in range(n)]
routes.append({"hosts": ["*"], "pool": "o", "cache": {"enabled": True}})
print(json.dumps({
    "zone": {"name": "example.test", "soa": {"primary": "ns1.example.test", "contact": "h.example.test", "serial": 1},
             "nameservers": [{"name": "ns1.example.test", "addresses": ["127.0.0.1"]}]},
    "regions": [{"id": "r", "latitude": 0, "longitude": 0}],
    "edges": [{"id": "e1", "region": "r", "addresses": ["127.0.0.1"], "listen": [f"127.0.0.1:{port}"]}],
    "services": {"www": {"edges": ["e1"]}},
    "dns": {"nodeId": "d", "listen": ["127.0.0.1:1"], "geoDatabase": "/dev/null"},
    "origins": {"o": {"servers": [f"127.0.0.1:{origin}"]}},
    "routes": routes,
    "proxy": {"threads": 1, "accessLog": False, "compression": {"enabled": False}},
}))
PY
    taskset -c 0 "$BIN" edge --topology "$WORK/topology-$n.json" --node e1 >"$WORK/edge-$n.log" 2>&1 &
    EDGE=$!
    PIDS+=($EDGE)
    wait_port "$PORT" || { cat "$WORK/edge-$n.log"; exit 1; }
    HOST="site-$((n - 1)).example.test"
    curl -s -o /dev/null -H "Host: $HOST" "http://127.0.0.1:$PORT/static/app.css"
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "Host: $HOST" "http://127.0.0.1:$PORT/static/app.css" >/dev/null
    before=$(ticks "$EDGE")
    out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -H "Host: $HOST" "http://127.0.0.1:$PORT/static/app.css")
    after=$(ticks "$EDGE")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    hits=$(curl -s -D - -o /dev/null -H "Host: $HOST" "http://127.0.0.1:$PORT/static/app.css" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache" {print $2}')
    rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$EDGE/status")
    us=$(awk -v t="$((after - before))" -v r="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz * 1e6 / r}')
    CPU[$n]=$us
    printf "%-6s | %-7s | %-19s | %-12s | %s (X-Cache %s)\n" "$n" "$rps" "$us" "$rss" "${non2xx:-0}" "$hits"
    kill "$EDGE"
    wait "$EDGE" 2>/dev/null || true
done
first=${ROUTES%% *}
for n in $ROUTES; do
    awk -v a="${CPU[$n]}" -v b="${CPU[$first]}" -v n="$n" -v f="$first" \
        'BEGIN {r = a / b; printf "CPU per request, %s routes / %s: %.2f %s\n", n, f, r, (r <= 1.1 ? "(within 1.1x)" : "(over 1.1x)")}'
done
