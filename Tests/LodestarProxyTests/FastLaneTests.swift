import Foundation
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Synchronization
import XCTest

@testable import LodestarProxy

/// The pass-through lane (`FastLane`) driven through `EmbeddedChannel`s: a client connection and an origin
/// connection on one embedded loop, bytes in and out, no sockets.
final class FastLaneTests: XCTestCase {
    struct Rig {
        let client: EmbeddedChannel
        let origin: EmbeddedChannel
        let pool: LoopPool
        let shared: EdgeShared
    }

    /// A client connection set up as `ClientPipeline.configureHTTP1` does, and one idle origin connection in the
    /// "web" pool (the lane takes it instead of connecting).
    func rig() throws -> Rig {
        let t = try Topology.decode(Data(ProxyRulesTests.topologyJSON.utf8), file: "t.json")
        let config = try EdgeConfig(topology: t, edgeId: "e1")
        let shared = EdgeShared(config: config, logger: Logger(label: "test"))
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop)
        let box = LoopStateBox(LoopState(config: config, eventLoop: loop, cache: nil))
        let pipeline = ClientPipeline(shared: shared, loops: [ObjectIdentifier(loop): box],
                                      listener: EdgeListener(address: ListenAddress("127.0.0.1:8080")!), tls: nil,
                                      settings: config.settings)
        let info = ConnectionInfo(remote: try SocketAddress(ipAddress: "192.0.2.7", port: 40000), scheme: "http")
        try pipeline.configureHTTP1(client, info: info, state: box)
        _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        let pool = try XCTUnwrap(box.state.pools.first { $0.runtime.pool.name == "web" })
        let origin = try idleOrigin(in: pool, loop: loop)
        return Rig(client: client, origin: origin, pool: pool, shared: shared)
    }

    private func idleOrigin(in pool: LoopPool, loop: EmbeddedEventLoop) throws -> EmbeddedChannel {
        let origin = EmbeddedChannel(loop: loop)
        let handler = RawUpstreamHandler()
        try origin.pipeline.syncOperations.addHandler(handler)
        _ = try origin.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9001)).wait()
        let conn = RawConnection(channel: origin, handler: handler, server: 0, pool: pool)
        handler.connection = conn
        pool.releaseRaw(conn, reusable: true, keepAliveTimeout: nil)
        return origin
    }

    func text(_ channel: EmbeddedChannel) throws -> String {
        var out = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        return out
    }

    func lines(_ head: String) -> [String] {
        head.components(separatedBy: "\r\n\r\n")[0].components(separatedBy: "\r\n")
    }

    func test_aRequestGoesThroughAsBytesWithTheSameRules() throws {
        let r = try rig()
        try r.client.writeInbound(ByteBuffer(string:
            "GET /page?q=1 HTTP/1.1\r\nHost: www.example.test\r\nCookie: a=b\r\nX-Forwarded-For: 198.51.100.1\r\n"
            + "Connection: keep-alive\r\nX-Request-ID: client-id-7\r\n\r\n"))
        let request = try text(r.origin)
        let sent = lines(request)
        XCTAssertEqual(sent.first, "GET /page?q=1 HTTP/1.1")
        XCTAssertTrue(sent.contains("Host: www.example.test"), request)
        XCTAssertFalse(request.contains("Cookie"), "the route removes Cookie: \(request)")
        XCTAssertFalse(request.lowercased().contains("connection:"), "hop-by-hop: \(request)")
        XCTAssertTrue(sent.contains("X-Edge: 1"), request)
        XCTAssertTrue(sent.contains("X-Forwarded-For: 198.51.100.1, 192.0.2.7"), request)
        XCTAssertTrue(sent.contains("X-Forwarded-Proto: http"), request)
        XCTAssertTrue(sent.contains("X-Forwarded-Host: www.example.test"), request)
        XCTAssertTrue(sent.contains("Via: 1.1 e1"), request)
        XCTAssertTrue(request.lowercased().contains("\r\nx-request-id: client-id-7\r\n"), "a plain client id is kept: \(request)")
        XCTAssertTrue(request.hasSuffix("\r\n\r\n"))

        // The answer, split over reads, its body after the head.
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nServer: origin/1\r\nX-Powered-By: php\r\n"))
        XCTAssertEqual(try text(r.client), "", "nothing before the whole head")
        try r.origin.writeInbound(ByteBuffer(string: "Location: http://127.0.0.1:9001/next\r\nContent-Length: 5\r\n\r\nhel"))
        try r.origin.writeInbound(ByteBuffer(string: "lo"))
        let answer = try text(r.client)
        let got = lines(answer)
        XCTAssertEqual(got.first, "HTTP/1.1 200 OK")
        XCTAssertFalse(answer.contains("origin/1"), "the origin's Server is hidden: \(answer)")
        XCTAssertFalse(answer.contains("X-Powered-By"), "the route removes it: \(answer)")
        XCTAssertTrue(got.contains("X-Served-By: edge"), answer)
        XCTAssertTrue(got.contains("Via: 1.1 e1"), answer)
        XCTAssertTrue(answer.lowercased().contains("\r\nx-request-id: client-id-7\r\n"), answer)
        XCTAssertTrue(got.contains("Content-Length: 5"), answer)
        XCTAssertTrue(answer.hasSuffix("\r\n\r\nhello"), answer)
        XCTAssertEqual(r.shared.stats.responses2xx.load(ordering: .relaxed), 1)
        // Back in the pool for the next request.
        let again = try XCTUnwrap(r.pool.takeRawIdle(server: 0))
        XCTAssertTrue(again.channel === r.origin)
        XCTAssertNil(again.owner)
        _ = try? r.client.finish()
    }

    func test_chunkedAndCloseDelimitedBodiesAndPipelinedRequests() throws {
        let r = try rig()
        // Two requests in one read: the second waits for the first answer.
        try r.client.writeInbound(ByteBuffer(string:
            "GET /a HTTP/1.1\r\nHost: www.example.test\r\n\r\nHEAD /b HTTP/1.1\r\nHost: www.example.test\r\n\r\n"))
        XCTAssertEqual(lines(try text(r.origin)).first, "GET /a HTTP/1.1", "one request at a time")
        let chunked = "4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n"
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
        for c in chunked { try r.origin.writeInbound(ByteBuffer(string: String(c))) }
        let first = try text(r.client)
        XCTAssertTrue(lines(first).contains("Transfer-Encoding: chunked"), first)
        XCTAssertTrue(first.hasSuffix("\r\n\r\n" + chunked), "chunks relayed as they are: \(first)")
        // The pipelined HEAD went out on the same origin connection once the first answer ended.
        XCTAssertEqual(lines(try text(r.origin)).first, "HEAD /b HTTP/1.1")
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
        let second = try text(r.client)
        XCTAssertTrue(lines(second).contains("Content-Length: 100"), second)
        XCTAssertTrue(second.hasSuffix("\r\n\r\n"), "no body after a HEAD answer: \(second)")

        // A body that ends with the origin's close: chunked for the client, whose connection stays open.
        try r.client.writeInbound(ByteBuffer(string: "GET /c HTTP/1.1\r\nHost: www.example.test\r\n\r\n"))
        XCTAssertEqual(lines(try text(r.origin)).first, "GET /c HTTP/1.1")
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc"))
        try r.origin.writeInbound(ByteBuffer(string: "defghijklmnopq"))
        r.origin.pipeline.fireChannelInactive()
        let third = try text(r.client)
        XCTAssertTrue(lines(third).contains("Transfer-Encoding: chunked"), third)
        XCTAssertTrue(third.hasSuffix("\r\n\r\n3\r\nabc\r\ne\r\ndefghijklmnopq\r\n0\r\n\r\n"), third)
        XCTAssertTrue(r.client.isActive)
        XCTAssertNil(r.pool.takeRawIdle(server: 0), "a connection that ended its body by closing is not kept")
        XCTAssertEqual(r.shared.stats.responses2xx.load(ordering: .relaxed), 3)
        _ = try? r.client.finish()
    }

    /// A request the lane does not take: it sets up the full lane, hands it the bytes and admission's verdict, and
    /// leaves; the full lane answers it and every later request of the connection.
    func test_theLaneStepsAsideForTheFullLane() throws {
        let r = try rig()
        try r.client.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: www.example.test\r\n\r\n"))
        _ = try text(r.origin)
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 204 No Content\r\n\r\n"))
        XCTAssertTrue(try text(r.client).hasPrefix("HTTP/1.1 204 No Content\r\n"))
        XCTAssertNotNil(try? r.client.pipeline.syncOperations.handler(type: FastLane.self))
        // Unrouted: admission's 404 comes from the full lane, with the lane's verdict (the request counted once).
        try r.client.writeInbound(ByteBuffer(string: "GET /x HTTP/1.1\r\nHost: other.test\r\n\r\nGET /y HTTP/1.1\r\nHost: oth"))
        XCTAssertNil(try? r.client.pipeline.syncOperations.handler(type: FastLane.self), "the lane left")
        XCTAssertNotNil(try? r.client.pipeline.syncOperations.handler(type: ProxyHandler.self))
        XCTAssertTrue(try text(r.client).hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        try r.client.writeInbound(ByteBuffer(string: "er.test\r\n\r\n"))
        XCTAssertTrue(try text(r.client).hasPrefix("HTTP/1.1 404 Not Found\r\n"), "a request split over the hand-over")
        XCTAssertEqual(r.shared.stats.requests.load(ordering: .relaxed), 3)
        XCTAssertEqual(r.shared.stats.responses4xx.load(ordering: .relaxed), 2)
        _ = try? r.client.finish()
    }

    /// A redirect to the origin itself names the edge instead; other fields keep the origin's spelling and spacing.
    func test_redirectsToTheOriginAreRewrittenAndOtherLinesKeptAsSent() throws {
        let r = try rig()
        try r.client.writeInbound(ByteBuffer(string: "GET /old HTTP/1.1\r\nHost: www.example.test:8080\r\n\r\n"))
        _ = try text(r.origin)
        try r.origin.writeInbound(ByteBuffer(string:
            "HTTP/1.1 301 Moved Permanently\r\nlocation: http://127.0.0.1:9001/new?x=1\r\nX-Odd:  two  spaces\r\n"
            + "Via: 1.0 inner\r\nContent-Length: 0\r\n\r\n"))
        let answer = try text(r.client)
        let got = lines(answer)
        XCTAssertEqual(got.first, "HTTP/1.1 301 Moved Permanently")
        XCTAssertTrue(got.contains("location: http://www.example.test:8080/new?x=1"), answer)
        XCTAssertTrue(got.contains("X-Odd:  two  spaces"), answer)
        XCTAssertTrue(got.contains("Via: 1.0 inner, 1.1 e1"), "one Via, the edge's entry added: \(answer)")
        XCTAssertFalse(answer.contains("127.0.0.1:9001"), answer)
        _ = try? r.client.finish()
    }

    /// An HTTP/2 connection's pass-through lane (`ConnectionLane`) on an embedded connection channel, as
    /// `ClientPipeline.configureHTTP2` places it after swift-nio-http2's handler; behind it, a stand-in for the stream
    /// multiplexer records the frames handed on and the verdict each stream's child would be given.
    private func connectionLane(_ r: Rig, compressing: Bool) throws -> (EmbeddedChannel, HandedOn) {
        let conn = EmbeddedChannel(loop: r.client.embeddedEventLoop)
        let lane = try makeLane(r, on: conn, compressing: compressing)
        let handedOn = HandedOn(lane: lane)
        try conn.pipeline.syncOperations.addHandler(lane)
        try conn.pipeline.syncOperations.addHandler(handedOn)
        _ = try conn.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (conn, handedOn)
    }

    /// A lane for `conn`, on the rig's loop state (not added to a pipeline).
    private func makeLane(_ r: Rig, on conn: EmbeddedChannel, compressing: Bool = false,
                          connectionWindow: Int = 65535) throws -> ConnectionLane {
        let state = try XCTUnwrap(try? r.client.pipeline.syncOperations.handler(type: FastLane.self)).loop
        let info = ConnectionInfo(remote: try SocketAddress(ipAddress: "192.0.2.8", port: 40001), scheme: "http")
        return ConnectionLane(shared: r.shared, loop: state, info: info, compressing: compressing,
                              ticker: StreamTicker(loop: conn.eventLoop), connectionWindow: connectionWindow)
    }

    private func headers(_ fields: [(String, String)]) -> HPACKHeaders {
        var h = HPACKHeaders()
        for (n, v) in fields { h.add(name: n, value: v) }
        return h
    }

    private func frames(_ conn: EmbeddedChannel) throws -> [HTTP2Frame] {
        var out: [HTTP2Frame] = []
        while let f = try conn.readOutbound(as: HTTP2Frame.self) { out.append(f) }
        return out
    }

    /// A bodiless request goes through the connection's lane as frames and bytes: HEADERS in, the origin's HTTP/1.1
    /// bytes out and back, HEADERS and DATA frames of the stream's id (chunks decoded) to the client; no child.
    func test_aStreamGoesThroughTheConnectionLaneAsFramesAndBytes() throws {
        let r = try rig()
        let (conn, handedOn) = try connectionLane(r, compressing: false)
        let request = headers([(":method", "GET"), (":scheme", "http"), (":authority", "www.example.test"),
                               (":path", "/s?x=1"), ("accept", "*/*"), ("cookie", "a=b")])
        try conn.writeInbound(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: request, endStream: true))))
        XCTAssertTrue(handedOn.frames.isEmpty, "the lane took it")
        let sent = lines(try text(r.origin))
        XCTAssertEqual(sent.first, "GET /s?x=1 HTTP/1.1")
        XCTAssertEqual(sent.dropFirst().first, "host: www.example.test", ":authority became Host, first")
        XCTAssertTrue(sent.contains("Via: 2 e1"), "\(sent)")
        XCTAssertFalse(sent.contains { $0.lowercased().hasPrefix("cookie") }, "the route's rule: \(sent)")
        try r.origin.writeInbound(ByteBuffer(string:
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nX-Powered-By: php\r\n\r\n5\r\nhe"))
        try r.origin.writeInbound(ByteBuffer(string: "llo\r\n3;e=1\r\n, w\r\n0\r\n\r\n"))
        let out = try frames(conn)
        XCTAssertEqual(Set(out.map(\.streamID)), [HTTP2StreamID(3)], "every frame on the request's stream")
        guard case .headers(let h)? = out.first?.payload else { return XCTFail("no HEADERS: \(out)") }
        XCTAssertEqual(h.headers.first(name: ":status"), "200")
        XCTAssertEqual(h.headers.first(name: "content-type"), "text/plain")
        XCTAssertTrue(h.headers.contains { $0.name == "content-type" }, "the origin's Content-Type in lower case")
        XCTAssertTrue(h.headers.allSatisfy { $0.name == $0.name.lowercased() }, "\(h.headers)")
        XCTAssertEqual(h.headers.first(name: "x-served-by"), "edge")
        XCTAssertNil(h.headers.first(name: "transfer-encoding"), "no connection-specific field in HTTP/2")
        XCTAssertNil(h.headers.first(name: "x-powered-by"))
        XCTAssertFalse(h.endStream)
        let rid = h.headers.filter { $0.name == "x-request-id" }
        XCTAssertEqual(rid.count, 1)
        XCTAssertEqual(rid.first?.indexable, .nonIndexable, "a value that differs on every answer stays out of HPACK's table")
        var body = ""
        var ended = false
        for case .data(let d) in out.dropFirst().map(\.payload) {
            if case .byteBuffer(let b) = d.data { body += String(buffer: b) }
            ended = ended || d.endStream
        }
        XCTAssertEqual(body, "hello, w", "the chunks' data without their framing")
        XCTAssertTrue(ended, "END_STREAM at the end")
        XCTAssertNotNil(r.pool.takeRawIdle(server: 0), "the origin connection is kept")
        _ = try? conn.finish()
        _ = try? r.client.finish()
    }

    /// Streams the lane does not take go on to the multiplexer, with admission's verdict when the lane admitted the
    /// request (so the full path does not admit it twice: a rate limit counts each request once), and so do the
    /// frames of those streams; the connection's own frames pass untouched.
    func test_theConnectionLaneHandsOnWhatItDoesNotTake() throws {
        let r = try rig()
        let (conn, handedOn) = try connectionLane(r, compressing: false)
        let post = headers([(":method", "POST"), (":scheme", "http"), (":authority", "www.example.test"), (":path", "/p")])
        try conn.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: post, endStream: false))))
        try conn.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(string: "x")), endStream: false))))
        let trailers = headers([("x-checksum", "1")])
        try conn.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: trailers, endStream: true))))
        let grpc = headers([(":method", "GET"), (":scheme", "http"), (":authority", "www.example.test"), (":path", "/g"),
                            ("content-type", "application/grpc")])
        try conn.writeInbound(HTTP2Frame(streamID: 5, payload: .headers(.init(headers: grpc, endStream: true))))
        let nowhere = headers([(":method", "GET"), (":scheme", "http"), (":authority", "other.test"), (":path", "/x")])
        try conn.writeInbound(HTTP2Frame(streamID: 7, payload: .headers(.init(headers: nowhere, endStream: true))))
        try conn.writeInbound(HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: 9), ack: false)))
        XCTAssertEqual(handedOn.frames.map { Int($0.streamID) }, [1, 1, 1, 5, 7, 0])
        XCTAssertNil(handedOn.verdicts[0], "a request with a body was not admitted by the lane")
        guard case .proceed? = handedOn.verdicts[3] else { return XCTFail("gRPC: admitted, not taken: \(handedOn.verdicts)") }
        if case .proceed? = handedOn.verdicts[4] { XCTFail("no route: a rejection to carry out") }
        XCTAssertNotNil(handedOn.verdicts[4])
        XCTAssertNil(handedOn.lane.takeVerdict(), "a verdict is given once, to the stream being handed on")
        XCTAssertTrue(try frames(conn).isEmpty, "the lane answered none of them")
        XCTAssertEqual(try text(r.origin), "", "nothing went to the origin")
        _ = try? conn.finish()
        _ = try? r.client.finish()
    }

    /// A stream reset mid-answer (swift-nio-http2 reports it closed) ends its exchange: the origin connection,
    /// with part of an answer still to come, is closed, not pooled; later frames of the stream stop at the lane.
    func test_aStreamResetMidAnswerClosesItsOriginConnection() throws {
        let r = try rig()
        let (conn, handedOn) = try connectionLane(r, compressing: false)
        let request = headers([(":method", "GET"), (":scheme", "http"), (":authority", "www.example.test"), (":path", "/big")])
        try conn.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: request, endStream: true))))
        _ = try text(r.origin)
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc"))
        XCTAssertEqual(try frames(conn).count, 2, "HEADERS and the first DATA")
        try conn.writeInbound(HTTP2Frame(streamID: 1, payload: .rstStream(.cancel)))
        conn.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 1, reason: .cancel))
        XCTAssertFalse(r.origin.isActive, "the origin connection closed")
        XCTAssertNil(r.pool.takeRawIdle(server: 0), "and not pooled")
        XCTAssertTrue(handedOn.frames.isEmpty)
        XCTAssertTrue(try frames(conn).isEmpty, "nothing more on the reset stream")
        _ = try? conn.finish()
        _ = try? r.client.finish()
    }

    /// The head (as text) and the body bytes written to `channel`.
    private func answer(_ channel: EmbeddedChannel) throws -> (head: String, body: [UInt8]) {
        var all: [UInt8] = []
        while let b = try channel.readOutbound(as: ByteBuffer.self) { all += b.readableBytesView }
        let end = (0..<max(0, all.count - 3)).first { all[$0] == 13 && all[$0 + 1] == 10 && all[$0 + 2] == 13 && all[$0 + 3] == 10 }
        guard let end else { return (String(decoding: all, as: UTF8.self), []) }
        return (String(decoding: all[..<end], as: UTF8.self), Array(all[(end + 4)...]))
    }

    /// The body of a chunked HTTP/1.1 answer without its framing (no chunk extensions or trailers expected).
    private func dechunk(_ body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [], rest = body
        while let crlf = rest.firstIndex(of: 0x0D), let size = Int(String(decoding: rest[..<crlf], as: UTF8.self), radix: 16),
              size > 0, rest.count >= crlf + 2 + size {
            out += rest[(crlf + 2)..<(crlf + 2 + size)]
            rest = Array(rest.dropFirst(crlf + 2 + size + 2))
        }
        return out
    }

    /// A client that asks for a coding gets a compressible answer compressed in the lane (as the full path's
    /// compressor would: the client's coding, `Vary`, no length, chunked); the next answer on the connection, of a type
    /// not compressed, goes as it came.
    func test_aCompressibleAnswerIsCompressedInTheLane() throws {
        let r = try rig()
        try r.client.writeInbound(ByteBuffer(string:
            "GET /page HTTP/1.1\r\nHost: www.example.test\r\nAccept-Encoding: gzip, deflate;q=0.5\r\n\r\n"))
        XCTAssertTrue(try text(r.origin).contains("Accept-Encoding: gzip, deflate;q=0.5"), "the origin sees the client's field")
        let page = String(repeating: "<p>lodestar</p>", count: 200)  // 3,000 bytes
        try r.origin.writeInbound(ByteBuffer(string:
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: \(page.utf8.count)\r\n\r\n" + page.prefix(1000)))
        try r.origin.writeInbound(ByteBuffer(string: String(page.dropFirst(1000))))
        let (text, body) = try answer(r.client)
        let head = lines(text)
        XCTAssertTrue(head.contains("Content-Encoding: gzip"), text)
        XCTAssertTrue(head.contains("Vary: Accept-Encoding"), text)
        XCTAssertTrue(head.contains("Transfer-Encoding: chunked"), text)
        XCTAssertFalse(head.contains { $0.hasPrefix("Content-Length") }, text)
        XCTAssertEqual(body.suffix(7), Array("\r\n0\r\n\r\n".utf8), "the last chunk ends the answer")
        let wire = dechunk(body)
        XCTAssertLessThan(wire.count, 300)
        XCTAssertEqual(String(decoding: try DeflaterTests.inflate(wire), as: UTF8.self), page)
        XCTAssertNotNil(r.pool.takeRawIdle(server: 0).map { r.pool.releaseRaw($0, reusable: true, keepAliveTimeout: nil) },
                        "the origin connection is kept")

        try r.client.writeInbound(ByteBuffer(string: "GET /logo HTTP/1.1\r\nHost: www.example.test\r\nAccept-Encoding: gzip\r\n\r\n"))
        _ = try self.text(r.origin)
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 2000\r\n\r\n"
            + String(repeating: "x", count: 2000)))
        let png = try self.text(r.client)
        XCTAssertTrue(lines(png).contains("Content-Length: 2000"), png)
        XCTAssertFalse(png.contains("Content-Encoding") || png.contains("Vary"), png)
        XCTAssertEqual(r.shared.stats.passThrough.load(ordering: .relaxed), 2, "both went through the lane")
        _ = try? r.client.finish()
    }

    /// HTTP/2 is set up on a connection already active; an activation fired after that (as `HTTP2ConnectionBounds`
    /// replayed it for swift-nio-http2's connection manager, in the edge's pipeline until the eleventh session) could
    /// reach the multiplexer behind the lane after it had activated a stream's child (a HEADERS frame in the same read
    /// as the preface), and a second activation stopped the process. The lane lets such an activation go no further;
    /// on a connection that becomes active after it was added, the activation passes.
    func test_theConnectionLaneStopsTheReplayedActivation() throws {
        let r = try rig()
        for activeFirst in [true, false] {
            let conn = EmbeddedChannel(loop: r.client.embeddedEventLoop)
            if activeFirst { _ = try conn.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait() }
            let activations = ActivationCounter()
            try conn.pipeline.syncOperations.addHandler(try makeLane(r, on: conn))
            try conn.pipeline.syncOperations.addHandler(activations)
            if activeFirst {
                conn.pipeline.fireChannelActive()  // the replay
                XCTAssertEqual(activations.count, 0, "the replayed activation went past the lane")
            } else {
                _ = try conn.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
                XCTAssertEqual(activations.count, 1, "the connection's own activation passes")
            }
            _ = try? conn.finish()
        }
        _ = try? r.client.finish()
    }

    /// The connection's inbound window is the lane's to keep at `http2.connectionWindowBytes` (the multiplexer
    /// behind would keep it at the streams' target): down to half, a WINDOW_UPDATE on stream 0 brings it back; the
    /// connection's window events go no further.
    func test_theConnectionLaneKeepsTheConnectionWindowOpen() throws {
        let r = try rig()
        let conn = EmbeddedChannel(loop: r.client.embeddedEventLoop)
        let events = EventRecorder()
        try conn.pipeline.syncOperations.addHandler(try makeLane(r, on: conn, connectionWindow: 4 << 20))
        try conn.pipeline.syncOperations.addHandler(events)
        _ = try conn.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        func window(_ size: Int) -> Int? {
            conn.pipeline.fireUserInboundEventTriggered(
                NIOHTTP2WindowUpdatedEvent(streamID: .rootStream, inboundWindowSize: size, outboundWindowSize: 65535))
            guard let f = try? conn.readOutbound(as: HTTP2Frame.self) else { return nil }
            XCTAssertEqual(f.streamID, .rootStream)
            guard case .windowUpdate(let increment) = f.payload else { XCTFail("\(f)"); return nil }
            return increment
        }
        XCTAssertEqual(window(65535 - 1000), (4 << 20) - 64535, "the first bytes open it to the target")
        XCTAssertNil(window(3 << 20), "above half the target: nothing")
        XCTAssertEqual(window(2 << 20), 2 << 20, "at half: back to the target")
        XCTAssertEqual(window(-100), (4 << 20) + 100, "below zero after a SETTINGS change")
        XCTAssertEqual(events.count, 0, "the connection's window events stop at the lane")
        _ = try? conn.finish()
        _ = try? r.client.finish()
    }

    /// Odd orders of frames and events leave the lane consistent: a close for a stream it never saw passes on, a
    /// second HEADERS on a stream it took is not a second request, a second close is ignored, and the connection's
    /// end ends every exchange in flight (their origin connections closed, not pooled half-read).
    func test_theConnectionLaneTakesOddOrdersCalmly() throws {
        let r = try rig()
        let second = try idleOrigin(in: r.pool, loop: r.client.embeddedEventLoop)
        let (conn, handedOn) = try connectionLane(r, compressing: false)
        conn.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 9, reason: .cancel))
        XCTAssertEqual(handedOn.events, 1, "a close for a stream the lane never saw goes on")
        let get = headers([(":method", "GET"), (":scheme", "http"), (":authority", "www.example.test"), (":path", "/a")])
        for id in [11, 13] {
            try conn.writeInbound(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: get, endStream: true))))
        }
        try conn.writeInbound(HTTP2Frame(streamID: 11, payload: .headers(.init(headers: get, endStream: true))))
        XCTAssertTrue(handedOn.frames.isEmpty, "a second HEADERS on a taken stream stops at the lane")
        XCTAssertEqual(r.shared.stats.passThrough.load(ordering: .relaxed), 2, "two requests, not three")
        XCTAssertTrue(try text(r.origin).hasPrefix("GET /a"))
        XCTAssertTrue(try text(second).hasPrefix("GET /a"))
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        XCTAssertFalse(try frames(conn).isEmpty, "stream 11 answered")
        conn.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 11, reason: nil))
        conn.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 11, reason: nil))
        XCTAssertTrue(r.origin.isActive, "an answered stream's origin connection is kept")
        try second.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart"))
        conn.pipeline.fireChannelInactive()
        XCTAssertFalse(second.isActive, "the half-read origin connection of stream 13 is closed with the connection")
        XCTAssertEqual(handedOn.events, 2, "only the stranger's close and the repeated one (stream 11 forgotten by then) went on")
        _ = try? conn.finish()
        _ = try? r.client.finish()
    }

    /// A stream asking for a coding: DATA frames of the compressed body, END_STREAM on the encoder's last bytes
    /// (the origin's body ended by its close).
    func test_aStreamsAnswerIsCompressedInTheLane() throws {
        let r = try rig()
        let (conn, handedOn) = try connectionLane(r, compressing: true)
        let request = headers([(":method", "GET"), (":scheme", "http"), (":authority", "www.example.test"),
                               (":path", "/data.json"), ("accept-encoding", "gzip")])
        try conn.writeInbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: request, endStream: true))))
        XCTAssertTrue(handedOn.frames.isEmpty, "the lane takes it")
        _ = try text(r.origin)
        let json = "[" + Array(repeating: "{\"edge\":\"e1\"}", count: 300).joined(separator: ",") + "]"
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"))
        try r.origin.writeInbound(ByteBuffer(string: json))
        r.origin.pipeline.fireChannelInactive()
        let out = try frames(conn).map(\.payload)
        guard case .headers(let h)? = out.first else { return XCTFail("no HEADERS: \(out)") }
        XCTAssertEqual(h.headers.first(name: "content-encoding"), "gzip")
        XCTAssertEqual(h.headers.first(name: "vary"), "Accept-Encoding")
        XCTAssertNil(h.headers.first(name: "content-length"))
        var wire: [UInt8] = []
        var ends = 0
        for case .data(let d) in out.dropFirst() {
            if case .byteBuffer(let b) = d.data { wire += b.readableBytesView }
            if d.endStream { ends += 1 }
        }
        XCTAssertEqual(ends, 1, "one END_STREAM")
        XCTAssertEqual(String(decoding: try DeflaterTests.inflate(wire), as: UTF8.self), json)
        _ = try? conn.finish()
        _ = try? r.client.finish()
    }

    func test_anUnreadableAnswerIs502AndTheOriginConnectionCloses() throws {
        let r = try rig()
        try r.client.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: www.example.test\r\n\r\n"))
        _ = try text(r.origin)
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab"))
        let answer = try text(r.client)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), answer)
        XCTAssertTrue(answer.contains("Content-Type: text/plain; charset=utf-8"), answer)
        XCTAssertTrue(answer.hasSuffix("invalid response from the origin\n"), answer)
        XCTAssertFalse(r.origin.isActive, "the origin connection is not reused")
        XCTAssertTrue(r.client.isActive, "a bodiless request's error page keeps the client connection")
        _ = try? r.client.finish()
    }

    func test_theClientsCloseEndsTheExchangeAndTheOriginConnection() throws {
        let r = try rig()
        try r.client.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: www.example.test\r\n\r\n"))
        _ = try text(r.origin)
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
        _ = try text(r.client)
        r.client.pipeline.fireChannelInactive()
        XCTAssertFalse(r.origin.isActive, "a half-relayed origin connection cannot be reused")
        XCTAssertNil(r.pool.takeRawIdle(server: 0))
    }
}

private final class Box<T> {
    var value: T
    init(_ value: T) { self.value = value }
}

/// Stands in for the stream multiplexer behind a `ConnectionLane`: the frames handed on, and for each, the verdict
/// the child of a HEADERS frame would be set up with (taken as the multiplexer's initializer takes it).
private final class HandedOn: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    let lane: ConnectionLane
    var frames: [HTTP2Frame] = []
    var verdicts: [Admission.Verdict?] = []
    var events = 0

    init(lane: ConnectionLane) { self.lane = lane }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { events += 1 }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        frames.append(frame)
        verdicts.append(lane.takeVerdict())
    }
}

private final class ActivationCounter: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    var count = 0

    func channelActive(context: ChannelHandlerContext) { count += 1 }
}

private final class EventRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    var count = 0

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { count += 1 }
}
