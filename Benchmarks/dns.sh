#!/usr/bin/env bash
# Benchmarks/dns.sh - `lodestar dns` against gdnsd 3.x, one after the other, on the same zone (built from
# topology.json) and the same GeoIP database, each server pinned to one CPU and the load generators to another.
#
# Workloads (each on a fresh server process):
#   plain          dnsperf: www.example.test A (~70 %) mixed with the zone's static names, no EDNS
#   fixed-ecs      dnsperf -E 8:HEX: www.example.test A, every query with the same ECS option (FIXED_ECS)
#   ecs            ecsload: www.example.test A with ECS from >= 20,000 random public /24s (and IPv6 /48s),
#                  every query the next subnet of the list
#   plain-ecsload  (not in the default WORKLOADS) ecsload -n: the plain query list, with p99
# Signed rows (SIGNED=1, the default; lodestar only): the same server signing the zone with a key made for the run
#   (`lodestar dnssec keygen`), asked with DO: plain-do (ecsload -n -e -D, the plain list with a DO OPT) against
#   plain-ecsload unsigned, and ecs-do (ecsload -D, the many-subnet ECS load with DO) against ecs unsigned: QPS,
#   CPU/query and peak RSS side by side, target signed QPS >= 0.5x unsigned.
# Scale row (--scale): one service of 3, 100 and 1,000 edges at random points (a generated topology, fixed
#   seed), the ecs workload against each: lodestar, and gdnsd while it can take the datacenters (<= 254). With
#   ROUNDS >= 2, lodestar runs the largest and the smallest size again ROUNDS-1 times (order alternating) and the
#   size ratio is the median of the pairs.
#
# For each server and workload: QPS; server CPU per answered query (utime+stime of the server's
# /proc/PID/stat over the measured run, divided by the queries answered: the figure to judge by, since
# closed-loop QPS swings with other load); p99 (ecsload; dnsperf 2.10 prints none); peak RSS (VmHWM);
# average ECS scope; the agreement of the two servers' answers (one query per subnet, not timed). Then a
# summary: lodestar/gdnsd ratios with PASS/MISS against the targets. A missed target is not an error (exit 0).
#
# Usage:   Benchmarks/dns.sh [--city | --sample] [--scale | --no-scale] [--save] [-h | --help]
#   --city       GEO=city: GeoLite2-City instead of the sample data. The .mmdb is fetched at run time, once,
#                with `pip download --no-deps $GEOLITE_PIP_SPEC` into GEOLITE_CACHE (default
#                ${XDG_CACHE_HOME:-~/.cache}/lodestar); GEO_DB=path uses that file instead. Never in the tree.
#   --sample     GEO=sample (the default): GeoData/lodestar-sample.mmdb, subnets partly from its CSV
#   --scale      SCALE=1: add the scale row; --no-scale: SCALE=0 (the default)
#   --save       SAVE=1: tee everything into Benchmarks/results/DATE-dns.txt (DATE-dns-city.txt with --city;
#                -runN when it exists; RESULT_FILE=path to choose)
# Env:     DURATION=10 (measured s per run) WARMUP=1 (s, same load, not measured) ROUNDS=1 (repeat, the
#          server order alternating; medians shown, RSS the highest peak)
#          (with ROUNDS >= 2 the summary adds "CPU paired": each round's lodestar/gdnsd CPU-per-query ratio, the
#          two runs seconds apart, and their median: steadier than the ratio of the medians when the load drifts)
#          INFLIGHT=100 SOCKETS=4 TIMEOUT_MS=1000 (queries in flight, UDP sockets, lost after)
#          SERVERS="gdnsd lodestar" (also: lodestar-nocache, lodestar with --packet-cache 0)
#          WORKLOADS="plain fixed-ecs ecs" (also: plain-ecsload)
#          FIXED_ECS=subnet (the fixed-ecs workload's ECS subnet; default: the first check subnet)
#          SIGNED=1 (the signed rows; 0: off)
#          RELOADS=3 (SIGHUP reloads of lodestar, one after the other, during one more ecs run of at least 8 s
#          per reload: every query sent must be answered; 0: off)
#          FIXED_QPS=N (extra ecsload runs at N queries/s in the plain and ecs workloads: latency below saturation)
#          SUBNETS_V4=20000 SUBNETS_V6=1000 (distinct ECS subnets: random public /24s and /48s; with the sample
#          data ~70 % inside its CSV's ranges)
#          GEO=sample|city  GEO_DB=path.mmdb  GEO_CSV=path.csv (sample mode only)  GEOLITE_CACHE=dir
#          GEOLITE_PIP_SPEC=maxminddb-geolite2==2018.703  TOPOLOGY=topology.json
#          SCALE=0|1 SCALE_SIZES="3 100 1000" SCALE_SEED=20261204 SCALE_SERVERS="lodestar gdnsd"
#          PIN=1 LOADGEN_CPUS=0 SERVER_CPUS=1 (2 CPUs; more: lower half / upper half)
#          GDNSD_UDP_THREADS=N LODESTAR_THREADS=N (default: number of server CPUs)
#          GDNSD_AUTO_DC_LIMIT=8 (gdnsd's auto_dc_limit, capped at the datacenters; lodestar keeps 8 groups)
#          LODESTAR_BIN=path (else: swift build -c release -Xswiftc -enforce-exclusivity=unchecked --scratch-path .build-bench)
#          PORTS=18400-18479 (servers listen on the first free port of the range, 127.0.0.1, UDP and TCP)
#          READY_TIMEOUT=120 (s for a server to answer after start) ORACLE_MAX=200 (differences looked up
#          with mmdblookup) KEEP=1 (keep the temp dir: configs, logs, answer files)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib/common.sh"
BENCH_TAG=dnsbench

ARGS=("$@")
while [ $# -gt 0 ]; do
    case $1 in
        --city) GEO=city ;;
        --sample) GEO=sample ;;
        --scale) SCALE=1 ;;
        --no-scale) SCALE=0 ;;
        --save) SAVE=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
RELOADS=${RELOADS:-3}
SIGNED=${SIGNED:-1}
INFLIGHT=${INFLIGHT:-100}
SOCKETS=${SOCKETS:-4}
TIMEOUT_MS=${TIMEOUT_MS:-1000}
FIXED_QPS=${FIXED_QPS:-}
FIXED_ECS=${FIXED_ECS:-}
ROUNDS=${ROUNDS:-1}
SERVERS=${SERVERS:-"gdnsd lodestar"}
WORKLOADS=${WORKLOADS:-"plain fixed-ecs ecs"}
TOPOLOGY=${TOPOLOGY:-$ROOT/topology.json}
GEO=${GEO:-sample}
GEOLITE_CACHE=${GEOLITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lodestar}
GEOLITE_PIP_SPEC=${GEOLITE_PIP_SPEC:-maxminddb-geolite2==2018.703}
SUBNETS_V4=${SUBNETS_V4:-20000}
SUBNETS_V6=${SUBNETS_V6:-1000}
SCALE=${SCALE:-0}
SCALE_SIZES=${SCALE_SIZES:-"3 100 1000"}
SCALE_SEED=${SCALE_SEED:-20261204}
SCALE_SERVERS=${SCALE_SERVERS:-"lodestar gdnsd"}
GDNSD_AUTO_DC_LIMIT=${GDNSD_AUTO_DC_LIMIT:-8}
PORTS=${PORTS:-18400-18479}
READY_TIMEOUT=${READY_TIMEOUT:-120}
ORACLE_MAX=${ORACLE_MAX:-200}
PIN=${PIN:-1}
KEEP=${KEEP:-0}

