/// The whole deployment as `topology.json` describes it: zone, regions, edges, GSLB services, DNS node settings.
public struct Topology: Sendable, Equatable {
    /// The authoritative zone and its static records.
    public var zone: Zone
    /// Geographic regions edges live in.
    public var regions: [Region]
    /// Edge nodes (the answers of GSLB services).
    public var edges: [Edge]
    /// GSLB services by label (e.g. `www` → `www.<zone>`), sorted by name.
    public var services: [Service]
    /// Settings of the `lodestar dns` node.
    public var dns: DNSSettings
    /// Origin pools edges forward to, sorted by name.
    public var pools: [OriginPool]
    /// Host/path routes to pools, in file order.
    public var routes: [Route]
    /// Settings of every edge's HTTP forwarding core.
    public var proxy: ProxySettings
    /// The gossip cluster (nil: no gossip).
    public var gossip: GossipSettings?
    /// The admin API's token source (nil: admin listeners must stay on loopback).
    public var admin: AdminSettings?

    public init(zone: Zone, regions: [Region], edges: [Edge], services: [Service], dns: DNSSettings,
                pools: [OriginPool] = [], routes: [Route] = [], proxy: ProxySettings = ProxySettings(),
                gossip: GossipSettings? = nil, admin: AdminSettings? = nil) {
        self.gossip = gossip
        self.admin = admin
        self.zone = zone
        self.regions = regions
        self.edges = edges
        self.services = services
        self.dns = dns
        self.pools = pools
        self.routes = routes
        self.proxy = proxy
    }

    /// The region with this id.
    public func region(_ id: String) -> Region? { regions.first { $0.id == id } }
    /// The edge with this id.
    public func edge(_ id: String) -> Edge? { edges.first { $0.id == id } }
    /// The origin pool with this name.
    public func pool(_ name: String) -> OriginPool? { pools.first { $0.name == name } }
}

/// The zone Lodestar is authoritative for.
public struct Zone: Sendable, Equatable {
    /// Apex name, lower case, no trailing dot (e.g. `example.test`).
    public var name: String
    /// Start of authority values.
    public var soa: SOA
    /// Apex NS records; in-zone names get glue from `addresses`.
    public var nameservers: [NameServer]
    /// Static records (names absolute, lower case, no trailing dot).
    public var records: [StaticRecord]

    public init(name: String, soa: SOA, nameservers: [NameServer], records: [StaticRecord]) {
        self.name = name
        self.soa = soa
        self.nameservers = nameservers
        self.records = records
    }
}

/// SOA RDATA plus its TTL (RFC 1035 §3.3.13); `minimum` is the negative-caching TTL (RFC 2308).
public struct SOA: Sendable, Equatable {
    public var primary: String
    public var contact: String
    public var serial: UInt32
    public var refreshSeconds: UInt32
    public var retrySeconds: UInt32
    public var expireSeconds: UInt32
    public var minimumSeconds: UInt32
    public var ttlSeconds: UInt32

    public init(primary: String, contact: String, serial: UInt32, refreshSeconds: UInt32, retrySeconds: UInt32,
                expireSeconds: UInt32, minimumSeconds: UInt32, ttlSeconds: UInt32) {
        self.primary = primary
        self.contact = contact
        self.serial = serial
        self.refreshSeconds = refreshSeconds
        self.retrySeconds = retrySeconds
        self.expireSeconds = expireSeconds
        self.minimumSeconds = minimumSeconds
        self.ttlSeconds = ttlSeconds
    }
}

/// An apex name server and, when it lies inside the zone, its glue addresses.
public struct NameServer: Sendable, Equatable {
    public var name: String
    public var addresses: [IPAddress]
    public var ttlSeconds: UInt32

    public init(name: String, addresses: [IPAddress], ttlSeconds: UInt32) {
        self.name = name
        self.addresses = addresses
        self.ttlSeconds = ttlSeconds
    }
}

