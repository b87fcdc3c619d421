import LodestarTopology
import NIOCore
import Synchronization

/// Watches a connection until a protocol handler takes it over — while a TLS handshake and ALPN, or the h2c preface,
/// still have to tell which one: closes it when the client stops sending (it can never make a request) or has not
/// got that far within the head timeout (the edge's `limits.headerTimeoutMs`, counted as a timeout in `stats`). From
/// then on the protocol's own timers watch (the head timeout of HTTP/1.1, the idle timeout of HTTP/2). Without it a
/// client that connected and said nothing held its connection until shutdown.
final class PreambleGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    static let name = "preamble-guard"
    private let stats: EdgeStats?
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(stats: EdgeStats?, timeout: TimeAmount) {
        self.stats = stats
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let stats = self.stats
        timer = context.eventLoop.scheduleTask(in: timeout) {
            stats?.timeouts.add(1, ordering: .relaxed)
            bound.value.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed = event as? ChannelEvent else { return context.fireUserInboundEventTriggered(event) }
        context.close(promise: nil)
    }

    /// The protocol is known and its handlers are in place: the guard leaves.
    static func lift(_ channel: any Channel) {
        let ops = channel.pipeline.syncOperations
        guard let context = try? ops.context(name: name) else { return }
        ops.removeHandler(context: context, promise: nil)
    }
}

/// On a cleartext listener that also takes h2c: reads until the first bytes tell the HTTP/2 connection preface
/// (RFC 9113 §3.4, `PRI * HTTP/2.0␍␊␍␊SM␍␊␍␊`) from an HTTP/1.1 request, sets up that protocol, hands it the bytes read
/// so far and leaves the pipeline.
final class PrefaceSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let allowHTTP1: Bool
    private let configure: (any Channel, Bool) throws -> Void
    private var buffer: ByteBuffer?

    init(allowHTTP1: Bool, configure: @escaping (any Channel, Bool) throws -> Void) {
        self.allowHTTP1 = allowHTTP1
        self.configure = configure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer?.writeBuffer(&incoming) }
        guard let seen = buffer else { return }
        switch Self.classify(seen.readableBytesView) {
        case .needMore: return
        case .http2: decide(context: context, http2: true)
        case .http1:
            guard allowHTTP1 else { return context.close(promise: nil) }
            decide(context: context, http2: false)
        }
    }

    /// What the bytes so far say: the preface, something else, or too few bytes to tell.
    enum Verdict: Equatable { case http2, http1, needMore }

    static func classify(_ bytes: ByteBufferView) -> Verdict {
        var i = preface.startIndex
        for b in bytes {
            guard i < preface.endIndex else { return .http2 }
            if b != preface[i] { return .http1 }
            i += 1
        }
        return i == preface.endIndex ? .http2 : .needMore
    }

    private func decide(context: ChannelHandlerContext, http2: Bool) {
        do {
            try configure(context.channel, http2)
        } catch {
            context.close(promise: nil)
            return
        }
        let bytes = buffer
        buffer = nil
        if let bytes { context.fireChannelRead(wrapInboundOut(bytes)) }
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// The client stopped sending before its first bytes told the protocol: it can never make a request here.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed = event as? ChannelEvent else { return context.fireUserInboundEventTriggered(event) }
        buffer = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        buffer = nil
        context.fireChannelInactive()
    }
}
