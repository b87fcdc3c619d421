import Foundation
import LodestarCache
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The edge's admin endpoint: `GET /healthz` (200 healthy, 503 degraded), `GET /status` (JSON) and
/// `GET /metrics` (Prometheus text) and `POST /cache/purge?url=…|prefix=…`. Binds only where the
/// topology says (`edges[].admin`, loopback in the default topology).
enum AdminServer {
    static func bind(_ address: ListenAddress, group: any EventLoopGroup, shared: EdgeShared, path: String) async throws -> any Channel {
        do {
            let mutations = address.host.isLoopback
            if !mutations {
                shared.logger.warning("admin listener is not on loopback: /cache/purge is refused there until the admin API has tokens",
                                      metadata: ["address": "\(address)"])
            }
            return try await SimpleHTTPServer.bind(address, group: group) { head, allocator in
                answer(head, shared: shared, allocator: allocator, allowMutations: mutations)
            }
        } catch {
            throw EdgeStartError(description: "\(path): cannot listen on \(address): \(EdgeServer.describe(error))")
        }
    }

    /// One admin answer. `allowMutations` (a loopback listener) gates the purge API: on any other address it is
    /// refused, since the admin endpoint has no authentication yet.
    static func answer(_ h: HTTPRequestHead, shared: EdgeShared, allocator: ByteBufferAllocator,
                       allowMutations: Bool = true) -> SimpleResponse {
        let status = shared.status(now: NIODeadline.now().uptimeNanoseconds)
        let path = h.uri.split(separator: "?").first.map(String.init) ?? h.uri
        let (code, type, body): (HTTPResponseStatus, String, String)
        switch (h.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            (code, type, body) = status.degraded ? (.serviceUnavailable, "text/plain", "degraded\n") : (.ok, "text/plain", "ok\n")
        case (.GET, "/status"), (.HEAD, "/status"):
            (code, type, body) = (.ok, "application/json", status.json(stats: shared.stats.snapshot))
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            (code, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics(shared: shared))
        case (.POST, "/cache/purge") where !allowMutations, (.DELETE, "/cache/purge") where !allowMutations:
            (code, type, body) = (.forbidden, "text/plain", "purging is allowed only on a loopback admin listener\n")
        case (.POST, "/cache/purge"), (.DELETE, "/cache/purge"):
            (code, type, body) = purge(query: h.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "",
                                       cache: shared.cache)
        case (_, "/cache/purge"):
            (code, type, body) = (.methodNotAllowed, "text/plain", "use POST /cache/purge?url=URL or ?prefix=URL\n")
        default:
            (code, type, body) = (.notFound, "text/plain", "not found\n")
        }
        return SimpleResponse(status: code, contentType: type, body: allocator.buffer(string: body),
                              headers: [("Cache-Control", "no-store")])
    }

