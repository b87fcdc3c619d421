import Foundation

extension Topology {
    /// Largest TTL accepted anywhere in the topology (one week); longer TTLs defeat GSLB.
    public static let maxTTLSeconds = 604_800

    /// Reads and validates a topology file; relative paths inside it are resolved against its folder.
    /// Throws `TopologyErrors` listing every problem with file, JSON path and reason.
    public static func load(path: String) throws -> Topology {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TopologyErrors(issues: [TopologyIssue(file: path, path: "", reason: "cannot read file")])
        }
        var topology = try decode(data, file: path)
        let folder = (path as NSString).deletingLastPathComponent
        topology.dns.geoDatabase = resolve(topology.dns.geoDatabase, against: folder)
        if let down = topology.dns.downFile { topology.dns.downFile = resolve(down, against: folder) }
        topology.dns.stateFile = topology.dns.stateFile.map { resolve($0, against: folder) }
        for n in topology.dns.nodes.indices {
            topology.dns.nodes[n].stateFile = topology.dns.nodes[n].stateFile.map { resolve($0, against: folder) }
        }
        if var sec = topology.dns.dnssec {
            for k in sec.keys.indices { sec.keys[k].path = resolve(sec.keys[k].path, against: folder) }
            topology.dns.dnssec = sec
        }
        if let disk = topology.proxy.cache.diskPath { topology.proxy.cache.diskPath = resolve(disk, against: folder) }
        if let keyFile = topology.gossip?.keyFile { topology.gossip?.keyFile = resolve(keyFile, against: folder) }
        if let tokenFile = topology.admin?.tokenFile { topology.admin?.tokenFile = resolve(tokenFile, against: folder) }
        for e in topology.edges.indices {
            for l in topology.edges[e].listen.indices {
                guard var tls = topology.edges[e].listen[l].tls else { continue }
                for c in tls.certificates.indices {
                    tls.certificates[c].certificatePath = resolve(tls.certificates[c].certificatePath, against: folder)
                    tls.certificates[c].keyPath = resolve(tls.certificates[c].keyPath, against: folder)
                }
                topology.edges[e].listen[l].tls = tls
            }
        }
        for p in topology.pools.indices {
            guard var tls = topology.pools[p].tls else { continue }
            tls.caFile = tls.caFile.map { resolve($0, against: folder) }
            tls.clientCertificate = tls.clientCertificate.map { resolve($0, against: folder) }
            tls.clientKey = tls.clientKey.map { resolve($0, against: folder) }
            topology.pools[p].tls = tls
        }
        return topology
    }

    private static func resolve(_ path: String, against folder: String) -> String {
        if path.hasPrefix("/") || folder.isEmpty { return path }
        return (folder as NSString).appendingPathComponent(path)
    }

    /// Decodes and validates topology JSON; `file` only labels the errors.
    public static func decode(_ data: Data, file: String) throws -> Topology {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw TopologyErrors(issues: [TopologyIssue(file: file, path: "", reason: "not valid JSON: \(describe(error))")])
        }
        let sink = IssueSink(file: file)
        let parsed = TopologyParser(sink: sink).parse(JSONNode(value: root, path: "", sink: sink))
        guard sink.issues.isEmpty, let topology = parsed else {
            throw TopologyErrors(issues: sink.issues.isEmpty
                ? [TopologyIssue(file: file, path: "", reason: "invalid topology")] : sink.issues)
        }
        return topology
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let ctx) = error {
            return (ctx.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String ?? ctx.debugDescription
        }
        return String(describing: error)
    }
}

/// Walks the JSON tree into a `Topology`, recording every issue instead of stopping at the first.
struct TopologyParser {
    let sink: IssueSink

