#!/usr/bin/env bash
# Benchmarks/h2floor.sh - the floor under the edge's HTTP/1.1 and HTTP/2 rows: what a server spends per request
# when it does nothing but answer, SwiftNIO (and swift-nio-http2) against nginx, with no origin behind either.
#
# Servers (each pinned to CPU 0, alone; the load generator on CPU 1), every one answering GET /1k with 1 KiB:
#   nio-h1       Benchmarks/h2floor: raw bytes on a NIO channel, a canned answer per request head (no HTTP codec)
#   nio-h2-child Benchmarks/h2floor: h2c, swift-nio-http2's inline multiplexer, a child channel per stream
#                (the edge's HTTP/2 pipeline without the edge)
#   nio-h2-conn  Benchmarks/h2floor: h2c, no multiplexer, one connection-level handler answers every stream
#   nginx-h1     nginx (one worker), `return 200` with 1 KiB of text (no file to open)
#   nginx-h2     nginx (one worker), the same on `listen ... http2`, a cleartext port (h2c, prior knowledge)
# Relays, in front of an origin (nginx, one worker, `return 200` with 1 KiB, on PORT+1, pinned to CPU 1 with the
# load generator) - the floor under edge.sh's 1 KiB row:
#   nio-relay    Benchmarks/h2floor: each client's bytes relayed to an upstream connection of its own and back on
#                SwiftNIO channels (no parsing at all: the least a proxy on NIO can spend)
#   epoll-relay  Benchmarks/h2floor: the same relay on a hand-written epoll loop (Swift, no NIO)
#   nginx-relay  nginx (one worker) as edge.sh runs it: proxy_pass to an upstream with keepalive 64
#   lodestar-relay  `lodestar edge --threads 1` with edge.sh's topology (only when LODESTAR_BIN is set)
# Load: HTTP/1.1 wrk -t1 -c64; HTTP/2 h2load -t1 -c10 -m10 (the edge.sh rows' settings). Per server and round:
# req/s and server CPU per request (utime+stime from /proc/PID/stat over the measured run, user and system apart).
# Compare with Benchmarks/edge.sh's rows (the same loads through a proxy to an origin).
#
# Usage:  Benchmarks/h2floor.sh   (env: SERVERS="nio-h1 nginx-h1 nio-h2-child nio-h2-conn nginx-h2 nio-relay
#                                  epoll-relay nginx-relay [lodestar-relay]" DURATION=5 WARMUP=2 ROUNDS=2 PORT=18490
#                                  LODESTAR_BIN=path SAVE=1: tee into results/DATE-h2floor.txt)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SERVERS=${SERVERS:-"nio-h1 nginx-h1 nio-h2-child nio-h2-conn nginx-h2 nio-relay epoll-relay nginx-relay${LODESTAR_BIN:+ lodestar-relay}"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-18490}
ORIGIN_PORT=$((PORT + 1))
if [ "${SAVE:-0}" = 1 ]; then
    mkdir -p "$HERE/results"
    exec > >(tee "$HERE/results/$(date +%Y-%m-%d)-h2floor.txt") 2>&1
fi
for tool in wrk h2load:nghttp2-client nginx:nginx-light curl; do
    command -v "${tool%%:*}" >/dev/null || apt-get install -y -qq "${tool#*:}" >/dev/null
done
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --package-path "$HERE/h2floor" 2>&1 | tail -1
FLOOR=$HERE/h2floor/.build/release/h2floor
WORK=$(mktemp -d /tmp/lodestar-h2floor.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/logs"
BODY=$(printf 'x%.0s' $(seq 1024))  # nginx's answer: 1 KiB of text
nginx_conf() { # $1: listen parameters [$2: pid file, $3: location body]
    cat <<NGX
worker_processes 1;
pid ${2:-$WORK/nginx.pid};
error_log $WORK/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; keepalive_requests 10000000; }
    server { listen $1; location / { ${3:-return 200 "$BODY";} } }
}
NGX
}
if [[ " $SERVERS " == *-relay* ]]; then  # the relays' origin, on the load generator's CPU
    nginx_conf "127.0.0.1:$ORIGIN_PORT" "$WORK/origin.pid" >"$WORK/origin.conf"
    taskset -c 1 nginx -p "$WORK" -c "$WORK/origin.conf"
    sleep 0.3
    PIDS+=("$(cat "$WORK/origin.pid")")