# Targets (lodestar against gdnsd; the scale row against its own smallest size)
T_QPS=1.00        # QPS ratio >= this
T_CPU=1.00        # CPU per query ratio <= this
T_RSS=1.00        # peak RSS ratio <= this
T_SCALE=1.20      # CPU per query at the largest size / at the smallest <= this

case $GEO in
    sample) GEO_CSV=${GEO_CSV-$ROOT/GeoData/lodestar-sample.csv} ;;
    city) GEO_CSV=${GEO_CSV:-} ;;
    *) die "GEO must be sample or city (got '$GEO')" ;;
esac
check_whole_numbers DURATION WARMUP INFLIGHT SOCKETS TIMEOUT_MS ROUNDS SUBNETS_V4 SUBNETS_V6 SCALE_SEED \
    GDNSD_AUTO_DC_LIMIT READY_TIMEOUT ORACLE_MAX
[ "$DURATION" -ge 1 ] || die "DURATION must be whole seconds >= 1"
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
[ -z "$FIXED_QPS" ] || [[ "$FIXED_QPS" =~ ^[0-9]+$ ]] || die "FIXED_QPS must be a whole number of queries/s"
[[ "$PORTS" =~ ^([0-9]+)-([0-9]+)$ ]] || die "PORTS must be FIRST-LAST (got '$PORTS')"
PORT_FIRST=${BASH_REMATCH[1]}; PORT_LAST=${BASH_REMATCH[2]}; PORT_NEXT=$PORT_FIRST
for w in $WORKLOADS; do
    case $w in plain | fixed-ecs | ecs | plain-ecsload) ;; *) die "unknown workload '$w' in WORKLOADS (plain fixed-ecs ecs plain-ecsload)" ;; esac
done
want_lodestar=0; want_gdnsd=0
for s in $SERVERS; do
    case $s in
        lodestar | lodestar-nocache) want_lodestar=1 ;;
        gdnsd) want_gdnsd=1 ;;
        *) die "unknown server '$s' in SERVERS (gdnsd, lodestar, lodestar-nocache)" ;;
    esac
done
if [ "$SCALE" = 1 ]; then
    for s in $SCALE_SERVERS; do
        case $s in lodestar) want_lodestar=1 ;; gdnsd) want_gdnsd=1 ;; *) die "SCALE_SERVERS takes lodestar and gdnsd (got '$s')" ;; esac
    done
fi

# --save: the whole run again, teed into the results file
if [ "${SAVE:-0}" = 1 ] && [ -z "${_DNS_BENCH_TEE:-}" ] && [ -z "${RESULT_FILE:-}" ]; then
    stem=dns; [ "$GEO" = sample ] || stem=dns-$GEO
    RESULT_FILE=$HERE/results/$(date +%F)-$stem.txt
    n=2
    while [ -e "$RESULT_FILE" ]; do RESULT_FILE=$HERE/results/$(date +%F)-$stem-run$n.txt; n=$((n + 1)); done
fi
save_output

# ---------------------------------------------------------------- tools ----
need dnsperf gdnsd gcc dig:bind9-dnsutils taskset:util-linux mmdblookup:mmdb-bin python3 timeout:coreutils
install_missing
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
helper() { "$PY" "$HERE/dns/helper.py" "$@"; }
[ -f "$TOPOLOGY" ] || die "no topology at $TOPOLOGY"

# ------------------------------------------------------------ GeoIP data ----
# GeoLite2-City comes from PyPI's maxminddb-geolite2 (an sdist holding the .mmdb), downloaded with pip once into
# the cache dir; the tree never holds it.
fetch_geolite() {
    local db=$GEOLITE_CACHE/GeoLite2-City.mmdb dl pip=()
    if [ -s "$db" ]; then GEO_DB=$db; return; fi
    mkdir -p "$GEOLITE_CACHE"
    if "$PY" -m pip --version >/dev/null 2>&1; then pip=("$PY" -m pip)
    elif command -v pip3 >/dev/null; then pip=(pip3)
    else die "no pip to fetch GeoLite2-City (install python3-pip, or set GEO_DB=path)"; fi
    dl=$(mktemp -d "$GEOLITE_CACHE/.download.XXXXXX")
    log "== fetching GeoLite2-City: ${pip[*]} download --no-deps $GEOLITE_PIP_SPEC (into $GEOLITE_CACHE)"
    if ! timeout 900 "${pip[@]}" download --no-deps --no-binary :all: -d "$dl" "$GEOLITE_PIP_SPEC" >"$dl/pip.log" 2>&1; then
        tail -n 20 "$dl/pip.log" >&2; rm -rf "$dl"
        die "pip download $GEOLITE_PIP_SPEC failed (set GEO_DB=path to a City-layout .mmdb)"
    fi
    if ! "$PY" - "$dl" "$db.part" <<'PYEOF'
import glob, os, shutil, sys, tarfile, zipfile
dl, out = sys.argv[1], sys.argv[2]
for path in glob.glob(os.path.join(dl, "*")):
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith("GeoLite2-City.mmdb"):
                    with t.extractfile(m) as src, open(out, "wb") as dst: shutil.copyfileobj(src, dst)
                    sys.exit(0)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if n.endswith("GeoLite2-City.mmdb"):
                    with z.open(n) as src, open(out, "wb") as dst: shutil.copyfileobj(src, dst)
                    sys.exit(0)
sys.exit("no GeoLite2-City.mmdb in " + ", ".join(os.listdir(dl)))
PYEOF
    then rm -rf "$dl" "$db.part"; die "could not extract GeoLite2-City.mmdb from the download"; fi
    mv -f "$db.part" "$db"
    rm -rf "$dl"
    GEO_DB=$db
    log "   GeoLite2-City cached at $db ($(du -m "$db" | cut -f1) MiB)"
}
if [ -z "${GEO_DB:-}" ]; then
    if [ "$GEO" = city ]; then fetch_geolite; else GEO_DB=$ROOT/GeoData/lodestar-sample.mmdb; fi
fi
[ -f "$GEO_DB" ] || die "no GeoIP database at $GEO_DB (set GEO_DB=... to use another City-layout mmdb)"
GEO_DB=$(cd "$(dirname "$GEO_DB")" && pwd)/$(basename "$GEO_DB")

make_workdir

# ------------------------------------------------------------- CPU pins ----
NCPU=$(nproc)
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
    if [ "$NCPU" -eq 2 ]; then
        LOADGEN_CPUS=${LOADGEN_CPUS:-0}; SERVER_CPUS=${SERVER_CPUS:-1}
    else
        LOADGEN_CPUS=${LOADGEN_CPUS:-0-$((NCPU / 2 - 1))}; SERVER_CPUS=${SERVER_CPUS:-$((NCPU / 2))-$((NCPU - 1))}
    fi
    LOADGEN_PIN=(taskset -c "$LOADGEN_CPUS")
    SERVER_PIN=(taskset -c "$SERVER_CPUS")
    PIN_NOTE="load generators pinned to CPU $LOADGEN_CPUS, servers to CPU $SERVER_CPUS (taskset)"
else
    LOADGEN_PIN=(); SERVER_PIN=()
    SERVER_CPUS=""
    PIN_NOTE="no CPU pinning (PIN=$PIN, $NCPU CPU(s)): load generator and server share CPUs"