    func parse(_ root: JSONNode) -> Topology? {
        guard let fields = root.object(allowed: ["zone", "regions", "edges", "services", "dns", "origins", "routes", "proxy",
                                                 "gossip", "admin", "$comment"]) else { return nil }
        // Look every section up before giving up, so each missing one is reported.
        let sections = ["zone", "regions", "edges", "services", "dns"].map { required(fields, $0, in: root) }
        guard let zoneNode = sections[0], let regionsNode = sections[1], let edgesNode = sections[2],
              let servicesNode = sections[3], let dnsNode = sections[4] else { return nil }

        let zone = parseZone(zoneNode)
        let regions = parseRegions(regionsNode)
        let edges = parseEdges(edgesNode, regions: regions)
        let services = zone.map { parseServices(servicesNode, zone: $0.name, edges: edges, regions: regions) } ?? []
        let dns = parseDNS(dnsNode)
        checkListeners(edges, node: edgesNode)
        let pools = fields["origins"].map(parseOrigins) ?? []
        let routes = fields["routes"].map { parseRoutes($0, pools: pools) } ?? []
        let proxy = fields["proxy"].map(parseProxy) ?? ProxySettings()
        var gossip: GossipSettings?
        var gossipParsed = true
        if let gn = fields["gossip"] {
            gossip = parseGossip(gn)
            gossipParsed = gossip != nil
        }
        if let dns { checkGossip(edges: edges, dns: dns, enabled: fields["gossip"] != nil, edgesNode: edgesNode, dnsNode: dnsNode) }
        let admin = fields["admin"].map(parseAdmin)
        if let dns { checkAdmin(edges: edges, dns: dns, hasToken: fields["admin"] != nil, edgesNode: edgesNode, dnsNode: dnsNode) }
        if let zone, let dns, let proxy, gossipParsed, admin != .some(nil) {
            checkNameCollisions(zone: zone, services: services, node: servicesNode)
            return Topology(zone: zone, regions: regions, edges: edges, services: services, dns: dns,
                            pools: pools, routes: routes, proxy: proxy, gossip: gossip, admin: admin ?? nil)
        }
        return nil
    }

    func required(_ fields: [String: JSONNode], _ key: String, in parent: JSONNode) -> JSONNode? {
        guard let node = fields[key] else {
            sink.add(path: parent.childPath(key), reason: "missing required field")
            return nil
        }
        return node
    }

    // MARK: Names

    /// Validates a DNS name and returns it lower case without the trailing dot.
    func domainName(_ node: JSONNode) -> String? {
        guard let raw = node.string() else { return nil }
        return checkedName(raw, node: node)
    }

    func checkedName(_ raw: String, node: JSONNode) -> String? {
        var name = raw.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else { node.fail("empty domain name"); return nil }
        guard name.utf8.count <= 253 else { node.fail("domain name longer than 253 octets"); return nil }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63 else {
                node.fail("\"\(raw)\" has an empty label or one longer than 63 octets")
                return nil
            }
            guard label.utf8.allSatisfy({ isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) else {
                node.fail("\"\(raw)\" has a character other than letters, digits, '-' or '_'")
                return nil
            }
        }
        return name
    }

    /// RFC 4592 §2.1.1: a wildcard name has `*` as its first label, and only there. Returns whether `raw` is one and
    /// the name below its `*.` ("" for a bare `*`; `raw` itself when it is no wildcard); nil, with an issue, for a
    /// wildcard with another `*`.
    func splitWildcard(_ raw: String, node: JSONNode) -> (wildcard: Bool, rest: String)? {
        guard raw == "*" || raw.hasPrefix("*.") else { return (false, raw) }
        let rest = String(raw.dropFirst(raw == "*" ? 1 : 2))
        guard !rest.contains("*") else {
            node.fail("\"\(raw)\": `*` may only be the first label of a wildcard name")
            return nil
        }
        return (true, rest)
    }

    /// An owner name relative to the zone: `@`, a relative label sequence, or an absolute name ending in `.` inside the zone.
    func ownerName(_ node: JSONNode, zone: String) -> String? {
        guard let raw = node.string() else { return nil }
        if raw == "@" { return zone }
        guard let (wildcard, rest) = splitWildcard(raw, node: node) else { return nil }
        if wildcard {
            guard !rest.isEmpty else { return "*." + zone }
            return ownerName(JSONNode(value: .string(rest), path: node.path, sink: node.sink), zone: zone).map { "*." + $0 }
        }
        if raw.hasSuffix(".") {
            guard let name = checkedName(raw, node: node) else { return nil }
            guard name == zone || name.hasSuffix("." + zone) else {
                node.fail("\"\(raw)\" is outside the zone \(zone)")
                return nil
            }
            return name
        }
        guard let relative = checkedName(raw, node: node) else { return nil }
        return relative + "." + zone
    }

    func ttl(_ fields: [String: JSONNode], _ key: String, default value: Int) -> UInt32? {
        guard let node = fields[key] else { return UInt32(value) }
        return node.int(in: 0...Topology.maxTTLSeconds).map { UInt32($0) }
    }

