import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization

/// The pass-through lane of one HTTP/2 stream: a request without a body (HEADERS with END_STREAM; GET, HEAD,
/// DELETE or TRACE, which get no framing fields in HTTP/1.1) that the HTTP/1.1 lane would take goes to an HTTP/1.1
/// origin as bytes (`PassThroughClient`: the same admission, rules, upstream machine, metrics and log) and its answer
/// comes back as HEADERS and DATA frames — no HTTP/1 part conversion on the stream, no HTTP/1 codec upstream.
/// Any other stream (a body, gRPC, extended CONNECT, a caching route, an h2/h2c pool) is handed
/// to the full path: `StreamFrameRewriter`, swift-nio-http2's HTTP/1 codec and a `ProxyHandler` are set up
/// behind this handler, given the frame (and admission's verdict), and this handler leaves.
final class StreamLane: ChannelDuplexHandler, RemovableChannelHandler, PassThroughClient, StreamTicking {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let shared: EdgeShared
    let loop: LoopStateBox
    let info: ConnectionInfo
    let compressing: Bool
    let ticker: StreamTicker
    /// Sets up the full path behind this handler, with admission's verdict for the stream's request.
    let stepAside: (any Channel, Admission.Verdict?) throws -> Void
    var context: ChannelHandlerContext?
    var config: EdgeConfig { loop.state.config }
    var exchange: FastExchange?
    /// Not taking its answer since (the send timeout).
    var clock = ClientClock()
    var now = NIODeadline.now()
    /// END_STREAM went out (HEADERS of a bodiless answer, or the last DATA).
    private var ended = false
    private var started = false

    init(shared: EdgeShared, loop: LoopStateBox, info: ConnectionInfo, compressing: Bool, ticker: StreamTicker,
         stepAside: @escaping (any Channel, Admission.Verdict?) throws -> Void) {
        self.shared = shared
        self.loop = loop
        self.info = info
        self.compressing = compressing
        self.ticker = ticker
        self.stepAside = stepAside
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        ticker.join(self, interval: clientTickInterval(config.settings.limits))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker.leave(self)
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        guard !started, case .headers(let h) = payload else {
            // Nothing but the request's HEADERS is expected on a stream this lane took (its request had END_STREAM).
            return
        }
        started = true
        now = .now()
        guard h.endStream, let request = Self.request(h.headers) else { return handOver(nil, payload) }
        if let verdict = start(request, http2: true, keepAlive: true, compressing: compressing, whenTaken: {}) {
            handOver(verdict, payload)
        }
    }

