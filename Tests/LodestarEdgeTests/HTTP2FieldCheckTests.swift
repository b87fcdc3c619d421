import LodestarEdge
import XCTest

/// RFC 9113 §8.2–8.3 checks of received header sections, field by field (`HTTP2FieldCheck`).
final class HTTP2FieldCheckTests: XCTestCase {
    private let get = [(":method", "GET"), (":scheme", "https"), (":authority", "a.test"), (":path", "/x?y=1")]

    private func problem(_ fields: [(String, String)], _ section: HTTP2FieldCheck.Section = .request)
        -> HTTP2FieldCheck.Problem? {
        var check = HTTP2FieldCheck(section)
        for (n, v) in fields {
            if let p = check.check(name: n, value: v) { return p }
        }
        return check.finish()
    }

    func test_wellFormedSectionsPass() {
        XCTAssertNil(problem(get))
        XCTAssertNil(problem(get + [("accept", "*/*"), ("te", "trailers"), ("x-v", "a b\tc \u{e9}"), ("!#$%&'*+-.^_`|~09az", "")]))
        XCTAssertNil(problem([(":method", "CONNECT"), (":authority", "a.test:443")]), "CONNECT")
        XCTAssertNil(problem([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/ws"),
                              (":authority", "a.test")]), "extended CONNECT (RFC 8441)")
        XCTAssertNil(problem([("x-checksum", "1"), ("grpc-status", "0")], .trailers))
        XCTAssertNil(problem([], .trailers))
    }

    func test_namesMustBeLowerCaseTokens() {
        XCTAssertEqual(problem(get + [("Accept", "*/*")]), .badName("Accept"))
        XCTAssertEqual(problem(get + [("a b", "1")]), .badName("a b"))
        XCTAssertEqual(problem(get + [("a:b", "1")]), .badName("a:b"))
        XCTAssertEqual(problem(get + [("", "1")]), .badName(""))
        XCTAssertEqual(problem(get + [("caf\u{e9}", "1")]), .badName("caf\u{e9}"))
        XCTAssertEqual(problem([(":Method", "GET")]), .misplacedPseudoHeader(":Method"))
    }

    func test_valuesMayNotHoldNULOrLineBreaks() {
        for bad in ["a\rb", "a\nb", "a\u{0}b", "\r\n"] {
            XCTAssertEqual(problem(get + [("x-a", bad)]), .badValue("x-a"), bad.debugDescription)
        }
        for bad in ["/a b", "/a\tb", "/\u{7f}", "/\u{1}"] {
            XCTAssertEqual(problem([(":method", "GET"), (":scheme", "https"), (":path", bad)]), .badValue(":path"),
                           "a pseudo-header value has no space or control character: \(bad.debugDescription)")
        }
        XCTAssertEqual(problem([(":method", "G ET")]), .badValue(":method"))
    }

    func test_connectionSpecificFieldsAreRefused() {
        for name in ["connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade"] {
            XCTAssertEqual(problem(get + [(name, "x")]), .connectionSpecific(name))
            XCTAssertEqual(problem([(name, "x")], .trailers), .connectionSpecific(name), "in trailers too")
        }
        XCTAssertEqual(problem(get + [("te", "gzip")]), .connectionSpecific("te"))
        XCTAssertEqual(problem(get + [("te", "trailers, gzip")]), .connectionSpecific("te"))
        XCTAssertNil(problem(get + [("tea", "gzip"), ("upgrades", "1"), ("connections", "1")]), "only those names")
    }

    func test_pseudoHeadersComeFirstOnceAndOnlyKnownOnes() {
        XCTAssertEqual(problem([(":method", "GET"), ("accept", "*/*"), (":path", "/")]), .misplacedPseudoHeader(":path"))
        XCTAssertEqual(problem(get + [(":method", "GET")]), .misplacedPseudoHeader(":method"), "repeated")
        XCTAssertEqual(problem(get + [(":foo", "1")]), .misplacedPseudoHeader(":foo"), "unknown")
        XCTAssertEqual(problem(get + [(":status", "200")]), .misplacedPseudoHeader(":status"), "a response's")
        XCTAssertEqual(problem([(":path", "/")], .trailers), .misplacedPseudoHeader(":path"), "none in trailers")
        XCTAssertEqual(problem(get + [(":protocol", "websocket")]), .misplacedPseudoHeader(":protocol"),
                       ":protocol only with CONNECT")
        XCTAssertEqual(problem([(":method", "CONNECT"), (":authority", "a.test:443"), (":path", "/")]),
                       .misplacedPseudoHeader(":path"), "plain CONNECT has no :path")
    }

    func test_requiredPseudoHeaders() {
        XCTAssertEqual(problem([(":method", "GET"), (":scheme", "https")]), .missingPseudoHeaders, "no :path")
        XCTAssertEqual(problem([(":scheme", "https"), (":path", "/")]), .missingPseudoHeaders, "no :method")
        XCTAssertEqual(problem([(":method", "GET"), (":path", "/")]), .missingPseudoHeaders, "no :scheme")
        XCTAssertEqual(problem([(":method", "GET"), (":scheme", "https"), (":path", "")]), .missingPseudoHeaders, "empty :path")
        XCTAssertEqual(problem([(":method", "CONNECT")]), .missingPseudoHeaders, "CONNECT needs :authority")
        XCTAssertEqual(problem([]), .missingPseudoHeaders)
    }

    func test_problemsReadWell() {
        XCTAssertEqual(HTTP2FieldCheck.Problem.badName("A").description, "invalid field name \"A\"")
        XCTAssertEqual(HTTP2FieldCheck.Problem.connectionSpecific("te").description, "connection-specific field te")
    }
}
