#!/usr/bin/env bash
# Benchmarks/dns.sh - `lodestar dns` vs gdnsd 3.x, one after the other, on the
# same zone (built from topology.json) and the same GeoIP database.
#
# Workloads:
#   plain  www.example.test A mixed with static names, no EDNS:
#          measured with dnsperf (QPS, avg) and with ecsload -n (QPS, avg, p99)
#   ecs    www.example.test A with EDNS Client Subnet from >= 10,000 distinct
#          client subnets (IPv4 /24 and IPv6 /48), measured with ecsload
#
# Usage:   Benchmarks/dns.sh                   (see Benchmarks/README.md)
# Env:     DURATION=10 WARMUP=1 INFLIGHT=100 SOCKETS=4 SERVERS="gdnsd lodestar"
#          LODESTAR_BIN=path  GEO_DB=path.mmdb  GEO_CSV=path.csv  TOPOLOGY=path
#          SUBNETS_V4=12000 SUBNETS_V6=1000  PIN=1 LOADGEN_CPUS=0 SERVER_CPUS=1
#          FIXED_QPS=N (extra runs at a fixed N queries/s: latency below saturation)
#          ROUNDS=N (repeat, alternating the server order; report the median)
#          GDNSD_UDP_THREADS=N LODESTAR_THREADS=N (default: number of server CPUs)
#          KEEP=1 (keep the temp dir with configs, logs and answer files)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
INFLIGHT=${INFLIGHT:-100}
SOCKETS=${SOCKETS:-4}
TIMEOUT_MS=${TIMEOUT_MS:-1000}
FIXED_QPS=${FIXED_QPS:-}
ROUNDS=${ROUNDS:-1}
SERVERS=${SERVERS:-"gdnsd lodestar lodestar-nocache"}
TOPOLOGY=${TOPOLOGY:-$ROOT/topology.json}
GEO_DB=${GEO_DB:-$ROOT/GeoData/lodestar-sample.mmdb}
GEO_CSV=${GEO_CSV:-$ROOT/GeoData/lodestar-sample.csv}
SUBNETS_V4=${SUBNETS_V4:-12000}
SUBNETS_V6=${SUBNETS_V6:-1000}
READY_TIMEOUT=${READY_TIMEOUT:-60}
PIN=${PIN:-1}
KEEP=${KEEP:-0}

log() { printf '%s\n' "$*" >&2; }
die() { printf 'dns.sh: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools ----
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v gdnsd >/dev/null || missing+=(gdnsd)
command -v gcc >/dev/null || missing+=(gcc)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
command -v taskset >/dev/null || missing+=(util-linux)
[ -x /usr/bin/python3 ] || command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

[ -f "$TOPOLOGY" ] || die "no topology at $TOPOLOGY"
[ -f "$GEO_DB" ] || die "no GeoIP database at $GEO_DB (set GEO_DB=... to use another City-layout mmdb)"
GEO_DB=$(cd "$(dirname "$GEO_DB")" && pwd)/$(basename "$GEO_DB")
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 1 ] || die "DURATION must be whole seconds >= 1"
[ -z "$FIXED_QPS" ] || [[ "$FIXED_QPS" =~ ^[0-9]+$ ]] || die "FIXED_QPS must be a whole number of queries/s"
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"

WORK=$(mktemp -d /tmp/lodestar-dnsbench.XXXXXX)
declare -a PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    sleep 0.2
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# ------------------------------------------------------- python helper ----
cat >"$WORK/helper.py" <<'PYEOF'
import csv, ipaddress, json, math, os, random, socket, sys

def load_topology(path):
    with open(path) as f:
        return json.load(f)

def fq(name, zone):
    if name.endswith("."): return name
    if name == "@": return zone + "."
    if name == zone or name.endswith("." + zone): return name + "."
    return name + "." + zone + "."

def owner(name, zone):
    if name in ("@", ""): return "@"
    n = name.rstrip(".")
    if n == zone: return "@"
    if n.endswith("." + zone): return n[: -len(zone) - 1]
    return n

def region_order(topo, svc):
    edges = {e["id"]: e for e in topo["edges"]}
    regs = []
    for eid in svc["edges"]:
        r = edges[eid]["region"]
        if r not in regs: regs.append(r)
    fb = svc.get("fallbackRegion")
    if fb in regs: regs.remove(fb); regs.insert(0, fb)
    return regs

