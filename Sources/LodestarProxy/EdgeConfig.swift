import LodestarEdge
import LodestarTopology
import NIOHTTP1
import Synchronization

/// A route ready for the request path: host patterns, compiled deny rules and header rules (a class: requests share it).
public final class CompiledRoute: Sendable {
    public let route: Route
    /// Index into `EdgeConfig.pools`.
    public let poolIndex: Int
    let deny: DenyMatcher
    /// Lower-cased names the request rules remove, plus the names they set (set replaces).
    let requestRemove: [String]
    let responseRemove: [String]
    /// The route's name in metrics: its first host and path prefix.
    public let label: String

    init(route: Route, poolIndex: Int, deny: DenyMatcher, requestRemove: [String], responseRemove: [String]) {
        label = (route.hosts.first ?? "*") + route.pathPrefix
        self.route = route
        self.poolIndex = poolIndex
        self.deny = deny
        self.requestRemove = requestRemove
        self.responseRemove = responseRemove
    }
}

/// Everything an edge's request path reads, compiled once from the topology (immutable, shared by all loops).
public final class EdgeConfig: Sendable {
    public let edgeId: String
    public let settings: ProxySettings
    public let pools: [PoolRuntime]
    public let routes: [CompiledRoute]
    /// `Via` value this edge adds (`1.1 <edge id>`).
    let via: String
    /// Lower-cased request-id header name.
    let requestIdHeader: String
    /// Per-client token buckets (`proxy.rateLimit`); a reload starts them afresh.
    let rateLimiter: RequestRateLimiter

    public init(topology: Topology, edgeId: String) {
        self.edgeId = edgeId
        self.settings = topology.proxy
        let pools = topology.pools.map { PoolRuntime(pool: $0) }
        self.pools = pools
        var index = [String: Int]()
        for (i, p) in pools.enumerated() { index[p.pool.name] = i }
        self.routes = topology.routes.compactMap { r in
            guard let pi = index[r.pool] else { return nil }
            return CompiledRoute(
                route: r, poolIndex: pi, deny: DenyMatcher(r.deny),
                requestRemove: (r.requestHeaders.remove + r.requestHeaders.set.map(\.name)).map { $0.lowercased() },
                responseRemove: (r.responseHeaders.remove + r.responseHeaders.set.map(\.name)).map { $0.lowercased() })
        }
        self.via = "1.1 \(edgeId)"
        self.requestIdHeader = topology.proxy.requestIdHeader.lowercased()
        self.rateLimiter = RequestRateLimiter(settings: topology.proxy.rateLimit)
    }

    /// The route for a host (lower case, no port) and path: among routes whose hosts match, the longest
    /// path prefix wins; on a tie, the first in the file.
    public func route(host: Substring, path: Substring) -> CompiledRoute? {
        var best: CompiledRoute?
        var bestLength = -1
        for r in routes where r.route.pathPrefix.utf8.count > bestLength {
            guard path.hasPrefix(r.route.pathPrefix), Self.hostMatches(r.route.hosts, host) else { continue }
            best = r
            bestLength = r.route.pathPrefix.utf8.count
        }
        return best
    }

    /// Exact, `*.suffix` (one or more labels before the suffix) or `*`.
    static func hostMatches(_ patterns: [String], _ host: Substring) -> Bool {
        for p in patterns {
            if p == "*" { return true }
            if p.hasPrefix("*.") {
                let suffix = p.dropFirst(1)  // ".example.test"
                if host.count > suffix.count && host.hasSuffix(suffix) { return true }
            } else if host == p {
                return true
            }
        }
        return false
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

    init(pool: OriginPool) {
        self.pool = pool
        self.weights = pool.servers.map(\.weight)
        self.health = PoolHealth(serverCount: pool.servers.count, active: pool.healthCheck, passive: pool.passive)
        self.ring = pool.balance == .consistentHash ? HashRing(weights: weights) : nil
        self.labels = pool.servers.map { $0.address.description }
    }
}
