extension TopologyParser {
    /// `gossip`: key source, probe period, overload watermark, drain time.
    func parseGossip(_ node: JSONNode) -> GossipSettings? {
        guard let f = node.object(allowed: ["keyFile", "keyEnvironment", "probeIntervalMs", "overloadWatermark",
                                            "drainSeconds"]) else { return nil }
        let d = GossipSettings()
        var keyFile: String?
        var keyFileOK = true
        if let kn = f["keyFile"] {
            keyFile = kn.string()
            if keyFile?.isEmpty ?? true { kn.fail("a key file path is needed"); keyFileOK = false }
        }
        var env: String? = d.keyEnvironment
        if let en = f["keyEnvironment"] {
            env = en.string()
            if let e = env, e.isEmpty || !e.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }) {
                en.fail("\"\(e)\" is not an environment variable name (A-Z, 0-9, _)")
                env = nil
            }
        }
        let probe = f["probeIntervalMs"].map { $0.int(in: 50...10_000) } ?? d.probeIntervalMs
        let watermark = f["overloadWatermark"].map { $0.double(in: 0.1...10) } ?? d.overloadWatermark
        var drain: Int?? = .some(nil)
        if let dn = f["drainSeconds"] { drain = dn.int(in: 0...3600).map { .some($0) } }
        guard keyFileOK, let env, let probe, let watermark, let drain else { return nil }
        return GossipSettings(keyFile: keyFile, keyEnvironment: env, probeIntervalMs: probe, overloadWatermark: watermark,
                              drainSeconds: drain)
    }

    /// Gossip addresses need the `gossip` section (its key), and no two members may share one.
    func checkGossip(edges: [Edge], dns: DNSSettings, enabled: Bool, edgesNode: JSONNode, dnsNode: JSONNode) {
        var owners: [ListenAddress: String] = [:]
        for (i, e) in edges.enumerated() {
            guard let g = e.gossip else { continue }
            if !enabled {
                edgesNode.sink.add(path: edgesNode.path + "[\(i)].gossip", reason: "gossip needs the top-level \"gossip\" section (its key)")
            }
            if let other = owners[g] {
                edgesNode.sink.add(path: edgesNode.path + "[\(i)].gossip", reason: "\(g) is also the gossip address of \(other)")
            }
            owners[g] = e.id
        }
        if let g = dns.gossip {
            if !enabled { dnsNode.sink.add(path: dnsNode.childPath("gossip"), reason: "gossip needs the top-level \"gossip\" section (its key)") }
            if let other = owners[g] { dnsNode.sink.add(path: dnsNode.childPath("gossip"), reason: "\(g) is also the gossip address of \(other)") }
        }
    }
}
