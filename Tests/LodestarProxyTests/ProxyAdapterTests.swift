import Foundation
import LodestarTopology
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTP2
import Synchronization
import XCTest

@testable import LodestarProxy

/// The NIO adapters of the edge driven through `EmbeddedChannel` (as swift-nio tests its own handlers): bytes in,
/// bytes out, no sockets. The phases behind them have their own unit tests in LodestarEdgeTests.
final class ProxyAdapterTests: XCTestCase {
    /// A client connection's HTTP/1.1 pipeline as `ClientPipeline.configureHTTP1` builds it, on an embedded loop.
    private func http1Channel() throws -> EmbeddedChannel {
        let t = try Topology.decode(Data(ProxyRulesTests.topologyJSON.utf8), file: "t.json")
        let config = try EdgeConfig(topology: t, edgeId: "e1")
        let shared = EdgeShared(config: config, logger: Logger(label: "test"))
        let channel = EmbeddedChannel()
        let box = LoopStateBox(LoopState(config: config, eventLoop: channel.eventLoop, cache: nil))
        let pipeline = ClientPipeline(shared: shared, loops: [ObjectIdentifier(channel.eventLoop): box],
                                      listener: EdgeListener(address: ListenAddress("127.0.0.1:8080")!), tls: nil, settings: config.settings)
        let info = ConnectionInfo(remote: try SocketAddress(ipAddress: "192.0.2.7", port: 40000), scheme: "http")
        try pipeline.configureHTTP1(channel, info: info, state: box)
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return channel
    }

