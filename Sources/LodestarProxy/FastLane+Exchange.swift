import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import Synchronization

/// One request going through the pass-through lane.
final class FastExchange {
    let method: String
    let target: String
    let fields: AdmissionFields
    let route: CompiledRoute
    let pool: LoopPool
    let requestId: String
    let isHEAD: Bool
    /// The client keeps the connection (no `Connection: close` in its request).
    let clientKeepAlive: Bool
    var machine: UpstreamExchange
    var times: ExchangeTimes
    var upstream: RawConnection?
    /// Response head bytes read so far (a head split over reads).
    var headBytes: ByteBuffer?
    var headDone = false
    var status = 0
    var framing = ResponseFraming.none
    var remaining: Int64 = 0
    var scanner = ChunkedScanner()
    /// The origin keeps the connection after this response.
    var reusable = false
    var keepAliveTimeout: Int?
    var keepAlive = true
    var bytesOut: Int64 = 0

    init(head: HTTP1Wire.Request, route: CompiledRoute, pool: LoopPool, requestId: String, keepAlive: Bool,
         now: NIODeadline) {
        times = ExchangeTimes(now: now)
        method = head.method
        target = head.target
        fields = head.fields
        self.route = route
        self.pool = pool
        self.requestId = requestId
        isHEAD = head.method == "HEAD"
        clientKeepAlive = keepAlive
        machine = UpstreamExchange(idempotent: UpstreamExchange.isIdempotent(method: head.method), hasBody: false,
                                   retries: pool.runtime.pool.retries)
    }

    var server: Int? { machine.lastServer }

    func field(_ lower: String) -> String? {
        fields.first { HTTPText.nameEquals($0.name, lower) }?.value
    }
}

/// The pass-through lane's upstream phase: the same `UpstreamExchange` machine as the full lane, carried out on
/// byte connections.
extension FastLane {
    func dispatch(_ ex: FastExchange) {
        let ns = now.uptimeNanoseconds
        perform(ex.machine.start { exclude in ex.pool.pick(uri: ex.target, now: ns, exclude: exclude) }, ex)
    }

    /// One step of the machine: its health outcome, then its action.
    func perform(_ step: UpstreamExchange.Step, _ ex: FastExchange) {
        if let (server, success) = step.health,
           let t = ex.pool.runtime.health.recordOutcome(server, success: success, now: now.uptimeNanoseconds) {
            shared.healthChanged(t, pool: ex.pool.runtime)
        }
        switch step.action {
        case .connect(let server): connect(ex, server: server)
        case .fail(let status, let reason, let retryAfter):
            if status == 503 && ex.machine.attempts == 0 { shared.noteDegraded(pool: ex.pool.runtime) }
            if status == 502 { shared.stats.upstreamErrors.add(1, ordering: .relaxed) }
            failExchange(ex, status: status, reason: reason, retryAfter: retryAfter)
        case .abortClient(let reason):
            shared.stats.upstreamErrors.add(1, ordering: .relaxed)
            abortUpstream(ex)
            finish(ex, status: ex.status == 0 ? 502 : ex.status, note: reason)
            exchange = nil
            closing = true
            context?.close(promise: nil)
        case .sendRequest, .relay, .tunnel, .complete, .none:
            break
        }
    }

    private func connect(_ ex: FastExchange, server: Int) {
        ex.times.upstreamStart = now
        let health = ex.pool.runtime.health
        health.begin(server)
        if let idle = ex.pool.takeRawIdle(server: server, now: now) { return attach(idle, ex) }
        ex.pool.connectRaw(server: server).whenComplete { [weak self] result in
            guard let self else { return }
            self.now = .now()
            switch result {
            case .success(let conn):
                guard self.exchange === ex, self.context != nil else {
                    health.end(server)
                    ex.pool.releaseRaw(conn, reusable: true, keepAliveTimeout: nil)
                    return
                }
                self.attach(conn, ex)
            case .failure(let error):
                health.end(server)
                let now = self.now.uptimeNanoseconds
                guard self.exchange === ex else {
                    if let t = health.recordOutcome(server, success: false, now: now) { self.shared.healthChanged(t, pool: ex.pool.runtime) }
                    return
                }
                self.shared.stats.upstreamConnectFailures.add(1, ordering: .relaxed)
                self.shared.logger.warning("origin connect failed", metadata: [
                    "pool": "\(ex.pool.runtime.pool.name)", "server": "\(ex.pool.runtime.labels[server])", "error": "\(error)"])
                var timedOut = false
                if case .connectTimeout = error as? ChannelError { timedOut = true }
                self.perform(ex.machine.connectFailed(timedOut: timedOut) { exclude in
                    ex.pool.pick(uri: ex.target, now: now, exclude: exclude)
                }, ex)
            }
        }
    }

