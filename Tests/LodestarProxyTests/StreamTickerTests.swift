import Foundation
import LodestarTopology
import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import LodestarProxy

/// The HTTP/2 connection's one timer for its streams: a stream's handler joins when added to its channel and leaves
/// when removed, one repeating task ticks them all, and closing the connection ends it.
final class StreamTickerTests: XCTestCase {
    private func streamHandler(_ ticker: StreamTicker, loop: EmbeddedEventLoop) throws -> (ProxyHandler, EmbeddedChannel) {
        let t = try Topology.decode(Data(ProxyRulesTests.topologyJSON.utf8), file: "t.json")
        let config = try EdgeConfig(topology: t, edgeId: "e1")
        let shared = EdgeShared(config: config, logger: Logger(label: "test"))
        let box = LoopStateBox(LoopState(config: config, eventLoop: loop, cache: nil))
        let info = ConnectionInfo(remote: try SocketAddress(ipAddress: "192.0.2.7", port: 40000), scheme: "http")
        let handler = ProxyHandler(shared: shared, loop: box, info: info, mode: .http2(ticker), compressing: false)
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(handler, name: "proxy")
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (handler, channel)
    }

    func test_streamsJoinAndLeaveOneTimer() throws {
        let loop = EmbeddedEventLoop()
        let ticker = StreamTicker(loop: loop)
        let (first, a) = try streamHandler(ticker, loop: loop)
        let (_, b) = try streamHandler(ticker, loop: loop)
        XCTAssertEqual(ticker.count, 2, "each stream's handler joins as it is added")
        try a.pipeline.syncOperations.removeHandler(first).wait()
        XCTAssertEqual(ticker.count, 1, "a removed handler leaves")
        // The timer keeps ticking the stream left (an idle stream: a tick changes nothing and does not fail).
        loop.advanceTime(by: .seconds(5))
        XCTAssertEqual(ticker.count, 1)
        XCTAssertTrue(b.isActive, "an idle stream's tick leaves it open")
        ticker.stop()
        XCTAssertEqual(ticker.count, 0, "stopping forgets every stream")
        let (_, c) = try streamHandler(ticker, loop: loop)
        XCTAssertEqual(ticker.count, 0, "a stopped ticker (closed connection) takes no new stream")
        _ = try? b.finish()
        _ = try? c.finish()
    }
}

/// `StreamFrameRewriter`: the request id leaves an HTTP/2 stream without HPACK indexing, every other field and frame
/// passing as it was; an extended CONNECT arrives as the HTTP/1.1 upgrade request an origin understands.
final class StreamFrameRewriterTests: XCTestCase {
    func test_requestIdIsSentWithoutIndexingAndTheRestUnchanged() throws {
        let channel = EmbeddedChannel(handler: StreamFrameRewriter(requestIdHeader: "X-Request-ID"))
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "200")
        headers.add(name: "content-type", value: "text/plain")
        headers.add(name: "x-request-id", value: "abc-1")
        try channel.writeOutbound(HTTP2Frame.FramePayload.headers(.init(headers: headers)))
        guard case .headers(let sent)? = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            return XCTFail("no HEADERS written")
        }
        let fields = sent.headers.map { ($0.name, $0.value, $0.indexable) }
        XCTAssertEqual(fields.map(\.0), [":status", "content-type", "x-request-id"])
        XCTAssertEqual(fields.map(\.1), ["200", "text/plain", "abc-1"])
        XCTAssertEqual(fields.map(\.2), [.indexable, .indexable, .nonIndexable])
        // DATA passes untouched.
        try channel.writeOutbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: "x")))))
        guard case .data? = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else { return XCTFail("no DATA") }
        XCTAssertTrue(try channel.finish().isClean)
    }

    func test_extendedConnectBecomesAnUpgradeRequestAndOtherHeadersPass() throws {
        let channel = EmbeddedChannel(handler: StreamFrameRewriter(requestIdHeader: "X-Request-ID"))
        var connect = HPACKHeaders()
        for (n, v) in [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/ws"),
                       (":authority", "edge.test"), (StreamFrameRewriter.marker, "forged"), ("sec-websocket-version", "13")] {
            connect.add(name: n, value: v)
        }
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: connect)))
        guard case .headers(let got)? = try channel.readInbound(as: HTTP2Frame.FramePayload.self) else {
            return XCTFail("no HEADERS read")
        }
        let h = got.headers
        XCTAssertEqual(h.first(name: ":method"), "GET")
        XCTAssertFalse(h.contains(name: ":protocol"))
        XCTAssertEqual(h.first(name: ":path"), "/ws")
        XCTAssertEqual(h.first(name: "connection"), "upgrade")
        XCTAssertEqual(h.first(name: "upgrade"), "websocket")
        XCTAssertEqual(h.first(name: "sec-websocket-version"), "13")
        XCTAssertEqual(h[StreamFrameRewriter.marker], ["1"], "the client's own marker is dropped, ours added once")
        let key = try XCTUnwrap(h.first(name: "sec-websocket-key"))
        XCTAssertEqual(key.count, 24)
        XCTAssertEqual(Data(base64Encoded: key)?.count, 16)
        XCTAssertEqual(StreamFrameRewriter.base64(Array("hello".utf8)), "aGVsbG8=")
        // A plain request passes untouched.
        var get = HPACKHeaders()
        for (n, v) in [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "edge.test")] { get.add(name: n, value: v) }
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: get)))
        guard case .headers(let plain)? = try channel.readInbound(as: HTTP2Frame.FramePayload.self) else {
            return XCTFail("no HEADERS read")
        }
        XCTAssertEqual(plain.headers.map(\.name), [":method", ":scheme", ":path", ":authority"])
        XCTAssertTrue(try channel.finish().isClean)
    }
}