def cmd_gdnsd(topo_path, outdir, port, mmdb, udp_threads):
    topo = load_topology(topo_path)
    z = topo["zone"]; zone = z["name"].rstrip(".")
    soa = z["soa"]
    regions = {r["id"]: r for r in topo["regions"]}
    edges = {e["id"]: e for e in topo["edges"]}
    lines = ["$TTL %d" % soa.get("ttl", 3600),
             "@ SOA %s %s %d %d %d %d %d" % (fq(soa["primary"], zone), fq(soa["contact"], zone),
                soa["serial"], soa["refresh"], soa["retry"], soa["expire"], soa["minimum"])]
    for ns in z.get("nameservers", []):
        lines.append("@ NS %s" % fq(ns["name"], zone))
        if fq(ns["name"], zone).endswith(zone + "."):
            for a in ns.get("addresses", []):
                lines.append("%s %s %s" % (owner(ns["name"], zone), "AAAA" if ":" in a else "A", a))
    for r in z.get("records", []):
        v = r["value"]
        if r["type"].upper() == "TXT" and not v.startswith('"'):
            v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        ttl = (" %d" % r["ttl"]) if "ttl" in r else ""
        lines.append("%s%s %s %s" % (owner(r["name"], zone), ttl, r["type"].upper(), v))
    maps, resources = [], []
    for name, svc in topo.get("services", {}).items():
        regs = region_order(topo, svc)
        coords = ", ".join("%s => [ %s, %s ]" % (r, regions[r]["latitude"], regions[r]["longitude"]) for r in regs)
        nets = []
        for o in svc.get("overrides", []):
            first = o["region"]
            nets.append("%s => [ %s ]" % (o["prefix"], ", ".join([first] + [r for r in regs if r != first])))
        dcmap = []
        for r in regs:
            addrs = [a for eid in svc["edges"] if edges[eid]["region"] == r for a in edges[eid]["addresses"]]
            dcmap.append("%s => [ %s ]" % (r, ", ".join(addrs)))
        maps.append("""      %s => {
        geoip2_db => "%s"
        datacenters => [ %s ]
        auto_dc_coords => { %s }
        auto_dc_limit => %d
%s      }""" % (name, mmdb, ", ".join(regs), coords, len(regs),
              ("        nets => { %s }\n" % ", ".join(nets)) if nets else ""))
        resources.append("      %s => { map => %s, dcmap => { %s } }" % (name, name, ", ".join(dcmap)))
        lines.append("%s %d DYNA geoip!%s" % (owner(name, zone), svc.get("ttl", 30), name))
    os.makedirs(os.path.join(outdir, "zones"), exist_ok=True)
    with open(os.path.join(outdir, "zones", zone), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(outdir, "config"), "w") as f:
        f.write("""options => {
  listen => [ "127.0.0.1:%d" ]
  run_dir => "%s/run"
  state_dir => "%s/state"
  udp_threads => %d
  tcp_threads => 1
  edns_client_subnet => true
}
plugins => {
  geoip => {
    maps => {
%s
    }
    resources => {
%s
    }
  }
}
""" % (port, outdir, outdir, udp_threads, "\n".join(maps), "\n".join(resources)))

def cmd_lodestar_topology(topo_path, out, mmdb):
    # Same topology, with the GeoIP database path made absolute (GEO_DB), and without gossip and the admin
    # listener: gdnsd runs alone too, and a DNS node gossiping with edges that never come would see them die.
    topo = load_topology(topo_path)
    topo.setdefault("dns", {})["geoDatabase"] = mmdb
    topo.pop("gossip", None)
    topo["dns"].pop("gossip", None)
    topo["dns"].pop("admin", None)
    for e in topo.get("edges", []):
        e.pop("gossip", None)
    with open(out, "w") as f:
        json.dump(topo, f, indent=2)

def cmd_queries(topo_path, out):
    topo = load_topology(topo_path)
    zone = topo["zone"]["name"].rstrip(".")
    static = [(zone, "SOA"), (zone, "NS")]
    for r in topo["zone"].get("records", []):
        q = (fq(r["name"], zone).rstrip("."), r["type"].upper())
        if q[1] == "CNAME": q = (q[0], "A")
        if q not in static: static.append(q)
    svcs = list(topo.get("services", {}).keys())
    dyn = [(fq(s, zone).rstrip("."), "A") for s in svcs]
    n_dyn = max(1, round(len(static) * 7 / 3))  # ~70% GSLB names
    lines = ["%s %s" % q for q in static]
    for i in range(n_dyn):
        lines.append("%s %s" % dyn[i % len(dyn)])
    random.Random(1).shuffle(lines)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%d query lines: %d static, %d for %s" % (len(lines), len(static), n_dyn, ",".join(d[0] for d in dyn)))

