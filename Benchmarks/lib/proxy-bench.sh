# shellcheck shell=bash
# Benchmarks/lib/proxy-bench.sh - what the wrk benchmarks edge.sh and cache.sh share: the settings,
# the lodestar binary, CPU pinning, the origin nginx, starting and stopping the proxy under test,
# the measured wrk run and its figures, and the aggregates of the report.
#
# Sourced after lib/common.sh. The script defines launch_proxy NAME, which starts that proxy in the
# background on PROXY_PORT and sets PROXY_LOG to its log (and PROXY_OUT to its stdout/stderr file when
# that is another one; see start_proxy). PROXY_BASE (default http://127.0.0.1:PROXY_PORT) and PROXY_CURL
# (extra curl options, e.g. --resolve, --cacert, --http2) say how the readiness and body checks reach it.

# ------------------------------------------------------------- settings ----
load_settings() { # default-PROXY_PORT default-ORIGIN_PORT default-DNS_PORT -> the settings, from the environment or the defaults
    DURATION=${DURATION:-10}
    WARMUP=${WARMUP:-2}
    CONNECTIONS=${CONNECTIONS:-64}
    WRK_THREADS=${WRK_THREADS:-1}
    ROUNDS=${ROUNDS:-1}
    BODIES=${BODIES:-"1k 64k"}
    PROXY_PORT=${PROXY_PORT:-$1}
    ORIGIN_PORT=${ORIGIN_PORT:-$2}
    DNS_PORT=${DNS_PORT:-$3}
    PROXY_THREADS=${PROXY_THREADS:-1}
    READY_TIMEOUT=${READY_TIMEOUT:-60}
    PIN=${PIN:-1}
    KEEP=${KEEP:-0}
    NO_BUILD=${NO_BUILD:-0}
}
check_settings() { # least-WARMUP [why] -> dies on a bad setting
    check_whole_numbers DURATION WARMUP CONNECTIONS WRK_THREADS ROUNDS PROXY_PORT ORIGIN_PORT DNS_PORT PROXY_THREADS READY_TIMEOUT
    local b
    [ "$DURATION" -ge 1 ] || die "DURATION must be >= 1 s"
    [ "$WARMUP" -ge "$1" ] || die "WARMUP must be >= $1 s ($2)"
    [ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
    [ "$CONNECTIONS" -ge "$WRK_THREADS" ] || die "CONNECTIONS must be >= WRK_THREADS"
    for b in $BODIES; do [[ "$b" =~ ^[0-9]+k$ ]] || die "BODIES: '$b' is not a size like 1k or 64k (KiB)"; done
}

# ---------------------------------------------------------------- tools ----
need_load_tools() { # -> MISSING (nginx: the origin, and maybe a proxy)
    need nginx
    ! want varnish || need varnishd:varnish
    ! want haproxy || need haproxy
    need wrk curl taskset:util-linux ss:iproute2
}
need_h2_tools() { # -> MISSING: h2load and openssl, for HTTP/2 runs over TLS with a self-signed certificate
    need h2load:nghttp2-client openssl
}
# shellcheck disable=SC2034 # NGINX_VERSION, WRK_VERSION, HAPROXY_VERSION: for the script's report
tool_versions() { # -> NGINX NGINX_VERSION WRK_VERSION (and HAPROXY HAPROXY_VERSION when haproxy is wanted)
    NGINX=$(command -v nginx)
    NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
    WRK_VERSION=$(wrk -v 2>&1 | head -n1 | awk '{ print $2 }' || true)
    HAPROXY=""; HAPROXY_VERSION=""
    if want haproxy; then
        HAPROXY=$(command -v haproxy)
        HAPROXY_VERSION=$("$HAPROXY" -v 2>&1 | awk 'NR == 1 { print $3 }')
    fi
}
# shellcheck disable=SC2034 # H2LOAD_VERSION: for the script's report
h2_tool_versions() { # -> H2LOAD_VERSION
    H2LOAD_VERSION=$(h2load --version 2>&1 | awk 'NR == 1 { print $NF }' || true)
}

# ------------------------------------------------------------- lodestar ----
# find_lodestar "how to do without it": LODESTAR_BIN (absolute), else with NO_BUILD=1 the newest release
# binary there is, else a release build into .build-bench; it must have the `edge` subcommand
# (edge_help: its --help).
find_lodestar() {
    local hint=$1 build_log
    if [ -z "${LODESTAR_BIN:-}" ]; then
        if [ "$NO_BUILD" = 1 ]; then
            # the newest release binary there is (dns.sh/edge.sh/cache.sh build into .build-bench, `swift build` into .build)
            # shellcheck disable=SC2012 # ls -t: the newest of two fixed paths
            LODESTAR_BIN=$(ls -t "$ROOT/.build-bench/release/lodestar" "$ROOT/.build/release/lodestar" 2>/dev/null | head -n1 || true)
            [ -n "$LODESTAR_BIN" ] || die "--no-build: no release binary in .build-bench/ or .build/ (set LODESTAR_BIN=...)"
        else
            command -v swift >/dev/null || die "swift not found (set LODESTAR_BIN=... or $hint)"
            log "== building lodestar: ${RELEASE_BUILD[*]} --scratch-path .build-bench --product lodestar"
            build_log=$(mktemp "/tmp/lodestar-$BENCH_TAG-build.XXXXXX")
            if ! (cd "$ROOT" && "${RELEASE_BUILD[@]}" --scratch-path .build-bench --product lodestar >"$build_log" 2>&1); then
                tail -n 40 "$build_log" >&2
                die "swift build failed (full log: $build_log; set LODESTAR_BIN=... or $hint)"
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
}
set_lodestar_args() { # -> LODESTAR_ARGS: `lodestar edge` on the temp dir's topology (--threads when it has it)
    LODESTAR_ARGS=(--topology "$WORK/topology.json" --node bench-edge)
    if grep -q -- '--threads' <<<"$edge_help"; then LODESTAR_ARGS+=(--threads "$PROXY_THREADS"); fi
}

# ------------------------------------------------------------- CPU pins ----
# shellcheck disable=SC2034 # PROXY_PIN, PIN_NOTE: for the script
pin_cpus() { # -> NCPU PROXY_CPUS LOADGEN_CPUS PROXY_PIN LOADGEN_PIN PIN_NOTE
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
}

# ---------------------------------------------------------------- files ----
render() { # template out [sed expressions...]  (fills in the @VARS@; the script's own ones as sed expressions)
    local user_line="# (not root: nginx keeps the current user)"
    [ "$(id -u)" != 0 ] || user_line="user root;"
    sed -e "s|@WORK@|$WORK|g" -e "s|@PROXY_PORT@|$PROXY_PORT|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
        -e "s|@DNS_PORT@|$DNS_PORT|g" -e "s|@THREADS@|$PROXY_THREADS|g" -e "s|@WORKERS@|$PROXY_THREADS|g" \
        "${@:3}" -e "s|@USER_LINE@|$user_line|g" "$1" >"$2"
    ! grep -q '@[A-Z_]*@' "$2" || die "unfilled placeholder in $2"
}
# shellcheck disable=SC2120 # (the sizes are optional)
make_bodies() { # [sizes...] -> WORK/www/1k, ... (random bytes, sizes in KiB; default BODIES'), for the origin to serve
    local b sizes=("$@")
    [ $# -gt 0 ] || read -ra sizes <<<"$BODIES"
    for b in "${sizes[@]}"; do
        head -c "$(( ${b%k} * 1024 ))" /dev/urandom >"$WORK/www/$b"
    done
    chmod 644 "$WORK"/www/*
}
nginx_test() { # origin|proxy|... -> `nginx -t` of WORK/that/nginx.conf
    "$NGINX" -t -q -p "$WORK/$1" -e "$WORK/$1/error.log" -c "$WORK/$1/nginx.conf" 2>"$WORK/$1/test.log" ||
        { cat "$WORK/$1/test.log" >&2; die "$1 nginx config test failed"; }
}
haproxy_test() { # config -> `haproxy -c` of it (its warnings are shown: a config that only works by luck is worth a look)
    local out
    if ! out=$("$HAPROXY" -c -f "$1" 2>&1); then
        printf '%s\n' "$out" >&2
        die "haproxy config test failed ($1)"
    fi
    ! grep -q WARNING <<<"$out" || { log "haproxy -c -f $1:"; printf '%s\n' "$out" | sed 's/^/  /' >&2; }
}
# make_cert dir name: a self-signed EC P-256 certificate for NAME (CN and subjectAltName DNS:NAME), valid
# 7 days, as DIR/c.pem and DIR/c.key (unencrypted PKCS#8), made with the openssl CLI
make_cert() {
    mkdir -p "$1"
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
        -subj "/CN=$2" -addext "subjectAltName=DNS:$2" -keyout "$1/c.key" -out "$1/c.pem" >"$1/openssl.log" 2>&1; then
        cat "$1/openssl.log" >&2
        die "openssl could not make the self-signed certificate"
    fi
    chmod 644 "$1/c.pem" "$1/c.key"
}

# --------------------------------------------------------------- helpers ----
port_busy() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
require_free() { # port what [variable to set]
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
    local cpus=() part parts a b i
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
start_origin() { # the origin nginx on the load generator's CPUs, until it answers GET /BODY with 200 -> ORIGIN_PID ORIGIN_ALL
    local t0 code=""
    require_free "$ORIGIN_PORT" "origin" ORIGIN_PORT
    require_free "$PROXY_PORT" "proxy" PROXY_PORT
    "${LOADGEN_PIN[@]}" "$NGINX" -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" -g 'daemon off;' \
        >>"$WORK/origin/stdout.log" 2>&1 &
    ORIGIN_PID=$!
    track "$ORIGIN_PID"
    t0=$SECONDS
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
}

# ---------------------------------------------------------------- proxies ----
PROXY_PID=""
PROXY_ALL=()
PROXY_LOG=""
PROXY_OUT=""
PROXY_BASE=""  # empty: http://127.0.0.1:$PROXY_PORT
PROXY_CURL=()  # extra curl options for the readiness and body checks
proxy_base() { echo "${PROXY_BASE:-http://127.0.0.1:$PROXY_PORT}"; }
start_proxy() { # name: launch_proxy NAME, then wait until it answers GET /BODY with 200 -> PROXY_PID PROXY_ALL
    local name=$1 t0 code
    wait_port_free "$PROXY_PORT"
    require_free "$PROXY_PORT" "proxy" PROXY_PORT
    PROXY_OUT=""
    launch_proxy "$name"
    # (nginx's stdout/stderr go to WORK/proxy/stdout.log unless launch_proxy says otherwise)
    [ -n "$PROXY_OUT" ] || [ "$name" != nginx ] || PROXY_OUT=$WORK/proxy/stdout.log
    PROXY_PID=$!
    track "$PROXY_PID"
    t0=$SECONDS
    while :; do
        if ! kill -0 "$PROXY_PID" 2>/dev/null; then
            wait "$PROXY_PID" 2>/dev/null && code=0 || code=$?
            log "---- last lines of $PROXY_LOG:"
            tail -n 30 "$PROXY_LOG" >&2 2>/dev/null || true
            [ -z "$PROXY_OUT" ] || [ "$PROXY_OUT" = "$PROXY_LOG" ] || tail -n 10 "$PROXY_OUT" >&2 2>/dev/null || true
            die "$name exited during startup (exit status $code)"
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${PROXY_CURL[@]}" "$(proxy_base)/${BODIES%% *}" 2>/dev/null || true)
        [ "$code" = 200 ] && break
        if [ $((SECONDS - t0)) -ge "$READY_TIMEOUT" ]; then
            log "---- last lines of $PROXY_LOG:"
            tail -n 30 "$PROXY_LOG" >&2 2>/dev/null || true
            die "$name did not answer GET /${BODIES%% *} with 200 within ${READY_TIMEOUT}s (last status: ${code:-none})"
        fi
        sleep 0.2
    done
    mapfile -t PROXY_ALL < <(proc_pids "$PROXY_PID")
    [ ${#PROXY_ALL[@]} -le 1 ] || track "${PROXY_ALL[@]:1}"
}
stop_proxy() {
    kill_pids "${PROXY_ALL[@]}"
    untrack "${PROXY_ALL[@]}"
    PROXY_PID=""; PROXY_ALL=()
}
# check_body name body [tag [http-version]]: warns unless the proxy returns the origin's bytes (over HTTP/that
# version, when given: "1.1", "2"); a bad check adds TAG (default: the body) to BAD_BODY[name]
check_body() {
    local name=$1 b=$2 tag=${3:-$2} want_v=${4:-} out code size v
    out=$(curl -s -o "$WORK/check-$name-$tag" -w '%{http_code} %{size_download} %{http_version}' --max-time 5 \
        "${PROXY_CURL[@]}" "$(proxy_base)/$b" || true)
    read -r code size v <<<"${out:-none 0 none}"
    if [ "$code" = 200 ] && cmp -s "$WORK/check-$name-$tag" "$WORK/www/$b" && { [ -z "$want_v" ] || [ "$v" = "$want_v" ]; }; then
        log "  GET /$b through $name: 200, $size bytes, HTTP/$v, same bytes as the origin"
    else
        log "  WARNING: GET /$b through $name: status $code, $size bytes, HTTP/$v${want_v:+ (expected HTTP/$want_v)}: not the origin's body over the expected protocol"
        BAD_BODY[$name]="${BAD_BODY[$name]:-}$tag "
    fi
}

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
# the figures per run, by "body|proxy|round"
# shellcheck disable=SC2034 # RSS: the script's
declare -A RPS P50 P99 RSS ERR CPUP CPUQ BAD_BODY
WRK_EXTRA=() # more wrk arguments for the row being run (edge.sh's gz row: an Accept-Encoding header)
run_wrk() { # out duration body
    "${LOADGEN_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2s" "${WRK_EXTRA[@]}" --latency "http://127.0.0.1:$PROXY_PORT/$3" >"$1" 2>&1 ||
        { cat "$1" >&2; die "wrk failed"; }
}
# the proxy's CPU ticks and the load-generator CPUs' jiffies around a measured run (RUN_C0/1, RUN_BUSY0/1, RUN_TOT0/1)
cpu_mark_start() {
    RUN_C0=$(cpu_ticks "${PROXY_ALL[@]}")
    read -r RUN_BUSY0 RUN_TOT0 < <(cpu_busy_jiffies "${LOADGEN_CPUS:-0-$((NCPU - 1))}")
}
cpu_mark_end() {
    RUN_C1=$(cpu_ticks "${PROXY_ALL[@]}")
    read -r RUN_BUSY1 RUN_TOT1 < <(cpu_busy_jiffies "${LOADGEN_CPUS:-0-$((NCPU - 1))}")
}
# shellcheck disable=SC2034 # CPUP, CPUQ, RUN_LOADGEN: for the script
record_cpu() { # key requests -> CPUP CPUQ [key] (the proxy's % of one core over DURATION, us per request) and RUN_LOADGEN
    CPUP[$1]=$(awk -v t="$((RUN_C1 - RUN_C0))" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f", t / hz / d * 100 }')
    CPUQ[$1]=$(awk -v t="$((RUN_C1 - RUN_C0))" -v hz="$CLK_TCK" -v n="${2:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }')
    RUN_LOADGEN=$(awk -v b="$((RUN_BUSY1 - RUN_BUSY0))" -v t="$((RUN_TOT1 - RUN_TOT0))" 'BEGIN { if (t > 0) printf "%.0f", b / t * 100; else print "n/a" }')
}
measure() { # body out: the measured wrk run, with the proxy's CPU ticks and the load-generator CPUs' jiffies around it (RUN_*)
    log "  wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s ${WRK_EXTRA[*]}${WRK_EXTRA[*]:+ }--latency http://127.0.0.1:$PROXY_PORT/$1"
    cpu_mark_start
    run_wrk "$2" "$DURATION" "$1"
    cpu_mark_end
}
# shellcheck disable=SC2034 # CPUP, CPUQ, RUN_LOADGEN: for the script
record() { # name key out: after measure, shows wrk's summary and stores RPS P50 P99 ERR CPUP CPUQ [key];
    # RUN_REQ (requests in the run) and RUN_LOADGEN (% busy of the load-generator CPUs) for the caller
    local name=$1 key=$2 out=$3 non2xx sock
    sed -n '/Thread Stats/,$p' "$out" | sed 's/^ */    /' >&2
    kill -0 "$PROXY_PID" 2>/dev/null || die "$name died during the run"

    RPS[$key]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    P50[$key]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    P99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    RUN_REQ=$(awk '/requests in/ { print $1 }' "$out")
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' "$out")
    sock=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")
    ERR[$key]=$(( ${non2xx:-0} + ${sock:-0} ))
    record_cpu "$key" "${RUN_REQ:-0}"
    log "  => ${RPS[$key]} req/s, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms, errors ${ERR[$key]} (non-2xx/3xx ${non2xx:-0}, socket ${sock:-0})"
}

# ---------------------------------------------------------------- h2load ----
# HTTP/2 runs: h2load -t1 -cH2_CLIENTS -mH2_STREAMS -D DURATION against URL; with connect-to (HOST:PORT)
# it connects there instead of URL's authority (the name stays the TLS SNI and :authority; h2load does
# not verify the certificate). An http:// URL is HTTP/2 with prior knowledge (h2c).
# shellcheck disable=SC2034 # MEAN, MAXL: the script's
declare -A MEAN MAXL PROTO TLSINFO
run_h2load() { # out duration url [connect-to]
    "${LOADGEN_PIN[@]}" h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$2" ${4:+--connect-to="$4"} "$3" >"$1" 2>&1 ||
        { cat "$1" >&2; die "h2load failed"; }
}
measure_h2() { # out url [connect-to]: the measured h2load run, with the CPU figures around it (RUN_*)
    log "  h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS -D $DURATION${3:+ --connect-to=$3} $2"
    cpu_mark_start
    run_h2load "$1" "$DURATION" "$2" "${3:-}"
    cpu_mark_end
}
# record_h2 name key out: after measure_h2, shows h2load's summary and stores RPS MEAN MAXL ERR CPUP CPUQ PROTO
# TLSINFO [key] (h2load has no percentiles: the mean and max of "time for request"); RUN_REQ, RUN_LOADGEN
record_h2() {
    local name=$1 key=$2 out=$3 bad lat=""
    sed -n '/^finished in/,/^req\/s/p' "$out" | grep -v '^ *$' | sed 's/^ */    /' >&2
    kill -0 "$PROXY_PID" 2>/dev/null || die "$name died during the run"
    RPS[$key]=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^req\/s/) { printf "%.0f", $i; exit } }' "$out")
    RUN_REQ=$(awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^done/) { print $i; exit } }' "$out")
    # h2load's "failed": stream and connection errors, timeouts and responses other than 2xx/3xx (wrk's errors too)
    bad=$(awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^failed/) print $i }' "$out")
    ERR[$key]=${bad:-0}
    # time for request: min max mean sd +/-sd
    read -r lat < <(awk '/^time for request:/ { print $6, $5 }' "$out") || true
    MEAN[$key]=$(to_ms "${lat%% *}")
    MAXL[$key]=$(to_ms "${lat##* }")
    PROTO[$key]=$(awk -F': *' '/^Application protocol:/ { print $2 }' "$out")
    TLSINFO[$key]=$(awk -F': *' '/^TLS Protocol:/ { p = $2 } /^Cipher:/ { c = $2 } /^Server Temp Key:/ { k = $2 }
                     END { if (p != "") print p ", " c ", " k }' "$out")
    record_cpu "$key" "${RUN_REQ:-0}"
    [ -n "${RPS[$key]}" ] || RPS[$key]=n/a
    log "  => ${RPS[$key]} req/s, mean ${MEAN[$key]} ms, max ${MAXL[$key]} ms, errors ${ERR[$key]}," \
        "protocol ${PROTO[$key]:-?}${TLSINFO[$key]:+ (${TLSINFO[$key]})}"
}

