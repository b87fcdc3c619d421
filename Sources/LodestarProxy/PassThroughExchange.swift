import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import Synchronization

/// One request going through a pass-through lane (an HTTP/1.1 connection's or an HTTP/2 stream's).
final class FastExchange {
    let method: String
    let target: String
    let fields: AdmissionFields
    let route: CompiledRoute
    let pool: LoopPool
    let requestId: String
    let isHEAD: Bool
    /// The client keeps the connection (no `Connection: close` in its request; always on an HTTP/2 stream).
    let clientKeepAlive: Bool
    /// The client speaks HTTP/2 (its `Via` entry and response head say so).
    let http2: Bool
    /// The coding the client accepts, when the edge compresses (never for HEAD, as on the full path).
    let coding: ContentCoding?
    var machine: UpstreamExchange
    var times: ExchangeTimes
    var upstream: RawConnection?
    /// The origin's answer as it is read.
    var answer = Answer()
    var bytesOut: Int64 = 0

    init(head: HTTP1Wire.Request, route: CompiledRoute, pool: LoopPool, requestId: String, keepAlive: Bool,
         now: NIODeadline, http2: Bool = false, compressing: Bool = false) {
        self.http2 = http2
        coding = compressing && head.method != "HEAD"
            ? ContentCoding.choose(acceptEncoding: head.fields.lazy.filter { HTTPText.nameEquals($0.name, "accept-encoding") }.map(\.value))
            : nil
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

    /// What is known of the origin's answer as it is read and relayed.
    struct Answer {
        /// Response head bytes read so far (a head split over reads).
        var headBytes: ByteBuffer?
        var headDone = false
        var status = 0
        var framing = ResponseFraming.none
        /// Body bytes still to come of a counted body.
        var remaining: Int64 = 0
        var scanner = ChunkedScanner()
        /// The origin keeps the connection after this response.
        var reusable = false
        var keepAliveTimeout: Int?
        /// The client's connection stays open after this response.
        var keepAlive = true
        /// The encoder of a response the edge compresses.
        var deflater: Deflater?
        /// The trailer section of a chunked body, as read (its field lines and the empty line that ends it).
        var trailerSection: [UInt8] = []

        /// The next part of a counted body from `bytes` (at most what is still to come), nil when none is there.
        mutating func counted(_ bytes: inout ByteBuffer) -> ByteBuffer? {
            let n = Int(min(remaining, Int64(bytes.readableBytes)))
            guard n > 0, let part = bytes.readSlice(length: n) else { return nil }
            remaining -= Int64(n)
            return part
        }
    }

    func field(_ lower: String) -> String? {
        fields.first { HTTPText.nameEquals($0.name, lower) }?.value
    }
}

/// The client side of a pass-through exchange: an HTTP/1.1 connection (`FastLane`) or an HTTP/2 stream
/// (`LaneStream`, answered by `ConnectionLane`). The upstream side — the `UpstreamExchange` machine on `RawConnection`s, the origin's response
/// head read as bytes, health, metrics and the access log — is one implementation for both (the extension below);
/// each client writes the answer in its own protocol.
protocol PassThroughClient: RawUpstreamOwner {
    var shared: EdgeShared { get }
    /// The configuration of this loop (an exchange keeps the pool it started with).
    var loop: LoopStateBox { get }
    var config: EdgeConfig { get }
    var info: ConnectionInfo { get }
    /// The time of the event being handled.
    var now: NIODeadline { get set }
    var exchange: FastExchange? { get set }
    /// The client can take more now (else the origin's reads are held).
    var clientWritable: Bool { get }
    /// The bytes waiting for the client in its socket (HTTP/1.1); nil where the channel does not tell (an HTTP/2 stream).
    var clientBuffered: Int? { get }
    /// The client's idle and send-timeout clocks.
    var clock: ClientClock { get set }
    /// The client is still there to be answered.
    var clientAttached: Bool { get }
    /// An answer may keep the client's connection (not shutting down or draining; always on an HTTP/2 stream).
    var mayKeepAlive: Bool { get }
    /// Writes a response head (interim or final) in the client's protocol; `framing`: how the origin's body comes.
    func writeResponseHead(_ head: HTTP1Wire.Response, _ b: UnsafeRawBufferPointer, _ ex: FastExchange,
                           framing: ResponseFraming, keepAlive: Bool)
    /// Relays body bytes of the origin's framing (`ex.answer.framing`): true at the body's end (bytes after it left in
    /// `bytes`), false for more to come, nil when the origin's framing is broken.
    func relayBody(_ ex: FastExchange, _ bytes: inout ByteBuffer) -> Bool?
    func flushClient()
    /// The whole response went out: the client side ends it (the next request, a closed connection, END_STREAM).
    func responseEnded(_ ex: FastExchange)
    /// An edge-made answer (no response head went out yet).
    func answerError(_ ex: FastExchange, status: Int, reason: String, retryAfter: Int?)
    /// The response began and cannot be finished: the client side ends abruptly.
    func abortClient()
}

/// What a head read from the origin's bytes means for those bytes.
enum HeadOutcome {
    case incomplete
    /// The exchange ended (an invalid answer).
    case stop
    /// A head of `length` bytes was taken (interim or final).
    case next(length: Int)
}

/// The request phase and the client's departure, the same for both clients; then the upstream phase: the
/// `UpstreamExchange` machine carried out on byte connections.
extension PassThroughClient {
    /// Admits `request` and, when a lane takes it, starts its exchange (after `whenTaken`, the client's own
    /// bookkeeping) and returns nil; else returns admission's verdict, for the full path to carry out.
    func start(_ request: HTTP1Wire.Request, http2: Bool, keepAlive: Bool, compressing: Bool,
               whenTaken: () -> Void) -> Admission.Verdict? {
        let state = loop.state
        let admission = AdmissionRequest(
            method: request.method, target: request.target, isHTTP10: false, isHTTP2: http2, fields: request.fields,
            fieldCount: request.fields.count, client: info.client, now: now.uptimeNanoseconds,
            openTunnels: shared.openTunnels.load(ordering: .relaxed), fieldSyntaxChecked: !http2)
        let verdict = state.config.admission.admit(admission)
        guard case .proceed(let admitted) = verdict,
              let route = Self.takes(admitted, request, state) else { return verdict }
        whenTaken()
        shared.stats.requests.add(1, ordering: .relaxed)
        shared.stats.passThrough.add(1, ordering: .relaxed)
        let ex = FastExchange(head: request, route: route, pool: state.pools[route.poolIndex],
                              requestId: Self.requestId(request.fields, state.config, shared), keepAlive: keepAlive,
                              now: now, http2: http2, compressing: compressing)
        exchange = ex
        dispatch(ex)
        return nil
    }