def read_csv(path):
    rows = []
    if not path or not os.path.exists(path): return rows
    with open(path, newline="") as f:
        for rec in csv.reader(f):
            if not rec or rec[0].lstrip().startswith("#"): continue
            try:
                net = ipaddress.ip_network(rec[0].strip(), strict=False)
            except ValueError:
                continue  # header
            def fl(i):
                try: return float(rec[i])
                except (IndexError, ValueError): return None
            rows.append((net, fl(1), fl(2), (rec[3].strip() if len(rec) > 3 else ""), (rec[4].strip() if len(rec) > 4 else "")))
    return rows

def gc_km(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))

def pick_in(net, rng, v4len=24, v6len=48):
    target = v4len if net.version == 4 else v6len
    if net.prefixlen >= target:
        return net
    span = 1 << (target - net.prefixlen)
    k = rng.randrange(span)
    base = int(net.network_address) + (k << ((32 if net.version == 4 else 128) - target))
    return ipaddress.ip_network((base, target))

def cmd_subnets(topo_path, csv_path, out, check_out, n4, n6):
    rng = random.Random(20261125)
    topo = load_topology(topo_path)
    rows = read_csv(csv_path)
    chosen, seen = [], set()
    def add(net):
        if net not in seen:
            seen.add(net); chosen.append(net); return True
        return False
    for svc in topo.get("services", {}).values():
        for o in svc.get("overrides", []):
            add(pick_in(ipaddress.ip_network(o["prefix"], strict=False), rng))
    v4rows = [r[0] for r in rows if r[0].version == 4]
    v6rows = [r[0] for r in rows if r[0].version == 6]
    def fill(pool, want, version):
        got = 0
        # ~70% inside the sample CSV's ranges, round-robin over them
        tries = 0
        goal = int(want * 0.7) if pool else 0
        while pool and got < goal and tries < want * 20:
            net = pool[tries % len(pool)]
            tries += 1
            if add(pick_in(net, rng)): got += 1
        from_csv = got
        # the rest: random other addresses (public-looking unicast)
        tries = 0
        while got < want and tries < want * 50:
            tries += 1
            if version == 4:
                first = rng.choice([x for x in range(1, 224) if x not in (10, 127)])
                net = ipaddress.ip_network(((first << 24) | (rng.getrandbits(16) << 8), 24))
            else:
                net = ipaddress.ip_network(((0x2 << 124) | (rng.getrandbits(45) << 80), 48))
            if add(net): got += 1
        return from_csv
    in4 = fill(v4rows, n4, 4)
    in6 = fill(v6rows, n6, 6)
    rng.shuffle(chosen)
    with open(out, "w") as f:
        for n in chosen: f.write(str(n) + "\n")
    # EU / US check subnets with the answer expected by the nearest-region rule
    regions = topo["regions"]
    edges = {e["id"]: e for e in topo["edges"]}
    def expect(lat, lon):
        r = min(regions, key=lambda r: gc_km(lat, lon, r["latitude"], r["longitude"]))
        for svc in topo.get("services", {}).values():
            for eid in svc["edges"]:
                if edges[eid]["region"] == r["id"]:
                    return r["id"], edges[eid]["addresses"][0]
        return r["id"], "?"
    checks = []
    for label, cc_pref, cont in (("EU", ("DE", "FR", "GB", "NL"), "EU"), ("US", ("US",), "NA")):
        cands = [r for r in rows if r[0].version == 4 and r[1] is not None and r[2] is not None and r[4] == cont]
        cands.sort(key=lambda r: (not r[0].is_global, r[3] not in cc_pref, r[0].prefixlen > 24))
        if cands:
            r = cands[0]
            net = pick_in(r[0], random.Random(1))
            reg, addr = expect(r[1], r[2])
            checks.append("%s %s %s %s %s" % (label, net, reg, addr, r[3] or "?"))
    with open(check_out, "w") as f:
        f.write("\n".join(checks) + ("\n" if checks else ""))
    print("%d distinct client subnets: %d IPv4 (%d inside the %d CSV v4 ranges, rest random), %d IPv6 (%d inside the %d CSV v6 ranges)"
          % (len(chosen), sum(1 for n in chosen if n.version == 4), in4, len(v4rows),
             sum(1 for n in chosen if n.version == 6), in6, len(v6rows)))
    if not rows:
        print("WARNING: no sample CSV (%s): all subnets are random addresses" % csv_path)

def cmd_port():
    for _ in range(200):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            u.close(); t.close(); continue
        u.close(); t.close()
        if port >= 1024:
            print(port); return
    sys.exit("no free port")