    /// `url=http://host/path` removes that URL's variants; `prefix=http://host/dir/` every URL under it.
    static func purge(query: String, cache: EdgeCache?) -> (HTTPResponseStatus, String, String) {
        guard let cache else { return (.notFound, "text/plain", "no route of this edge caches\n") }
        var url: String?
        var prefix: String?
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let value = String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            switch kv[0] {
            case "url": url = value
            case "prefix": prefix = value
            default: break
            }
        }
        if let url, let key = EdgeCache.key(url: url) {
            return (.ok, "application/json", "{\"purged\":\(cache.purge(key: key)),\"key\":\(jsonString(key))}\n")
        }
        if let prefix, let key = EdgeCache.key(url: prefix) {
            return (.ok, "application/json", "{\"purged\":\(cache.purge(prefix: key)),\"prefix\":\(jsonString(key))}\n")
        }
        return (.badRequest, "text/plain", "give url=http://host/path or prefix=http://host/path (percent-encoded)\n")
    }

    /// The edge's counters in the Prometheus text format (request outcomes and the cache, with its hit ratio).
    static func metrics(shared: EdgeShared) -> String {
        let edge = "edge=\"\(prometheusLabel(shared.config.edgeId))\""
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, Int)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name){\(edge)\(labels)} \(value)\n" }
        }
        let stats = Dictionary(shared.stats.snapshot, uniquingKeysWith: { a, _ in a })
        func stat(_ key: String) -> Int { stats[key] ?? 0 }
        family("lodestar_edge_requests_total", "counter", "Requests received.", [("", stat("requests"))])
        family("lodestar_edge_responses_total", "counter", "Responses by status class.",
               ["2xx", "3xx", "4xx", "5xx"].map { (",class=\"\($0)\"", stat("responses_\($0)")) })
        family("lodestar_edge_sent_bytes_total", "counter", "Response body bytes sent.", [("", stat("bytes_out"))])
        family("lodestar_edge_rejected_total", "counter", "Requests refused by the edge itself.",
               [(",reason=\"rate_limited\"", stat("rate_limited")), (",reason=\"denied\"", stat("denied")),
                (",reason=\"protocol_error\"", stat("protocol_errors")), (",reason=\"timeout\"", stat("timeouts"))])
        family("lodestar_edge_upstream_errors_total", "counter", "Origin connect failures and broken responses.",
               [(",kind=\"connect\"", stat("upstream_connect_failures")), (",kind=\"response\"", stat("upstream_errors"))])
        family("lodestar_edge_connections", "gauge", "Open client connections.", [("", stat("connections"))])
        guard let cache = shared.cache else { return out }
        let c = cache.stats
        family("lodestar_edge_cache_requests_total", "counter", "Requests on caching routes by cache outcome (the X-Cache value).",
               [(",result=\"hit\"", c.hits.load(ordering: .relaxed)), (",result=\"miss\"", c.misses.load(ordering: .relaxed)),
                (",result=\"stale\"", c.stale.load(ordering: .relaxed)),
                (",result=\"revalidated\"", c.revalidated.load(ordering: .relaxed)),
                (",result=\"bypass\"", c.bypass.load(ordering: .relaxed))])
        family("lodestar_edge_cache_coalesced_total", "counter", "Misses that waited for another request's origin fetch.",
               [("", c.coalesced.load(ordering: .relaxed))])
        family("lodestar_edge_cache_stores_total", "counter", "Responses stored.", [("", c.stores.load(ordering: .relaxed))])
        family("lodestar_edge_cache_too_large_total", "counter", "Storable responses passed through for their size.",
               [("", c.tooLarge.load(ordering: .relaxed))])
        family("lodestar_edge_cache_refreshes_total", "counter", "Background refreshes (stale-while-revalidate).",
               [("", c.refreshes.load(ordering: .relaxed))])
        family("lodestar_edge_cache_invalidations_total", "counter", "Entries removed by unsafe requests and purges.",
               [("", c.invalidations.load(ordering: .relaxed))])
        family("lodestar_edge_cache_served_bytes_total", "counter", "Body bytes sent from the cache.",
               [("", c.bytesServed.load(ordering: .relaxed))])
        out += "# HELP lodestar_edge_cache_hit_ratio Hits (fresh, stale, revalidated) over hits and misses since start.\n"
        out += "# TYPE lodestar_edge_cache_hit_ratio gauge\n"
        out += "lodestar_edge_cache_hit_ratio{\(edge)} \(String(format: "%.6f", c.hitRatio))\n"
        let m = cache.memory.stats
        var tiers: [(String, Int, Int, Int, Int)] = [("memory", m.bytes, m.capacityBytes, m.entries, m.evictions)]
        if let d = cache.disk?.stats { tiers.append(("disk", d.bytes, d.capacityBytes, d.entries, d.evictions)) }
        family("lodestar_edge_cache_bytes", "gauge", "Bytes held per tier.", tiers.map { (",tier=\"\($0.0)\"", $0.1) })
        family("lodestar_edge_cache_capacity_bytes", "gauge", "Configured bound per tier.", tiers.map { (",tier=\"\($0.0)\"", $0.2) })
        family("lodestar_edge_cache_entries", "gauge", "Stored variants per tier.", tiers.map { (",tier=\"\($0.0)\"", $0.3) })
        family("lodestar_edge_cache_evictions_total", "counter", "Entries evicted to stay within the bound, per tier.",
               tiers.map { (",tier=\"\($0.0)\"", $0.4) })
        return out
    }

    /// A Prometheus label value: backslash, quote and newline escaped.
    static func prometheusLabel(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    /// A JSON string literal.
    static func jsonString(_ s: String) -> String { AdminJSON.string(s) }
}
