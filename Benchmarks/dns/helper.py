#!/usr/bin/env python3
"""Benchmarks/dns/helper.py - the Python side of Benchmarks/dns.sh (standard library only; mmdblookup for lookups).

    helper.py gdnsd TOPOLOGY OUTDIR PORT MMDB UDP_THREADS AUTO_DC_LIMIT   gdnsd config dir + zone file
    helper.py lodestar-topology TOPOLOGY OUT MMDB                          topology copy for `lodestar dns`
    helper.py scale-topology TOPOLOGY N SEED OUT                           one service of N edges at random points
    helper.py grid-topology TOPOLOGY R E SEED OUT DNSPORT EDGEPORT         R regions and E edges: a whole deployment
    helper.py queries TOPOLOGY OUT                                         the plain workload's query list
    helper.py subnets TOPOLOGY CSV OUT CHECKS_OUT N4 N6 MMDB               ECS client subnets + check subnets
    helper.py ecs-hex SUBNET                                               dnsperf -E 8:HEX value for SUBNET
    helper.py port FIRST LAST START                                        a free UDP+TCP port on 127.0.0.1
    helper.py compare A_NAME A_FILE B_NAME B_FILE TOPOLOGY MMDB MAX_ORACLE per-subnet answers (ecsload -1 files)
    helper.py compare-plain A_NAME A_FILE B_NAME B_FILE                    answer sections (dig) of the plain names
"""
import csv, ipaddress, json, math, os, random, re, socket, subprocess, sys


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
    """The service's regions, in the order of its edges, with the fallback region first (gdnsd's default list)."""
    edges = {e["id"]: e for e in topo["edges"]}
    regs = []
    for eid in svc["edges"]:
        r = edges[eid]["region"]
        if r not in regs: regs.append(r)
    fb = svc.get("fallbackRegion")
    if fb in regs: regs.remove(fb); regs.insert(0, fb)
    return regs


GDNSD_MAX_DCS = 254  # gdnsd-plugin-geoip(8): "a maximum limit of 254 datacenter names per map"