    /// The route, when a pass-through lane takes the request: no body, no upgrade, no cache, an HTTP/1.1 pool, not
    /// gRPC (a lane compresses what the full path would).
    static func takes(_ a: Admitted, _ head: HTTP1Wire.Request, _ state: LoopState) -> CompiledRoute? {
        guard a.framing == .none, a.upgrade == nil, !a.closeAfter, !a.expectContinue else { return nil }
        let route = state.config.routes[a.route]
        guard !(route.route.cache.enabled && state.cache != nil),
              state.config.pools[route.poolIndex].pool.protocol == .http1 else { return nil }
        for (name, value) in head.fields {
            switch name.utf8.count {
            case 12 where HTTPText.nameEquals(name, "content-type") && GRPC.isGRPC(contentType: value): return nil
            case StreamFrameRewriter.marker.utf8.count where HTTPText.nameEquals(name, StreamFrameRewriter.marker): return nil
            default: continue
            }
        }
        return route
    }

    /// The client's request id when it sent a plain one, else a new one.
    static func requestId(_ fields: AdmissionFields, _ config: EdgeConfig, _ shared: EdgeShared) -> String {
        for (name, value) in fields where HeaderRewriter.nameEquals(name, config.requestIdHeader) {
            if HeaderRewriter.isAcceptableRequestId(value) { return value }
            break
        }
        return shared.makeRequestId()
    }

    /// The client went away mid-exchange: the upstream connection cannot be reused; the exchange is logged as 499
    /// (or the status already sent).
    func clientGone() {
        guard let ex = exchange else { return }
        abortUpstream(ex)
        finish(ex, status: ex.answer.status == 0 ? 499 : ex.answer.status, note: "client closed")
        exchange = nil
    }

    /// A client that has taken none of its answer for `limits.sendTimeoutMs` (`now` read by the caller), during the
    /// exchange or after it: a timeout, and the exchange, if any, ends, logged with the status already sent; true when
    /// the caller must close the client's connection or stream.
    func clientStalled() -> Bool {
        guard clock.stalled(writable: clientWritable, buffered: clientBuffered, now: now,
                            limitMs: config.settings.limits.sendTimeoutMs) else { return false }
        shared.stats.timeouts.add(1, ordering: .relaxed)
        if let ex = exchange {
            abortUpstream(ex)
            finish(ex, status: ex.answer.status == 0 ? 499 : ex.answer.status, note: "client send timeout")
            exchange = nil
        }
        return true
    }