    /// Sends the request head (rewritten by the same rules as the full lane's) on the connection.
    private func attach(_ conn: RawConnection, _ ex: FastExchange) {
        guard ex.machine.connected().action == .sendRequest else {
            return ex.pool.releaseRaw(conn, reusable: true, keepAliveTimeout: nil)
        }
        conn.owner = self
        conn.uses += 1
        ex.upstream = conn
        ex.times.lastUpstreamActivity = now
        var wire = WireHead(allocator: conn.channel.allocator, capacity: 512)
        wire.requestLine(method: ex.method, target: ex.target)
        let facts = HeaderRewriter.RequestFacts(method: ex.method, viaHTTP2: false, client: info.clientText,
                                                scheme: info.scheme, requestId: ex.requestId, framing: .none,
                                                originHTTP2: false)
        HeaderRewriter.upstreamFields(ex.fields.fieldRefs, facts, route: ex.route, config: config, into: &wire)
        wire.end()
        conn.channel.writeAndFlush(wire.buffer, promise: nil)
        conn.handler.holdReads = !(context?.channel.isWritable ?? true)
    }

    // MARK: The response

    func rawRead(_ incoming: ByteBuffer) {
        guard let ex = exchange, let context else { return }
        now = .now()
        ex.times.lastUpstreamActivity = now
        var bytes = incoming
        if !ex.headDone {
            if var held = ex.headBytes {
                held.writeBuffer(&bytes)
                bytes = held
                ex.headBytes = nil
            }
            guard readResponseHead(ex, &bytes, context: context) else { return }
        }
        if exchange === ex { relayBody(ex, &bytes, context: context) }
    }

    /// Reads interim heads and the final head; false when there is nothing more to do with these bytes.
    private func readResponseHead(_ ex: FastExchange, _ bytes: inout ByteBuffer, context: ChannelHandlerContext) -> Bool {
        let limits = HTTP1Wire.Limits(maxBytes: 65536, maxFields: 256)
        while !ex.headDone {
            let outcome: HeadOutcome = bytes.withUnsafeReadableBytes { b in
                switch HTTP1Wire.readResponse(b, limits: limits) {
                case .incomplete: return .incomplete
                case .unusual: return invalidResponse(ex, why: "unreadable head")
                case .head(let head): return startResponse(head, b, ex, context: context)
                }
            }
            switch outcome {
            case .incomplete:
                ex.headBytes = bytes
                return false
            case .stop: return false
            case .next(let length): bytes.moveReaderIndex(forwardBy: length)
            }
        }
        return true
    }

    /// What a head read from the origin's bytes means for those bytes.
    enum HeadOutcome {
        case incomplete
        /// The exchange ended (an invalid answer).
        case stop
        /// A head of `length` bytes was taken (interim or final).
        case next(length: Int)
    }

