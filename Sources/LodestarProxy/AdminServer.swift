import LodestarTopology
import NIOCore
import NIOHTTP1

/// The edge's admin endpoint: `GET /healthz` (200 healthy, 503 degraded) and `GET /status` (JSON). Binds only where the
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
        default:
            (code, type, body) = (.notFound, "text/plain", "not found\n")
        }
        return SimpleResponse(status: code, contentType: type, body: allocator.buffer(string: body),
                              headers: [("Cache-Control", "no-store")])
    }
}
