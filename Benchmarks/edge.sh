#!/usr/bin/env bash
# Benchmarks/edge.sh - `lodestar edge` vs nginx and HAProxy as HTTP/1.1 reverse proxies, and vs nginx as an
# HTTP/2 (TLS) front, one after the other in one run, in front of the same origin.
#
#   wrk / h2load (CPU 1) --> proxy under test on 127.0.0.1:18080 (CPU 0) --> origin nginx on 127.0.0.1:18081 (CPU 1)
#
# Origin   one nginx (1 worker, access_log off, keep-alive with a huge keepalive_requests)
#          serving two static files from the temp dir: /1k (1024 bytes) and /64k (65536 bytes).
#          Config: Benchmarks/edge/origin.nginx.conf. Started once, runs for the whole script.
# Proxy A  nginx, 1 worker, `upstream { server ORIGIN; keepalive 64; }`, proxy_http_version 1.1,
#          proxy_set_header Connection "", access_log off, gzip off, proxy_buffering at its
#          default. Config: Benchmarks/edge/proxy.nginx.conf. For the h2 row: the same with
#          `listen ... ssl http2` and keepalive 128 (Benchmarks/edge/proxy-h2.nginx.conf).
# Proxy B  haproxy -db -f Benchmarks/edge/haproxy.cfg (rendered into the temp dir): nbthread 1, mode http,
#          keep-alive, http-reuse always, one server (the origin), no logging. HTTP/1.1 rows only.
# Proxy C  `lodestar edge --topology T --node bench-edge --threads 1`, T = the temp dir's copy of
#          Benchmarks/edge/topology.json (one edge listening on the proxy port, one origin pool
#          with the origin, one catch-all route, access log and compression off). h2 row: the
#          listener is TLS ({"address": ..., "tls": {"certificates": [...]}}: ALPN h2, http/1.1);
#          h2c row: a plain listener with "protocols": ["http/1.1", "h2c"].
# gz row   what a browser asks of a page: GET /gz/page.html (8 KiB of HTML, text/html) with
#          `Accept-Encoding: gzip`, every proxy compressing at zlib level 6 (nginx: gzip on, gzip_comp_level 6,
#          gzip_types text/html, gzip_min_length 1024, gzip_vary on; HAProxy: compression algo gzip, type
#          text/html - its own encoder, libslz when built with it; lodestar: compression on, level 6).
# TLS      a self-signed EC P-256 certificate for bench.test, made with the openssl CLI in the temp dir.
# Pinning  this is a 2-core machine: the proxy under test gets CPU 0 for itself (taskset -c 0);
#          the origin and the load generator share CPU 1 (taskset -c 1). PROXY_CPUS= / LOADGEN_CPUS= / PIN=0.
# Load     HTTP/1.1 rows: wrk -t1 -c64 -d10s --latency http://127.0.0.1:18080/{1k,64k}.
#          gz row: the same wrk with -H 'Accept-Encoding: gzip' on /gz/page.html.
#          h2 row: h2load -t1 -c10 -m10 -D 10 --connect-to=127.0.0.1:18080 https://bench.test:18080/1k
#          (nginx and lodestar); h2c row: h2load ... http://127.0.0.1:18080/1k (prior knowledge; lodestar).
#          Each run is preceded by a 2 s warm-up run (not reported) and starts a fresh proxy process, so
#          its peak RSS (VmHWM) is that run's. All proxies use the same port and never run at once.
# Report   per proxy and row: req/s, latency (ms; wrk: p50/p99; h2load: mean/max), errors, peak RSS
#          (MiB; nginx: the worker), proxy CPU (with ROUNDS >= 2 each CPU ratio also round by round, with the
#          paired median); then the side-by-side tables with the ratios
#          lodestar/nginx and lodestar/haproxy, the HTTP/2 table, and PASS/MISS against the targets
#          (HTTP/1.1: req/s >= 0.8x nginx, p99 <= 2x nginx; h2: req/s >= 0.8x nginx).
#          The figures are printed whatever they are: missing a target is not a failure (exit 0).
#
# Usage:   Benchmarks/edge.sh [--no-build] [--save] [--only nginx|haproxy|lodestar[,...]]   (see Benchmarks/README.md)
# Env:     DURATION=10 WARMUP=2 CONNECTIONS=64 WRK_THREADS=1 ROUNDS=1 BODIES="1k 64k"
#          ROWS="h1 h2 h2c gz" (h1: the wrk rows, one per body; h2: HTTP/2 over TLS; h2c: HTTP/2 cleartext;
#          gz: a page compressed for the client)
#          H2_CLIENTS=10 H2_STREAMS=10 H2_BODY=1k (h2load -c, -m and the path of the HTTP/2 rows)
#          EDGE_BENCH_ONLY=nginx,haproxy,... (a subset of the proxies; same as --only; ratios need lodestar)
#          LODESTAR_BIN=path (no build)  NO_BUILD=1 (use the newest existing release binary)
#          PROXY_PORT=18080 ORIGIN_PORT=18081 DNS_PORT=15399 PROXY_THREADS=1
#          PIN=1 PROXY_CPUS=0 LOADGEN_CPUS=1 READY_TIMEOUT=60
#          SAVE=1 (tee everything to Benchmarks/results/DATE-edge.txt; RESULT_FILE=path to choose)
#          KEEP=1 (keep the temp dir with configs, certificate, logs and wrk/h2load outputs)
# Needs:   root the first time (apt-get install nginx haproxy wrk nghttp2-client openssl when missing;
#          Debian's nginx and haproxy services are kept from starting by a temporary policy-rc.d).
#          nginx and haproxy always run from the temp dir with their own config, pid and logs:
#          /etc/nginx and /etc/haproxy are never used or changed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/proxy-bench.sh
. "$HERE/lib/proxy-bench.sh"
BENCH_TAG=edgebench # temp names: /tmp/lodestar-edgebench.XXXXXX