fi
cpu_count() { # "0-2,5" -> 4
    local n=0 part a b parts
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then a=${part%-*}; b=${part#*-}; n=$((n + b - a + 1)); else n=$((n + 1)); fi
    done
    echo "$n"
}
if [ -n "$SERVER_CPUS" ]; then SERVER_NCPU=$(cpu_count "$SERVER_CPUS"); else SERVER_NCPU=$NCPU; fi

# ---------------------------------------------------------------- build ----
log "== building ecsload (gcc -O2) into $WORK"
gcc -O2 -Wall -o "$WORK/ecsload" "$HERE/ecsload.c"

if [ "$want_lodestar" = 1 ]; then
    if [ -z "${LODESTAR_BIN:-}" ]; then
        log "== building lodestar: ${RELEASE_BUILD[*]} --scratch-path .build-bench --product lodestar"
        if ! (cd "$ROOT" && "${RELEASE_BUILD[@]}" --scratch-path .build-bench --product lodestar >"$WORK/swift-build.log" 2>&1); then
            tail -n 40 "$WORK/swift-build.log" >&2
            die "swift build failed (full log: $WORK/swift-build.log; set LODESTAR_BIN=... or SERVERS=gdnsd)"
        fi
        LODESTAR_BIN=$ROOT/.build-bench/release/lodestar
    fi
    [ -x "$LODESTAR_BIN" ] || die "LODESTAR_BIN=$LODESTAR_BIN is not executable"
    lodestar_help=$("$LODESTAR_BIN" dns --help 2>&1 || true)
    LODESTAR_ARGS=()
    if grep -q -- '--threads' <<<"$lodestar_help"; then
        LODESTAR_ARGS+=(--threads "${LODESTAR_THREADS:-$SERVER_NCPU}")
    fi
fi

# ---------------------------------------------------------------- inputs ----
helper queries "$TOPOLOGY" "$WORK/queries.txt" | sed 's/^/  plain workload: /' >&2
printf 'www.example.test A\n' >"$WORK/queries-ecs.txt"
helper subnets "$TOPOLOGY" "$GEO_CSV" "$WORK/subnets.txt" "$WORK/checks.txt" "$SUBNETS_V4" "$SUBNETS_V6" "$GEO_DB" |
    sed 's/^/  ecs workload: /' >&2
NSUBNETS=$(wc -l <"$WORK/subnets.txt")
NSUBNETS4=$(grep -c -v ':' "$WORK/subnets.txt" || true)
[ "$NSUBNETS4" -ge 20000 ] || log "WARNING: only $NSUBNETS4 distinct IPv4 subnets (< 20000)"
if [ -z "$FIXED_ECS" ]; then
    FIXED_ECS=$(awk 'NR == 1 { print $2 }' "$WORK/checks.txt")
    [ -n "$FIXED_ECS" ] || FIXED_ECS=$(grep -v ':' "$WORK/subnets.txt" | head -n1)
fi
FIXED_ECS_HEX=$(helper ecs-hex "$FIXED_ECS")
log "  fixed-ecs workload: ECS $FIXED_ECS in every query (dnsperf -E 8:$FIXED_ECS_HEX)"
mmdb_type=$(mmdblookup --file "$GEO_DB" --ip 0.0.0.0 --verbose 2>/dev/null | sed -n 's/^ *Type: *//p' | head -n1 || true)
log "  GeoIP database: $GEO_DB (type: ${mmdb_type:-unknown})"
if [ "$want_gdnsd" = 1 ] && [ -n "$mmdb_type" ] && [[ "$mmdb_type" != *City* ]]; then
    die "gdnsd's auto_dc_coords needs a database whose type contains 'City' (this one: '$mmdb_type')"
fi
# the topologies: the main one, and the scale row's (one service of N edges at seeded random points)
declare -A TOPO_SRC=([main]=$TOPOLOGY)
if [ "$SCALE" = 1 ]; then
    for n in $SCALE_SIZES; do
        [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "SCALE_SIZES takes whole numbers >= 1 (got '$n')"
        helper scale-topology "$TOPOLOGY" "$n" "$SCALE_SEED" "$WORK/scale-$n.json"
        TOPO_SRC[scale-$n]=$WORK/scale-$n.json
    done
fi
if [ "$want_lodestar" = 1 ]; then
    for t in "${!TOPO_SRC[@]}"; do
        helper lodestar-topology "${TOPO_SRC[$t]}" "$WORK/lodestar-$t.json" "$GEO_DB"
        "$LODESTAR_BIN" check "$WORK/lodestar-$t.json" >"$WORK/check-$t.log" 2>&1 ||
            { cat "$WORK/check-$t.log" >&2; die "lodestar check rejects the $t topology"; }
    done
    if [ "$SIGNED" = 1 ]; then
        # the signed rows' topology: the main one with a zone key made for this run
        mkdir -p "$WORK/keys"
        "$LODESTAR_BIN" dnssec keygen --topology "$WORK/lodestar-main.json" --directory "$WORK/keys" >"$WORK/keygen.log" 2>&1 ||
            { cat "$WORK/keygen.log" >&2; die "lodestar dnssec keygen failed"; }
        python3 - "$WORK/lodestar-main.json" "$WORK/lodestar-main-signed.json" "$(ls "$WORK"/keys/*.private)" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["dns"]["dnssec"] = {"keys": [sys.argv[3]]}
json.dump(t, open(sys.argv[2], "w"), indent=1)
PY
        "$LODESTAR_BIN" check "$WORK/lodestar-main-signed.json" >"$WORK/check-signed.log" 2>&1 ||
            { cat "$WORK/check-signed.log" >&2; die "lodestar check rejects the signed topology"; }
        log "   signed rows: $(grep ' IN DS ' "$WORK/keygen.log" | sed 's/^ *DS for the parent zone: *//')"
    fi
fi

# -------------------------------------------------------------- servers ----
SERVER_PID=""
SERVER_PORT=""
SERVER_LOG=""
READY_S=""
COMPILE_S=""
COMPILE_MIB=""
rss_mib() { # field pid -> MiB from /proc/PID/status
    awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$2/status" 2>/dev/null || echo "?"
}
start_server() { # name topology-tag log-tag
    local name=$1 topo=$2 tag=$3 port t0 ans=""
    port=$(helper port "$PORT_FIRST" "$PORT_LAST" "$PORT_NEXT")
    PORT_NEXT=$((port + 1))
    SERVER_LOG=$WORK/logs/$tag-$name.log
    mkdir -p "$WORK/logs"
    t0=$(date +%s.%N)
    case $name in
        gdnsd)
            local dir="$WORK/gdnsd-$tag"
            rm -rf "$dir"; mkdir -p "$dir/run" "$dir/state"
            helper gdnsd "${TOPO_SRC[$topo]}" "$dir" "$port" "$GEO_DB" "${GDNSD_UDP_THREADS:-$SERVER_NCPU}" "$GDNSD_AUTO_DC_LIMIT"
            t0=$(date +%s.%N)
            "${SERVER_PIN[@]}" gdnsd -c "$dir" start >"$SERVER_LOG" 2>&1 &
            ;;
        lodestar)
            (cd "$ROOT" && exec "${SERVER_PIN[@]}" "$LODESTAR_BIN" dns --topology "$WORK/lodestar-$topo.json" \
                "${LODESTAR_ARGS[@]}" --listen "127.0.0.1:$port") >"$SERVER_LOG" 2>&1 &
            ;;
        lodestar-signed)
            (cd "$ROOT" && exec "${SERVER_PIN[@]}" "$LODESTAR_BIN" dns --topology "$WORK/lodestar-$topo-signed.json" \
                "${LODESTAR_ARGS[@]}" --listen "127.0.0.1:$port") >"$SERVER_LOG" 2>&1 &
            ;;
        lodestar-nocache)
            # The same server with its packet cache off: every query takes the full decode → answer → encode path.
            (cd "$ROOT" && exec "${SERVER_PIN[@]}" "$LODESTAR_BIN" dns --topology "$WORK/lodestar-$topo.json" \
                "${LODESTAR_ARGS[@]}" --packet-cache 0 --listen "127.0.0.1:$port") >"$SERVER_LOG" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    SERVER_PORT=$port
    track "$SERVER_PID"
    while :; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 30 "$SERVER_LOG" >&2
            die "$name exited during startup (log above)"
        fi
        ans=$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" www.example.test A 2>/dev/null | grep -E '^[0-9.]+$' || true)
        [ -n "$ans" ] && break
        awk -v a="$t0" -v b="$(date +%s.%N)" -v l="$READY_TIMEOUT" 'BEGIN { exit !(b - a < l) }' ||
            { tail -n 30 "$SERVER_LOG" >&2; die "$name did not answer within ${READY_TIMEOUT}s"; }
        sleep 0.1
    done
    READY_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    COMPILE_S="-"; COMPILE_MIB="-"
    local stats
    stats=$(sed -n 's/.*answer engine compiled.*stats="compiled in \([0-9.]*\) s:.*; \([0-9.]*\) MiB".*/\1 \2/p' "$SERVER_LOG" | head -n1)
    if [ -n "$stats" ]; then COMPILE_S=${stats% *}; COMPILE_MIB=${stats#* }; fi
    log "  $name pid $SERVER_PID on 127.0.0.1:$port answered www.example.test A (${ans//$'\n'/ }) ${READY_S}s after start," \
        "RSS $(rss_mib VmRSS "$SERVER_PID") MiB$([ "$COMPILE_S" = - ] || echo ", answer engine compiled in ${COMPILE_S}s, $COMPILE_MIB MiB")"
}
stop_server() {
    kill_pids "$SERVER_PID"
    untrack "$SERVER_PID"
    SERVER_PID=""
}

