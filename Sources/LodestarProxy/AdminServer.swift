import LodestarTopology
import NIOCore
import NIOHTTP1
import NIOPosix

/// The edge's admin endpoint: `GET /healthz` (200 healthy, 503 degraded) and `GET /status` (JSON). Binds only where the
/// topology says (`edges[].admin`, loopback in the default topology).
enum AdminServer {
    static func bind(_ address: ListenAddress, group: any EventLoopGroup, shared: EdgeShared, path: String) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(shared: shared))
                }
            }
        do {
            return try await bootstrap.bind(host: address.host.description, port: address.port).get()
        } catch {
            throw EdgeStartError(description: "\(path): cannot listen on \(address): \(EdgeServer.describe(error))")
        }
    }
}

private final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let shared: EdgeShared
    private var head: HTTPRequestHead?

    init(shared: EdgeShared) { self.shared = shared }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
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
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Cache-Control", value: "no-store")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: code, headers: headers))), promise: nil)
            if h.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