    /// An interim head is relayed (103 Early Hints, 102; never 100, the edge's business); a final one starts the
    /// response: the machine's verdict, the framing, the client's head.
    private func startResponse(_ head: HTTP1Wire.Response, _ b: UnsafeRawBufferPointer, _ ex: FastExchange,
                               context: ChannelHandlerContext) -> HeadOutcome {
        if head.status < 200 && head.status != 101 {
            if head.status != 100 { writeHead(head, b, ex, framing: .none, keepAlive: true, context: context) }
            return .next(length: head.length)
        }
        guard let facts = ResponseFacts(head, bytes: b, isHEAD: ex.isHEAD) else {
            return invalidResponse(ex, why: "unreadable Content-Length")
        }
        let step = ex.machine.responseHead(status: head.status)
        guard case .relay = step.action else {
            shared.logger.warning("origin sent an invalid status", metadata: [
                "status": "\(head.status)", "server": "\(ex.server.map { ex.pool.runtime.labels[$0] } ?? "-")"])
            perform(step, ex)
            return .stop
        }
        perform(step, ex)
        ex.headDone = true
        ex.times.upstreamHead = ex.times.lastUpstreamActivity
        ex.status = head.status
        ex.framing = facts.framing
        ex.reusable = facts.reusable
        ex.keepAliveTimeout = facts.keepAliveTimeout
        if case .length(let n) = facts.framing { ex.remaining = n }
        ex.keepAlive = ex.clientKeepAlive && !closing && !finishing && !shared.isDraining
        writeHead(head, b, ex, framing: facts.framing, keepAlive: ex.keepAlive, context: context)
        return .next(length: head.length)
    }

    /// A head the lane cannot relay: the machine's verdict for an invalid response (502, counted against the server).
    private func invalidResponse(_ ex: FastExchange, why: String) -> HeadOutcome {
        shared.logger.warning("origin sent an invalid response", metadata: [
            "why": "\(why)", "server": "\(ex.server.map { ex.pool.runtime.labels[$0] } ?? "-")"])
        perform(ex.machine.responseHead(status: 0), ex)
        return .stop
    }

    /// The client's response head: the status line, the response rules' fields (the lines kept as the origin sent
    /// them), the framing of what follows.
    private func writeHead(_ head: HTTP1Wire.Response, _ b: UnsafeRawBufferPointer, _ ex: FastExchange,
                           framing: ResponseFraming, keepAlive: Bool, context: ChannelHandlerContext) {
        var rules = HeaderRewriter.ResponseRules(originHTTP2: false, clientHTTP2: false, clientHTTP10: false,
                                                 keepAlive: keepAlive, requestId: ex.requestId)
        let chunked = framing == .chunked || framing == .close
        var relocates = head.status >= 300 && head.status < 400
        var lengthToDrop = false
        // What the compressor's rules read (see `EdgeServer.compressionPredicate`): on an edge that compresses, an
        // answer that could be compressed says it varies on Accept-Encoding, as the full lane's would.
        var contentType: String?
        var encoded = false
        var vary: [Substring] = []
        for f in head.fields {
            switch f.name.count {
            case 16 where HTTP1Wire.bytes(b, f.name, equal: "content-location"): relocates = true
            // A length beside a transfer coding is not passed on (the body goes chunked), nor on a status without
            // a body (1xx, 204, 304), as NIO's encoder frames the full lane's answers (RFC 9110 §8.6).
            case 14 where HTTP1Wire.bytes(b, f.name, equal: "content-length"):
                lengthToDrop = chunked || head.status < 200 || head.status == 204 || head.status == 304
            case 12 where compressing && HTTP1Wire.bytes(b, f.name, equal: "content-type"):
                contentType = HTTP1Wire.string(b, f.value)
            case 16 where compressing && HTTP1Wire.bytes(b, f.name, equal: "content-encoding"): encoded = true
            case 4 where compressing && HTTP1Wire.bytes(b, f.name, equal: "vary"):
                vary += HTTP1Wire.string(b, f.value).split(separator: ",").map { $0.trimmingSpaces() }
            default: continue
            }
        }
        let varies = compressing && EdgeServer.compressible(status: head.status, contentType: contentType, encoded: encoded,
                                                              types: config.settings.compression.types)
            && !EdgeServer.variesOnEncoding(vary)
        if relocates, let server = ex.server, let host = ex.field("host") {
            rules.origin = ex.pool.runtime.labels[server]
            rules.publicBase = info.scheme + "://" + host
        }
        var wire = WireHead(allocator: context.channel.allocator, capacity: head.length + 128)
        wire.statusLine(head.status)
        let fields = head.fields.lazy.map { WireField(bytes: b, field: $0) }
        if lengthToDrop {
            let kept = fields.filter { !$0.nameEquals("content-length") }
            HeaderRewriter.clientFields(kept, rules, route: ex.route, config: config, into: &wire)
        } else {
            HeaderRewriter.clientFields(fields, rules, route: ex.route, config: config, into: &wire)
        }
        if varies { wire.add(name: "Vary", value: "Accept-Encoding") }
        if chunked { wire.add(name: "Transfer-Encoding", value: "chunked") }
        wire.end()
        context.write(wrapOutboundOut(wire.buffer), promise: nil)
    }