parse_args EDGE_BENCH_ONLY "nginx, haproxy or lodestar (or a comma list)" "--no-build --save" "$@"
save_output

load_settings 18080 18081 15399
ROWS=${ROWS:-"h1 h2 h2c gz"}
H2_CLIENTS=${H2_CLIENTS:-10}
H2_STREAMS=${H2_STREAMS:-10}
H2_BODY=${H2_BODY:-1k}
TLS_NAME=bench.test # the certificate's name: h2load's SNI and :authority, curl's --resolve
select_proxies EDGE_BENCH_ONLY "nginx haproxy lodestar" # (in that order)
read -ra PROXY_LIST <<<"$PROXIES"
check_settings 0 # (WARMUP may be 0)
check_whole_numbers H2_CLIENTS H2_STREAMS
[ "$H2_CLIENTS" -ge 1 ] || die "H2_CLIENTS must be >= 1"
[ "$H2_STREAMS" -ge 1 ] || die "H2_STREAMS must be >= 1"
[[ "$H2_BODY" =~ ^[0-9]+k$ ]] || die "H2_BODY: '$H2_BODY' is not a size like 1k (KiB)"
for row in $ROWS; do case $row in h1 | h2 | h2c | gz) ;; *) die "ROWS takes h1, h2, h2c, gz (got '$row')" ;; esac; done

# The rows: each body of BODIES over HTTP/1.1 (wrk; every proxy), h2 (HTTP/2 over TLS; nginx and lodestar),
# h2c (HTTP/2 cleartext with prior knowledge; lodestar only, nginx 1.22 cannot take h2c and HTTP/1.1 on one port).
row_proxies() { # row -> the wanted proxies that run it
    local p
    case $1 in
        h2) for p in nginx lodestar; do ! want "$p" || printf '%s ' "$p"; done ;;
        h2c) ! want lodestar || printf 'lodestar ' ;;
        *) printf '%s ' "${PROXY_LIST[@]}" ;;
    esac
}
RUN_ROWS=""
[[ " $ROWS " != *" h1 "* ]] || RUN_ROWS=$BODIES
for row in gz h2 h2c; do
    if [[ " $ROWS " == *" $row "* ]] && [ -n "$(row_proxies "$row")" ]; then RUN_ROWS="${RUN_ROWS:+$RUN_ROWS }$row"; fi
done
[ -n "$RUN_ROWS" ] || die "nothing to run: ROWS=\"$ROWS\" with the proxies $PROXIES (h2 takes nginx or lodestar, h2c lodestar)"
has_row() { [[ " $RUN_ROWS " == *" $1 "* ]]; }
H1_ROWS=$(for row in $RUN_ROWS; do [[ $row == h2* ]] || printf '%s ' "$row"; done)
H2_ROWS=$(for row in $RUN_ROWS; do [[ $row != h2* ]] || printf '%s ' "$row"; done)