def cmd_compare(a_name, a_path, b_name, b_path):
    def load(p):
        d = {}
        with open(p) as f:
            for line in f:
                s, rc, ans, scope = line.rstrip("\n").split("\t")
                d[s] = (rc, ans, int(scope))
        return d
    a, b = load(a_path), load(b_path)
    same = diff = lost = 0
    examples = []
    scopes = {a_name: [], b_name: []}
    for s, (rc, ans, sc) in a.items():
        if s not in b: continue
        rc2, ans2, sc2 = b[s]
        if rc == "LOST" or rc2 == "LOST":
            lost += 1; continue
        if sc >= 0: scopes[a_name].append(sc)
        if sc2 >= 0: scopes[b_name].append(sc2)
        if (rc, ans) == (rc2, ans2): same += 1
        else:
            diff += 1
            if len(examples) < 10: examples.append("    %-22s %s: rcode %s %s   %s: rcode %s %s" % (s, a_name, rc, ans, b_name, rc2, ans2))
    print("  answers over %d subnets (one query each): same %d, different %d, lost in either %d" % (len(a), same, diff, lost))
    for n in (a_name, b_name):
        sc = scopes[n]
        if sc: print("  %-9s ECS scope: avg /%.1f, min /%d, max /%d, scope 0 in %d responses" % (n, sum(sc) / len(sc), min(sc), max(sc), sc.count(0)))
        else: print("  %-9s ECS scope: no ECS option in responses" % n)
    if examples:
        print("  first differences:"); print("\n".join(examples))

if __name__ == "__main__":
    c, args = sys.argv[1], sys.argv[2:]
    if c == "gdnsd": cmd_gdnsd(args[0], args[1], int(args[2]), args[3], int(args[4]))
    elif c == "lodestar-topology": cmd_lodestar_topology(*args)
    elif c == "queries": cmd_queries(*args)
    elif c == "subnets": cmd_subnets(args[0], args[1], args[2], args[3], int(args[4]), int(args[5]))
    elif c == "port": cmd_port()
    elif c == "compare": cmd_compare(*args)
    else: sys.exit("unknown helper command " + c)
PYEOF
helper() { "$PY" "$WORK/helper.py" "$@"; }

# ---------------------------------------------------------------- build ----
log "== building ecsload (gcc -O2) into $WORK"
gcc -O2 -Wall -o "$WORK/ecsload" "$HERE/ecsload.c"

want_lodestar=0; want_gdnsd=0
for s in $SERVERS; do
    case $s in
        lodestar|lodestar-nocache) want_lodestar=1 ;;
        gdnsd) want_gdnsd=1 ;;
        *) die "unknown server '$s' in SERVERS (gdnsd, lodestar, lodestar-nocache)" ;;
    esac
done
if [ "$want_lodestar" = 1 ]; then
    if [ -z "${LODESTAR_BIN:-}" ]; then
        log "== building lodestar: swift build -c release --scratch-path .build-bench --product lodestar"
        if ! (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product lodestar >"$WORK/swift-build.log" 2>&1); then
            tail -n 40 "$WORK/swift-build.log" >&2
            die "swift build failed (full log: $WORK/swift-build.log; set LODESTAR_BIN=... or SERVERS=gdnsd)"
        fi
        LODESTAR_BIN=$ROOT/.build-bench/release/lodestar
    fi
    [ -x "$LODESTAR_BIN" ] || die "LODESTAR_BIN=$LODESTAR_BIN is not executable"
    # Same GeoIP file and thread count as gdnsd, with whatever flags this build has.
    lodestar_help=$("$LODESTAR_BIN" dns --help 2>&1 || true)
    helper lodestar-topology "$TOPOLOGY" "$WORK/topology.json" "$GEO_DB"
    LODESTAR_ARGS=(--topology "$WORK/topology.json")
    if grep -q -- '--threads' <<<"$lodestar_help"; then
        LODESTAR_ARGS+=(--threads "${LODESTAR_THREADS:-$SERVER_NCPU}")
    fi
fi

