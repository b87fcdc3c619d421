import LodestarCache
import LodestarEdge
import LodestarMetrics
import NIOCore
import NIOTLS
import NIOSSL
import Synchronization

/// The edge's Prometheus families on the process's `MetricsHub`: responses by route and status, upstream latency
/// by pool, origin health, rejections, TLS handshakes and the cache (counters mirrored at scrape time from the
/// atomics `/status` also reads).
public final class EdgeMetrics: Sendable {
    /// Series key of `lodestar_edge_responses_total`.
    struct ResponseKey: Hashable, Sendable {
        var route: String
        var code: Int
    }

    let edgeLabel: (String, String)
    let responses: CounterFamily<ResponseKey>
    let upstream = Mutex<[String: DurationHistogram]>([:])
    let hub: MetricsHub
    let tlsHandshakes: [Counter]
    /// Client connections that chose HTTP/2 (ALPN `h2` or the h2c preface).
    let http2Connections: Counter
    /// Upgraded connections (WebSocket tunnels): opened, and bytes relayed each way.
    let tunnelsOpened: Counter
    let tunnelBytesIn: Counter
    let tunnelBytesOut: Counter

    /// Registers the edge's request-path families on `hub` (`startCollecting(_:)` adds the scrape-time ones).
    init(hub: MetricsHub, edgeId: String) {
        self.hub = hub
        let edge = ("edge", edgeId)
        edgeLabel = edge
        responses = CounterFamily(hub, name: "lodestar_edge_responses_total",
                                  help: "Responses sent, by route (- when none matched) and status code.") { k in
            [edge, ("route", k.route), ("code", String(k.code))]
        }
        tlsHandshakes = ["ok", "failed"].map {
            hub.counter("lodestar_edge_tls_handshakes_total", [edge, ("result", $0)], help: "TLS handshakes with clients.")
        }
        http2Connections = hub.counter("lodestar_edge_http2_connections_total", [edge],
                                       help: "Client connections that speak HTTP/2 (ALPN h2 or h2c prior knowledge).")
        tunnelsOpened = hub.counter("lodestar_edge_tunnels_total", [edge],
                                    help: "Upgraded connections (WebSocket) relayed after the origin's 101.")
        let bytesHelp = "Bytes relayed through upgraded connections, by direction."
        tunnelBytesIn = hub.counter("lodestar_edge_tunnel_bytes_total", [edge, ("direction", "client_to_origin")], help: bytesHelp)
        tunnelBytesOut = hub.counter("lodestar_edge_tunnel_bytes_total", [edge, ("direction", "origin_to_client")], help: bytesHelp)
    }

    /// Registers the families read from `shared` at every scrape.
    func startCollecting(_ shared: EdgeShared) {
        Self.registerCollectors(hub: hub, shared: shared, edge: edgeLabel)
    }

    func recordHTTP2Connection() { http2Connections.increment() }

    func recordTunnelOpened() { tunnelsOpened.increment() }

    /// Counts a tunnel's bytes when it ends.
    func recordTunnel(bytesIn: Int64, bytesOut: Int64) {
        tunnelBytesIn.increment(by: bytesIn)
        tunnelBytesOut.increment(by: bytesOut)
    }

    /// Counts one response.
    func record(route: String, status: Int) {
        responses.increment(ResponseKey(route: route, code: status))
    }

    /// Records the time from sending a request to an origin to its response head.
    func recordUpstream(pool: String, nanoseconds: Int64) {
        upstreamHistogram(pool: pool).record(.nanoseconds(nanoseconds))
    }

    /// The upstream-latency histogram of `pool`.
    func upstreamHistogram(pool: String) -> DurationHistogram {
        upstream.withLock { table -> DurationHistogram in
            if let h = table[pool] { return h }
            let made = hub.durationHistogram("lodestar_edge_upstream_duration_seconds", [edgeLabel, ("pool", pool)],
                                             buckets: Self.latencyBuckets,
                                             help: "Time from sending a request to an origin to its response head, by pool.")
            table[pool] = made
            return made
        }
    }

