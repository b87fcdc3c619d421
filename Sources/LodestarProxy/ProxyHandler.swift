import LodestarCache
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// with backpressure in both directions.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamOwner, StreamTicking {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let shared: EdgeShared
    /// The configuration of this loop (replaced on reload; an exchange keeps the pool it started with).
    var config: EdgeConfig { loop.state.config }
    let loop: LoopStateBox
    let info: ConnectionInfo
    /// The client protocol: an HTTP/1.1 connection (with its slowloris tracker) or one HTTP/2 stream.
    let mode: ClientMode
    var tracker: ActivityTracker? { if case .http1(let t) = mode { return t } else { return nil } }
    /// True on an HTTP/2 stream: one request, no connection-level fields (RFC 9113 §8.2.2), no keep-alive logic.
    var isHTTP2: Bool { if case .http2 = mode { return true } else { return false } }
    let compressing: Bool
    var context: ChannelHandlerContext?
    var exchange: Exchange?
    /// Set after a local answer that closes the connection: further request parts are ignored.
    var discarding = false
    var readPending = false
    /// Request parts of pipelined requests read while an earlier one is still being answered.
    var queued = CircularBuffer<HTTPServerRequestPart>()
    var draining = false
    /// The client shut its sending side: close once every complete request read so far is answered.
    var inputClosed = false
    /// Idle since, and not taking its answer since (the send timeout).
    var clock = ClientClock()
    var requestsServed = 0
    var timer: RepeatedTask?
    var closing = false
    /// Answers from now on say `Connection: close` (shutdown or drain asked the client to move on, or the parser
    /// stops after this request); unlike `closing`, the connection's timers still run until then.
    var finishing = false
    /// Admission's verdict on the next request, made by the pass-through lane before it stepped aside.
    var presetVerdict: Admission.Verdict?

    init(shared: EdgeShared, loop: LoopStateBox, info: ConnectionInfo, mode: ClientMode, compressing: Bool) {
        self.shared = shared
        self.loop = loop
        self.info = info
        self.mode = mode
        self.compressing = compressing
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let tick = clientTickInterval(config.settings.limits)
        if case .http2(let ticker) = mode { return ticker.join(self, interval: tick) }
        let bound = NIOLoopBound(Weak(self), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            bound.value.object?.tick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case .http2(let ticker) = mode { ticker.leave(self) }
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        if let ex = exchange {
            // The client went away mid-exchange: the upstream connection cannot be reused.
            abortUpstream(ex)
            finish(ex, status: ex.responseHead.map { Int($0.status.code) } ?? 499, note: "client closed")
            exchange = nil
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if discarding { return }
        // Pipelined parts wait until the exchange in progress is answered (reads stop while any wait).
        if !queued.isEmpty || (exchange?.requestEnded ?? false) {
            queued.append(part)
            return
        }
        handle(part, context: context)
    }

    func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            tracker?.armed = false
            tracker?.firstByteAt = nil
            begin(head, context: context)
        case .body(let buffer):
            guard let ex = exchange else { return }
            ex.bytes.in += Int64(buffer.readableBytes)
            ex.times.lastClientActivity = .now()
            if ex.bytes.in > config.settings.limits.maxBodyBytes {
                tooLarge(ex)
                return
            }
            forwardBody(.body(.byteBuffer(buffer)), ex)
        case .end(let trailers):
            guard let ex = exchange else { return }
            ex.requestEnded = true
            ex.times.lastUpstreamActivity = .now()  // the origin's time to answer starts now
            forwardBody(.end(trailers), ex)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Shutdown or drain: an HTTP/1.1 connection idle between requests closes now; one that is busy, or new and
            // about to send its first request, is answered with `Connection: close`. An HTTP/2 stream finishes; its
            // connection's lane sends GOAWAY.
            if !isHTTP2 {
                if exchange == nil && queued.isEmpty && requestsServed > 0 && tracker?.firstByteAt == nil {
                    closing = true
                    context.close(promise: nil)
                } else {
                    finishing = true
                }
            }
            return
        }
        if case .inputClosed = event as? ChannelEvent {
            // The client sent all it will send. Complete requests (the one in progress and pipelined ones) are
            // answered, then the connection closes; a request cut short, or an idle connection, closes now.
            inputClosed = true
            if let ex = exchange, !(ex.requestEnded || ex.framing == .none) {
                abortUpstream(ex)
                finish(ex, status: 499, note: "client closed its side before the request ended")
                exchange = nil
                context.close(promise: nil)
            } else if exchange == nil && queued.isEmpty {
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let up = exchange?.upstream, exchange?.sentUpstream == true { up.channel.flush() }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.times.lastUpstreamActivity = .now()
            clock.blockedSince = nil
        }
        exchange?.upstream?.handler.holdReads = !context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if holdClientReads { readPending = true } else { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError {
            respondProtocolError(parserError, context: context)
            return
        }
        context.close(promise: nil)
    }

    /// Client reads wait while the request body has nowhere to go.
    var holdClientReads: Bool {
        if !queued.isEmpty { return true }
        guard let ex = exchange, !ex.requestEnded else { return false }
        guard let up = ex.upstream, ex.sentUpstream else { return true }
        return !up.channel.isWritable
    }

    func resumeClientReads() {
        if readPending && !holdClientReads, let context {
            readPending = false
            context.read()
        }
    }

}
