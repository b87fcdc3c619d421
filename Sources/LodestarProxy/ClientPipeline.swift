import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import NIOHPACK
import NIOHTTP2
import NIOSSL
import NIOTLS
import Synchronization

/// The handler chain of one client connection, composed in one place: [PROXY header] → [TLS → ALPN] or [h2c preface
/// sniffer] (both watched by a `PreambleGuard` until the protocol is known) → HTTP/1.1 codec or HTTP/2 connection handler → per request stream: `ProxyHandler` (which compresses). Whatever the
/// client speaks, every request enters the same `ProxyHandler` as `HTTPServerRequestPart`s.
struct ClientPipeline: Sendable {
    let shared: EdgeShared
    let loops: [ObjectIdentifier: LoopStateBox]
    let listener: EdgeListener
    /// The listener's TLS context (its certificates as read when this set-up was made).
    let tls: NIOSSLContext?
    let http1Limits: NIOHTTPDecoderLimitConfiguration
    let compression: CompressionSettings
    let http2: HTTP2Limits
    /// swift-nio-http2's settings for this edge's limits (built once, not per connection).
    let h2Connection: NIOHTTP2Handler.ConnectionConfiguration
    let h2Stream: NIOHTTP2Handler.StreamConfiguration
    /// HTTP/1.1 connections start in the pass-through lane (`FastLane`).
    let passThrough: Bool
    /// How long a connection may take to tell its protocol (TLS handshake and ALPN, the h2c preface): the head timeout.
    let preambleTimeout: TimeAmount

    init(shared: EdgeShared, loops: [ObjectIdentifier: LoopStateBox], listener: EdgeListener, tls: NIOSSLContext?,
         settings: ProxySettings) {
        self.shared = shared
        self.loops = loops
        self.listener = listener
        self.tls = tls
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = max(settings.limits.maxRequestLineBytes, settings.limits.maxHeaderBytes)
        decoderLimits.maxHeaderListSize = settings.limits.maxHeaderBytes + settings.limits.maxRequestLineBytes
        decoderLimits.maxHeaderFieldCount = settings.limits.maxHeaderCount
        self.http1Limits = decoderLimits
        self.compression = settings.compression
        self.http2 = settings.http2
        self.h2Connection = Self.connectionConfiguration(settings.http2)
        self.h2Stream = Self.streamConfiguration(settings.http2)
        self.passThrough = settings.passThrough
        self.preambleTimeout = .milliseconds(Int64(settings.limits.headerTimeoutMs))
    }

    /// Sets up a newly accepted connection (on its event loop).
    func initialize(_ channel: any Channel) throws {
        guard let state = loops[ObjectIdentifier(channel.eventLoop)] else {
            channel.close(promise: nil)
            return
        }
        let info = ConnectionInfo(remote: channel.remoteAddress, scheme: tls == nil ? "http" : "https")
        let ops = channel.pipeline.syncOperations
        if listener.proxyProtocol { try ops.addHandler(ProxyProtocolHandler(info: info)) }
        if let tls {
            try ops.addHandler(NIOSSLServerHandler(context: tls))
            // Whatever the protocol: a loop tick's writes reach the TLS handler as one record, not one per write.
            try ops.addHandler(FlushCoalescer(joinsWrites: true))
            try ops.addHandler(TLSHandshakeCounter(metrics: shared.metrics))
            if listener.protocols.contains(.h2) {
                let pipeline = self
                try ops.addHandler(PreambleGuard(stats: shared.stats, timeout: preambleTimeout), name: PreambleGuard.name,
                                   position: .first)
                try ops.addHandler(ApplicationProtocolNegotiationHandler { result, channel in
                    channel.eventLoop.makeCompletedFuture {
                        PreambleGuard.lift(channel)
                        if case .negotiated("h2") = result {
                            try pipeline.configureHTTP2(channel, info: info, state: state)
                        } else {
                            try pipeline.configureHTTP1(channel, info: info, state: state)
                        }
                    }
                })
                return
            }
        } else if listener.protocols.contains(.h2c) {
            let pipeline = self
            try ops.addHandler(PreambleGuard(stats: shared.stats, timeout: preambleTimeout), name: PreambleGuard.name,
                               position: .first)
            try ops.addHandler(PrefaceSniffer(allowHTTP1: listener.protocols.contains(.http1)) { channel, isHTTP2 in
                PreambleGuard.lift(channel)
                if isHTTP2 {
                    try pipeline.configureHTTP2(channel, info: info, state: state)
                } else {
                    try pipeline.configureHTTP1(channel, info: info, state: state)
                }
            })
            return
        }
        try configureHTTP1(channel, info: info, state: state)
    }

