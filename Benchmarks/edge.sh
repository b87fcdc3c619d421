#!/usr/bin/env bash
# Benchmarks/edge.sh - `lodestar edge` vs nginx as an HTTP/1.1 reverse proxy,
# one after the other in one run, in front of the same origin, loaded by wrk.
#
#   wrk (CPU 1) --> proxy under test on 127.0.0.1:18080 (CPU 0) --> origin nginx on 127.0.0.1:18081 (CPU 1)
#
# Origin   one nginx (1 worker, access_log off, keep-alive with a huge keepalive_requests)
#          serving two static files from the temp dir: /1k (1024 bytes) and /64k (65536 bytes).
#          Config: Benchmarks/edge/origin.nginx.conf. Started once, runs for the whole script.
# Proxy A  nginx, 1 worker, `upstream { server ORIGIN; keepalive 64; }`, proxy_http_version 1.1,
#          proxy_set_header Connection "", access_log off, gzip off, proxy_buffering at its
#          default. Config: Benchmarks/edge/proxy.nginx.conf.
# Proxy B  `lodestar edge --topology T --node bench-edge --threads 1`, T = the temp dir's copy of
#          Benchmarks/edge/topology.json (one edge listening on the proxy port, one origin pool
#          with the origin, one catch-all route, access log and compression off).
# Pinning  this is a 2-core machine: the proxy under test gets CPU 0 for itself (taskset -c 0);
#          the origin and wrk share CPU 1 (taskset -c 1). PROXY_CPUS= / LOADGEN_CPUS= / PIN=0.
# Load     wrk -t1 -c64 -d10s --latency http://127.0.0.1:18080/{1k,64k}, each preceded by a 2 s
#          warm-up run (not reported). Every (proxy, body) run starts a fresh proxy process, so
#          its peak RSS (VmHWM) is that run's. Both proxies use the same port and never run at once.
# Report   per proxy and body: req/s, p50/p99 latency (ms), non-2xx and socket errors, peak RSS
#          (MiB; nginx: the worker), proxy CPU; then the side-by-side table with the ratios
#          lodestar/nginx and PASS/MISS against the targets (req/s >= 0.8x nginx, p99 <= 2x nginx).
#          The figures are printed whatever they are: missing a target is not a failure (exit 0).
#
# Usage:   Benchmarks/edge.sh [--no-build] [--save] [--only nginx|lodestar]   (see Benchmarks/README.md)
# Env:     DURATION=10 WARMUP=2 CONNECTIONS=64 WRK_THREADS=1 ROUNDS=1 BODIES="1k 64k"
#          EDGE_BENCH_ONLY=nginx|lodestar (one proxy only, no ratios; same as --only)
#          LODESTAR_BIN=path (no build)  NO_BUILD=1 (use the newest existing release binary)
#          PROXY_PORT=18080 ORIGIN_PORT=18081 DNS_PORT=15399 PROXY_THREADS=1
#          PIN=1 PROXY_CPUS=0 LOADGEN_CPUS=1 READY_TIMEOUT=60
#          SAVE=1 (tee everything to Benchmarks/results/DATE-edge.txt; RESULT_FILE=path to choose)
#          KEEP=1 (keep the temp dir with configs, logs and wrk outputs)
# Needs:   root the first time (apt-get install nginx wrk when missing; Debian's nginx service
#          is kept from starting by a temporary policy-rc.d). nginx always runs from the temp dir
#          with its own prefix, config, pid and logs: /etc/nginx is never used or changed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() { printf 'edge.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

