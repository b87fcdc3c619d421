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
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/proxy-bench.sh
. "$HERE/lib/proxy-bench.sh"
BENCH_TAG=cachebench # temp names: /tmp/lodestar-cachebench.XXXXXX

parse_args CACHE_BENCH_ONLY "nginx, varnish or lodestar (or a comma list)" "--no-build --save" "$@"
save_output

load_settings 18090 18091 15398
NGINX_CACHE_PARENT=${NGINX_CACHE_PARENT:-}
NGINX_SENDFILE=${NGINX_SENDFILE:-on}
VARNISH_STORAGE=${VARNISH_STORAGE:-malloc,256m}
VARNISH_PARAMS=${VARNISH_PARAMS:-}
select_proxies CACHE_BENCH_ONLY "nginx varnish lodestar" # (in that order)

check_settings 1 "the warm-up run fills the cache"
case $NGINX_SENDFILE in on | off) ;; *) die "NGINX_SENDFILE must be on or off" ;; esac
[ -z "$NGINX_CACHE_PARENT" ] || [ -d "$NGINX_CACHE_PARENT" ] || die "NGINX_CACHE_PARENT=$NGINX_CACHE_PARENT is not a directory"

# ---------------------------------------------------------------- tools ----
need_load_tools
install_missing
tool_versions
VARNISHD=""
VARNISH_VERSION=""
if want varnish; then
    VARNISHD=$(command -v varnishd)
    VARNISH_VERSION=$("$VARNISHD" -V 2>&1 | head -n1 | sed 's/^varnishd (\([^ ]*\).*/\1/')
    command -v cc >/dev/null || die "varnishd needs a C compiler (cc) to compile its VCL: apt-get install gcc"
fi

# ------------------------------------------------------------- lodestar ----
if want lodestar; then
    find_lodestar "--only nginx,varnish"
fi

# ------------------------------------------------------------- temp dir ----
make_workdir
if [ -n "$NGINX_CACHE_PARENT" ]; then
    WORK_EXTRA=$(mktemp -d "$NGINX_CACHE_PARENT/lodestar-cachebench-nginx.XXXXXX")
    NGINX_CACHE_DIR=$WORK_EXTRA/cache
else
    NGINX_CACHE_DIR=$WORK/proxy/cache
fi
pin_cpus

# ---------------------------------------------------------------- files ----
render_cache() { # template out
    render "$1" "$2" -e "s|@NGINX_CACHE_DIR@|$NGINX_CACHE_DIR|g" -e "s|@SENDFILE@|$NGINX_SENDFILE|g"
}
mkdir -p "$WORK/www" "$WORK/origin/tmp" "$WORK/proxy/tmp" "$WORK/varnish" "$NGINX_CACHE_DIR"
make_bodies
render_cache "$HERE/cache/origin.nginx.conf" "$WORK/origin/nginx.conf"
render_cache "$HERE/cache/proxy.nginx.conf" "$WORK/proxy/nginx.conf"
render_cache "$HERE/cache/varnish.vcl" "$WORK/varnish/bench.vcl"
chmod 644 "$WORK/varnish/bench.vcl"
render_cache "$HERE/cache/topology.json" "$WORK/topology.json"
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
nginx_test origin
if want nginx; then nginx_test proxy; fi
if want varnish; then
    "$VARNISHD" -C -n "$WORK/varnish/check" -f "$WORK/varnish/bench.vcl" >"$WORK/varnish/vcl-test.log" 2>&1 ||
        { tail -n 30 "$WORK/varnish/vcl-test.log" >&2; die "varnishd -C: the VCL does not compile"; }
    rm -rf "$WORK/varnish/check"
fi

# --------------------------------------------------------------- helpers ----
proc_title() { # pid -> a short name: nginx's process title ("worker process", "master process",
    # "cache manager process"), else the process name (varnish: "varnishd" = manager, "cache-main" = child)
    local t
    t=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ *$//' || true)
    case $t in
        "nginx: "*) t=${t#nginx: }; echo "${t%%process*}process" ;;
        *) cat "/proc/$1/comm" 2>/dev/null || echo "pid $1" ;;
    esac
}
ORIGIN_LOG=$WORK/origin/access.log
origin_requests() { # -> how many requests the origin has served so far (lines of its unbuffered access log)
    if [ -e "$ORIGIN_LOG" ]; then wc -l <"$ORIGIN_LOG" | tr -d ' '; else echo 0; fi
}

# ---------------------------------------------------------------- origin ----
start_origin
ORIGIN_HEADERS=$(curl -s -o /dev/null -D - --max-time 2 "http://127.0.0.1:$ORIGIN_PORT/${BODIES%% *}" | tr -d '\r' |
    grep -iE '^(cache-control|etag|last-modified):' | paste -sd ';' | sed 's/;/; /g' || true)
