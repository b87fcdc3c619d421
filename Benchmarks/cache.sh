#!/usr/bin/env bash
# Benchmarks/cache.sh - `lodestar edge` with its response cache vs nginx (proxy_cache) and Varnish,
# one after the other in one run, in front of the same origin, loaded by wrk on cache HITS.
#
#   wrk (CPU 1) --> caching proxy under test on 127.0.0.1:18090 (CPU 0) --> origin nginx on 127.0.0.1:18091 (CPU 1)
#
# Origin   one nginx (1 worker, keep-alive) serving two static files from the temp dir, /1k (1024
#          bytes) and /64k (65536 bytes), with `Cache-Control: public, max-age=3600`, ETag and
#          Last-Modified; every request it serves goes to its access log (that is how the hits are
#          verified). Config: Benchmarks/cache/origin.nginx.conf. Started once, runs for the whole script.
# Proxy A  nginx, 1 worker, proxy_cache on a proxy_cache_path (nginx's ordinary file cache) in the temp
#          dir (NGINX_CACHE_PARENT=/dev/shm puts it on tmpfs), proxy_cache_lock on, keep-alive
#          upstream, access_log off, sendfile on. Config: Benchmarks/cache/proxy.nginx.conf.
# Proxy B  varnishd -F -n WORKDIR -a 127.0.0.1:18090 -f VCL -s malloc,256m -T none, thread pools at
#          Varnish's defaults (thread_pools 2, thread_pool_min 100, thread_pool_max 5000).
#          VCL: Benchmarks/cache/varnish.vcl (the origin backend, the built-in VCL does the rest).
# Proxy C  `lodestar edge --topology T --node bench-edge --threads 1`, T = the temp dir's copy of
#          Benchmarks/cache/topology.json (the edge.sh topology plus `routes[].cache.enabled` and
#          `proxy.cache.memoryBytes` 256 MiB).
# Pinning  this is a 2-core machine: the proxy under test gets CPU 0 for itself (taskset -c 0, its
#          children inherit it); the origin and wrk share CPU 1 (taskset -c 1). PROXY_CPUS= / LOADGEN_CPUS= / PIN=0.
# Load     per body and proxy: a fresh proxy process (empty cache), a check GET (the origin's bytes), a
#          second GET whose cache headers are shown, a WARMUP=2 s wrk run that fills the cache (not
#          reported), then wrk -t1 -c64 -d10s --latency http://127.0.0.1:18090/{1k,64k}: all hits.
#          The origin's access log is counted around the measured run: "origin requests during run: N"
#          (should be 0; a run with origin requests is flagged, it did not measure hits only).
# Report   per proxy and body: req/s, p50/p99 latency (ms), errors, peak RSS (VmHWM, MiB; nginx: its
#          worker; varnish: the cache (child) process; lodestar: its one process), proxy CPU; then the
#          side-by-side table with the ratios lodestar/nginx and lodestar/varnish and PASS/MISS against
#          the targets (req/s >= 1.0x nginx, >= 0.8x varnish). The figures are printed whatever they
#          are: missing a target is not a failure (exit 0).
#
# Usage:   Benchmarks/cache.sh [--no-build] [--save] [--only nginx|varnish|lodestar[,...]]   (see Benchmarks/README.md)
# Env:     DURATION=10 WARMUP=2 CONNECTIONS=64 WRK_THREADS=1 ROUNDS=1 BODIES="1k 64k"
#          CACHE_BENCH_ONLY=nginx,varnish,... (a subset of the proxies; same as --only; ratios need lodestar)
#          LODESTAR_BIN=path (no build)  NO_BUILD=1 (use the newest existing release binary)
#          PROXY_PORT=18090 ORIGIN_PORT=18091 DNS_PORT=15398 PROXY_THREADS=1
#          NGINX_CACHE_PARENT=dir (where nginx's cache dir is made; default: the temp dir, i.e. disk +
#          page cache) NGINX_SENDFILE=on|off  VARNISH_STORAGE=malloc,256m  VARNISH_PARAMS="-p k=v ..."
#          PIN=1 PROXY_CPUS=0 LOADGEN_CPUS=1 READY_TIMEOUT=60
#          SAVE=1 (tee everything to Benchmarks/results/DATE-cache.txt; RESULT_FILE=path to choose)
#          KEEP=1 (keep the temp dir with configs, logs, the origin's access log and wrk outputs)
# Needs:   root the first time (apt-get install nginx varnish wrk when missing; Debian's nginx and
#          varnish services are kept from starting by a temporary policy-rc.d). nginx and varnishd
#          always run from the temp dir with their own prefix/workdir, config, pid and logs:
#          /etc/nginx and /etc/varnish are never used or changed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() { printf 'cache.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