ARGS=("$@")
while [ $# -gt 0 ]; do
    case $1 in
        --no-build) NO_BUILD=1 ;;
        --save) SAVE=1 ;;
        --only) [ $# -ge 2 ] || die "--only needs nginx or lodestar"; EDGE_BENCH_ONLY=$2; shift ;;
        --only=*) EDGE_BENCH_ONLY=${1#--only=} ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

# ---------------------------------------------------------------- save ----
# SAVE=1: run again with everything (progress on stderr and the report on stdout) teed into
# Benchmarks/results/DATE-edge.txt (DATE-edge-run2.txt, ... when it exists).
SAVE=${SAVE:-0}
if [ "$SAVE" = 1 ] && [ -z "${_EDGE_BENCH_TEE:-}" ]; then
    mkdir -p "$HERE/results"
    if [ -z "${RESULT_FILE:-}" ]; then
        RESULT_FILE=$HERE/results/$(date +%F)-edge.txt
        n=2
        while [ -e "$RESULT_FILE" ]; do RESULT_FILE=$HERE/results/$(date +%F)-edge-run$n.txt; n=$((n + 1)); done
    fi
    log "saving the output to $RESULT_FILE"
    set +e
    _EDGE_BENCH_TEE=1 "${BASH_SOURCE[0]}" "${ARGS[@]+"${ARGS[@]}"}" 2>&1 | tee "$RESULT_FILE"
    rc=${PIPESTATUS[0]}
    log "output saved to $RESULT_FILE"
    exit "$rc"
fi

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
ROUNDS=${ROUNDS:-1}
BODIES=${BODIES:-"1k 64k"}
PROXY_PORT=${PROXY_PORT:-18080}
ORIGIN_PORT=${ORIGIN_PORT:-18081}
DNS_PORT=${DNS_PORT:-15399}
PROXY_THREADS=${PROXY_THREADS:-1}
READY_TIMEOUT=${READY_TIMEOUT:-60}
PIN=${PIN:-1}
KEEP=${KEEP:-0}
NO_BUILD=${NO_BUILD:-0}
case ${EDGE_BENCH_ONLY:-} in
    "") PROXIES="nginx lodestar" ;;
    nginx | lodestar) PROXIES=$EDGE_BENCH_ONLY ;;
    *) die "EDGE_BENCH_ONLY / --only must be nginx or lodestar (got '$EDGE_BENCH_ONLY')" ;;
esac
want() { [[ " $PROXIES " == *" $1 "* ]]; }

for v in DURATION WARMUP CONNECTIONS WRK_THREADS ROUNDS PROXY_PORT ORIGIN_PORT DNS_PORT PROXY_THREADS READY_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[ "$DURATION" -ge 1 ] || die "DURATION must be >= 1 s"
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
[ "$CONNECTIONS" -ge "$WRK_THREADS" ] || die "CONNECTIONS must be >= WRK_THREADS"
for b in $BODIES; do [[ "$b" =~ ^[0-9]+k$ ]] || die "BODIES: '$b' is not a size like 1k or 64k (KiB)"; done

# ---------------------------------------------------------------- tools ----
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
command -v ss >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]}"
    # Keep Debian's nginx service from starting (it would listen on port 80): invoke-rc.d asks
    # /usr/sbin/policy-rc.d, and exit status 101 means "action forbidden". Put one there for the
    # install only, and put back whatever was there before.
    policy=/usr/sbin/policy-rc.d
    policy_saved=""
    if [ -e "$policy" ]; then policy_saved=$(mktemp /tmp/lodestar-edgebench-policy.XXXXXX); cp -p "$policy" "$policy_saved"; fi
    restore_policy() {
        if [ -n "$policy_saved" ]; then cp -p "$policy_saved" "$policy"; rm -f "$policy_saved"; else rm -f "$policy"; fi
    }
    trap restore_policy EXIT
    printf '#!/bin/sh\n# temporary, Benchmarks/edge.sh: no service starts during its apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    restore_policy
    trap - EXIT
fi
NGINX=$(command -v nginx)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
WRK_VERSION=$(wrk -v 2>&1 | head -n1 | awk '{ print $2 }' || true)

