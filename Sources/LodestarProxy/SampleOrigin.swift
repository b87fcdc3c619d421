import LodestarTopology
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small origin server for local tries and demos (`lodestar origin`): `GET /` answers a page naming the origin and
/// the edge that forwarded the request, `/healthz` says ok, `/bytes/N` sends N bytes (N ≤ 64 MiB).
public enum SampleOrigin {
    /// Binds and serves until the group shuts down.
    public static func start(listen: ListenAddress, name: String, group: any EventLoopGroup) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(SampleOriginHandler(name: name))
                }
            }
        return try await bootstrap.bind(host: listen.host.description, port: listen.port).get()
    }
}

private final class SampleOriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let name: String
    private var head: HTTPRequestHead?

    init(name: String) { self.name = name }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            respond(to: h, context: context)
        }
    }

    private func respond(to h: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = h.uri.split(separator: "?").first.map(String.init) ?? h.uri
        var status = HTTPResponseStatus.ok
        var type = "text/plain; charset=utf-8"
        var body = context.channel.allocator.buffer(capacity: 256)
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
            <h1>Served by origin \(Self.escape(name))</h1>
            <p>Host: \(Self.escape(h.headers.first(name: "host") ?? "-"))<br>Via: \(Self.escape(via))<br>Client: \(Self.escape(client))</p>

            """)
        } else {
            status = .notFound
            body.writeString("not found\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "X-Origin", value: name)
        headers.add(name: "Cache-Control", value: "public, max-age=10")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
        if h.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

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