    /// HTTP/1.1: the pass-through lane (`FastLane`), which sets up the full lane behind itself when a request needs
    /// it; without it, the full lane at once.
    func configureHTTP1(_ channel: any Channel, info: ConnectionInfo, state: LoopStateBox) throws {
        guard passThrough else { return try configureFullHTTP1(channel, info: info, state: state, carry: nil) }
        let pipeline = self
        try channel.pipeline.syncOperations.addHandler(FastLane(
            shared: shared, loop: state, info: info, compressing: compression.enabled) { channel, carry in
                try pipeline.configureFullHTTP1(channel, info: info, state: state, carry: carry)
            })
    }

    /// The full HTTP/1.1 lane: NIO's codec (pipelining is handled by `ProxyHandler`, which queues parts of later
    /// requests), the request handler; `carry` is what the pass-through lane hands over when it steps aside.
    func configureFullHTTP1(_ channel: any Channel, info: ConnectionInfo, state: LoopStateBox, carry: HandOver?) throws {
        let ops = channel.pipeline.syncOperations
        let tracker = ActivityTracker()
        if let carry { tracker.firstByteAt = carry.firstByteAt }
        try ops.addHandler(tracker)
        // Headers were validated by the parsers they came through, so NIO's per-request helpers stay out. Bytes a
        // client sends after an upgrade request before the 101 are dropped (RFC 6455 §4.1: it must wait for it).
        try ops.configureHTTPServerPipeline(position: .last, withPipeliningAssistance: false, withServerUpgrade: nil,
                                            withErrorHandling: false, withOutboundHeaderValidation: false,
                                            withEncoderConfiguration: .init(), withDecoderLimitConfiguration: http1Limits)
        let handler = ProxyHandler(shared: shared, loop: state, info: info, mode: .http1(tracker), compressing: compression.enabled)
        if let carry {
            handler.presetVerdict = carry.verdict
            handler.requestsServed = carry.requestsServed
            handler.finishing = carry.finishing
        }
        try ops.addHandler(handler)
    }

