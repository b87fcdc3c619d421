import XCTest
@testable import LodestarCache

final class VaryKeyTests: XCTestCase {
    func test_rfc9111_4_1_noVaryGivesEmptyKey() {
        XCTAssertEqual(VaryKey.secondaryKey(vary: nil, requestHeaders: [("Accept", "x")]), "")
    }

    func test_rfc9110_5_3_varyFieldLinesCombinedFromResponse() {
        let res: HTTPFields = [("Vary", "Accept-Encoding"), ("vary", "Accept-Language")]
        let req: HTTPFields = [("Accept-Language", "EN-us"), ("Accept-Encoding", "br")]
        XCTAssertEqual(
            VaryKey.secondaryKey(responseHeaders: res, requestHeaders: req), "accept-encoding=2:br;accept-language=5:en-us;")
        XCTAssertNil(VaryKey.secondaryKey(responseHeaders: res + [("Vary", "*")], requestHeaders: req))
    }

    func test_rfc9111_4_1_varyStarNeverMatches() {
        XCTAssertNil(VaryKey.secondaryKey(vary: "Accept, *", requestHeaders: []))
        XCTAssertFalse(VaryKey.matches(storedVary: "*", storedRequestHeaders: [], requestHeaders: []))
    }

    func test_rfc9111_4_1_namesLowercasedSortedDeduplicated() {
        let req: HTTPFields = [("Accept-Encoding", "gzip"), ("User-Agent", "x")]
        let a = VaryKey.secondaryKey(vary: "User-Agent, accept-encoding, ACCEPT-ENCODING", requestHeaders: req)
        let b = VaryKey.secondaryKey(vary: "Accept-Encoding,User-Agent", requestHeaders: req)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a, "accept-encoding=4:gzip;user-agent=1:x;")
    }

    func test_rfc9111_4_1_valuesNormalisedCombinedAndWhitespaceCollapsed() {
        let stored: HTTPFields = [("Accept-Encoding", "GZIP ,  br"), ("accept-encoding", "deflate")]
        let fresh: HTTPFields = [("Accept-Encoding", "gzip, br, deflate")]
        XCTAssertTrue(VaryKey.matches(storedVary: "Accept-Encoding", storedRequestHeaders: stored, requestHeaders: fresh))
        let reordered: HTTPFields = [("Accept-Encoding", "br, gzip, deflate")]
        XCTAssertFalse(VaryKey.matches(storedVary: "Accept-Encoding", storedRequestHeaders: stored, requestHeaders: reordered))
    }

    func test_rfc9111_4_1_caseSensitiveFieldsKeepCase() {
        XCTAssertFalse(VaryKey.matches(
            storedVary: "X-Token", storedRequestHeaders: [("X-Token", "Abc")], requestHeaders: [("X-Token", "abc")]))
    }

    func test_rfc9111_4_1_absentDiffersFromEmpty() {
        XCTAssertTrue(VaryKey.matches(storedVary: "Cookie", storedRequestHeaders: [], requestHeaders: []))
        XCTAssertFalse(VaryKey.matches(storedVary: "Cookie", storedRequestHeaders: [], requestHeaders: [("Cookie", "")]))
    }

    func test_rfc9111_4_1_keyIsUnambiguousForHostileValues() {
        let a = VaryKey.secondaryKey(vary: "A, B", requestHeaders: [("A", "x;b=1:y"), ("B", "z")])
        let b = VaryKey.secondaryKey(vary: "A, B", requestHeaders: [("A", "x"), ("B", "1:y;b=1:z")])
        XCTAssertNotEqual(a, b)
        _ = VaryKey.secondaryKey(vary: "\u{0}, \u{FF}, ,,", requestHeaders: [("\u{0}", "\u{FF}")])
        _ = VaryKey.secondaryKey(vary: "", requestHeaders: [])
    }
}

final class InvalidationTests: XCTestCase {
    private func targets(_ method: String, _ status: Int, _ res: HTTPFields, uri: String = "/a/b?x=1") -> [String] {
        Invalidation.targets(method: method, status: status, requestURI: uri, responseHeaders: res, authority: "example.com")
    }

    func test_rfc9111_4_4_safeMethodsAndErrorsInvalidateNothing() {
        XCTAssertEqual(targets("GET", 200, []), [])
        XCTAssertEqual(targets("HEAD", 200, []), [])
        XCTAssertEqual(targets("POST", 404, []), [])
        XCTAssertEqual(targets("POST", 500, []), [])
        XCTAssertEqual(targets("POST", 100, []), [])
    }

    func test_rfc9111_4_4_unsafeMethodInvalidatesRequestURI() {
        XCTAssertEqual(targets("POST", 200, []), ["/a/b?x=1"])
        XCTAssertEqual(targets("DELETE", 302, []), ["/a/b?x=1"])
        XCTAssertEqual(targets("PURGE-ISH", 204, []), ["/a/b?x=1"])
    }

    func test_rfc9111_4_4_sameOriginLocationAndContentLocation() {
        XCTAssertEqual(
            targets("POST", 201, [("Location", "/items/7"), ("Content-Location", "https://EXAMPLE.com/items/7?v=2#frag")]),
            ["/a/b?x=1", "/items/7", "/items/7?v=2"])
        XCTAssertEqual(targets("PUT", 200, [("Location", "c")]), ["/a/b?x=1", "/a/c"])
        XCTAssertEqual(targets("PUT", 200, [("Location", "//example.com")]), ["/a/b?x=1", "/"])
    }

    func test_rfc9111_4_4_crossOriginLocationsIgnored() {
        XCTAssertEqual(
            targets("POST", 200, [("Location", "https://evil.example/x"), ("Content-Location", "//other.com/y")]),
            ["/a/b?x=1"])
        XCTAssertEqual(
            Invalidation.targets(
                method: "POST", status: 200, requestURI: "/", responseHeaders: [("Location", "http://example.com/z")],
                authority: "example.com", scheme: "https"),
            ["/"])
    }

    func test_rfc9111_4_4_duplicatesAndGarbageNeverTrap() {
        XCTAssertEqual(targets("POST", 200, [("Location", "/a/b?x=1")]), ["/a/b?x=1"])
        for junk in ["", ":", "://", "1http://example.com/", "\u{0}", "\u{FF}//", "http:", "http:x", "?", "#"] {
            _ = targets("POST", 200, [("Location", junk), ("Content-Location", junk)], uri: junk)
        }
    }
}
