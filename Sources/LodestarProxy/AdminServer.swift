import Foundation
import LodestarTopology
import NIOCore
import NIOHTTP1

/// The edge's admin endpoint: `GET /healthz` (200 healthy, 503 degraded), `GET /status` (JSON) and
/// `POST /cache/purge?url=…|prefix=…`. Binds only where the
/// topology says (`edges[].admin`, loopback in the default topology).
enum AdminServer {
    static func bind(_ address: ListenAddress, group: any EventLoopGroup, shared: EdgeShared, path: String) async throws -> any Channel {
        do {
            return try await SimpleHTTPServer.bind(address, group: group) { head, allocator in
                answer(head, shared: shared, allocator: allocator)
            }
        } catch {
            throw EdgeStartError(description: "\(path): cannot listen on \(address): \(EdgeServer.describe(error))")
        }
    }

    static func answer(_ h: HTTPRequestHead, shared: EdgeShared, allocator: ByteBufferAllocator) -> SimpleResponse {
        let status = shared.status(now: NIODeadline.now().uptimeNanoseconds)
        let path = h.uri.split(separator: "?").first.map(String.init) ?? h.uri
        let (code, type, body): (HTTPResponseStatus, String, String)
        switch (h.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            (code, type, body) = status.degraded ? (.serviceUnavailable, "text/plain", "degraded\n") : (.ok, "text/plain", "ok\n")
        case (.GET, "/status"), (.HEAD, "/status"):
            (code, type, body) = (.ok, "application/json", status.json(stats: shared.stats.snapshot))
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

    /// A JSON string literal.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