ARGS=("$@")
while [ $# -gt 0 ]; do
    case $1 in
        --no-build) NO_BUILD=1 ;;
        --save) SAVE=1 ;;
        --only) [ $# -ge 2 ] || die "--only needs nginx, varnish or lodestar (or a comma list)"; CACHE_BENCH_ONLY=$2; shift ;;
        --only=*) CACHE_BENCH_ONLY=${1#--only=} ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

# ---------------------------------------------------------------- save ----
# SAVE=1: run again with everything (progress on stderr and the report on stdout) teed into
# Benchmarks/results/DATE-cache.txt (DATE-cache-run2.txt, ... when it exists).
SAVE=${SAVE:-0}
if [ "$SAVE" = 1 ] && [ -z "${_CACHE_BENCH_TEE:-}" ]; then
    mkdir -p "$HERE/results"
    if [ -z "${RESULT_FILE:-}" ]; then
        RESULT_FILE=$HERE/results/$(date +%F)-cache.txt
        n=2
        while [ -e "$RESULT_FILE" ]; do RESULT_FILE=$HERE/results/$(date +%F)-cache-run$n.txt; n=$((n + 1)); done
    fi
    log "saving the output to $RESULT_FILE"
    set +e
    _CACHE_BENCH_TEE=1 "${BASH_SOURCE[0]}" "${ARGS[@]+"${ARGS[@]}"}" 2>&1 | tee "$RESULT_FILE"
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
PROXY_PORT=${PROXY_PORT:-18090}
ORIGIN_PORT=${ORIGIN_PORT:-18091}
DNS_PORT=${DNS_PORT:-15398}
PROXY_THREADS=${PROXY_THREADS:-1}
READY_TIMEOUT=${READY_TIMEOUT:-60}
PIN=${PIN:-1}
KEEP=${KEEP:-0}
NO_BUILD=${NO_BUILD:-0}
NGINX_CACHE_PARENT=${NGINX_CACHE_PARENT:-}
NGINX_SENDFILE=${NGINX_SENDFILE:-on}
VARNISH_STORAGE=${VARNISH_STORAGE:-malloc,256m}
VARNISH_PARAMS=${VARNISH_PARAMS:-}
ALL_PROXIES="nginx varnish lodestar"
PROXIES=""
if [ -z "${CACHE_BENCH_ONLY:-}" ]; then
    PROXIES=$ALL_PROXIES
else
    for p in ${CACHE_BENCH_ONLY//,/ }; do
        case $p in
            nginx | varnish | lodestar) [[ " $PROXIES " == *" $p "* ]] || PROXIES="${PROXIES:+$PROXIES }$p" ;;
            *) die "CACHE_BENCH_ONLY / --only takes nginx, varnish, lodestar or a comma list of them (got '$p')" ;;
        esac
    done
    [ -n "$PROXIES" ] || die "CACHE_BENCH_ONLY / --only is empty"
    # keep the canonical order nginx, varnish, lodestar
    PROXIES=$(for p in $ALL_PROXIES; do [[ " $PROXIES " != *" $p "* ]] || printf '%s ' "$p"; done)
    PROXIES=${PROXIES% }
fi
want() { [[ " $PROXIES " == *" $1 "* ]]; }

for v in DURATION WARMUP CONNECTIONS WRK_THREADS ROUNDS PROXY_PORT ORIGIN_PORT DNS_PORT PROXY_THREADS READY_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[ "$DURATION" -ge 1 ] || die "DURATION must be >= 1 s"
[ "$WARMUP" -ge 1 ] || die "WARMUP must be >= 1 s (the warm-up run fills the cache)"
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
[ "$CONNECTIONS" -ge "$WRK_THREADS" ] || die "CONNECTIONS must be >= WRK_THREADS"
for b in $BODIES; do [[ "$b" =~ ^[0-9]+k$ ]] || die "BODIES: '$b' is not a size like 1k or 64k (KiB)"; done
case $NGINX_SENDFILE in on | off) ;; *) die "NGINX_SENDFILE must be on or off" ;; esac
[ -z "$NGINX_CACHE_PARENT" ] || [ -d "$NGINX_CACHE_PARENT" ] || die "NGINX_CACHE_PARENT=$NGINX_CACHE_PARENT is not a directory"

