import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHTTP1
import Synchronization

extension ProxyHandler {
    /// The origin answered an upgrade request with 101: the 101 goes to the client and the client's connection leaves
    /// HTTP at once, before the client can answer it (what it sends next waits in the tunnel; a decoder removed later
    /// would drop it). The origin's connection follows once its decoder has finished the current read.
    func startTunnel(_ ex: Exchange, _ head: HTTPResponseHead, context: ChannelHandlerContext) {
        guard let up = ex.upstream, let request = ex.upgrade else { return }
        var out = HeaderRewriter.clientResponse(head, route: ex.route, config: config, requestId: ex.requestId,
                                                clientVersion: ex.head.version, keepAlive: true)
        if isHTTP2 {
            // RFC 8441 §5: the extended CONNECT succeeds with a 2xx; the handshake's key and accept are HTTP/1.1's.
            out.status = .ok
            out.headers.remove(name: "sec-websocket-accept")
        } else {
            out.headers.add(name: "Connection", value: "upgrade")
            out.headers.add(name: "Upgrade", value: head.headers[canonicalForm: "upgrade"].first.map(String.init) ?? request.value)
        }
        ex.responseHead = head
        ex.times.upstreamHead = .now()
        discarding = true
        closing = true
        shared.stats.record(status: 101)
        shared.metrics.record(route: ex.route.label, status: 101)
        context.writeAndFlush(wrapOutboundOut(.head(out)), promise: nil)
        let tunnel = makeTunnel(ex)
        do {
            try Self.becomeTunnel(context.pipeline, handler: tunnel.client)
        } catch {
            context.close(promise: nil)
            up.channel.close(promise: nil)
            return
        }
        shared.openTunnels.add(1, ordering: .relaxed)
        shared.metrics.recordTunnelOpened()
        let idle = TimeAmount.milliseconds(Int64(config.settings.tunnels.idleTimeoutMs))
        // Holds this handler (still the origin connection's owner, which ignores the rest of the 101) until then.
        // The exchange, connection and tunnel are loop-bound too: they go to the next turn of this same loop.
        let bound = NIOLoopBound((handler: self, ex: ex, up: up, tunnel: tunnel), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let held = bound.value
            held.handler.joinOrigin(held.ex, held.up, held.tunnel, idle: idle)
        }
    }

    /// The origin's side of a tunnel whose client side is in place.
    private func joinOrigin(_ ex: Exchange, _ up: UpstreamConnection, _ tunnel: Tunnel, idle: TimeAmount) {
        if let server = ex.server { ex.pool.runtime.health.end(server) }
        up.owner = nil
        ex.upstream = nil
        if exchange === ex { exchange = nil }
        do {
            guard up.channel.isActive else { throw ChannelError.ioOnClosedChannel }
            try Self.becomeTunnel(up.channel.pipeline, handler: tunnel.origin)
        } catch {
            // The tunnel never had two sides, so it never ends by itself: count it out here.
            shared.openTunnels.subtract(1, ordering: .relaxed)
            tunnel.client.core.context?.close(promise: nil)
            up.channel.close(promise: nil)
            return
        }
        tunnel.client.core.partnerReady()
        tunnel.origin.core.partnerReady()
        tunnel.start(on: up.channel.eventLoop, idleTimeout: idle)
    }

    /// The tunnel of an exchange, with its end: counters, metrics and one access-log line with duration and bytes.
    private func makeTunnel(_ ex: Exchange) -> Tunnel {
        let started = NIODeadline.now()
        let label = ex.server.map { ex.pool.runtime.labels[$0] }
        let shared = self.shared
        let accessLog = config.settings.accessLog
        let client = info.clientText
        return Tunnel(http2Client: isHTTP2) { t in
            shared.openTunnels.subtract(1, ordering: .relaxed)
            shared.metrics.recordTunnel(bytesIn: t.bytesIn, bytesOut: t.bytesOut)
            shared.stats.bytesOut.add(Int(t.bytesOut), ordering: .relaxed)
            guard accessLog else { return }
            let ms = (NIODeadline.now() - started).nanoseconds / 1_000_000
            shared.accessLog(method: ex.head.method.rawValue, uri: ex.head.uri, status: 101, bytes: t.bytesOut, client: client,
                             upstream: label, start: ex.start, upstreamMs: nil, requestId: ex.requestId,
                             note: "tunnel closed after \(ms) ms, \(t.bytesIn) bytes in, \(t.bytesOut) bytes out")
        }
    }

    /// Puts `handler` at the end of a pipeline and takes the HTTP handlers out, decoders last: bytes a decoder held
    /// past the upgrade (the origin's, kept by `.forwardBytes`) reach `handler` as it goes. An HTTP/2 stream keeps
    /// swift-nio-http2's HTTP/1 codec (not in this list): its tunnel's bytes are the stream's body parts.
    static func becomeTunnel(_ pipeline: ChannelPipeline, handler: any TunnelSide) throws {
        let ops = pipeline.syncOperations
        try ops.addHandler(handler)
        func remove<H: RemovableChannelHandler>(_ type: H.Type) {
            if let h = try? ops.handler(type: type) { ops.removeHandler(h, promise: nil) }
        }
        remove(ProxyHandler.self)
        remove(UpstreamHandler.self)
        remove(HTTPResponseEncoder.self)
        remove(HTTPRequestEncoder.self)
        remove(ByteToMessageHandler<HTTPRequestDecoder>.self)
        remove(ByteToMessageHandler<HTTPResponseDecoder>.self)
    }
}