# ------------------------------------------------------------- lodestar ----
if want lodestar; then
    if [ -z "${LODESTAR_BIN:-}" ]; then
        if [ "$NO_BUILD" = 1 ]; then
            # the newest release binary there is (dns.sh builds into .build-bench, `swift build` into .build)
            LODESTAR_BIN=$(ls -t "$ROOT/.build-bench/release/lodestar" "$ROOT/.build/release/lodestar" 2>/dev/null | head -n1 || true)
            [ -n "$LODESTAR_BIN" ] || die "--no-build: no release binary in .build-bench/ or .build/ (set LODESTAR_BIN=...)"
        else
            command -v swift >/dev/null || die "swift not found (set LODESTAR_BIN=... or --only nginx)"
            log "== building lodestar: swift build -c release --scratch-path .build-bench --product lodestar"
            build_log=$(mktemp /tmp/lodestar-edgebench-build.XXXXXX)
            if ! (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product lodestar >"$build_log" 2>&1); then
                tail -n 40 "$build_log" >&2
                die "swift build failed (full log: $build_log; set LODESTAR_BIN=... or --only nginx)"
            fi
            rm -f "$build_log"
            LODESTAR_BIN=$ROOT/.build-bench/release/lodestar
        fi
    fi
    [ -x "$LODESTAR_BIN" ] || die "LODESTAR_BIN=$LODESTAR_BIN is not executable"
    LODESTAR_BIN=$(cd "$(dirname "$LODESTAR_BIN")" && pwd)/$(basename "$LODESTAR_BIN")
    # (an ArgumentParser build without `edge` prints the top-level help and exits 0: look for its usage line)
    if ! edge_help=$("$LODESTAR_BIN" edge --help 2>&1) || ! grep -q 'USAGE: lodestar edge' <<<"$edge_help"; then
        printf '%s\n' "$edge_help" | tail -n 20 >&2
        die "$LODESTAR_BIN has no \`edge\` subcommand (\`lodestar edge --help\` failed or shows no edge usage)"
    fi
fi

