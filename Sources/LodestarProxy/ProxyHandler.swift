import LodestarCache
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import Synchronization

/// Who is on the other end of a client connection: the socket peer, or the PROXY protocol's source.
final class ConnectionInfo {
    var client: IPAddress?
    var clientText: String
    let scheme: String

    init(remote: SocketAddress?, scheme: String) {
        self.scheme = scheme
        if let ip = remote?.ipAddress, let a = IPAddress(ip) {
            client = a
            clientText = a.description
        } else {
            client = nil
            clientText = "-"
        }
    }
}

/// Notes when the first byte of a request head arrives, so a slow head (slowloris) can be told from an idle connection.
final class ActivityTracker: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    /// Set while the connection waits for a request head.
    var armed = true
    var firstByteAt: NIODeadline?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if armed && firstByteAt == nil { firstByteAt = .now() }
        context.fireChannelRead(data)
    }
}

/// What a `ProxyHandler` serves: an HTTP/1.1 connection or one HTTP/2 stream.
enum ClientMode {
    case http1(ActivityTracker)
    case http2
}

extension HTTPRequestHead {
    /// An HTTP/1.0 request (HTTP/2's heads say 2.0, whose minor version is also 0).
    var isHTTP10: Bool { version.major == 1 && version.minor == 0 }
    /// The version an answer to this request carries.
    var responseVersion: HTTPVersion { version.major == 2 ? .http2 : (version.minor == 0 ? .http1_0 : .http1_1) }
}

/// One request being forwarded.
final class Exchange {
    let head: HTTPRequestHead
    let route: CompiledRoute
    let pool: LoopPool
    let requestId: String
    let start: NIODeadline
    let framing: BodyFraming
    let idempotent: Bool
    /// Body parts read before the upstream connection was ready.
    var pending: [HTTPClientRequestPart] = []
    var requestEnded = false
    var bodyBytesIn: Int64 = 0
    var upstream: UpstreamConnection?
    var server: Int?
    var tried: [Int] = []
    var attempts = 0
    /// Upstream request head written (and possibly body parts).
    var sentUpstream = false
    var responseHead: HTTPResponseHead?
    var bytesOut: Int64 = 0
    var keepAliveClient = true
    var upstreamStart: NIODeadline?
    var upstreamHeadAt: NIODeadline?
    var lastUpstreamActivity: NIODeadline
    var lastClientActivity: NIODeadline
    /// The cache's part in this exchange (routes with `cache.enabled`).
    var cache: CacheExchange?
    /// The upgrade asked for and allowed (WebSocket); the origin's 101 makes the connection a tunnel.
    var upgrade: UpgradeRequest?
    /// The 101 was sent; the connections are becoming a tunnel.
    var tunnelling = false

    init(head: HTTPRequestHead, route: CompiledRoute, pool: LoopPool, requestId: String, framing: BodyFraming) {
        self.head = head
        self.route = route
        self.pool = pool
        self.requestId = requestId
        self.framing = framing
        let now = NIODeadline.now()
        self.start = now
        self.lastUpstreamActivity = now
        self.lastClientActivity = now
        switch head.method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: idempotent = true
        default: idempotent = false
        }
    }
}