# ---------------------------------------------------------------- tools ----
need_load_tools
[ -z "$H2_ROWS" ] || need_h2_tools
install_missing
tool_versions
H2LOAD_VERSION=""
[ -z "$H2_ROWS" ] || h2_tool_versions

# ------------------------------------------------------------- lodestar ----
if want lodestar; then
    find_lodestar "--only nginx,haproxy"
fi

# ------------------------------------------------------------- temp dir ----
make_workdir
pin_cpus
[ -z "$H2_ROWS" ] || PIN_NOTE=${PIN_NOTE//wrk/wrk/h2load}

# ---------------------------------------------------------------- files ----
mkdir -p "$WORK/www" "$WORK/origin/tmp" "$WORK/proxy/tmp"
read -ra sizes <<<"$BODIES"
[[ " $BODIES " == *" $H2_BODY "* ]] || sizes+=("$H2_BODY")
make_bodies "${sizes[@]}"
if has_row gz; then  # the gz row's page: 8 KiB of HTML, as compressible as a real one (repeated markup, varied text)
    mkdir -p "$WORK/www/gz"
    awk 'BEGIN { srand(7); printf "<!doctype html><html><head><title>Lodestar</title></head><body><ul>\n";
                 for (n = 0; n < 8000;) { l = sprintf("<li class=\"edge\"><a href=\"/edges/%d\">edge %d</a> in region %d, %d ms</li>\n", \
                     int(rand() * 100000), int(rand() * 1000), int(rand() * 12), int(rand() * 300)); printf "%s", l; n += length(l) }
                 print "</ul></body></html>" }' >"$WORK/www/gz/page.html"
    chmod 644 "$WORK/www/gz/page.html"
fi
render "$HERE/edge/origin.nginx.conf" "$WORK/origin/nginx.conf"
nginx_test origin
! has_row h2 || make_cert "$WORK/tls" "$TLS_NAME"
if want nginx; then
    render "$HERE/edge/proxy.nginx.conf" "$WORK/proxy/nginx.conf"
    nginx_test proxy
    if has_row h2; then
        mkdir -p "$WORK/proxy-h2/tmp"
        render "$HERE/edge/proxy-h2.nginx.conf" "$WORK/proxy-h2/nginx.conf"
        nginx_test proxy-h2
    fi
    if has_row gz; then  # the same proxy, compressing
        mkdir -p "$WORK/proxy-gz/tmp"
        render "$HERE/edge/proxy.nginx.conf" "$WORK/proxy-gz/nginx.conf" -e "s|$WORK/proxy/|$WORK/proxy-gz/|g" \
            -e "s|gzip off;|gzip on; gzip_comp_level 6; gzip_types text/html; gzip_min_length 1024; gzip_vary on;|"
        nginx_test proxy-gz
    fi
fi
if want haproxy; then
    mkdir -p "$WORK/haproxy"
    render "$HERE/edge/haproxy.cfg" "$WORK/haproxy/haproxy.cfg"
    haproxy_test "$WORK/haproxy/haproxy.cfg"
    if has_row gz; then
        render "$HERE/edge/haproxy.cfg" "$WORK/haproxy/haproxy-gz.cfg" \
            -e "s|^    default_backend origin|    default_backend origin\n    compression algo gzip\n    compression type text/html|"
        haproxy_test "$WORK/haproxy/haproxy-gz.cfg"
    fi
