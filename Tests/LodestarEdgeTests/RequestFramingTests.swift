import LodestarEdge
import XCTest

/// Request framing checks against smuggling (RFC 9112 §6, §11.2).
final class RequestFramingTests: XCTestCase {
    func check(_ headers: [(String, String)]) -> FramingVerdict {
        RequestFraming.check(headers: headers)
    }

    func assertRejected(_ headers: [(String, String)], file: StaticString = #filePath, line: UInt = #line) {
        guard case .reject = check(headers) else {
            return XCTFail("expected reject for \(headers), got \(check(headers))", file: file, line: line)
        }
    }

    func test_validFramingsAreAccepted() {
        XCTAssertEqual(check([("Host", "a.test"), ("Accept", "*/*")]), .ok(.none))
        XCTAssertEqual(check([]), .ok(.none))
        XCTAssertEqual(check([("Host", "a.test"), ("Content-Length", "42")]), .ok(.length(42)))
        XCTAssertEqual(check([("content-length", "0")]), .ok(.length(0)))
        XCTAssertEqual(check([("Content-Length", " 17\t")]), .ok(.length(17)), "surrounding whitespace is OWS")
        XCTAssertEqual(check([("Content-Length", "999999999999999999")]), .ok(.length(999_999_999_999_999_999)))
        XCTAssertEqual(check([("Content-Length", "007")]), .ok(.length(7)))
        XCTAssertEqual(check([("Transfer-Encoding", "chunked")]), .ok(.chunked))
        XCTAssertEqual(check([("TRANSFER-ENCODING", "Chunked")]), .ok(.chunked))
        XCTAssertEqual(check([("transfer-encoding", " \tCHUNKED \t")]), .ok(.chunked))
        XCTAssertEqual(check([("X-Weird_Name.1!#$%&'*+-^`|~", "v"), ("Via", "1.1 a, 1.1 b")]), .ok(.none))
    }

    func test_contentLengthWithTransferEncoding() {
        assertRejected([("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
        assertRejected([("Transfer-Encoding", "chunked"), ("content-length", "0")])
    }

    func test_duplicateOrListContentLength() {
        assertRejected([("Content-Length", "5"), ("Content-Length", "5")])
        assertRejected([("Content-Length", "5"), ("content-length", "6")])
        assertRejected([("Content-Length", "5, 5")])
        assertRejected([("Content-Length", "5,5")])
    }

    func test_badContentLengthValues() {
        for value in ["", " ", "-1", "+1", "1.0", "0x10", "1 2", "1e3", "abc", "１２", "1234567890123456789", "5;x"] {
            assertRejected([("Content-Length", value)])
        }
    }

    func test_transferEncodingOtherThanChunked() {
        for value in ["chunked, chunked", "xchunked", "chunkedx", "chunked\t x", "identity", "gzip, chunked", "chunked, gzip",
                      "chunked;q=1", "chunk ed", "", " ", "\"chunked\"", "chunked\u{0B}", "chunkéd"] {
            assertRejected([("Transfer-Encoding", value)])
        }
    }

    func test_duplicateTransferEncoding() {
        assertRejected([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")])
        assertRejected([("Transfer-Encoding", "chunked"), ("transfer-encoding", "chunked")])
    }

    func test_invalidHeaderNames() {
        assertRejected([("Transfer-Encoding ", "chunked")])
        assertRejected([(" Transfer-Encoding", "chunked")])
        assertRejected([("Content-Length:", "5")])
        assertRejected([("Host:evil", "x")])
        assertRejected([("", "x")])
        assertRejected([("X Y", "x")])
        assertRejected([("X\tY", "x")])
        assertRejected([("Héader", "x")])
        assertRejected([("X-A\r\nTransfer-Encoding", "chunked")])
        assertRejected([("X(y)", "1")])
        assertRejected([("X\u{0}", "1")])
    }

    func test_invalidHeaderValues() {
        assertRejected([("X-A", "a\r\nTransfer-Encoding: chunked")])
        assertRejected([("X-A", "a\nb")])
        assertRejected([("X-A", "a\rb")])
        assertRejected([("X-A", "a\u{0}b")])
        XCTAssertEqual(check([("X-A", "tab\tand ünïcode ok")]), .ok(.none))
    }
}
