import Foundation

/// Decoding of the `dns` section: the DNS node, its response rate limit and DNSSEC signing.
extension TopologyParser {
    // MARK: DNS node

    func parseDNS(_ node: JSONNode) -> DNSSettings? {
        guard let f = node.object(allowed: ["nodeId", "listen", "geoDatabase", "maxUDPPayload", "tcpIdleTimeoutSeconds",
                                            "maxTCPConnections", "rateLimit", "downFile", "packetCacheEntries", "trace",
                                            "gossip", "admin", "dnssec", "nodes", "stateFile"]) else { return nil }
        let nodeId = required(f, "nodeId", in: node).flatMap { identifier($0) }
        var listen = [ListenAddress]()
        if let ln = required(f, "listen", in: node) {
            listen = listenList(ln)
            if ln.array()?.isEmpty == true { ln.fail("at least one listen address is needed") }
        }
        let geo = required(f, "geoDatabase", in: node).flatMap { $0.string() }
        let payload = f["maxUDPPayload"].map { $0.int(in: 512...4096) } ?? 1232
        let idle = f["tcpIdleTimeoutSeconds"].map { $0.int(in: 1...300) } ?? 10
        let maxTCP = f["maxTCPConnections"].map { $0.int(in: 1...100_000) } ?? 256
        let rrl = f["rateLimit"].map(parseRateLimit) ?? RateLimitSettings()
        let down = f["downFile"].flatMap { $0.string() }
        let cache = f["packetCacheEntries"].map { $0.int(in: 0...1_000_000) } ?? 16384
        var trace: TraceAccess? = .loopback
        if let tn = f["trace"], let t = tn.string() {
            trace = TraceAccess(rawValue: t)
            if trace == nil { tn.fail("\"\(t)\" is not one of off, loopback, any") }
        } else if f["trace"] != nil {
            trace = nil
        }
        let gossip = f["gossip"].flatMap(listenAddress)
        let admin = f["admin"].flatMap(listenAddress)
        let dnssec = f["dnssec"].flatMap(parseDNSSEC)
        if f["dnssec"] != nil && dnssec == nil { return nil }
        let stateFile = f["stateFile"].flatMap { $0.string() }
        let nodes = f["nodes"].map { parseDNSNodes($0, first: nodeId) } ?? []
        guard let nodeId, let geo, let payload, let idle, let maxTCP, let rrl, let cache, let trace else { return nil }
        return DNSSettings(nodeId: nodeId, listen: listen, geoDatabase: geo, maxUDPPayload: payload,
                           tcpIdleTimeoutSeconds: idle, maxTCPConnections: maxTCP, rateLimit: rrl, downFile: down,
                           packetCacheEntries: cache, trace: trace, gossip: gossip, admin: admin, dnssec: dnssec,
                           nodes: nodes, stateFile: stateFile)
    }

    func parseDNSSEC(_ node: JSONNode) -> DNSSECSettings? {
        guard let f = node.object(allowed: ["keys", "signatureValiditySeconds", "inceptionOffsetSeconds", "refreshBeforeSeconds"])
        else { return nil }
        let d = DNSSECSettings()
        var keys = [DNSSECSettings.KeyFile]()
        var ok = true
        if let kn = f["keys"] {
            for k in kn.array() ?? [] {
                if case .string(let path)? = k.value {
                    keys.append(.init(path: path))
                } else if let kf = k.object(allowed: ["file", "sign"]), let path = required(kf, "file", in: k)?.string() {
                    guard let signs = kf["sign"].map({ $0.bool() }) ?? true else { ok = false; continue }
                    keys.append(.init(path: path, signs: signs))
                } else {
                    ok = false
                }
            }
            if !keys.isEmpty && !keys.contains(where: \.signs) { kn.fail("at least one key must sign (\"sign\": true)") ; ok = false }
        }
        let validity = f["signatureValiditySeconds"].map { $0.int(in: 3_600...7_776_000) } ?? d.signatureValiditySeconds
        let offset = f["inceptionOffsetSeconds"].map { $0.int(in: 0...604_800) } ?? d.inceptionOffsetSeconds
        let refresh = f["refreshBeforeSeconds"].map { $0.int(in: 60...7_776_000) } ?? d.refreshBeforeSeconds
        guard ok, let validity, let offset, let refresh else { return nil }
        if refresh * 2 > validity {
            (f["refreshBeforeSeconds"] ?? node).fail("refreshBeforeSeconds (\(refresh)) must be at most half of signatureValiditySeconds (\(validity))")
            return nil
        }
        return DNSSECSettings(keys: keys, signatureValiditySeconds: validity, inceptionOffsetSeconds: offset,
                              refreshBeforeSeconds: refresh)
    }

    /// A list of `ADDR:PORT` strings, each bad one reported.
    func listenList(_ node: JSONNode) -> [ListenAddress] {
        var out = [ListenAddress]()
        for l in node.array() ?? [] {
            guard let text = l.string() else { continue }
            if let a = ListenAddress(text) { out.append(a) } else { l.fail("\"\(text)\" is not ADDRESS:PORT or [ADDRESS]:PORT") }
        }
        return out
    }

    /// `dns.nodes`: the zone's other DNS nodes, each id distinct from the others and from the first node's.
    func parseDNSNodes(_ node: JSONNode, first: String?) -> [DNSNode] {
        var nodes = [DNSNode]()
        for n in node.array() ?? [] {
            guard let nf = n.object(allowed: ["nodeId", "listen", "gossip", "admin", "stateFile"]),
                  let id = required(nf, "nodeId", in: n).flatMap({ identifier($0) }) else { continue }
            if id == first || nodes.contains(where: { $0.nodeId == id }) { n.fail("nodeId \"\(id)\" is used by another DNS node") }
            nodes.append(DNSNode(nodeId: id, listen: nf["listen"].map(listenList) ?? [], gossip: nf["gossip"].flatMap(listenAddress),
                                 admin: nf["admin"].flatMap(listenAddress), stateFile: nf["stateFile"].flatMap { $0.string() }))
        }
        return nodes
    }

    func parseRateLimit(_ node: JSONNode) -> RateLimitSettings? {
        guard let f = node.object(allowed: ["enabled", "responsesPerSecond", "slip", "ipv4PrefixLength", "ipv6PrefixLength", "exemptLoopback"]) else { return nil }
        let d = RateLimitSettings()
        let enabled = f["enabled"].map { $0.bool() } ?? d.enabled
        let rps = f["responsesPerSecond"].map { $0.int(in: 1...1_000_000) } ?? d.responsesPerSecond
        let slip = f["slip"].map { $0.int(in: 0...10) } ?? d.slip
        let v4 = f["ipv4PrefixLength"].map { $0.int(in: 8...32) } ?? d.ipv4PrefixLength
        let v6 = f["ipv6PrefixLength"].map { $0.int(in: 16...128) } ?? d.ipv6PrefixLength
        let lo = f["exemptLoopback"].map { $0.bool() } ?? d.exemptLoopback
        guard let enabled, let rps, let slip, let v4, let v6, let lo else { return nil }
        return RateLimitSettings(enabled: enabled, responsesPerSecond: rps, slip: slip, ipv4PrefixLength: v4,
                                 ipv6PrefixLength: v6, exemptLoopback: lo)
    }
}