fi
# lodestar: one topology per kind of listener (relative certificate paths resolve against the topology's folder)
declare -A TOPOLOGY=([h1]=topology.json [h2]=topology-h2.json [h2c]=topology-h2c.json [gz]=topology-gz.json)
declare -A LISTENER=(
    [h1]="\"127.0.0.1:$PROXY_PORT\""
    [h2]="{\"address\": \"127.0.0.1:$PROXY_PORT\", \"tls\": {\"certificates\": [{\"cert\": \"tls/c.pem\", \"key\": \"tls/c.key\", \"serverNames\": [\"$TLS_NAME\"]}]}}"
    [h2c]="{\"address\": \"127.0.0.1:$PROXY_PORT\", \"protocols\": [\"http/1.1\", \"h2c\"]}"
    [gz]="\"127.0.0.1:$PROXY_PORT\""
)
row_mode() { case $1 in h2 | h2c | gz) echo "$1" ;; *) echo h1 ;; esac; }
if want lodestar; then
    for mode in h1 h2 h2c gz; do
        case $mode in h1) [ -n "$H1_ROWS" ] || continue ;; *) has_row "$mode" || continue ;; esac
        gzip_on=()
        [ "$mode" != gz ] || gzip_on=(-e 's|"compression": {"enabled": false}|"compression": {"enabled": true, "level": 6}|')
        render "$HERE/edge/topology.json" "$WORK/${TOPOLOGY[$mode]}" -e "s|@LISTEN@|${LISTENER[$mode]}|g" "${gzip_on[@]}"
        # `lodestar check` validates the benchmark topology first: clearer than a failed start
        if ! "$LODESTAR_BIN" check "$WORK/${TOPOLOGY[$mode]}" >"$WORK/check-$mode.log" 2>&1; then
            cat "$WORK/check-$mode.log" >&2
            die "\`lodestar check\` rejects the benchmark topology ($HERE/edge/topology.json with the $mode listener ${LISTENER[$mode]})"
        fi
    done
fi

# ---------------------------------------------------------------- origin ----
start_origin

