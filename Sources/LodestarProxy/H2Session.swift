import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOTLS

/// One HTTP/2 connection to an origin server (pools with `protocol` `h2` or `h2c`), owned by one event loop. Each
/// exchange gets a stream whose child channel speaks `HTTPClientRequestPart`/`HTTPClientResponsePart` (swift-nio-http2's
/// HTTP/1 codec), so the request path is the same as for HTTP/1.1 origins; requests are balanced per stream.
final class H2Session {
    /// Streams one session carries at once before the pool opens another.
    static let maxStreams = 100

    let channel: any Channel
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    private let scheme: HTTP2FramePayloadToHTTP1ClientCodec.HTTPProtocol
    private(set) var openStreams = 0
    /// Streams opened so far (a failure on a stream of a used session may be a GOAWAY race: retried).
    private(set) var streamsOpened = 0
    /// Set by GOAWAY or a close: no new streams.
    private(set) var goingAway = false
    private(set) var idleSince = NIODeadline.now()
    private var closeWhenDone = false

    /// Sets up HTTP/2 on a connected channel (after TLS, when there is TLS).
    init(channel: any Channel, secure: Bool) throws {
        self.channel = channel
        self.scheme = secure ? .https : .http
        let ops = channel.pipeline.syncOperations
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .enablePush, value: 0),
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
        ]
        connection.targetWindowSize = 4 << 20
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = 1 << 20
        multiplexer = try ops.configureHTTP2Pipeline(mode: .client, connectionConfiguration: connection,
                                                     streamConfiguration: stream) { pushed in
            pushed.close()  // push is off; a stream the server opens anyway is refused
        }
        let watcher = H2SessionWatcher()
        try ops.addHandler(watcher)
        watcher.session = self
    }

    var isUsable: Bool { !goingAway && channel.isActive }
    var hasRoom: Bool { isUsable && openStreams < Self.maxStreams }

    /// A new stream with the HTTP/1 client codec and an `UpstreamHandler`.
    func openStream(pool: LoopPool, server: Int) -> EventLoopFuture<UpstreamConnection>.Isolated {
        openStreams += 1
        streamsOpened += 1
        let uses = streamsOpened
        return createStream { UpstreamHandler() }.assumeIsolated().flatMapThrowing { [self] stream in
            let handler = try stream.pipeline.syncOperations.handler(type: UpstreamHandler.self)
            let c = UpstreamConnection(channel: stream, handler: handler, server: server, pool: pool, session: self)
            c.uses = uses - 1  // `attach` counts this use
            handler.connection = c
            return c
        }.flatMapErrorThrowing { [self] error in
            streamClosed()
            throw error
        }
    }

    /// A health probe: `GET path` on a new stream, judged by `ProbeStatusHandler`.
    func probe(path: String, host: String, promise: OnceBox) {
        createStream { ProbeStatusHandler(promise: promise) }.whenComplete { result in
            guard case .success(let stream) = result else { return promise.finish(false) }
            var headers = HTTPHeaders()
            headers.add(name: "host", value: host)
            headers.add(name: "user-agent", value: "lodestar-health-check")
            stream.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)),
                         promise: nil)
            stream.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
    }

    /// A new stream channel: swift-nio-http2's HTTP/1 client codec, then the handler `last` makes.
    private func createStream(_ last: @escaping @Sendable () -> any ChannelHandler) -> EventLoopFuture<any Channel> {
        let promise = channel.eventLoop.makePromise(of: (any Channel).self)
        let scheme = self.scheme
        multiplexer.createStreamChannel(promise: promise) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: scheme))
                try stream.pipeline.syncOperations.addHandler(last())
            }
        }
        return promise.futureResult
    }

    /// A stream ended (or failed to open).
    func streamClosed() {
        openStreams = max(0, openStreams - 1)
        if openStreams == 0 {
            idleSince = .now()
            if closeWhenDone { close() }
        }
    }

    fileprivate func wentAway() { goingAway = true }

    func close() {
        goingAway = true
        channel.close(promise: nil)
    }

    /// Closes now when idle, else once the last stream ends (reload, shutdown).
    func closeWhenIdle() {
        goingAway = true
        if openStreams == 0 { close() } else { closeWhenDone = true }
    }
}

/// Watches an origin's HTTP/2 connection: GOAWAY or a close stops new streams on the session.
private final class H2SessionWatcher: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    weak var session: H2Session?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload { session?.wentAway() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session?.wentAway()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Connection errors end the session; stream errors reach their streams.
        if HTTP2ConnectionGuard.endsConnection(error) {
            session?.wentAway()
            context.close(promise: nil)
        }
    }
}

/// Waits for the TLS handshake with an origin, so a failed verification is a connect failure (logged with its reason,
/// counted against the server, retried elsewhere) rather than a connection that closes under a request.
final class OriginHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    /// Succeeds with the ALPN protocol the origin chose (nil: none).
    let done: EventLoopPromise<String?>
    private var finished = false

    init(eventLoop: any EventLoop) { done = eventLoop.makePromise(of: String?.self) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let proto) = tls, !finished {
            finished = true
            done.succeed(proto)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !finished {
            finished = true
            done.fail(error)
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished {
            finished = true
            done.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if !finished {
            finished = true
            done.fail(ChannelError.eof)
        }
    }
}

/// The origin spoke TLS but did not choose HTTP/2 by ALPN.
struct OriginALPNError: Error, CustomStringConvertible {
    let negotiated: String?
    var description: String { "the origin did not choose h2 by ALPN (it chose \(negotiated ?? "nothing"))" }
}
