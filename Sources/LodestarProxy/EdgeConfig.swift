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

    /// Throws `EdgeStartError` when an origin pool's TLS files cannot be used.
    public init(topology: Topology, edgeId: String) throws {
        self.edgeId = edgeId
        self.settings = topology.proxy
        let pools = try topology.pools.map { try PoolRuntime(pool: $0) }
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

/// A pool's shared runtime: settings, health, hash ring (one per pool, shared by every event loop).
public final class PoolRuntime: Sendable {
    public let pool: OriginPool
    public let health: PoolHealth
    let ring: HashRing?
    let weights: [Int]
    /// `host:port` strings of the servers (for logs and the status page; never sent to clients).
    let labels: [String]
    /// When "no healthy origin" was last logged (uptime ns), so a dead pool does not flood the log.
    let lastDegradedLog = Atomic<UInt64>(0)

    /// TLS towards the servers (`pool.tls`): verification on, against `caFile` or the system store, ALPN `h2` for h2
    /// pools.
    let tlsContext: NIOSSLContext?

    /// Throws `EdgeStartError` ("origins.NAME.tls: …") when the TLS files cannot be used.
    init(pool: OriginPool) throws {
        self.pool = pool
        self.tlsContext = try pool.tls.map { try Self.makeTLSContext($0, protocol: pool.protocol, pool: pool.name) }
        self.weights = pool.servers.map(\.weight)
        self.health = PoolHealth(serverCount: pool.servers.count, active: pool.healthCheck, passive: pool.passive)
        self.ring = pool.balance == .consistentHash ? HashRing(weights: weights) : nil
        self.labels = pool.servers.map { $0.address.description }
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