fi
RELAY_LOCATION='proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";'

ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
start() { # server -> SERVER_PID (the process that does the work)
    case $1 in
        nio-relay|epoll-relay) local mode=relay; [ "$1" = epoll-relay ] && mode=epoll
            taskset -c 0 "$FLOOR" "$mode" "$PORT" "$ORIGIN_PORT" >"$WORK/logs/$1.log" 2>&1 &
            SERVER_PID=$! PIDS+=("$SERVER_PID") ;;
        lodestar-relay)
            sed -e "s|@LISTEN@|\"127.0.0.1:$PORT\"|g; s|@DNS_PORT@|$((PORT + 2))|g; s|@ORIGIN_PORT@|$ORIGIN_PORT|g; s|@THREADS@|1|g" \
                "$HERE/edge/topology.json" >"$WORK/topology.json"
            taskset -c 0 "$LODESTAR_BIN" edge --topology "$WORK/topology.json" --node bench-edge --threads 1 \
                >"$WORK/logs/$1.log" 2>&1 &
            SERVER_PID=$! PIDS+=("$SERVER_PID") ;;
        nio-*) local mode=${1#nio-}; mode=${mode#h2-}
            taskset -c 0 "$FLOOR" "$mode" "$PORT" >"$WORK/logs/$1.log" 2>&1 &
            SERVER_PID=$! PIDS+=("$SERVER_PID") ;;
        nginx-*) local listen="127.0.0.1:$PORT"; [ "$1" = nginx-h2 ] && listen="$listen http2"
            local location=; [ "$1" = nginx-relay ] && location=$RELAY_LOCATION
            nginx_conf "$listen" "$WORK/nginx.pid" "$location" >"$WORK/nginx.conf"
            taskset -c 0 nginx -p "$WORK" -c "$WORK/nginx.conf"
            sleep 0.3
            local master; master=$(cat "$WORK/nginx.pid"); PIDS+=("$master")
            SERVER_PID=$(pgrep -P "$master" | head -1) ;;
    esac
    local flag=--http1.1; [[ $1 == *h2* ]] && flag=--http2-prior-knowledge
    for _ in $(seq 100); do curl -sf -m 2 "$flag" -o /dev/null "http://127.0.0.1:$PORT/1k" && return 0; sleep 0.1; done
    echo "$1 did not answer" >&2; exit 1
}
stop() { # server
    case $1 in
        nio-*|epoll-*|lodestar-*) kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true ;;
        nginx-*) local master; master=$(cat "$WORK/nginx.pid"); kill "$master"; while kill -0 "$master" 2>/dev/null; do sleep 0.1; done ;;
    esac
}
load() { # server seconds outfile
    if [[ $1 == *h2* ]]; then taskset -c 1 h2load -t1 -c10 -m10 -D "$2" "http://127.0.0.1:$PORT/1k" >"$3" 2>&1
    else taskset -c 1 wrk -t1 -c64 -d"$2"s "http://127.0.0.1:$PORT/1k" >"$3" 2>&1; fi
}
requests() { # server outfile
    if [[ $1 == *h2* ]]; then grep -oE "[0-9]+ succeeded" "$2" | grep -oE "^[0-9]+"
    else grep -oE "^ +[0-9]+ requests" "$2" | grep -oE "[0-9]+"; fi
}

echo "h2floor: $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg); server CPU 0, load CPU 1, ${DURATION}s runs"
echo "server        round  req/s     CPU us/request (user + sys)"
for round in $(seq "$ROUNDS"); do
    for s in $SERVERS; do
        start "$s"
        load "$s" "$WARMUP" "$WORK/warmup.txt"
        read -r u0 s0 < <(ticks "$SERVER_PID")
        load "$s" "$DURATION" "$WORK/run.txt"
        read -r u1 s1 < <(ticks "$SERVER_PID")
        stop "$s"
        n=$(requests "$s" "$WORK/run.txt")
        awk -v name="$s" -v r="$round" -v n="${n:-0}" -v d="$DURATION" -v u=$((u1 - u0)) -v sy=$((s1 - s0)) \
            -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n == 0) { printf "%-13s %-6s no requests\n", name, r; exit }
            printf "%-13s %-6s %-9.0f %5.2f (%.2f + %.2f)\n", name, r, n / d, (u + sy) * 1e6 / hz / n, u * 1e6 / hz / n, sy * 1e6 / hz / n }'
    done
done