    /// Relays body bytes as the framing says, and completes the exchange at the body's end.
    private func relayBody(_ ex: FastExchange, _ bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        switch ex.framing {
        case .none:
            if bytes.readableBytes > 0 { ex.reusable = false }
            return completeExchange(ex, context: context)
        case .length:
            let n = Int(min(ex.remaining, Int64(bytes.readableBytes)))
            if n > 0, let body = bytes.readSlice(length: n) { send(body, ex, context: context) }
            ex.remaining -= Int64(n)
            guard ex.remaining == 0 else { break }
            if bytes.readableBytes > 0 { ex.reusable = false }
            return completeExchange(ex, context: context)
        case .chunked:
            let before = ex.scanner.dataBytes
            guard let used = bytes.withUnsafeReadableBytes({ ex.scanner.scan($0) }) else {
                shared.logger.warning("origin sent a broken chunked body", metadata: [
                    "server": "\(ex.server.map { ex.pool.runtime.labels[$0] } ?? "-")"])
                return perform(UpstreamExchange.Step(action: .abortClient(reason: "broken chunked body from the origin"),
                                                     health: ex.server.map { ($0, false) }), ex)
            }
            // Relayed with its framing; counted as the body it carries (as the full lane counts).
            if used > 0, let body = bytes.readSlice(length: used) { context.write(wrapOutboundOut(body), promise: nil) }
            ex.bytesOut += ex.scanner.dataBytes - before
            guard ex.scanner.isDone else { break }
            if bytes.readableBytes > 0 { ex.reusable = false }
            return completeExchange(ex, context: context)
        case .close:
            guard bytes.readableBytes > 0 else { break }
            // Until the origin closes: chunked for the client, so its connection can stay open.
            var size = context.channel.allocator.buffer(capacity: 12)
            size.writeString(String(bytes.readableBytes, radix: 16))
            size.writeInteger(0x0D0A as UInt16)
            context.write(wrapOutboundOut(size), promise: nil)
            send(bytes, ex, context: context)
            var crlf = context.channel.allocator.buffer(capacity: 2)
            crlf.writeInteger(0x0D0A as UInt16)
            context.write(wrapOutboundOut(crlf), promise: nil)
        }
        if !context.channel.isWritable { ex.upstream?.handler.holdReads = true }
    }

    private func send(_ body: ByteBuffer, _ ex: FastExchange, context: ChannelHandlerContext) {
        ex.bytesOut += Int64(body.readableBytes)
        context.write(wrapOutboundOut(body), promise: nil)
    }

    func rawReadComplete() {
        context?.flush()
        // A response still coming: have its data acknowledged at once (see `ProxyHandler.quickAck`).
        if let up = exchange?.upstream, exchange?.headDone == true { ProxyHandler.quickAck(up.channel) }
    }

    func rawWritabilityChanged(_ writable: Bool) {}

    func rawClosed(_ connection: RawConnection, error: (any Error)?) {
        guard let ex = exchange, ex.upstream === connection, let context else { return }
        now = .now()
        if let server = ex.server { ex.pool.runtime.health.end(server) }
        ex.upstream = nil
        if !ex.headDone {
            if error != nil || connection.uses <= 1 {
                shared.logger.warning("origin closed before answering", metadata: [
                    "pool": "\(ex.pool.runtime.pool.name)", "server": "\(ex.server.map { ex.pool.runtime.labels[$0] } ?? "-")",
                    "error": "\(error.map { "\($0)" } ?? "connection closed")"])
            }
            let ns = now.uptimeNanoseconds
            let step = ex.machine.closedBeforeResponse(reusedConnection: connection.uses > 1, bodyReplayable: true) { exclude in
                ex.pool.pick(uri: ex.target, now: ns, exclude: exclude)
            }
            return perform(step, ex)
        }
        if ex.framing == .close && error == nil {
            ex.reusable = false
            return completeExchange(ex, context: context)
        }
        var step = ex.machine.closedMidResponse()
        if step.action == .none { step = UpstreamExchange.Step(action: .abortClient(reason: "origin closed mid-response")) }
        perform(step, ex)
    }

