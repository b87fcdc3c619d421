/// The gossip cluster of a topology (`gossip`): how members authenticate, probe and judge load.
public struct GossipSettings: Sendable, Equatable {
    /// File with the shared keys, one per line (hex or base64; first signs), resolved against the topology's folder.
    /// nil: the keys come from the environment variable `keyEnvironment`.
    public var keyFile: String?
    /// Environment variable holding the keys (comma- or newline-separated) when there is no key file.
    public var keyEnvironment: String
    /// SWIM probe period.
    public var probeIntervalMs: Int
    /// Load (requests per second over capacity) above which DNS starts shedding an edge's queries.
    public var overloadWatermark: Double
    /// How long a draining edge keeps serving before it leaves (default: the longest service TTL plus 5 s).
    public var drainSeconds: Int?

    public init(keyFile: String? = nil, keyEnvironment: String = "LODESTAR_GOSSIP_KEY", probeIntervalMs: Int = 300,
                overloadWatermark: Double = 0.9, drainSeconds: Int? = nil) {
        self.keyFile = keyFile
        self.keyEnvironment = keyEnvironment
        self.probeIntervalMs = probeIntervalMs
        self.overloadWatermark = overloadWatermark
        self.drainSeconds = drainSeconds
    }
}

/// One member of the gossip cluster as the topology names it.
public struct GossipMember: Sendable, Equatable {
    /// The member's id (an edge id or the DNS node id).
    public var id: String
    /// Where it listens for gossip.
    public var address: ListenAddress
    /// True for an edge (it publishes an `EdgeState`), false for a DNS node.
    public var isEdge: Bool
}

extension Topology {
    /// Every member with a gossip address: the edges, then the DNS nodes.
    public var gossipMembers: [GossipMember] {
        var out = edges.compactMap { e in e.gossip.map { GossipMember(id: e.id, address: $0, isEdge: true) } }
        if let g = dns.gossip { out.append(GossipMember(id: dns.nodeId, address: g, isEdge: false)) }
        for n in dns.nodes { if let g = n.gossip { out.append(GossipMember(id: n.nodeId, address: g, isEdge: false)) } }
        return out
    }

    /// How long a draining edge keeps serving: the setting, or the longest service TTL plus 5 s.
    public var drainSeconds: Int {
        gossip?.drainSeconds ?? (Int(services.map(\.ttlSeconds).max() ?? 30) + 5)
    }
}
