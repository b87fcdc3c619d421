import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One HTTP/2 stream answered by the connection's pass-through lane (`ConnectionLane`): its request goes to an
/// HTTP/1.1 origin as bytes (`PassThroughClient`: the same admission, rules, upstream machine, metrics and log as the
/// HTTP/1.1 lane) and its answer comes back as HEADERS and DATA frames of its stream id, written on the connection.
///
/// Backpressure without a stream channel: the bytes of DATA frames written and not yet out (held by HTTP/2 flow
/// control or the socket) are counted until their write completes; past `highWater` the origin's reads are held, and
/// they resume at `lowWater` (the last frame of an answer needs no count: nothing follows it).
final class LaneStream: PassThroughClient, StreamTicking {
    static let highWater = 65536
    static let lowWater = 16384

    let lane: ConnectionLane
    let id: HTTP2StreamID
    var shared: EdgeShared { lane.shared }
    var loop: LoopStateBox { lane.loop }
    var info: ConnectionInfo { lane.info }
    var config: EdgeConfig { lane.loop.state.config }
    var exchange: FastExchange?
    /// Not taking its answer since (the send timeout).
    var clock = ClientClock()
    var now = NIODeadline.now()
    /// END_STREAM went out (HEADERS of a bodiless answer, or the last DATA).
    private var ended = false
    /// swift-nio-http2 reported the stream closed (answered, reset, or the connection gone).
    private var isClosed = false
    /// Bytes of DATA frames written whose write has not completed.
    private var pending = 0
    private var blocked = false

    init(lane: ConnectionLane, id: HTTP2StreamID) {
        self.lane = lane
        self.id = id
    }

    /// The request of a HEADERS block as the full path's codec makes it, read field by field as the lane checks them
    /// (`ConnectionLane.read`): `host` from `:authority` first when the block has none, then the regular fields; nil
    /// when this lane does not take it (a method that gets framing fields in HTTP/1.1, a target not in origin-form, a
    /// pseudo-header missing or repeated).
    struct RequestReader {
        private var method: String?, path: String?, authority: String?
        private var fields = AdmissionFields()
        private var hasHost = false
        private var declined = false

        init(capacity: Int) { fields.reserveCapacity(capacity) }

        /// The next field of the block, in the order received.
        mutating func add(name: String, value: String) {
            guard !declined else { return }
            guard name.utf8.first == UInt8(ascii: ":") else {
                if name == "host" { hasHost = true }
                fields.append((name, value))
                return
            }
            switch name {
            case ":method": declined = method != nil; method = value
            case ":path": declined = path != nil; path = value
            case ":authority": declined = authority != nil; authority = value
            case ":scheme": break
            default: declined = true
            }
        }

        /// The request, once every field was added (the reader's fields go into it).
        mutating func request() -> HTTP1Wire.Request? {
            guard !declined, let method, let path, path.utf8.first == UInt8(ascii: "/") else { return nil }
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
    }

    /// The stream closed: a reset or the connection's end mid-exchange is the client's departure. A stream closes
    /// also as its END_STREAM is written (for a HEADERS frame, within the write): its exchange then ends as usual.
    func closed() {
        guard !isClosed else { return }
        isClosed = true
        lane.ticker.leave(self)
        if !ended { clientGone() }
    }

    func tick() {
        guard exchange != nil, !isClosed else { return }
        now = .now()
        if clientStalled() { return reset() }
        checkOriginTimeout()
    }

    /// RST_STREAM (CANCEL), as closing a stream channel before its end sends.
    private func reset() {
        guard !isClosed else { return }
        lane.write(HTTP2Frame(streamID: id, payload: .rstStream(.cancel)), promise: nil)
        lane.flush()
    }

    // MARK: The client side of the exchange

    var clientWritable: Bool { !blocked }
    var clientBuffered: Int? { nil }  // flow control and the socket together: `pending` tells
    var clientAttached: Bool { !isClosed && lane.isActive }
    var mayKeepAlive: Bool { true }