    /// The response ended: the connection goes back to the pool (or closes), the request is logged, and the client
    /// connection waits for the next request or closes.
    private func completeExchange(_ ex: FastExchange, context: ChannelHandlerContext) {
        _ = ex.machine.responseEnded(requestEnded: true, originKeepsAlive: ex.reusable)
        if let server = ex.server { ex.pool.runtime.health.end(server) }
        if let up = ex.upstream {
            ex.upstream = nil
            ex.pool.releaseRaw(up, reusable: ex.reusable, keepAliveTimeout: ex.keepAliveTimeout)
        }
        if ex.framing == .close {
            var last = context.channel.allocator.buffer(capacity: 5)
            last.writeStaticString("0\r\n\r\n")
            context.write(wrapOutboundOut(last), promise: nil)
        }
        finish(ex, status: ex.status, note: nil)
        exchange = nil
        requestsServed += 1
        endResponse(keepAlive: ex.keepAlive, context: context)
    }

    /// After a whole answer: the next request, or a close once the answer is written.
    func endResponse(keepAlive: Bool, context: ChannelHandlerContext) {
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

    func abortUpstream(_ ex: FastExchange) {
        ex.machine.cancel()
        if let up = ex.upstream {
            if let server = ex.server { ex.pool.runtime.health.end(server) }
            up.owner = nil
            up.channel.close(promise: nil)
            ex.upstream = nil
        }
    }

    /// Ends an exchange with an edge-made error page (or, once the response has begun, a closed connection).
    private func failExchange(_ ex: FastExchange, status: Int, reason: String, retryAfter: Int?) {
        abortUpstream(ex)
        exchange = nil
        guard !ex.headDone else {
            finish(ex, status: status, note: "failed mid-response")
            closing = true
            context?.close(promise: nil)
            return
        }
        answerLocally(status: status, body: reason + "\n", close: !ex.clientKeepAlive, method: ex.method, target: ex.target,
                      extra: retryAfter.map { [("Retry-After", String($0))] } ?? [], requestId: ex.requestId,
                      start: ex.times.start)
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
        context.write(wrapOutboundOut(wire.buffer), promise: nil)
        if config.settings.accessLog {
            shared.accessLog(method: method, uri: target, status: status, bytes: 0, client: info.clientText, upstream: nil,
                             start: start ?? .now(), upstreamMs: nil, requestId: rid, note: nil)
        }
        shared.stats.record(status: status)
        shared.metrics.record(route: "-", status: status)
        requestsServed += 1
        endResponse(keepAlive: !close, context: context)
    }

    /// Counters, metrics and the access log line of an exchange.
    func finish(_ ex: FastExchange, status: Int, note: String?) {
        shared.stats.record(status: status)
        shared.stats.bytesOut.add(Int(ex.bytesOut), ordering: .relaxed)
        let latency = ex.times.upstreamStart.flatMap { s in ex.times.upstreamHead.map { ($0 - s).nanoseconds } }
        ex.pool.series.record(shared.metrics, route: ex.route, pool: ex.pool.runtime.pool.name, status: status,
                              upstreamNanoseconds: latency)
        guard config.settings.accessLog else { return }
        let upstreamMs = ex.times.upstreamStart.map { s in ((ex.times.upstreamHead ?? .now()) - s).nanoseconds / 1000 }
        shared.accessLog(method: ex.method, uri: ex.target, status: status, bytes: ex.bytesOut, client: info.clientText,
                         upstream: ex.server.map { ex.pool.runtime.labels[$0] }, start: ex.times.start,
                         upstreamMs: upstreamMs, requestId: ex.requestId, note: note)
    }
}