def cmd_gdnsd(topo_path, outdir, port, mmdb, udp_threads, auto_dc_limit):
    topo = load_topology(topo_path)
    z = topo["zone"]; zone = z["name"].rstrip(".")
    soa = z["soa"]
    regions = {r["id"]: r for r in topo["regions"]}
    edges = {e["id"]: e for e in topo["edges"]}
    lines = ["$TTL %d" % soa.get("ttl", 3600),
             "@ SOA %s %s %d %d %d %d %d" % (fq(soa["primary"], zone), fq(soa["contact"], zone),
                soa["serial"], soa.get("refresh", 3600), soa.get("retry", 600), soa.get("expire", 604800),
                soa.get("minimum", 60))]
    # TTLs as lodestar's topology defaults them: NS and glue 3600, static records 300, services 30
    for ns in z.get("nameservers", []):
        lines.append("@ %d NS %s" % (ns.get("ttl", 3600), fq(ns["name"], zone)))
        if fq(ns["name"], zone).endswith(zone + "."):
            for a in ns.get("addresses", []):
                lines.append("%s %d %s %s" % (owner(ns["name"], zone), ns.get("ttl", 3600), "AAAA" if ":" in a else "A", a))
    for r in z.get("records", []):
        v = r["value"]
        if r["type"].upper() == "TXT" and not v.startswith('"'):
            v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append("%s %d %s %s" % (owner(r["name"], zone), r.get("ttl", 300), r["type"].upper(), v))
    maps, resources = [], []
    for name, svc in topo.get("services", {}).items():
        regs = region_order(topo, svc)
        if len(regs) > GDNSD_MAX_DCS:
            sys.exit("gdnsd: service %s has %d regions; a gdnsd geoip map takes at most %d datacenters"
                     % (name, len(regs), GDNSD_MAX_DCS))
        coords = ", ".join("%s => [ %s, %s ]" % (r, regions[r]["latitude"], regions[r]["longitude"]) for r in regs)
        nets = []
        for o in svc.get("overrides", []):
            first = o["region"]
            nets.append("%s => [ %s ]" % (o["prefix"], ", ".join([first] + [r for r in regs if r != first])))
        dcmap = []
        for r in regs:
            addrs = [a for eid in svc["edges"] if edges[eid]["region"] == r for a in edges[eid]["addresses"]]
            dcmap.append("%s => [ %s ]" % (r, ", ".join(addrs)))
        limit = len(regs) if auto_dc_limit <= 0 else min(len(regs), auto_dc_limit)
        maps.append("""      %s => {
        geoip2_db => "%s"
        datacenters => [ %s ]
        auto_dc_coords => { %s }
        auto_dc_limit => %d
%s      }""" % (name, mmdb, ", ".join(regs), coords, limit,
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
    # Unsigned, as gdnsd serves it; the signed rows add their own key (dns.sh, SIGNED=1).
    topo["dns"].pop("dnssec", None)
    for e in topo.get("edges", []):
        e.pop("gossip", None)
        e.pop("admin", None)
    with open(out, "w") as f:
        json.dump(topo, f, indent=2)


def cmd_scale_topology(topo_path, n, seed, out):
    """The base topology's zone and dns sections, and one service `www` of N edges, each in its own region at a
    random point (uniform on the sphere; seeded, so every run and both servers get the same points)."""
    base = load_topology(topo_path)
    rng = random.Random("%d/%d" % (seed, n))
    regions, edges = [], []
    for i in range(n):
        lat = round(math.degrees(math.asin(2 * rng.random() - 1)), 4)
        lon = round(rng.uniform(-180, 180), 4)
        rid = "r%04d" % i
        regions.append({"id": rid, "latitude": lat, "longitude": lon})
        edges.append({"id": "edge-%04d" % i, "region": rid,
                      "addresses": ["10.200.%d.%d" % (i // 250, i % 250 + 1)]})
    svc = {"edges": [e["id"] for e in edges], "answerCount": 1, "ttl": 30, "fallbackRegion": regions[0]["id"]}
    if n > 1:
        svc["overrides"] = [{"prefix": "198.51.100.0/24", "region": regions[1]["id"]}]
    dns = dict(base.get("dns", {}))
    dns.pop("gossip", None); dns.pop("admin", None)
    topo = {"$comment": "Generated by Benchmarks/dns.sh (scale row): %d edges at random points, seed %d" % (n, seed),
            "zone": base["zone"], "regions": regions, "edges": edges, "services": {"www": svc}, "dns": dns}
    with open(out, "w") as f:
        json.dump(topo, f, indent=1)


def cmd_grid_topology(topo_path, regions_n, edges_n, seed, out, dns_port, edge_base_port):
    """A whole deployment of R regions (random points, seeded) and E edges spread over them round-robin, for
    Benchmarks/topology-scale.sh: the base topology's zone, one service `www` over every edge, one service per
    region (its own edges and the next region's) up to 50, a sample origin pool and a route, so `lodestar check`,
    `lodestar dns` and `lodestar edge` all load it. GEO_DB in the environment overrides the database."""
    base = load_topology(topo_path)
    rng = random.Random("%d/%d/%d" % (seed, regions_n, edges_n))
    regions, edges = [], []
    for i in range(regions_n):
        lat = round(math.degrees(math.asin(2 * rng.random() - 1)), 4)
        lon = round(rng.uniform(-180, 180), 4)
        regions.append({"id": "r%04d" % i, "name": "Region %d" % i, "latitude": lat, "longitude": lon})
    for i in range(edges_n):
        addr = "10.%d.%d.%d" % (200 + i // 62500, (i // 250) % 250, i % 250 + 1)
        edges.append({"id": "edge-%05d" % i, "region": regions[i % regions_n]["id"], "addresses": [addr],
                      "listen": ["127.0.0.1:%d" % edge_base_port] if i == 0 else []})
    services = {"www": {"edges": [e["id"] for e in edges], "answerCount": 2, "ttl": 30,
                        "fallbackRegion": regions[0]["id"]}}
    for r in range(min(regions_n, 50)):
        own = [e["id"] for e in edges if e["region"] == regions[r]["id"]]
        services["svc%02d" % r] = {"edges": own + [e["id"] for e in edges if e["region"] == regions[(r + 1) % regions_n]["id"]],
                                   "answerCount": 1, "ttl": 30, "fallbackRegion": regions[r]["id"]}
    dns = dict(base.get("dns", {}))
    for key in ("admin", "gossip", "nodes", "dnssec"):
        dns.pop(key, None)
    dns["listen"] = ["127.0.0.1:%d" % dns_port]
    geo = dns.get("geoDatabase", "GeoData/lodestar-sample.mmdb")
    dns["geoDatabase"] = os.environ.get("GEO_DB") or os.path.abspath(os.path.join(os.path.dirname(topo_path), geo))
    # No gossip: its scale is the simulator's (GossipScaleTests); here every edge is statically healthy.
    topo = {"$comment": "Generated by Benchmarks/topology-scale.sh: %d regions, %d edges, seed %d" % (regions_n, edges_n, seed),
            "zone": base["zone"], "regions": regions, "edges": edges, "services": services, "dns": dns,
            "origins": {"origin": {"servers": ["127.0.0.1:9"]}},
            "routes": [{"hosts": ["*"], "pathPrefix": "/", "pool": "origin"}]}
    with open(out, "w") as f:
        json.dump(topo, f, indent=1)


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


# ---- GeoIP oracle: mmdblookup, independent of both servers ----
_mmdb_cache = {}


def mmdb_get(mmdb, ip, *path):
    key = (ip, path)
    if key in _mmdb_cache: return _mmdb_cache[key]
    try:
        out = subprocess.run(["mmdblookup", "--file", mmdb, "--ip", ip] + list(path),
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    m = re.search(r'^\s*("?)(.*?)\1\s*<(\w+)>\s*$', out, re.M)
    v = None
    if m:
        v = float(m.group(2)) if m.group(3) in ("double", "float") else m.group(2)
    _mmdb_cache[key] = v
    return v


def mmdb_location(mmdb, ip):
    """(lat, lon, country, continent) of ip in mmdb; lat/lon None when the database has no location."""
    lat = mmdb_get(mmdb, ip, "location", "latitude")
    lon = mmdb_get(mmdb, ip, "location", "longitude")
    cc = mmdb_get(mmdb, ip, "country", "iso_code") or mmdb_get(mmdb, ip, "registered_country", "iso_code") or "?"
    cont = mmdb_get(mmdb, ip, "continent", "code") or "?"
    if not isinstance(lat, float) or not isinstance(lon, float): lat = lon = None
    return lat, lon, cc, cont


def expected_region(topo, svc, net, lat, lon):
    """The nearest-region rule: an override prefix first, then the nearest region, the fallback without a location.
    Returns (region id, first address, distance of the runner-up minus the winner in km, or None)."""
    regions = {r["id"]: r for r in topo["regions"]}
    edges = {e["id"]: e for e in topo["edges"]}
    regs = region_order(topo, svc)
    def addr(rid):
        for eid in svc["edges"]:
            if edges[eid]["region"] == rid: return edges[eid]["addresses"][0]
        return "?"
    for o in svc.get("overrides", []):
        p = ipaddress.ip_network(o["prefix"], strict=False)
        if p.version == net.version and net.subnet_of(p):
            return o["region"], addr(o["region"]), None
    if lat is None:
        fb = svc.get("fallbackRegion") or regs[0]
        return fb, addr(fb), None
    d = sorted((gc_km(lat, lon, regions[r]["latitude"], regions[r]["longitude"]), r) for r in regs)
    margin = (d[1][0] - d[0][0]) if len(d) > 1 else None
    return d[0][1], addr(d[0][1]), margin


def random_public(rng, version):
    while True:
        if version == 4:
            net = ipaddress.ip_network((rng.getrandbits(24) << 8, 24))
        else:
            net = ipaddress.ip_network(((0x2 << 124) | (rng.getrandbits(45) << 80), 48))
        a = net.network_address
        if a.is_global and not a.is_multicast and not a.is_reserved and (version == 6 or int(a) >> 24 != 0):
            return net


CITY_CHECKS = [("EU", "193.0.0.0/24"), ("US", "8.8.8.0/24"), ("AP", "202.166.126.0/24"), ("SA", "200.160.2.0/24")]


def cmd_subnets(topo_path, csv_path, out, check_out, n4, n6, mmdb):
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
        # with a sample CSV: ~70% inside its ranges, round-robin over them
        tries = 0
        goal = int(want * 0.7) if pool else 0
        while pool and got < goal and tries < want * 20:
            net = pool[tries % len(pool)]
            tries += 1
            if add(pick_in(net, rng)): got += 1
        from_csv = got
        # the rest: random public unicast /24s (/48s in 2000::/3)
        tries = 0
        while got < want and tries < want * 50:
            tries += 1
            if add(random_public(rng, version)): got += 1
        return from_csv
    in4 = fill(v4rows, n4, 4)
    in6 = fill(v6rows, n6, 6)
    rng.shuffle(chosen)
    with open(out, "w") as f:
        for n in chosen: f.write(str(n) + "\n")
    # check subnets (printed before measuring) with the answer the nearest-region rule expects
    svc = next(iter(topo["services"].values()))
    checks = []
    if rows:
        for label, cc_pref, cont in (("EU", ("DE", "FR", "GB", "NL"), "EU"), ("US", ("US",), "NA")):
            cands = [r for r in rows if r[0].version == 4 and r[1] is not None and r[2] is not None and r[4] == cont]
            cands.sort(key=lambda r: (not r[0].is_global, r[3] not in cc_pref, r[0].prefixlen > 24))
            if cands:
                r = cands[0]
                net = pick_in(r[0], random.Random(1))
                reg, addr, _ = expected_region(topo, svc, net, r[1], r[2])
                checks.append("%s %s %s %s %s" % (label, net, reg, addr, r[3] or "?"))
    else:
        for label, s in CITY_CHECKS:
            net = ipaddress.ip_network(s)
            lat, lon, cc, _ = mmdb_location(mmdb, str(net.network_address))
            reg, addr, _ = expected_region(topo, svc, net, lat, lon)
            checks.append("%s %s %s %s %s" % (label, net, reg, addr, cc))
    with open(check_out, "w") as f:
        f.write("\n".join(checks) + ("\n" if checks else ""))
    n_v4 = sum(1 for n in chosen if n.version == 4)
    if rows:
        print("%d distinct client subnets: %d IPv4 (%d inside the %d CSV v4 ranges, rest random public /24s), "
              "%d IPv6 (%d inside the %d CSV v6 ranges)"
              % (len(chosen), n_v4, in4, len(v4rows), len(chosen) - n_v4, in6, len(v6rows)))
    else:
        print("%d distinct client subnets: %d IPv4 (random public /24s), %d IPv6 (random /48s in 2000::/3), "
              "overrides included" % (len(chosen), n_v4, len(chosen) - n_v4))


def cmd_ecs_hex(subnet):
    net = ipaddress.ip_network(subnet, strict=False)
    nbytes = (net.prefixlen + 7) // 8
    addr = net.network_address.packed[:nbytes]
    print("%04x%02x%02x%s" % (1 if net.version == 4 else 2, net.prefixlen, 0, addr.hex()))


def cmd_port(first, last, start):
    first, last, start = int(first), int(last), int(start)
    span = last - first + 1
    for k in range(span):
        port = first + (start - first + k) % span
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", port))
            t.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close(); t.close()
        print(port); return
    sys.exit("no free port in %d-%d" % (first, last))


def load_answers(p):
    d = {}
    with open(p) as f:
        for line in f:
            s, rc, ans, scope = line.rstrip("\n").split("\t")
            d[s] = (rc, ans, int(scope))
    return d


def cmd_compare(a_name, a_path, b_name, b_path, topo_path, mmdb, max_oracle):
    """Per-subnet answers of two servers (ecsload -1 files): agreement, scopes by family, and for the first
    MAX_ORACLE differences what the nearest-region rule says (mmdblookup on the subnet's address)."""
    a, b = load_answers(a_path), load_answers(b_path)
    topo = load_topology(topo_path)
    svc = next(iter(topo["services"].values()))
    same = diff = lost = 0
    diffs = []
    scopes = {a_name: {4: [], 6: []}, b_name: {4: [], 6: []}}
    wider = {a_name: 0, b_name: 0}
    for s, (rc, ans, sc) in a.items():
        if s not in b: continue
        rc2, ans2, sc2 = b[s]
        if rc == "LOST" or rc2 == "LOST":
            lost += 1; continue
        v = ipaddress.ip_network(s, strict=False).version
        if sc >= 0: scopes[a_name][v].append(sc)
        if sc2 >= 0: scopes[b_name][v].append(sc2)
        if sc >= 0 and sc2 >= 0 and sc != sc2: wider[a_name if sc < sc2 else b_name] += 1
        if (rc, ans) == (rc2, ans2): same += 1
        else:
            diff += 1
            diffs.append((s, rc, ans, sc, rc2, ans2, sc2))
    total = same + diff
    print("AGREE same=%d total=%d lost=%d pct=%.3f" % (same, total, lost, 100.0 * same / total if total else 0))
    print("  answers over %d subnets (one query each): same %d (%.2f%%), different %d, lost in either %d"
          % (len(a), same, 100.0 * same / total if total else 0, diff, lost))
    for n in (a_name, b_name):
        parts = []
        for v in (4, 6):
            sc = scopes[n][v]
            if sc:
                parts.append("IPv%d avg /%.2f (min /%d, max /%d, %d responses)" % (v, sum(sc) / len(sc), min(sc), max(sc), len(sc)))
        allsc = scopes[n][4] + scopes[n][6]
        if allsc:
            print("  %-9s ECS scope: all avg /%.2f; %s" % (n, sum(allsc) / len(allsc), "; ".join(parts)))
            print("SCOPE %s all=%.2f v4=%s v6=%s" % (n, sum(allsc) / len(allsc),
                  ("%.2f" % (sum(scopes[n][4]) / len(scopes[n][4]))) if scopes[n][4] else "-",
                  ("%.2f" % (sum(scopes[n][6]) / len(scopes[n][6]))) if scopes[n][6] else "-"))
        else:
            print("  %-9s ECS scope: no ECS option in responses" % n)
    print("  scope wider (shorter prefix) for the same subnet: %s in %d subnets, %s in %d"
          % (a_name, wider[a_name], b_name, wider[b_name]))
    if not diffs:
        return
    # what the nearest-region rule says, from the database itself
    verdict = {}
    shown = []
    regions = {r["id"]: r for r in topo["regions"]}
    region_of = {a: e["region"] for e in topo["edges"] for a in e["addresses"]}
    for i, (s, rc, ans, sc, rc2, ans2, sc2) in enumerate(diffs):
        if i >= max_oracle: break
        net = ipaddress.ip_network(s, strict=False)
        lat, lon, cc, cont = mmdb_location(mmdb, str(net.network_address))
        reg, addr, margin = expected_region(topo, svc, net, lat, lon)
        who = ("%s" % a_name if ans == addr else "") + ("%s" % b_name if ans2 == addr else "")
        who = who or "neither"
        verdict[who] = verdict.get(who, 0) + 1
        loc = ("%.4f,%.4f %s/%s" % (lat, lon, cc, cont)) if lat is not None else ("no location %s/%s" % (cc, cont))
        def km(answer):  # the answer's region and its distance from the location
            rid = region_of.get(answer)
            if rid is None: return "?"
            if lat is None: return rid
            r = regions[rid]
            return "%s %.1f km" % (rid, gc_km(lat, lon, r["latitude"], r["longitude"]))
        shown.append("    %-18s %s: %-12s /%-2d (%s)  %s: %-12s /%-2d (%s)  rule: %s (%s%s)"
                     % (s, a_name, ans if rc == "0" else "rcode" + rc, sc, km(ans), b_name,
                        ans2 if rc2 == "0" else "rcode" + rc2, sc2, km(ans2), reg, loc,
                        (", runner-up +%.2f km" % margin) if margin is not None else ""))
    print("  differences (first %d; 'rule' = nearest region to mmdblookup's location, override or fallback):"
          % len(shown))
    print("\n".join(shown[:20]))
    if len(shown) > 20: print("    ... (%d more checked)" % (len(shown) - 20))
    print("  of the %d differences checked, the rule agrees with: %s"
          % (len(shown), ", ".join("%s %d" % (k, v) for k, v in sorted(verdict.items()))))


def cmd_compare_plain(a_name, a_path, b_name, b_path):
    """Answer sections (dig +noall +answer, one "## name type" block per query): the same records, TTLs aside?"""
    def load(p):
        d, cur = {}, None
        with open(p) as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("## "): cur = line[3:]; d[cur] = []
                elif line and not line.startswith(";") and cur is not None: d[cur].append(line.split())
        return d
    def data(rrs): return sorted(" ".join([r[0]] + r[2:]) for r in rrs)  # without the TTL
    a, b = load(a_path), load(b_path)
    keys = [k for k in a if k in b]
    same = sum(1 for k in keys if data(a[k]) == data(b[k]))
    print("AGREE same=%d total=%d lost=0 pct=%.3f" % (same, len(keys), 100.0 * same / len(keys) if keys else 0))
    for k in keys:
        fa = "; ".join(" ".join(r) for r in a[k]) or "(empty)"
        fb = "; ".join(" ".join(r) for r in b[k]) or "(empty)"
        if data(a[k]) != data(b[k]):
            print("  %-22s records differ: %s: %s | %s: %s" % (k, a_name, fa, b_name, fb))
        elif sorted(map(tuple, a[k])) != sorted(map(tuple, b[k])):
            print("  %-22s TTL differs:     %s: %s | %s: %s" % (k, a_name, fa, b_name, fb))


if __name__ == "__main__":
    c, args = sys.argv[1], sys.argv[2:]
    if c == "gdnsd": cmd_gdnsd(args[0], args[1], int(args[2]), args[3], int(args[4]), int(args[5]))
    elif c == "lodestar-topology": cmd_lodestar_topology(*args)
    elif c == "scale-topology": cmd_scale_topology(args[0], int(args[1]), int(args[2]), args[3])
    elif c == "grid-topology": cmd_grid_topology(args[0], int(args[1]), int(args[2]), int(args[3]), args[4], int(args[5]), int(args[6]))
    elif c == "queries": cmd_queries(*args)
    elif c == "subnets": cmd_subnets(args[0], args[1], args[2], args[3], int(args[4]), int(args[5]), args[6])
    elif c == "ecs-hex": cmd_ecs_hex(args[0])
    elif c == "port": cmd_port(*args)
    elif c == "compare": cmd_compare(args[0], args[1], args[2], args[3], args[4], args[5], int(args[6]))
    elif c == "compare-plain": cmd_compare_plain(*args)
    else: sys.exit("unknown helper command " + c)