/// A record served as written, whatever the client's location.
public struct StaticRecord: Sendable, Equatable {
    /// Absolute owner name, lower case, no trailing dot.
    public var name: String
    public var ttlSeconds: UInt32
    public var data: RecordData

    public init(name: String, ttlSeconds: UInt32, data: RecordData) {
        self.name = name
        self.ttlSeconds = ttlSeconds
        self.data = data
    }
}

/// RDATA of the static record types the topology accepts.
public enum RecordData: Sendable, Equatable {
    case a(IPAddress)
    case aaaa(IPAddress)
    case cname(String)
    case txt([String])
    case mx(preference: UInt16, exchange: String)
    case ns(String)

    /// The record type's mnemonic.
    public var typeName: String {
        switch self {
        case .a: "A"
        case .aaaa: "AAAA"
        case .cname: "CNAME"
        case .txt: "TXT"
        case .mx: "MX"
        case .ns: "NS"
        }
    }
}

/// A geographic region (a point edges of that region are placed at).
public struct Region: Sendable, Equatable {
    public var id: String
    public var latitude: Double
    public var longitude: Double
    /// Human-readable name for status output.
    public var name: String

    public init(id: String, latitude: Double, longitude: Double, name: String) {
        self.id = id
        self.latitude = latitude
        self.longitude = longitude
        self.name = name
    }
}

/// An edge node: where users are sent.
public struct Edge: Sendable, Equatable {
    public var id: String
    /// Region id (validated to exist).
    public var region: String
    /// Public addresses answered in A/AAAA records.
    public var addresses: [IPAddress]
    /// Relative share among equally near edges (1...1000).
    public var weight: Int
    /// HTTP(S) listeners of `lodestar edge` on this node.
    public var listen: [EdgeListener]
    /// Admin endpoint (`/healthz`, `/status`); nil: none.
    public var admin: ListenAddress?
    /// Gossip (UDP) address of `lodestar edge` on this node; nil: the edge takes no part in gossip.
    public var gossip: ListenAddress?
    /// Requests per second the edge is sized for; above `gossip.overloadWatermark` of it, DNS sheds load. 0: unknown.
    public var capacity: Int

    public init(id: String, region: String, addresses: [IPAddress], weight: Int, listen: [EdgeListener] = [],
                admin: ListenAddress? = nil, gossip: ListenAddress? = nil, capacity: Int = 0) {
        self.gossip = gossip
        self.capacity = capacity
        self.id = id
        self.region = region
        self.addresses = addresses
        self.weight = weight
        self.listen = listen
        self.admin = admin
    }
}

/// A CIDR pinned to a region, whatever GeoIP says.
public struct RegionOverride: Sendable, Equatable {
    public var prefix: IPPrefix
    public var region: String

    public init(prefix: IPPrefix, region: String) {
        self.prefix = prefix
        self.region = region
    }
}

/// A GSLB name answered with the nearest healthy edges.
public struct Service: Sendable, Equatable {
    /// Label under the zone (`www`), or `@` for the apex; `fqdn` is the absolute name.
    public var name: String
    /// Absolute owner name, lower case, no trailing dot.
    public var fqdn: String
    /// Edge ids that may answer.
    public var edges: [String]
    /// How many edges to answer with (1...8).
    public var answerCount: Int
    public var ttlSeconds: UInt32
    /// Region used when the client cannot be located.
    public var fallbackRegion: String?
    /// Prefix pins, most specific wins.
    public var overrides: [RegionOverride]
    /// When no edge is healthy: answer nothing (true) or every edge (false, the default).
    public var failClosed: Bool

    public init(name: String, fqdn: String, edges: [String], answerCount: Int, ttlSeconds: UInt32,
                fallbackRegion: String?, overrides: [RegionOverride], failClosed: Bool) {
        self.name = name
        self.fqdn = fqdn
        self.edges = edges
        self.answerCount = answerCount
        self.ttlSeconds = ttlSeconds
        self.fallbackRegion = fallbackRegion
        self.overrides = overrides
        self.failClosed = failClosed
    }
}