# ---------------------------------------------------------------- proxies ----
MODE=h1 # h1, h2 or h2c: the listener launch_proxy starts (set by set_row)
launch_proxy() { # name -> started in the background on PROXY_PORT; PROXY_LOG (PROXY_OUT)
    local args=() a
    case $1/$MODE in
        nginx/h1)
            PROXY_LOG=$WORK/proxy/error.log
            "${PROXY_PIN[@]}" "$NGINX" -p "$WORK/proxy" -e "$WORK/proxy/error.log" -c "$WORK/proxy/nginx.conf" -g 'daemon off;' \
                >>"$WORK/proxy/stdout.log" 2>&1 &
            ;;
        nginx/h2)
            PROXY_LOG=$WORK/proxy-h2/error.log
            PROXY_OUT=$WORK/proxy-h2/stdout.log
            "${PROXY_PIN[@]}" "$NGINX" -p "$WORK/proxy-h2" -e "$WORK/proxy-h2/error.log" -c "$WORK/proxy-h2/nginx.conf" -g 'daemon off;' \
                >>"$PROXY_OUT" 2>&1 &
            ;;
        nginx/gz)
            PROXY_LOG=$WORK/proxy-gz/error.log
            "${PROXY_PIN[@]}" "$NGINX" -p "$WORK/proxy-gz" -e "$WORK/proxy-gz/error.log" -c "$WORK/proxy-gz/nginx.conf" \
                -g 'daemon off;' >>"$WORK/proxy-gz/stdout.log" 2>&1 &
            ;;
        haproxy/h1 | haproxy/gz)
            # -db: foreground, one process (no master-worker); its messages go to stderr
            PROXY_LOG=$WORK/haproxy/haproxy.log
            a=haproxy.cfg
            [ "$MODE" != gz ] || a=haproxy-gz.cfg
            (cd "$WORK/haproxy" && exec "${PROXY_PIN[@]}" "$HAPROXY" -db -f "$WORK/haproxy/$a") >>"$PROXY_LOG" 2>&1 &
            ;;
        lodestar/*)
            PROXY_LOG=$WORK/lodestar.log
            [ "$MODE" = h1 ] || PROXY_LOG=$WORK/lodestar-$MODE.log
            for a in "${LODESTAR_ARGS[@]}"; do
                [ "$a" != "$WORK/topology.json" ] || a=$WORK/${TOPOLOGY[$MODE]}
                args+=("$a")
            done
            (cd "$WORK" && exec "${PROXY_PIN[@]}" "$LODESTAR_BIN" edge "${args[@]}") >>"$PROXY_LOG" 2>&1 &
            ;;
        *) die "launch_proxy: no $MODE listener for $1" ;;
    esac
}
if want lodestar; then set_lodestar_args; fi

H2_URL=""
H2_CONNECT=""
set_row() { # row -> MODE, how curl and h2load reach the proxy (PROXY_BASE PROXY_CURL H2_URL H2_CONNECT), CHECK_VERSION
    MODE=$(row_mode "$1")
    WRK_EXTRA=()
    case $MODE in
        h1)
            PROXY_BASE=""; PROXY_CURL=(); CHECK_VERSION=1.1 ;;
        gz)  # curl asks for gzip and decodes: the check compares the page, and `check_gzip` that it came compressed
            PROXY_BASE=""; PROXY_CURL=(--compressed -H "Accept-Encoding: gzip"); CHECK_VERSION=1.1
            WRK_EXTRA=(-H "Accept-Encoding: gzip") ;;
        h2)
            PROXY_BASE=https://$TLS_NAME:$PROXY_PORT
            PROXY_CURL=(--http2 --cacert "$WORK/tls/c.pem" --resolve "$TLS_NAME:$PROXY_PORT:127.0.0.1")
            H2_URL=https://$TLS_NAME:$PROXY_PORT/$H2_BODY; H2_CONNECT=127.0.0.1:$PROXY_PORT; CHECK_VERSION=2 ;;
        h2c)
            PROXY_BASE=""; PROXY_CURL=(--http2-prior-knowledge)
            H2_URL=http://127.0.0.1:$PROXY_PORT/$H2_BODY; H2_CONNECT=""; CHECK_VERSION=2 ;;
    esac
}
row_title() { # row -> what the progress lines call it
    case $1 in
        h2) echo "HTTP/2 over TLS (h2), /$H2_BODY ($(( ${H2_BODY%k} * 1024 )) bytes)" ;;
        h2c) echo "HTTP/2 cleartext, prior knowledge (h2c), /$H2_BODY ($(( ${H2_BODY%k} * 1024 )) bytes)" ;;
        gz) echo "/gz/page.html ($(wc -c <"$WORK/www/gz/page.html") bytes of HTML) with Accept-Encoding: gzip" ;;
        *) echo "/$1 ($(( ${1%k} * 1024 )) bytes)" ;;
    esac
}

bench() { # name row round
    local name=$1 row=$2 r=$3 out key body
    key="$row|$name|$r"
    set_row "$row"
    body=$row
    case $MODE in h2 | h2c) body=$H2_BODY ;; gz) body=gz/page.html ;; esac
    log ""
    log "== round $r/$ROUNDS, $name, $(row_title "$row")"
    start_proxy "$name"
    log "  $name pid ${PROXY_ALL[*]} on 127.0.0.1:$PROXY_PORT"
    [ "$r" != 1 ] || check_body "$name" "$body" "$row" "$CHECK_VERSION"
    [ "$r" != 1 ] || [ "$MODE" != gz ] || check_gzip "$name" "$body" "$row"
    if [ "$MODE" = h1 ] || [ "$MODE" = gz ]; then
        out=$WORK/wrk-$name-$row-$r.txt
        run_wrk "$WORK/warmup-$name-$row-$r.txt" "$WARMUP" "$body"
        measure "$body" "$out"
        record "$name" "$key" "$out"
    else
        out=$WORK/h2load-$name-$row-$r.txt
        [ "$WARMUP" = 0 ] || run_h2load "$WORK/warmup-$name-$row-$r.txt" "$WARMUP" "$H2_URL" "$H2_CONNECT"
        measure_h2 "$out" "$H2_URL" "$H2_CONNECT"
        record_h2 "$name" "$key" "$out"
        if [ "${PROTO[$key]}" != "$MODE" ]; then
            log "  WARNING: h2load spoke '${PROTO[$key]:-?}' to $name, not $MODE"
            BAD_BODY[$name]="${BAD_BODY[$name]:-}$row "
        fi
    fi
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

check_gzip() { # name path row: the answer to a client that asks for gzip came gzip-encoded, and smaller
    local size enc
    enc=$(curl -s -o "$WORK/gz-$1" -w '%{size_download}' -D "$WORK/gz-$1.head" -H "Accept-Encoding: gzip" --max-time 5 \
        "http://127.0.0.1:$PROXY_PORT/$2" || true)
    size=${enc:-0}
    if grep -qi '^content-encoding: *gzip' "$WORK/gz-$1.head"; then
        log "  GET /$2 with Accept-Encoding: gzip through $1: gzip, $size bytes on the wire"
    else
        log "  WARNING: GET /$2 with Accept-Encoding: gzip through $1: not gzip-encoded"
        BAD_BODY[$1]="${BAD_BODY[$1]:-}$3 "
    fi
}

# ---------------------------------------------------------------- run ----
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
log ""
[ -z "$H1_ROWS" ] ||
    log "== setup: wrk -t$WRK_THREADS -c$CONNECTIONS, ${DURATION}s per run (+${WARMUP}s warm-up), bodies: $BODIES, $ROUNDS round(s)"
[ -z "$H2_ROWS" ] ||
    log "== setup: h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS -D $DURATION (+${WARMUP}s warm-up), /$H2_BODY, rows: $H2_ROWS($ROUNDS round(s))"
log "   $PIN_NOTE"
log "   origin: nginx ($NGINX_VERSION) pid ${ORIGIN_ALL[*]} on 127.0.0.1:$ORIGIN_PORT; proxies on 127.0.0.1:$PROXY_PORT"
! want nginx || [ -z "$H1_ROWS" ] || log "   nginx: $NGINX -c $WORK/proxy/nginx.conf (worker_processes $PROXY_THREADS, upstream keepalive 64)"
! want nginx || ! has_row h2 || log "   nginx h2: $NGINX -c $WORK/proxy-h2/nginx.conf (listen ssl http2, worker_processes $PROXY_THREADS, upstream keepalive 128)"
! want nginx || ! has_row gz || log "   nginx gz: $NGINX -c $WORK/proxy-gz/nginx.conf (gzip on, gzip_comp_level 6, gzip_types text/html)"
! want haproxy || ! has_row gz || log "   haproxy gz: -f $WORK/haproxy/haproxy-gz.cfg (compression algo gzip, compression type text/html)"
! want lodestar || ! has_row gz || log "   lodestar gz: --topology $WORK/${TOPOLOGY[gz]} (compression on, level 6)"
! want haproxy || [ -z "$H1_ROWS" ] || log "   haproxy: $HAPROXY ($HAPROXY_VERSION) -db -f $WORK/haproxy/haproxy.cfg (nbthread 1, http-reuse always)"
! want lodestar || log "   lodestar: $LODESTAR_BIN edge ${LODESTAR_ARGS[*]}$([ -z "$H2_ROWS" ] || printf ' (h2: --topology %s, h2c: --topology %s)' \
    "$WORK/${TOPOLOGY[h2]}" "$WORK/${TOPOLOGY[h2c]}")"
! has_row h2 || log "   TLS: self-signed EC P-256 certificate for $TLS_NAME in $WORK/tls (h2load --connect-to=127.0.0.1:$PROXY_PORT)"
warn_load
for r in $(seq 1 "$ROUNDS"); do
    for row in $RUN_ROWS; do
        # alternate the order each round so neither proxy always runs first
        order=$(row_proxies "$row")
        [ $((r % 2)) = 1 ] || order=$(printf '%s\n' $order | tac | tr '\n' ' ')
        for p in $order; do bench "$p" "$row" "$r"; done
    done
done
kill -0 "$ORIGIN_PID" 2>/dev/null || die "the origin nginx died during the runs"

# ---------------------------------------------------------------- report ----
# the peers lodestar is compared with (those that ran)
PEERS=""
if want lodestar; then for p in nginx haproxy; do ! want "$p" || PEERS="${PEERS:+$PEERS }$p"; done; fi
versions="nginx $NGINX_VERSION"
[ -z "$HAPROXY_VERSION" ] || versions="$versions; haproxy $HAPROXY_VERSION"
[ -z "$H1_ROWS" ] || versions="$versions; wrk $WRK_VERSION"
[ -z "$H2_ROWS" ] || versions="$versions; h2load $H2LOAD_VERSION"
echo ""
echo "== edge benchmark: $PROXIES   ($versions${LODESTAR_BIN:+; lodestar: $LODESTAR_BIN})"
[ -z "$H1_ROWS" ] ||
    echo "   wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency (+${WARMUP}s warm-up), $ROUNDS round(s)$([ "$ROUNDS" = 1 ] || echo ' (median shown; RSS: highest peak)')"
[ -z "$H2_ROWS" ] ||
    echo "   h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS -D $DURATION (+${WARMUP}s warm-up) on /$H2_BODY, rows: ${H2_ROWS% }$([ "$ROUNDS" = 1 ] || echo ' (median shown)')"
echo "   origin: nginx, static files, keep-alive; proxy: 1 worker / --threads $PROXY_THREADS, fresh process per row"
echo "   $PIN_NOTE; load average at start $LOADAVG"
echo ""
declare -A M_RPS M_P50 M_P99 M_RSS M_MEAN M_MAX
round0() { awk '{ if ($1 == "n/a") print; else printf "%.0f\n", $1 }'; }
for row in $RUN_ROWS; do
    for p in $(row_proxies "$row"); do
        M_RPS[$row|$p]=$(agg median RPS "$row|$p" | round0); M_P50[$row|$p]=$(agg median P50 "$row|$p")
        M_P99[$row|$p]=$(agg median P99 "$row|$p"); M_RSS[$row|$p]=$(agg max RSS "$row|$p")
        M_MEAN[$row|$p]=$(agg median MEAN "$row|$p"); M_MAX[$row|$p]=$(agg max MAXL "$row|$p")
    done
done
dashes() { printf '%*s' "$1" '' | tr ' ' '-'; }
h1_table() { # peer: lodestar's HTTP/1.1 rows next to the peer's (the same columns for every peer)
    local q=$1 w1 w2 w3 b
    w1=$(( ${#q} + 6 > 11 ? ${#q} + 6 : 11 )); w2=$(( ${#q} + 8 > 16 ? ${#q} + 8 : 16 )); w3=$(( ${#q} + 4 > 9 ? ${#q} + 4 : 9 ))
    printf "%-5s | %${w1}s | %14s | %5s | %${w2}s | %16s | %9s | %${w3}s | %12s\n" "body" "$q req/s" "lodestar req/s" "ratio" \
        "$q p50/p99" "lodestar p50/p99" "p99 ratio" "$q RSS" "lodestar RSS"
    echo "------+$(dashes $((w1 + 2)))+----------------+-------+$(dashes $((w2 + 2)))+------------------+-----------+$(dashes $((w3 + 2)))+-------------"
    for b in $H1_ROWS; do
        printf "%-5s | %${w1}s | %14s | %5s | %${w2}s | %16s | %9s | %$((w3 - 4))s MiB | %8s MiB\n" "$b" \
            "${M_RPS[$b|$q]}" "${M_RPS[$b|lodestar]}" "$(ratio "${M_RPS[$b|lodestar]}" "${M_RPS[$b|$q]}")" \
            "$(fmt_ms "${M_P50[$b|$q]}")/$(fmt_ms "${M_P99[$b|$q]}") ms" \
            "$(fmt_ms "${M_P50[$b|lodestar]}")/$(fmt_ms "${M_P99[$b|lodestar]}") ms" \
            "$(ratio "${M_P99[$b|lodestar]}" "${M_P99[$b|$q]}")" "${M_RSS[$b|$q]}" "${M_RSS[$b|lodestar]}"
    done
}
if [ -n "$H1_ROWS" ]; then
    if [ -n "$PEERS" ]; then
        first=1
        for q in $PEERS; do
            [ "$first" = 1 ] || echo ""
            first=0
            h1_table "$q"
        done
    else
        printf '%-5s | %-8s | %9s | %8s | %8s | %9s\n' "body" "proxy" "req/s" "p50 ms" "p99 ms" "RSS MiB"
        echo "------+----------+-----------+----------+----------+----------"
        for b in $H1_ROWS; do
            for p in $PROXIES; do
                printf '%-5s | %-8s | %9s | %8s | %8s | %9s\n' "$b" "$p" "${M_RPS[$b|$p]}" "$(fmt_ms "${M_P50[$b|$p]}")" \
                    "$(fmt_ms "${M_P99[$b|$p]}")" "${M_RSS[$b|$p]}"
            done
        done
    fi
fi
if [ -n "$H2_ROWS" ]; then
    [ -z "$H1_ROWS" ] || echo ""
    echo "HTTP/2 (h2load -c$H2_CLIENTS -m$H2_STREAMS, /$H2_BODY$(! has_row h2 || echo "; h2: TLS, ALPN")$(! has_row h2c || echo "; h2c: cleartext, prior knowledge"); origin over HTTP/1.1):"
    printf '%-5s | %-8s | %9s | %8s | %8s | %9s | %s\n' "row" "proxy" "req/s" "mean ms" "max ms" "RSS MiB" "protocol (as h2load saw it)"
    echo "------+----------+-----------+----------+----------+-----------+----------------------------"
    for row in $H2_ROWS; do
        for p in $(row_proxies "$row"); do
            printf '%-5s | %-8s | %9s | %8s | %8s | %9s | %s\n' "$row" "$p" "${M_RPS[$row|$p]}" "$(fmt_ms "${M_MEAN[$row|$p]}")" \
                "$(fmt_ms "${M_MAX[$row|$p]}")" "${M_RSS[$row|$p]}" "${PROTO[$row|$p|1]:-?}${TLSINFO[$row|$p|1]:+, ${TLSINFO[$row|$p|1]}}"
        done
    done
    if has_row h2 && want nginx && want lodestar; then
        echo "  ratio lodestar/nginx req/s (h2) = $(ratio "${M_RPS[h2|lodestar]}" "${M_RPS[h2|nginx]}")"
    fi
fi
echo ""
echo "proxy CPU (utime+stime from /proc/PID/stat over the run; ~100% = the proxy's core was saturated):"
for row in $RUN_ROWS; do
    for p in $(row_proxies "$row"); do
        printf '  %-4s %-8s  %4s%% of one core, %6s us/request\n' "$row" "$p" "$(agg median CPUP "$row|$p" | round0)" \
            "$(agg median CPUQ "$row|$p" | awk '{ if ($1 == "n/a") print; else printf "%.1f\n", $1 }')"
    done
done
if [ -n "$PEERS" ]; then
    for q in $PEERS; do
        for row in $RUN_ROWS; do
            [[ " $(row_proxies "$row") " == *" $q "* ]] || continue
            echo "  ratio lodestar/$q CPU per request ($row) = $(ratio "$(agg median CPUQ "$row|lodestar")" "$(agg median CPUQ "$row|$q")")$(paired CPUQ "$row" "$q")"
        done
    done
fi
echo "errors (wrk non-2xx/3xx responses + socket errors; h2load failed requests; all rounds):"
for row in $RUN_ROWS; do
    for p in $(row_proxies "$row"); do
        printf '  %-4s %-8s  %s%s\n' "$row" "$p" "$(agg sum ERR "$row|$p")" \
            "$([[ " ${BAD_BODY[$p]:-} " == *" $row "* ]] && echo "   (WARNING: the check GET returned a different body or protocol than expected, or h2load spoke another protocol)" || true)"
    done
done
if want nginx && want lodestar; then
    targets=()
    [ -z "$H1_ROWS" ] || targets+=("lodestar req/s >= 0.8x nginx, lodestar p99 <= 2x nginx")
    ! has_row h2 || targets+=("h2: lodestar req/s >= 0.8x nginx")
    joined=$(IFS=';'; echo "${targets[*]}")
    echo "targets: ${joined//;/; } (figures above are reported whatever they are)"
    verdict() { awk -v x="$1" -v t="$2" -v op="$3" 'BEGIN { if (x == "n/a") print "MISS"; else if (op == ">=") print (x >= t ? "PASS" : "MISS"); else print (x <= t ? "PASS" : "MISS") }'; }
    for b in $H1_ROWS; do
        rr=$(ratio "${M_RPS[$b|lodestar]}" "${M_RPS[$b|nginx]}")
        pr=$(ratio "${M_P99[$b|lodestar]}" "${M_P99[$b|nginx]}")
        echo "  $(verdict "$rr" 0.8 ">=")  $b req/s: lodestar/nginx = $rr (target >= 0.80)"
        echo "  $(verdict "$pr" 2.0 "<=")  $b p99:   lodestar/nginx = $pr (target <= 2.00)"
    done
    if has_row h2; then
        rr=$(ratio "${M_RPS[h2|lodestar]}" "${M_RPS[h2|nginx]}")
        echo "  $(verdict "$rr" 0.8 ">=")  h2 req/s:  lodestar/nginx = $rr (target >= 0.80)"
    fi
fi
echo ""
[ -z "$H1_ROWS" ] || {
    echo "RSS = peak (VmHWM) of a fresh proxy process per row (nginx: its worker; the idle master is not counted);"
    echo "latency as wrk sees it (closed loop, $CONNECTIONS connections: at saturation it is mostly queueing)."
}
[ -z "$H2_ROWS" ] ||
    echo "HTTP/2 latency: h2load's mean and max time per request (it has no percentiles; closed loop, $((H2_CLIENTS * H2_STREAMS)) streams in flight)."
