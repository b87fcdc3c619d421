import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization

/// The pass-through lane of an HTTP/2 connection, between swift-nio-http2's connection handler and its stream
/// multiplexer. A request without a body (HEADERS with END_STREAM; GET, HEAD, DELETE or TRACE) that the HTTP/1.1
/// lane would take is answered here, on the connection, by a `LaneStream` — no child channel, no stream pipeline:
/// the stream's frames stop here and its answer is written as frames of its stream id. Every other stream goes on to
/// the multiplexer, whose child channel sets up the full path (with admission's verdict when this lane admitted the
/// request and stepped aside: `takeVerdict`).
///
/// Every header section a client sends is checked here (`HTTP2FieldCheck`), and the connection's idle timeout and
/// graceful GOAWAY are kept here from every stream's events (`HTTP2Lifecycle`).
///
/// A child channel per stream cost ~5 µs of a request's ~35 (`Benchmarks/h2floor.sh`: 13.3 µs against 8.3 for an
/// HTTP/2 answer without one); flow control, HPACK, SETTINGS and the flood limits stay swift-nio-http2's.
final class ConnectionLane: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let shared: EdgeShared
    let loop: LoopStateBox
    let info: ConnectionInfo
    let compressing: Bool
    let ticker: StreamTicker
    /// Streams are answered here (`proxy.passThrough`); else every one goes on to the multiplexer.
    let takes: Bool
    /// The connection's inbound flow-control window kept open (`http2.connectionWindowBytes`): the multiplexer behind
    /// would keep it at the streams' target.
    let connectionWindow: Int
    private(set) var context: ChannelHandlerContext?
    /// The streams this lane answers, until swift-nio-http2 reports them closed (a few at a time, at most the
    /// connection's concurrent streams: a list searched in place costs less than hashing each id).
    private var streams: [LaneStream] = []
    /// The highest stream id whose request HEADERS came by (a later HEADERS on a known stream is a trailer section).
    private var lastStream = HTTP2StreamID(0)
    /// Admission's verdict for the stream being handed to the multiplexer (its child is set up during the hand-over).
    private var handingOver: Admission.Verdict?
    /// The connection was active when this handler was added (HTTP/2 is set up after the preface or ALPN).
    private var addedActive = false
    /// Malformed header sections (each stream reset) within `http2.floodWindowMs`: past `http2.maxResetsPerWindow`
    /// the connection goes (GOAWAY ENHANCE_YOUR_CALM), as swift-nio-http2 ends one with too many stream errors.
    private var malformed: FloodCount
    /// The lane sent GOAWAY and is closing the connection: what still comes in is read and dropped.
    private var closing = false
    /// Idle timeout and graceful GOAWAY, from every stream's events (`HTTP2Lifecycle`), and their timers.
    private var life = HTTP2Lifecycle()
    private var timers: LifeTimers
    private static let closedEvent = ObjectIdentifier(StreamClosedEvent.self)
    private static let windowEvent = ObjectIdentifier(NIOHTTP2WindowUpdatedEvent.self)
    private static let createdEvent = ObjectIdentifier(NIOHTTP2StreamCreatedEvent.self)
    private static let quiesceEvent = ObjectIdentifier(ChannelShouldQuiesceEvent.self)

    init(shared: EdgeShared, loop: LoopStateBox, info: ConnectionInfo, compressing: Bool, ticker: StreamTicker,
         connectionWindow: Int = 65535, takes: Bool = true, malformedLimit: Int = 200,
         floodWindow: TimeAmount = .seconds(10), idleTimeout: TimeAmount? = nil, grace: TimeAmount = .seconds(10)) {
        self.takes = takes
        self.timers = LifeTimers(idleTimeout: idleTimeout, grace: grace)
        self.malformed = FloodCount(limit: malformedLimit, window: floodWindow)
        self.connectionWindow = min(max(connectionWindow, 65535), Int(Int32.max))
        self.shared = shared
        self.loop = loop
        self.info = info
        self.compressing = compressing
        self.ticker = ticker
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        addedActive = context.channel.isActive
        if addedActive { apply(life.started()) }
    }

    /// An activation that comes after this handler was added to an active connection stops here: the multiplexer
    /// behind may already have activated a stream's child, and would activate it twice (a `fatalError`).
    func channelActive(context: ChannelHandlerContext) {
        guard !addedActive else { return }
        apply(life.started())
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timers.cancel()
        closeAll()
        self.context = nil
    }

    /// Admission's verdict for the stream whose child channel is being set up, when this lane admitted its request
    /// and handed it on (once; nil for a stream the lane did not admit).
    func takeVerdict() -> Admission.Verdict? {
        defer { handingOver = nil }
        return handingOver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // Nothing but its request's HEADERS is expected on a stream this lane took (the request had END_STREAM);
        // a reset comes as `StreamClosedEvent`.
        if closing || stream(frame.streamID) != nil { return }
        guard case .headers(let h) = frame.payload else { return context.fireChannelRead(data) }
        // Every header section a client sends is checked here, for the lane's streams and the multiplexer's alike
        // (swift-nio-http2's own checks are off: `ClientPipeline.connectionConfiguration`).
        let opens = frame.streamID > lastStream
        if opens { lastStream = frame.streamID }
        let (problem, request) = Self.read(h.headers, opens ? .request : .trailers, taking: takes && opens && h.endStream)
        if let problem { return refuse(frame.streamID, problem, context: context) }
        guard let request else { return context.fireChannelRead(data) }
        let stream = LaneStream(lane: self, id: frame.streamID)
        let verdict = stream.start(request, http2: true, keepAlive: true, compressing: compressing) {
            streams.append(stream)
            ticker.join(stream, interval: clientTickInterval(loop.state.config.settings.limits))
        }
        guard let verdict else { return }
        handingOver = verdict
        context.fireChannelRead(data)
        handingOver = nil
    }

    /// RFC 9113 §8.2–8.3 for a section as received (`HTTP2FieldCheck`): the problem when it is malformed; else, when
    /// `taking` and the lane takes the request, the request, read in the same walk (`LaneStream.RequestReader`).
    static func read(_ headers: HPACKHeaders, _ section: HTTP2FieldCheck.Section,
                     taking: Bool) -> (problem: HTTP2FieldCheck.Problem?, request: HTTP1Wire.Request?) {
        var check = HTTP2FieldCheck(section)
        var reader = taking ? LaneStream.RequestReader(capacity: headers.count) : nil
        for (name, value, _) in headers {
            if let problem = check.check(name: name, value: value) { return (problem, nil) }
            reader?.add(name: name, value: value)
        }
        if let problem = check.finish() { return (problem, nil) }
        return (nil, reader?.request())
    }

    /// A malformed section: its stream is reset with PROTOCOL_ERROR (RFC 9113 §8.1.1), and a connection that keeps
    /// sending them is closed.
    private func refuse(_ id: HTTP2StreamID, _ problem: HTTP2FieldCheck.Problem, context: ChannelHandlerContext) {
        shared.logger.debug("HTTP/2 stream reset", metadata: ["stream": "\(id)", "reason": "\(problem)"])
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.protocolError))),
                              promise: nil)
        guard malformed.record(now: context.eventLoop.now) else { return }
        shared.stats.protocolErrors.add(1, ordering: .relaxed)
        shared.logger.notice("HTTP/2 connection closed", metadata: ["error": "malformed header sections"])
        let away = HTTP2Frame(streamID: .rootStream,
                              payload: .goAway(lastStreamID: lastStream, errorCode: .enhanceYourCalm, opaqueData: nil))
        context.write(wrapOutboundOut(away), promise: nil)
        closing = true
        HTTP2ConnectionGuard.closeAfterGoaway(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Every stream's opening and close is counted here (idle timeout, graceful GOAWAY); the events of the lane's
        // own streams end here, the multiplexer behind would only look each up and find nothing.
        // (The event's type is compared first: a failing `as?` on `Any` is a slow dynamic cast, and most events fail.)
        switch ObjectIdentifier(type(of: event)) {
        case Self.closedEvent:
            guard let closed = event as? StreamClosedEvent else { break }
            defer { apply(life.streamClosed(Int32(closed.streamID))) }
            if let i = streams.firstIndex(where: { $0.id == closed.streamID }) {
                return streams.removeUnordered(at: i).closed()
            }
        case Self.windowEvent:
            guard let window = event as? NIOHTTP2WindowUpdatedEvent else { break }
            if window.streamID == .rootStream {
                if let size = window.inboundWindowSize { connectionWindowChanged(size, context: context) }
                return
            }
            if stream(window.streamID) != nil { return }
        case Self.createdEvent:
            guard let created = event as? NIOHTTP2StreamCreatedEvent else { break }
            apply(life.streamOpened(Int32(created.streamID)))
            if stream(created.streamID) != nil { return }
        case Self.quiesceEvent:
            // Passed on as well: the multiplexer's streams hear of it.
            apply(life.quiesce())
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Carries out what the connection's lifecycle asks: the idle timer, GOAWAY, the close.
    private func apply(_ action: HTTP2Lifecycle.Action) {
        guard let context else { return }
        switch action {
        case .none:
            return
        case .armIdle:
            guard let idleTimeout = timers.idleTimeout else { return }
            timers.idleSince = context.eventLoop.now
            if timers.idle == nil { checkIdle(in: idleTimeout, context: context) }
        case .disarmIdle:
            timers.idleSince = nil
        case .goAway(let last, let close):
            timers.cancel()
            let away = HTTP2Frame(streamID: .rootStream,
                                  payload: .goAway(lastStreamID: HTTP2StreamID(last), errorCode: .noError, opaqueData: nil))
            context.writeAndFlush(wrapOutboundOut(away), promise: nil)
            if close { return HTTP2ConnectionGuard.closeAfterGoaway(context) }
            timers.grace = context.eventLoop.assumeIsolated().scheduleTask(in: timers.gracePeriod) {
                HTTP2ConnectionGuard.closeAfterGoaway(context)
            }
        case .close:
            timers.cancel()  // the grace period's timer too: the last stream ended first
            HTTP2ConnectionGuard.closeAfterGoaway(context)
        }
    }

    /// In `delay`: still no stream open since `idleSince` for the idle timeout, the lifecycle's idle step; some
    /// time left, another look then; a stream open, nothing (the next idle spell starts a timer again).
    private func checkIdle(in delay: TimeAmount, context: ChannelHandlerContext) {
        timers.idle = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            timers.idle = nil
            guard let since = timers.idleSince, let idleTimeout = timers.idleTimeout else { return }
            let left = since + idleTimeout - context.eventLoop.now
            if left > .zero { return checkIdle(in: left, context: context) }
            apply(life.idleElapsed())
        }
    }

    /// The connection's inbound window is now `size`: once it is down to half the target (or below zero, after a
    /// SETTINGS change), a WINDOW_UPDATE brings it back to the target (swift-nio-http2's rule for its windows).
    private func connectionWindowChanged(_ size: Int, context: ChannelHandlerContext) {
        let increment: Int
        if size >= connectionWindow {
            return
        } else if size >= 0 {
            increment = connectionWindow - size
            guard increment >= size else { return }
        } else {
            increment = min(connectionWindow - size, Int(Int32.max))
        }
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream,
                                                         payload: .windowUpdate(windowSizeIncrement: increment))),
                              promise: nil)
    }

    private func stream(_ id: HTTP2StreamID) -> LaneStream? { streams.first { $0.id == id } }

    func channelInactive(context: ChannelHandlerContext) {
        timers.cancel()
        closeAll()
        context.fireChannelInactive()
    }

    /// The connection went: every stream's exchange ends as the client's departure.
    private func closeAll() {
        let all = streams
        streams.removeAll()
        for stream in all { stream.closed() }
    }

    // MARK: Frames out, for the lane's streams

    func write(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(frame), promise: promise)
    }

    func flush() { context?.flush() }

    func makePromise() -> EventLoopPromise<Void>? { context?.eventLoop.makePromise() }

    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    var isActive: Bool { context?.channel.isActive ?? false }
}