check_answers() { # name
    local name=$1 label subnet region expect cc out ans scope status=0
    [ -s "$WORK/checks.txt" ] || { log "  (no check subnets)"; return; }
    while read -r label subnet region expect cc; do
        out=$(dig +time=2 +tries=2 @127.0.0.1 -p "$SERVER_PORT" www.example.test A +subnet="$subnet" 2>&1 || true)
        ans=$(awk '$1 == "www.example.test." && $4 == "A" { printf "%s ", $5 }' <<<"$out")
        scope=$(sed -n 's/.*CLIENT-SUBNET: *//p' <<<"$out" | head -n1)
        printf '  check %-9s %s %-18s (%s) -> %-12s ECS %-20s expected %s (%s)%s\n' "$name" "$label" "$subnet" "$cc" \
            "${ans:-NONE}" "${scope:-none}" "$expect" "$region" \
            "$([ "${ans% }" = "$expect" ] && echo "" || echo "  <-- MISMATCH")" >&2
        [ -n "$ans" ] || status=1
    done <"$WORK/checks.txt"
    [ "$status" = 0 ] || die "$name gave no answer for a check subnet"
}

# ------------------------------------------------------------- measures ----
# Figures per run, keyed "workload|server|round"; the report shows the median over rounds (RSS: the highest).
declare -A QPS AVG P99 CPUQ CPUP RSS RSSNOW SCOPE FAILED LOST READY COMPS COMPM
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; } # utime + stime of the server (all threads)
user_ticks() { awk '{ print $14 }' "/proc/$SERVER_PID/stat"; }        # utime alone
C0=0; U0=0; T0=0
measure_begin() { C0=$(cpu_ticks); U0=$(user_ticks); T0=$(date +%s.%N); }
measure_end() { # key answered -> CPU us per answered query and server CPU % over the run
    local used=$(( $(cpu_ticks) - C0 )) user=$(( $(user_ticks) - U0 )) el userq
    el=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    CPUQ[$1]=$(awk -v t="$used" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "n/a" }')
    CPUP[$1]=$(awk -v t="$used" -v hz="$CLK_TCK" -v d="$el" 'BEGIN { printf "%.0f", t / hz / d * 100 }')
    # The kernel's share (recvmmsg, sendmmsg, loopback delivery) is the same work for every server; the user share is
    # the server's own.
    userq=$(awk -v t="$user" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "n/a" }')
    log "  server CPU: ${CPUP[$1]}% of one CPU over ${el%.*}s, ${CPUQ[$1]} us per answered query (user ${userq}, kernel the rest)"
}
DNSPERF_T=$((TIMEOUT_MS / 1000 > 0 ? TIMEOUT_MS / 1000 : 1))
run_dnsperf() { # out-file duration dnsperf-args...
    local out=$1 dur=$2; shift 2
    "${LOADGEN_PIN[@]}" timeout $((dur + DNSPERF_T + 30)) dnsperf -s 127.0.0.1 -p "$SERVER_PORT" -l "$dur" -c "$SOCKETS" -T 1 \
        -q "$INFLIGHT" -t "$DNSPERF_T" "$@" >"$out" 2>&1 || { cat "$out" >&2; die "dnsperf failed (or overran) against port $SERVER_PORT"; }
}
store_dnsperf() { # key out-file
    local f=$2 completed noerror
    grep -E 'Queries (sent|completed|lost)|Response codes|Queries per second|Average Latency|Latency StdDev' "$f" | sed 's/^ */    /' >&2
    completed=$(awk '/Queries completed:/ { print $3 }' "$f")
    noerror=$(sed -n 's/.*Response codes:.*NOERROR \([0-9]*\).*/\1/p' "$f"); noerror=${noerror:-0}
    QPS[$1]=$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$f")
    AVG[$1]=$(awk '/Average Latency \(s\):/ { printf "%.3f", $4 * 1000 }' "$f")
    P99[$1]="-"
    FAILED[$1]=$((completed - noerror))
    LOST[$1]=$(awk '/Queries lost:/ { print $3 }' "$f")
    measure_end "$1" "$completed"
}
run_ecsload() { # out-file ecsload-args...
    local out=$1; shift
    "${LOADGEN_PIN[@]}" timeout $((DURATION + TIMEOUT_MS / 1000 + 60)) "$WORK/ecsload" -s 127.0.0.1 -p "$SERVER_PORT" \
        -c "$INFLIGHT" -k "$SOCKETS" -t "$TIMEOUT_MS" "$@" >"$out" || die "ecsload failed (or overran) against port $SERVER_PORT"
}
result_field() { sed -n "s/^RESULT .*\\b$2=\\([^ ]*\\).*/\\1/p" "$1"; }
store_ecsload() { # key out-file
    local f=$2
    sed 's/^/    /' "$f" | grep -v '^    RESULT' >&2
    QPS[$1]=$(result_field "$f" qps)
    AVG[$1]=$(printf '%.3f' "$(result_field "$f" avg_ms)")
    P99[$1]=$(printf '%.3f' "$(result_field "$f" p99_ms)")
    FAILED[$1]=$(result_field "$f" failed)
    LOST[$1]=$(result_field "$f" lost)
    SCOPE[$1]=$(sed -n 's/.*responses with ECS option [0-9]* (avg scope \/\([0-9.]*\)).*/\1/p' "$f")
    [ -n "${SCOPE[$1]}" ] || SCOPE[$1]="-"
    measure_end "$1" "$(result_field "$f" received)"
}
store_server() { # key: peak and current RSS, start-up
    RSS[$1]=$(rss_mib VmHWM "$SERVER_PID"); RSSNOW[$1]=$(rss_mib VmRSS "$SERVER_PID")
    READY[$1]=$READY_S; COMPS[$1]=$COMPILE_S; COMPM[$1]=$COMPILE_MIB
    log "  peak RSS (VmHWM) ${RSS[$1]} MiB, RSS now ${RSSNOW[$1]} MiB"
}
# answers kept for the cross-check (not timed): "subnet  rcode  answer  scope" lines, like ecsload -1
onepass() { # out-file
    "${LOADGEN_PIN[@]}" timeout 300 "$WORK/ecsload" -s 127.0.0.1 -p "$SERVER_PORT" -f "$WORK/subnets.txt" \
        -q "$WORK/queries-ecs.txt" -c 32 -k 1 -t "$TIMEOUT_MS" -1 "$1" >/dev/null || die "ecsload -1 failed"
}
fixed_answer() { # out-file: the fixed-ecs subnet's answer, in the onepass format
    local out ans scope status
    out=$(dig +norec +time=2 +tries=2 @127.0.0.1 -p "$SERVER_PORT" www.example.test A +subnet="$FIXED_ECS" 2>&1 || true)
    status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -n1)
    ans=$(awk '$1 == "www.example.test." && $4 == "A" { print $5; exit }' <<<"$out")
    scope=$(sed -n 's/.*CLIENT-SUBNET: *[^/]*\/[0-9]*\/\([0-9]*\).*/\1/p' <<<"$out" | head -n1)
    printf '%s\t%s\t%s\t%s\n' "$FIXED_ECS" "$([ "$status" = NOERROR ] && echo 0 || echo "${status:-LOST}")" "${ans:--}" "${scope:--1}" >"$1"
}
plain_answers() { # out-file: the answer section of every distinct query of the plain list
    local name type
    sort -u "$WORK/queries.txt" | while read -r name type; do
        printf '## %s %s\n' "$name" "$type"
        dig +norec +noall +answer +time=2 +tries=2 @127.0.0.1 -p "$SERVER_PORT" "$name" "$type" 2>&1 || true
    done >"$1"
}