    func address(_ node: JSONNode) -> IPAddress? {
        guard let text = node.string() else { return nil }
        guard let addr = IPAddress(text) else {
            node.fail("\"\(text)\" is not an IPv4 or IPv6 address")
            return nil
        }
        return addr
    }

    // MARK: Zone

    func parseZone(_ node: JSONNode) -> Zone? {
        guard let f = node.object(allowed: ["name", "soa", "nameservers", "records"]) else { return nil }
        guard let nameNode = required(f, "name", in: node), let name = domainName(nameNode) else { return nil }
        let soa = required(f, "soa", in: node).flatMap { parseSOA($0, zone: name) }
        var nameservers = [NameServer]()
        if let nsNode = required(f, "nameservers", in: node), let list = nsNode.array() {
            if list.isEmpty { nsNode.fail("a zone needs at least one name server") }
            for item in list {
                if let ns = parseNameServer(item, zone: name) { nameservers.append(ns) }
            }
        }
        var records = [StaticRecord]()
        if let recNode = f["records"], let list = recNode.array() {
            for item in list {
                if let rec = parseRecord(item, zone: name) { records.append(rec) }
            }
        }
        checkCNAMEs(records, node: f["records"])
        guard let soa else { return nil }
        return Zone(name: name, soa: soa, nameservers: nameservers, records: records)
    }

    func parseSOA(_ node: JSONNode, zone: String) -> SOA? {
        guard let f = node.object(allowed: ["primary", "contact", "serial", "refresh", "retry", "expire", "minimum", "ttl"]) else { return nil }
        let primary = required(f, "primary", in: node).flatMap(domainName)
        let contact = required(f, "contact", in: node).flatMap { n -> String? in
            guard let raw = n.string() else { return nil }
            // Accept the mailbox form hostmaster@example.test and turn it into the RNAME form.
            let dotted = raw.replacingOccurrences(of: "@", with: ".")
            return checkedName(dotted, node: n)
        }
        let serial = required(f, "serial", in: node).flatMap { $0.int(in: 0...Int(UInt32.max)) }
        func field(_ k: String, _ d: Int) -> UInt32? {
            guard let n = f[k] else { return UInt32(d) }
            return n.int(in: 0...Int(Int32.max)).map { UInt32($0) }
        }
        let refresh = field("refresh", 3600), retry = field("retry", 600), expire = field("expire", 604_800)
        let minimum = f["minimum"].map { $0.int(in: 0...86400).map { UInt32($0) } } ?? 60
        let soaTTL = ttl(f, "ttl", default: 3600)
        guard let primary, let contact, let serial, let refresh, let retry, let expire, let minimum, let soaTTL else { return nil }
        return SOA(primary: primary, contact: contact, serial: UInt32(serial), refreshSeconds: refresh, retrySeconds: retry,
                   expireSeconds: expire, minimumSeconds: minimum, ttlSeconds: soaTTL)
    }

    func parseNameServer(_ node: JSONNode, zone: String) -> NameServer? {
        guard let f = node.object(allowed: ["name", "addresses", "ttl"]) else { return nil }
        guard let name = required(f, "name", in: node).flatMap(domainName) else { return nil }
        var addrs = [IPAddress]()
        if let list = f["addresses"]?.array() {
            for item in list { if let a = address(item) { addrs.append(a) } }
        }
        let inZone = name == zone || name.hasSuffix("." + zone)
        if inZone && addrs.isEmpty {
            node.fail("name server \(name) is inside the zone and needs glue \"addresses\"")
        }
        guard let t = ttl(f, "ttl", default: 3600) else { return nil }
        return NameServer(name: name, addresses: addrs, ttlSeconds: t)
    }