/// A connection's idle and grace timers (`http2.idleTimeoutMs`, `http2.gracefulShutdownMs`).
private struct LifeTimers {
    /// nil: no idle close.
    let idleTimeout: TimeAmount?
    /// After a graceful GOAWAY its streams have this long; then the connection closes, whatever they and the client do.
    let gracePeriod: TimeAmount
    /// Since when no stream has been open (nil while one is). The idle timer is not moved at each change (a busy
    /// connection's streams often all end in one tick): when it fires it looks, and waits again if need be.
    var idleSince: NIODeadline?
    var idle: Scheduled<Void>?
    var grace: Scheduled<Void>?

    init(idleTimeout: TimeAmount?, grace: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.gracePeriod = grace
    }

    mutating func cancel() {
        idleSince = nil
        idle?.cancel()
        idle = nil
        grace?.cancel()
        grace = nil
    }
}

/// Events counted within a window that restarts when it has passed: true once more than `limit` fell in one.
private struct FloodCount {
    let limit: Int
    let window: TimeAmount
    private var count = 0
    private var since = NIODeadline.uptimeNanoseconds(0)

    init(limit: Int, window: TimeAmount) {
        self.limit = limit
        self.window = window
    }

    mutating func record(now: NIODeadline) -> Bool {
        if now - since > window {
            since = now
            count = 0
        }
        count += 1
        return count > limit
    }
}