bench_workload() { # workload server round
    local w=$1 s=$2 r=$3 key="$1|$2|$3" f
    log ""
    log "== round $r/$ROUNDS, $s: $(wlabel "$w")"
    start_server "$s" main "r$r-$w"
    [ "$r" != 1 ] || [ "$w" != "${WORKLOADS%% *}" ] || check_answers "$s"
    case $w in
        plain)
            run_dnsperf "$WORK/warm.out" "$WARMUP" -d "$WORK/queries.txt"
            log "  dnsperf -l $DURATION -c $SOCKETS -q $INFLIGHT (no EDNS), $(wc -l <"$WORK/queries.txt") query lines"
            measure_begin
            run_dnsperf "$WORK/$w-$s-$r.out" "$DURATION" -d "$WORK/queries.txt"
            store_dnsperf "$key" "$WORK/$w-$s-$r.out"
            SCOPE[$key]="-"
            [ "$r" != 1 ] || plain_answers "$WORK/answers-plain-$s.txt"
            if [ -n "$FIXED_QPS" ]; then
                log "  ecsload -n -Q $FIXED_QPS (plain, fixed rate) -d $DURATION"
                measure_begin
                run_ecsload "$WORK/plain-rate-$s-$r.out" -n -q "$WORK/queries.txt" -d "$DURATION" -Q "$FIXED_QPS"
                store_ecsload "plain-rate|$s|$r" "$WORK/plain-rate-$s-$r.out"; SCOPE["plain-rate|$s|$r"]="-"
            fi
            ;;
        plain-do)
            run_ecsload "$WORK/warm.out" -n -e -D -q "$WORK/queries.txt" -d "$WARMUP"
            log "  ecsload -n -e -D (plain, EDNS with DO) -d $DURATION"
            measure_begin
            run_ecsload "$WORK/$w-$s-$r.out" -n -e -D -q "$WORK/queries.txt" -d "$DURATION"
            store_ecsload "$key" "$WORK/$w-$s-$r.out"
            SCOPE[$key]="-"
            ;;
        ecs-do)
            run_ecsload "$WORK/warm.out" -D -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$WARMUP"
            log "  ecsload -D (ECS with DO, $NSUBNETS subnets) -d $DURATION"
            measure_begin
            run_ecsload "$WORK/$w-$s-$r.out" -D -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$DURATION"
            store_ecsload "$key" "$WORK/$w-$s-$r.out"
            ;;
        plain-ecsload)
            run_ecsload "$WORK/warm.out" -n -q "$WORK/queries.txt" -d "$WARMUP"
            log "  ecsload -n (plain, no EDNS) -d $DURATION"
            measure_begin
            run_ecsload "$WORK/$w-$s-$r.out" -n -q "$WORK/queries.txt" -d "$DURATION"
            store_ecsload "$key" "$WORK/$w-$s-$r.out"
            SCOPE[$key]="-"
            ;;
        fixed-ecs)
            run_dnsperf "$WORK/warm.out" "$WARMUP" -d "$WORK/queries-ecs.txt" -E "8:$FIXED_ECS_HEX"
            log "  dnsperf -l $DURATION -c $SOCKETS -q $INFLIGHT -E 8:$FIXED_ECS_HEX (ECS $FIXED_ECS in every query)"
            measure_begin
            run_dnsperf "$WORK/$w-$s-$r.out" "$DURATION" -d "$WORK/queries-ecs.txt" -E "8:$FIXED_ECS_HEX"
            store_dnsperf "$key" "$WORK/$w-$s-$r.out"
            fixed_answer "$WORK/answers-fixed-$s-$r.txt"
            SCOPE[$key]=$(cut -f4 "$WORK/answers-fixed-$s-$r.txt")
            log "  answer for $FIXED_ECS: $(cut -f3 "$WORK/answers-fixed-$s-$r.txt"), scope /${SCOPE[$key]}"
            ;;
        ecs)
            run_ecsload "$WORK/warm.out" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$WARMUP"
            log "  ecsload (ECS, $NSUBNETS subnets) -d $DURATION"
            measure_begin
            run_ecsload "$WORK/$w-$s-$r.out" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$DURATION"
            store_ecsload "$key" "$WORK/$w-$s-$r.out"
            if [ -n "$FIXED_QPS" ]; then
                log "  ecsload -Q $FIXED_QPS (ECS, fixed rate) -d $DURATION"
                measure_begin
                run_ecsload "$WORK/ecs-rate-$s-$r.out" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$DURATION" -Q "$FIXED_QPS"
                store_ecsload "ecs-rate|$s|$r" "$WORK/ecs-rate-$s-$r.out"
            fi
            [ "$r" != 1 ] || onepass "$WORK/answers-ecs-$s.txt"
            ;;
    esac
    kill -0 "$SERVER_PID" 2>/dev/null || die "$s died during the $w workload"
    store_server "$key"
    if [ "$w" = ecs ] && [ "$s" = lodestar ] && [ "$r" = 1 ] && [ "$RELOADS" -gt 0 ]; then
        reload_under_load "$s"
        RELOAD_RSS=$(rss_mib VmHWM "$SERVER_PID")
    fi
    for f in plain-rate ecs-rate; do
        [ -z "${QPS["$f|$s|$r"]:-}" ] || [ -n "${RSS["$f|$s|$r"]:-}" ] || { RSS["$f|$s|$r"]=${RSS[$key]}; RSSNOW["$f|$s|$r"]=${RSSNOW[$key]}; }
    done
    stop_server
}

# RELOADS SIGHUPs, one after the other, during one more ecsload run (long enough for them: at least 8 s each):
# every query sent must be answered (lodestar only; each reload reads the topology and compiles the database again,
# off the answering threads, on the same pinned CPU).
reload_under_load() { # server
    local out="$WORK/reload-$1.out" taken=0 i n t
    local seconds=$(( DURATION > 8 * RELOADS ? DURATION : 8 * RELOADS ))
    local before; before=$(grep -c 'msg=reloaded' "$SERVER_LOG" || true)
    log "  ecsload (ECS, $NSUBNETS subnets) -d $seconds with $RELOADS SIGHUP reloads, one after the other"
    run_ecsload "$out" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$seconds" &
    local load=$!
    for i in $(seq 1 "$RELOADS"); do
        sleep 1
        kill -HUP "$SERVER_PID"
        for t in $(seq 1 150); do  # up to 15 s for this reload to be taken
            n=$(grep -c 'msg=reloaded' "$SERVER_LOG" || true)
            [ "$((n - before))" -ge "$i" ] && break
            sleep 0.1
        done
    done
    wait "$load" || die "ecsload failed during the reloads"
    taken=$(( $(grep -c 'msg=reloaded' "$SERVER_LOG" || true) - before ))
    RELOAD_DONE=$taken; RELOAD_SENT=$(result_field "$out" sent)
    RELOAD_RECV=$(result_field "$out" received); RELOAD_LOST=$(result_field "$out" lost)
    log "  reloads taken $RELOAD_DONE of $RELOADS; sent $RELOAD_SENT, received $RELOAD_RECV, lost $RELOAD_LOST"
}