    /// HTTP/2: swift-nio-http2's connection handler (settings, flow control, HPACK, flood limits), the connection's
    /// pass-through lane (`ConnectionLane`: bodiless requests a lane takes, answered on the connection; the checks of
    /// received header sections; the idle timeout and the graceful GOAWAY on quiesce, from every stream's events),
    /// and the stream multiplexer (one child channel per other stream, speaking `HTTPServerRequestPart`s to a
    /// `ProxyHandler` of its own).
    func configureHTTP2(_ channel: any Channel, info: ConnectionInfo, state: LoopStateBox) throws {
        let limits = http2
        let ops = channel.pipeline.syncOperations
        shared.metrics.recordHTTP2Connection()
        // Responses of many streams finish in one loop tick (each from its own upstream connection): one write (over
        // TLS the connection's own coalescer, after the TLS handler, does this and joins them into one record).
        if tls == nil { try ops.addHandler(FlushCoalescer(), position: .first) }
        // One timer for the connection's streams, ended with the connection.
        let ticker = StreamTicker(loop: channel.eventLoop)
        let stopTicker = NIOLoopBound(ticker, eventLoop: channel.eventLoop)
        channel.closeFuture.whenComplete { _ in stopTicker.value.stop() }
        try ops.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: h2Connection,
                                           streamConfiguration: h2Stream))
        // With `passThrough` off it takes no stream.
        let lane = ConnectionLane(shared: shared, loop: state, info: info, compressing: compression.enabled,
                                  ticker: ticker, connectionWindow: limits.connectionWindowBytes, takes: passThrough,
                                  malformedLimit: limits.maxResetsPerWindow,
                                  floodWindow: .milliseconds(Int64(limits.floodWindowMs)),
                                  idleTimeout: .milliseconds(Int64(limits.idleTimeoutMs)),
                                  grace: .milliseconds(Int64(limits.gracefulShutdownMs)))
        try ops.addHandler(lane)
        try ops.addHandler(streamMultiplexer(channel, info: info, state: state, ticker: ticker, lane: lane))
        // Last: connection errors and the client's half-close.
        try ops.addHandler(HTTP2ConnectionGuard(shared: shared, ticker: ticker))
    }

    /// The multiplexer of the streams the lane leaves: each child is the full path, given the lane's verdict.
    private func streamMultiplexer(_ channel: any Channel, info: ConnectionInfo, state: LoopStateBox,
                                   ticker: StreamTicker, lane: ConnectionLane) -> HTTP2StreamMultiplexer {
        let pipeline = self
        let bound = NIOLoopBound((ticker: ticker, lane: lane, info: info), eventLoop: channel.eventLoop)
        // Stateless, so one serves every stream of the connection.
        let rewriter = NIOLoopBound(StreamFrameRewriter(requestIdHeader: state.state.config.settings.requestIdHeader),
                                    eventLoop: channel.eventLoop)
        return HTTP2StreamMultiplexer(
            mode: .server, channel: channel, targetWindowSize: h2Stream.targetWindowSize,
            outboundBufferSizeHighWatermark: h2Stream.outboundBufferSizeHighWatermark,
            outboundBufferSizeLowWatermark: h2Stream.outboundBufferSizeLowWatermark
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                let (ticker, lane, info) = bound.value
                // The child of a HEADERS frame is made while the lane hands that frame on.
                let verdict = lane.takeVerdict()
                try pipeline.configureFullStream(stream, info: info, state: state, ticker: ticker,
                                                 rewriter: rewriter.value, verdict: verdict)
            }
        }
    }

    /// The full path of an HTTP/2 stream: the frame rewriter, swift-nio-http2's HTTP/1 codec, a `ProxyHandler`
    /// (with the pass-through lane's admission verdict when it stepped aside).
    func configureFullStream(_ stream: any Channel, info: ConnectionInfo, state: LoopStateBox, ticker: StreamTicker,
                             rewriter: StreamFrameRewriter, verdict: Admission.Verdict?) throws {
        let sops = stream.pipeline.syncOperations
        try sops.addHandler(rewriter, name: "h2-frames")
        try sops.addHandler(HTTP2FramePayloadToHTTP1ServerCodec(), name: "h2-to-http1")
        let handler = ProxyHandler(shared: shared, loop: state, info: info, mode: .http2(ticker),
                                   compressing: compression.enabled)
        handler.presetVerdict = verdict
        try sops.addHandler(handler, name: "proxy")
    }

    /// RFC 9113 §6.5.2 settings and the flood bounds from `proxy.http2`.
    static func connectionConfiguration(_ limits: HTTP2Limits) -> NIOHTTP2Handler.ConnectionConfiguration {
        var c = NIOHTTP2Handler.ConnectionConfiguration()
        c.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: limits.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderListBytes),
            HTTP2Setting(parameter: .initialWindowSize, value: limits.initialWindowBytes),
            HTTP2Setting(parameter: .maxFrameSize, value: limits.maxFrameBytes),
            // RFC 8441: WebSocket over HTTP/2 by extended CONNECT.
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        c.targetWindowSize = limits.connectionWindowBytes
        c.maximumSequentialContinuationFrames = limits.maxContinuationFrames
        // Received sections are checked by the connection's lane (`HTTP2FieldCheck`), sent ones are built here from
        // parsed fields: swift-nio-http2's two passes over each block cost ~1/6 of a request.
        c.headerBlockValidation = .disabled
        var control = NIOHTTP2Handler.ControlFrameRateLimitConfiguration()
        control.maximumCount = limits.maxControlFramesPerWindow
        control.windowLength = .milliseconds(Int64(limits.floodWindowMs))
        c.controlFrameRateLimit = control
        return c
    }

    static func streamConfiguration(_ limits: HTTP2Limits) -> NIOHTTP2Handler.StreamConfiguration {
        var s = NIOHTTP2Handler.StreamConfiguration()
        s.targetWindowSize = limits.initialWindowBytes
        var resets = NIOHTTP2Handler.StreamResetFrameRateLimitConfiguration()
        resets.maximumCount = limits.maxResetsPerWindow
        resets.windowLength = .milliseconds(Int64(limits.floodWindowMs))
        s.streamResetFrameRateLimit = resets
        var errors = NIOHTTP2Handler.StreamErrorRateLimitConfiguration()
        errors.maximumCount = limits.maxResetsPerWindow
        errors.windowLength = .milliseconds(Int64(limits.floodWindowMs))
        s.streamErrorRateLimit = errors
        return s
    }
}

