import LodestarTopology
import NIOCore
import NIOHTTP1

/// A small origin server for local tries and demos (`lodestar origin`): `GET /` answers a page naming the origin and
/// the edge that forwarded the request, `/healthz` says ok, `/bytes/N` sends N bytes (N ≤ 64 MiB).
public enum SampleOrigin {
    /// Binds and serves until the group shuts down.
    public static func start(listen: ListenAddress, name: String, group: any EventLoopGroup) async throws -> any Channel {
        try await SimpleHTTPServer.bind(listen, group: group) { head, allocator in answer(head, name: name, allocator: allocator) }
    }

    static func answer(_ h: HTTPRequestHead, name: String, allocator: ByteBufferAllocator) -> SimpleResponse {
        let path = h.uri.split(separator: "?").first.map(String.init) ?? h.uri
        var status = HTTPResponseStatus.ok
        var type = "text/plain; charset=utf-8"
        var body = allocator.buffer(capacity: 256)
        if path == "/healthz" {
            body.writeString("ok\n")
        } else if path.hasPrefix("/bytes/"), let n = Int(path.dropFirst(7)), (0...(64 << 20)).contains(n) {
            type = "application/octet-stream"
            body.writeRepeatingByte(UInt8(ascii: "x"), count: n)
        } else if path == "/" || path == "/index.html" {
            type = "text/html; charset=utf-8"
            let via = h.headers.first(name: "via") ?? "-"
            let client = h.headers.first(name: "x-forwarded-for") ?? "-"
            body.writeString("""
            <!doctype html><title>Lodestar sample origin</title>
            <h1>Served by origin \(escape(name))</h1>
            <p>Host: \(escape(h.headers.first(name: "host") ?? "-"))<br>Via: \(escape(via))<br>Client: \(escape(client))</p>

            """)
        } else {
            status = .notFound
            body.writeString("not found\n")
        }
        return SimpleResponse(status: status, contentType: type, body: body,
                              headers: [("X-Origin", name), ("Cache-Control", "public, max-age=10")])
    }

    /// HTML-escapes text put into the page.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