[[ "${ORIGIN_HEADERS,,}" == *"max-age=3600"* ]] || die "the origin does not send Cache-Control max-age=3600 (got: ${ORIGIN_HEADERS:-nothing})"

# ---------------------------------------------------------------- proxies ----
launch_proxy() { # name -> started in the background on PROXY_PORT; PROXY_LOG
    case $1 in
        nginx)
            PROXY_LOG=$WORK/proxy/error.log
            # an empty cache for every run: nginx's cache loader would otherwise bring back the last run's files
            rm -rf "$NGINX_CACHE_DIR"; mkdir -p "$NGINX_CACHE_DIR"
            "${PROXY_PIN[@]}" "$NGINX" -p "$WORK/proxy" -e "$WORK/proxy/error.log" -c "$WORK/proxy/nginx.conf" -g 'daemon off;' \
                >>"$WORK/proxy/stdout.log" 2>&1 &
            ;;
        varnish)
            PROXY_LOG=$WORK/varnish/varnishd.log
            rm -rf "$WORK/varnish/n"
            # shellcheck disable=SC2086 # VARNISH_PARAMS is a list of words ("-p k=v -p k=v")
            "${PROXY_PIN[@]}" "$VARNISHD" -F -n "$WORK/varnish/n" -a "127.0.0.1:$PROXY_PORT" -T none \
                -f "$WORK/varnish/bench.vcl" -s "$VARNISH_STORAGE" $VARNISH_PARAMS >>"$PROXY_LOG" 2>&1 &
            ;;
        lodestar)
            PROXY_LOG=$WORK/lodestar.log
            (cd "$WORK" && exec "${PROXY_PIN[@]}" "$LODESTAR_BIN" edge "${LODESTAR_ARGS[@]}") >>"$PROXY_LOG" 2>&1 &
            ;;
    esac
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
show_cache_headers() { # name body -> the cache headers of a 2nd GET (it should be a hit)
    local name=$1 b=$2 hdrs
    hdrs=$(curl -s -o /dev/null -D - --max-time 5 "http://127.0.0.1:$PROXY_PORT/$b" | tr -d '\r' |
        grep -iE '^(age|x-cache[a-z-]*|x-varnish|via|etag|last-modified|cache-control):' | paste -sd ';' | sed 's/;/; /g' || true)
    log "  2nd GET /$b through $name: ${hdrs:-(no cache-related headers)}"
}

if want lodestar; then set_lodestar_args; fi

# ---------------------------------------------------------------- wrk ----
declare -A ORQ # origin requests during the run, by "body|proxy|round"
varnish_counters() { # -> "hit N miss N backend_req N" from varnishstat (shared memory of our -n workdir)
    command -v varnishstat >/dev/null || return 0
    varnishstat -n "$WORK/varnish/n" -1 -f MAIN.cache_hit -f MAIN.cache_miss -f MAIN.backend_req 2>/dev/null |
        awk '{ sub(/^MAIN\./, "", $1); printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' || true
}

bench() { # name body round
    local name=$1 b=$2 r=$3 out key o0 o1 o2 rp=()
    key="$b|$name|$r"
    out=$WORK/wrk-$name-$b-$r.txt
    log ""
    log "== round $r/$ROUNDS, $name, /$b ($(( ${b%k} * 1024 )) bytes)"
    o0=$(origin_requests)
    start_proxy "$name"
    log "  $name pid ${PROXY_ALL[*]} on 127.0.0.1:$PROXY_PORT"
    check_body "$name" "$b"
    show_cache_headers "$name" "$b"
    run_wrk "$WORK/warmup-$name-$b-$r.txt" "$WARMUP" "$b"
    o1=$(origin_requests)
    log "  warm-up: wrk ${WARMUP}s, $(awk '/requests in/ { print $1 }' "$WORK/warmup-$name-$b-$r.txt") requests;" \
        "origin requests from the start to the end of the warm-up: $((o1 - o0)) (the fill; the readiness GET fetches /${BODIES%% *})"
    [ "$name" != varnish ] || log "  varnishstat after the warm-up: $(varnish_counters)"
    measure "$b" "$out"
    o2=$(origin_requests)
    record "$name" "$key" "$out"
    ORQ[$key]=$((o2 - o1))
    mapfile -t rp < <(rss_pids "$name")
    RSS[$key]=$(rss_hwm_mib "${rp[@]}")
    log "  origin requests during run: ${ORQ[$key]} (of ${RUN_REQ:-?} requests)"
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
    log "     CPU ${CPUP[$key]}% of one core (all its processes), ${CPUQ[$key]} us/request; load-generator CPU(s) ${LOADGEN_CPUS:-all} ${RUN_LOADGEN}% busy"
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
warn_load
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
