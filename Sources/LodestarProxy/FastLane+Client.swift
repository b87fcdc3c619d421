import LodestarEdge
import LodestarTopology
import NIOCore
import Synchronization

/// The HTTP/1.1 client side of the pass-through lane: the answer written as HTTP/1.1 bytes.
extension FastLane: PassThroughClient {
    var clientWritable: Bool { context?.channel.isWritable ?? true }
    var clientBuffered: Int? { context.flatMap { ClientClock.buffered(socket: $0.channel) } }
    var clientAttached: Bool { context != nil }
    var mayKeepAlive: Bool { !closing && !finishing && !shared.isDraining }

    /// The status line, the response rules' fields, and the client's framing (chunked when the origin's body is
    /// chunked or ends with its close, or when the edge compresses it).
    func writeResponseHead(_ head: HTTP1Wire.Response, _ b: UnsafeRawBufferPointer, _ ex: FastExchange,
                           framing: ResponseFraming, keepAlive: Bool) {
        guard let context else { return }
        // A small counted body goes out in the head's buffer: one write for the whole answer (see `heldHead`).
        var small = 0
        if head.status >= 200, case .length(let n) = framing, n <= Self.bodyInHeadLimit { small = Int(n) }
        var wire = WireHead(loop: loop.state, capacity: head.length + 128 + small)
        wire.statusLine(head.status)
        responseFields(head, b, ex, framing: framing, keepAlive: keepAlive, compressing: compressing, into: &wire)
        if framing == .chunked || framing == .close || ex.answer.deflater != nil {
            wire.add(name: "Transfer-Encoding", value: "chunked")
        }
        wire.end()
        if small > 0 && ex.answer.deflater == nil {
            emitHeld(context)
            heldHead = wire.buffer
        } else {
            write(wire.buffer, context)
            loop.state.keep(head: wire.buffer)
        }
    }

    /// Every write of the lane's answers: the head held for its body (`heldHead`) goes first, so the bytes leave in
    /// order whatever writes next.
    private func write(_ buffer: ByteBuffer, _ context: ChannelHandlerContext) {
        emitHeld(context)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    /// Writes the response head held for its body (`heldHead`), if any.
    func emitHeld(_ context: ChannelHandlerContext) {
        guard let head = heldHead else { return }
        heldHead = nil
        context.write(wrapOutboundOut(head), promise: nil)
        loop.state.keep(head: head)
    }

    /// A length counted down, chunks relayed as they are (the scanner finds their end), a body ended by the origin's
    /// close chunked for the client; a body the edge compresses goes out in chunks of its compressed form.
    func relayBody(_ ex: FastExchange, _ bytes: inout ByteBuffer) -> Bool? {
        guard let context else { return true }
        if let deflater = ex.answer.deflater {
            guard let (out, ended) = compressedBody(ex, deflater, &bytes, allocator: context.channel.allocator) else { return nil }
            chunk(out, context: context)
            return ended
        }
        switch ex.answer.framing {
        case .none:
            return true
        case .length:
            if let body = ex.answer.counted(&bytes) { send(body, ex, context: context) }
            return ex.answer.remaining == 0
        case .chunked:
            let before = ex.answer.scanner.dataBytes
            guard let used = bytes.withUnsafeReadableBytes({ ex.answer.scanner.scan($0) }) else { return nil }
            // Relayed with its framing; counted as the body it carries (as the full lane counts).
            if used > 0, let body = bytes.readSlice(length: used) { write(body, context) }
            ex.bytesOut += ex.answer.scanner.dataBytes - before
            return ex.answer.scanner.isDone
        case .close:
            ex.bytesOut += Int64(bytes.readableBytes)
            chunk(bytes, context: context)
            bytes.moveReaderIndex(to: bytes.writerIndex)
            return false
        }
    }

    /// `body` as one chunk (none when it is empty: a zero-size chunk would end the body).
    private func chunk(_ body: ByteBuffer, context: ChannelHandlerContext) {
        guard body.readableBytes > 0 else { return }
        var size = context.channel.allocator.buffer(capacity: 12)
        size.writeString(String(body.readableBytes, radix: 16))
        size.writeInteger(0x0D0A as UInt16)
        write(size, context)
        write(body, context)
        var crlf = context.channel.allocator.buffer(capacity: 2)
        crlf.writeInteger(0x0D0A as UInt16)
        write(crlf, context)
    }

    private func send(_ body: ByteBuffer, _ ex: FastExchange, context: ChannelHandlerContext) {
        ex.bytesOut += Int64(body.readableBytes)
        if heldHead != nil {
            var body = body
            heldHead?.writeBuffer(&body)
            if ex.answer.remaining > 0 { emitHeld(context) }  // the rest comes in later reads
        } else {
            write(body, context)
        }
    }

    /// After the origin's reads of an answer still coming; an answer that ended was flushed by `endResponse`.
    func flushClient() {
        guard let context, exchange != nil else { return }
        emitHeld(context)
        context.flush()
    }

    func responseEnded(_ ex: FastExchange) {
        guard let context else { return }
        if let deflater = ex.answer.deflater {  // a body ended by the origin's close: the encoder's last bytes
            var out = context.channel.allocator.buffer(capacity: 0)
            deflater.finish(into: &out)
            chunk(out, context: context)
        }
        if ex.answer.framing == .close || ex.answer.deflater != nil {  // the last chunk, with the origin's trailers
            var last = context.channel.allocator.buffer(capacity: 5 + ex.answer.trailerSection.count)
            last.writeStaticString("0\r\n")
            if ex.answer.trailerSection.count > 2 {
                last.writeBytes(ex.answer.trailerSection)
            } else {
                last.writeStaticString("\r\n")
            }
            write(last, context)
        }
        requestsServed += 1
        endResponse(keepAlive: ex.answer.keepAlive, context: context)
    }

    func answerError(_ ex: FastExchange, status: Int, reason: String, retryAfter: Int?) {
        answerLocally(status: status, body: reason + "\n", close: !ex.clientKeepAlive, method: ex.method, target: ex.target,
                      extra: retryAfter.map { [("Retry-After", String($0))] } ?? [], requestId: ex.requestId,
                      start: ex.times.start)
    }

    func abortClient() {
        heldHead = nil
        closing = true
        context?.close(promise: nil)
    }

    /// After a whole answer: the next request, or a close once the answer is written.
    func endResponse(keepAlive: Bool, context: ChannelHandlerContext) {
        emitHeld(context)
        if keepAlive {
            context.flush()
            becomeIdle(context: context)
        } else {
            closing = true
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// An edge-made answer, as the full lane's `ProxyHandler.local` makes it (same fields, log line and counters).
    func answerLocally(status: Int, body: String, close: Bool, method: String, target: String,
                       extra: [(String, String)] = [], requestId: String? = nil, start: NIODeadline? = nil) {
        guard let context else { return }
        let close = close || closing || finishing || shared.isDraining
        let rid = requestId ?? shared.makeRequestId()
        var wire = WireHead(allocator: context.channel.allocator, capacity: 256 + body.utf8.count)
        wire.statusLine(status)
        HeaderRewriter.localFields(bodyBytes: body.utf8.count, requestId: rid, config: config, extra: extra,
                                   connection: close ? "close" : nil, into: &wire)
        wire.end()
        if method != "HEAD" { wire.buffer.writeString(body) }
        write(wire.buffer, context)
        shared.localAnswered(method: method, uri: target, status: status, client: info.clientText, start: start ?? .now(),
                             requestId: rid, note: nil, accessLog: config.settings.accessLog)
        requestsServed += 1
        endResponse(keepAlive: !close, context: context)
    }
}