# ---------------------------------------------------------------- run ----
warn_load() { # when LOADAVG (the load average before the runs) is above 0.5
    if awk -v l="$LOADAVG" 'BEGIN { exit !(l > 0.5) }'; then
        log "   WARNING: load average $LOADAVG before the run: other processes compete for the CPUs, figures will be noisy"
    fi
}

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
        *) printf '%s\n' "${vals[@]}" | median ;;
    esac
}
paired() { # array-name row peer -> ", round by round: a b c (paired median m)": lodestar/peer within each round
    # (the two ran minutes apart, not half an hour: on a machine shared with others this moves less than the medians)
    [ "$ROUNDS" -gt 1 ] || return 0
    local -n arr=$1
    local r a b out="" ratios=()
    for r in $(seq 1 "$ROUNDS"); do
        a=${arr[$2|lodestar|$r]:-}
        b=${arr[$2|$3|$r]:-}
        [ -n "$a" ] && [ -n "$b" ] && [ "$a" != n/a ] && [ "$b" != n/a ] || continue
        ratios+=("$(ratio "$a" "$b")")
    done
    [ ${#ratios[@]} -gt 0 ] || return 0
    out=$(printf '%s\n' "${ratios[@]}" | median | awk '{ printf "%.2f", $1 }')
    echo ", round by round: ${ratios[*]} (paired median $out)"
}
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.2f", v }'; }
