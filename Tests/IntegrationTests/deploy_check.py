#!/usr/bin/env python3
"""Checks the deployment files under deploy/ against each other and against what the README relies on.

Usage: deploy_check.py LODESTAR_BINARY [REPO_ROOT]

Loads every YAML document of deploy/k8s/*.yaml and deploy/compose.yaml, the systemd units of deploy/systemd/ and
deploy/topology.compose.json; runs `lodestar check` on the compose topology and on the topology inside the k8s
ConfigMap (each copied into a temporary folder laid out like the image: GeoData/ next to the topology's folder and a
throwaway gossip key at its keyFile). Prints one line per failed check and exits 1 if there is any.
Needs PyYAML (Debian: python3-yaml); exits 77 without it.
"""
import glob
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("deploy_check: PyYAML is not installed (apt-get install python3-yaml)")
    sys.exit(77)

SIMULATION = {"us-east": "198.18.1.0/24", "eu-central": "198.18.2.0/24", "ap-southeast": "198.18.3.0/24"}
UNIT_KEYS = {
    "Type": "exec", "ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM",
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes",
    "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
    "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
}

errors = []


def fail(where, reason):
    errors.append(f"{where}: {reason}")


def check(cond, where, reason):
    if not cond:
        fail(where, reason)
    return cond


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def addr_port(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def run_check(binary, topology, name, root):
    """`lodestar check` on a copy of `topology` at TMP/deploy/topology.json with TMP/GeoData and a throwaway key."""
    with tempfile.TemporaryDirectory(prefix="lodestar-deploy-check-") as tmp:
        os.symlink(os.path.join(root, "GeoData"), os.path.join(tmp, "GeoData"))
        folder = os.path.join(tmp, "deploy")
        os.makedirs(folder)
        key_file = (topology.get("gossip") or {}).get("keyFile")
        if key_file:
            key_path = os.path.normpath(os.path.join(folder, key_file))
            if check(key_path.startswith(tmp + os.sep), name, f"gossip.keyFile {key_file} leaves the deployment layout"):
                os.makedirs(os.path.dirname(key_path), exist_ok=True)
                with open(key_path, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
        path = os.path.join(folder, "topology.json")
        with open(path, "w") as f:
            json.dump(topology, f, indent=2)
        env = dict(os.environ)
        env.pop("LODESTAR_GOSSIP_KEY", None)
        r = subprocess.run([binary, "check", path], capture_output=True, text=True, env=env, timeout=60)
        out = (r.stdout + r.stderr).strip().replace(path, name)
        print(f"lodestar check {name}: exit {r.returncode}: {out}")
        check(r.returncode == 0, name, f"lodestar check failed: {out}")


def check_compose(root, topo):
    path = os.path.join(root, "deploy/compose.yaml")
    docs = load_yaml_docs(path)
    if not check(len(docs) == 1, path, "one YAML document expected"):
        return
    c = docs[0]
    nets = c.get("networks") or {}
    for region, subnet in SIMULATION.items():
        cfg = ((nets.get(region) or {}).get("ipam") or {}).get("config") or [{}]
        check(cfg[0].get("subnet") == subnet, path, f"networks.{region} subnet {cfg[0].get('subnet')} != {subnet}")
    check("backbone" in nets, path, "no backbone network")
    services = c.get("services") or {}
    for edge in topo["edges"]:
        eid, region = edge["id"], edge["region"]
        svc = services.get(eid)
        if not check(svc is not None, path, f"no service {eid}"):
            continue
        cmd = svc.get("command") or []
        check(cmd[:1] == ["edge"] and "--node" in cmd and cmd[cmd.index("--node") + 1] == eid, path,
              f"services.{eid}.command does not run `edge --node {eid}`: {cmd}")
        snets = svc.get("networks") or {}
        addr = (snets.get(region) or {}).get("ipv4_address")
        if check(addr is not None, path, f"services.{eid} has no fixed address on network {region}"):
            check(ipaddress.ip_address(addr) in ipaddress.ip_network(SIMULATION[region]), path,
                  f"services.{eid} address {addr} is not in {region}'s {SIMULATION[region]}")
            check(edge["addresses"] == [addr], "deploy/topology.compose.json",
                  f"edges[{eid}].addresses {edge['addresses']} != compose address {[addr]}")
            check(all(addr_port(l if isinstance(l, str) else l["address"])[0] == addr for l in edge.get("listen", [])),
                  "deploy/topology.compose.json", f"edges[{eid}].listen is not on {addr}")
        check("backbone" in snets, path, f"services.{eid} is not on the backbone")
        gossip_host = addr_port(edge["gossip"])[0] if edge.get("gossip") else None
        backbone_addr = (snets.get("backbone") or {}).get("ipv4_address")
        check(gossip_host is not None and gossip_host == backbone_addr, path,
              f"services.{eid} backbone address {backbone_addr} != topology gossip host {gossip_host}")
    dns = services.get("dns")
    if check(dns is not None, path, "no service dns"):
        check((dns.get("command") or [None])[0] == "dns", path, "services.dns does not run `dns`")
        dnets = dns.get("networks") or {}
        for region, subnet in SIMULATION.items():
            a = (dnets.get(region) or {}).get("ipv4_address")
            check(a is not None and ipaddress.ip_address(a) in ipaddress.ip_network(subnet), path,
                  f"services.dns has no fixed address in {region} ({subnet})")
        gossip_host = addr_port(topo["dns"]["gossip"])[0] if topo["dns"].get("gossip") else None
        check(gossip_host == (dnets.get("backbone") or {}).get("ipv4_address"), path,
              "services.dns backbone address != topology dns.gossip host")
        check(any(addr_port(l)[1] == 53 for l in topo["dns"]["listen"]), "deploy/topology.compose.json",
              "dns.listen has no port 53")
    for region, subnet in SIMULATION.items():
        cl = services.get(f"client-{region}")
        if not check(cl is not None, path, f"no service client-{region}"):
            continue
        a = ((cl.get("networks") or {}).get(region) or {}).get("ipv4_address")
        check(a is not None and ipaddress.ip_address(a) in ipaddress.ip_network(subnet), path,
              f"client-{region} is not in {subnet}")
        check(cl.get("dns") == [((dns or {}).get("networks") or {}).get(region, {}).get("ipv4_address")], path,
              f"client-{region} does not use the DNS service's {region} address as resolver")
    origin = services.get("origin")
    if check(origin is not None, path, "no service origin"):
        oaddr = ((origin.get("networks") or {}).get("backbone") or {}).get("ipv4_address")
        for name, pool in topo["origins"].items():
            for s in pool["servers"]:
                host = addr_port(s if isinstance(s, str) else s["address"])[0]
                check(host == oaddr, path, f"origins.{name} server {host} is not the origin service's address {oaddr}")
    # The gossip key: a secret from a file the user creates, mounted where the topology's keyFile points.
    sec = (c.get("secrets") or {}).get("gossip_key") or {}
    check("file" in sec, path, "secrets.gossip_key must come from a file")
    key_file = (topo.get("gossip") or {}).get("keyFile")
    check(key_file is not None, "deploy/topology.compose.json", "gossip.keyFile is not set")
    target = os.path.normpath(os.path.join("/opt/lodestar/deploy", key_file or ""))
    drain = (topo.get("gossip") or {}).get("drainSeconds", 35)
    for sname, svc in services.items():
        cmd = svc.get("command") or []
        if cmd[:1] not in (["dns"], ["edge"]):
            continue
        mounted = [s for s in svc.get("secrets") or [] if isinstance(s, dict) and s.get("source") == "gossip_key"]
        check(any(s.get("target") == target for s in mounted), path,
              f"services.{sname} does not mount secret gossip_key at {target}")
        vols = svc.get("volumes") or []
        check(any(str(v).startswith("./topology.compose.json:/opt/lodestar/deploy/topology.json") for v in vols),
              path, f"services.{sname} does not mount topology.compose.json at /opt/lodestar/deploy/topology.json")
        check(cmd[-2:] == ["--topology", "/opt/lodestar/deploy/topology.json"], path,
              f"services.{sname} does not run with --topology /opt/lodestar/deploy/topology.json")
        grace = str(svc.get("stop_grace_period", "10s"))
        check(grace.endswith("s") and int(grace[:-1]) > drain, path,
              f"services.{sname}.stop_grace_period {grace} is not longer than drainSeconds {drain}")
        check(svc.get("read_only") is True and svc.get("cap_drop") == ["ALL"], path,
              f"services.{sname} must be read_only with cap_drop [ALL]")


def k8s_objects(root):
    objs = []
    for f in sorted(glob.glob(os.path.join(root, "deploy/k8s/*.yaml"))):
        for d in load_yaml_docs(f):
            d["_file"] = os.path.relpath(f, root)
            objs.append(d)
    return objs


def security_check(dep):
    """Every Lodestar container: non-root, read-only root, no privilege escalation, no capabilities, resources."""
    where = f"{dep['_file']} Deployment {dep['metadata']['name']}"
    spec = dep["spec"]["template"]["spec"]
    psc = spec.get("securityContext") or {}
    check(psc.get("runAsNonRoot") is True, where, "pod securityContext.runAsNonRoot is not true")
    for ctr in spec.get("containers") or []:
        csc = ctr.get("securityContext") or {}
        w = f"{where} container {ctr.get('name')}"
        check(csc.get("readOnlyRootFilesystem") is True, w, "readOnlyRootFilesystem is not true")
        check(csc.get("allowPrivilegeEscalation") is False, w, "allowPrivilegeEscalation is not false")
        check(((csc.get("capabilities") or {}).get("drop")) == ["ALL"], w, "capabilities.drop is not [ALL]")
        check(not (csc.get("capabilities") or {}).get("add"), w,
              "capabilities.add has no effect for a non-root user (no ambient capabilities in Kubernetes)")
        res = ctr.get("resources") or {}
        check(all(k in (res.get("requests") or {}) and k in (res.get("limits") or {}) for k in ("cpu", "memory")), w,
              "resources need cpu and memory requests and limits")


def check_k8s(root, binary):
    objs = k8s_objects(root)
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o.get("kind"), []).append(o)
    check(any(o["metadata"]["name"] == "lodestar" for o in by_kind.get("Namespace", [])), "deploy/k8s", "no Namespace lodestar")
    for o in objs:
        if o.get("kind") != "Namespace":
            check(o["metadata"].get("namespace") == "lodestar", o["_file"], f"{o['kind']} {o['metadata']['name']} is not in namespace lodestar")
    cms = [o for o in by_kind.get("ConfigMap", []) if "topology.json" in (o.get("data") or {})]
    if not check(len(cms) == 1, "deploy/k8s", "exactly one ConfigMap with topology.json expected"):
        return
    cm = cms[0]
    topo = json.loads(cm["data"]["topology.json"])
    run_check(binary, topo, f"{cm['_file']} (ConfigMap {cm['metadata']['name']})", root)
    drain = (topo.get("gossip") or {}).get("drainSeconds", 35)
    secrets_ = [o for o in by_kind.get("Secret", []) if "gossip.key" in (o.get("stringData") or o.get("data") or {})]
    if not check(len(secrets_) == 1, "deploy/k8s", "exactly one Secret with gossip.key expected"):
        return
    secret_name = secrets_[0]["metadata"]["name"]
    deployments = {o["metadata"]["name"]: o for o in by_kind.get("Deployment", [])}
    services = by_kind.get("Service", [])

    def pod_check(dep, role, node_id, admin, needs_gossip):
        where = f"{dep['_file']} Deployment {dep['metadata']['name']}"
        spec = dep["spec"]["template"]["spec"]
        ctrs = spec.get("containers") or []
        if not check(len(ctrs) == 1, where, "one container expected"):
            return
        ctr = ctrs[0]
        args = ctr.get("args") or []
        check(args[:1] == [role], where, f"args {args} do not run `{role}`")
        if node_id:
            check("--node" in args and args[args.index("--node") + 1] == node_id, where, f"args do not name --node {node_id}")
        check(args[-2:] == ["--topology", "/opt/lodestar/deploy/topology.json"], where, "args lack --topology /opt/lodestar/deploy/topology.json")
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        mounts = {m["name"]: m for m in ctr.get("volumeMounts") or []}
        cm_vols = [n for n, v in vols.items() if (v.get("configMap") or {}).get("name") == cm["metadata"]["name"]]
        check(any(mounts.get(n, {}).get("mountPath") == "/opt/lodestar/deploy" for n in cm_vols), where,
              "the topology ConfigMap is not mounted at /opt/lodestar/deploy")
        if needs_gossip:
            key_file = (topo.get("gossip") or {}).get("keyFile")
            key_dir = os.path.dirname(os.path.normpath(os.path.join("/opt/lodestar/deploy", key_file or "")))
            sec_vols = [n for n, v in vols.items() if (v.get("secret") or {}).get("secretName") == secret_name]
            check(any(mounts.get(n, {}).get("mountPath") == key_dir for n in sec_vols), where,
                  f"the gossip Secret {secret_name} is not mounted at {key_dir} (gossip.keyFile {key_file})")
            check(spec.get("hostNetwork") is True, where, "gossiping pods need hostNetwork (gossip addresses are node IPs)")
        if admin:
            host, port = addr_port(admin)
            for probe in ("readinessProbe", "livenessProbe"):
                g = (ctr.get(probe) or {}).get("httpGet") or {}
                check(g.get("path") == "/healthz" and g.get("port") == port and g.get("host", "") in (host, ""), where,
                      f"{probe} is not GET /healthz on the admin {admin}: {g}")
                check(host not in ("127.0.0.1", "::1") or g.get("host") == host, where,
                      f"{probe}: the admin listens on {host}, the probe must set host: {host}")
        if needs_gossip:
            check(int(spec.get("terminationGracePeriodSeconds", 30)) > drain, where,
                  f"terminationGracePeriodSeconds is not longer than drainSeconds {drain}")

    for dep in deployments.values():
        security_check(dep)
    placeholder = (secrets_[0].get("stringData") or {}).get("gossip.key", "")
    check("REPLACE" in placeholder.upper(), secrets_[0]["_file"], "the committed Secret must hold a placeholder, not a key")
    dns_deps = [d for d in deployments.values() if (d["spec"]["template"]["spec"]["containers"][0].get("args") or [""])[0] == "dns"]
    if check(len(dns_deps) == 1, "deploy/k8s", "exactly one DNS Deployment expected"):
        pod_check(dns_deps[0], "dns", None, topo["dns"].get("admin"), topo["dns"].get("gossip") is not None)
        dns_ports = {p.get("containerPort"): p for p in dns_deps[0]["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
        listen_ports = {addr_port(l)[1] for l in topo["dns"]["listen"]}
        labels = dns_deps[0]["spec"]["template"]["metadata"]["labels"]
        dns_svcs = [s for s in services if s["spec"].get("selector") and
                    all(labels.get(k) == v for k, v in s["spec"]["selector"].items()) and
                    any(p.get("port") == 53 for p in s["spec"].get("ports", []))]
        if check(len(dns_svcs) >= 1, "deploy/k8s", "no Service selects the DNS pods on port 53"):
            ports = dns_svcs[0]["spec"]["ports"]
            for proto in ("UDP", "TCP"):
                p = [x for x in ports if x.get("port") == 53 and x.get("protocol", "TCP") == proto]
                if check(p, dns_svcs[0]["_file"], f"DNS Service has no {proto} port 53"):
                    check(p[0].get("targetPort") in listen_ports, dns_svcs[0]["_file"],
                          f"DNS Service {proto} targetPort {p[0].get('targetPort')} is not a dns.listen port {listen_ports}")
        check(set(listen_ports) <= set(dns_ports), dns_deps[0]["_file"], "the DNS container does not declare its listen ports")
    for edge in topo["edges"]:
        eid = edge["id"]
        dep = deployments.get(eid)
        if not check(dep is not None, "deploy/k8s", f"edge {eid} of the ConfigMap topology has no Deployment"):
            continue
        pod_check(dep, "edge", eid, edge.get("admin"), edge.get("gossip") is not None)
        spec = dep["spec"]["template"]["spec"]
        terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
        by_selector = (spec.get("nodeSelector") or {}).get("topology.kubernetes.io/region") == edge["region"]
        by_affinity = any(any(e.get("key") == "topology.kubernetes.io/region" and e.get("values") == [edge["region"]]
                              for e in t.get("matchExpressions") or []) for t in terms)
        check(by_selector or by_affinity, dep["_file"], f"Deployment {eid} is not pinned to region {edge['region']}")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        check(any(s["spec"].get("selector") and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())
                  and s["metadata"]["name"] == eid for s in services), "deploy/k8s", f"edge {eid} has no Service")


def parse_unit(path):
    sections, current = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            if "=" not in line or current is None:
                fail(path, f"cannot parse line {line!r}")
                continue
            k, v = line.split("=", 1)
            current.setdefault(k.strip(), []).append(v.strip())
    return sections


def check_units(root, drains):
    units = sorted(glob.glob(os.path.join(root, "deploy/systemd/*.service")))
    names = {os.path.basename(u) for u in units}
    check({"lodestar-dns.service", "lodestar-edge@.service"} <= names, "deploy/systemd", f"units missing: {names}")
    for u in units:
        where = os.path.relpath(u, root)
        s = parse_unit(u).get("Service") or {}
        for k, v in UNIT_KEYS.items():
            check(s.get(k) == [v], where, f"{k}={s.get(k)} (expected {v})")
        check(s.get("DynamicUser") == ["yes"] or bool(s.get("User")), where, "no DynamicUser=yes or User=")
        t = (s.get("TimeoutStopSec") or ["0"])[0]
        check(t.isdigit() and int(t) > max(drains), where, f"TimeoutStopSec={t} is not longer than drainSeconds {max(drains)}")
        check(any(v.startswith("/var/cache/lodestar") for v in s.get("ReadWritePaths", [])), where, "no ReadWritePaths for the cache")
        creds = [v for v in s.get("LoadCredential", []) if v.startswith("gossip.key:")]
        check(bool(creds), where, "no LoadCredential=gossip.key:…")
        check(any("%d/gossip.key" in v for v in s.get("Environment", [])), where, "the gossip key is not taken from %d/gossip.key")
        start = " ".join(s.get("ExecStart", []))
        check("/usr/local/bin/lodestar " in start, where, "ExecStart does not run /usr/local/bin/lodestar")
        role = "edge --node %i" if "@" in os.path.basename(u) else "lodestar dns"
        check(role in start, where, f"ExecStart does not run `{role}`")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    root = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "deploy/topology.compose.json")) as f:
        compose_topo = json.load(f)
    run_check(binary, compose_topo, "deploy/topology.compose.json", root)
    check_compose(root, compose_topo)
    check_k8s(root, binary)
    drains = [compose_topo.get("gossip", {}).get("drainSeconds", 35)]
    check_units(root, drains)
    for e in errors:
        print("FAIL " + e)
    print(f"deploy_check: {len(errors)} failure(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
