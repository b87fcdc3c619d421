import Foundation
import XCTest

/// Request smuggling: every request whose framing two HTTP implementations could read differently gets a 400, the
/// connection is closed, and the origin never sees a request.
final class EdgeSmugglingTests: EdgeTestCase {
    static let host = "Host: www.example.test\r\n"

    /// Raw requests, one per case (written in one send on a fresh connection).
    static let cases: [(name: String, raw: String)] = [
        ("CL+TE", "POST /echo HTTP/1.1\r\n\(host)Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"),
        ("TE+CL", "POST /echo HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n"
            + "0\r\n\r\nGET /smuggled HTTP/1.1\r\nX: y\r\n\r\n"),
        ("two Content-Length, equal", "POST /echo HTTP/1.1\r\n\(host)Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
        ("two Content-Length, different", "POST /echo HTTP/1.1\r\n\(host)Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        ("Content-Length: abc", "POST /echo HTTP/1.1\r\n\(host)Content-Length: abc\r\n\r\nhello"),
        ("Content-Length: -1", "POST /echo HTTP/1.1\r\n\(host)Content-Length: -1\r\n\r\nhello"),
        ("Content-Length: 1 2", "POST /echo HTTP/1.1\r\n\(host)Content-Length: 1 2\r\n\r\nhello"),
        ("Content-Length: +5", "POST /echo HTTP/1.1\r\n\(host)Content-Length: +5\r\n\r\nhello"),
        ("Transfer-Encoding: xchunked", "POST /echo HTTP/1.1\r\n\(host)Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
        ("Transfer-Encoding: chunked, chunked", "POST /echo HTTP/1.1\r\n\(host)Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
        ("Transfer-Encoding: gzip, chunked", "POST /echo HTTP/1.1\r\n\(host)Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("Transfer-Encoding : chunked (space before colon)",
         "POST /echo HTTP/1.1\r\n\(host)Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
        ("folded Transfer-Encoding continuation line",
         "POST /echo HTTP/1.1\r\n\(host)Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n"),
        ("folded empty Transfer-Encoding", "POST /echo HTTP/1.1\r\n\(host)Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
        ("Transfer-Encoding: chunked\\x0b", "POST /echo HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\u{0B}\r\n\r\n0\r\n\r\n"),
        ("bare LF ending a header line", "GET /echo HTTP/1.1\r\nHost: www.example.test\nX-A: 1\r\n\r\n"),
        ("bare LF everywhere", "GET /echo HTTP/1.1\nHost: www.example.test\n\n"),
        ("bare CR inside a header value", "GET /echo HTTP/1.1\r\n\(host)X-Foo: a\rb\r\n\r\n"),
    ]

    func test_smuggling_ambiguousFramingGets400AndClose() throws {
        let origin = try startOrigin("o1")
        // Default proxy settings (compression on, as in production). A crash shows at once instead of after a
        // symbolicated backtrace; the edge is restarted so the remaining cases still run.
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()], environment: ["SWIFT_BACKTRACE": "enable=no"])
        var crashedOn = [String]()
        var outcomes = [String]()
        for (name, raw) in Self.cases {
            if !edge.isRunning { try edge.start() }
            let c = try EdgeConnection(port: edge.port)
            try c.send(Data(raw.utf8))
            let status = assertRefusedAndClosed(c, statuses: [400], name)
            let seen = try origin.counters()
            XCTAssertEqual(seen.count, 0, "\(name): the origin saw a request: \(seen.requests)")
            if eventually(timeout: 0.15, { !edge.isRunning }) != nil {
                crashedOn.append(name)
                XCTFail("\(name): the edge process died: "
                        + (edge.log.split(separator: "\n").first { $0.contains("Fatal error") }.map(String.init) ?? "(no message)"))
            }
            outcomes.append("\(name): \(status.map(String.init) ?? "no answer")\(crashedOn.last == name ? " (edge crashed)" : "")")
        }
        print("EDGE-FIGURES: smuggling cases:\n  " + outcomes.joined(separator: "\n  "))
        XCTAssertEqual(crashedOn, [], "requests that killed the edge")
        // The edge still forwards ordinary requests.
        if !edge.isRunning { try edge.start() }
        let ok = try EdgeHTTP.get(port: edge.port, "/echo")
        XCTAssertEqual(ok.status, 200, "\(ok)")
        XCTAssertEqual(try origin.count(), 1)
    }

    /// The same checks with compression off: the framing rules themselves, independent of the response compressor.
    func test_smuggling_withoutCompression() throws {
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()],
                                 proxy: ["compression": ["enabled": false]], environment: ["SWIFT_BACKTRACE": "enable=no"])
        for (name, raw) in Self.cases {
            if !edge.isRunning { try edge.start() }
            let c = try EdgeConnection(port: edge.port)
            try c.send(Data(raw.utf8))
            _ = assertRefusedAndClosed(c, statuses: [400], name)
            let seen = try origin.counters()
            XCTAssertEqual(seen.count, 0, "\(name): the origin saw a request: \(seen.requests)")
        }
        XCTAssertTrue(edge.isRunning, "the edge died")
    }
}
