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
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/proxy-bench.sh
. "$HERE/lib/proxy-bench.sh"
BENCH_TAG=edgebench # temp names: /tmp/lodestar-edgebench.XXXXXX

parse_args EDGE_BENCH_ONLY "nginx or lodestar" "--no-build --save" "$@"
save_output

load_settings 18080 18081 15399
case ${EDGE_BENCH_ONLY:-} in
    "") PROXIES="nginx lodestar" ;;
    nginx | lodestar) PROXIES=$EDGE_BENCH_ONLY ;;
    *) die "EDGE_BENCH_ONLY / --only must be nginx or lodestar (got '$EDGE_BENCH_ONLY')" ;;
esac
check_settings 0 # (WARMUP may be 0)

# ---------------------------------------------------------------- tools ----
need_load_tools
install_missing
tool_versions

# ------------------------------------------------------------- lodestar ----
if want lodestar; then
    find_lodestar "--only nginx"
fi

# ------------------------------------------------------------- temp dir ----
make_workdir
pin_cpus

# ---------------------------------------------------------------- files ----
mkdir -p "$WORK/www" "$WORK/origin/tmp" "$WORK/proxy/tmp"
make_bodies
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
nginx_test origin
nginx_test proxy

# ---------------------------------------------------------------- origin ----
start_origin

# ---------------------------------------------------------------- proxies ----
launch_proxy() { # name -> started in the background on PROXY_PORT; PROXY_LOG
    case $1 in
        nginx)
            PROXY_LOG=$WORK/proxy/error.log
            "${PROXY_PIN[@]}" "$NGINX" -p "$WORK/proxy" -e "$WORK/proxy/error.log" -c "$WORK/proxy/nginx.conf" -g 'daemon off;' \
                >>"$WORK/proxy/stdout.log" 2>&1 &
            ;;
        lodestar)
            PROXY_LOG=$WORK/lodestar.log
            (cd "$WORK" && exec "${PROXY_PIN[@]}" "$LODESTAR_BIN" edge "${LODESTAR_ARGS[@]}") >>"$PROXY_LOG" 2>&1 &
            ;;
    esac
}
if want lodestar; then set_lodestar_args; fi

bench() { # name body round
    local name=$1 b=$2 r=$3 out key
    key="$b|$name|$r"
    out=$WORK/wrk-$name-$b-$r.txt
    log ""
    log "== round $r/$ROUNDS, $name, /$b ($(( ${b%k} * 1024 )) bytes)"
    start_proxy "$name"
    log "  $name pid ${PROXY_ALL[*]} on 127.0.0.1:$PROXY_PORT"
    [ "$r" != 1 ] || check_body "$name" "$b"
    run_wrk "$WORK/warmup-$name-$b-$r.txt" "$WARMUP" "$b"
    measure "$b" "$out"
    record "$name" "$key" "$out"
    # nginx: the workers' peak (they inherit the master's pages; the idle master is shown in the log line)
    if [ ${#PROXY_ALL[@]} -gt 1 ]; then RSS[$key]=$(rss_hwm_mib "${PROXY_ALL[@]:1}"); else RSS[$key]=$(rss_hwm_mib "$PROXY_PID"); fi
    local detail="" pp
    if [ ${#PROXY_ALL[@]} -gt 1 ]; then
        for pp in "${PROXY_ALL[@]:1}"; do detail="$detail${detail:+ + }$(rss_hwm_mib "$pp")"; done
        detail=" (worker$([ ${#PROXY_ALL[@]} -le 2 ] || echo "s $detail"); master $(rss_hwm_mib "$PROXY_PID") MiB not counted)"
    fi
    log "     $name peak RSS (VmHWM) ${RSS[$key]} MiB$detail;" \
        "CPU ${CPUP[$key]}% of one core, ${CPUQ[$key]} us/request; load-generator CPU(s) ${LOADGEN_CPUS:-all} ${RUN_LOADGEN}% busy"
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
warn_load
for r in $(seq 1 "$ROUNDS"); do
    # alternate the order each round so neither proxy always runs first
    if [ $((r % 2)) = 1 ]; then order=$PROXIES; else order=$(printf '%s\n' $PROXIES | tac | tr '\n' ' '); fi
    for b in $BODIES; do
        for p in $order; do bench "$p" "$b" "$r"; done
    done
done
kill -0 "$ORIGIN_PID" 2>/dev/null || die "the origin nginx died during the runs"

# ---------------------------------------------------------------- report ----
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
