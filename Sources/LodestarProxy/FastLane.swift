import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import Synchronization

/// What the pass-through lane hands the full HTTP/1.1 lane when it steps aside.
struct HandOver {
    /// Admission's verdict on the request that made the lane step aside (nil: the strict reader did not take its head,
    /// so the full parser reads it first). The full lane uses it for that request instead of admitting it again, so a
    /// rate-limit token is taken once.
    var verdict: Admission.Verdict?
    var requestsServed: Int
    var finishing: Bool
    /// When the first byte of the head in progress arrived (the slowloris clock keeps running).
    var firstByteAt: NIODeadline?
}

/// The pass-through lane of an HTTP/1.1 client connection: the common request — HTTP/1.1 in origin-form, no body, no
/// upgrade, a route that does not cache, an HTTP/1.1 origin pool, nothing to compress — goes through as bytes, with no
/// HTTP codec on either side (as nginx and HAProxy relay). Its head is read by `HTTP1Wire` (strict), admitted by the
/// same `Admission`, its fields rewritten by the same `HeaderRewriter` rules, its upstream phase driven by the same
/// `UpstreamExchange`; the response head is read, rewritten and written anew, its body relayed as it comes (a length
/// counted down, chunks scanned by `ChunkedScanner`, a body ended by the origin's close chunked for the client).
///
/// Any other request makes the lane step aside for good, at a request boundary: it sets up the full lane (NIO's
/// HTTP/1 codec, `ProxyHandler`) behind itself, hands it the bytes not yet answered and admission's verdict
/// (`HandOver`), and leaves the pipeline. Edge-made answers of the full lane (refusals, 404s) are thus the same.
///
/// Inbound only: NIO's read request after every read passes it by; reads stop, while more than `maxHeldBytes` wait to
/// be answered, by turning the channel's `autoRead` off.
final class FastLane: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let shared: EdgeShared
    let loop: LoopStateBox
    let info: ConnectionInfo
    let compressing: Bool
    /// Sets up the full lane behind this handler.
    let stepAside: (any Channel, HandOver) throws -> Void
    var context: ChannelHandlerContext?
    var config: EdgeConfig { loop.state.config }
    /// Bytes read and not yet answered (the head in progress, pipelined requests).
    var input: ByteBuffer?
    var exchange: FastExchange?
    /// `autoRead` is off: too many pipelined bytes wait.
    var readsPaused = false
    var inputClosed = false
    var closing = false
    /// Answers from now on say `Connection: close` (shutdown or drain).
    var finishing = false
    var requestsServed = 0
    /// Idle since, and not taking its answer since (the send timeout).
    var clock = ClientClock()
    /// The time of the event being handled (read once per event, not per use).
    var now = NIODeadline.now()
    var firstByteAt: NIODeadline?
    var timer: RepeatedTask?
    /// A response head with a small counted body to come (at most `bodyInHeadLimit` bytes): not written yet, so the
    /// body's bytes follow it in the same buffer and the answer leaves in one write. Written before anything else
    /// is, and before every flush.
    var heldHead: ByteBuffer?
    static let bodyInHeadLimit: Int64 = 4096
    /// Pipelined bytes held while a request is answered; reads stop past this.
    static let maxHeldBytes = 65536

    init(shared: EdgeShared, loop: LoopStateBox, info: ConnectionInfo, compressing: Bool,
         stepAside: @escaping (any Channel, HandOver) throws -> Void) {
        self.shared = shared
        self.loop = loop
        self.info = info
        self.compressing = compressing
        self.stepAside = stepAside
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let tick = clientTickInterval(config.settings.limits)
        // Held strongly and cancelled when the handler leaves its pipeline (every close removes it), not through a
        // weak reference: one would give the lane a side table, and every retain and release of it the slow path.
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            bound.value.tick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if closing { return }
        now = .now()
        if exchange == nil && input == nil && firstByteAt == nil { firstByteAt = now }
        if input == nil { input = bytes } else { input?.writeBuffer(&bytes) }
        if exchange == nil { processInput(context: context) }
        if !readsPaused && (input?.readableBytes ?? 0) > Self.maxHeldBytes { pauseReads(true, context) }
    }

    /// Turns reading off (too many bytes wait to be answered) or on again.
    func pauseReads(_ pause: Bool, _ context: ChannelHandlerContext) {
        readsPaused = pause
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: !pause)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        heldHead = nil
        clientGone()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Shutdown or drain: idle between requests closes now; busy, or about to send a first request, is
            // answered with `Connection: close`.
            if exchange == nil && (input?.readableBytes ?? 0) == 0 && requestsServed > 0 && firstByteAt == nil {
                closing = true
                context.close(promise: nil)
            } else {
                finishing = true
            }
            return
        }
        if case .inputClosed = event as? ChannelEvent {
            // The client sent all it will send: the request in progress is answered, then the connection closes.
            inputClosed = true
            if exchange == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { clock.blockedSince = nil }
        exchange?.upstream?.handler.holdReads = !context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Requests

    /// Starts the next request held in `input`, if its head is complete; steps aside for one the lane does not take.
    func processInput(context: ChannelHandlerContext) {
        while exchange == nil, !closing, let bytes = input, bytes.readableBytes > 0 {
            let limits = config.settings.limits
            let wire = HTTP1Wire.Limits(maxBytes: limits.maxRequestLineBytes + limits.maxHeaderBytes,
                                        maxFields: limits.maxHeaderCount)
            switch bytes.withUnsafeReadableBytes({ HTTP1Wire.readRequest($0, limits: wire) }) {
            case .incomplete: return
            case .unusual: return handOver(nil)
            case .head(let head): if !begin(head, context: context) { return }
            }
        }
        if input?.readableBytes == 0 { input = nil }
        if readsPaused && (input?.readableBytes ?? 0) <= Self.maxHeldBytes { pauseReads(false, context) }
    }

    /// Admission, then the exchange; false when the request is not the lane's (it stepped aside).
    private func begin(_ head: HTTP1Wire.Request, context: ChannelHandlerContext) -> Bool {
        var keepAlive = true
        for (name, value) in head.fields where HTTPText.nameEquals(name, "connection") && HTTPText.listNames(value, "close") {
            keepAlive = false
        }
        if let verdict = start(head, http2: false, keepAlive: keepAlive, compressing: compressing, whenTaken: {
            input?.moveReaderIndex(forwardBy: head.length)
            firstByteAt = nil
        }) {
            handOver(verdict)
            return false
        }
        return true
    }

    /// Steps aside for the full lane: it is set up behind this handler and given what was read and not answered.
    func handOver(_ verdict: Admission.Verdict?) {
        guard let context else { return }
        timer?.cancel()
        timer = nil
        let carry = HandOver(verdict: verdict, requestsServed: requestsServed, finishing: finishing,
                             firstByteAt: firstByteAt)
        do {
            try stepAside(context.channel, carry)
        } catch {
            context.close(promise: nil)
            return
        }
        let bytes = input
        input = nil
        closing = true  // nothing more is read here
        if let bytes { context.fireChannelRead(wrapInboundOut(bytes)) }
        context.fireChannelReadComplete()
        if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        if readsPaused { pauseReads(false, context) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Ready for the next request: pipelined bytes go on, or the connection closes when the client is done sending.
    func becomeIdle(context: ChannelHandlerContext) {
        clock.idleSince = now
        if let held = input, held.readableBytes > 0 { firstByteAt = now }
        processInput(context: context)
        if inputClosed && exchange == nil { context.close(promise: nil) }
    }

    // MARK: Timers

    func tick() {
        guard let context, !closing else { return }
        now = .now()
        let limits = config.settings.limits
        if clientStalled() {
            closing = true
            return context.close(promise: nil)
        }
        if exchange != nil { return checkOriginTimeout() }
        // The end of an answer still leaving is not idle.
        if clock.blockedSince != nil { return clock.idleSince = now }
        if let first = firstByteAt {
            if now - first > .milliseconds(Int64(limits.headerTimeoutMs)) {
                shared.stats.timeouts.add(1, ordering: .relaxed)
                answerLocally(status: 408, body: "request head timed out\n", close: true, method: "GET", target: "-")
            }
        } else {
            let allowed = requestsServed == 0 ? limits.headerTimeoutMs : limits.keepAliveTimeoutMs
            if now - clock.idleSince > .milliseconds(Int64(allowed)) || (shared.isDraining && requestsServed > 0) {
                closing = true
                context.close(promise: nil)
            }
        }
    }
}