# ---------------------------------------------------------------- inputs ----
helper queries "$TOPOLOGY" "$WORK/queries.txt" | sed 's/^/  plain workload: /' >&2
printf 'www.example.test A\n' >"$WORK/queries-ecs.txt"
helper subnets "$TOPOLOGY" "$GEO_CSV" "$WORK/subnets.txt" "$WORK/checks.txt" "$SUBNETS_V4" "$SUBNETS_V6" | sed 's/^/  ecs workload: /' >&2
NSUBNETS=$(wc -l <"$WORK/subnets.txt")
[ "$NSUBNETS" -ge 10000 ] || log "WARNING: only $NSUBNETS distinct subnets (< 10000)"
mmdb_type=$(mmdblookup --file "$GEO_DB" --ip 0.0.0.0 --verbose 2>/dev/null | sed -n 's/^ *Type: *//p' | head -n1 || true)
log "  GeoIP database: $GEO_DB (type: ${mmdb_type:-unknown})"
if [ "$want_gdnsd" = 1 ] && [ -n "$mmdb_type" ] && [[ "$mmdb_type" != *City* ]]; then
    die "gdnsd's auto_dc_coords needs a database whose type contains 'City' (this one: '$mmdb_type')"
fi

# -------------------------------------------------------------- servers ----
SERVER_PID=""
SERVER_PORT=""
start_server() { # name
    local name=$1 port
    port=$(helper port)
    case $name in
        gdnsd)
            local dir="$WORK/gdnsd"
            rm -rf "$dir"; mkdir -p "$dir/run" "$dir/state"
            helper gdnsd "$TOPOLOGY" "$dir" "$port" "$GEO_DB" "${GDNSD_UDP_THREADS:-$SERVER_NCPU}"
            gdnsd -c "$dir" checkconf >"$WORK/gdnsd-checkconf.log" 2>&1 || { cat "$WORK/gdnsd-checkconf.log" >&2; die "gdnsd checkconf failed"; }
            "${SERVER_PIN[@]}" gdnsd -c "$dir" start >>"$WORK/gdnsd.log" 2>&1 &
            ;;
        lodestar)
            (cd "$ROOT" && exec "${SERVER_PIN[@]}" "$LODESTAR_BIN" dns "${LODESTAR_ARGS[@]}" --listen "127.0.0.1:$port") >>"$WORK/lodestar.log" 2>&1 &
            ;;
        lodestar-nocache)
            # The same server with its packet cache off: every query takes the full decode → answer → encode path.
            (cd "$ROOT" && exec "${SERVER_PIN[@]}" "$LODESTAR_BIN" dns "${LODESTAR_ARGS[@]}" --packet-cache 0 --listen "127.0.0.1:$port") >>"$WORK/lodestar-nocache.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    SERVER_PORT=$port
    PIDS+=("$SERVER_PID")
    local t0=$SECONDS ans=""
    while :; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 30 "$WORK/$name.log" >&2
            die "$name exited during startup"
        fi
        ans=$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" www.example.test A 2>/dev/null | grep -E '^[0-9.]+$' || true)
        [ -n "$ans" ] && break
        [ $((SECONDS - t0)) -lt "$READY_TIMEOUT" ] || { tail -n 30 "$WORK/$name.log" >&2; die "$name did not answer within ${READY_TIMEOUT}s"; }
        sleep 0.2
    done
    log "  $name pid $SERVER_PID listening on 127.0.0.1:$port (answers www.example.test A: $(echo $ans)), idle RSS $(rss_mib VmRSS "$SERVER_PID") MiB"
}

stop_server() {
    local pid=$SERVER_PID i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
    SERVER_PID=""
}

rss_mib() { # field pid -> MiB from /proc/PID/status
    awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$2/status" 2>/dev/null || echo "?"
}