# ------------------------------------------------------------- temp dir ----
WORK=$(mktemp -d /tmp/lodestar-edgebench.XXXXXX)
chmod 755 "$WORK" # nginx workers may run as another user: they read www/ and the configs
declare -a PIDS=()
kill_pids() { # TERM, wait up to 5 s, then KILL; only the PIDs given (all started by this script)
    local pid i alive
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in $(seq 1 50); do
        alive=0
        for pid in "$@"; do if kill -0 "$pid" 2>/dev/null; then alive=1; fi; done
        [ "$alive" = 1 ] || break
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}
cleanup() {
    [ ${#PIDS[@]} -eq 0 ] || kill_pids "${PIDS[@]}"
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
track() { PIDS+=("$@"); }
untrack() {
    local keep=() p q drop
    for p in "${PIDS[@]}"; do
        drop=0
        for q in "$@"; do [ "$p" != "$q" ] || drop=1; done
        [ "$drop" = 1 ] || keep+=("$p")
    done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# ------------------------------------------------------------- CPU pins ----
NCPU=$(nproc)
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
    PROXY_CPUS=${PROXY_CPUS:-0}
    LOADGEN_CPUS=${LOADGEN_CPUS:-1}
    PROXY_PIN=(taskset -c "$PROXY_CPUS")
    LOADGEN_PIN=(taskset -c "$LOADGEN_CPUS")
    PIN_NOTE="proxy under test pinned to CPU $PROXY_CPUS, origin nginx and wrk to CPU $LOADGEN_CPUS (taskset; $NCPU CPUs)"
else
    PROXY_CPUS=""; LOADGEN_CPUS=""
    PROXY_PIN=(); LOADGEN_PIN=()
    PIN_NOTE="no CPU pinning (PIN=$PIN, $NCPU CPU(s)): proxy, origin and wrk share the CPUs"
fi

# ---------------------------------------------------------------- files ----
render() { # template out  (fills in the @VARS@)
    local user_line="# (not root: nginx keeps the current user)"
    [ "$(id -u)" != 0 ] || user_line="user root;"
    sed -e "s|@WORK@|$WORK|g" -e "s|@PROXY_PORT@|$PROXY_PORT|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
        -e "s|@DNS_PORT@|$DNS_PORT|g" -e "s|@THREADS@|$PROXY_THREADS|g" -e "s|@WORKERS@|$PROXY_THREADS|g" \
        -e "s|@USER_LINE@|$user_line|g" "$1" >"$2"
    ! grep -q '@[A-Z_]*@' "$2" || die "unfilled placeholder in $2"
}
mkdir -p "$WORK/www" "$WORK/origin/tmp" "$WORK/proxy/tmp"
for b in $BODIES; do
    head -c "$(( ${b%k} * 1024 ))" /dev/urandom >"$WORK/www/$b"
done
chmod 644 "$WORK"/www/*
render "$HERE/edge/origin.nginx.conf" "$WORK/origin/nginx.conf"
render "$HERE/edge/proxy.nginx.conf" "$WORK/proxy/nginx.conf"
render "$HERE/edge/topology.json" "$WORK/topology.json"
if want lodestar; then
    # `lodestar check` validates the benchmark topology first: clearer than a failed start
    if ! "$LODESTAR_BIN" check "$WORK/topology.json" >"$WORK/check.log" 2>&1; then
        cat "$WORK/check.log" >&2
        die "\`lodestar check\` rejects the benchmark topology ($HERE/edge/topology.json)"
    fi
fi
"$NGINX" -t -q -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" 2>"$WORK/origin/test.log" ||
    { cat "$WORK/origin/test.log" >&2; die "origin nginx config test failed"; }
"$NGINX" -t -q -p "$WORK/proxy" -e "$WORK/proxy/error.log" -c "$WORK/proxy/nginx.conf" 2>"$WORK/proxy/test.log" ||
    { cat "$WORK/proxy/test.log" >&2; die "proxy nginx config test failed"; }

# --------------------------------------------------------------- helpers ----
port_busy() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
require_free() { # port what
    if port_busy "$1"; then
        ss -Htlnp "sport = :$1" >&2 || true
        die "port $1 ($2) is already in use: stop what listens there or set ${3:-PROXY_PORT}=..."
    fi
}
wait_port_free() { # port
    local i
    for i in $(seq 1 100); do port_busy "$1" || return 0; sleep 0.1; done
    die "port $1 still in use 10 s after the previous proxy stopped"
}
children() { # pid -> its direct children (nginx workers)
    if [ -e "/proc/$1/task/$1/children" ]; then
        cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+$' || true
        return
    fi
    local c
    for c in /proc/[0-9]*/stat; do
        awk -v p="$1" '{ sub(/^.*\) /, ""); if ($2 == p) { split(FILENAME, f, "/"); print f[3] } }' "$c" 2>/dev/null || true
    done
}
proc_pids() { # main pid -> the main pid and its children
    echo "$1"
    children "$1"
}
rss_hwm_mib() { # pids... -> sum of VmHWM in MiB
    local p kb=0 v
    for p in "$@"; do
        v=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$p/status" 2>/dev/null || true)
        kb=$((kb + ${v:-0}))
    done
    awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }'
}
cpu_ticks() { # pids... -> utime + stime summed
    local p t=0 v
    for p in "$@"; do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || true)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
cpu_busy_jiffies() { # "0" or "1" or "0-1" -> "busy total" summed over those CPUs (from /proc/stat)
    local cpus=() part a b i
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then a=${part%-*}; b=${part#*-}; for ((i = a; i <= b; i++)); do cpus+=("$i"); done; else cpus+=("$part"); fi
    done
    awk -v list=" ${cpus[*]} " '$1 ~ /^cpu[0-9]+$/ { n = substr($1, 4); if (index(list, " " n " ")) {
        tot = 0; for (i = 2; i <= NF; i++) tot += $i; idle = $5 + $6; B += tot - idle; T += tot } }
        END { print B + 0, T + 0 }' /proc/stat
}
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- origin ----
require_free "$ORIGIN_PORT" "origin" ORIGIN_PORT
require_free "$PROXY_PORT" "proxy" PROXY_PORT
"${LOADGEN_PIN[@]}" "$NGINX" -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" -g 'daemon off;' \
    >>"$WORK/origin/stdout.log" 2>&1 &
ORIGIN_PID=$!
track "$ORIGIN_PID"
t0=$SECONDS
code=""
until code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$ORIGIN_PORT/${BODIES%% *}" 2>/dev/null || true); [ "$code" = 200 ]; do
    if ! kill -0 "$ORIGIN_PID" 2>/dev/null; then
        tail -n 20 "$WORK/origin/error.log" "$WORK/origin/stdout.log" >&2 2>/dev/null || true
        die "origin nginx exited during startup"
    fi
    [ $((SECONDS - t0)) -lt "$READY_TIMEOUT" ] || die "origin nginx did not answer GET /${BODIES%% *} with 200 within ${READY_TIMEOUT}s (last status: ${code:-none})"
    sleep 0.1
done
ORIGIN_ALL=($(proc_pids "$ORIGIN_PID"))
track "${ORIGIN_ALL[@]:1}"

# ---------------------------------------------------------------- proxies ----
PROXY_PID=""
PROXY_ALL=()
start_proxy() { # name
    local name=$1 logf t0 code
    wait_port_free "$PROXY_PORT"
    require_free "$PROXY_PORT" "proxy" PROXY_PORT
    case $name in
        nginx)
            logf=$WORK/proxy/error.log
            "${PROXY_PIN[@]}" "$NGINX" -p "$WORK/proxy" -e "$WORK/proxy/error.log" -c "$WORK/proxy/nginx.conf" -g 'daemon off;' \
                >>"$WORK/proxy/stdout.log" 2>&1 &
            ;;
        lodestar)
            logf=$WORK/lodestar.log
            (cd "$WORK" && exec "${PROXY_PIN[@]}" "$LODESTAR_BIN" edge "${LODESTAR_ARGS[@]}") >>"$logf" 2>&1 &
            ;;
    esac
    PROXY_PID=$!
    track "$PROXY_PID"
    t0=$SECONDS
    while :; do
        if ! kill -0 "$PROXY_PID" 2>/dev/null; then
            wait "$PROXY_PID" 2>/dev/null && code=0 || code=$?
            log "---- last lines of $logf:"
            tail -n 30 "$logf" >&2 2>/dev/null || true
            [ "$name" != nginx ] || tail -n 10 "$WORK/proxy/stdout.log" >&2 2>/dev/null || true
            die "$name exited during startup (exit status $code)"
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PROXY_PORT/${BODIES%% *}" 2>/dev/null || true)
        [ "$code" = 200 ] && break
        if [ $((SECONDS - t0)) -ge "$READY_TIMEOUT" ]; then
            log "---- last lines of $logf:"
            tail -n 30 "$logf" >&2 2>/dev/null || true
            die "$name did not answer GET /${BODIES%% *} with 200 within ${READY_TIMEOUT}s (last status: ${code:-none})"
        fi
        sleep 0.2
    done
    PROXY_ALL=($(proc_pids "$PROXY_PID"))
    [ ${#PROXY_ALL[@]} -le 1 ] || track "${PROXY_ALL[@]:1}"
}
stop_proxy() {
    kill_pids "${PROXY_ALL[@]}"
    wait "$PROXY_PID" 2>/dev/null || true
    untrack "${PROXY_ALL[@]}"
    PROXY_PID=""; PROXY_ALL=()
}
check_body() { # name body -> warns unless the proxy returns the origin's bytes
    local name=$1 b=$2 out
    out=$(curl -s -o "$WORK/check-$name-$b" -w '%{http_code} %{size_download}' --max-time 5 "http://127.0.0.1:$PROXY_PORT/$b" || true)
    if [ "${out%% *}" = 200 ] && cmp -s "$WORK/check-$name-$b" "$WORK/www/$b"; then
        log "  GET /$b through $name: 200, ${out#* } bytes, same bytes as the origin"
    else
        log "  WARNING: GET /$b through $name: status/size '${out:-none}', body differs from the origin's"
        BAD_BODY[$name]="${BAD_BODY[$name]:-}$b "
    fi
}

if want lodestar; then
    LODESTAR_ARGS=(--topology "$WORK/topology.json" --node bench-edge)
    if grep -q -- '--threads' <<<"$edge_help"; then LODESTAR_ARGS+=(--threads "$PROXY_THREADS"); fi
fi

# ---------------------------------------------------------------- wrk ----
to_ms() { # wrk latency "512.00us" / "1.20ms" / "2.00s" / "1.00m" -> ms
    awk -v v="$1" 'BEGIN {
        if (match(v, /us$/)) printf "%.3f", substr(v, 1, length(v) - 2) / 1000;
        else if (match(v, /ms$/)) printf "%.3f", substr(v, 1, length(v) - 2);
        else if (match(v, /m$/)) printf "%.3f", substr(v, 1, length(v) - 1) * 60000;
        else if (match(v, /h$/)) printf "%.3f", substr(v, 1, length(v) - 1) * 3600000;
        else if (match(v, /s$/)) printf "%.3f", substr(v, 1, length(v) - 1) * 1000;
        else print "n/a" }'
}
declare -A RPS P50 P99 RSS ERR CPUP CPUQ BAD_BODY
run_wrk() { # out duration body
    "${LOADGEN_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2s" --latency "http://127.0.0.1:$PROXY_PORT/$3" >"$1" 2>&1 ||
        { cat "$1" >&2; die "wrk failed"; }
}