bench_scale() { # edges server [round]
    local n=$1 s=$2 r=${3:-1} key="scale-$1|$2|${3:-1}"
    log ""
    log "== scale: $n edges, $s: ecs workload ($NSUBNETS subnets)$([ "$r" = 1 ] || echo ", round $r")"
    start_server "$s" "scale-$n" "scale-$n"
    run_ecsload "$WORK/warm.out" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$WARMUP"
    measure_begin
    run_ecsload "$WORK/scale-$n-$s-$r.out" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$DURATION"
    store_ecsload "$key" "$WORK/scale-$n-$s-$r.out"
    [ "$r" != 1 ] || onepass "$WORK/answers-scale-$n-$s.txt"
    kill -0 "$SERVER_PID" 2>/dev/null || die "$s died during the scale run ($n edges)"
    store_server "$key"
    stop_server
}

wlabel() {
    case $1 in
        plain) echo "plain (dnsperf)" ;;
        plain-ecsload) echo "plain (ecsload -n)" ;;
        plain-rate) echo "plain @${FIXED_QPS} qps" ;;
        fixed-ecs) echo "fixed ECS (dnsperf)" ;;
        ecs) echo "ECS $NSUBNETS subnets" ;;
        ecs-rate) echo "ECS @${FIXED_QPS} qps" ;;
        plain-do) echo "plain, DO (ecsload -e -D)" ;;
        ecs-do) echo "ECS $NSUBNETS subnets, DO" ;;
        scale-*) echo "scale ${1#scale-} edges" ;;
    esac
}

log ""
log "== setup: DURATION=${DURATION}s per run (+${WARMUP}s warm-up), $INFLIGHT queries in flight over $SOCKETS sockets, $NCPU CPUs, $ROUNDS round(s)"
log "   $PIN_NOTE"
[ "$want_gdnsd" = 0 ] || log "   gdnsd: udp_threads = ${GDNSD_UDP_THREADS:-$SERVER_NCPU}, auto_dc_limit = min(datacenters, $GDNSD_AUTO_DC_LIMIT)"
[ "$want_lodestar" = 0 ] || log "   lodestar: $LODESTAR_BIN dns --topology T ${LODESTAR_ARGS[*]} --listen 127.0.0.1:PORT"
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOADAVG" 'BEGIN { exit !(l > 0.5) }'; then
    log "   WARNING: load average $LOADAVG before the run: other processes compete for the CPUs, figures will be noisy"
fi
for r in $(seq 1 "$ROUNDS"); do
    # alternate the order each round so neither server always runs first; the servers take turns per workload, so
    # the two runs a per-round ratio compares are seconds apart (the machine's load drifts over minutes)
    if [ $((r % 2)) = 1 ]; then order=$SERVERS; else order=$(printf '%s\n' $SERVERS | tac | tr '\n' ' '); fi
    for w in $WORKLOADS; do
        for s in $order; do bench_workload "$w" "$s" "$r"; done
    done
done
if [ "$SIGNED" = 1 ] && [ "$want_lodestar" = 1 ]; then
    for r in $(seq 1 "$ROUNDS"); do
        [[ " $WORKLOADS " == *" plain-ecsload "* ]] || bench_workload plain-ecsload lodestar "$r"
        bench_workload plain-do lodestar-signed "$r"
        [[ " $WORKLOADS " == *" ecs "* ]] || bench_workload ecs lodestar "$r"
        bench_workload ecs-do lodestar-signed "$r"
    done
fi
SCALE_NOTE=""
if [ "$SCALE" = 1 ]; then
    for n in $SCALE_SIZES; do
        for s in $SCALE_SERVERS; do
            if [ "$s" = gdnsd ] && [ "$n" -gt 254 ]; then
                SCALE_NOTE="gdnsd: not run above 254 edges (one datacenter per edge; a gdnsd geoip map takes at most 254)"
                continue
            fi
            bench_scale "$n" "$s"
        done
    done
    # The size ratio is judged on pairs: lodestar at the largest and the smallest size seconds apart, the order
    # alternating, rounds 2..ROUNDS after the table's round 1 (one pair swings with the machine's load).
    first=${SCALE_SIZES%% *}; last=${SCALE_SIZES##* }
    if [ "$first" != "$last" ]; then
        for r in $(seq 2 "$ROUNDS"); do
            if [ $((r % 2)) = 0 ]; then bench_scale "$last" lodestar "$r"; bench_scale "$first" lodestar "$r"
            else bench_scale "$first" lodestar "$r"; bench_scale "$last" lodestar "$r"; fi
        done
    fi
fi
LOADAVG_END=$(cut -d' ' -f1 /proc/loadavg)

# ---------------------------------------------------------------- report ----
ratio() { # a b -> a/b
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || a == "n/a" || b == "n/a" || a == "?" || b == "?" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
verdict() { # ratio op target -> PASS|MISS|-
    awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN { if (r == "n/a" || r == "") { print "-"; exit }
        ok = (op == ">=") ? (r + 0 >= t + 0) : (r + 0 <= t + 0); print ok ? "PASS" : "MISS" }'
}
agg() { # median|max  array-name  key-prefix -> over rounds
    local how=$1 vals=() r v
    local -n arr=$2
    for r in $(seq 1 "$ROUNDS"); do
        v=${arr[$3|$r]:-}
        [ -n "$v" ] && vals+=("$v")
    done
    [ ${#vals[@]} -gt 0 ] || { echo "n/a"; return; }
    [[ "${vals[0]}" =~ ^[0-9.]+$ ]] || { echo "${vals[0]}"; return; }
    if [ "$how" = max ]; then
        printf '%s\n' "${vals[@]}" | sort -g | tail -n1
    else
        printf '%s\n' "${vals[@]}" | median
    fi
}
agree() { # kind server-a server-b [file-tag] -> "same total pct" from the helper's AGREE line
    local kind=$1 a=$2 b=$3 tag=${4:-} line
    case $kind in
        plain) line=$(helper compare-plain "$a" "$WORK/answers-plain-$a.txt" "$b" "$WORK/answers-plain-$b.txt" | grep '^AGREE') ;;
        fixed) line=$(helper compare "$a" "$WORK/answers-fixed-$a-1.txt" "$b" "$WORK/answers-fixed-$b-1.txt" "$TOPOLOGY" "$GEO_DB" 0 | grep '^AGREE') ;;
        ecs)
            local topo=$TOPOLOGY
            [ "$tag" = ecs ] || topo=${TOPO_SRC[$tag]}
            line=$(helper compare "$a" "$WORK/answers-$tag-$a.txt" "$b" "$WORK/answers-$tag-$b.txt" "$topo" "$GEO_DB" 0 | grep '^AGREE') ;;
    esac
    awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } printf "%d %d %.2f", v["same"], v["total"], v["pct"] }' <<<"$line"
}

REPORT_WORKLOADS=""
for w in $WORKLOADS; do
    REPORT_WORKLOADS="$REPORT_WORKLOADS $w"
    [ -z "$FIXED_QPS" ] || { [ "$w" != plain ] || REPORT_WORKLOADS="$REPORT_WORKLOADS plain-rate"; }
    [ -z "$FIXED_QPS" ] || { [ "$w" != ecs ] || REPORT_WORKLOADS="$REPORT_WORKLOADS ecs-rate"; }