    /// Everything the handler wrote, as text.
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var out = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        return out
    }

    func test_http1RequestWithoutHostIs400AndCloses() throws {
        let channel = try http1Channel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        channel.embeddedEventLoop.run()
        let out = try written(channel)
        XCTAssertTrue(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), out)
        XCTAssertTrue(out.contains("exactly one Host header is required"), out)
        XCTAssertTrue(out.lowercased().contains("connection: close"), out)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive, "the connection closes after the answer")
    }

    func test_http1UnroutedHostIs404AndKeepsTheConnection() throws {
        let channel = try http1Channel()
        try channel.writeInbound(ByteBuffer(string: "GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n"))
        let out = try written(channel)
        XCTAssertTrue(out.hasPrefix("HTTP/1.1 404 Not Found\r\n"), out)
        XCTAssertTrue(out.contains("x-request-id:") || out.contains("X-Request-ID:"), out)
        XCTAssertTrue(out.contains("Via: 1.1 e1"), out)
        XCTAssertTrue(channel.isActive, "a bodiless request's 404 keeps the connection")
        // The next request on the same connection is read and answered too (keep-alive).
        try channel.writeInbound(ByteBuffer(string: "GET /y HTTP/1.1\r\nHost: other.test\r\n\r\n"))
        XCTAssertTrue(try written(channel).hasPrefix("HTTP/1.1 404"))
        _ = try? channel.finish()
    }

    func test_http1SmugglingFramingIsRefused() throws {
        let channel = try http1Channel()
        try channel.writeInbound(ByteBuffer(string:
            "POST / HTTP/1.1\r\nHost: www.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
        let out = try written(channel)
        XCTAssertTrue(out.hasPrefix("HTTP/1.1 400"), out)
        XCTAssertTrue(out.lowercased().contains("connection: close"), out)
    }

    /// A gRPC request the edge answers itself gets a gRPC answer: 200, application/grpc, grpc-status in trailers.
    func test_grpcRequestGetsAGRPCStatusNotAPage() throws {
        let channel = try http1Channel()
        try channel.writeInbound(ByteBuffer(string:
            "POST /pkg.Svc/Call HTTP/1.1\r\nHost: unknown.test\r\nContent-Type: application/grpc\r\nTE: trailers\r\nContent-Length: 0\r\n\r\n"))
        let out = try written(channel)
        XCTAssertTrue(out.hasPrefix("HTTP/1.1 200 OK\r\n"), out)
        XCTAssertTrue(out.contains("Content-Type: application/grpc"), out)
        XCTAssertTrue(out.contains("grpc-status: 12"), "no route → UNIMPLEMENTED: \(out)")
        XCTAssertTrue(out.contains("grpc-message: no route for this host and path"), out)
        XCTAssertFalse(out.contains("text/plain"), out)
        _ = try? channel.finish()
    }

    // MARK: h2c preface

    func test_prefaceSnifferTellsHTTP2FromHTTP1() throws {
        let preface = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        XCTAssertEqual(PrefaceSniffer.classify(preface.readableBytesView), .http2)
        XCTAssertEqual(PrefaceSniffer.classify(ByteBuffer(string: "PRI * HTTP").readableBytesView), .needMore)
        XCTAssertEqual(PrefaceSniffer.classify(ByteBuffer(string: "GET / HTTP/1.1\r\n").readableBytesView), .http1)
        XCTAssertEqual(PrefaceSniffer.classify(ByteBuffer(string: "PRX").readableBytesView), .http1)
        for (input, wantHTTP2) in [("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest", true), ("GET / HTTP/1.1\r\n\r\n", false)] {
            let decided = Box<Bool?>(nil)
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(PrefaceSniffer(allowHTTP1: true) { _, isHTTP2 in
                decided.value = isHTTP2
            })
            // Byte by byte: the decision waits for enough bytes, then everything read so far goes on unchanged.
            for byte in input.utf8 { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
            XCTAssertEqual(decided.value, wantHTTP2, input)
            var forwarded = ""
            while let b = try channel.readInbound(as: ByteBuffer.self) { forwarded += String(buffer: b) }
            XCTAssertEqual(forwarded, input, "no byte lost or reordered")
            XCTAssertNil(try? channel.pipeline.syncOperations.handler(type: PrefaceSniffer.self), "the sniffer leaves")
        }
    }

    /// A connection on an h2c listener as `ClientPipeline.initialize` sets it up: the preamble guard and the sniffer.
    private func h2cConnection() throws -> (EmbeddedChannel, EdgeShared) {
        let t = try Topology.decode(Data(ProxyRulesTests.topologyJSON.utf8), file: "t.json")
        let config = try EdgeConfig(topology: t, edgeId: "e1")
        let shared = EdgeShared(config: config, logger: Logger(label: "test"))
        let channel = EmbeddedChannel()
        let box = LoopStateBox(LoopState(config: config, eventLoop: channel.eventLoop, cache: nil))
        let listener = EdgeListener(address: ListenAddress("127.0.0.1:8080")!, protocols: [.http1, .h2c])
        let pipeline = ClientPipeline(shared: shared, loops: [ObjectIdentifier(channel.eventLoop): box], listener: listener,
                                      tls: nil, settings: config.settings)
        try pipeline.initialize(channel)
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (channel, shared)
    }

    /// Before the preface tells the protocol: a client that stops sending is closed at once, one that has not told it
    /// within the head timeout is closed then (a timeout); once told, the guard has left and its timer with it.
    func test_preambleGuardClosesVanishedAndSilentClientsUntilTheProtocolIsKnown() throws {
        let headTimeout = TimeAmount.milliseconds(Int64(try h2cConnection().1.config.settings.limits.headerTimeoutMs))

        let (left, _) = try h2cConnection()
        try left.writeInbound(ByteBuffer(string: "PRI * HT"))
        left.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        left.embeddedEventLoop.run()
        XCTAssertFalse(left.isActive, "a client that left before telling its protocol is closed at once")

        let (silent, shared) = try h2cConnection()
        try silent.writeInbound(ByteBuffer(string: "PRI * HT"))
        silent.embeddedEventLoop.advanceTime(by: headTimeout - .milliseconds(1))
        XCTAssertTrue(silent.isActive, "open until the head timeout")
        silent.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        XCTAssertFalse(silent.isActive, "closed at the head timeout")
        XCTAssertEqual(shared.stats.timeouts.load(ordering: .relaxed), 1)

        let (told, _) = try h2cConnection()
        try told.writeInbound(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
        XCTAssertNil(try? told.pipeline.syncOperations.context(name: PreambleGuard.name), "the guard leaves")
        told.embeddedEventLoop.advanceTime(by: headTimeout + .milliseconds(1))
        XCTAssertTrue(told.isActive, "an HTTP/2 connection is the idle timeout's from now on")
        _ = try? told.finish()
    }

    /// Added to a connection already active (HTTP/2 is set up after the preface or ALPN): the handlers after it hear
    /// `channelActive` once; the first GOAWAY that goes out closes the connection a grace period later, acknowledged
    /// or not, and other frames start nothing.
    func test_http2ConnectionBoundsReplayActivationAndBoundTheGoawayGrace() throws {
        final class ActiveCounter: ChannelInboundHandler {
            typealias InboundIn = NIOAny
            var count = 0
            func channelActive(context: ChannelHandlerContext) { count += 1 }
        }
        let channel = EmbeddedChannel()
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        let counter = ActiveCounter()
        try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionBounds(grace: .seconds(2)))
        try channel.pipeline.syncOperations.addHandler(counter)
        channel.embeddedEventLoop.run()
        XCTAssertEqual(counter.count, 1, "the activation is told once to the handlers after it")

        try channel.writeOutbound(HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: 1), ack: false)))
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        XCTAssertTrue(channel.isActive, "a PING starts no deadline")
        try channel.writeOutbound(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError,
                                                                                       opaqueData: nil)))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1999))
        XCTAssertTrue(channel.isActive, "open during the grace period")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        XCTAssertFalse(channel.isActive, "closed when it ends")
        XCTAssertEqual(counter.count, 1)
    }

    /// Before the TLS handler: a tick's small writes reach it as one buffer at the end of the tick (one TLS record),
    /// in order; a large write sends what was joined first and goes on as it is; every write's promise completes; a
    /// close sends what waits.
    func test_flushCoalescerOverTLSJoinsATicksWritesInOrder() throws {
        let channel = EmbeddedChannel(handler: FlushCoalescer(joinsWrites: true))
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        var done = 0
        for part in ["HEADERS;", "DATA1;", "DATA2;"] {
            let p = channel.eventLoop.makePromise(of: Void.self)
            p.futureResult.whenSuccess { done += 1 }
            channel.write(ByteBuffer(string: part), promise: p)
            channel.flush()
        }
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "nothing leaves before the tick ends")
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "HEADERS;DATA1;DATA2;")
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "one buffer")
        XCTAssertEqual(done, 3, "each joined write's promise completed")

        let large = ByteBuffer(repeating: 0x61, count: FlushCoalescer.recordBytes + 1)
        channel.write(ByteBuffer(string: "small;"), promise: nil)
        channel.write(large, promise: nil)
        channel.write(ByteBuffer(string: "after;"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "small;")
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self)?.readableBytes, large.readableBytes)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "after;")

        channel.write(ByteBuffer(string: "GOAWAY;"), promise: nil)
        channel.flush()
        _ = channel.close()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "GOAWAY;",
                       "sent before the close")
    }

    /// The admin listeners' and sample origin's server: a connection must complete each request within the idle
    /// timeout of its start or of the previous answer's end — silent, slowloris and idle keep-alive alike are closed.
    func test_simpleServerClosesSilentSlowAndIdleConnections() throws {
        let timeout = TimeAmount.seconds(5)
        func connection() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel()
            try SimpleHTTPServer.configureHTTP1(channel, upgraders: [], idleTimeout: timeout) { _, allocator in
                SimpleResponse(status: .ok, contentType: "text/plain", body: allocator.buffer(string: "ok"))
            }
            _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
            return channel
        }
        let silent = try connection()
        silent.embeddedEventLoop.advanceTime(by: timeout - .milliseconds(1))
        XCTAssertTrue(silent.isActive)
        silent.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(silent.isActive, "a silent connection is closed at the timeout")

        let slow = try connection()
        for part in ["GET / HT", "TP/1.1\r\n", "Host: a\r\n"] {
            try slow.writeInbound(ByteBuffer(string: part))
            slow.embeddedEventLoop.advanceTime(by: .seconds(2))
        }
        XCTAssertFalse(slow.isActive, "a request trickled in over more than the timeout")

        let kept = try connection()
        kept.embeddedEventLoop.advanceTime(by: .seconds(4))
        try kept.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"))
        var answer = ""
        while let b = try kept.readOutbound(as: ByteBuffer.self) { answer += String(buffer: b) }
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200"), answer)
        kept.embeddedEventLoop.advanceTime(by: .seconds(4))
        XCTAssertTrue(kept.isActive, "the timeout starts again after the answer")
        kept.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(kept.isActive, "an idle keep-alive connection is closed at the timeout")

        // h2c: a connection that opens no stream gets GOAWAY at the timeout and is closed after the grace period.
        let h2 = EmbeddedChannel()
        _ = try h2.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
        try SimpleHTTPServer.configureHTTP2(h2, idleTimeout: timeout) { _ in }
        h2.embeddedEventLoop.run()
        var preface = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        preface.writeBytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  // an empty SETTINGS frame
        try h2.writeInbound(preface)
        var sent: [UInt8] = []
        while let b = try h2.readOutbound(as: ByteBuffer.self) { sent += b.readableBytesView }
        XCTAssertFalse(sent.isEmpty, "the server's SETTINGS")
        h2.embeddedEventLoop.advanceTime(by: timeout - .milliseconds(1))
        XCTAssertNil(try h2.readOutbound(as: ByteBuffer.self), "nothing before the timeout")
        h2.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        var goaway = false
        while let b = try h2.readOutbound(as: ByteBuffer.self) {
            goaway = goaway || b.getInteger(at: b.readerIndex + 3, as: UInt8.self) == 7  // frame type GOAWAY
        }
        XCTAssertTrue(goaway, "GOAWAY at the idle timeout")
        XCTAssertTrue(h2.isActive)
        h2.embeddedEventLoop.advanceTime(by: .seconds(5))
        XCTAssertFalse(h2.isActive, "closed after the grace period, though the client acknowledged nothing")
    }

    /// The send timeout's clock: by writability (an HTTP/2 stream), it runs only while the client cannot take bytes;
    /// by the bytes waiting (an HTTP/1.1 socket), it starts again whenever some have left.
    func test_clientStallRunsOnlyWhileTheClientTakesNothing() {
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var clock = ClientClock(now: t0)
        func stalled(_ writable: Bool, _ seconds: Double, _ buffered: Int? = nil) -> Bool {
            clock.stalled(writable: writable, buffered: buffered, now: t0 + .milliseconds(Int64(seconds * 1000)), limitMs: 2000)
        }
        XCTAssertFalse(stalled(false, 10), "the clock starts now")
        XCTAssertFalse(stalled(false, 12), "2 s: not over yet")
        XCTAssertFalse(stalled(true, 13), "it took bytes")
        XCTAssertNil(clock.blockedSince)
        XCTAssertFalse(stalled(false, 14))
        XCTAssertTrue(stalled(false, 16.001), "over 2 s since 14")

        clock = ClientClock(now: t0)
        XCTAssertFalse(stalled(false, 20, 10_000_000), "10 MB wait")
        XCTAssertFalse(stalled(false, 21.9, 7_000_000), "3 MB left: the clock starts again")
        XCTAssertFalse(stalled(false, 23.5, 7_000_000))
        XCTAssertTrue(stalled(false, 24, 7_000_000), "nothing left for over 2 s")
        XCTAssertFalse(stalled(false, 25, 0), "nothing waits")
        XCTAssertNil(clock.blockedSince)
    }

    // MARK: Tunnel

    func test_tunnelRelaysBothWaysCountsBytesAndEndsTogether() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), origin = EmbeddedChannel(loop: loop)
        _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try origin.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        let ended = Box<(Int64, Int64)?>(nil)
        let tunnel = Tunnel { t in ended.value = (t.bytesIn, t.bytesOut) }
        try client.pipeline.syncOperations.addHandler(try XCTUnwrap(tunnel.client as? TunnelHandler))
        try origin.pipeline.syncOperations.addHandler(tunnel.origin)
        tunnel.client.core.partnerReady()
        tunnel.origin.core.partnerReady()
        tunnel.start(on: loop, idleTimeout: .seconds(60))
        try client.writeInbound(ByteBuffer(string: "frame from client"))
        XCTAssertEqual(try origin.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "frame from client")
        try origin.writeInbound(ByteBuffer(string: "reply"))
        XCTAssertEqual(try client.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "reply")
        _ = try origin.close().wait()
        loop.run()
        XCTAssertFalse(client.isActive, "the origin's close ends the client side")
        XCTAssertEqual(ended.value?.0, 17)
        XCTAssertEqual(ended.value?.1, 5)
    }

    /// The origin's first WebSocket frame often comes in the same read as its 101: the response decoder keeps it and
    /// hands it on as it leaves the pipeline (a turn of the loop later), with no read-complete after it. It must still
    /// be flushed to the client (before, it sat in the client's write buffer until the next flush, and a client
    /// waiting for that frame stalled: EdgeWebSocketTests' rare 10 s timeout at "headers message").
    func test_tunnelFlushesWhatCameWithTheUpgrade() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), origin = EmbeddedChannel(loop: loop)
        _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try origin.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try origin.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)))
        try origin.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws")))
        _ = try origin.readOutbound(as: HTTPClientRequestPart.self)
        let frame = "\u{81}\u{05}hello"
        try origin.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
                                                   "Connection: Upgrade\r\n\r\n" + frame))
        guard case .head(let head)? = try origin.readInbound(as: HTTPClientResponsePart.self) else {
            return XCTFail("the decoder reads the 101's head")
        }
        XCTAssertEqual(head.status, .switchingProtocols)
        let tunnel = Tunnel { _ in }
        try ProxyHandler.becomeTunnel(client.pipeline, handler: tunnel.client)
        try ProxyHandler.becomeTunnel(origin.pipeline, handler: tunnel.origin)
        tunnel.client.core.partnerReady()
        tunnel.origin.core.partnerReady()
        loop.run()  // the decoder leaves the pipeline on the loop's next turn, handing on what it kept
        XCTAssertEqual(try client.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, frame,
                       "the frame that came with the 101 is flushed to the client")
    }

    /// A read an HTTP handler held back (the client could not take more) leaves the pipeline with the handler: the
    /// tunnel reads again once both sides are in place.
    func test_tunnelReadsAgainAfterAHeldRead() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), origin = EmbeddedChannel(loop: loop)
        _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try origin.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        let reads = ReadCounter()
        let upstream = UpstreamHandler()
        try origin.pipeline.syncOperations.addHandlers([reads, upstream])
        upstream.holdReads = true
        origin.read()
        XCTAssertEqual(reads.count, 0, "the upstream handler holds the read")
        let tunnel = Tunnel { _ in }
        try ProxyHandler.becomeTunnel(client.pipeline, handler: tunnel.client)
        try ProxyHandler.becomeTunnel(origin.pipeline, handler: tunnel.origin)
        tunnel.client.core.partnerReady()
        tunnel.origin.core.partnerReady()
        XCTAssertGreaterThanOrEqual(reads.count, 1, "the origin side reads again")
    }

    func test_tunnelIdleTimeoutClosesBothSides() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), origin = EmbeddedChannel(loop: loop)
        _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try origin.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        let tunnel = Tunnel { _ in }
        try client.pipeline.syncOperations.addHandler(try XCTUnwrap(tunnel.client as? TunnelHandler))
        try origin.pipeline.syncOperations.addHandler(tunnel.origin)
        tunnel.start(on: loop, idleTimeout: .milliseconds(200))
        loop.advanceTime(by: .milliseconds(150))
        XCTAssertTrue(client.isActive)
        loop.advanceTime(by: .milliseconds(200))
        XCTAssertFalse(client.isActive)
        XCTAssertFalse(origin.isActive)
    }

    // MARK: HTTP/2 connection guard

    func test_guardClosesOnlyOnConnectionErrors() {
        XCTAssertTrue(HTTP2ConnectionGuard.endsConnection(NIOHTTP2Errors.excessiveRSTFrames()))
        XCTAssertTrue(HTTP2ConnectionGuard.endsConnection(NIOHTTP2Errors.excessiveControlFrames()))
        XCTAssertTrue(HTTP2ConnectionGuard.endsConnection(NIOHTTP2Errors.excessiveContinuationFrames()))
        XCTAssertFalse(HTTP2ConnectionGuard.endsConnection(NIOHTTP2Errors.noSuchStream(streamID: 3)), "a stream error")
        XCTAssertFalse(HTTP2ConnectionGuard.endsConnection(NIOHTTP2Errors.missingPseudoHeader(":path")))
    }
}

/// Counts the reads that reach it on their way to the socket.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}

/// A mutable cell a test's closures share (all on one embedded loop).
private final class Box<T> {
    var value: T
    init(_ value: T) { self.value = value }
}