/// A `host:port` to listen on (`127.0.0.1:5300`, `[::1]:5300`).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: IPAddress
    public var port: Int

    public init(host: IPAddress, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `A.B.C.D:PORT` or `[V6]:PORT`.
    public init?(_ text: String) {
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            guard !hostPart.contains(":") else { return nil }
        }
        guard let host = IPAddress(String(hostPart)), let port = Int(portPart), (0...65535).contains(port) else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.isIPv4 ? "\(host):\(port)" : "[\(host)]:\(port)" }
}

/// Response rate limiting (RRL) in the manner of NSD/Knot: per client prefix, with slip.
public struct RateLimitSettings: Sendable, Equatable {
    public var enabled: Bool
    /// Answers per second allowed per client prefix.
    public var responsesPerSecond: Int
    /// Every `slip`-th dropped answer is sent truncated (TC=1) instead; 0 drops all.
    public var slip: Int
    public var ipv4PrefixLength: Int
    public var ipv6PrefixLength: Int
    /// Loopback clients are never limited.
    public var exemptLoopback: Bool

    public init(enabled: Bool = false, responsesPerSecond: Int = 20, slip: Int = 2, ipv4PrefixLength: Int = 24,
                ipv6PrefixLength: Int = 56, exemptLoopback: Bool = true) {
        self.enabled = enabled
        self.responsesPerSecond = responsesPerSecond
        self.slip = slip
        self.ipv4PrefixLength = ipv4PrefixLength
        self.ipv6PrefixLength = ipv6PrefixLength
        self.exemptLoopback = exemptLoopback
    }
}

/// Who may ask for a decision trace (`dig CH TXT <service name>`).
public enum TraceAccess: String, Sendable, Equatable, CaseIterable {
    /// Never answered (REFUSED).
    case off
    /// Only clients on loopback addresses (the default).
    case loopback
    /// Every client.
    case any
}

/// Settings of a `lodestar dns` node.
public struct DNSSettings: Sendable, Equatable {
    /// Node id (answered in NSID, RFC 5001).
    public var nodeId: String
    /// UDP and TCP listen addresses.
    public var listen: [ListenAddress]
    /// Path of the GeoIP `.mmdb` (relative paths are resolved against the topology file's folder).
    public var geoDatabase: String
    /// Largest UDP response when the client advertises more or no EDNS (RFC 6891; 1232 is the DNS-flag-day value).
    public var maxUDPPayload: Int
    /// Idle timeout of a TCP connection (RFC 7766 §6.2.3).
    public var tcpIdleTimeoutSeconds: Int
    /// Concurrent TCP connections accepted.
    public var maxTCPConnections: Int
    public var rateLimit: RateLimitSettings
    /// Optional file listing edge ids (one per line) an operator marked down.
    public var downFile: String?
    /// Responses kept per UDP event loop for reuse (0 turns the packet cache off).
    public var packetCacheEntries: Int
    /// Who gets decision traces for `CH TXT` queries of a service name.
    public var trace: TraceAccess
    /// Gossip (UDP) address of this DNS node; nil: it takes no part in gossip (answers follow operator state only).
    public var gossip: ListenAddress?
    /// Admin endpoint (`/healthz`, `/status` with the health view); nil: none.
    public var admin: ListenAddress?
    /// Online DNSSEC signing (`dns.dnssec`); nil: the zone is not signed.
    public var dnssec: DNSSECSettings?
    /// The zone's other DNS nodes (`dns.nodes`): each runs with `lodestar dns --node ID`, and all of them gossip the
    /// operator drains to each other.
    public var nodes: [DNSNode] = []
    /// Where this node keeps the operator drains across restarts (`dns.stateFile`; nil: `<nodeId>.state.json` beside
    /// the topology file).
    public var stateFile: String?