    func parseRecord(_ node: JSONNode, zone: String) -> StaticRecord? {
        guard let f = node.object(allowed: ["name", "type", "ttl", "value"]) else { return nil }
        let name = required(f, "name", in: node).flatMap { ownerName($0, zone: zone) }
        guard let typeNode = required(f, "type", in: node), let type = typeNode.string() else { return nil }
        guard let valueNode = required(f, "value", in: node) else { return nil }
        let recTTL = ttl(f, "ttl", default: 300)
        var data: RecordData?
        switch type.uppercased() {
        case "A":
            if let a = address(valueNode) {
                if a.isIPv4 { data = .a(a) } else { valueNode.fail("an A record needs an IPv4 address") }
            }
        case "AAAA":
            if let a = address(valueNode) {
                if !a.isIPv4 { data = .aaaa(a) } else { valueNode.fail("an AAAA record needs an IPv6 address") }
            }
        case "CNAME":
            data = domainName(valueNode).map { .cname($0) }
        case "NS":
            data = domainName(valueNode).map { .ns($0) }
        case "TXT":
            var strings: [String]?
            if case .string(let s)? = valueNode.value { strings = [s] }
            else if let list = valueNode.array() { strings = list.compactMap { $0.string() } }
            if let strings {
                if strings.contains(where: { $0.utf8.count > 255 }) {
                    valueNode.fail("a TXT character-string is longer than 255 octets")
                } else if strings.isEmpty {
                    valueNode.fail("a TXT record needs at least one string")
                } else {
                    data = .txt(strings)
                }
            }
        case "MX":
            if let text = valueNode.string() {
                let parts = text.split(separator: " ", omittingEmptySubsequences: true)
                if parts.count == 2, let pref = UInt16(parts[0]), let ex = checkedName(String(parts[1]), node: valueNode) {
                    data = .mx(preference: pref, exchange: ex)
                } else if parts.count != 2 || UInt16(parts[0]) == nil {
                    valueNode.fail("an MX value is \"PREFERENCE EXCHANGE\", e.g. \"10 mail.example.test\"")
                }
            }
        default:
            typeNode.fail("unsupported record type \"\(type)\" (A, AAAA, CNAME, TXT, MX, NS)")
        }
        guard let name, let recTTL, let data else { return nil }
        if name == zone, case .ns = data {
            node.fail("apex NS records come from zone.nameservers")
            return nil
        }
        return StaticRecord(name: name, ttlSeconds: recTTL, data: data)
    }

    // MARK: Regions and edges

    func parseRegions(_ node: JSONNode) -> [Region] {
        guard let list = node.array() else { return [] }
        if list.isEmpty { node.fail("at least one region is needed") }
        var out = [Region]()
        var seen = Set<String>()
        for item in list {
            guard let f = item.object(allowed: ["id", "latitude", "longitude", "name"]) else { continue }
            let id = required(f, "id", in: item).flatMap { identifier($0) }
            let lat = required(f, "latitude", in: item).flatMap { $0.double(in: -90...90) }
            let lon = required(f, "longitude", in: item).flatMap { $0.double(in: -180...180) }
            let name = f["name"].flatMap { $0.string() }
            guard let id, let lat, let lon else { continue }
            if !seen.insert(id).inserted {
                f["id"]?.fail("duplicate region id \"\(id)\"")
                continue
            }
            out.append(Region(id: id, latitude: lat, longitude: lon, name: name ?? id))
        }
        return out
    }

    /// An id of letters, digits, '-', '_' and '.'.
    func identifier(_ node: JSONNode) -> String? {
        guard let s = node.string() else { return nil }
        guard !s.isEmpty, s.utf8.count <= 63,
              s.utf8.allSatisfy({ isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }) else {
            node.fail("\"\(s)\" is not an id (1-63 letters, digits, '-', '_', '.')")
            return nil
        }
        return s
    }

    func parseEdges(_ node: JSONNode, regions: [Region]) -> [Edge] {
        guard let list = node.array() else { return [] }
        if list.isEmpty { node.fail("at least one edge is needed") }
        let regionIds = Set(regions.map(\.id))
        var out = [Edge]()
        var seen = Set<String>()
        for item in list {
            guard let f = item.object(allowed: ["id", "region", "addresses", "weight", "listen", "admin", "gossip",
                                                "capacity"]) else { continue }
            let id = required(f, "id", in: item).flatMap { identifier($0) }
            var region: String?
            if let rn = required(f, "region", in: item), let r = rn.string() {
                if regionIds.contains(r) { region = r } else { rn.fail("unknown region \"\(r)\"") }
            }
            var addrs = [IPAddress]()
            if let an = required(f, "addresses", in: item), let al = an.array() {
                if al.isEmpty { an.fail("an edge needs at least one address") }
                for a in al { if let x = address(a) { addrs.append(x) } }
            }
            let weight = f["weight"].map { $0.int(in: 1...1000) } ?? 100
            var listen = [EdgeListener]()
            if let ln = f["listen"], let ll = ln.array() {
                for l in ll { if let x = parseListener(l) { listen.append(x) } }
            }
            let admin = f["admin"].flatMap(listenAddress)
            let gossip = f["gossip"].flatMap(listenAddress)
            let capacity = f["capacity"].map { $0.int(in: 0...100_000_000) } ?? 0
            guard let id, let region, let weight, let capacity, !addrs.isEmpty else { continue }
            if !seen.insert(id).inserted {
                f["id"]?.fail("duplicate edge id \"\(id)\"")
                continue
            }
            out.append(Edge(id: id, region: region, addresses: addrs, weight: weight, listen: listen, admin: admin,
                            gossip: gossip, capacity: capacity))
        }
        return out
    }

