import NIOCore

/// One upgraded connection (WebSocket after a 101): the client side and the origin side relay bytes to each other,
/// with backpressure both ways (a side stops reading while the other cannot take more), an idle timeout, and one
/// log line and the byte counts when it ends. Both channels live on the same event loop.
final class Tunnel {
    /// Bytes relayed from the client to the origin and back.
    private(set) var bytesIn: Int64 = 0
    private(set) var bytesOut: Int64 = 0
    private var lastActivity = NIODeadline.now()
    /// The tunnel's loop (its clock: an embedded loop's time in tests).
    private var loop: (any EventLoop)?
    let client: TunnelHandler
    let origin: TunnelHandler
    private var idleTimer: RepeatedTask?
    private var ended = false
    private let onEnd: (Tunnel) -> Void

    /// Pairs two handlers (not yet in a pipeline); `onEnd` runs once when both sides are closed or the tunnel idled out.
    init(onEnd: @escaping (Tunnel) -> Void) {
        self.onEnd = onEnd
        client = TunnelHandler()
        origin = TunnelHandler()
        client.tunnel = self
        origin.tunnel = self
        client.partner = origin
        origin.partner = client
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

    fileprivate func relayed(_ count: Int, from side: TunnelHandler) {
        lastActivity = loop?.now ?? .now()
        if side === client { bytesIn += Int64(count) } else { bytesOut += Int64(count) }
    }

    /// Closes both sides.
    func close() {
        client.context?.close(promise: nil)
        origin.context?.close(promise: nil)
    }

    fileprivate func sideClosed() {
        guard !ended, client.closed, origin.closed else { return }
        ended = true
        idleTimer?.cancel()
        idleTimer = nil
        onEnd(self)
    }
}

/// One side of a `Tunnel`: what it reads is written to its partner's channel.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    fileprivate weak var tunnel: Tunnel?
    fileprivate weak var partner: TunnelHandler?
    fileprivate(set) var context: ChannelHandlerContext?
    /// Bytes read before the partner was in its pipeline.
    private var early: [ByteBuffer] = []
    private var readPending = false
    fileprivate var closed = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if !context.channel.isActive { markClosed() }
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        tunnel?.relayed(bytes.readableBytes, from: self)
        guard let peer = partner?.context else {
            early.append(bytes)
            return
        }
        peer.write(wrapOutboundOut(bytes), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    /// Called once the partner has joined its pipeline: hands over what was read meanwhile.
    func partnerReady() {
        guard let peer = partner?.context else { return }
        for b in early { peer.write(wrapOutboundOut(b), promise: nil) }
        if !early.isEmpty { peer.flush() }
        early.removeAll()
        if partner?.closed == true { context?.close(promise: nil) }
    }

    func read(context: ChannelHandlerContext) {
        // Reads wait while the partner's socket cannot take more.
        if let peer = partner?.context, !peer.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.readPending, let pctx = partner.context {
            partner.readPending = false
            pctx.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            // The peer finished sending: finish the other direction's sending too, keep relaying the rest.
            if let peer = partner?.context {
                peer.flush()
                peer.close(mode: .output).assumeIsolated().whenFailure { _ in peer.close(promise: nil) }
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        markClosed()
        partner?.context?.flush()
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    private func markClosed() {
        guard !closed else { return }
        closed = true
        tunnel?.sideClosed()
    }
}
