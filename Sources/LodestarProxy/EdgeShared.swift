import LodestarEdge
import LodestarMetrics
import LodestarTopology
import Logging
import NIOCore
import Synchronization
import Foundation

/// Counters of an edge, updated from every event loop.
public final class EdgeStats: Sendable {
    public let requests = Atomic<Int>(0)
    /// Requests answered by the HTTP/1.1 pass-through lane (a part of `requests`).
    public let passThrough = Atomic<Int>(0)
    public let responses2xx = Atomic<Int>(0)
    public let responses3xx = Atomic<Int>(0)
    public let responses4xx = Atomic<Int>(0)
    public let responses5xx = Atomic<Int>(0)
    public let bytesOut = Atomic<Int>(0)
    public let rateLimited = Atomic<Int>(0)
    public let denied = Atomic<Int>(0)
    public let protocolErrors = Atomic<Int>(0)
    public let timeouts = Atomic<Int>(0)
    public let upstreamConnectFailures = Atomic<Int>(0)
    public let upstreamErrors = Atomic<Int>(0)
    public let connections = Atomic<Int>(0)
    public let connectionsRefused = Atomic<Int>(0)

    func record(status: Int) {
        switch status {
        case 200..<300: responses2xx.add(1, ordering: .relaxed)
        case 300..<400: responses3xx.add(1, ordering: .relaxed)
        case 400..<500: responses4xx.add(1, ordering: .relaxed)
        case 500..<600: responses5xx.add(1, ordering: .relaxed)
        default: break
        }
    }

    /// Name/value pairs for the status page and logs.
    public var snapshot: [(String, Int)] {
        [("requests", requests.load(ordering: .relaxed)), ("pass_through", passThrough.load(ordering: .relaxed)),
         ("responses_2xx", responses2xx.load(ordering: .relaxed)),
         ("responses_3xx", responses3xx.load(ordering: .relaxed)), ("responses_4xx", responses4xx.load(ordering: .relaxed)),
         ("responses_5xx", responses5xx.load(ordering: .relaxed)), ("bytes_out", bytesOut.load(ordering: .relaxed)),
         ("rate_limited", rateLimited.load(ordering: .relaxed)), ("denied", denied.load(ordering: .relaxed)),
         ("protocol_errors", protocolErrors.load(ordering: .relaxed)), ("timeouts", timeouts.load(ordering: .relaxed)),
         ("upstream_connect_failures", upstreamConnectFailures.load(ordering: .relaxed)),
         ("upstream_errors", upstreamErrors.load(ordering: .relaxed)), ("connections", connections.load(ordering: .relaxed)),
         ("connections_refused", connectionsRefused.load(ordering: .relaxed))]
    }
}

/// What every connection of an edge shares: config, counters, rate limiter, loggers.
final class EdgeShared: Sendable {
    private let current: Mutex<EdgeConfig>
    /// The configuration in force (each event loop also holds the one its connections use; see `LoopState`).
    var config: EdgeConfig {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }
    let stats = EdgeStats()
    private let currentCache = Mutex<EdgeCache?>(nil)
    /// The shared cache in force (nil when no route caches); replaced on a reload that changes its settings.
    var cache: EdgeCache? {
        get { currentCache.withLock { $0 } }
        set { currentCache.withLock { $0 = newValue } }
    }
    let logger: Logger
    let accessLogger: Logger
    private let requestCounter = Atomic<UInt64>(0)
    private let draining = Atomic<Bool>(false)
    /// Upgraded connections open now (bounded by `proxy.tunnels.maxOpen`).
    let openTunnels = Atomic<Int>(0)

    /// Set at shutdown: answers say `Connection: close` and idle keep-alive connections are closed.
    var isDraining: Bool { draining.load(ordering: .relaxed) }
    func startDraining() { draining.store(true, ordering: .relaxed) }
    private let idPrefix: String

    /// The Prometheus families of this edge and the hub `/metrics` renders.
    let metrics: EdgeMetrics
    var metricsHub: MetricsHub { metrics.hub }

    init(config: EdgeConfig, logger: Logger, metrics: MetricsHub = MetricsHub()) {
        self.metrics = EdgeMetrics(hub: metrics, edgeId: config.edgeId)
        self.current = Mutex(config)
        self.logger = logger
        var access = logger
        access[metadataKey: "log"] = "access"
        self.accessLogger = access
        var seed = SystemRandomNumberGenerator()
        self.idPrefix = String(UInt32.random(in: 0...UInt32.max, using: &seed), radix: 16)
    }