    // MARK: Services

    func parseServices(_ node: JSONNode, zone: String, edges: [Edge], regions: [Region]) -> [Service] {
        guard let items = node.map() else { return [] }
        let edgeIds = Set(edges.map(\.id))
        let regionIds = Set(regions.map(\.id))
        var out = [Service]()
        for (label, item) in items {
            let fqdn: String?
            if label == "@" {
                fqdn = zone
            } else if let (wildcard, rest) = splitWildcard(label, node: item) {
                // A wildcard service (RFC 4592 owner) answers every name below its parent that does not exist.
                let prefix = wildcard ? "*." : ""
                fqdn = wildcard && rest.isEmpty ? prefix + zone : checkedName(rest, node: item).map { prefix + $0 + "." + zone }
            } else {
                fqdn = nil
            }
            guard let f = item.object(allowed: ["edges", "answerCount", "ttl", "fallbackRegion", "overrides", "failClosed"]) else { continue }
            var ids = [String]()
            if let en = required(f, "edges", in: item), let el = en.array() {
                if el.isEmpty { en.fail("a service needs at least one edge") }
                var seen = Set<String>()
                for e in el {
                    guard let id = e.string() else { continue }
                    if !edgeIds.contains(id) { e.fail("unknown edge \"\(id)\""); continue }
                    if !seen.insert(id).inserted { e.fail("edge \"\(id)\" listed twice"); continue }
                    ids.append(id)
                }
            }
            let count = f["answerCount"].map { $0.int(in: 1...8) } ?? 1
            let sTTL = ttl(f, "ttl", default: 30)
            var fallback: String?
            if let fn = f["fallbackRegion"], let r = fn.string() {
                if regionIds.contains(r) { fallback = r } else { fn.fail("unknown region \"\(r)\"") }
            }
            var overrides = [RegionOverride]()
            if let on = f["overrides"], let ol = on.array() {
                for o in ol {
                    guard let of = o.object(allowed: ["prefix", "region"]) else { continue }
                    var prefix: IPPrefix?
                    if let pn = required(of, "prefix", in: o), let p = pn.string() {
                        prefix = IPPrefix(p)
                        if prefix == nil { pn.fail("\"\(p)\" is not a CIDR prefix") }
                    }
                    var region: String?
                    if let rn = required(of, "region", in: o), let r = rn.string() {
                        if regionIds.contains(r) { region = r } else { rn.fail("unknown region \"\(r)\"") }
                    }
                    if let prefix, let region { overrides.append(RegionOverride(prefix: prefix, region: region)) }
                }
            }
            let failClosed = f["failClosed"].map { $0.bool() } ?? false
            guard let fqdn, let count, let sTTL, let failClosed, !ids.isEmpty else { continue }
            // Most specific override first, so the first match wins.
            overrides.sort { $0.prefix.length > $1.prefix.length }
            out.append(Service(name: label, fqdn: fqdn, edges: ids, answerCount: count, ttlSeconds: sTTL,
                               fallbackRegion: fallback, overrides: overrides, failClosed: failClosed))
        }
        return out
    }

    /// A service name may not also carry static records (it would be two answers for one name).
    func checkNameCollisions(zone: Zone, services: [Service], node: JSONNode) {
        let staticNames = Set(zone.records.map(\.name))
        for s in services where staticNames.contains(s.fqdn) {
            node.sink.add(path: node.childPath(s.name), reason: "\(s.fqdn) is both a service and a static record")
        }
    }
}