    static let latencyBuckets: [Duration] = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                             .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                             .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]

    /// Registers the scrape-time families: request counters, origin and pool gauges, the cache's families.
    private static func registerCollectors(hub: MetricsHub, shared: EdgeShared, edge: (String, String)) {
        registerRequestCounters(hub: hub, shared: shared, edge: edge)
        registerOriginGauges(hub: hub, shared: shared, edge: edge)
        registerCacheFamilies(hub: hub, shared: shared, edge: edge)
    }

    private static func registerRequestCounters(hub: MetricsHub, shared: EdgeShared, edge: (String, String)) {
        let s = shared.stats
        func mirrored(_ name: String, _ labels: [(String, String)], _ help: String) -> MirroredCounter {
            MirroredCounter(hub, name: name, labels: [edge] + labels, help: help)
        }
        let requests = mirrored("lodestar_edge_requests_total", [], "Requests received.")
        let sent = mirrored("lodestar_edge_sent_bytes_total", [], "Response body bytes sent.")
        let passThrough = mirrored("lodestar_edge_pass_through_total", [],
                                   "Requests that took the HTTP/1.1 pass-through lane (no HTTP codec; a part of requests).")
        let rejectHelp = "Requests refused by the edge itself: rate limit, deny rules (filter), protocol errors, timeouts."
        let rejected: [(MirroredCounter, EdgeStats.Field)] = [
            (mirrored("lodestar_edge_rejected_total", [("reason", "rate_limited")], rejectHelp), .rateLimited),
            (mirrored("lodestar_edge_rejected_total", [("reason", "denied")], rejectHelp), .denied),
            (mirrored("lodestar_edge_rejected_total", [("reason", "protocol_error")], rejectHelp), .protocolErrors),
            (mirrored("lodestar_edge_rejected_total", [("reason", "timeout")], rejectHelp), .timeouts),
            (mirrored("lodestar_edge_upstream_errors_total", [("kind", "connect")], "Origin connect failures and broken responses."),
             .upstreamConnectFailures),
            (mirrored("lodestar_edge_upstream_errors_total", [("kind", "response")], "Origin connect failures and broken responses."),
             .upstreamErrors),
            (mirrored("lodestar_edge_connections_refused_total", [], "Client connections closed at once for the connection limit."),
             .connectionsRefused),
        ]
        let connections = hub.gauge("lodestar_edge_connections", [edge], help: "Open client connections.")
        hub.addCollector {
            requests.sync(to: s.requests.load(ordering: .relaxed))
            sent.sync(to: s.bytesOut.load(ordering: .relaxed))
            passThrough.sync(to: s.passThrough.load(ordering: .relaxed))
            for (counter, field) in rejected { counter.sync(to: s.value(field)) }
            connections.set(to: Double(s.connections.load(ordering: .relaxed)))
        }
    }

    private static func registerOriginGauges(hub: MetricsHub, shared: EdgeShared, edge: (String, String)) {
        let origins = Mutex<[String: (up: Gauge, inFlight: Gauge)]>([:])
        let available = Mutex<[String: Gauge]>([:])
        hub.addCollector {
            let status = shared.status(now: NIODeadline.now().uptimeNanoseconds)
            for pool in status.pools {
                let poolGauge = available.withLock { table in
                    table[pool.name, default: hub.gauge("lodestar_edge_pool_available_servers", [edge, ("pool", pool.name)],
                                                        help: "Origin servers of a pool that take requests now.")]
                }
                poolGauge.set(to: Double(pool.available))
                for server in pool.servers {
                    let key = pool.name + "\u{0}" + server.address
                    let g = origins.withLock { table in
                        if let g = table[key] { return g }
                        let labels = [edge, ("pool", pool.name), ("server", server.address)]
                        let made = (hub.gauge("lodestar_edge_origin_up", labels, help: "1 when the origin server takes requests (health checks, passive ejection)."),
                                    hub.gauge("lodestar_edge_origin_in_flight", labels, help: "Requests in flight to the origin server."))
                        table[key] = made
                        return made
                    }
                    g.up.set(to: server.status.rawValue == "healthy" ? 1.0 : 0.0)
                    g.inFlight.set(to: Double(server.inFlight))
                }
            }
        }
    }

    private static func registerCacheFamilies(hub: MetricsHub, shared: EdgeShared, edge: (String, String)) {
        func mirrored(_ name: String, _ labels: [(String, String)], _ help: String) -> MirroredCounter {
            MirroredCounter(hub, name: name, labels: [edge] + labels, help: help)
        }
        let cacheHelp = "Requests on caching routes by cache outcome (the X-Cache value)."
        let cacheResults = ["hit", "miss", "stale", "revalidated", "bypass"].map {
            mirrored("lodestar_edge_cache_requests_total", [("result", $0)], cacheHelp)
        }
        let coalesced = mirrored("lodestar_edge_cache_coalesced_total", [], "Misses that waited for another request's origin fetch.")
        let stores = mirrored("lodestar_edge_cache_stores_total", [], "Responses stored.")
        let tooLarge = mirrored("lodestar_edge_cache_too_large_total", [], "Storable responses passed through for their size.")
        let refreshes = mirrored("lodestar_edge_cache_refreshes_total", [], "Background refreshes (stale-while-revalidate).")
        let invalidations = mirrored("lodestar_edge_cache_invalidations_total", [], "Entries removed by unsafe requests and purges.")
        let served = mirrored("lodestar_edge_cache_served_bytes_total", [], "Body bytes sent from the cache.")
        let ratio = hub.gauge("lodestar_edge_cache_hit_ratio", [edge], help: "Hits (fresh, stale, revalidated) over hits and misses since start.")
        let tiers = ["memory", "disk"]
        let tierBytes = tiers.map { hub.gauge("lodestar_edge_cache_bytes", [edge, ("tier", $0)], help: "Bytes held per tier.") }
        let tierCapacity = tiers.map {
            hub.gauge("lodestar_edge_cache_capacity_bytes", [edge, ("tier", $0)], help: "Configured bound per tier.")
        }
        let tierEntries = tiers.map { hub.gauge("lodestar_edge_cache_entries", [edge, ("tier", $0)], help: "Stored variants per tier.") }
        let tierEvictions = tiers.map {
            mirrored("lodestar_edge_cache_evictions_total", [("tier", $0)], "Entries evicted to stay within the bound, per tier.")
        }
        hub.addCollector {
            guard let cache = shared.cache else { return }
            let c = cache.stats
            let values = [c.hits.load(ordering: .relaxed), c.misses.load(ordering: .relaxed), c.stale.load(ordering: .relaxed),
                          c.revalidated.load(ordering: .relaxed), c.bypass.load(ordering: .relaxed)]
            for (i, v) in values.enumerated() { cacheResults[i].sync(to: v) }
            coalesced.sync(to: c.coalesced.load(ordering: .relaxed))
            stores.sync(to: c.stores.load(ordering: .relaxed))
            tooLarge.sync(to: c.tooLarge.load(ordering: .relaxed))
            refreshes.sync(to: c.refreshes.load(ordering: .relaxed))
            invalidations.sync(to: c.invalidations.load(ordering: .relaxed))
            served.sync(to: c.bytesServed.load(ordering: .relaxed))
            ratio.set(to: c.hitRatio)
            let m = cache.memory.stats
            tierBytes[0].set(to: Double(m.bytes))
            tierCapacity[0].set(to: Double(m.capacityBytes))
            tierEntries[0].set(to: Double(m.entries))
            tierEvictions[0].sync(to: m.evictions)
            if let d = cache.disk?.stats {
                tierBytes[1].set(to: Double(d.bytes))
                tierCapacity[1].set(to: Double(d.capacityBytes))
                tierEntries[1].set(to: Double(d.entries))
                tierEvictions[1].sync(to: d.evictions)
            }
        }
    }
}

