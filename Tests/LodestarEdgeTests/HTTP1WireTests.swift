import LodestarEdge
import XCTest

/// The pass-through lane's strict HTTP/1.1 reader, response framing and chunk scanner.
final class HTTP1WireTests: XCTestCase {
    private let limits = HTTP1Wire.Limits(maxBytes: 1024, maxFields: 8)

    private func request(_ text: String, limits: HTTP1Wire.Limits? = nil) -> HTTP1Wire.Read<HTTP1Wire.Request> {
        Array(text.utf8).withUnsafeBytes { HTTP1Wire.readRequest($0, limits: limits ?? self.limits) }
    }

    private func response(_ text: String) -> HTTP1Wire.Read<HTTP1Wire.Response> {
        Array(text.utf8).withUnsafeBytes { HTTP1Wire.readResponse($0, limits: limits) }
    }

    func test_aPlainRequestHeadIsRead() throws {
        let text = "GET /a/b?c=d HTTP/1.1\r\nHost: www.example.test\r\nX-Empty:\r\nAccept:  */*  \r\n\r\nNEXT"
        guard case .head(let h) = request(text) else { return XCTFail("not read") }
        XCTAssertEqual(h.method, "GET")
        XCTAssertEqual(h.target, "/a/b?c=d")
        XCTAssertEqual(h.fields.map { $0.name }, ["Host", "X-Empty", "Accept"])
        XCTAssertEqual(h.fields.map { $0.value }, ["www.example.test", "", "*/*"], "OWS trimmed on both sides")
        XCTAssertEqual(h.length, text.utf8.count - 4, "the head ends at the blank line; what follows is the next request")
    }

