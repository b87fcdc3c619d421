import LodestarEdge
import LodestarTopology
import NIOHTTP1
import NIOSSL
import Synchronization

/// A route ready for the request path: its pool and header rules (a class: requests share it). Its host, path, deny
/// and upgrade rules live in `EdgeConfig.admission`.
public final class CompiledRoute: Sendable {
    public let route: Route
    /// Index into `EdgeConfig.pools`.
    public let poolIndex: Int
    /// Lower-cased names the request rules remove, plus the names they set (set replaces).
    let requestRemove: [String]
    let responseRemove: [String]
    /// The route's name in metrics: its first host and path prefix.
    public let label: String

    init(route: Route, poolIndex: Int, requestRemove: [String], responseRemove: [String]) {
        label = (route.hosts.first ?? "*") + route.pathPrefix
        self.route = route
        self.poolIndex = poolIndex
        self.requestRemove = requestRemove
        self.responseRemove = responseRemove
    }
}

/// Everything an edge's request path reads, compiled once from the topology (immutable, shared by all loops).
public final class EdgeConfig: Sendable {
    public let edgeId: String
    /// The topology this was compiled from (a change of origin addresses compiles it again).
    public let topology: Topology
    public let settings: ProxySettings
    public let pools: [PoolRuntime]
    /// Routes whose pool exists, in file order (`admission`'s route indices point here).
    public let routes: [CompiledRoute]
    /// The admission phase: limits, Host, rate limit (per-client token buckets; a reload starts them afresh), route
    /// table, deny rules, upgrades.
    public let admission: Admission
    /// `Via` value this edge adds (`1.1 <edge id>`), and for messages it received over HTTP/2 (`2 <edge id>`).
    let via: String
    let via2: String
    /// Lower-cased request-id header name.
    let requestIdHeader: String

    /// Throws `EdgeStartError` when an origin pool's TLS files cannot be used. Servers given by name get the addresses
    /// in `resolved` (none while a name is not known yet). With `previous` (the same topology, new addresses), a pool
    /// whose servers did not change keeps its runtime — health, connections — and a changed one keeps the health of
    /// the addresses it still has.
    public init(topology: Topology, edgeId: String, resolved: ResolvedNames = [:], previous: EdgeConfig? = nil) throws {
        self.edgeId = edgeId
        self.topology = topology
        self.settings = topology.proxy
        let pools = try topology.pools.map { pool in
            let servers = ResolvedServer.expand(pool, resolved: resolved)
            let old = previous?.pools.first { $0.pool == pool }
            if let old, old.servers == servers { return old }
            return try PoolRuntime(pool: pool, servers: servers, inheriting: old, tlsContext: old?.tlsContext)
        }
        self.pools = pools
        var index = [String: Int]()
        for (i, p) in pools.enumerated() { index[p.pool.name] = i }
        let usable = topology.routes.compactMap { r in index[r.pool].map { (r, $0) } }
        self.routes = usable.map { r, pi in
            CompiledRoute(
                route: r, poolIndex: pi,
                requestRemove: (r.requestHeaders.remove + r.requestHeaders.set.map(\.name)).map { $0.lowercased() },
                responseRemove: (r.responseHeaders.remove + r.responseHeaders.set.map(\.name)).map { $0.lowercased() })
        }
        self.admission = Admission(
            limits: topology.proxy.limits,
            routes: RouteTable(usable.map { (hosts: $0.0.hosts, pathPrefix: $0.0.pathPrefix) }),
            rules: usable.map { Admission.RouteRules(deny: DenyMatcher($0.0.deny), upgrade: $0.0.upgrade) },
            rateLimiter: topology.proxy.rateLimit.enabled ? RequestRateLimiter(settings: topology.proxy.rateLimit) : nil,
            maxTunnels: topology.proxy.tunnels.maxOpen)
        self.via = "1.1 \(edgeId)"
        self.via2 = "2 \(edgeId)"
        self.requestIdHeader = topology.proxy.requestIdHeader.lowercased()
    }

    /// The route for a host (lower case, no port) and path: among routes whose hosts match, the longest
    /// path prefix wins; on a tie, the first in the file.
    public func route(host: Substring, path: Substring) -> CompiledRoute? {
        admission.routes.lookup(host: host, path: path).map { routes[$0] }
    }
}

