#!/usr/bin/env bash
# Benchmarks/topology-scale.sh - scale curves (issue 19 §5): how Lodestar grows with the deployment. For each size
# (regions:edges, default 3:3 50:200 500:2000) a whole topology is generated (Benchmarks/dns/helper.py
# grid-topology: regions at random points, edges spread over them, one service over every edge and one per region up
# to 50), and it reports:
#   - `lodestar check`: wall time and peak RSS (load, decode, validate);
#   - `lodestar dns`: time until it answers, the answer engine's compile time and size (its log line), RSS after
#     start and peak RSS, and under load (ecsload, ECS from 20,000 random public /24s, 100 in flight, the server
#     pinned to CPU 1 and the load to CPU 0): QPS, server CPU per query (user + kernel) and p99;
#   - `lodestar edge` (the first edge, which must hold the whole topology too): time until it listens, RSS.
# Gossip's own scale is the simulator's (Benchmarks/gossip-scale.sh); the generated topologies do not gossip.
#
# Usage:   Benchmarks/topology-scale.sh [--save]
# Env:     SIZES="3:3 50:200 500:2000"  DURATION=5 (s of load per size)  LODESTAR_BIN=.build/release/lodestar
#          GEO=sample|city (city: GeoLite2-City from ~/.cache/lodestar, as Benchmarks/dns.sh --city fetches it)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SIZES=${SIZES:-"3:3 50:200 500:2000"}
DURATION=${DURATION:-5}
LODESTAR_BIN=${LODESTAR_BIN:-$ROOT/.build/release/lodestar}
GEO=${GEO:-sample}
log() { printf '%s\n' "$*" >&2; }
die() { printf 'topology-scale.sh: error: %s\n' "$*" >&2; exit 1; }

if [ "${1:-}" = --save ]; then
    out="$ROOT/Benchmarks/results/$(date -u +%F)-topology-scale.txt"
    "$0" 2>&1 | tee "$out"
    exit "${PIPESTATUS[0]}"
fi
[ -x "$LODESTAR_BIN" ] || die "no lodestar binary at $LODESTAR_BIN (make release, or LODESTAR_BIN=...)"
command -v gcc >/dev/null || die "gcc is needed for ecsload"
case $GEO in
    sample) export GEO_DB="$ROOT/GeoData/lodestar-sample.mmdb" ;;
    city) export GEO_DB="$HOME/.cache/lodestar/GeoLite2-City.mmdb"; [ -f "$GEO_DB" ] || die "no $GEO_DB (run Benchmarks/dns.sh --city once)" ;;
    *) die "GEO is sample or city" ;;
esac

