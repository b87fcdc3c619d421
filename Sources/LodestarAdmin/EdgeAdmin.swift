import Foundation
import LodestarCache
import LodestarProxy
import LodestarMetrics
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The edge's admin endpoint: `GET /healthz` (200 healthy, 503 degraded), `/readyz`, `GET /status` (JSON),
/// `GET /metrics` (Prometheus text), `POST /drain|/undrain|/reload` (through the process's hooks) and
/// `POST /cache/purge?url=…|prefix=…`. Binds only where the topology says (`edges[].admin`, loopback in the default
/// topology); see `AdminGuard` for who may call it.
public enum EdgeAdmin {
    /// Binds the endpoint at `address` for `server`; `path` names the setting in errors (`edges[N].admin`).
    public static func bind(_ address: ListenAddress, group: any EventLoopGroup, server: EdgeServer, token: String?,
                            hooks: AdminHooks, path: String) async throws -> any Channel {
        let guardian = AdminGuard(listener: address, token: token)
        do {
            return try await AdminHTTP.bind(address, group: group) { head, allocator in
                if let refused = guardian.refusal(head, path: AdminHTTP.path(head.uri), allocator: allocator) { return refused }
                return answer(head, server: server, hooks: hooks, allocator: allocator)
            }
        } catch {
            throw EdgeStartError(description: "\(path): cannot listen on \(address): \(EdgeServer.describe(error))")
        }
    }

    /// One admin answer (after the guard let the request through).
    static func answer(_ h: HTTPRequestHead, server: EdgeServer, hooks: AdminHooks, allocator: ByteBufferAllocator) -> SimpleResponse {
        let status = server.status()
        let path = AdminHTTP.path(h.uri)
        let (code, type, body): (HTTPResponseStatus, String, String)
        switch (h.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            (code, type, body) = status.degraded ? (.serviceUnavailable, "text/plain", "degraded\n") : (.ok, "text/plain", "ok\n")
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            let ready = hooks.ready?() ?? true
            (code, type, body) = !ready ? (.serviceUnavailable, "text/plain", "draining\n")
                : status.degraded ? (.serviceUnavailable, "text/plain", "degraded\n") : (.ok, "text/plain", "ready\n")
        case (.GET, "/status"), (.HEAD, "/status"):
            (code, type, body) = (.ok, "application/json", status.json(stats: server.stats.snapshot, extra: hooks.status?()))
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            (code, type, body) = (.ok, MetricsHub.contentType, server.metricsHub.exposition())
        case (.POST, "/drain"), (.POST, "/undrain"):
            guard let drain = hooks.drain else {
                (code, type, body) = (.notImplemented, "text/plain", "this edge takes no part in gossip: there is no one to tell about a drain\n")
                break
            }
            let reason = AdminHTTP.query(h.uri)["reason"] ?? "admin API"
            (code, type, body) = (.ok, "application/json", drain(path == "/drain", reason))
        case (.POST, "/reload"):
            guard let reload = hooks.reload else {
                (code, type, body) = (.notImplemented, "text/plain", "reload is not available here\n")
                break
            }
            let result = reload()
            (code, type, body) = (result.ok ? .ok : .unprocessableEntity, "text/plain", result.message + "\n")
        case (.POST, "/cache/purge"), (.DELETE, "/cache/purge"):
            (code, type, body) = purge(query: h.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "",
                                       cache: server.cache)
        case (_, "/cache/purge"):
            (code, type, body) = (.methodNotAllowed, "text/plain", "use POST /cache/purge?url=URL or ?prefix=URL\n")
        case (_, "/drain"), (_, "/undrain"), (_, "/reload"):
            (code, type, body) = (.methodNotAllowed, "text/plain", "use POST\n")
        default:
            (code, type, body) = (.notFound, "text/plain", "not found\n")
        }
        return AdminHTTP.reply(code, type, body, allocator: allocator)
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

    /// A JSON string literal.
    static func jsonString(_ s: String) -> String { AdminJSON.string(s) }
}
