import LodestarCache
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The upstream phase: dispatch, forwarding with backpressure, the response, failures — driven by `UpstreamExchange`.
extension ProxyHandler {
    // MARK: Events into the machine, actions out

    /// Starts the upstream phase: the balancer picks a server (skipping those tried) and the machine says what next.
    func dispatch(_ ex: Exchange) {
        if let deadline = ex.times.deadline, ex.machine.attempts == 0, let context {
            // gRPC's deadline, to the millisecond (the connection's tick is coarser).
            context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
                guard let self, self.exchange === ex else { return }
                self.shared.stats.timeouts.add(1, ordering: .relaxed)
                self.perform(ex.machine.timedOut(), ex)
            }
        }
        let step = withPicker(ex) { ex.machine.start(pick: $0) }
        perform(step, ex)
    }

    /// Calls `body` with the pool's balancer as the machine's `pick` (available servers, not in `exclude`); passed
    /// down, not returned, so the closure needs no allocation.
    func withPicker<R>(_ ex: Exchange, _ body: ((ServerSet) -> Int?) -> R) -> R {
        let now = NIODeadline.now().uptimeNanoseconds
        return body { exclude in ex.pool.pick(uri: ex.head.uri, now: now, exclude: exclude) }
    }

    /// Carries out one step of the upstream machine: its health outcome first, then its action.
    func perform(_ step: UpstreamExchange.Step, _ ex: Exchange) {
        if let (server, success) = step.health {
            report(ex.pool.runtime.health.recordOutcome(server, success: success, now: NIODeadline.now().uptimeNanoseconds), ex.pool)
        }
        switch step.action {
        case .connect(let server): connect(ex, server: server)
        case .fail(let status, let reason, let retryAfter):
            if status == 503 && ex.machine.attempts == 0 { shared.noteDegraded(pool: ex.pool.runtime) }
            if status == 502 { shared.stats.upstreamErrors.add(1, ordering: .relaxed) }
            failExchange(ex, status: HTTPResponseStatus(statusCode: status), body: reason + "\n", retryAfter: retryAfter)
        case .abortClient(let reason):
            shared.stats.upstreamErrors.add(1, ordering: .relaxed)
            abortUpstream(ex)
            if ex.grpc, isHTTP2, let context {
                // The response has begun: a gRPC client is told by trailers rather than a reset stream.
                let status: GRPC.Status = reason.contains("timed out") ? .deadlineExceeded : .unavailable
                finish(ex, status: Int(ex.responseHead?.status.code ?? 200), note: reason)
                exchange = nil
                context.writeAndFlush(wrapOutboundOut(.end(Self.grpcTrailers(status, reason))), promise: nil)
                return
            }
            finish(ex, status: Int(ex.responseHead?.status.code ?? 502), note: reason)
            exchange = nil
            context?.close(promise: nil)
        case .sendRequest, .relay, .tunnel, .complete, .none:
            break  // carried out by the caller, which knows the connection or the response
        }
    }

    /// Takes an idle keep-alive connection to `server` or opens one.
    func connect(_ ex: Exchange, server: Int) {
        ex.times.upstreamStart = .now()
        ex.sentUpstream = false
        // A new attempt after a closed connection: what was sent goes again, before what was read meanwhile.
        if !ex.replay.parts.isEmpty { ex.pending = ex.replay.take() + ex.pending }
        let health = ex.pool.runtime.health
        health.begin(server)
        if let idle = ex.pool.takeIdle(server: server) {
            return attach(idle, ex)
        }
        ex.pool.connect(server: server).whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let conn):
                guard self.exchange === ex, self.context != nil else {
                    health.end(server)
                    ex.pool.release(conn)
                    return
                }
                self.attach(conn, ex)
            case .failure(let error):
                health.end(server)
                guard self.exchange === ex else {
                    self.report(health.recordOutcome(server, success: false, now: NIODeadline.now().uptimeNanoseconds), ex.pool)
                    return
                }
                let timedOut = self.shared.originConnectFailed(pool: ex.pool.runtime, server: server, error: error)
                self.perform(self.withPicker(ex) { ex.machine.connectFailed(timedOut: timedOut, pick: $0) }, ex)
            }
        }
    }

    func attach(_ conn: UpstreamConnection, _ ex: Exchange) {
        guard ex.machine.connected().action == .sendRequest else { return ex.pool.release(conn) }
        conn.owner = self
        conn.uses += 1
        ex.upstream = conn
        ex.sentUpstream = true
        ex.times.lastUpstreamActivity = .now()
        var head = HeaderRewriter.upstreamRequest(ex.head, route: ex.route, config: config, client: info.clientText,
                                                  scheme: info.scheme, requestId: ex.requestId, framing: ex.framing,
                                                  http2: ex.pool.runtime.pool.protocol != .http1)
        if let c = ex.cache { c.prepareUpstream(&head) }
        if let u = ex.upgrade {
            head.headers.add(name: "Connection", value: "upgrade")
            head.headers.add(name: "Upgrade", value: u.value)
        }
        let ch = conn.channel
        ch.write(HTTPClientRequestPart.head(head), promise: nil)
        if case .none = ex.framing {
            ch.write(HTTPClientRequestPart.end(nil), promise: nil)
        } else {
            for part in ex.pending {
                ex.replay.record(part)
                ch.write(part, promise: nil)
            }
        }
        ex.pending.removeAll()
        ch.flush()
        conn.handler.holdReads = !(context?.channel.isWritable ?? true)
        resumeClientReads()
    }

    func forwardBody(_ part: HTTPClientRequestPart, _ ex: Exchange) {
        if case .none = ex.framing { return }  // nothing to send; `.end` was written with the head
        if let up = ex.upstream, ex.sentUpstream {
            ex.replay.record(part)
            up.channel.write(part, promise: nil)
            if case .end = part { up.channel.flush() }
        } else {
            ex.pending.append(part)
        }
    }

    func upstreamRead(_ part: HTTPClientResponsePart) {
        guard let ex = exchange, let context, !ex.tunnelling else { return }
        ex.times.lastUpstreamActivity = .now()
        switch part {
        case .head(let head) where (100..<200).contains(head.status.code) && head.status.code != 101:
            // An interim response (RFC 9110 §15.2): relayed to HTTP/1.1 clients (103 Early Hints, 102), never stored;
            // 100 Continue is the edge's own business with its client.
            if head.status.code != 100 && !ex.head.isHTTP10 {
                let out = HeaderRewriter.clientResponse(head, route: ex.route, config: config, requestId: ex.requestId,
                                                        clientVersion: ex.head.version, keepAlive: true)
                sendInterim(out, context: context)
            }
        case .head(let head):
            ex.replay.stop()
            let step = ex.machine.responseHead(status: Int(head.status.code))
            switch step.action {
            case .tunnel:
                perform(step, ex)
                startTunnel(ex, head, context: context)
            case .relay:
                perform(step, ex)
                ex.times.upstreamHead = ex.times.lastUpstreamActivity
                relayResponseHead(ex, head, context: context)
            default:
                shared.logger.warning("origin sent an invalid status", metadata: [
                    "status": "\(head.status.code)", "server": "\(ex.server.map { ex.pool.runtime.labels[$0] } ?? "-")"])
                perform(step, ex)
            }
        case .body(let buffer):
            if let c = ex.cache {
                c.collect(buffer)
                if c.notModifiedToClient { return }
            }
            ex.bytes.out += Int64(buffer.readableBytes)
            writeBody(buffer, ex, context: context)
            if !context.channel.isWritable { ex.upstream?.handler.holdReads = true }
        case .end(let trailers):
            if let c = ex.cache, cacheResponseEnd(ex, c) { return }
            completeExchange(ex, trailers: trailers, context: context)
        }
    }

    /// The response filter on the head: the cache's turn (304 revalidation, stale on error), keep-alive, the header
    /// rules (hop-by-hop, Via, request id, Location rewrite), X-Cache and compression; then it goes to the client.
    func relayResponseHead(_ ex: Exchange, _ original: HTTPResponseHead, context: ChannelHandlerContext) {
        if let c = ex.cache, cacheResponseHead(ex, c, original) { return }
        var head = original
        if ex.grpc && head.headers.contains(name: "grpc-status") {
            // A trailers-only gRPC response (one HEADERS frame with END_STREAM) reaches the edge as a head and an
            // empty end; its metadata goes back out as trailers, where gRPC clients look for the status.
            ex.deferredTrailers = Self.splitTrailersOnly(&head.headers, route: ex.route)
        }
        ex.responseHead = head
        var keepAlive = clientKeepAlive(ex.head)
        if keepAlive && ex.head.isHTTP10 && head.status.mayHaveResponseBody && ex.head.method != .HEAD
            && head.headers[canonicalForm: "content-length"].isEmpty {
            keepAlive = false  // an HTTP/1.0 client learns the end of an unsized body only from the close
        }
        if !ex.requestEnded && ex.framing != .none { keepAlive = false }  // origin answered before the body ended
        ex.keepAliveClient = keepAlive
        var origin: String?
        var publicBase: String?
        if head.status.code >= 300 && head.status.code < 400 || head.headers.contains(name: "content-location"),
           let server = ex.server, let host = ex.head.headers.first(name: "host") {
            origin = ex.pool.runtime.labels[server]
            publicBase = info.scheme + "://" + host
        }
        var out = HeaderRewriter.clientResponse(head, route: ex.route, config: config, requestId: ex.requestId,
                                                clientVersion: ex.head.version, keepAlive: keepAlive,
                                                origin: origin, publicBase: publicBase)
        if let c = ex.cache {
            out.headers.add(name: "X-Cache", value: c.label)
            if c.notModifiedToClient { return }  // a 304 is sent when the body has been stored
        }
        // A 204 has no body and no length (RFC 9110 §8.6): an origin's Content-Length on one would make an HTTP/2
        // stream end short of its declared length, which swift-nio-http2 answers with a reset (HTTP/1.1's encoder
        // drops it); the pass-through lanes drop it too.
        if head.status == .noContent { out.headers.remove(name: "content-length") }
        compressHead(ex, &out.headers, status: out.status)
        context.write(wrapOutboundOut(.head(out)), promise: nil)
    }

    func upstreamReadComplete() {
        if let context { flushAnswer(context: context) }
        // A response still coming after this read: have its data acknowledged now (see `quickAck`). A response that
        // arrived whole in one read (most small ones) costs nothing.
        if let up = exchange?.upstream, up.session == nil, exchange?.responseHead != nil { Self.quickAck(up.channel) }
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        if writable { resumeClientReads() }
    }

    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) {
        guard let ex = exchange, ex.upstream === connection else { return }
        if let server = ex.server { ex.pool.runtime.health.end(server) }
        ex.upstream = nil
        if ex.responseHead == nil, case .sent = ex.machine.state {
            // Closed before any answer: the machine says whether to send it again (see `UpstreamExchange`).
            shared.originClosedEarly(pool: ex.pool.runtime, server: ex.server, error: error, uses: connection.uses)
            let reused = connection.uses > 1, replayable = !ex.replay.overflowed
            perform(withPicker(ex) { ex.machine.closedBeforeResponse(reusedConnection: reused, bodyReplayable: replayable,
                                                                     pick: $0) }, ex)
            return
        }
        // Mid-response: the client cannot be told except by closing.
        var step = ex.machine.closedMidResponse()
        if step.action == .none { step = UpstreamExchange.Step(action: .abortClient(reason: "origin closed mid-response")) }
        perform(step, ex)
    }

    /// Keeps `content-type` in `headers` and returns the other fields of a trailers-only gRPC response, less what the
    /// response rules hide (hop-by-hop fields, `Server` unless exposed, the route's removals).
    static func splitTrailersOnly(_ headers: inout HTTPHeaders, route: CompiledRoute) -> HTTPHeaders {
        var kept = HTTPHeaders()
        var trailers = HTTPHeaders()
        for (name, value) in headers {
            if HeaderRewriter.nameEquals(name, "content-type") { kept.add(name: name, value: value); continue }
            let kind = KnownHeader(name)
            if kind == .contentLength || kind.isHopByHop || (!route.route.exposeOriginServer && kind == .server)
                || HeaderRewriter.isListed(name, in: route.responseRemove) { continue }
            trailers.add(name: name, value: value)
        }
        headers = kept
        return trailers
    }

    func completeExchange(_ ex: Exchange, trailers original: HTTPHeaders?, context: ChannelHandlerContext) {
        let trailers = original ?? ex.deferredTrailers
        _ = ex.machine.responseEnded(requestEnded: ex.requestEnded,
                                     originKeepsAlive: ex.responseHead.map(LoopPool.allowsReuse) ?? false)
        releaseUpstream(ex, response: ex.responseHead)
        endExchange(ex, trailers: trailers, context: context)
    }

    /// Gives a finished upstream connection back to the pool (or closes it when it cannot be reused).
    func releaseUpstream(_ ex: Exchange, response: HTTPResponseHead?) {
        if let server = ex.server { ex.pool.runtime.health.end(server) }
        if let up = ex.upstream {
            ex.upstream = nil
            ex.pool.finish(up, response: response, requestEnded: ex.requestEnded)
        }
    }

    /// Sends the pending ACK at once and acknowledges what follows without delay. On a keep-alive request/response
    /// connection Linux delays ACKs (to piggyback them on the next request); an origin that holds the tail of a
    /// response until the start is acknowledged (Nagle, or TCP_CORK as nginx's `tcp_nopush` uses) would then stall
    /// for the delayed-ACK timer (~40 ms).
    static func quickAck(_ channel: any Channel) {
        #if os(Linux)
        _ = try? channel.syncOptions?.setOption(quickAckOption, value: 1)
        #endif
    }

    /// `TCP_QUICKACK` (12 in Linux's `netinet/tcp.h`) at the TCP level.
    static let quickAckOption = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: 12))

    /// Whether the client connection stays open after this request (always on an HTTP/2 stream, which the
    /// connection's GOAWAY ends instead).
    func clientKeepAlive(_ head: HTTPRequestHead) -> Bool {
        if isHTTP2 { return true }
        return head.isKeepAlive && !closing && !finishing && !shared.isDraining
    }

    func abortUpstream(_ ex: Exchange) {
        ex.machine.cancel()
        if let up = ex.upstream {
            if let server = ex.server { ex.pool.runtime.health.end(server) }
            up.owner = nil
            up.channel.close(promise: nil)
            ex.upstream = nil
        }
    }

    /// Ends an exchange with an edge-made error page; the client connection closes unless the request was complete.
    func failExchange(_ ex: Exchange, status: HTTPResponseStatus, body: String, retryAfter: Int? = nil) {
        abortUpstream(ex)
        if ex.responseHead == nil, let c = ex.cache, cacheServeStaleOnError(ex, c) { return }
        guard ex.responseHead == nil else {
            finish(ex, status: Int(status.code), note: "failed mid-response")
            exchange = nil
            context?.close(promise: nil)
            return
        }
        exchange = nil
        let close = !(ex.requestEnded || ex.framing == .none)
        local(ex.head, status: status, body: body, close: close, extra: retryAfter.map { [("Retry-After", String($0))] } ?? [],
              requestId: ex.requestId, start: ex.start, route: ex.route, linger: close)
    }

    func tooLarge(_ ex: Exchange) {
        abortUpstream(ex)
        if ex.responseHead != nil {
            finish(ex, status: 413, note: "body over limit mid-response")
            exchange = nil
            discarding = true
            context?.close(promise: nil)
            return
        }
        exchange = nil
        local(ex.head, status: .payloadTooLarge, body: "request body too large\n", close: true, requestId: ex.requestId,
              start: ex.start, route: ex.route, linger: true)
    }
}