    /// An origin that stopped answering (not counting time the edge holds its reads for a slow client) times out
    /// (`now` read by the caller).
    func checkOriginTimeout() {
        guard let ex = exchange, let up = ex.upstream, !up.handler.holdReads,
              now - ex.times.lastUpstreamActivity > .milliseconds(Int64(ex.pool.runtime.pool.responseTimeoutMs)) else { return }
        shared.stats.timeouts.add(1, ordering: .relaxed)
        perform(ex.machine.timedOut(), ex)
    }

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
            finish(ex, status: ex.answer.status == 0 ? 502 : ex.answer.status, note: reason)
            exchange = nil
            abortClient()
        case .sendRequest, .relay, .tunnel, .complete, .none:
            break
        }
    }

    func connect(_ ex: FastExchange, server: Int) {
        ex.times.upstreamStart = now
        let health = ex.pool.runtime.health
        health.begin(server)
        if let idle = ex.pool.takeRawIdle(server: server, now: now) { return attach(idle, ex) }
        // `self` held until the connect ends (it always does; a weak reference would slow every retain of the lane).
        ex.pool.connectRaw(server: server).whenComplete { [self] result in
            self.now = .now()
            switch result {
            case .success(let conn):
                guard self.exchange === ex, self.clientAttached else {
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
                let timedOut = self.shared.originConnectFailed(pool: ex.pool.runtime, server: server, error: error)
                self.perform(ex.machine.connectFailed(timedOut: timedOut) { exclude in
                    ex.pool.pick(uri: ex.target, now: now, exclude: exclude)
                }, ex)
            }
        }
    }

    /// Sends the request head (rewritten by the same rules as the full lane's) on the connection.
    func attach(_ conn: RawConnection, _ ex: FastExchange) {
        guard ex.machine.connected().action == .sendRequest else {
            return ex.pool.releaseRaw(conn, reusable: true, keepAliveTimeout: nil)
        }
        conn.owner = self
        conn.uses += 1
        ex.upstream = conn
        ex.times.lastUpstreamActivity = now
        var wire = WireHead(loop: loop.state, capacity: 512)
        wire.requestLine(method: ex.method, target: ex.target)
        let facts = HeaderRewriter.RequestFacts(method: ex.method, viaHTTP2: ex.http2, client: info.clientText,
                                                scheme: info.scheme, requestId: ex.requestId, framing: .none,
                                                originHTTP2: false)
        HeaderRewriter.upstreamFields(ex.fields.fieldRefs, facts, route: ex.route, config: config, into: &wire)
        wire.end()
        conn.handler.send(wire.buffer)
        loop.state.keep(head: wire.buffer)
        conn.handler.holdReads = !clientWritable
    }

    // MARK: The response

    func rawRead(_ incoming: ByteBuffer) {
        guard let ex = exchange, clientAttached else { return }
        now = .now()
        ex.times.lastUpstreamActivity = now
        var bytes = incoming
        if !ex.answer.headDone {
            if var held = ex.answer.headBytes {
                held.writeBuffer(&bytes)
                bytes = held
                ex.answer.headBytes = nil
            }
            guard readResponseHead(ex, &bytes) else { return }
        }
        guard exchange === ex else { return }
        guard let ended = relayBody(ex, &bytes) else {
            shared.logger.warning("origin sent a broken chunked body", metadata: [
                "server": "\(ex.server.map { ex.pool.runtime.labels[$0] } ?? "-")"])
            return perform(UpstreamExchange.Step(action: .abortClient(reason: "broken chunked body from the origin"),
                                                 health: ex.server.map { ($0, false) }), ex)
        }
        if ended {
            if bytes.readableBytes > 0 { ex.answer.reusable = false }  // bytes after the body: the connection is not kept
            completeExchange(ex)
        } else if !clientWritable {
            ex.upstream?.handler.holdReads = true
        }
    }

    /// Reads interim heads and the final head; false when there is nothing more to do with these bytes.
    func readResponseHead(_ ex: FastExchange, _ bytes: inout ByteBuffer) -> Bool {
        let limits = HTTP1Wire.Limits(maxBytes: 65536, maxFields: 256)
        while !ex.answer.headDone {
            let outcome: HeadOutcome = bytes.withUnsafeReadableBytes { b in
                switch HTTP1Wire.readResponse(b, limits: limits) {
                case .incomplete: return .incomplete
                case .unusual: return invalidResponse(ex, why: "unreadable head")
                case .head(let head): return startResponse(head, b, ex)
                }
            }
            switch outcome {
            case .incomplete:
                ex.answer.headBytes = bytes
                return false
            case .stop: return false
            case .next(let length): bytes.moveReaderIndex(forwardBy: length)
            }
        }
        return true
    }

    /// An interim head is relayed (103 Early Hints, 102; never 100, the edge's business); a final one starts the
    /// response: the machine's verdict, the framing, the client's head.
    func startResponse(_ head: HTTP1Wire.Response, _ b: UnsafeRawBufferPointer, _ ex: FastExchange) -> HeadOutcome {
        if head.status < 200 && head.status != 101 {
            if head.status != 100 { writeResponseHead(head, b, ex, framing: .none, keepAlive: true) }
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
        ex.answer.headDone = true
        ex.times.upstreamHead = ex.times.lastUpstreamActivity
        ex.answer.status = head.status
        ex.answer.framing = facts.framing
        ex.answer.reusable = facts.reusable
        ex.answer.keepAliveTimeout = facts.keepAliveTimeout
        if case .length(let n) = facts.framing { ex.answer.remaining = n }
        ex.answer.keepAlive = ex.clientKeepAlive && mayKeepAlive
        writeResponseHead(head, b, ex, framing: facts.framing, keepAlive: ex.answer.keepAlive)
        return .next(length: head.length)
    }

    /// A head the lane cannot relay: the machine's verdict for an invalid response (502, counted against the server).
    func invalidResponse(_ ex: FastExchange, why: String) -> HeadOutcome {
        shared.logger.warning("origin sent an invalid response", metadata: [
            "why": "\(why)", "server": "\(ex.server.map { ex.pool.runtime.labels[$0] } ?? "-")"])
        perform(ex.machine.responseHead(status: 0), ex)
        return .stop
    }

    func rawReadComplete() {
        flushClient()
        // A response still coming: have its data acknowledged at once (see `ProxyHandler.quickAck`).
        if let up = exchange?.upstream, exchange?.answer.headDone == true { ProxyHandler.quickAck(up.channel) }
    }

    func rawClosed(_ connection: RawConnection, error: (any Error)?) {
        guard let ex = exchange, ex.upstream === connection, clientAttached else { return }
        now = .now()
        if let server = ex.server { ex.pool.runtime.health.end(server) }
        ex.upstream = nil
        if !ex.answer.headDone {
            shared.originClosedEarly(pool: ex.pool.runtime, server: ex.server, error: error, uses: connection.uses)
            let ns = now.uptimeNanoseconds
            let step = ex.machine.closedBeforeResponse(reusedConnection: connection.uses > 1, bodyReplayable: true) { exclude in
                ex.pool.pick(uri: ex.target, now: ns, exclude: exclude)
            }
            return perform(step, ex)
        }
        if ex.answer.framing == .close && error == nil {
            ex.answer.reusable = false
            return completeExchange(ex)
        }
        var step = ex.machine.closedMidResponse()
        if step.action == .none { step = UpstreamExchange.Step(action: .abortClient(reason: "origin closed mid-response")) }
        perform(step, ex)
    }

    /// The response ended: the connection goes back to the pool (or closes), the request is logged, and the client
    /// side ends the response.
    func completeExchange(_ ex: FastExchange) {
        _ = ex.machine.responseEnded(requestEnded: true, originKeepsAlive: ex.answer.reusable)
        if let server = ex.server { ex.pool.runtime.health.end(server) }
        if let up = ex.upstream {
            ex.upstream = nil
            ex.pool.releaseRaw(up, reusable: ex.answer.reusable, keepAliveTimeout: ex.answer.keepAliveTimeout)
        }
        finish(ex, status: ex.answer.status, note: nil)
        exchange = nil
        responseEnded(ex)
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
    func failExchange(_ ex: FastExchange, status: Int, reason: String, retryAfter: Int?) {
        abortUpstream(ex)
        exchange = nil
        guard !ex.answer.headDone else {
            finish(ex, status: status, note: "failed mid-response")
            return abortClient()
        }
        answerError(ex, status: status, reason: reason, retryAfter: retryAfter)
    }

    /// Counters, metrics and the access log line of an exchange.
    func finish(_ ex: FastExchange, status: Int, note: String?) {
        shared.exchangeEnded(pool: ex.pool, route: ex.route, times: ex.times, status: status, bytesOut: ex.bytesOut,
                             method: ex.method, uri: ex.target, client: info.clientText, server: ex.server,
                             requestId: ex.requestId, note: note, accessLog: config.settings.accessLog)
    }
}