# ---------------------------------------------------------------- tools ----
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v nginx >/dev/null || missing+=(nginx) # the origin is always nginx
! want varnish || command -v varnishd >/dev/null || missing+=(varnish)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
command -v ss >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]}"
    # Keep Debian's nginx and varnish services from starting (port 80, 6081): invoke-rc.d asks
    # /usr/sbin/policy-rc.d, and exit status 101 means "action forbidden". Put one there for the
    # install only, and put back whatever was there before.
    policy=/usr/sbin/policy-rc.d
    policy_saved=""
    if [ -e "$policy" ]; then policy_saved=$(mktemp /tmp/lodestar-cachebench-policy.XXXXXX); cp -p "$policy" "$policy_saved"; fi
    restore_policy() {
        if [ -n "$policy_saved" ]; then cp -p "$policy_saved" "$policy"; rm -f "$policy_saved"; else rm -f "$policy"; fi
    }
    trap restore_policy EXIT
    printf '#!/bin/sh\n# temporary, Benchmarks/cache.sh: no service starts during its apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    restore_policy
    trap - EXIT
fi
NGINX=$(command -v nginx)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
WRK_VERSION=$(wrk -v 2>&1 | head -n1 | awk '{ print $2 }' || true)
VARNISHD=""
VARNISH_VERSION=""
if want varnish; then
    VARNISHD=$(command -v varnishd)
    VARNISH_VERSION=$("$VARNISHD" -V 2>&1 | head -n1 | sed 's/^varnishd (\([^ ]*\).*/\1/')
    command -v cc >/dev/null || die "varnishd needs a C compiler (cc) to compile its VCL: apt-get install gcc"
fi

# ------------------------------------------------------------- lodestar ----
if want lodestar; then
    if [ -z "${LODESTAR_BIN:-}" ]; then
        if [ "$NO_BUILD" = 1 ]; then
            # the newest release binary there is (dns.sh/edge.sh build into .build-bench, `swift build` into .build)
            # shellcheck disable=SC2012 # ls -t: the newest of two fixed paths
            LODESTAR_BIN=$(ls -t "$ROOT/.build-bench/release/lodestar" "$ROOT/.build/release/lodestar" 2>/dev/null | head -n1 || true)
            [ -n "$LODESTAR_BIN" ] || die "--no-build: no release binary in .build-bench/ or .build/ (set LODESTAR_BIN=...)"
        else
            command -v swift >/dev/null || die "swift not found (set LODESTAR_BIN=... or --only nginx,varnish)"
            log "== building lodestar: swift build -c release --scratch-path .build-bench --product lodestar"
            build_log=$(mktemp /tmp/lodestar-cachebench-build.XXXXXX)
            if ! (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product lodestar >"$build_log" 2>&1); then
                tail -n 40 "$build_log" >&2
                die "swift build failed (full log: $build_log; set LODESTAR_BIN=... or --only nginx,varnish)"
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
WORK=$(mktemp -d /tmp/lodestar-cachebench.XXXXXX)
chmod 755 "$WORK" # nginx workers / varnish's child may run as another user: they read the configs
NGINX_CACHE_TMP=""
if [ -n "$NGINX_CACHE_PARENT" ]; then
    NGINX_CACHE_TMP=$(mktemp -d "$NGINX_CACHE_PARENT/lodestar-cachebench-nginx.XXXXXX")
    NGINX_CACHE_DIR=$NGINX_CACHE_TMP/cache
else
    NGINX_CACHE_DIR=$WORK/proxy/cache