    func test_everyPrefixOfAHeadIsIncomplete() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        for n in 0..<text.utf8.count {
            let prefix = String(decoding: Array(text.utf8)[..<n], as: UTF8.self)
            guard case .incomplete = request(prefix) else { return XCTFail("prefix of \(n) bytes") }
        }
    }

    /// Whatever is not the plainest form goes to the full parser, which answers or refuses it.
    func test_unusualRequestsAreLeftToTheFullParser() {
        let unusual = [
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",  // another version
            "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",  // absolute form
            "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",  // asterisk form
            "GET / HTTP/1.1\nHost: a\r\n\r\n",  // bare LF
            "GET / HTTP/1.1\r\nHost: a\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n",  // bare CR
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",  // space before the colon
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  // obs-fold
            "GET / HTTP/1.1\r\nX: a\u{0}b\r\nHost: a\r\n\r\n",  // NUL
            "GET / HTTP/1.1\r\nX: a\u{7f}\r\nHost: a\r\n\r\n",  // DEL
            "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",  // two spaces
            "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
            "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",  // not a token
            "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
            "GET / HTTP/1.1\r\n" + (1...9).map { "X\($0): v\r\n" }.joined() + "\r\n",  // over the field count
            "GET /" + String(repeating: "a", count: 1100) + " HTTP/1.1\r\n\r\n",  // over the byte limit
        ]
        for text in unusual {
            guard case .unusual = request(text) else { return XCTFail("taken: \(text.debugDescription)") }
        }
        // Over the limit even before a line ends.
        guard case .unusual = request(String(repeating: "a", count: 1100)) else { return XCTFail("no end, no limit") }
    }

    /// Reads a response head and its facts (nil: not read, or facts refused).
    private func factsOf(_ text: String, isHEAD: Bool = false) -> ResponseFacts? {
        Array(text.utf8).withUnsafeBytes { b in
            guard case .head(let r) = HTTP1Wire.readResponse(b, limits: limits) else { return nil }
            return ResponseFacts(r, bytes: b, isHEAD: isHEAD)
        }
    }

    func test_responseHeadsAndTheirFraming() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=4\r\nX-A:  b c \r\n\r\nhello"
        try Array(text.utf8).withUnsafeBytes { b in
            guard case .head(let r) = HTTP1Wire.readResponse(b, limits: limits) else { return XCTFail("not read") }
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.minorVersion, 1)
            XCTAssertEqual(r.length, text.utf8.count - 5)
            XCTAssertEqual(r.fields.map { HTTP1Wire.string(b, $0.name) }, ["Content-Length", "Keep-Alive", "X-A"])
            XCTAssertEqual(r.fields.map { HTTP1Wire.string(b, $0.value) }, ["5", "timeout=4", "b c"])
            XCTAssertEqual(HTTP1Wire.string(b, r.fields[2].line), "X-A:  b c ", "the line as sent")
            let facts = try XCTUnwrap(ResponseFacts(r, bytes: b, isHEAD: false))
            XCTAssertEqual(facts.framing, .length(5))
            XCTAssertTrue(facts.reusable)
            XCTAssertEqual(facts.keepAliveTimeout, 4)
            XCTAssertEqual(try XCTUnwrap(ResponseFacts(r, bytes: b, isHEAD: true)).framing, .none, "HEAD has no body")
        }
        XCTAssertEqual(factsOf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing, .chunked)
        XCTAssertEqual(factsOf("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")?.framing, .close,
                       "a coding the lane does not undo: until close")
        let both = factsOf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
        XCTAssertEqual(both?.framing, .chunked)
        XCTAssertEqual(both?.reusable, false, "a length beside a coding: the connection is not kept")
        XCTAssertEqual(factsOf("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n")?.framing, .close)
        XCTAssertEqual(factsOf("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n")?.reusable, false)
        XCTAssertEqual(factsOf("HTTP/1.1 204 No Content\r\n\r\n")?.framing, ResponseFraming.none)
        XCTAssertEqual(factsOf("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")?.framing, ResponseFraming.none)
        XCTAssertEqual(factsOf("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n")?.reusable, false)
        XCTAssertEqual(factsOf("HTTP/1.1 200 OK\r\nConnection: CLOSE\r\nContent-Length: 0\r\n\r\n")?.reusable, false)
        XCTAssertEqual(factsOf("HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")?.reusable, true)
        XCTAssertEqual(factsOf("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")?.reusable, false)
        XCTAssertEqual(factsOf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n")?.framing, .length(2))
        XCTAssertNil(factsOf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"), "contradictory lengths")
        XCTAssertNil(factsOf("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"))
        XCTAssertNil(factsOf("HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n"))
        XCTAssertNil(factsOf("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"))
        XCTAssertNotNil(factsOf("HTTP/1.1 404\r\n\r\n"), "a status without reason")
        for bad in ["HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n",
                    "HTTP/1.1 200 OK\nX: y\r\n\r\n", "ICY 200 OK\r\n\r\n"] {
            guard case .unusual = response(bad) else { return XCTFail("taken: \(bad.debugDescription)") }
        }
    }

    private func scanAll(_ text: String, split: Int? = nil) -> (used: Int, done: Bool)? {
        var scanner = ChunkedScanner()
        let bytes = Array(text.utf8)
        var used = 0
        var start = 0
        let step = split ?? bytes.count
        while start < bytes.count && !scanner.isDone {
            let end = min(bytes.count, start + step)
            guard let n = bytes[start..<end].withUnsafeBytes({ scanner.scan($0) }) else { return nil }
            used += n
            start = end
        }
        return (used, scanner.isDone)
    }

    func test_chunkedBodiesEndWhereTheyEnd() {
        let body = "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n"
        for split in [1, 2, 3, 7, 1000] {
            let r = scanAll(body + "NEXT", split: split)
            XCTAssertEqual(r?.done, true, "split \(split)")
            XCTAssertEqual(r?.used, body.utf8.count, "split \(split): the bytes after the body are not the body's")
        }
        var counted = ChunkedScanner()
        _ = Array(body.utf8).withUnsafeBytes { counted.scan($0) }
        XCTAssertEqual(counted.dataBytes, 5 + 26, "the data without its framing")
        XCTAssertEqual(scanAll("0\r\n\r\n")?.done, true)
        XCTAssertEqual(scanAll("A\r\n0123456789\r\n")?.done, false, "no last chunk yet")
        XCTAssertEqual(scanAll("a\r\n0123456789\r\n0\r\n\r\n")?.done, true, "lower-case hex")
        for bad in ["\r\n", "g\r\n", "5\nhello\r\n", "5\r\nhelloX\r\n", "5\r\nhello\n", "0\r\nX: y\n\r\n",
                    "1234567890abcdef0\r\n", "5 \u{0}\r\nhello\r\n"] {
            XCTAssertNil(scanAll(bad), bad.debugDescription)
        }
    }

    /// The trailer section is handed over whatever the reads' split, and its valid field lines are read.
    func test_theTrailerSectionIsHandedOverAndRead() {
        let body = "3\r\nabc\r\n0\r\nServer-Timing: db;dur=53 \r\nbad line\r\nX-Empty:\r\nBad\u{1}: v\r\nCtl: a\u{7}b\r\n\r\n"
        let section = Array(body.utf8).dropFirst(Array("3\r\nabc\r\n0\r\n".utf8).count)
        for split in [1, 2, 3, 7, 1000] {
            var scanner = ChunkedScanner()
            let bytes = Array((body + "NEXT").utf8)
            var data: [UInt8] = [], trailer: [UInt8] = []
            var start = 0
            while start < bytes.count && !scanner.isDone {
                let end = min(bytes.count, start + split)
                let n = bytes[start..<end].withUnsafeBytes { b in
                    scanner.scan(b, data: { data += b[$0] }, trailer: { trailer += b[$0] })
                }
                XCTAssertNotNil(n, "split \(split)")
                start = end
            }
            XCTAssertTrue(scanner.isDone)
            XCTAssertEqual(String(decoding: data, as: UTF8.self), "abc", "split \(split)")
            XCTAssertEqual(trailer, Array(section), "split \(split): the section with its empty line, nothing after it")
        }
        let fields = ChunkedScanner.trailerFields(Array(section))
        XCTAssertEqual(fields.map(\.name), ["Server-Timing", "X-Empty"], "invalid lines left out")
        XCTAssertEqual(fields.first?.value, "db;dur=53")
        XCTAssertEqual(fields.last?.value, "")
        XCTAssertTrue(ChunkedScanner.trailerFields(Array("\r\n".utf8)).isEmpty, "no trailers")
        var none = ChunkedScanner()
        var handed = 0
        _ = Array("0\r\n\r\n".utf8).withUnsafeBytes { none.scan($0, data: { _ in }, trailer: { handed += $0.count }) }
        XCTAssertEqual(handed, 2, "just the empty line")
    }
}