/// A pool's shared runtime: settings, its servers (named ones expanded to their addresses), health, hash ring (one per
/// pool, shared by every event loop).
public final class PoolRuntime: Sendable {
    public let pool: OriginPool
    /// The servers requests go to, indexed as in `health`.
    public let servers: [ResolvedServer]
    public let health: PoolHealth
    let ring: HashRing?
    let weights: [Int]
    /// The servers' labels (for logs and the status page; never sent to clients).
    let labels: [String]
    /// When "no healthy origin" was last logged (uptime ns), so a dead pool does not flood the log.
    let lastDegradedLog = Atomic<UInt64>(0)

    /// TLS towards the servers (`pool.tls`): verification on, against `caFile` or the system store, ALPN `h2` for h2
    /// pools.
    let tlsContext: NIOSSLContext?

    /// Throws `EdgeStartError` ("origins.NAME.tls: …") when the TLS files cannot be used. `inheriting`: the pool's
    /// previous runtime, whose servers' health carries over to the same addresses; `tlsContext`: its TLS context,
    /// reused (a reload passes none, so the files are read again).
    init(pool: OriginPool, servers: [ResolvedServer], inheriting old: PoolRuntime? = nil, tlsContext: NIOSSLContext? = nil) throws {
        self.pool = pool
        self.servers = servers
        self.tlsContext = try tlsContext ?? pool.tls.map { try Self.makeTLSContext($0, protocol: pool.protocol, pool: pool.name) }
        self.weights = servers.map(\.weight)
        let carried: [Int?] = servers.map { s in old?.servers.firstIndex { $0.address == s.address } }
        self.health = PoolHealth(serverCount: servers.count, active: pool.healthCheck, passive: pool.passive,
                                 inheriting: old.map { o in (o.health, carried) })
        self.ring = pool.balance == .consistentHash ? HashRing(weights: weights) : nil
        self.labels = servers.map(\.label)
    }

    /// The name TLS verifies and sends (SNI) for `server`: `tls.serverName`, else the name the server was given by.
    func tlsServerName(_ server: Int) -> String? {
        pool.tls?.serverName ?? (servers.indices.contains(server) ? servers[server].hostName : nil)
    }

    static func makeTLSContext(_ tls: OriginTLS, protocol: OriginProtocol, pool: String) throws -> NIOSSLContext {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = .fullVerification
        config.minimumTLSVersion = .tlsv12
        config.applicationProtocols = `protocol` == .h2 ? ["h2"] : ["http/1.1"]
        do {
            if let ca = tls.caFile { config.trustRoots = .file(ca) }
            if let cert = tls.clientCertificate, let key = tls.clientKey {
                config.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                config.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
            return try NIOSSLContext(configuration: config)
        } catch {
            throw EdgeStartError(description: "origins.\(pool).tls: \(error)")
        }
    }
}

/// Addresses known for origin host names, by name.
public typealias ResolvedNames = [String: NameAddresses]

/// The IPv4 and IPv6 addresses last known for one name (empty: none, or not looked up).
public struct NameAddresses: Sendable, Equatable {
    public var v4: [IPAddress] = []
    public var v6: [IPAddress] = []

    public init(v4: [IPAddress] = [], v6: [IPAddress] = []) {
        self.v4 = v4
        self.v6 = v6
    }

    /// The addresses a pool with this preference uses.
    public func pick(_ family: AddressFamilyPreference) -> [IPAddress] {
        switch family {
        case .ipv4: return v4
        case .ipv6: return v6
        case .ipv4Preferred: return v4.isEmpty ? v6 : v4
        case .any: return v4 + v6
        }
    }
}

/// One server of a pool at run time: an address, the name it was found by (if any), its weight and label.
public struct ResolvedServer: Sendable, Equatable {
    public let address: ListenAddress
    /// The host name the server was given by (TLS name, health-check Host), nil for an address.
    public let hostName: String?
    public let weight: Int
    /// `10.0.0.5:8443` or `app.internal:8443 (10.0.0.5)`.
    public let label: String

    /// The pool's servers: addresses as given; each name as one server per address known for it.
    static func expand(_ pool: OriginPool, resolved: ResolvedNames) -> [ResolvedServer] {
        var out = [ResolvedServer]()
        var seen = Set<ListenAddress>()
        for s in pool.servers {
            switch s.target {
            case .address(let a):
                if seen.insert(a).inserted { out.append(ResolvedServer(address: a, hostName: nil, weight: s.weight, label: a.description)) }
            case .name(let name, let port):
                for ip in resolved[name]?.pick(pool.resolveFamily) ?? [] {
                    let a = ListenAddress(host: ip, port: port)
                    guard seen.insert(a).inserted else { continue }
                    out.append(ResolvedServer(address: a, hostName: name, weight: s.weight, label: "\(name):\(port) (\(ip))"))
                }
            }
        }
        return out
    }
}