/// The edge's per-connection request handler: checks, routes and forwards each request, streaming both bodies
/// with backpressure in both directions.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamOwner {
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
    private var tracker: ActivityTracker? { if case .http1(let t) = mode { return t } else { return nil } }
    /// True on an HTTP/2 stream: one request, no connection-level fields (RFC 9113 §8.2.2), no keep-alive logic.
    var isHTTP2: Bool { if case .http2 = mode { return true } else { return false } }
    let compressing: Bool
    var context: ChannelHandlerContext?
    var exchange: Exchange?
    /// Set after a local answer that closes the connection: further request parts are ignored.
    var discarding = false
    private var readPending = false
    /// Request parts of pipelined requests read while an earlier one is still being answered.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var draining = false
    /// The client shut its sending side: close once every complete request read so far is answered.
    private var inputClosed = false
    private var idleSince = NIODeadline.now()
    var requestsServed = 0
    private var timer: RepeatedTask?
    var closing = false

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
        let limits = config.settings.limits
        let smallest = min(limits.headerTimeoutMs, limits.keepAliveTimeoutMs, limits.bodyTimeoutMs)
        let tick = Int64(max(50, min(1000, smallest / 4)))
        let bound = NIOLoopBound(WeakHandler(self), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(tick), delay: .milliseconds(tick)) { _ in
            bound.value.handler?.tick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
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

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            tracker?.armed = false
            tracker?.firstByteAt = nil
            begin(head, context: context)
        case .body(let buffer):
            guard let ex = exchange else { return }
            ex.bodyBytesIn += Int64(buffer.readableBytes)
            ex.lastClientActivity = .now()
            if ex.bodyBytesIn > config.settings.limits.maxBodyBytes {
                tooLarge(ex)
                return
            }
            forwardBody(.body(.byteBuffer(buffer)), ex)
        case .end(let trailers):
            guard let ex = exchange else { return }
            ex.requestEnded = true
            ex.lastUpstreamActivity = .now()  // the origin's time to answer starts now
            forwardBody(.end(trailers), ex)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Shutdown: an idle HTTP/1.1 connection closes now, a busy one after its answer (which says close). An
            // HTTP/2 stream finishes; its connection's manager sends GOAWAY.
            if !isHTTP2 {
                closing = true
                if exchange == nil && queued.isEmpty { context.close(promise: nil) }
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
        if context.channel.isWritable { exchange?.lastUpstreamActivity = .now() }
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
    private var holdClientReads: Bool {
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

    // MARK: Request start

    /// The admission phase (pure, `Admission`), then the cache phase or dispatch.
    private func begin(_ original: HTTPRequestHead, context: ChannelHandlerContext) {
        var head = original
        // Absolute-form target (RFC 9112 §3.2.2): its authority replaces Host, and the origin gets origin-form.
        if let (authority, originForm) = Admission.splitAbsoluteForm(head.uri) {
            head.uri = originForm
            head.headers.replaceOrAdd(name: "Host", value: authority)
        }
        shared.stats.requests.add(1, ordering: .relaxed)
        let state = loop.state
        let request = AdmissionRequest(
            method: head.method.rawValue, target: head.uri, isHTTP10: head.isHTTP10, isHTTP2: isHTTP2, fields: head.headers,
            fieldCount: head.headers.count, client: info.client, now: NIODeadline.now().uptimeNanoseconds,
            openTunnels: shared.openTunnels.load(ordering: .relaxed))
        let admitted: Admitted
        switch state.config.admission.admit(request) {
        case .reject(let r):
            switch r.kind {
            case .rateLimited: shared.stats.rateLimited.add(1, ordering: .relaxed)
            case .denied: shared.stats.denied.add(1, ordering: .relaxed)
            case .protocolError, .noRoute, .tooMany: break
            }
            return local(head, status: HTTPResponseStatus(statusCode: r.status), body: r.body, close: r.close,
                         extra: r.retryAfter.map { [("Retry-After", String($0))] } ?? [], linger: r.linger)
        case .proceed(let a):
            admitted = a
        }
        if admitted.closeAfter { closing = true }  // the parser reads nothing after an upgrade request
        let route = state.config.routes[admitted.route]
        let requestId: String
        if let given = head.headers.first(name: config.settings.requestIdHeader), HeaderRewriter.isAcceptableRequestId(given) {
            requestId = given
        } else {
            requestId = shared.makeRequestId()
        }
        let ex = Exchange(head: head, route: route, pool: state.pools[route.poolIndex], requestId: requestId,
                          framing: admitted.framing)
        ex.upgrade = admitted.upgrade
        exchange = ex
        // Expect: 100-continue — the edge will read the body, so it says so itself (the origin never sees Expect).
        if admitted.expectContinue { sendContinue(context: context) }
        // The cache slot: between routing and dispatch (a hit never reaches `dispatch`).
        if route.route.cache.enabled, admitted.upgrade == nil, let cache = state.cache {
            return cacheBegin(ex, cache: cache, host: admitted.host)
        }
        dispatch(ex)
    }

    private func sendContinue(context: ChannelHandlerContext) {
        sendInterim(HTTPResponseHead(version: .http1_1, status: .continue), context: context)
    }

    /// Writes an interim (1xx) response head now (past the compressor, which would take it for the final response).
    private func sendInterim(_ head: HTTPResponseHead, context: ChannelHandlerContext) {
        writeBypassingCompressor(.head(head), context: context)
    }

    // MARK: Upstream

    /// Picks a server and connects (or reuses a connection); retries elsewhere on connect failure when allowed.
    func dispatch(_ ex: Exchange) {
        let now = NIODeadline.now()
        guard let server = ex.pool.pick(uri: ex.head.uri, now: now.uptimeNanoseconds, exclude: ex.tried) else {
            if ex.attempts == 0 {
                shared.noteDegraded(pool: ex.pool.runtime)
                return failExchange(ex, status: .serviceUnavailable, body: "no healthy origin server\n", retryAfter: 5)
            }
            return failExchange(ex, status: .badGateway, body: "origin unreachable\n")
        }
        ex.attempts += 1
        ex.tried.append(server)
        ex.server = server
        ex.upstreamStart = now
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
                self.report(health.recordOutcome(server, success: false, now: NIODeadline.now().uptimeNanoseconds), ex.pool)
                guard self.exchange === ex else { return }
                self.shared.stats.upstreamConnectFailures.add(1, ordering: .relaxed)
                self.shared.logger.warning("origin connect failed", metadata: [
                    "pool": "\(ex.pool.runtime.pool.name)", "server": "\(ex.pool.runtime.labels[server])", "error": "\(error)"])
                if ex.idempotent && ex.attempts <= ex.pool.runtime.pool.retries {
                    self.dispatch(ex)
                } else if case .connectTimeout = error as? ChannelError {
                    self.failExchange(ex, status: .gatewayTimeout, body: "origin connect timed out\n")
                } else {
                    self.failExchange(ex, status: .badGateway, body: "origin unreachable\n")
                }
            }
        }
    }

    private func attach(_ conn: UpstreamConnection, _ ex: Exchange) {
        conn.owner = self
        conn.uses += 1
        ex.upstream = conn
        ex.sentUpstream = true
        ex.lastUpstreamActivity = .now()
        var head = HeaderRewriter.upstreamRequest(ex.head, route: ex.route, config: config, client: info.clientText,
                                                  scheme: info.scheme, requestId: ex.requestId, framing: ex.framing)
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
            for part in ex.pending { ch.write(part, promise: nil) }
        }
        ex.pending.removeAll()
        ch.flush()
        conn.handler.holdReads = !(context?.channel.isWritable ?? true)
        resumeClientReads()
    }

    private func forwardBody(_ part: HTTPClientRequestPart, _ ex: Exchange) {
        if case .none = ex.framing { return }  // nothing to send; `.end` was written with the head
        if let up = ex.upstream, ex.sentUpstream {
            up.channel.write(part, promise: nil)
            if case .end = part { up.channel.flush() }
        } else {
            ex.pending.append(part)
        }
    }

    func upstreamRead(_ part: HTTPClientResponsePart) {
        guard let ex = exchange, let context, !ex.tunnelling else { return }
        ex.lastUpstreamActivity = .now()
        if case .head(let head) = part, head.status == .switchingProtocols, ex.upgrade != nil {
            return startTunnel(ex, head, context: context)
        }
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
            // RFC 9110 §15: a status outside 100–599 is invalid, and a final 1xx (101: the edge asked for no upgrade)
            // cannot be relayed as HTTP; both are the origin's fault: 502.
            guard (200...599).contains(head.status.code) else {
                if let server = ex.server {
                    report(ex.pool.runtime.health.recordOutcome(server, success: false,
                                                                now: ex.lastUpstreamActivity.uptimeNanoseconds), ex.pool)
                }
                shared.stats.upstreamErrors.add(1, ordering: .relaxed)
                shared.logger.warning("origin sent an invalid status", metadata: [
                    "status": "\(head.status.code)", "server": "\(ex.server.map { ex.pool.runtime.labels[$0] } ?? "-")"])
                return failExchange(ex, status: .badGateway, body: "invalid response from the origin\n")
            }
            ex.upstreamHeadAt = ex.lastUpstreamActivity
            if let server = ex.server {
                report(ex.pool.runtime.health.recordOutcome(server, success: head.status.code < 500,
                                                            now: ex.lastUpstreamActivity.uptimeNanoseconds), ex.pool)
            }
            // The cache may answer from its store instead (304 revalidation, stale on error).
            if let c = ex.cache, cacheResponseHead(ex, c, head) { return }
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
            // HTTP/1.0 clients learn the end of a gzip stream only from a close; HEAD has no body to compress.
            if compressing && (ex.head.isHTTP10 || ex.head.method == .HEAD) {
                out.headers.add(name: EdgeShared.noCompressMarker, value: "1")
            }
            context.write(wrapOutboundOut(.head(out)), promise: nil)
        case .body(let buffer):
            if let c = ex.cache {
                c.collect(buffer)
                if c.notModifiedToClient { return }
            }
            ex.bytesOut += Int64(buffer.readableBytes)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            if !context.channel.isWritable { ex.upstream?.handler.holdReads = true }
        case .end(let trailers):
            if let c = ex.cache, cacheResponseEnd(ex, c) { return }
            completeExchange(ex, trailers: trailers, context: context)
        }
    }

    func upstreamReadComplete() {
        context?.flush()
        // A response still coming after this read: have its data acknowledged now (see `quickAck`). A response that
        // arrived whole in one read (most small ones) costs nothing.
        if let up = exchange?.upstream, exchange?.responseHead != nil { Self.quickAck(up.channel) }
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        if writable { resumeClientReads() }
    }

    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) {
        guard let ex = exchange, ex.upstream === connection else { return }
        let health = ex.pool.runtime.health
        if let server = ex.server { health.end(server) }
        ex.upstream = nil
        if ex.responseHead == nil {
            // Closed before any answer. A reused keep-alive connection the origin had already closed is no fault of
            // the server (try again, same server allowed); anything else counts against it. Bodiless idempotent
            // requests are sent again, elsewhere when possible (nginx's proxy_next_upstream "error").
            let reused = connection.uses > 1
            if !reused, let server = ex.server {
                report(health.recordOutcome(server, success: false, now: NIODeadline.now().uptimeNanoseconds), ex.pool)
            }
            if ex.idempotent && ex.framing == .none && ex.attempts <= ex.pool.runtime.pool.retries + (reused ? 1 : 0) {
                ex.sentUpstream = false
                if reused { ex.tried.removeAll { $0 == ex.server } }
                return dispatch(ex)
            }
            shared.stats.upstreamErrors.add(1, ordering: .relaxed)
            return failExchange(ex, status: .badGateway, body: "origin closed the connection\n")
        }
        // Mid-response: the client cannot be told except by closing.
        shared.stats.upstreamErrors.add(1, ordering: .relaxed)
        finish(ex, status: Int(ex.responseHead?.status.code ?? 502), note: "origin closed mid-response")
        exchange = nil
        context?.close(promise: nil)
    }

    private func completeExchange(_ ex: Exchange, trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        releaseUpstream(ex, response: ex.responseHead)
        endExchange(ex, trailers: trailers, context: context)
    }

    /// Gives a finished upstream connection back to the pool (or closes it when it cannot be reused).
    func releaseUpstream(_ ex: Exchange, response: HTTPResponseHead?) {
        if let server = ex.server { ex.pool.runtime.health.end(server) }
        if let up = ex.upstream {
            let reusable = ex.requestEnded && (response.map(Self.responseAllowsReuse) ?? false)
            ex.upstream = nil
            if reusable { ex.pool.release(up) } else { up.owner = nil; up.channel.close(promise: nil) }
        }
    }

    /// Sends the end of the response, logs, and keeps the connection open for the next request or closes it.
    func endExchange(_ ex: Exchange, trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        let keepAlive = ex.keepAliveClient
        finish(ex, status: Int(ex.responseHead?.status.code ?? 0), note: nil)
        exchange = nil
        requestsServed += 1
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            becomeIdle()
        } else {
            closing = true
            discarding = true
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { [weak self] _ in
                self?.context?.close(promise: nil)
            }
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
        return head.isKeepAlive && !closing && !shared.isDraining
    }

    static func responseAllowsReuse(_ head: HTTPResponseHead) -> Bool {
        head.isKeepAlive && head.version.major == 1 && head.version.minor == 1
    }

    func becomeIdle() {
        idleSince = .now()
        tracker?.armed = true
        tracker?.firstByteAt = nil
        drainQueue()
        if inputClosed && exchange == nil && queued.isEmpty {
            context?.close(promise: nil)
            return
        }
        resumeClientReads()
    }

    /// Hands queued pipelined parts on, in order, until one starts an exchange that is still reading its request.
    private func drainQueue() {
        guard !draining, let context else { return }
        draining = true
        defer { draining = false }
        while !queued.isEmpty && !discarding && !(exchange?.requestEnded ?? false) {
            handle(queued.removeFirst(), context: context)
        }
        if discarding { queued.removeAll() }
    }

    func abortUpstream(_ ex: Exchange) {
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

    private func tooLarge(_ ex: Exchange) {
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

    // MARK: Local answers

    /// Answers from the edge itself (errors, 403/404/429). `close` ends the connection after the answer.
    /// `headless`: no request head was read (parser error, head timeout), so the answer must not pass the compressor,
    /// which pairs each response with a request head it saw.
    func local(_ head: HTTPRequestHead, status: HTTPResponseStatus, body: String, close: Bool,
                       extra: [(String, String)] = [], requestId: String? = nil, start: NIODeadline? = nil,
                       route: CompiledRoute? = nil, headless: Bool = false, linger: Bool = false) {
        guard let ownContext = context else { return }
        var context = ownContext
        if headless && compressing,
           let cctx = try? ownContext.pipeline.syncOperations.context(handlerType: HTTPResponseCompressor.self) {
            context = cctx
        }
        let close = close || !clientKeepAlive(head)
        let rid = requestId ?? shared.makeRequestId()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: config.settings.requestIdHeader, value: rid)
        headers.add(name: "Via", value: config.via)
        for (n, v) in extra { headers.add(name: n, value: v) }
        if isHTTP2 {}  // RFC 9113 §8.2.2: no connection-specific fields
        else if close { headers.add(name: "Connection", value: "close") }
        else if head.isHTTP10 { headers.add(name: "Connection", value: "keep-alive") }
        let response = HTTPResponseHead(version: head.responseVersion, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        if config.settings.accessLog {
            shared.accessLog(method: head.method.rawValue, uri: head.uri, status: Int(status.code), bytes: 0, client: info.clientText,
                             upstream: nil, start: start ?? .now(), upstreamMs: nil, requestId: rid, note: nil)
        }
        shared.stats.record(status: Int(status.code))
        shared.metrics.record(route: "-", status: Int(status.code))
        requestsServed += 1
        if close {
            closing = true
            discarding = true
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated()
            if linger {
                // Lingering close (as nginx does): stop sending, keep reading and dropping what the client still
                // sends for a moment, so the answer is not lost to a reset from unread request bytes.
                done.whenComplete { _ in
                    ownContext.close(mode: .output).assumeIsolated().whenFailure { _ in ownContext.close(promise: nil) }
                    ownContext.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) { ownContext.close(promise: nil) }
                }
            } else {
                done.whenComplete { _ in ownContext.close(promise: nil) }
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            becomeIdle()
        }
    }

    /// How long a lingering close keeps reading after the answer.
    static let lingerTime = TimeAmount.seconds(2)

    /// 400/414/431 for what the HTTP parser refused; the connection always closes.
    private func respondProtocolError(_ error: HTTPParserError, context: ChannelHandlerContext) {
        guard !discarding else { return }
        let status: HTTPResponseStatus
        switch error {
        case .headerOverflow: status = .requestHeaderFieldsTooLarge
        default: status = .badRequest
        }
        shared.stats.protocolErrors.add(1, ordering: .relaxed)
        let headless = exchange == nil
        if let ex = exchange {
            abortUpstream(ex)
            exchange = nil
            if ex.responseHead != nil {
                discarding = true
                context.close(promise: nil)
                return
            }
        }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "-")
        local(head, status: status, body: "\(status.reasonPhrase.lowercased())\n", close: true, headless: headless, linger: true)
    }

    // MARK: Timers and logging

    fileprivate func tick() {
        guard let context, !closing else { return }
        let now = NIODeadline.now()
        let limits = config.settings.limits
        if let ex = exchange {
            // A client that stopped sending its body (not one we stopped reading because the origin is slow to take it).
            if ex.sentUpstream, ex.upstream != nil, !ex.requestEnded, ex.framing != .none, !readPending,
               now - ex.lastClientActivity > .milliseconds(Int64(limits.bodyTimeoutMs)) {
                shared.stats.timeouts.add(1, ordering: .relaxed)
                abortUpstream(ex)
                exchange = nil
                if ex.responseHead == nil {
                    local(ex.head, status: .requestTimeout, body: "request body timed out\n", close: true,
                          requestId: ex.requestId, start: ex.start, route: ex.route)
                } else {
                    finish(ex, status: 408, note: "client body timeout")
                    context.close(promise: nil)
                }
                return
            }
            // An origin that stopped answering: counted once the request is sent, and not while the edge itself holds
            // the origin's reads because the client is slow to take the response.
            if let up = ex.upstream, ex.requestEnded || ex.framing == .none, !up.handler.holdReads,
               now - ex.lastUpstreamActivity > .milliseconds(Int64(ex.pool.runtime.pool.responseTimeoutMs)) {
                shared.stats.timeouts.add(1, ordering: .relaxed)
                if let server = ex.server {
                    report(ex.pool.runtime.health.recordOutcome(server, success: false, now: now.uptimeNanoseconds), ex.pool)
                }
                failExchange(ex, status: .gatewayTimeout, body: "origin timed out\n")
            }
            return
        }
        if isHTTP2 { return }  // the connection's own manager handles idle HTTP/2 connections
        if let first = tracker?.firstByteAt {
            if now - first > .milliseconds(Int64(limits.headerTimeoutMs)) {
                shared.stats.timeouts.add(1, ordering: .relaxed)
                let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "-")
                local(head, status: .requestTimeout, body: "request head timed out\n", close: true, headless: true)
            }
        } else {
            let allowed = requestsServed == 0 ? limits.headerTimeoutMs : limits.keepAliveTimeoutMs
            if now - idleSince > .milliseconds(Int64(allowed)) || (shared.isDraining && requestsServed > 0) {
                closing = true
                context.close(promise: nil)
            }
        }
    }

    func finish(_ ex: Exchange, status: Int, note: String?) {
        shared.stats.record(status: status)
        shared.stats.bytesOut.add(Int(ex.bytesOut), ordering: .relaxed)
        shared.metrics.record(route: ex.route.label, status: status)
        if let s = ex.upstreamStart, let head = ex.upstreamHeadAt {
            shared.metrics.recordUpstream(pool: ex.pool.runtime.pool.name, nanoseconds: (head - s).nanoseconds)
        }
        let upstreamMs = ex.upstreamStart.map { s in ((ex.upstreamHeadAt ?? .now()) - s).nanoseconds / 1000 }
        if config.settings.accessLog {
            shared.accessLog(method: ex.head.method.rawValue, uri: ex.head.uri, status: status, bytes: ex.bytesOut,
                             client: info.clientText, upstream: ex.server.map { ex.pool.runtime.labels[$0] },
                             start: ex.start, upstreamMs: upstreamMs, requestId: ex.requestId, note: note,
                             cache: ex.cache?.label)
        }
    }

    func report(_ transition: HealthTransition?, _ pool: LoopPool) {
        if let transition { shared.healthChanged(transition, pool: pool.runtime) }
    }
}

/// A weak reference that a loop-bound timer closure can hold.
final class WeakHandler {
    weak var handler: ProxyHandler?
    init(_ handler: ProxyHandler) { self.handler = handler }
}