    /// A new request id: a per-process random prefix and a counter.
    func makeRequestId() -> String {
        let n = UInt64(truncatingIfNeeded: requestCounter.add(1, ordering: .relaxed).newValue)
        // prefix, "-", the counter in hex: written once (usually a small string: no allocation).
        let digits = max(1, (64 - n.leadingZeroBitCount + 3) / 4)
        var prefix = idPrefix
        return prefix.withUTF8 { p in
            String(unsafeUninitializedCapacity: p.count + 1 + digits) { out in
                for (i, c) in p.enumerated() { out[i] = c }
                out[p.count] = UInt8(ascii: "-")
                var v = n
                for i in stride(from: p.count + digits, to: p.count, by: -1) {
                    let d = UInt8(truncatingIfNeeded: v & 15)
                    out[i] = d < 10 ? 48 + d : 87 + d
                    v >>= 4
                }
                return p.count + 1 + digits
            }
        }
    }

    /// One structured line per request.
    func accessLog(method: String, uri: String, status: Int, bytes: Int64, client: String, upstream: String?,
                   start: NIODeadline, upstreamMs: Int64?, requestId: String, note: String?, cache: String? = nil) {
        let totalUs = (NIODeadline.now() - start).nanoseconds / 1000
        var md: Logger.Metadata = [
            "client": "\(client)", "method": "\(method)", "uri": "\(uri)", "status": "\(status)", "bytes": "\(bytes)",
            "upstream": "\(upstream ?? "-")", "total_ms": "\(Double(totalUs) / 1000)", "cache": "\(cache ?? "-")", "rid": "\(requestId)",
        ]
        if let upstreamMs { md["upstream_ms"] = "\(Double(upstreamMs) / 1000)" }
        if let note { md["note"] = "\(note)" }
        accessLogger.info("request", metadata: md)
    }

    /// Counters, metrics and the access-log line of a forwarded exchange, whichever path carried it.
    func exchangeEnded(pool: LoopPool, route: CompiledRoute, times: ExchangeTimes, status: Int, bytesOut: Int64,
                       method: String, uri: String, client: String, server: Int?, requestId: String, note: String?,
                       cache: String? = nil, accessLog: Bool) {
        stats.record(status: status)
        stats.bytesOut.add(Int(bytesOut), ordering: .relaxed)
        let latency = times.upstreamStart.flatMap { s in times.upstreamHead.map { ($0 - s).nanoseconds } }
        pool.series.record(metrics, route: route, pool: pool.runtime.pool.name, status: status, upstreamNanoseconds: latency)
        guard accessLog else { return }
        let upstreamMs = times.upstreamStart.map { s in ((times.upstreamHead ?? .now()) - s).nanoseconds / 1000 }
        self.accessLog(method: method, uri: uri, status: status, bytes: bytesOut, client: client,
                       upstream: server.map { pool.runtime.labels[$0] }, start: times.start, upstreamMs: upstreamMs,
                       requestId: requestId, note: note, cache: cache)
    }

    /// Counters, metrics (route "-") and the access-log line of an answer the edge made itself.
    func localAnswered(method: String, uri: String, status: Int, client: String, start: NIODeadline, requestId: String,
                       note: String?, accessLog: Bool) {
        if accessLog {
            self.accessLog(method: method, uri: uri, status: status, bytes: 0, client: client, upstream: nil, start: start,
                           upstreamMs: nil, requestId: requestId, note: note)
        }
        stats.record(status: status)
        metrics.record(route: "-", status: status)
    }

    /// Logs an origin connection that closed before any answer, unless it is the keep-alive race (a reused connection
    /// closed without an error, which is not news); a TLS alert from the origin arrives here with its reason.
    func originClosedEarly(pool: PoolRuntime, server: Int?, error: (any Error)?, uses: Int) {
        guard error != nil || uses <= 1 else { return }
        logger.warning("origin closed before answering", metadata: [
            "pool": "\(pool.pool.name)", "server": "\(server.map { pool.labels[$0] } ?? "-")",
            "error": "\(error.map { "\($0)" } ?? "connection closed")"])
    }

