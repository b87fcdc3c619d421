import NIOCore
import NIOHTTP1

/// One upgraded connection (WebSocket after a 101, or after an HTTP/2 extended CONNECT): the client side and the
/// origin side relay bytes to each other, with backpressure both ways (a side stops reading while the other cannot
/// take more), an idle timeout, and one log line and the byte counts when it ends. Both channels live on the same
/// event loop.
final class Tunnel {
    /// Bytes relayed from the client to the origin and back.
    private(set) var bytesIn: Int64 = 0
    private(set) var bytesOut: Int64 = 0
    private var lastActivity = NIODeadline.now()
    /// The tunnel's loop (its clock: an embedded loop's time in tests).
    private var loop: (any EventLoop)?
    let client: any TunnelSide
    let origin: TunnelHandler
    private var idleTimer: RepeatedTask?
    private var ended = false
    private let onEnd: (Tunnel) -> Void

    /// Pairs two sides (not yet in a pipeline); `onEnd` runs once when both sides are closed. `http2Client`: the client
    /// side is an HTTP/2 stream (its bytes travel as the stream's DATA, through the HTTP/1 codec's body parts).
    init(http2Client: Bool = false, onEnd: @escaping (Tunnel) -> Void) {
        self.onEnd = onEnd
        client = http2Client ? StreamTunnelHandler() : TunnelHandler(isClient: true)
        origin = TunnelHandler(isClient: false)
        client.core.tunnel = self
        origin.core.tunnel = self
        client.core.partner = origin
        origin.core.partner = client
    }

    /// Starts the idle timer (on the tunnel's event loop).
    func start(on loop: any EventLoop, idleTimeout: TimeAmount) {
        let tick = TimeAmount.milliseconds(max(50, min(1000, idleTimeout.nanoseconds / 4_000_000)))
        self.loop = loop
        lastActivity = loop.now
        let bound = NIOLoopBound(self, eventLoop: loop)
        idleTimer = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            let t = bound.value
            if loop.now - t.lastActivity > idleTimeout { t.close() }
        }
    }

    fileprivate func relayed(_ count: Int, fromClient: Bool) {
        lastActivity = loop?.now ?? .now()
        if fromClient { bytesIn += Int64(count) } else { bytesOut += Int64(count) }
    }

    /// Closes both sides.
    func close() {
        client.core.context?.close(promise: nil)
        origin.core.context?.close(promise: nil)
    }

    fileprivate func sideClosed() {
        guard !ended, client.core.closed, origin.core.closed else { return }
        ended = true
        idleTimer?.cancel()
        idleTimer = nil
        onEnd(self)
    }
}

/// One side of a `Tunnel` (a handler): writes what its partner read, in its own channel's framing.
protocol TunnelSide: ChannelHandler {
    var core: TunnelCore { get }
    /// Writes bytes to this side's channel.
    func send(_ bytes: ByteBuffer)
    /// This side's peer will send nothing more: finish sending to it too.
    func finishSending()
}

/// The state and relaying logic both kinds of side share.
final class TunnelCore {
    weak var tunnel: Tunnel?
    weak var partner: (any TunnelSide)?
    var context: ChannelHandlerContext?
    /// Bytes read before the partner was in its pipeline.
    var early: [ByteBuffer] = []
    var readPending = false
    var closed = false
    let isClient: Bool

    init(isClient: Bool) { self.isClient = isClient }

    func received(_ bytes: ByteBuffer) {
        tunnel?.relayed(bytes.readableBytes, fromClient: isClient)
        guard let partner, let peer = partner.core.context else {
            early.append(bytes)
            return
        }
        // Flushed at once, not at the read-complete: bytes an HTTP decoder kept past the upgrade (often the origin's
        // first frame, in the same read as its 101) reach this side as the decoder leaves the pipeline, on a later
        // turn of the loop, with no read-complete after them.
        partner.send(bytes)
        peer.flush()
    }

    /// Reads wait while the partner's socket cannot take more.
    func read(context: ChannelHandlerContext) {
        if let peer = partner?.core.context, !peer.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func writabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.core.readPending, let pctx = partner.core.context {
            partner.core.readPending = false
            pctx.read()
        }
    }

    func inputEnded() {
        partner?.core.context?.flush()
        partner?.finishSending()
    }

    func inactive() {
        markClosed()
        partner?.core.context?.flush()
        partner?.finishSending()
        partner?.core.context?.close(promise: nil)
    }

    func markClosed() {
        guard !closed else { return }
        closed = true
        tunnel?.sideClosed()
    }

    /// Hands over what was read before the partner joined its pipeline. Then this side reads again: a read an HTTP
    /// handler held back (for backpressure) left the pipeline with that handler.
    func partnerReady() {
        guard let partner, let peer = partner.core.context else { return }
        for b in early { partner.send(b) }
        if !early.isEmpty { peer.flush() }
        early.removeAll()
        if partner.core.closed {
            context?.close(promise: nil)
        } else if let context {
            read(context: context)
        }
    }
}

/// A side on a plain connection (HTTP/1.1 client or any origin): raw bytes.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler, TunnelSide {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let core: TunnelCore

    init(isClient: Bool) { core = TunnelCore(isClient: isClient) }

    func handlerAdded(context: ChannelHandlerContext) {
        core.context = context
        if !context.channel.isActive { core.markClosed() }
    }

    func handlerRemoved(context: ChannelHandlerContext) { core.context = nil }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { core.received(unwrapInboundIn(data)) }
    func read(context: ChannelHandlerContext) { core.read(context: context) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        core.writabilityChanged(context: context)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { return core.inputEnded() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func channelInactive(context: ChannelHandlerContext) {
        core.inactive()
        context.fireChannelInactive()
    }

    func send(_ bytes: ByteBuffer) { core.context?.write(wrapOutboundOut(bytes), promise: nil) }

    func finishSending() {
        guard let ctx = core.context else { return }
        ctx.close(mode: .output).assumeIsolated().whenFailure { _ in ctx.close(promise: nil) }
    }
}

/// A side on an HTTP/2 stream (RFC 8441 WebSocket): the stream keeps swift-nio-http2's HTTP/1 codec, so bytes come
/// in as request body parts and go out as response body parts (DATA frames); the end of the request body is the
/// client's half-close, and the end of the response is ours.
final class StreamTunnelHandler: ChannelDuplexHandler, RemovableChannelHandler, TunnelSide {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let core = TunnelCore(isClient: true)
    private var ended = false

    func handlerAdded(context: ChannelHandlerContext) {
        core.context = context
        if !context.channel.isActive { core.markClosed() }
    }

    func handlerRemoved(context: ChannelHandlerContext) { core.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: break
        case .body(let bytes): core.received(bytes)
        case .end: core.inputEnded()
        }
    }

    func read(context: ChannelHandlerContext) { core.read(context: context) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        core.writabilityChanged(context: context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func channelInactive(context: ChannelHandlerContext) {
        core.inactive()
        context.fireChannelInactive()
    }

    func send(_ bytes: ByteBuffer) {
        guard !ended else { return }
        core.context?.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
    }

    func finishSending() {
        guard !ended, let ctx = core.context else { return }
        ended = true
        ctx.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