    /// HEADERS: `:status` and the response rules' fields, lower case (RFC 9113 §8.2); END_STREAM when no body follows.
    func writeResponseHead(_ head: HTTP1Wire.Response, _ b: UnsafeRawBufferPointer, _ ex: FastExchange,
                           framing: ResponseFraming, keepAlive: Bool) {
        guard clientAttached else { return }
        // The origin's fields and the rules' own (`Via`, the request id, a few set by the route).
        var sink = HPACKSink(requestIdHeader: config.requestIdHeader, capacity: head.fields.count + 6)
        sink.headers.add(name: ":status", value: String(head.status))
        responseFields(head, b, ex, framing: framing, keepAlive: true, compressing: lane.compressing, into: &sink)
        let last = head.status >= 200 && framing == .none
        if last { ended = true }
        lane.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: sink.headers, endStream: last))), promise: nil)
    }

    /// DATA frames of the body without the origin's framing (chunks decoded), compressed when the edge compresses
    /// it; the last frame ends the stream.
    func relayBody(_ ex: FastExchange, _ bytes: inout ByteBuffer) -> Bool? {
        guard clientAttached else { return true }
        if let deflater = ex.answer.deflater {
            guard let (out, ended) = compressedBody(ex, deflater, &bytes, allocator: lane.allocator) else { return nil }
            // The stream ends here unless trailers follow (`responseEnded` sends them).
            let last = ended && ex.answer.trailerSection.count <= 2
            if out.readableBytes > 0 || last { frame(out, last: last) }
            return ended
        }
        let counted = ex.answer.framing != .chunked && ex.answer.framing != .close
        return bodyData(ex, &bytes) { body in
            ex.bytesOut += Int64(body.readableBytes)
            frame(body, last: counted && ex.answer.remaining == 0)
        }
    }

    private func frame(_ body: ByteBuffer, last: Bool) {
        let frame = HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(body), endStream: last)))
        let size = body.readableBytes
        if last { ended = true }
        guard !last, size > 0, let promise = lane.makePromise() else { return lane.write(frame, promise: nil) }
        pending += size
        if pending >= Self.highWater { blocked = true }
        promise.futureResult.assumeIsolated().whenComplete { _ in self.sent(size) }
        lane.write(frame, promise: promise)
    }

    /// `size` bytes of a DATA frame left (or were dropped with the stream): below the low mark the origin's reads
    /// resume.
    private func sent(_ size: Int) {
        pending -= size
        guard blocked, pending <= Self.lowWater else { return }
        blocked = false
        clock.blockedSince = nil
        exchange?.upstream?.handler.holdReads = false
    }

    func flushClient() { lane.flush() }

    func responseEnded(_ ex: FastExchange) {
        if !ended && clientAttached {  // the encoder's last bytes when compressed, then END_STREAM on an empty DATA or the trailers
            var out = ByteBuffer()
            ex.answer.deflater?.finish(into: &out)
            let trailers = ex.answer.http2Trailers
            if trailers.isEmpty {
                frame(out, last: true)
            } else {
                if out.readableBytes > 0 { frame(out, last: false) }
                var fields = HPACKHeaders()
                for (name, value) in trailers { fields.add(name: name, value: value) }
                ended = true
                lane.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: fields, endStream: true))), promise: nil)
            }
        }
        lane.flush()
    }

    /// An edge-made answer as the full path's `ProxyHandler.local` makes it on a stream (same fields, log, counters).
    func answerError(_ ex: FastExchange, status: Int, reason: String, retryAfter: Int?) {
        guard clientAttached else { return }
        let body = reason + "\n"
        var sink = HPACKSink(requestIdHeader: config.requestIdHeader)
        sink.headers.add(name: ":status", value: String(status))
        HeaderRewriter.localFields(bodyBytes: body.utf8.count, requestId: ex.requestId, config: config,
                                   extra: retryAfter.map { [("Retry-After", String($0))] } ?? [], connection: nil,
                                   into: &sink)
        ended = true
        if ex.isHEAD {
            lane.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: sink.headers, endStream: true))), promise: nil)
        } else {
            lane.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: sink.headers))), promise: nil)
            let data = lane.allocator.buffer(string: body)
            lane.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(data), endStream: true))), promise: nil)
        }
        lane.flush()
        shared.localAnswered(method: ex.method, uri: ex.target, status: status, client: info.clientText,
                             start: ex.times.start, requestId: ex.requestId, note: nil, accessLog: config.settings.accessLog)
    }

    /// The answer began and cannot be finished: the stream is reset.
    func abortClient() { reset() }
}

/// HPACK fields from the rewriter: names in lower case (RFC 9113 §8.2.1), values as they are; the request id (a
/// value that differs on every response) without indexing, as `StreamFrameRewriter` sends it on the full path.
struct HPACKSink: HeaderSink {
    var headers = HPACKHeaders()
    /// The request id's name, lower case.
    let requestIdHeader: String

    /// `capacity`: the fields expected (the list grows by reallocation otherwise, four times for a usual head).
    init(requestIdHeader: String, capacity: Int = 0) {
        self.requestIdHeader = requestIdHeader
        if capacity > 0 { headers.reserveCapacity(capacity) }
    }

    mutating func add(name: String, value: String) { add(lower: HTTPText.lowercased(name), value: value) }

    mutating func copy<F: HeaderFieldRef>(_ field: F) { add(lower: field.lowercasedName, value: field.value) }

    private mutating func add(lower: String, value: String) {
        headers.add(name: lower, value: value, indexing: lower == requestIdHeader ? .nonIndexable : .indexable)
    }
}