check_answers() { # name
    local name=$1 label subnet region expect cc out ans scope status=0
    if [ ! -s "$WORK/checks.txt" ]; then
        log "  (no sample CSV: cannot pick EU/US check subnets; set GEO_CSV)"
        return
    fi
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
# Figures are kept per round as KEY="workload|server|round"; the report shows
# the median over rounds (RSS: the highest peak).
declare -A QPS AVG P99 RSS
run_ecsload() { # tag args...   (output kept in $WORK/tag.out; RESULT line parsed later)
    local tag=$1; shift
    "${LOADGEN_PIN[@]}" "$WORK/ecsload" -s 127.0.0.1 -p "$SERVER_PORT" -c "$INFLIGHT" -k "$SOCKETS" -t "$TIMEOUT_MS" "$@" >"$WORK/$tag.out"
    sed 's/^/    /' "$WORK/$tag.out" | grep -v '^    RESULT' >&2
}
result_field() { sed -n "s/^RESULT .*\\b$2=\\([^ ]*\\).*/\\1/p" "$WORK/$1.out"; }
store_ecsload() { # key tag
    QPS[$1]=$(result_field "$2" qps)
    AVG[$1]=$(printf '%.3f' "$(result_field "$2" avg_ms)")
    P99[$1]=$(printf '%.3f' "$(result_field "$2" p99_ms)")
}
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; } # utime + stime of the server
declare -A CPUQ CPUP
store_cpu() { # key ticks_before answered -> server CPU us/query and CPU % over DURATION
    local used=$(( $(cpu_ticks) - $2 ))
    CPUQ[$1]=$(awk -v t="$used" -v hz="$CLK_TCK" -v n="$3" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "n/a" }')
    CPUP[$1]=$(awk -v t="$used" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f", t / hz / d * 100 }')
    log "  server CPU: ${CPUP[$1]}% of one CPU, ${CPUQ[$1]} us per answered query"
}
warmup() { # ecsload args...
    "${LOADGEN_PIN[@]}" "$WORK/ecsload" -s 127.0.0.1 -p "$SERVER_PORT" -d "$WARMUP" -c "$INFLIGHT" -k "$SOCKETS" "$@" >/dev/null
}

bench_server() { # name round
    local name=$1 r=$2 hwm c0
    log ""
    log "== round $r/$ROUNDS, $name: plain workload"
    start_server "$name"
    [ "$r" != 1 ] || check_answers "$name"
    warmup -n -q "$WORK/queries.txt"
    log "  dnsperf -l $DURATION -c $SOCKETS -q $INFLIGHT (no EDNS)"
    c0=$(cpu_ticks)
    "${LOADGEN_PIN[@]}" dnsperf -s 127.0.0.1 -p "$SERVER_PORT" -d "$WORK/queries.txt" -l "$DURATION" -c "$SOCKETS" -T 1 \
        -q "$INFLIGHT" -t "$((TIMEOUT_MS / 1000 > 0 ? TIMEOUT_MS / 1000 : 1))" >"$WORK/dnsperf-$name-$r.out" 2>&1 ||
        { cat "$WORK/dnsperf-$name-$r.out" >&2; die "dnsperf failed against $name"; }
    grep -E 'Queries (sent|completed|lost)|Response codes|Queries per second|Average Latency|Latency StdDev' "$WORK/dnsperf-$name-$r.out" | sed 's/^ */    /' >&2
    QPS["plain-dnsperf|$name|$r"]=$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$WORK/dnsperf-$name-$r.out")
    AVG["plain-dnsperf|$name|$r"]=$(awk '/Average Latency \(s\):/ { printf "%.3f", $4 * 1000 }' "$WORK/dnsperf-$name-$r.out")
    P99["plain-dnsperf|$name|$r"]="-"
    store_cpu "plain-dnsperf|$name|$r" "$c0" "$(awk '/Queries completed:/ { print $3 }' "$WORK/dnsperf-$name-$r.out")"
    log "  ecsload -n (plain, no EDNS) -d $DURATION"
    c0=$(cpu_ticks)
    run_ecsload "plain-$name-$r" -n -q "$WORK/queries.txt" -d "$DURATION"
    store_cpu "plain-ecsload|$name|$r" "$c0" "$(result_field "plain-$name-$r" received)"
    store_ecsload "plain-ecsload|$name|$r" "plain-$name-$r"
    if [ -n "$FIXED_QPS" ]; then
        log "  ecsload -n -Q $FIXED_QPS (plain, fixed rate) -d $DURATION"
        c0=$(cpu_ticks)
        run_ecsload "plainfixed-$name-$r" -n -q "$WORK/queries.txt" -d "$DURATION" -Q "$FIXED_QPS"
        store_cpu "plain-fixed|$name|$r" "$c0" "$(result_field "plainfixed-$name-$r" received)"
        store_ecsload "plain-fixed|$name|$r" "plainfixed-$name-$r"
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name died during the plain workload"
    hwm=$(rss_mib VmHWM "$SERVER_PID")
    RSS["plain-dnsperf|$name|$r"]=$hwm; RSS["plain-ecsload|$name|$r"]=$hwm; RSS["plain-fixed|$name|$r"]=$hwm
    log "  $name peak RSS (VmHWM) after the plain workload: $hwm MiB"
    stop_server

    log "== round $r/$ROUNDS, $name: ECS workload ($NSUBNETS subnets)"
    start_server "$name"
    warmup -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt"
    log "  ecsload (ECS) -d $DURATION"
    c0=$(cpu_ticks)
    run_ecsload "ecs-$name-$r" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$DURATION"
    store_cpu "ecs|$name|$r" "$c0" "$(result_field "ecs-$name-$r" received)"
    store_ecsload "ecs|$name|$r" "ecs-$name-$r"
    if [ -n "$FIXED_QPS" ]; then
        log "  ecsload -Q $FIXED_QPS (ECS, fixed rate) -d $DURATION"
        c0=$(cpu_ticks)
        run_ecsload "ecsfixed-$name-$r" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" -d "$DURATION" -Q "$FIXED_QPS"
        store_cpu "ecs-fixed|$name|$r" "$c0" "$(result_field "ecsfixed-$name-$r" received)"
        store_ecsload "ecs-fixed|$name|$r" "ecsfixed-$name-$r"
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name died during the ECS workload"
    hwm=$(rss_mib VmHWM "$SERVER_PID")
    RSS["ecs|$name|$r"]=$hwm; RSS["ecs-fixed|$name|$r"]=$hwm
    log "  $name peak RSS (VmHWM) after the ECS workload: $hwm MiB"
    if [ "$r" = 1 ]; then
        # one query per subnet, answers kept for the cross-check in the report (not timed)
        "${LOADGEN_PIN[@]}" "$WORK/ecsload" -s 127.0.0.1 -p "$SERVER_PORT" -f "$WORK/subnets.txt" -q "$WORK/queries-ecs.txt" \
            -c 32 -k 1 -1 "$WORK/answers-$name.txt" >/dev/null
    fi
    stop_server
}

log ""
log "== setup: DURATION=${DURATION}s per run (+${WARMUP}s warm-up), $INFLIGHT queries in flight over $SOCKETS sockets, $NCPU CPUs, $ROUNDS round(s)"
log "   $PIN_NOTE"
[ "$want_gdnsd" = 0 ] || log "   gdnsd: udp_threads = ${GDNSD_UDP_THREADS:-$SERVER_NCPU} (one per server CPU)"
[ "$want_lodestar" = 0 ] || log "   lodestar: $LODESTAR_BIN dns ${LODESTAR_ARGS[*]} --listen 127.0.0.1:PORT"
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOADAVG" 'BEGIN { exit !(l > 0.5) }'; then
    log "   WARNING: load average $LOADAVG before the run: other processes compete for the CPUs, figures will be noisy"
fi
for r in $(seq 1 "$ROUNDS"); do
    # alternate the order each round so neither server always runs first
    if [ $((r % 2)) = 1 ]; then order=$SERVERS; else order=$(printf '%s\n' $SERVERS | tac | tr '\n' ' '); fi
    for s in $order; do bench_server "$s" "$r"; done
done

# ---------------------------------------------------------------- report ----
ratio() { # a b -> a/b
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
agg() { # median|max  array-name  key-prefix   -> over rounds
    local how=$1 vals=() r v
    local -n arr=$2
    for r in $(seq 1 "$ROUNDS"); do
        v=${arr[$3|$r]:-}
        [ -n "$v" ] && vals+=("$v")
    done
    [ ${#vals[@]} -gt 0 ] || { echo "n/a"; return; }
    [ "${vals[0]}" != "-" ] || { echo "-"; return; }
    if [ "$how" = max ]; then
        printf '%s\n' "${vals[@]}" | sort -g | tail -n1
    else
        printf '%s\n' "${vals[@]}" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
    fi
}
echo ""
echo "== DNS benchmark: $SERVERS   (gdnsd $(dpkg-query -W -f='${Version}' gdnsd 2>/dev/null || echo '?')${LODESTAR_BIN:+; lodestar: $LODESTAR_BIN})"
echo "   ${DURATION}s per run, $INFLIGHT in flight over $SOCKETS sockets, $ROUNDS round(s)$([ "$ROUNDS" = 1 ] || echo ' (median shown; RSS: highest peak)')"
echo "   $PIN_NOTE; load average at start $LOADAVG"
echo "   zone: $TOPOLOGY; GeoIP: $GEO_DB; ECS: $NSUBNETS distinct client subnets"
echo ""
printf '%-22s | %-16s | %9s | %7s | %7s | %7s\n' "workload" "server" "QPS" "avg ms" "p99 ms" "RSS MiB"
printf '%s\n' "-----------------------+------------------+-----------+---------+---------+--------"
WORKLOADS="plain-dnsperf plain-ecsload"
[ -z "$FIXED_QPS" ] || WORKLOADS="$WORKLOADS plain-fixed"
WORKLOADS="$WORKLOADS ecs"
[ -z "$FIXED_QPS" ] || WORKLOADS="$WORKLOADS ecs-fixed"
declare -A M_QPS M_AVG M_P99 M_RSS M_CPUQ
wlabel() {
    case $1 in
        plain-dnsperf) echo "plain (dnsperf)" ;;
        plain-ecsload) echo "plain (ecsload -n)" ;;
        plain-fixed) echo "plain @${FIXED_QPS} qps" ;;
        ecs) echo "ECS $NSUBNETS subnets" ;;
        ecs-fixed) echo "ECS @${FIXED_QPS} qps" ;;
    esac
}
for w in $WORKLOADS; do
    label=$(wlabel "$w")
    for s in $SERVERS; do
        M_QPS[$s]=$(agg median QPS "$w|$s"); M_AVG[$s]=$(agg median AVG "$w|$s")
        M_P99[$s]=$(agg median P99 "$w|$s"); M_RSS[$s]=$(agg max RSS "$w|$s")
        printf '%-22s | %-16s | %9s | %7s | %7s | %7s\n' "$label" "$s" "${M_QPS[$s]}" "${M_AVG[$s]}" "${M_P99[$s]}" "${M_RSS[$s]}"
    done
    if [ "$want_lodestar" = 1 ] && [ "$want_gdnsd" = 1 ]; then
        echo "ratio lodestar/gdnsd QPS = $(ratio "${M_QPS[lodestar]}" "${M_QPS[gdnsd]}")   (avg latency $(ratio "${M_AVG[lodestar]}" "${M_AVG[gdnsd]}"), p99 $(ratio "${M_P99[lodestar]}" "${M_P99[gdnsd]}"), RSS $(ratio "${M_RSS[lodestar]}" "${M_RSS[gdnsd]}"))"
        if [ -n "${M_QPS[lodestar-nocache]:-}" ]; then
            echo "ratio lodestar-nocache/gdnsd QPS = $(ratio "${M_QPS[lodestar-nocache]}" "${M_QPS[gdnsd]}")   (RSS $(ratio "${M_RSS[lodestar-nocache]}" "${M_RSS[gdnsd]}"))"
        fi
    fi
