import LodestarTopology
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization

/// What swift-nio-http2's connection manager leaves undone, for the sample origin's HTTP/2 connections
/// (`SimpleHTTPServer`; the edge keeps its connections' life in `ConnectionLane`):
///
/// - It starts its idle timer on `channelActive`, which has gone by when HTTP/2 is set up after the preface: this
///   tells it once, as it is added. (Without it, a connection that never opened a stream was never closed.)
/// - After its first GOAWAY it waits for the client's PING acknowledgement before its grace period starts: a client
///   that acknowledges nothing kept its connection. This closes the connection `grace` after the first GOAWAY that
///   goes out, whatever the client does.
final class HTTP2ConnectionBounds: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    private let grace: TimeAmount
    private var deadline: Scheduled<Void>?

    init(grace: TimeAmount) {
        self.grace = grace
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }  // else the activation itself passes by
        // Once the handlers after this one are in place (they are added in the same turn of the loop).
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.assumeIsolated().execute {
            guard bound.value.channel.isActive else { return }
            bound.value.fireChannelActive()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if deadline == nil, case .goAway = unwrapOutboundIn(data).payload {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: grace) { bound.value.close(promise: nil) }
        }
        context.write(data, promise: promise)
    }
}

/// Last handler of an HTTP/2 connection: swift-nio-http2 answers a connection error with GOAWAY and reports it here;
/// this closes the connection (stream errors, reported the same way, leave it open). Floods — rapid reset,
/// CONTINUATION, SETTINGS/PING, glitches — end in GOAWAY ENHANCE_YOUR_CALM and a closed socket.
final class HTTP2ConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    private let shared: EdgeShared
    /// The connection's streams in progress (each stream's handler is a member while it lives).
    private let ticker: StreamTicker

    init(shared: EdgeShared, ticker: StreamTicker) {
        self.shared = shared
        self.ticker = ticker
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    /// The client shut its sending side (listeners allow half-closure for HTTP/1.1's sake): it can send no more
    /// frames, so the connection closes once its open streams have sent their answers (at once when none is open).
    /// Left alone, such a connection sat in CLOSE-WAIT until the idle timeout.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed = event as? ChannelEvent else { return context.fireUserInboundEventTriggered(event) }
        if ticker.count == 0 { return context.close(promise: nil) }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        ticker.whenEmpty = { bound.value.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard Self.endsConnection(error) else { return }
        shared.stats.protocolErrors.add(1, ordering: .relaxed)
        shared.logger.notice("HTTP/2 connection closed", metadata: ["error": "\(type(of: error))"])
        Self.closeAfterGoaway(context)
    }

    /// Ends a connection whose GOAWAY has just been written, so that the client reads it: the sending side is shut
    /// first (what waits goes out, then FIN) and the connection closes when the client closes its side, or `linger`
    /// later. Closed at once while the client's frames still wait unread, the socket answers with RST, and the
    /// client's TCP drops what it had received and not read yet: the GOAWAY among it (nginx's lingering close).
    static func closeAfterGoaway(_ context: ChannelHandlerContext, linger: TimeAmount = .seconds(1)) {
        context.flush()
        context.close(mode: .output, promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: linger) { channel.close(promise: nil) }
    }

    /// Errors swift-nio-http2 raises only as connection errors (RFC 9113 §5.4.1).
    static func endsConnection(_ error: any Error) -> Bool {
        if error is any NIOHPACKError { return true }
        switch error {
        case is NIOHTTP2Errors.ExcessiveRSTFrames, is NIOHTTP2Errors.ExcessiveControlFrames,
             is NIOHTTP2Errors.ExcessiveContinuationFrames, is NIOHTTP2Errors.ExcessiveEmptyDataFrames,
             is NIOHTTP2Errors.ExcessiveStreamErrors, is NIOHTTP2Errors.ExcessiveNumberOfGlitches,
             is NIOHTTP2Errors.ExcessivelyLargeHeaderBlock, is NIOHTTP2Errors.ExcessiveOutboundFrameBuffering,
             is NIOHTTP2Errors.BadClientMagic, is NIOHTTP2Errors.MissingPreface, is NIOHTTP2Errors.UnableToParseFrame,
             is NIOHTTP2Errors.FlowControlViolation, is NIOHTTP2Errors.ReceivedBadSettings, is NIOHTTP2Errors.InvalidSetting,
             is NIOHTTP2Errors.MaxStreamsViolation, is NIOHTTP2Errors.InvalidFlowControlWindowSize:
            return true
        default:
            return false
        }
    }
}

/// Turns every flush of a loop tick into one: on a multiplexed connection each stream's response ends with a flush,
/// and without this each would be its own write system call. Writes go on at once; the flush follows at the end of
/// the tick.
///
/// On a TLS connection it sits right after the TLS handler (every protocol) and also joins the tick's small writes
/// (`joinsWrites`) into one buffer, so that the TLS handler encrypts them — over HTTP/2 the HEADERS and DATA of every
/// stream answered in the tick, over HTTP/1.1 an answer's head and body — as one record (up to `recordBytes`)
/// instead of a record per write. Per-record work (sealing, the 22-byte header and tag) was paid several times per
/// answer; nginx fills its 16 KiB TLS buffer the same way. Order is kept: a large write first sends what is joined.
final class FlushCoalescer: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData
    /// At most this much is joined (TLS's largest record is 16 KiB of plaintext).
    static let recordBytes = 16_384 - 512
    private let joinsWrites: Bool
    private var joined: ByteBuffer?
    private var promises: [EventLoopPromise<Void>] = []
    private var pending = false

    init(joinsWrites: Bool = false) { self.joinsWrites = joinsWrites }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard joinsWrites, case .byteBuffer(var buffer) = unwrapOutboundIn(data),
              (joined?.readableBytes ?? 0) + buffer.readableBytes <= Self.recordBytes else {
            release(context: context)
            return context.write(data, promise: promise)
        }
        if joined == nil {
            joined = buffer
        } else {
            joined?.writeBuffer(&buffer)
        }
        if let promise { promises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        guard !pending else { return }
        pending = true
        context.eventLoop.assumeIsolated().execute {
            self.pending = false
            self.release(context: context)
            context.flush()
        }
    }

    /// A close first sends what is waiting (a GOAWAY, the last frames).
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if pending || joined != nil {
            pending = false
            release(context: context)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    /// Writes the joined bytes on, completing every joined write's promise with that write.
    private func release(context: ChannelHandlerContext) {
        guard let bytes = joined else { return }
        joined = nil
        var promise: EventLoopPromise<Void>?
        switch promises.count {
        case 0: break
        case 1: promise = promises[0]
        default:
            let all = promises
            let combined = context.eventLoop.makePromise(of: Void.self)
            combined.futureResult.assumeIsolated().whenComplete { result in
                for p in all { p.completeWith(result) }
            }
            promise = combined
        }
        promises.removeAll(keepingCapacity: true)
        context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
    }
}