    public init(nodeId: String, listen: [ListenAddress], geoDatabase: String, maxUDPPayload: Int = 1232,
                tcpIdleTimeoutSeconds: Int = 10, maxTCPConnections: Int = 256,
                rateLimit: RateLimitSettings = RateLimitSettings(), downFile: String? = nil, packetCacheEntries: Int = 16384,
                trace: TraceAccess = .loopback, gossip: ListenAddress? = nil, admin: ListenAddress? = nil,
                dnssec: DNSSECSettings? = nil, nodes: [DNSNode] = [], stateFile: String? = nil) {
        self.dnssec = dnssec
        self.nodes = nodes
        self.stateFile = stateFile
        self.gossip = gossip
        self.admin = admin
        self.packetCacheEntries = packetCacheEntries
        self.trace = trace
        self.nodeId = nodeId
        self.listen = listen
        self.geoDatabase = geoDatabase
        self.maxUDPPayload = maxUDPPayload
        self.tcpIdleTimeoutSeconds = tcpIdleTimeoutSeconds
        self.maxTCPConnections = maxTCPConnections
        self.rateLimit = rateLimit
        self.downFile = downFile
    }
}

/// `dns.dnssec`: the zone's keys (BIND `.private` files) and signature timing.
public struct DNSSECSettings: Sendable, Equatable {
    /// One key file and whether it signs (false: published in DNSKEY only, as while a new key is pre-published or an
    /// old one retires).
    public struct KeyFile: Sendable, Equatable {
        public var path: String
        public var signs: Bool
        public init(path: String, signs: Bool = true) {
            self.path = path
            self.signs = signs
        }
    }

    /// Empty: `lodestar up` makes a key for the run; `lodestar dns` refuses to start.
    public var keys: [KeyFile]
    public var signatureValiditySeconds: Int
    public var inceptionOffsetSeconds: Int
    public var refreshBeforeSeconds: Int

    public init(keys: [KeyFile] = [], signatureValiditySeconds: Int = 604_800, inceptionOffsetSeconds: Int = 3_600,
                refreshBeforeSeconds: Int = 172_800) {
        self.keys = keys
        self.signatureValiditySeconds = signatureValiditySeconds
        self.inceptionOffsetSeconds = inceptionOffsetSeconds
        self.refreshBeforeSeconds = refreshBeforeSeconds
    }
}

/// Another DNS node of the zone (`dns.nodes[]`): its id and its own addresses; what it leaves out is the first node's.
public struct DNSNode: Sendable, Equatable {
    public var nodeId: String
    public var listen: [ListenAddress]
    public var gossip: ListenAddress?
    public var admin: ListenAddress?
    public var stateFile: String?

    public init(nodeId: String, listen: [ListenAddress] = [], gossip: ListenAddress? = nil, admin: ListenAddress? = nil,
                stateFile: String? = nil) {
        self.nodeId = nodeId
        self.listen = listen
        self.gossip = gossip
        self.admin = admin
        self.stateFile = stateFile
    }
}

extension Topology {
    /// The topology as DNS node `id` runs it: that node's id and addresses in `dns`, the others in `dns.nodes`.
    /// Nil when no DNS node has that id.
    public func selectingDNSNode(_ id: String) -> Topology? {
        if id == dns.nodeId { return self }
        guard let i = dns.nodes.firstIndex(where: { $0.nodeId == id }) else { return nil }
        var t = self
        let chosen = dns.nodes[i]
        t.dns.nodes[i] = DNSNode(nodeId: dns.nodeId, listen: dns.listen, gossip: dns.gossip, admin: dns.admin, stateFile: dns.stateFile)
        t.dns.nodeId = chosen.nodeId
        if !chosen.listen.isEmpty { t.dns.listen = chosen.listen }
        t.dns.gossip = chosen.gossip
        t.dns.admin = chosen.admin
        t.dns.stateFile = chosen.stateFile
        return t
    }
}
