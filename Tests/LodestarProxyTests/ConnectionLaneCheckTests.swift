import Foundation
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import LodestarProxy

/// The connection lane checks every header section a client sends (swift-nio-http2's own checks are off): a
/// malformed one resets its stream with PROTOCOL_ERROR and goes no further; a connection that keeps sending them
/// is closed with GOAWAY ENHANCE_YOUR_CALM. And it keeps the connection's idle timeout and graceful GOAWAY.
final class ConnectionLaneCheckTests: XCTestCase {
    private final class Behind: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        var frames: [HTTP2Frame] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { frames.append(unwrapInboundIn(data)) }
    }

    /// A lane (taking nothing: every well-formed stream goes on) on an embedded connection, a recorder behind it.
    private func lane(limit: Int = 200, idle: TimeAmount? = nil, grace: TimeAmount = .seconds(30))
        throws -> (EmbeddedChannel, Behind) {
        let t = try Topology.decode(Data(ProxyRulesTests.topologyJSON.utf8), file: "t.json")
        let config = try EdgeConfig(topology: t, edgeId: "e1")
        let shared = EdgeShared(config: config, logger: Logger(label: "test"))
        let conn = EmbeddedChannel()
        let box = LoopStateBox(LoopState(config: config, eventLoop: conn.eventLoop, cache: nil))
        let info = ConnectionInfo(remote: try SocketAddress(ipAddress: "192.0.2.8", port: 40001), scheme: "http")
        let lane = ConnectionLane(shared: shared, loop: box, info: info, compressing: false,
                                  ticker: StreamTicker(loop: conn.eventLoop), takes: false, malformedLimit: limit,
                                  idleTimeout: idle, grace: grace)
        let behind = Behind()
        try conn.pipeline.syncOperations.addHandler(lane)
        try conn.pipeline.syncOperations.addHandler(behind)
        _ = try conn.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (conn, behind)
    }

    private func headers(_ id: HTTP2StreamID, _ fields: [(String, String)], end: Bool = true) -> HTTP2Frame {
        var h = HPACKHeaders()
        for (n, v) in fields { h.add(name: n, value: v) }
        return HTTP2Frame(streamID: id, payload: .headers(.init(headers: h, endStream: end)))
    }

    private func written(_ conn: EmbeddedChannel) throws -> [HTTP2Frame] {
        var out: [HTTP2Frame] = []
        while let f = try conn.readOutbound(as: HTTP2Frame.self) { out.append(f) }
        return out
    }

    private let get = [(":method", "GET"), (":scheme", "http"), (":authority", "www.example.test"), (":path", "/")]

    func test_aMalformedSectionResetsItsStreamAndGoesNoFurther() throws {
        let (conn, behind) = try lane(limit: 10)
        try conn.writeInbound(headers(1, get + [("Upper", "1")]))
        try conn.writeInbound(headers(3, get, end: false))
        try conn.writeInbound(HTTP2Frame(streamID: 3, payload: .data(.init(data: .byteBuffer(ByteBuffer(string: "x"))))))
        try conn.writeInbound(headers(3, [(":path", "/t")]))
        try conn.writeInbound(headers(5, get + [("te", "trailers")], end: false))
        try conn.writeInbound(headers(5, [("x-checksum", "1")]))
        let out = try written(conn)
        XCTAssertEqual(out.map(\.streamID), [1, 3], "one reset for the bad request, one for the bad trailers")
        for f in out {
            guard case .rstStream(let code) = f.payload else { return XCTFail("not RST_STREAM: \(f)") }
            XCTAssertEqual(code, .protocolError)
        }
        XCTAssertEqual(behind.frames.map { Int($0.streamID) }, [3, 3, 5, 5], "the malformed sections stopped at the lane")
        XCTAssertTrue(conn.isActive)
        _ = try? conn.finish()
    }

    func test_aConnectionThatKeepsSendingThemIsClosed() throws {
        let (conn, _) = try lane(limit: 3)
        for id in [1, 3, 5] { try conn.writeInbound(headers(HTTP2StreamID(id), [(":method", "GET")])) }
        XCTAssertEqual(try written(conn).count, 3)
        XCTAssertTrue(conn.isActive, "up to the limit")
        try conn.writeInbound(headers(7, [(":method", "GET")]))
        let out = try written(conn)
        guard case .goAway(let last, let code, _)? = out.last?.payload else { return XCTFail("no GOAWAY: \(out)") }
        XCTAssertEqual(last, 7)
        XCTAssertEqual(code, .enhanceYourCalm)
        try conn.writeInbound(headers(9, get))
        XCTAssertTrue(try written(conn).isEmpty, "what comes after the GOAWAY is dropped")
        (conn.eventLoop as? EmbeddedEventLoop)?.advanceTime(by: .seconds(1))
        XCTAssertFalse(conn.isActive, "closed, at the latest a second after the GOAWAY")
    }

    private func goAway(_ frames: [HTTP2Frame]) -> (HTTP2StreamID, HTTP2ErrorCode)? {
        for f in frames { if case .goAway(let last, let code, _) = f.payload { return (last, code) } }
        return nil
    }

    private func event(_ conn: EmbeddedChannel, _ event: Any) {
        conn.pipeline.fireUserInboundEventTriggered(event)
    }

    func test_anIdleConnectionGetsGoawayAndCloses() throws {
        let (conn, _) = try lane(idle: .seconds(5))
        let loop = try XCTUnwrap(conn.eventLoop as? EmbeddedEventLoop)
        event(conn, NIOHTTP2StreamCreatedEvent(streamID: 1, localInitialWindowSize: nil, remoteInitialWindowSize: nil))
        loop.advanceTime(by: .seconds(6))
        XCTAssertNil(goAway(try written(conn)), "a stream is open")
        event(conn, StreamClosedEvent(streamID: 1, reason: nil))
        loop.advanceTime(by: .seconds(4))
        XCTAssertNil(goAway(try written(conn)))
        XCTAssertTrue(conn.isActive)
        loop.advanceTime(by: .seconds(1))
        let away = goAway(try written(conn))
        XCTAssertEqual(away?.0, 1, "the last stream it took")
        XCTAssertEqual(away?.1, .noError)
        loop.advanceTime(by: .seconds(1))
        XCTAssertFalse(conn.isActive)
    }

    /// The idle timer is not moved at each stream: one that fires early looks again when the idle spell ends.
    func test_theIdleTimeCountsFromTheLastStreamsEnd() throws {
        let (conn, _) = try lane(idle: .seconds(5))
        let loop = try XCTUnwrap(conn.eventLoop as? EmbeddedEventLoop)
        loop.advanceTime(by: .seconds(1))
        event(conn, NIOHTTP2StreamCreatedEvent(streamID: 1, localInitialWindowSize: nil, remoteInitialWindowSize: nil))
        loop.advanceTime(by: .seconds(1))
        event(conn, StreamClosedEvent(streamID: 1, reason: nil))
        loop.advanceTime(by: .seconds(4))
        XCTAssertNil(goAway(try written(conn)), "6 s after the start, 4 s after the stream ended")
        loop.advanceTime(by: .seconds(1))
        XCTAssertNotNil(goAway(try written(conn)), "5 s after it ended")
    }

    func test_quiesceSendsGoawayAndClosesAfterTheLastStream() throws {
        let (conn, _) = try lane(idle: .seconds(5))
        let loop = try XCTUnwrap(conn.eventLoop as? EmbeddedEventLoop)
        for id in [1, 3] {
            event(conn, NIOHTTP2StreamCreatedEvent(streamID: HTTP2StreamID(id), localInitialWindowSize: nil,
                                                   remoteInitialWindowSize: nil))
        }
        event(conn, ChannelShouldQuiesceEvent())
        let away = goAway(try written(conn))
        XCTAssertEqual(away?.0, 3)
        XCTAssertEqual(away?.1, .noError)
        event(conn, StreamClosedEvent(streamID: 1, reason: nil))
        loop.advanceTime(by: .seconds(10))
        XCTAssertTrue(conn.isActive, "stream 3 is still open, within the grace period")
        event(conn, StreamClosedEvent(streamID: 3, reason: nil))
        loop.advanceTime(by: .seconds(1))
        XCTAssertFalse(conn.isActive, "closed after its last stream")
        XCTAssertNil(goAway(try written(conn)), "one GOAWAY")
    }

    /// The grace period after a graceful GOAWAY (`http2.gracefulShutdownMs`) ends the connection whatever its streams do.
    func test_theGracePeriodEndsTheConnection() throws {
        let (conn, _) = try lane(idle: .seconds(5), grace: .seconds(3))
        let loop = try XCTUnwrap(conn.eventLoop as? EmbeddedEventLoop)
        event(conn, NIOHTTP2StreamCreatedEvent(streamID: 1, localInitialWindowSize: nil, remoteInitialWindowSize: nil))
        event(conn, ChannelShouldQuiesceEvent())
        XCTAssertNotNil(goAway(try written(conn)))
        loop.advanceTime(by: .seconds(2))
        XCTAssertTrue(conn.isActive)
        loop.advanceTime(by: .seconds(2))
        XCTAssertFalse(conn.isActive, "closed at the end of the grace period (and its second of lingering)")
    }
}
