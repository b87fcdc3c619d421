# shellcheck shell=bash
# Benchmarks/lib/proxy-bench.sh - what the wrk benchmarks edge.sh and cache.sh share: the settings,
# the lodestar binary, CPU pinning, the origin nginx, starting and stopping the proxy under test,
# the measured wrk run and its figures, and the aggregates of the report.
#
# Sourced after lib/common.sh. The script defines launch_proxy NAME, which starts that proxy in the
# background on PROXY_PORT and sets PROXY_LOG to its log (see start_proxy).

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
    need wrk curl taskset:util-linux ss:iproute2
}
# shellcheck disable=SC2034 # NGINX_VERSION, WRK_VERSION: for the script's report
tool_versions() { # -> NGINX NGINX_VERSION WRK_VERSION
    NGINX=$(command -v nginx)
    NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
    WRK_VERSION=$(wrk -v 2>&1 | head -n1 | awk '{ print $2 }' || true)
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
            log "== building lodestar: swift build -c release --scratch-path .build-bench --product lodestar"
            build_log=$(mktemp "/tmp/lodestar-$BENCH_TAG-build.XXXXXX")
            if ! (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product lodestar >"$build_log" 2>&1); then
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
make_bodies() { # -> WORK/www/1k, ... (random bytes, BODIES' sizes in KiB), for the origin to serve
    local b
    for b in $BODIES; do
        head -c "$(( ${b%k} * 1024 ))" /dev/urandom >"$WORK/www/$b"
    done
    chmod 644 "$WORK"/www/*
}
nginx_test() { # origin|proxy -> `nginx -t` of WORK/that/nginx.conf
    "$NGINX" -t -q -p "$WORK/$1" -e "$WORK/$1/error.log" -c "$WORK/$1/nginx.conf" 2>"$WORK/$1/test.log" ||
        { cat "$WORK/$1/test.log" >&2; die "$1 nginx config test failed"; }
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
start_proxy() { # name: launch_proxy NAME, then wait until it answers GET /BODY with 200 -> PROXY_PID PROXY_ALL
    local name=$1 t0 code
    wait_port_free "$PROXY_PORT"
    require_free "$PROXY_PORT" "proxy" PROXY_PORT
    launch_proxy "$name"
    PROXY_PID=$!
    track "$PROXY_PID"
    t0=$SECONDS
    while :; do
        if ! kill -0 "$PROXY_PID" 2>/dev/null; then
            wait "$PROXY_PID" 2>/dev/null && code=0 || code=$?
            log "---- last lines of $PROXY_LOG:"
            tail -n 30 "$PROXY_LOG" >&2 2>/dev/null || true
            [ "$name" != nginx ] || tail -n 10 "$WORK/proxy/stdout.log" >&2 2>/dev/null || true
            die "$name exited during startup (exit status $code)"
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PROXY_PORT/${BODIES%% *}" 2>/dev/null || true)
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
run_wrk() { # out duration body
    "${LOADGEN_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2s" --latency "http://127.0.0.1:$PROXY_PORT/$3" >"$1" 2>&1 ||
        { cat "$1" >&2; die "wrk failed"; }
}
measure() { # body out: the measured wrk run, with the proxy's CPU ticks and the load-generator CPUs' jiffies around it (RUN_*)
    log "  wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency http://127.0.0.1:$PROXY_PORT/$1"
    RUN_C0=$(cpu_ticks "${PROXY_ALL[@]}")
    read -r RUN_BUSY0 RUN_TOT0 < <(cpu_busy_jiffies "${LOADGEN_CPUS:-0-$((NCPU - 1))}")
    run_wrk "$2" "$DURATION" "$1"
    RUN_C1=$(cpu_ticks "${PROXY_ALL[@]}")
    read -r RUN_BUSY1 RUN_TOT1 < <(cpu_busy_jiffies "${LOADGEN_CPUS:-0-$((NCPU - 1))}")
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
    CPUP[$key]=$(awk -v t="$((RUN_C1 - RUN_C0))" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f", t / hz / d * 100 }')
    CPUQ[$key]=$(awk -v t="$((RUN_C1 - RUN_C0))" -v hz="$CLK_TCK" -v n="${RUN_REQ:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }')
    RUN_LOADGEN=$(awk -v b="$((RUN_BUSY1 - RUN_BUSY0))" -v t="$((RUN_TOT1 - RUN_TOT0))" 'BEGIN { if (t > 0) printf "%.0f", b / t * 100; else print "n/a" }')
    log "  => ${RPS[$key]} req/s, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms, errors ${ERR[$key]} (non-2xx/3xx ${non2xx:-0}, socket ${sock:-0})"
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
        *) printf '%s\n' "${vals[@]}" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }' ;;
    esac
}
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.2f", v }'; }