    /// Counts and logs a failed connect to an origin server; true when it timed out.
    func originConnectFailed(pool: PoolRuntime, server: Int, error: any Error) -> Bool {
        stats.upstreamConnectFailures.add(1, ordering: .relaxed)
        logger.warning("origin connect failed", metadata: [
            "pool": "\(pool.pool.name)", "server": "\(pool.labels[server])", "error": "\(error)"])
        if case .connectTimeout = error as? ChannelError { return true }
        return false
    }

    /// Logs health transitions of origin servers.
    func healthChanged(_ transition: HealthTransition, pool: PoolRuntime) {
        switch transition {
        case .becameHealthy(let i):
            logger.notice("origin healthy", metadata: ["pool": "\(pool.pool.name)", "server": "\(pool.labels[i])"])
        case .becameDown(let i):
            logger.warning("origin down (active check)", metadata: ["pool": "\(pool.pool.name)", "server": "\(pool.labels[i])"])
        case .ejected(let i, let until):
            let ms = (until &- NIODeadline.now().uptimeNanoseconds) / 1_000_000
            logger.warning("origin ejected (passive)", metadata: ["pool": "\(pool.pool.name)", "server": "\(pool.labels[i])",
                                                                 "for_ms": "\(ms)"])
        case .restored(let i):
            logger.notice("origin restored", metadata: ["pool": "\(pool.pool.name)", "server": "\(pool.labels[i])"])
        }
    }

    /// Logged when a request finds no healthy server in its pool (at most every 10 s per pool).
    func noteDegraded(pool: PoolRuntime) {
        let now = NIODeadline.now().uptimeNanoseconds
        let last = pool.lastDegradedLog.load(ordering: .relaxed)
        guard now &- last > 10_000_000_000 || last == 0,
              pool.lastDegradedLog.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else { return }
        logger.warning("no healthy origin in pool; answering 503", metadata: ["pool": "\(pool.pool.name)"])
    }

    /// Health of the edge as gossip will publish it: degraded when any pool has no available server.
    public func status(now: UInt64) -> EdgeStatus {
        var pools = [EdgeStatus.Pool]()
        for p in config.pools {
            let servers = p.labels.indices.map { i in
                EdgeStatus.Server(address: p.labels[i], status: p.health.status(i, now: now), inFlight: p.health.inFlight(i))
            }
            pools.append(EdgeStatus.Pool(name: p.pool.name, available: p.health.availableCount(now: now), servers: servers))
        }
        let cache = self.cache
        return EdgeStatus(edgeId: config.edgeId, pools: pools, cacheHitRatio: cache?.stats.hitRatio, cacheJSON: cache?.statusJSON())
    }
}

/// A snapshot of an edge's health: per pool, the servers and their state.
public struct EdgeStatus: Sendable {
    /// One origin server's state.
    public struct Server: Sendable {
        public var address: String
        public var status: OriginStatus
        public var inFlight: Int
    }
    /// One pool's state.
    public struct Pool: Sendable {
        public var name: String
        public var available: Int
        public var servers: [Server]
    }
    public var edgeId: String
    public var pools: [Pool]
    /// The shared cache's hit ratio (what gossip publishes); nil when no route caches.
    public var cacheHitRatio: Double?
    /// The cache's counters as a JSON object, for `/status`.
    var cacheJSON: String?

    /// True when some pool has no server to send requests to (the edge answers 503 there).
    public var degraded: Bool { pools.contains { $0.available == 0 } }

    /// JSON for the admin endpoint.
    public func json(stats: [(String, Int)], extra: String? = nil) -> String {
        func q(_ s: String) -> String { AdminJSON.string(s) }
        let poolText = pools.map { p in
            let servers = p.servers.map { s in
                "{\"address\":\(q(s.address)),\"status\":\(q(s.status.rawValue)),\"inFlight\":\(s.inFlight)}"
            }.joined(separator: ",")
            return "{\"name\":\(q(p.name)),\"available\":\(p.available),\"servers\":[\(servers)]}"
        }.joined(separator: ",")
        let statText = stats.map { "\(q($0.0)):\($0.1)" }.joined(separator: ",")
        let cacheText = cacheJSON.map { ",\"cache\":\($0)" } ?? ""
        let extraText = extra.map { $0.isEmpty ? "" : "," + $0 } ?? ""
        return "{\"edge\":\(q(edgeId)),\"state\":\(q(degraded ? "degraded" : "healthy")),\"pools\":[\(poolText)],\"stats\":{\(statText)}\(cacheText)\(extraText)}\n"
    }
}
