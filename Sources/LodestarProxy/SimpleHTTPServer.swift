import LodestarTopology
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix

/// A whole answer of the small built-in servers (admin endpoints, sample origin).
public struct SimpleResponse: Sendable {
    public var status: HTTPResponseStatus
    public var contentType: String
    public var body: ByteBuffer
    /// Further headers (Content-Type and Content-Length are added).
    public var headers: [(String, String)] = []

    /// The response head: Content-Type, Content-Length and the further headers.
    func head(version: HTTPVersion) -> HTTPResponseHead {
        var fields = HTTPHeaders()
        fields.add(name: "Content-Type", value: contentType)
        fields.add(name: "Content-Length", value: String(body.readableBytes))
        for (n, v) in headers { fields.add(name: n, value: v) }
        return HTTPResponseHead(version: version, status: status, headers: fields)
    }

    /// An answer with a body.
    public init(status: HTTPResponseStatus, contentType: String, body: ByteBuffer, headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }
}

/// JSON text for the admin documents (hand-built: they are small and their shape is fixed).
public enum AdminJSON {
    /// A JSON string literal: quotes, backslashes and control characters escaped.
    public static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count)
                + String(u.value, radix: 16)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// Binds a small HTTP/1.1 server that answers each request, once it is complete, with `respond` (NIO's pipeline
/// with its error handling: bad requests get 400). For endpoints (the admin listeners of LodestarAdmin, the sample
/// origin), not for the proxy path. A connection must complete each request within `idleTimeout` of connecting or of
/// its previous answer's last byte, or it is closed (silent clients, slowloris, idle keep-alive alike).
package enum SimpleHTTPServer {
    /// How long a connection may take to send a whole request, from its start or the end of the previous answer.
    package static let defaultIdleTimeout = TimeAmount.seconds(30)

    /// `http2Stream`: when set, the listener also takes h2c with prior knowledge and this sets up each HTTP/2 stream
    /// (after swift-nio-http2's HTTP/1 codec); nil: HTTP/1.1 only.
    package static func bind(_ address: ListenAddress, group: any EventLoopGroup, upgraders: @escaping @Sendable () -> [any HTTPServerProtocolUpgrader & Sendable] = { [] },
                     http2Stream: (@Sendable (any Channel) throws -> Void)? = nil, idleTimeout: TimeAmount = defaultIdleTimeout,
                     respond: @escaping @Sendable (HTTPRequestHead, ByteBufferAllocator) -> SimpleResponse) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let http1: @Sendable (any Channel) throws -> Void = { channel in
                        try configureHTTP1(channel, upgraders: upgraders(), idleTimeout: idleTimeout, respond: respond)
                    }
                    guard let http2Stream else { return try http1(channel) }
                    let ops = channel.pipeline.syncOperations
                    try ops.addHandler(PreambleGuard(stats: nil, timeout: idleTimeout), name: PreambleGuard.name)
                    try ops.addHandler(PrefaceSniffer(allowHTTP1: true) { channel, isHTTP2 in
                        PreambleGuard.lift(channel)
                        guard isHTTP2 else { return try http1(channel) }
                        try configureHTTP2(channel, idleTimeout: idleTimeout, stream: http2Stream)
                    })
                }
            }
        return try await bootstrap.bind(host: address.host.description, port: address.port).get()
    }

    /// HTTP/2 after the h2c preface: swift-nio-http2 with one child per stream (its HTTP/1 codec, then `stream`), and
    /// the connection manager, so that a connection with no stream open for `idleTimeout` is closed (GOAWAY, then the
    /// close a grace period later, acknowledged or not: `HTTP2ConnectionBounds`), as the edge's are.
    static func configureHTTP2(_ channel: any Channel, idleTimeout: TimeAmount,
                               stream: @escaping @Sendable (any Channel) throws -> Void) throws {
        let grace = TimeAmount.seconds(5)
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: idleTimeout, maxAge: nil, maxGraceTime: grace, keepalive: nil))
        let ops = channel.pipeline.syncOperations
        _ = try ops.configureHTTP2Pipeline(mode: .server, connectionConfiguration: .init(), streamConfiguration: .init(),
                                           streamDelegate: manager.http2StreamDelegate, position: .last) { child in
            child.eventLoop.makeCompletedFuture {
                try child.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                try stream(child)
            }
        }
        try ops.addHandler(HTTP2ConnectionBounds(grace: grace))
        try ops.addHandler(manager)
    }

    /// NIO's HTTP/1.1 server pipeline (with upgrades when given) and a `SimpleHTTPHandler`.
    static func configureHTTP1(_ channel: any Channel, upgraders list: [any HTTPServerProtocolUpgrader & Sendable],
                               idleTimeout: TimeAmount,
                               respond: @escaping @Sendable (HTTPRequestHead, ByteBufferAllocator) -> SimpleResponse) throws {
        let handler = SimpleHTTPHandler(idleTimeout: idleTimeout, respond: respond)
        let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        let upgrade: NIOHTTPServerUpgradeSendableConfiguration? = list.isEmpty ? nil : (
            upgraders: list,
            completionHandler: { context in context.pipeline.syncOperations.removeHandler(bound.value, promise: nil) }
        )
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withServerUpgrade: upgrade, withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(handler)
    }
}

final class SimpleHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let respond: @Sendable (HTTPRequestHead, ByteBufferAllocator) -> SimpleResponse
    private let idleTimeout: TimeAmount
    private var head: HTTPRequestHead?
    /// Closes the connection when no whole request has come `idleTimeout` after the start or the last answer's end.
    private var deadline: Scheduled<Void>?
    /// Answers being written (pipelined requests): the deadline starts again when the last one is out.
    private var writing = 0
    private var removed = false

    init(idleTimeout: TimeAmount, respond: @escaping @Sendable (HTTPRequestHead, ByteBufferAllocator) -> SimpleResponse) {
        self.idleTimeout = idleTimeout
        self.respond = respond
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }

    func handlerRemoved(context: ChannelHandlerContext) {  // also after a WebSocket upgrade: the socket's own from then
        removed = true
        deadline?.cancel()
        deadline = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: idleTimeout) { bound.value.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            deadline?.cancel()
            deadline = nil
            answer(h, context: context)
        }
    }

    private func answer(_ h: HTTPRequestHead, context: ChannelHandlerContext) {
        let r = respond(h, context.channel.allocator)
        var head = r.head(version: h.version)
        if !h.isKeepAlive { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if h.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(r.body))), promise: nil) }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        guard h.isKeepAlive else {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        writing += 1
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        written.whenComplete { _ in
            let (handler, context) = bound.value
            handler.writing -= 1
            if handler.writing == 0 && !handler.removed && context.channel.isActive { handler.arm(context) }
        }
    }
}