bench() { # name body round
    local name=$1 b=$2 r=$3 out key c0 c1 busy0 busy1 tot0 tot1 req non2xx sock
    key="$b|$name|$r"
    out=$WORK/wrk-$name-$b-$r.txt
    log ""
    log "== round $r/$ROUNDS, $name, /$b ($(( ${b%k} * 1024 )) bytes)"
    start_proxy "$name"
    log "  $name pid ${PROXY_ALL[*]} on 127.0.0.1:$PROXY_PORT"
    [ "$r" != 1 ] || check_body "$name" "$b"
    run_wrk "$WORK/warmup-$name-$b-$r.txt" "$WARMUP" "$b"
    log "  wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency http://127.0.0.1:$PROXY_PORT/$b"
    c0=$(cpu_ticks "${PROXY_ALL[@]}")
    read -r busy0 tot0 < <(cpu_busy_jiffies "${LOADGEN_CPUS:-0-$((NCPU - 1))}")
    run_wrk "$out" "$DURATION" "$b"
    c1=$(cpu_ticks "${PROXY_ALL[@]}")
    read -r busy1 tot1 < <(cpu_busy_jiffies "${LOADGEN_CPUS:-0-$((NCPU - 1))}")
    sed -n '/Thread Stats/,$p' "$out" | sed 's/^ */    /' >&2
    kill -0 "$PROXY_PID" 2>/dev/null || die "$name died during the run"

    RPS[$key]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    P50[$key]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    P99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    req=$(awk '/requests in/ { print $1 }' "$out")
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' "$out")
    sock=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")
    ERR[$key]=$(( ${non2xx:-0} + ${sock:-0} ))
    # nginx: the workers' peak (they inherit the master's pages; the idle master is shown in the log line)
    if [ ${#PROXY_ALL[@]} -gt 1 ]; then RSS[$key]=$(rss_hwm_mib "${PROXY_ALL[@]:1}"); else RSS[$key]=$(rss_hwm_mib "$PROXY_PID"); fi
    CPUP[$key]=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f", t / hz / d * 100 }')
    CPUQ[$key]=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v n="${req:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }')
    local lg
    lg=$(awk -v b="$((busy1 - busy0))" -v t="$((tot1 - tot0))" 'BEGIN { if (t > 0) printf "%.0f", b / t * 100; else print "n/a" }')
    log "  => ${RPS[$key]} req/s, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms, errors ${ERR[$key]} (non-2xx/3xx ${non2xx:-0}, socket ${sock:-0})"
    local detail="" pp
    if [ ${#PROXY_ALL[@]} -gt 1 ]; then
        for pp in "${PROXY_ALL[@]:1}"; do detail="$detail${detail:+ + }$(rss_hwm_mib "$pp")"; done
        detail=" (worker$([ ${#PROXY_ALL[@]} -le 2 ] || echo "s $detail"); master $(rss_hwm_mib "$PROXY_PID") MiB not counted)"
    fi
    log "     $name peak RSS (VmHWM) ${RSS[$key]} MiB$detail;" \
        "CPU ${CPUP[$key]}% of one core, ${CPUQ[$key]} us/request; load-generator CPU(s) ${LOADGEN_CPUS:-all} ${lg}% busy"
    stop_proxy
}

# ---------------------------------------------------------------- run ----
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
log ""
log "== setup: wrk -t$WRK_THREADS -c$CONNECTIONS, ${DURATION}s per run (+${WARMUP}s warm-up), bodies: $BODIES, $ROUNDS round(s)"
log "   $PIN_NOTE"
log "   origin: nginx ($NGINX_VERSION) pid ${ORIGIN_ALL[*]} on 127.0.0.1:$ORIGIN_PORT; proxies on 127.0.0.1:$PROXY_PORT"
! want nginx || log "   nginx: $NGINX -c $WORK/proxy/nginx.conf (worker_processes $PROXY_THREADS, upstream keepalive 64)"
! want lodestar || log "   lodestar: $LODESTAR_BIN edge ${LODESTAR_ARGS[*]}"
if awk -v l="$LOADAVG" 'BEGIN { exit !(l > 0.5) }'; then
    log "   WARNING: load average $LOADAVG before the run: other processes compete for the CPUs, figures will be noisy"
fi
for r in $(seq 1 "$ROUNDS"); do
    # alternate the order each round so neither proxy always runs first
    if [ $((r % 2)) = 1 ]; then order=$PROXIES; else order=$(printf '%s\n' $PROXIES | tac | tr '\n' ' '); fi
    for b in $BODIES; do
        for p in $order; do bench "$p" "$b" "$r"; done
    done
done
kill -0 "$ORIGIN_PID" 2>/dev/null || die "the origin nginx died during the runs"

# ---------------------------------------------------------------- report ----
ratio() { # a b -> a/b
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
agg() { # median|max|sum array-name key-prefix -> over rounds
    local how=$1 vals=() r v
    local -n arr=$2
    for r in $(seq 1 "$ROUNDS"); do
        v=${arr[$3|$r]:-}
        [ -z "$v" ] || [ "$v" = n/a ] || vals+=("$v")
    done
    [ ${#vals[@]} -gt 0 ] || { echo "n/a"; return; }
    case $how in
        max) printf '%s\n' "${vals[@]}" | sort -g | tail -n1 ;;
        sum) printf '%s\n' "${vals[@]}" | awk '{ s += $1 } END { print s }' ;;
        *) printf '%s\n' "${vals[@]}" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }' ;;
    esac
}
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.2f", v }'; }
both=0; want nginx && want lodestar && both=1
echo ""
echo "== edge benchmark: $PROXIES   (nginx $NGINX_VERSION; wrk $WRK_VERSION${LODESTAR_BIN:+; lodestar: $LODESTAR_BIN})"
echo "   wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency (+${WARMUP}s warm-up), $ROUNDS round(s)$([ "$ROUNDS" = 1 ] || echo ' (median shown; RSS: highest peak)')"
echo "   origin: nginx, static files, keep-alive; proxy: 1 worker / --threads $PROXY_THREADS, fresh process per body"
echo "   $PIN_NOTE; load average at start $LOADAVG"
echo ""
declare -A M_RPS M_P50 M_P99 M_RSS
for b in $BODIES; do
    for p in $PROXIES; do
        M_RPS[$b|$p]=$(agg median RPS "$b|$p" | awk '{ if ($1 == "n/a") print; else printf "%.0f\n", $1 }'); M_P50[$b|$p]=$(agg median P50 "$b|$p")
        M_P99[$b|$p]=$(agg median P99 "$b|$p"); M_RSS[$b|$p]=$(agg max RSS "$b|$p")
    done
done
if [ "$both" = 1 ]; then
    printf '%-5s | %11s | %14s | %5s | %16s | %16s | %9s | %9s | %12s\n' "body" "nginx req/s" "lodestar req/s" "ratio" \
        "nginx p50/p99" "lodestar p50/p99" "p99 ratio" "nginx RSS" "lodestar RSS"
    echo "------+-------------+----------------+-------+------------------+------------------+-----------+-----------+-------------"
    for b in $BODIES; do
        printf '%-5s | %11s | %14s | %5s | %16s | %16s | %9s | %5s MiB | %8s MiB\n' "$b" \
            "${M_RPS[$b|nginx]}" "${M_RPS[$b|lodestar]}" "$(ratio "${M_RPS[$b|lodestar]}" "${M_RPS[$b|nginx]}")" \
            "$(fmt_ms "${M_P50[$b|nginx]}")/$(fmt_ms "${M_P99[$b|nginx]}") ms" \
            "$(fmt_ms "${M_P50[$b|lodestar]}")/$(fmt_ms "${M_P99[$b|lodestar]}") ms" \
            "$(ratio "${M_P99[$b|lodestar]}" "${M_P99[$b|nginx]}")" "${M_RSS[$b|nginx]}" "${M_RSS[$b|lodestar]}"
    done
else
    printf '%-5s | %-8s | %9s | %8s | %8s | %9s\n' "body" "proxy" "req/s" "p50 ms" "p99 ms" "RSS MiB"
    echo "------+----------+-----------+----------+----------+----------"
    for b in $BODIES; do
        for p in $PROXIES; do
            printf '%-5s | %-8s | %9s | %8s | %8s | %9s\n' "$b" "$p" "${M_RPS[$b|$p]}" "$(fmt_ms "${M_P50[$b|$p]}")" \
                "$(fmt_ms "${M_P99[$b|$p]}")" "${M_RSS[$b|$p]}"
        done
    done
fi
echo ""
echo "proxy CPU (utime+stime from /proc/PID/stat over the run; ~100% = the proxy's core was saturated):"
for b in $BODIES; do
    for p in $PROXIES; do
        printf '  %-4s %-8s  %4s%% of one core, %6s us/request\n' "$b" "$p" "$(agg median CPUP "$b|$p" | awk '{ if ($1 == "n/a") print; else printf "%.0f\n", $1 }')" \
            "$(agg median CPUQ "$b|$p" | awk '{ if ($1 == "n/a") print; else printf "%.1f\n", $1 }')"
    done
done
if [ "$both" = 1 ]; then
    for b in $BODIES; do
        echo "  ratio lodestar/nginx CPU per request ($b) = $(ratio "$(agg median CPUQ "$b|lodestar")" "$(agg median CPUQ "$b|nginx")")"
    done
fi
echo "errors (wrk non-2xx/3xx responses + socket errors, all rounds):"
for b in $BODIES; do
    for p in $PROXIES; do
        printf '  %-4s %-8s  %s%s\n' "$b" "$p" "$(agg sum ERR "$b|$p")" \
            "$([[ " ${BAD_BODY[$p]:-} " == *" $b "* ]] && echo "   (WARNING: the check GET returned a different body than the origin's)" || true)"
    done
done
if [ "$both" = 1 ]; then
    echo "targets: lodestar req/s >= 0.8x nginx, lodestar p99 <= 2x nginx (figures above are reported whatever they are)"
    for b in $BODIES; do
        rr=$(ratio "${M_RPS[$b|lodestar]}" "${M_RPS[$b|nginx]}")
        pr=$(ratio "${M_P99[$b|lodestar]}" "${M_P99[$b|nginx]}")
        v1=$(awk -v x="$rr" 'BEGIN { if (x == "n/a") print "MISS"; else print (x >= 0.8 ? "PASS" : "MISS") }')
        v2=$(awk -v x="$pr" 'BEGIN { if (x == "n/a") print "MISS"; else print (x <= 2.0 ? "PASS" : "MISS") }')
        echo "  $v1  $b req/s: lodestar/nginx = $rr (target >= 0.80)"
        echo "  $v2  $b p99:   lodestar/nginx = $pr (target <= 2.00)"
    done
fi
echo ""
echo "RSS = peak (VmHWM) of a fresh proxy process per body (nginx: its worker; the idle master is not counted);"
echo "latency as wrk sees it (closed loop, $CONNECTIONS connections: at saturation it is mostly queueing)."
