import LodestarCache
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Ending exchanges, local (edge-made) answers, and the connection's idle/pipelining bookkeeping.
extension ProxyHandler {
    /// Sends the end of the response, logs, and keeps the connection open for the next request or closes it.
    func endExchange(_ ex: Exchange, trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        let keepAlive = ex.keepAliveClient
        finishBody(ex, context: context)
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

    /// Ready for the next request: queued pipelined parts go on, reads resume (or the connection closes when the client
    /// has finished sending).
    func becomeIdle() {
        clock.idleSince = .now()
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
    func drainQueue() {
        guard !draining, let context else { return }
        draining = true
        defer { draining = false }
        while !queued.isEmpty && !discarding && !(exchange?.requestEnded ?? false) {
            handle(queued.removeFirst(), context: context)
        }
        if discarding { queued.removeAll() }
    }

    // MARK: Local answers

    /// Answers from the edge itself (errors, 403/404/429). `close` ends the connection after the answer.
    /// A gRPC request gets a gRPC answer: 200 with
    /// `grpc-status`/`grpc-message` trailers (never an HTML or text page).
    func local(_ head: HTTPRequestHead, status: HTTPResponseStatus, body: String, close: Bool,
               extra: [(String, String)] = [], requestId: String? = nil, start: NIODeadline? = nil,
               route: CompiledRoute? = nil, linger: Bool = false) {
        guard let context else { return }
        let close = close || !clientKeepAlive(head)
        let rid = requestId ?? shared.makeRequestId()
        let grpc = GRPC.isGRPC(contentType: head.headers.first(name: "content-type"))
        var headers = HTTPHeaders()
        // RFC 9113 §8.2.2: no connection-specific fields on HTTP/2.
        let connection = isHTTP2 ? nil : close ? "close" : head.isHTTP10 ? "keep-alive" : nil
        HeaderRewriter.localFields(bodyBytes: grpc ? nil : body.utf8.count, requestId: rid, config: config, extra: extra,
                                   connection: connection, into: &headers)
        let response = HTTPResponseHead(version: head.responseVersion, status: grpc ? .ok : status, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        var trailers: HTTPHeaders?
        if grpc {
            // The page's text without its closing newline is the grpc-message.
            trailers = Self.grpcTrailers(GRPC.status(httpStatus: Int(status.code)),
                                         body.hasSuffix("\n") ? String(body.dropLast()) : body)
        } else if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        shared.localAnswered(method: head.method.rawValue, uri: head.uri, status: Int(status.code), client: info.clientText,
                             start: start ?? .now(), requestId: rid, note: grpc ? "grpc" : nil,
                             accessLog: config.settings.accessLog)
        requestsServed += 1
        endLocal(context: context, trailers: trailers, close: close, linger: linger)
    }

    /// The end of a local answer: keep the connection for the next request, close it, or close it lingering.
    private func endLocal(context: ChannelHandlerContext, trailers: HTTPHeaders?, close: Bool, linger: Bool) {
        guard close else {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            becomeIdle()
            return
        }
        closing = true
        discarding = true
        let done = context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated()
        if linger && !isHTTP2 {
            // Lingering close (as nginx does): stop sending, keep reading and dropping what the client still
            // sends for a moment, so the answer is not lost to a reset from unread request bytes.
            done.whenComplete { _ in
                context.close(mode: .output).assumeIsolated().whenFailure { _ in context.close(promise: nil) }
                context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) { context.close(promise: nil) }
            }
        } else {
            done.whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// `grpc-status` and `grpc-message` trailers.
    static func grpcTrailers(_ status: GRPC.Status, _ message: String) -> HTTPHeaders {
        var t = HTTPHeaders()
        t.add(name: "grpc-status", value: String(status.rawValue))
        if !message.isEmpty { t.add(name: "grpc-message", value: GRPC.encodeMessage(message)) }
        return t
    }

    /// How long a lingering close keeps reading after the answer.
    static let lingerTime = TimeAmount.seconds(2)

    /// 400/414/431 for what the HTTP parser refused; the connection always closes.
    func respondProtocolError(_ error: HTTPParserError, context: ChannelHandlerContext) {
        guard !discarding else { return }
        let status: HTTPResponseStatus
        switch error {
        case .headerOverflow: status = .requestHeaderFieldsTooLarge
        default: status = .badRequest
        }
        shared.stats.protocolErrors.add(1, ordering: .relaxed)
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
        local(head, status: status, body: "\(status.reasonPhrase.lowercased())\n", close: true, linger: true)
    }
}