    /// The request of a HEADERS block as the full path's codec makes it: `host` from `:authority` first when the
    /// block has none, then the regular fields; nil when this lane does not take it (a method that gets framing
    /// fields in HTTP/1.1, a target not in origin-form, a pseudo-header missing or repeated).
    static func request(_ headers: HPACKHeaders) -> HTTP1Wire.Request? {
        var method: String?, path: String?, authority: String?
        var fields = AdmissionFields()
        fields.reserveCapacity(headers.count)
        var hasHost = false
        for (name, value, _) in headers {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": guard method == nil else { return nil }; method = value
                case ":path": guard path == nil else { return nil }; path = value
                case ":authority": guard authority == nil else { return nil }; authority = value
                case ":scheme": continue
                default: return nil
                }
                continue
            }
            if name == "host" { hasHost = true }
            fields.append((name, value))
        }
        guard let method, let path, path.utf8.first == UInt8(ascii: "/") else { return nil }
        switch method {
        case "GET", "HEAD", "DELETE", "TRACE": break
        default: return nil
        }
        if !hasHost {
            guard let authority else { return nil }
            fields.insert(("host", authority), at: 0)
        }
        return HTTP1Wire.Request(method: method, target: path, fields: fields, length: 0)
    }

    /// The full path takes the stream from here.
    private func handOver(_ verdict: Admission.Verdict?, _ payload: HTTP2Frame.FramePayload) {
        guard let context else { return }
        do {
            try stepAside(context.channel, verdict)
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(payload))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientGone()  // the client reset the stream or the connection went
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { clock.blockedSince = nil }
        exchange?.upstream?.handler.holdReads = !context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func tick() {
        guard exchange != nil else { return }
        now = .now()
        if clientStalled() { return context?.close(promise: nil) ?? () }
        checkOriginTimeout()
    }

    // MARK: The client side of the exchange

    var clientWritable: Bool { context?.channel.isWritable ?? true }
    var clientBuffered: Int? { nil }  // a stream's channel does not tell: its writability does
    var clientAttached: Bool { context != nil }
    var mayKeepAlive: Bool { true }

    /// HEADERS: `:status` and the response rules' fields, lower case (RFC 9113 §8.2); END_STREAM when no body follows.
    func writeResponseHead(_ head: HTTP1Wire.Response, _ b: UnsafeRawBufferPointer, _ ex: FastExchange,
                           framing: ResponseFraming, keepAlive: Bool) {
        guard let context else { return }
        var sink = HPACKSink(requestIdHeader: config.requestIdHeader)
        sink.headers.add(name: ":status", value: String(head.status))
        responseFields(head, b, ex, framing: framing, keepAlive: true, compressing: compressing, into: &sink)
        let last = head.status >= 200 && framing == .none
        if last { ended = true }
        context.write(wrapOutboundOut(.headers(.init(headers: sink.headers, endStream: last))), promise: nil)
    }

    /// DATA frames of the body without the origin's framing (chunks decoded), compressed when the edge compresses
    /// it; the last frame ends the stream.
    func relayBody(_ ex: FastExchange, _ bytes: inout ByteBuffer) -> Bool? {
        guard let context else { return true }
        if let deflater = ex.answer.deflater {
            guard let (out, ended) = compressedBody(ex, deflater, &bytes, allocator: context.channel.allocator) else { return nil }
            // The stream ends here unless trailers follow (`responseEnded` sends them).
            let last = ended && ex.answer.trailerSection.count <= 2
            if out.readableBytes > 0 || last { frame(out, last: last, context: context) }
            return ended
        }
        let counted = ex.answer.framing != .chunked && ex.answer.framing != .close
        return bodyData(ex, &bytes) { body in
            ex.bytesOut += Int64(body.readableBytes)
            frame(body, last: counted && ex.answer.remaining == 0, context: context)
        }
    }

    private func frame(_ body: ByteBuffer, last: Bool, context: ChannelHandlerContext) {
        if last { ended = true }
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(body), endStream: last))), promise: nil)
    }

    func flushClient() { context?.flush() }

    func responseEnded(_ ex: FastExchange) {
        guard let context else { return }
        if !ended {  // the encoder's last bytes when compressed, then END_STREAM on an empty DATA or the trailers
            var out = ByteBuffer()
            ex.answer.deflater?.finish(into: &out)
            let trailers = ex.answer.http2Trailers
            if trailers.isEmpty {
                frame(out, last: true, context: context)
            } else {
                if out.readableBytes > 0 { frame(out, last: false, context: context) }
                var fields = HPACKHeaders()
                for (name, value) in trailers { fields.add(name: name, value: value) }
                ended = true
                context.write(wrapOutboundOut(.headers(.init(headers: fields, endStream: true))), promise: nil)
            }
        }
        context.flush()
    }

    /// An edge-made answer as the full path's `ProxyHandler.local` makes it on a stream (same fields, log, counters).
    func answerError(_ ex: FastExchange, status: Int, reason: String, retryAfter: Int?) {
        guard let context else { return }
        let body = reason + "\n"
        var sink = HPACKSink(requestIdHeader: config.requestIdHeader)
        sink.headers.add(name: ":status", value: String(status))
        HeaderRewriter.localFields(bodyBytes: body.utf8.count, requestId: ex.requestId, config: config,
                                   extra: retryAfter.map { [("Retry-After", String($0))] } ?? [], connection: nil,
                                   into: &sink)
        ended = true
        if ex.isHEAD {
            context.write(wrapOutboundOut(.headers(.init(headers: sink.headers, endStream: true))), promise: nil)
        } else {
            context.write(wrapOutboundOut(.headers(.init(headers: sink.headers))), promise: nil)
            let data = context.channel.allocator.buffer(string: body)
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(data), endStream: true))), promise: nil)
        }
        context.flush()
        shared.localAnswered(method: ex.method, uri: ex.target, status: status, client: info.clientText,
                             start: ex.times.start, requestId: ex.requestId, note: nil, accessLog: config.settings.accessLog)
    }

    /// The stream is reset (closing a stream channel before its end sends RST_STREAM).
    func abortClient() {
        context?.close(promise: nil)
    }
}

/// HPACK fields from the rewriter: names in lower case (RFC 9113 §8.2.1), values as they are; the request id (a
/// value that differs on every response) without indexing, as `StreamFrameRewriter` sends it on the full path.
struct HPACKSink: HeaderSink {
    var headers = HPACKHeaders()
    /// The request id's name, lower case.
    let requestIdHeader: String

    init(requestIdHeader: String) { self.requestIdHeader = requestIdHeader }

    mutating func add(name: String, value: String) {
        let lower = name.utf8.contains { $0 >= 65 && $0 <= 90 } ? name.lowercased() : name
        headers.add(name: lower, value: value, indexing: lower == requestIdHeader ? .nonIndexable : .indexable)
    }

    mutating func copy<F: HeaderFieldRef>(_ field: F) { add(name: field.name, value: field.value) }
}