fi
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
# shellcheck disable=SC2317 # cleanup runs from the EXIT trap
cleanup() {
    [ ${#PIDS[@]} -eq 0 ] || kill_pids "${PIDS[@]}"
    if [ "$KEEP" = 1 ]; then
        log "kept $WORK${NGINX_CACHE_TMP:+ and $NGINX_CACHE_TMP}"
    else
        rm -rf "$WORK"
        [ -z "$NGINX_CACHE_TMP" ] || rm -rf "$NGINX_CACHE_TMP"
    fi
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
        -e "s|@NGINX_CACHE_DIR@|$NGINX_CACHE_DIR|g" -e "s|@SENDFILE@|$NGINX_SENDFILE|g" \
        -e "s|@USER_LINE@|$user_line|g" "$1" >"$2"
    ! grep -q '@[A-Z_]*@' "$2" || die "unfilled placeholder in $2"
}
mkdir -p "$WORK/www" "$WORK/origin/tmp" "$WORK/proxy/tmp" "$WORK/varnish" "$NGINX_CACHE_DIR"
for b in $BODIES; do
    head -c "$(( ${b%k} * 1024 ))" /dev/urandom >"$WORK/www/$b"
done
chmod 644 "$WORK"/www/*
render "$HERE/cache/origin.nginx.conf" "$WORK/origin/nginx.conf"
render "$HERE/cache/proxy.nginx.conf" "$WORK/proxy/nginx.conf"
render "$HERE/cache/varnish.vcl" "$WORK/varnish/bench.vcl"
chmod 644 "$WORK/varnish/bench.vcl"
render "$HERE/cache/topology.json" "$WORK/topology.json"
NGINX_CACHE_FS=$(df --output=fstype "$NGINX_CACHE_DIR" 2>/dev/null | tail -n1 || echo '?')
if want lodestar; then
    # `lodestar check` validates the benchmark topology first: clearer than a failed start. A binary
    # from before the response cache rejects `routes[].cache` / `proxy.cache` here.
    if ! "$LODESTAR_BIN" check "$WORK/topology.json" >"$WORK/check.log" 2>&1; then
        log "---- lodestar check $WORK/topology.json:"
        tail -n 30 "$WORK/check.log" >&2
        die "\`lodestar check\` rejects the benchmark topology ($HERE/cache/topology.json): this lodestar ($LODESTAR_BIN) has no response cache (\`routes[].cache\`, \`proxy.cache\`) or another key is wrong; use a build with the cache, or --only nginx,varnish"
    fi
fi
"$NGINX" -t -q -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" 2>"$WORK/origin/test.log" ||
    { cat "$WORK/origin/test.log" >&2; die "origin nginx config test failed"; }
if want nginx; then
    "$NGINX" -t -q -p "$WORK/proxy" -e "$WORK/proxy/error.log" -c "$WORK/proxy/nginx.conf" 2>"$WORK/proxy/test.log" ||
        { cat "$WORK/proxy/test.log" >&2; die "proxy nginx config test failed"; }
fi
if want varnish; then
    "$VARNISHD" -C -n "$WORK/varnish/check" -f "$WORK/varnish/bench.vcl" >"$WORK/varnish/vcl-test.log" 2>&1 ||
        { tail -n 30 "$WORK/varnish/vcl-test.log" >&2; die "varnishd -C: the VCL does not compile"; }
    rm -rf "$WORK/varnish/check"
fi

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
children() { # pid -> its direct children (nginx workers and cache manager, varnish's cache process)
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
proc_title() { # pid -> a short name: nginx's process title ("worker process", "master process",
    # "cache manager process"), else the process name (varnish: "varnishd" = manager, "cache-main" = child)
    local t
    t=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ *$//' || true)
    case $t in
        "nginx: "*) t=${t#nginx: }; echo "${t%%process*}process" ;;
        *) cat "/proc/$1/comm" 2>/dev/null || echo "pid $1" ;;
    esac
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
ORIGIN_LOG=$WORK/origin/access.log
origin_requests() { # -> how many requests the origin has served so far (lines of its unbuffered access log)
    if [ -e "$ORIGIN_LOG" ]; then wc -l <"$ORIGIN_LOG" | tr -d ' '; else echo 0; fi
}

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
mapfile -t ORIGIN_ALL < <(proc_pids "$ORIGIN_PID")
track "${ORIGIN_ALL[@]:1}"
ORIGIN_HEADERS=$(curl -s -o /dev/null -D - --max-time 2 "http://127.0.0.1:$ORIGIN_PORT/${BODIES%% *}" | tr -d '\r' |
    grep -iE '^(cache-control|etag|last-modified):' | paste -sd ';' | sed 's/;/; /g' || true)
[[ "${ORIGIN_HEADERS,,}" == *"max-age=3600"* ]] || die "the origin does not send Cache-Control max-age=3600 (got: ${ORIGIN_HEADERS:-nothing})"

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
            # an empty cache for every run: nginx's cache loader would otherwise bring back the last run's files
            rm -rf "$NGINX_CACHE_DIR"; mkdir -p "$NGINX_CACHE_DIR"
            "${PROXY_PIN[@]}" "$NGINX" -p "$WORK/proxy" -e "$WORK/proxy/error.log" -c "$WORK/proxy/nginx.conf" -g 'daemon off;' \
                >>"$WORK/proxy/stdout.log" 2>&1 &
            ;;
        varnish)
            logf=$WORK/varnish/varnishd.log
            rm -rf "$WORK/varnish/n"
            # shellcheck disable=SC2086 # VARNISH_PARAMS is a list of words ("-p k=v -p k=v")
            "${PROXY_PIN[@]}" "$VARNISHD" -F -n "$WORK/varnish/n" -a "127.0.0.1:$PROXY_PORT" -T none \
                -f "$WORK/varnish/bench.vcl" -s "$VARNISH_STORAGE" $VARNISH_PARAMS >>"$logf" 2>&1 &
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
    mapfile -t PROXY_ALL < <(proc_pids "$PROXY_PID")
    [ ${#PROXY_ALL[@]} -le 1 ] || track "${PROXY_ALL[@]:1}"
}
stop_proxy() {
    kill_pids "${PROXY_ALL[@]}"
    wait "$PROXY_PID" 2>/dev/null || true
    untrack "${PROXY_ALL[@]}"
    PROXY_PID=""; PROXY_ALL=()
}
rss_pids() { # name -> the processes whose peak RSS is reported for it
    local p
    case $1 in
        nginx) # the worker(s), not the master or the cache manager
            for p in "${PROXY_ALL[@]:1}"; do [[ "$(proc_title "$p")" != *"worker process"* ]] || echo "$p"; done ;;
        varnish) # the cache (child) process, not the manager
            printf '%s\n' "${PROXY_ALL[@]:1}" ;;
        *) echo "$PROXY_PID" ;;
    esac
}
check_body() { # name body -> warns unless the proxy returns the origin's bytes; shows the cache headers of a 2nd GET
    local name=$1 b=$2 out hdrs
    out=$(curl -s -o "$WORK/check-$name-$b" -w '%{http_code} %{size_download}' --max-time 5 "http://127.0.0.1:$PROXY_PORT/$b" || true)
    if [ "${out%% *}" = 200 ] && cmp -s "$WORK/check-$name-$b" "$WORK/www/$b"; then
        log "  GET /$b through $name: 200, ${out#* } bytes, same bytes as the origin"
    else
        log "  WARNING: GET /$b through $name: status/size '${out:-none}', body differs from the origin's"
        BAD_BODY[$name]="${BAD_BODY[$name]:-}$b "
    fi
    # the second GET should be a hit: show what the proxy says about it
    hdrs=$(curl -s -o /dev/null -D - --max-time 5 "http://127.0.0.1:$PROXY_PORT/$b" | tr -d '\r' |
        grep -iE '^(age|x-cache[a-z-]*|x-varnish|via|etag|last-modified|cache-control):' | paste -sd ';' | sed 's/;/; /g' || true)
    log "  2nd GET /$b through $name: ${hdrs:-(no cache-related headers)}"
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
declare -A RPS P50 P99 RSS ERR CPUP CPUQ ORQ BAD_BODY
run_wrk() { # out duration body
    "${LOADGEN_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2s" --latency "http://127.0.0.1:$PROXY_PORT/$3" >"$1" 2>&1 ||
        { cat "$1" >&2; die "wrk failed"; }
}
varnish_counters() { # -> "hit N miss N backend_req N" from varnishstat (shared memory of our -n workdir)
    command -v varnishstat >/dev/null || return 0
    varnishstat -n "$WORK/varnish/n" -1 -f MAIN.cache_hit -f MAIN.cache_miss -f MAIN.backend_req 2>/dev/null |
        awk '{ sub(/^MAIN\./, "", $1); printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' || true
}

bench() { # name body round
    local name=$1 b=$2 r=$3 out key c0 c1 busy0 busy1 tot0 tot1 req non2xx sock o0 o1 o2 rp=()
    key="$b|$name|$r"
    out=$WORK/wrk-$name-$b-$r.txt
    log ""
    log "== round $r/$ROUNDS, $name, /$b ($(( ${b%k} * 1024 )) bytes)"
    o0=$(origin_requests)
    start_proxy "$name"
    log "  $name pid ${PROXY_ALL[*]} on 127.0.0.1:$PROXY_PORT"
    check_body "$name" "$b"
    run_wrk "$WORK/warmup-$name-$b-$r.txt" "$WARMUP" "$b"
    o1=$(origin_requests)
    log "  warm-up: wrk ${WARMUP}s, $(awk '/requests in/ { print $1 }' "$WORK/warmup-$name-$b-$r.txt") requests;" \
        "origin requests from the start to the end of the warm-up: $((o1 - o0)) (the fill; the readiness GET fetches /${BODIES%% *})"
    [ "$name" != varnish ] || log "  varnishstat after the warm-up: $(varnish_counters)"
    log "  wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency http://127.0.0.1:$PROXY_PORT/$b"
    c0=$(cpu_ticks "${PROXY_ALL[@]}")
    read -r busy0 tot0 < <(cpu_busy_jiffies "${LOADGEN_CPUS:-0-$((NCPU - 1))}")
    run_wrk "$out" "$DURATION" "$b"
    c1=$(cpu_ticks "${PROXY_ALL[@]}")
    read -r busy1 tot1 < <(cpu_busy_jiffies "${LOADGEN_CPUS:-0-$((NCPU - 1))}")
    o2=$(origin_requests)
    sed -n '/Thread Stats/,$p' "$out" | sed 's/^ */    /' >&2
    kill -0 "$PROXY_PID" 2>/dev/null || die "$name died during the run"

    RPS[$key]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    P50[$key]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    P99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    req=$(awk '/requests in/ { print $1 }' "$out")
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' "$out")
    sock=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")
    ERR[$key]=$(( ${non2xx:-0} + ${sock:-0} ))
    ORQ[$key]=$((o2 - o1))
    mapfile -t rp < <(rss_pids "$name")
    RSS[$key]=$(rss_hwm_mib "${rp[@]}")
    CPUP[$key]=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f", t / hz / d * 100 }')
    CPUQ[$key]=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v n="${req:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }')
    local lg
    lg=$(awk -v b="$((busy1 - busy0))" -v t="$((tot1 - tot0))" 'BEGIN { if (t > 0) printf "%.0f", b / t * 100; else print "n/a" }')
    log "  => ${RPS[$key]} req/s, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms, errors ${ERR[$key]} (non-2xx/3xx ${non2xx:-0}, socket ${sock:-0})"
    log "  origin requests during run: ${ORQ[$key]} (of ${req:-?} requests)"
    if [ "${ORQ[$key]}" -gt 0 ]; then
        log "  WARNING: $name sent ${ORQ[$key]} requests to the origin during the measured run: not all hits (see $ORIGIN_LOG with KEEP=1)"
    fi
    [ "$name" != varnish ] || log "  varnishstat after the run: $(varnish_counters)"
    local detail="" p others=()
    for p in "${PROXY_ALL[@]}"; do [[ " ${rp[*]} " == *" $p "* ]] || others+=("$p"); done
    if [ ${#others[@]} -gt 0 ]; then
        for p in "${others[@]}"; do detail="$detail${detail:+, }$(proc_title "$p") $(rss_hwm_mib "$p") MiB"; done
        detail=" ($(for p in "${rp[@]}"; do proc_title "$p"; done | paste -sd ',' | sed 's/,/, /g'); not counted: $detail)"
    fi
    log "     $name peak RSS (VmHWM) ${RSS[$key]} MiB$detail;"
    log "     CPU ${CPUP[$key]}% of one core (all its processes), ${CPUQ[$key]} us/request; load-generator CPU(s) ${LOADGEN_CPUS:-all} ${lg}% busy"
    stop_proxy
}

# ---------------------------------------------------------------- run ----
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
log ""
log "== setup: wrk -t$WRK_THREADS -c$CONNECTIONS, ${DURATION}s per run (+${WARMUP}s warm-up that fills the cache), bodies: $BODIES, $ROUNDS round(s)"
log "   $PIN_NOTE"
log "   origin: nginx ($NGINX_VERSION) pid ${ORIGIN_ALL[*]} on 127.0.0.1:$ORIGIN_PORT ($ORIGIN_HEADERS); proxies on 127.0.0.1:$PROXY_PORT"
! want nginx || log "   nginx: $NGINX -c $WORK/proxy/nginx.conf (worker_processes $PROXY_THREADS, proxy_cache_path $NGINX_CACHE_DIR on $NGINX_CACHE_FS, sendfile $NGINX_SENDFILE)"
! want varnish || log "   varnish: $VARNISHD ($VARNISH_VERSION) -F -n $WORK/varnish/n -a 127.0.0.1:$PROXY_PORT -T none -f $WORK/varnish/bench.vcl -s $VARNISH_STORAGE${VARNISH_PARAMS:+ $VARNISH_PARAMS}"
! want lodestar || log "   lodestar: $LODESTAR_BIN edge ${LODESTAR_ARGS[*]}"
if awk -v l="$LOADAVG" 'BEGIN { exit !(l > 0.5) }'; then
    log "   WARNING: load average $LOADAVG before the run: other processes compete for the CPUs, figures will be noisy"
fi
read -ra PROXY_LIST <<<"$PROXIES"
for r in $(seq 1 "$ROUNDS"); do
    # rotate the order each round so no proxy always runs first
    order=()
    for i in "${!PROXY_LIST[@]}"; do order+=("${PROXY_LIST[$(( (i + r - 1) % ${#PROXY_LIST[@]} ))]}"); done
    for b in $BODIES; do
        for p in "${order[@]}"; do bench "$p" "$b" "$r"; done
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
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.0f", v }'; }
verdict() { # ratio target -> PASS|MISS
    awk -v x="$1" -v t="$2" 'BEGIN { if (x == "n/a") print "MISS"; else print (x + 0 >= t ? "PASS" : "MISS") }'
}
# ratio columns: lodestar against each other proxy that ran
VS=()
if want lodestar; then for p in nginx varnish; do ! want "$p" || VS+=("$p"); done; fi
declare -A TARGET=([nginx]=1.00 [varnish]=0.80)
declare -A M
for b in $BODIES; do
    for p in $PROXIES; do
        M[$b|$p|rps]=$(fmt_int "$(agg median RPS "$b|$p")")
        M[$b|$p|p50]=$(fmt_ms "$(agg median P50 "$b|$p")")
        M[$b|$p|p99]=$(fmt_ms "$(agg median P99 "$b|$p")")
        M[$b|$p|rss]=$(agg max RSS "$b|$p")
        M[$b|$p|cpuq]=$(agg median CPUQ "$b|$p" | awk '{ if ($1 == "n/a") print; else printf "%.1f\n", $1 }')
        M[$b|$p|cpup]=$(agg median CPUP "$b|$p" | awk '{ if ($1 == "n/a") print; else printf "%.0f\n", $1 }')
        M[$b|$p|orq]=$(agg sum ORQ "$b|$p")
        M[$b|$p|err]=$(agg sum ERR "$b|$p")
    done
done
echo ""
echo "== cache benchmark (hits): $PROXIES   (nginx $NGINX_VERSION${VARNISH_VERSION:+; $VARNISH_VERSION}; wrk $WRK_VERSION${LODESTAR_BIN:+; lodestar: $LODESTAR_BIN})"
echo "   wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency on one URL per body, after a ${WARMUP}s warm-up that fills the cache; $ROUNDS round(s)$([ "$ROUNDS" = 1 ] || echo ' (median shown; RSS: highest peak; origin requests: sum)')"
echo "   origin: nginx, static files, $ORIGIN_HEADERS"
notes=()
! want nginx || notes+=("nginx: 1 worker, proxy_cache_path on $NGINX_CACHE_FS, sendfile $NGINX_SENDFILE")
! want varnish || notes+=("varnish: -s $VARNISH_STORAGE, default thread pools (2 x 100..5000)${VARNISH_PARAMS:+, $VARNISH_PARAMS}")
! want lodestar || notes+=("lodestar: --threads $PROXY_THREADS, proxy.cache.memoryBytes 256 MiB")
echo "   a fresh proxy process (empty cache) per body; $(printf '%s; ' "${notes[@]}" | sed 's/; $//')"
echo "   $PIN_NOTE; load average at start $LOADAVG"
echo ""
hdr=$(printf '%-5s | %-15s' "body" "metric")
sep="------+-----------------"
for p in $PROXIES; do hdr="$hdr$(printf ' | %10s' "$p")"; sep="$sep+------------"; done
for v in "${VS[@]+"${VS[@]}"}"; do hdr="$hdr$(printf ' | %-21s' "lodestar/$v")"; sep="$sep+-----------------------"; done
printf '%s\n' "${hdr%"${hdr##*[! ]}"}"
echo "$sep"
for b in $BODIES; do
    for m in rps p50 p99 rss cpuq orq; do
        case $m in
            rps) label="req/s" ;; p50) label="p50 ms" ;; p99) label="p99 ms" ;; rss) label="peak RSS MiB" ;;
            cpuq) label="CPU us/request" ;; orq) label="origin requests" ;;
        esac
        line=$(printf '%-5s | %-15s' "$b" "$label")
        for p in $PROXIES; do line="$line$(printf ' | %10s' "${M[$b|$p|$m]}")"; done
        for v in "${VS[@]+"${VS[@]}"}"; do
            cell=""
            case $m in
                rps) x=$(ratio "${M[$b|lodestar|rps]}" "${M[$b|$v|rps]}"); cell="$x $(verdict "$x" "${TARGET[$v]}") (>= ${TARGET[$v]})" ;;
                p50 | p99 | rss | cpuq) cell=$(ratio "${M[$b|lodestar|$m]}" "${M[$b|$v|$m]}") ;;
            esac
            line="$line$(printf ' | %-21s' "$cell")"
        done
        printf '%s\n' "${line%"${line##*[! ]}"}"
    done
    echo "$sep"
done
echo ""
echo "proxy CPU over the run (utime+stime of all the proxy's processes; ~100% = its core was saturated):"
for b in $BODIES; do
    for p in $PROXIES; do
        printf '  %-4s %-8s  %4s%% of one core, %6s us/request\n' "$b" "$p" "${M[$b|$p|cpup]}" "${M[$b|$p|cpuq]}"
    done
done
echo "errors (wrk non-2xx/3xx responses + socket errors, all rounds):"
for b in $BODIES; do
    for p in $PROXIES; do
        note=""
        [[ " ${BAD_BODY[$p]:-} " != *" $b "* ]] || note="   (WARNING: the check GET returned a different body than the origin's)"
        printf '  %-4s %-8s  %s%s\n' "$b" "$p" "${M[$b|$p|err]}" "$note"
    done
done
echo "hits (requests that reached the origin during the measured runs; 0 = every request was a cache hit):"
misses=0
for b in $BODIES; do
    for p in $PROXIES; do
        n=${M[$b|$p|orq]}
        printf '  %-4s %-8s  origin requests during run: %s%s\n' "$b" "$p" "$n" \
            "$([ "$n" = 0 ] || [ "$n" = n/a ] || echo "   WARNING: not all hits, this row does not measure the cache alone")"
        [ "$n" = 0 ] || [ "$n" = n/a ] || misses=1
    done
done
if [ ${#VS[@]} -gt 0 ]; then
    echo "targets (req/s on hits): lodestar >= 1.0x nginx, lodestar >= 0.8x varnish (figures above are reported whatever they are)"
    for b in $BODIES; do
        for v in "${VS[@]}"; do
            x=$(ratio "${M[$b|lodestar|rps]}" "${M[$b|$v|rps]}")
            note=""
            [ "${M[$b|lodestar|orq]}" = 0 ] && [ "${M[$b|$v|orq]}" = 0 ] || note="   (origin requests during a run: not all hits)"
            printf '  %s  %-4s req/s: lodestar/%-7s = %s (target >= %s)%s\n' "$(verdict "$x" "${TARGET[$v]}")" "$b" "$v" "$x" "${TARGET[$v]}" "$note"
        done
    done
fi
echo ""
echo "RSS = peak (VmHWM) of a fresh proxy process per body: nginx its worker (not the master or the cache manager),"
echo "varnish its cache (child) process (not the manager), lodestar its one process. Latency as wrk sees it"
echo "(closed loop, $CONNECTIONS connections: at saturation it is mostly queueing)."
[ "$misses" = 0 ] || echo "WARNING: some runs sent requests to the origin (see 'hits' above): those figures include misses."
exit 0