done
both=0; [ "$want_gdnsd" = 1 ] && [[ " $SERVERS " == *" lodestar "* ]] && [[ " $SERVERS " == *" gdnsd "* ]] && both=1

echo ""
echo "== DNS benchmark: $SERVERS   (gdnsd $(dpkg-query -W -f='${Version}' gdnsd 2>/dev/null || echo '?')${LODESTAR_BIN:+; lodestar: $LODESTAR_BIN $("$LODESTAR_BIN" --version 2>/dev/null || true)})"
echo "   $(date -u +%FT%TZ); ${DURATION}s per run after ${WARMUP}s warm-up, $INFLIGHT in flight over $SOCKETS sockets, $ROUNDS round(s)$([ "$ROUNDS" = 1 ] || echo ' (median shown; RSS: highest peak)')"
echo "   $PIN_NOTE; load average $LOADAVG at start, $LOADAVG_END at the end"
echo "   zone: $TOPOLOGY; GeoIP ($GEO): $GEO_DB (${mmdb_type:-?})"
echo "   ECS: $NSUBNETS distinct client subnets ($NSUBNETS4 IPv4 /24s); fixed ECS: $FIXED_ECS"
echo ""
echo "per server and workload (CPU us/q = server utime+stime per answered query; scope = average ECS scope prefix length):"
hdr='%-22s | %-16s | %9s | %8s | %5s | %7s | %7s | %8s | %8s | %7s | %6s | %s\n'
printf "$hdr" "workload" "server" "QPS" "CPU us/q" "CPU%" "avg ms" "p99 ms" "peak RSS" "RSS now" "scope" "failed" "lost"
printf '%s\n' "-----------------------+------------------+-----------+----------+-------+---------+---------+----------+----------+---------+--------+-----"
for w in $REPORT_WORKLOADS; do
    for s in $SERVERS; do
        k="$w|$s"
        printf "$hdr" "$(wlabel "$w")" "$s" "$(agg median QPS "$k")" "$(agg median CPUQ "$k")" "$(agg median CPUP "$k")" \
            "$(agg median AVG "$k")" "$(agg median P99 "$k")" "$(agg max RSS "$k")" "$(agg max RSSNOW "$k")" \
            "$(agg median SCOPE "$k")" "$(agg max FAILED "$k")" "$(agg max LOST "$k")"
    done
done
echo ""
echo "start-up (first answer after exec; lodestar: answer engine compile time and size from its log):"
for s in $SERVERS; do
    w=${WORKLOADS##* }
    printf '  %-16s ready in %ss%s\n' "$s" "${READY[$w|$s|1]:-?}" \
        "$([ "${COMPS[$w|$s|1]:--}" = - ] || echo ", compiled in ${COMPS[$w|$s|1]}s, ${COMPM[$w|$s|1]} MiB")"
done

if [ "$both" = 1 ]; then
    echo ""
    echo "answer cross-check gdnsd vs lodestar (not timed):"
    if [[ " $WORKLOADS " == *" plain "* ]]; then
        echo " plain: the answer section of each distinct query name/type (dig, no EDNS):"
        helper compare-plain gdnsd "$WORK/answers-plain-gdnsd.txt" lodestar "$WORK/answers-plain-lodestar.txt" | grep -v '^AGREE'
        ag=$(agree plain gdnsd lodestar)
        read -r a_same a_total a_pct <<<"$ag"
        echo "  same records (TTLs aside) for $a_same of the $a_total queries ($a_pct%)"
    fi
    if [[ " $WORKLOADS " == *" fixed-ecs "* ]]; then
        printf ' fixed ECS %s: gdnsd %s /%s, lodestar %s /%s\n' "$FIXED_ECS" \
            "$(cut -f3 "$WORK/answers-fixed-gdnsd-1.txt")" "$(cut -f4 "$WORK/answers-fixed-gdnsd-1.txt")" \
            "$(cut -f3 "$WORK/answers-fixed-lodestar-1.txt")" "$(cut -f4 "$WORK/answers-fixed-lodestar-1.txt")"
    fi
    if [[ " $WORKLOADS " == *" ecs "* ]]; then
        echo " ECS: www.example.test A, one query per subnet:"
        helper compare gdnsd "$WORK/answers-ecs-gdnsd.txt" lodestar "$WORK/answers-ecs-lodestar.txt" "$TOPOLOGY" "$GEO_DB" "$ORACLE_MAX" |
            grep -v -E '^(AGREE|SCOPE) '
    fi
fi

if [ "$SCALE" = 1 ]; then
    echo ""
    echo "scale row: one service of N edges at random points (seed $SCALE_SEED), ECS workload ($NSUBNETS subnets):"
    shdr='%-6s | %-9s | %9s | %8s | %5s | %7s | %8s | %8s | %7s | %9s | %11s | %7s | %s\n'
    printf "$shdr" "edges" "server" "QPS" "CPU us/q" "CPU%" "p99 ms" "peak RSS" "RSS now" "ready s" "compile s" "compile MiB" "scope" "agreement with gdnsd"
    printf '%s\n' "-------+-----------+-----------+----------+-------+---------+----------+----------+---------+-----------+-------------+---------+---------------------"
    for n in $SCALE_SIZES; do
        for s in $SCALE_SERVERS; do
            k="scale-$n|$s|1"
            [ -n "${QPS[$k]:-}" ] || continue
            ag="-"
            if [ "$s" = lodestar ] && [ -s "$WORK/answers-scale-$n-gdnsd.txt" ]; then
                ag=$(agree ecs gdnsd lodestar "scale-$n" | awk '{ printf "%d/%d (%s%%)", $1, $2, $3 }')
            fi
            printf "$shdr" "$n" "$s" "${QPS[$k]}" "${CPUQ[$k]}" "${CPUP[$k]}" "${P99[$k]}" "${RSS[$k]}" "${RSSNOW[$k]}" \
                "${READY[$k]}" "${COMPS[$k]}" "${COMPM[$k]}" "${SCOPE[$k]}" "$ag"
        done
    done
    [ -z "$SCALE_NOTE" ] || echo "  $SCALE_NOTE"
    for n in $SCALE_SIZES; do
        [ -s "$WORK/answers-scale-$n-gdnsd.txt" ] && [ -s "$WORK/answers-scale-$n-lodestar.txt" ] || continue
        echo " cross-check at $n edges:"
        helper compare gdnsd "$WORK/answers-scale-$n-gdnsd.txt" lodestar "$WORK/answers-scale-$n-lodestar.txt" \
            "${TOPO_SRC[scale-$n]}" "$GEO_DB" "$ORACLE_MAX" | grep -v -E '^(AGREE|SCOPE) '
    done
fi

# ---------------------------------------------------------------- summary ----
echo ""
echo "== summary: lodestar / gdnsd, targets (PASS/MISS; a MISS does not fail the run)"
sfmt='%-22s | %-16s | %11s | %11s | %8s | %-8s | %s\n'
printf "$sfmt" "workload" "figure" "gdnsd" "lodestar" "ratio" "target" "result"
printf '%s\n' "-----------------------+------------------+-------------+-------------+----------+----------+-------"
PASSES=0; MISSES=0
PAIRED_NOTE=""
paired() { # array-name workload -> each round's lodestar/gdnsd ratio (the two runs of a round are seconds apart)
    local -n arr=$1
    local r out=""
    for r in $(seq 1 "$ROUNDS"); do out+="$(ratio "${arr[$2|lodestar|$r]:-}" "${arr[$2|gdnsd|$r]:-}") "; done
    echo "${out% }"
}
paired_median() { # array-name workload -> the median of `paired`
    paired "$1" "$2" | tr ' ' '\n' | grep -v n/a | median | awk '$1 == "n/a" { print; next } { printf "%.2f\n", $1 }'
}
row() { # workload figure g l ratio target-op target-value
    local res="-" tgt="-"
    if [ -n "$6" ]; then res=$(verdict "$5" "$6" "$7"); tgt="$6 $7"; fi
    case $res in PASS) PASSES=$((PASSES + 1)) ;; MISS) MISSES=$((MISSES + 1)) ;; esac
    printf "$sfmt" "$1" "$2" "$3" "$4" "$5" "$tgt" "$res"
}
if [ "$both" = 1 ]; then
    for w in $REPORT_WORKLOADS; do
        lbl=$(wlabel "$w")
        gq=$(agg median QPS "$w|gdnsd"); lq=$(agg median QPS "$w|lodestar")
        gc=$(agg median CPUQ "$w|gdnsd"); lc=$(agg median CPUQ "$w|lodestar")
        gp=$(agg median P99 "$w|gdnsd"); lp=$(agg median P99 "$w|lodestar")
        gr=$(agg max RSS "$w|gdnsd"); lr=$(agg max RSS "$w|lodestar")
        gs=$(agg median SCOPE "$w|gdnsd"); ls=$(agg median SCOPE "$w|lodestar")
        case $w in *-rate) qop="" ;; *) qop=">=" ;; esac
        row "$lbl" "QPS" "$gq" "$lq" "$(ratio "$lq" "$gq")" "$qop" "$T_QPS"
        row "" "CPU us/query" "$gc" "$lc" "$(ratio "$lc" "$gc")" "<=" "$T_CPU"
        if [ "$ROUNDS" -ge 2 ]; then
            row "" "CPU paired median" "-" "-" "$(paired_median CPUQ "$w")" "" ""
            PAIRED_NOTE+="  $(wlabel "$w"): lodestar/gdnsd CPU per query, round by round: $(paired CPUQ "$w")"$'\n'
        fi
        row "" "p99 ms" "$gp" "$lp" "$(ratio "$lp" "$gp")" "" ""
        row "" "peak RSS MiB" "$gr" "$lr" "$(ratio "$lr" "$gr")" "<=" "$T_RSS"
        if [ "$gs" != "-" ] && [ "$gs" != n/a ]; then
            row "" "avg scope /len" "$gs" "$ls" "$(ratio "$ls" "$gs")" "<=" "1.00"
        fi
        ag=""
        case $w in
            plain) ag=$(agree plain gdnsd lodestar) ;;
            fixed-ecs) ag=$(agree fixed gdnsd lodestar) ;;
            ecs) ag=$(agree ecs gdnsd lodestar ecs) ;;
        esac
        if [ -n "$ag" ]; then
            read -r a_same a_total a_pct <<<"$ag"
            row "" "agreement" "same" "$a_same/$a_total" "$a_pct%" "" ""
        fi
    done