done
echo ""
echo "server CPU time per answered query (utime+stime from /proc/PID/stat; less sensitive to other load than QPS):"
printf '%-22s | %-16s | %10s | %12s\n' "workload" "server" "CPU us/q" "server CPU %"
for w in $WORKLOADS; do
    for s in $SERVERS; do
        M_CPUQ[$s]=$(agg median CPUQ "$w|$s")
        printf '%-22s | %-16s | %10s | %12s\n' "$(wlabel "$w")" "$s" "${M_CPUQ[$s]}" "$(agg median CPUP "$w|$s")"
    done
    if [ "$want_lodestar" = 1 ] && [ "$want_gdnsd" = 1 ]; then
        echo "ratio lodestar/gdnsd CPU per query = $(ratio "${M_CPUQ[lodestar]}" "${M_CPUQ[gdnsd]}")"
        [ -z "${M_CPUQ[lodestar-nocache]:-}" ] || echo "ratio lodestar-nocache/gdnsd CPU per query = $(ratio "${M_CPUQ[lodestar-nocache]}" "${M_CPUQ[gdnsd]}")"
    fi
done
echo ""
echo "RSS = server VmHWM (peak) of a fresh server process per workload; latency as seen by the load generator"
echo "(closed loop with $INFLIGHT in flight: at saturation it is mostly queueing; FIXED_QPS=N adds runs below saturation)."
for s in $SERVERS; do
    pf=0; pl=0; ef=0; el=0
    for r in $(seq 1 "$ROUNDS"); do
        pf=$((pf + $(result_field "plain-$s-$r" failed))); pl=$((pl + $(result_field "plain-$s-$r" lost)))
        ef=$((ef + $(result_field "ecs-$s-$r" failed))); el=$((el + $(result_field "ecs-$s-$r" lost)))
    done
    echo "validation $s: plain failed $pf lost $pl; ECS failed $ef lost $el (failed = rcode!=NOERROR, no answer, TC or malformed)"
done
if [ "$want_lodestar" = 1 ] && [ "$want_gdnsd" = 1 ]; then
    echo "answer cross-check gdnsd vs lodestar (www.example.test A, one query per ECS subnet):"
    helper compare gdnsd "$WORK/answers-gdnsd.txt" lodestar "$WORK/answers-lodestar.txt"
else
    for s in $SERVERS; do
        awk -F'\t' -v n="$s" '$2 != "LOST" && $4 >= 0 { c++; t += $4 } $3 != "-" { a[$3]++ }
            END { printf "answers %s: ", n; for (k in a) printf "%s=%d ", k, a[k]; if (c) printf "; avg ECS scope /%.1f", t / c; print "" }' "$WORK/answers-$s.txt"
    done
fi