WORK=$(mktemp -d /tmp/lodestar-toposcale.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
gcc -O2 -o "$WORK/ecsload" "$HERE/ecsload.c"
printf 'www.example.test A\n' >"$WORK/queries.txt"
python3 - "$WORK/subnets.txt" <<'PY'
import random, sys
rng = random.Random(20261205)
seen = set()
with open(sys.argv[1], "w") as f:
    while len(seen) < 20000:
        a = rng.randint(1, 223)
        if a in (10, 100, 127, 169, 172, 192, 198): continue
        s = "%d.%d.%d.0/24" % (a, rng.randint(0, 255), rng.randint(0, 255))
        if s not in seen:
            seen.add(s); f.write(s + "\n")
PY
free_port() { python3 "$HERE/dns/helper.py" port 18000 28000 "$1"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
CLK_TCK=$(getconf CLK_TCK)

log "== topology scale: $LODESTAR_BIN ($("$LODESTAR_BIN" version 2>/dev/null | head -n1)), GeoIP $GEO_DB, $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg)"
ROWS=()
for size in $SIZES; do
    r=${size%%:*} e=${size##*:}
    dport=$(free_port 18100) eport=$(free_port 18900)
    topo="$WORK/topology-$r-$e.json"
    python3 "$HERE/dns/helper.py" grid-topology "$ROOT/topology.json" "$r" "$e" 1 "$topo" "$dport" "$eport"
    log "== $r regions, $e edges ($(du -k "$topo" | cut -f1) KiB of JSON)"

    # check: wall time and peak RSS of the whole process
    read -r check_s check_kib < <(python3 - "$LODESTAR_BIN" "$topo" <<'PY'
import resource, subprocess, sys, time
t = time.time()
r = subprocess.run([sys.argv[1], "check", sys.argv[2]], capture_output=True)
if r.returncode != 0: sys.exit(r.stderr.decode())
print("%.2f %d" % (time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
PY
)
    log "  check: ${check_s} s, peak RSS $(mib "$check_kib") MiB"

    # dns: ready time, compile line, RSS, load
    t0=$(date +%s.%N)
    taskset -c 1 "$LODESTAR_BIN" dns --topology "$topo" --threads 1 >"$WORK/dns-$r.log" 2>&1 &
    dpid=$!; PIDS+=("$dpid")
    until dig @127.0.0.1 -p "$dport" +time=1 +tries=1 +short www.example.test A 2>/dev/null | grep -q '^[0-9]'; do
        kill -0 "$dpid" 2>/dev/null || { cat "$WORK/dns-$r.log" >&2; die "lodestar dns exited"; }
        sleep 0.05
    done
    dns_ready=$(elapsed "$t0")
    compiled=$(sed -n 's/.*msg="answer engine compiled".*stats="\([^"]*\)".*/\1/p' "$WORK/dns-$r.log" | head -n1)
    dns_rss=$(kib "$dpid" VmRSS)
    engine_mib=$(grep -o '[0-9.]* MiB$' <<<"$compiled" || true)
    log "  dns: answering after ${dns_ready} s, RSS $(mib "$dns_rss") MiB; answer engine $(cut -d: -f1 <<<"$compiled"), ${engine_mib:-? MiB}"
    taskset -c 0 "$WORK/ecsload" -s 127.0.0.1 -p "$dport" -f "$WORK/subnets.txt" -q "$WORK/queries.txt" -d 2 -c 100 -k 4 >/dev/null
    c0=$(ticks "$dpid")
    taskset -c 0 "$WORK/ecsload" -s 127.0.0.1 -p "$dport" -f "$WORK/subnets.txt" -q "$WORK/queries.txt" -d "$DURATION" -c 100 -k 4 >"$WORK/load-$r.out"
    used=$(( $(ticks "$dpid") - c0 ))
    qps=$(sed -n 's/^RESULT .*qps=\([^ ]*\).*/\1/p' "$WORK/load-$r.out")
    recv=$(sed -n 's/^RESULT .*received=\([^ ]*\).*/\1/p' "$WORK/load-$r.out")
    p99=$(sed -n 's/^RESULT .*p99_ms=\([^ ]*\).*/\1/p' "$WORK/load-$r.out")
    cpuq=$(awk -v t="$used" -v hz="$CLK_TCK" -v n="$recv" 'BEGIN { printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0) }')
    dns_hwm=$(kib "$dpid" VmHWM)
    log "  dns under load: $qps QPS, $cpuq us CPU per query, p99 $p99 ms, peak RSS $(mib "$dns_hwm") MiB"
    kill "$dpid"; wait "$dpid" 2>/dev/null || true

    # edge: the first edge listens; time and RSS
    t0=$(date +%s.%N)
    "$LODESTAR_BIN" edge --topology "$topo" --node edge-00000 --threads 1 >"$WORK/edge-$r.log" 2>&1 &
    epid=$!; PIDS+=("$epid")
    until (exec 3<>"/dev/tcp/127.0.0.1/$eport") 2>/dev/null; do
        kill -0 "$epid" 2>/dev/null || { cat "$WORK/edge-$r.log" >&2; die "lodestar edge exited"; }
        sleep 0.05
    done
    edge_ready=$(elapsed "$t0")
    edge_rss=$(kib "$epid" VmRSS)
    log "  edge: listening after ${edge_ready} s, RSS $(mib "$edge_rss") MiB"
    kill "$epid"; wait "$epid" 2>/dev/null || true

    compile_s=$(sed -n 's/.*compiled in \([0-9.]*\) s.*/\1/p' <<<"$compiled")
    ROWS+=("$(printf '%7s | %5s | %8s | %9s | %9s | %8s | %10s | %8s | %8s | %8s | %6s | %7s | %8s' "$r" "$e" "$check_s" \
        "$(mib "$check_kib")" "$dns_ready" "${compile_s:-?}" "$(mib "$dns_rss")" "$(mib "$dns_hwm")" "${qps%.*}" "$cpuq" "$p99" \
        "$edge_ready" "$(mib "$edge_rss")")")
done

echo "== topology scale ($(date -u +%FT%TZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), GeoIP $GEO): per size"
echo "regions | edges | check s | check MiB | dns up s | compile s | dns RSS MiB | peak MiB |      QPS | CPU us/q | p99 ms | edge up s | edge MiB"
for row in "${ROWS[@]}"; do echo "$row"; done