fi
if [ "$SCALE" = 1 ]; then
    first=${SCALE_SIZES%% *}; last=${SCALE_SIZES##* }
    for n in $SCALE_SIZES; do
        k="scale-$n|lodestar|1"
        [ -n "${CPUQ[$k]:-}" ] || continue
        if [ -n "${CPUQ[scale-$n|gdnsd|1]:-}" ]; then
            row "scale $n edges" "CPU us/query" "${CPUQ[scale-$n|gdnsd|1]}" "${CPUQ[$k]}" "$(ratio "${CPUQ[$k]}" "${CPUQ[scale-$n|gdnsd|1]}")" "<=" "$T_CPU"
            row "" "QPS" "${QPS[scale-$n|gdnsd|1]}" "${QPS[$k]}" "$(ratio "${QPS[$k]}" "${QPS[scale-$n|gdnsd|1]}")" ">=" "$T_QPS"
            row "" "peak RSS MiB" "${RSS[scale-$n|gdnsd|1]}" "${RSS[$k]}" "$(ratio "${RSS[$k]}" "${RSS[scale-$n|gdnsd|1]}")" "<=" "$T_RSS"
        else
            row "scale $n edges" "CPU us/query" "-" "${CPUQ[$k]}" "" "" ""
            row "" "peak RSS MiB" "-" "${RSS[$k]}" "" "" ""
        fi
        row "" "compile s / MiB" "" "${COMPS[$k]} / ${COMPM[$k]}" "" "" ""
    done
    if [ -n "${RELOAD_SENT:-}" ]; then
        row "reload under ECS load" "reloads taken" "" "$RELOAD_DONE of $RELOADS" "" "" ""
        row "" "lost queries" "" "$RELOAD_LOST of $RELOAD_SENT" "$RELOAD_LOST" "<=" "0"
        row "" "peak RSS MiB" "" "${RELOAD_RSS:-?}" "" "" ""
    fi
    if [ -n "${CPUQ[scale-$first|lodestar|1]:-}" ] && [ -n "${CPUQ[scale-$last|lodestar|1]:-}" ] && [ "$first" != "$last" ]; then
        pairs=()
        for r in $(seq 1 "$ROUNDS"); do
            pr=$(ratio "${CPUQ[scale-$last|lodestar|$r]:-}" "${CPUQ[scale-$first|lodestar|$r]:-}")
            [ "$pr" = n/a ] || pairs+=("$pr")
        done
        sm=$(printf '%s\n' "${pairs[@]}" | median | awk '$1 == "n/a" { print; next } { printf "%.2f\n", $1 }')
        row "scale lodestar" "CPU/q $last:$first" "" "" "$sm" "<=" "$T_SCALE"
        PAIRED_NOTE+="  scale, lodestar CPU per query at $last edges / at $first, pair by pair (median above): ${pairs[*]}"$'\n'
    fi
fi
if [ "$SIGNED" = 1 ] && [ -n "${QPS[ecs-do|lodestar-signed|1]:-}" ]; then
    echo ""
    echo "signed answers (lodestar signing with a key made for the run, queries with DO) against the same server unsigned:"
    printf "$sfmt" "workload" "figure" "unsigned" "signed" "ratio" "target" "result"
    for pair in "plain-ecsload plain-do" "ecs ecs-do"; do
        read -r u d <<<"$pair"
        uq=$(agg median QPS "$u|lodestar"); dq=$(agg median QPS "$d|lodestar-signed")
        uc=$(agg median CPUQ "$u|lodestar"); dc=$(agg median CPUQ "$d|lodestar-signed")
        ur=$(agg max RSS "$u|lodestar"); dr=$(agg max RSS "$d|lodestar-signed")
        row "$(wlabel "$d")" "QPS" "$uq" "$dq" "$(ratio "$dq" "$uq")" ">=" "0.50"
        row "" "CPU us/query" "$uc" "$dc" "$(ratio "$dc" "$uc")" "" ""
        row "" "peak RSS MiB" "$ur" "$dr" "$(ratio "$dr" "$ur")" "" ""
    done
fi
echo ""
[ -z "$PAIRED_NOTE" ] || printf 'per round (the runs compared are seconds apart):\n%s\n' "$PAIRED_NOTE"
echo "targets: QPS >= ${T_QPS}x and CPU/query <= ${T_CPU}x gdnsd's (plain, fixed ECS, many-subnet ECS); average ECS scope"
echo "no longer than gdnsd's (a shorter prefix is a wider scope); peak RSS <= ${T_RSS}x gdnsd's; scale: CPU/query with"
echo "the most edges within ${T_SCALE}x of the fewest. $PASSES PASS, $MISSES MISS. CPU/query is the figure to judge by:"
echo "closed-loop QPS moves with whatever else runs on the machine."
exit 0