extension EdgeStats {
    /// The counters mirrored into rejection and error families.
    enum Field { case rateLimited, denied, protocolErrors, timeouts, upstreamConnectFailures, upstreamErrors, connectionsRefused }

    /// The value of one counter.
    func value(_ f: Field) -> Int {
        switch f {
        case .rateLimited: rateLimited.load(ordering: .relaxed)
        case .denied: denied.load(ordering: .relaxed)
        case .protocolErrors: protocolErrors.load(ordering: .relaxed)
        case .timeouts: timeouts.load(ordering: .relaxed)
        case .upstreamConnectFailures: upstreamConnectFailures.load(ordering: .relaxed)
        case .upstreamErrors: upstreamErrors.load(ordering: .relaxed)
        case .connectionsRefused: connectionsRefused.load(ordering: .relaxed)
        }
    }
}

/// Counts client TLS handshakes (placed right after the TLS handler): completed, or failed before completing.
final class TLSHandshakeCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let metrics: EdgeMetrics
    private var done = false

    init(metrics: EdgeMetrics) { self.metrics = metrics }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e, !done {
            done = true
            metrics.tlsHandshakes[0].increment()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done, error is NIOSSLError || error is BoringSSLError {
            done = true
            metrics.tlsHandshakes[1].increment()
        }
        context.fireErrorCaught(error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }
}

/// The series one pool's exchanges on one event loop count into, looked up once and kept (loop-confined: no lock and
/// no hashing of route names per request, as `EdgeMetrics.record` and `recordUpstream` take).
final class PoolSeries {
    private var histogram: DurationHistogram?
    private var responses: [(route: ObjectIdentifier, status: Int, counter: Counter)] = []
    /// Kept series at most (routes × status codes seen); past it, the shared path.
    static let limit = 64

    /// One response of `route` (with the status sent) and, when the origin answered, its latency.
    func record(_ metrics: EdgeMetrics, route: CompiledRoute, pool: String, status: Int, upstreamNanoseconds: Int64?) {
        let id = ObjectIdentifier(route)
        if let kept = responses.first(where: { $0.route == id && $0.status == status }) {
            kept.counter.increment()
        } else if responses.count < Self.limit {
            let counter = metrics.responses.counter(EdgeMetrics.ResponseKey(route: route.label, code: status))
            responses.append((id, status, counter))
            counter.increment()
        } else {
            metrics.record(route: route.label, status: status)
        }
        guard let ns = upstreamNanoseconds else { return }
        if histogram == nil { histogram = metrics.upstreamHistogram(pool: pool) }
        histogram?.record(.nanoseconds(ns))
    }
}
