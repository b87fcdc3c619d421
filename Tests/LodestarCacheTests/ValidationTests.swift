import XCTest
@testable import LodestarCache

final class ValidationTests: XCTestCase {
    let t0: Int64 = 1_700_000_000

    private func stored(_ headers: HTTPFields) -> StoredResponseInfo {
        StoredResponseInfo(status: 200, headers: headers, requestTime: t0, responseTime: t0)
    }

    private func names(_ fields: [(String, String)]) -> [String] { fields.map { "\($0.0): \($0.1)" } }

    func test_rfc9111_4_3_1_conditionalUsesETag() {
        XCTAssertEqual(names(CachePolicy.conditionalHeaders(stored: stored([("ETag", #""abc""#)]))), [#"If-None-Match: "abc""#])
        XCTAssertEqual(
            names(CachePolicy.conditionalHeaders(stored: stored([("etag", #"W/"x,y""#)]))), [#"If-None-Match: W/"x,y""#])
    }

    func test_rfc9111_4_3_1_conditionalSendsLastModifiedAlongsideETag() {
        let lm = HTTPDate.format(t0 - 100)
        let h = CachePolicy.conditionalHeaders(stored: stored([("ETag", #""a""#), ("Last-Modified", lm)]))
        XCTAssertEqual(names(h), [#"If-None-Match: "a""#, "If-Modified-Since: \(lm)"])
    }

    func test_rfc9111_4_3_1_conditionalFallsBackToDate() {
        let d = HTTPDate.format(t0)
        XCTAssertEqual(names(CachePolicy.conditionalHeaders(stored: stored([("Date", d)]))), ["If-Modified-Since: \(d)"])
        XCTAssertEqual(CachePolicy.conditionalHeaders(stored: stored([("Date", "bogus"), ("ETag", "unquoted")])).count, 0)
    }

    func test_rfc9111_4_3_2_ifNoneMatchWeakComparison() {
        let s = stored([("ETag", #"W/"v1""#)])
        XCTAssertTrue(CachePolicy.clientConditionMatches(requestHeaders: [("If-None-Match", #""v1""#)], stored: s))
        XCTAssertTrue(CachePolicy.clientConditionMatches(requestHeaders: [("If-None-Match", #""zz", W/"v1""#)], stored: s))
        XCTAssertTrue(CachePolicy.clientConditionMatches(
            requestHeaders: [("If-None-Match", #""zz""#), ("If-None-Match", #"W/"v1""#)], stored: s))
        XCTAssertFalse(CachePolicy.clientConditionMatches(requestHeaders: [("If-None-Match", #""v2""#)], stored: s))
    }

    func test_rfc9111_4_3_2_ifNoneMatchStar() {
        XCTAssertTrue(CachePolicy.clientConditionMatches(requestHeaders: [("If-None-Match", "*")], stored: stored([])))
    }

    func test_rfc9111_4_3_2_ifNoneMatchTakesPrecedenceOverIfModifiedSince() {
        let s = stored([("ETag", #""a""#), ("Last-Modified", HTTPDate.format(t0 - 100))])
        let req: HTTPFields = [("If-None-Match", #""b""#), ("If-Modified-Since", HTTPDate.format(t0))]
        XCTAssertFalse(CachePolicy.clientConditionMatches(requestHeaders: req, stored: s))
    }

    func test_rfc9111_4_3_2_ifModifiedSince() {
        let s = stored([("Last-Modified", HTTPDate.format(t0 - 100))])
        XCTAssertTrue(CachePolicy.clientConditionMatches(requestHeaders: [("If-Modified-Since", HTTPDate.format(t0 - 100))], stored: s))
        XCTAssertFalse(CachePolicy.clientConditionMatches(requestHeaders: [("If-Modified-Since", HTTPDate.format(t0 - 101))], stored: s))
        XCTAssertFalse(CachePolicy.clientConditionMatches(requestHeaders: [("If-Modified-Since", "yesterday")], stored: s))
        XCTAssertFalse(CachePolicy.clientConditionMatches(requestHeaders: [], stored: s))
        // Without Last-Modified, Date (then the receipt time) stands in.
        XCTAssertTrue(CachePolicy.clientConditionMatches(
            requestHeaders: [("If-Modified-Since", HTTPDate.format(t0))], stored: stored([])))
    }

    func test_rfc9110_8_8_3_malformedEntityTagsNeverTrap() {
        for s in ["", "W/", "W/\"", "\"", "\"a", ",,,", "W/W/\"a\"", "\u{0}\u{FF}", "\"a\"\"b\"", #""a" garbage "b""#] {
            _ = CachePolicy.clientConditionMatches(requestHeaders: [("If-None-Match", s)], stored: stored([("ETag", s)]))
            _ = CachePolicy.conditionalHeaders(stored: stored([("ETag", s)]))
        }
        XCTAssertEqual(EntityTag.parseList(#""a", W/"b,c", "d"#).map(\.opaque), ["a", "b,c"])
    }

    func test_rfc9111_3_2_updatedHeadersReplaceStoredFields() {
        let s = stored([
            ("Date", "old"), ("Cache-Control", "max-age=1"), ("Content-Length", "10"), ("ETag", #""a""#),
            ("X-Multi", "1"), ("X-Multi", "2"),
        ])
        let updated = CachePolicy.updatedHeaders(stored: s, notModified: [
            ("date", "new"), ("Cache-Control", "max-age=60"), ("Content-Length", "0"), ("X-Multi", "3"),
        ])
        XCTAssertEqual(names(updated), [
            "Content-Length: 10", #"ETag: "a""#, "date: new", "Cache-Control: max-age=60", "X-Multi: 3",
        ])
    }

    func test_rfc9111_3_1_updatedHeadersSkipHopByHopAndConnectionListed() {
        let s = stored([("X-Keep", "stored"), ("Transfer-Encoding", "chunked")])
        let updated = CachePolicy.updatedHeaders(stored: s, notModified: [
            ("Connection", "close, X-Keep"), ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "gzip"),
            ("X-Keep", "from-304"), ("Upgrade", "h2c"), ("TE", "trailers"), ("Proxy-Authenticate", "Basic"),
        ])
        XCTAssertEqual(names(updated), ["X-Keep: stored", "Transfer-Encoding: chunked"])
    }
}

final class StoreAndSelectTests: XCTestCase {
    private func stored(_ headers: HTTPFields) -> StoredResponseInfo {
        StoredResponseInfo(status: 200, headers: headers, requestTime: 0, responseTime: 0)
    }

    func test_rfc9111_3_1_headersToStoreDropHopByHop() {
        let kept = CachePolicy.headersToStore(responseHeaders: [
            ("Connection", "X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "5"), ("Content-Length", "3"),
            ("Transfer-Encoding", "chunked"), ("Proxy-Authenticate", "Basic"), ("ETag", #""a""#),
        ])
        XCTAssertEqual(kept.map(\.0), ["Content-Length", "ETag"])
    }

    func test_rfc9111_4_3_4_strongETagSelectsOnlyStrongEqual() {
        XCTAssertTrue(CachePolicy.notModifiedSelects(stored: stored([("ETag", #""a""#)]), notModified: [("ETag", #""a""#)]))
        XCTAssertFalse(CachePolicy.notModifiedSelects(stored: stored([("ETag", #"W/"a""#)]), notModified: [("ETag", #""a""#)]))
        XCTAssertFalse(CachePolicy.notModifiedSelects(stored: stored([("ETag", #""b""#)]), notModified: [("ETag", #""a""#)]))
        XCTAssertFalse(CachePolicy.notModifiedSelects(stored: stored([]), notModified: [("ETag", #""a""#)]))
    }

    func test_rfc9111_4_3_4_weakETagSelectsWeakMatch() {
        XCTAssertTrue(CachePolicy.notModifiedSelects(stored: stored([("ETag", #""a""#)]), notModified: [("ETag", #"W/"a""#)]))
    }

    func test_rfc9111_4_3_4_lastModifiedOrNoValidatorSelects() {
        let lm = HTTPDate.format(1_000_000)
        XCTAssertTrue(CachePolicy.notModifiedSelects(stored: stored([("Last-Modified", lm)]), notModified: [("Last-Modified", lm)]))
        XCTAssertFalse(CachePolicy.notModifiedSelects(
            stored: stored([("Last-Modified", lm)]), notModified: [("Last-Modified", HTTPDate.format(1))]))
        XCTAssertFalse(CachePolicy.notModifiedSelects(stored: stored([]), notModified: [("Last-Modified", "junk")]))
        XCTAssertTrue(CachePolicy.notModifiedSelects(stored: stored([("ETag", #""a""#)]), notModified: [("Date", lm)]))
    }
}
