import XCTest
@testable import LodestarCache

final class DecisionTests: XCTestCase {
    let t0: Int64 = 1_700_000_000

    /// A response received at t0 with Date t0 and the given Cache-Control.
    private func stored(_ cc: String, extra: HTTPFields = [], status: Int = 200) -> StoredResponseInfo {
        StoredResponseInfo(
            status: status, headers: [("Date", HTTPDate.format(t0)), ("Cache-Control", cc)] + extra,
            requestTime: t0, responseTime: t0)
    }

    private func decide(_ s: StoredResponseInfo, at offset: Int64, req: HTTPFields = []) -> CacheDecision {
        CachePolicy.decide(requestHeaders: req, stored: s, now: t0 + offset)
    }

    func test_rfc9111_4_2_freshResponseServedWithAge() {
        XCTAssertEqual(decide(stored("max-age=60"), at: 10), .fresh(age: 10))
    }

    func test_rfc9111_4_2_staleResponseRevalidated() {
        XCTAssertEqual(decide(stored("max-age=60"), at: 60), .revalidate)
        XCTAssertEqual(decide(stored("max-age=60"), at: 600), .revalidate)
    }

    func test_rfc9111_5_2_2_4_responseNoCacheAlwaysRevalidates() {
        XCTAssertEqual(decide(stored("max-age=60, no-cache"), at: 1), .revalidate)
        XCTAssertEqual(decide(stored(#"max-age=60, no-cache="Set-Cookie""#), at: 1), .revalidate)
    }

    func test_rfc9111_5_2_1_4_requestNoCacheAndPragmaRevalidate() {
        XCTAssertEqual(decide(stored("max-age=60"), at: 1, req: [("Cache-Control", "no-cache")]), .revalidate)
        XCTAssertEqual(decide(stored("max-age=60"), at: 1, req: [("Pragma", "no-cache")]), .revalidate)
    }

    func test_rfc9111_5_2_1_1_requestMaxAgeUnmet() {
        XCTAssertEqual(decide(stored("max-age=600"), at: 30, req: [("Cache-Control", "max-age=10")]), .revalidate)
        XCTAssertEqual(decide(stored("max-age=600"), at: 5, req: [("Cache-Control", "max-age=10")]), .fresh(age: 5))
    }

    func test_rfc9111_5_2_1_3_requestMinFreshUnmet() {
        XCTAssertEqual(decide(stored("max-age=100"), at: 50, req: [("Cache-Control", "min-fresh=60")]), .revalidate)
        XCTAssertEqual(decide(stored("max-age=100"), at: 30, req: [("Cache-Control", "min-fresh=60")]), .fresh(age: 30))
    }

    func test_rfc9111_5_2_1_2_maxStaleAllowsStale() {
        XCTAssertEqual(decide(stored("max-age=60"), at: 100, req: [("Cache-Control", "max-stale")]), .staleAllowed(age: 100))
        XCTAssertEqual(decide(stored("max-age=60"), at: 100, req: [("Cache-Control", "max-stale=40")]), .staleAllowed(age: 100))
        XCTAssertEqual(decide(stored("max-age=60"), at: 101, req: [("Cache-Control", "max-stale=40")]), .revalidate)
    }

    func test_rfc9111_4_2_4_mustRevalidateForbidsStale() {
        XCTAssertEqual(decide(stored("max-age=60, must-revalidate"), at: 100, req: [("Cache-Control", "max-stale")]), .revalidate)
        XCTAssertEqual(decide(stored("max-age=60, must-revalidate"), at: 10), .fresh(age: 10))
    }

    func test_rfc9111_5_2_2_8_proxyRevalidateForbidsStaleInSharedCache() {
        XCTAssertEqual(decide(stored("max-age=60, proxy-revalidate"), at: 100, req: [("Cache-Control", "max-stale")]), .revalidate)
    }

    func test_rfc9111_5_2_2_10_sMaxAgeImpliesProxyRevalidate() {
        XCTAssertEqual(
            decide(stored("s-maxage=60, stale-while-revalidate=100"), at: 100, req: [("Cache-Control", "max-stale")]),
            .revalidate)
    }

    func test_rfc5861_3_staleWhileRevalidateWindow() {
        let s = stored("max-age=60, stale-while-revalidate=30")
        XCTAssertEqual(decide(s, at: 70), .staleWhileRevalidate(age: 70))
        XCTAssertEqual(decide(s, at: 90), .staleWhileRevalidate(age: 90))
        XCTAssertEqual(decide(s, at: 91), .revalidate)
    }

    func test_rfc9111_5_2_1_7_onlyIfCached() {
        let s = stored("max-age=60")
        XCTAssertEqual(decide(s, at: 10, req: [("Cache-Control", "only-if-cached")]), .fresh(age: 10))
        XCTAssertEqual(decide(s, at: 100, req: [("Cache-Control", "only-if-cached")]), .onlyIfCachedMiss)
        XCTAssertEqual(
            decide(s, at: 100, req: [("Cache-Control", "only-if-cached, max-stale")]), .staleAllowed(age: 100))
    }

    func test_rfc9111_4_2_heuristicFreshnessUsedInDecision() {
        let s = stored("", extra: [("Last-Modified", HTTPDate.format(t0 - 1_000))])
        XCTAssertEqual(decide(s, at: 99), .fresh(age: 99))
        XCTAssertEqual(decide(s, at: 100), .revalidate)
    }

    func test_rfc5861_4_staleIfError() {
        let s = stored("max-age=60, stale-if-error=100")
        XCTAssertTrue(CachePolicy.canServeStaleOnError(stored: s, now: t0 + 30))
        XCTAssertTrue(CachePolicy.canServeStaleOnError(stored: s, now: t0 + 160))
        XCTAssertFalse(CachePolicy.canServeStaleOnError(stored: s, now: t0 + 161))
        XCTAssertFalse(CachePolicy.canServeStaleOnError(stored: stored("max-age=60"), now: t0 + 61))
        XCTAssertTrue(CachePolicy.canServeStaleOnError(
            stored: stored("max-age=60"), now: t0 + 61, requestHeaders: [("Cache-Control", "stale-if-error=5")]))
    }

    func test_rfc5861_4_operatorGraceWidensTheWindowButNeverOverridesRevalidation() {
        XCTAssertFalse(CachePolicy.canServeStaleOnError(stored: stored("max-age=60"), now: t0 + 61))
        XCTAssertTrue(CachePolicy.canServeStaleOnError(stored: stored("max-age=60"), now: t0 + 90, graceSeconds: 30))
        XCTAssertFalse(CachePolicy.canServeStaleOnError(stored: stored("max-age=60"), now: t0 + 91, graceSeconds: 30))
        // The longer of the directive and the grace applies.
        XCTAssertTrue(CachePolicy.canServeStaleOnError(stored: stored("max-age=60, stale-if-error=100"), now: t0 + 150,
                                                       graceSeconds: 30))
        for forbidding in ["must-revalidate", "proxy-revalidate", "s-maxage=60", "no-cache"] {
            XCTAssertFalse(CachePolicy.canServeStaleOnError(stored: stored("max-age=60, \(forbidding)"), now: t0 + 70,
                                                            graceSeconds: 3600), forbidding)
        }
    }

    func test_rfc9111_4_2_4_staleIfErrorBlockedByMustRevalidate() {
        let s = stored("max-age=60, stale-if-error=100, must-revalidate")
        XCTAssertFalse(CachePolicy.canServeStaleOnError(stored: s, now: t0 + 70))
    }

    func test_rfc9111_4_2_garbageHeadersNeverTrap() {
        let junk: [String] = ["", "\u{0}", "max-age=99999999999999999999", "max-stale=-1", #"""#, "\u{FF}\u{FE}", ",,,="]
        for a in junk {
            for b in junk {
                let s = StoredResponseInfo(
                    status: 200, headers: [("Cache-Control", a), ("Age", b), ("Date", b), ("Expires", a)],
                    requestTime: Int64.min, responseTime: Int64.max)
                _ = CachePolicy.decide(requestHeaders: [("Cache-Control", b), ("Pragma", a)], stored: s, now: Int64.min)
                _ = CachePolicy.canServeStaleOnError(stored: s, now: Int64.max)
            }
        }
    }
}