/// The frames of one HTTP/2 stream, rewritten where swift-nio-http2's HTTP/1 codec and HPACK need help; one handler
/// (one context per stream, not two), keeping no state but the field name, so one serves every stream of a connection.
///
/// In: RFC 8441 — an extended CONNECT (`:method CONNECT`, `:protocol websocket`) becomes the request an HTTP/1.1
/// origin understands — GET with `Upgrade`/`Connection: upgrade` and a fresh `Sec-WebSocket-Key` — before the HTTP/1
/// codec (which has no place for `:protocol`). The route's `upgrade` list still decides, and `ProxyHandler` answers the
/// client's stream with 200 when the origin switches protocols.
///
/// Out: the response field that differs on every response (the request id) is sent without HPACK indexing (RFC 7541
/// §6.2.2): indexed, each value would enter the connection's dynamic table, push out the fields that do repeat
/// (content type, `Via`, the cache status) and leave every encode searching a table of request ids.
final class StreamFrameRewriter: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload
    /// Marks the rewritten head (a client cannot forge it: pseudo-header names are checked by the HTTP/2 layer, and
    /// the adapter drops a client's own copy of this field).
    static let marker = "x-lodestar-extended-connect"
    /// The request id's name as HTTP/2 carries it (lower case).
    let requestIdHeader: String

    init(requestIdHeader: String) { self.requestIdHeader = requestIdHeader.lowercased() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .headers(var h) = unwrapInboundIn(data), h.headers.first(name: ":method") == "CONNECT",
              let proto = h.headers.first(name: ":protocol") else {
            return context.fireChannelRead(data)
        }
        var out = HPACKHeaders()
        for (name, value, indexing) in h.headers where name != ":protocol" && name != Self.marker {
            out.add(name: name, value: name == ":method" ? "GET" : value, indexing: indexing)
        }
        out.add(name: "connection", value: "upgrade")
        out.add(name: "upgrade", value: proto)
        if proto.lowercased() == "websocket" && !out.contains(name: "sec-websocket-key") {
            var rng = SystemRandomNumberGenerator()
            let key = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
            out.add(name: "sec-websocket-key", value: Self.base64(key))
        }
        out.add(name: Self.marker, value: "1")
        h.headers = out
        context.fireChannelRead(wrapInboundOut(.headers(h)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .headers(var h) = unwrapOutboundIn(data), let value = h.headers.first(name: requestIdHeader) else {
            return context.write(data, promise: promise)
        }
        h.headers.replaceOrAdd(name: requestIdHeader, value: value, indexing: .nonIndexable)
        context.write(wrapOutboundOut(.headers(h)), promise: promise)
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out = [UInt8]()
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(table[b0 >> 2])
            out.append(table[((b0 & 3) << 4) | (b1 >> 4)])
            out.append(i + 1 < bytes.count ? table[((b1 & 15) << 2) | (b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[b2 & 63] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
