import XCTest
@testable import LodestarCache

final class StorabilityTests: XCTestCase {
    private func storable(
        _ method: String = "GET", req: HTTPFields = [], status: Int = 200, res: HTTPFields
    ) -> Bool {
        CachePolicy.isStorable(method: method, requestHeaders: req, status: status, responseHeaders: res)
    }

    func test_rfc9111_3_getWithMaxAgeIsStorable() {
        XCTAssertTrue(storable(res: [("Cache-Control", "max-age=60")]))
    }

    func test_rfc9111_3_onlyGetIsStorable_headAndPostAreNot() {
        XCTAssertFalse(storable("HEAD", res: [("Cache-Control", "max-age=60")]))
        XCTAssertFalse(storable("POST", res: [("Cache-Control", "max-age=60")]))
        XCTAssertFalse(storable("get", res: [("Cache-Control", "max-age=60")]), "methods are case-sensitive")
    }

    func test_rfc9111_5_2_2_5_noStoreInResponseOrRequest() {
        XCTAssertFalse(storable(res: [("Cache-Control", "max-age=60, no-store")]))
        XCTAssertFalse(storable(req: [("Cache-Control", "no-store")], res: [("Cache-Control", "max-age=60")]))
    }

    func test_rfc9111_5_2_2_3_mustUnderstandOverridesNoStoreForUnderstoodStatus() {
        XCTAssertTrue(storable(res: [("Cache-Control", "must-understand, no-store, max-age=60")]))
        XCTAssertFalse(storable(status: 299, res: [("Cache-Control", "must-understand, no-store, max-age=60")]))
    }

    func test_rfc9111_5_2_2_7_privateNotStoredBySharedCache() {
        XCTAssertFalse(storable(res: [("Cache-Control", "private, max-age=60")]))
        XCTAssertFalse(storable(res: [("Cache-Control", #"private="Set-Cookie", max-age=60"#)]))
    }

    func test_rfc9111_3_5_authorizationNeedsPublicOrSMaxAge() {
        let auth: HTTPFields = [("Authorization", "Bearer x")]
        XCTAssertFalse(storable(req: auth, res: [("Cache-Control", "max-age=60")]))
        XCTAssertTrue(storable(req: auth, res: [("Cache-Control", "public, max-age=60")]))
        XCTAssertTrue(storable(req: auth, res: [("Cache-Control", "s-maxage=60")]))
        XCTAssertTrue(storable(req: auth, res: [("Cache-Control", "must-revalidate, max-age=60")]))
    }

    func test_rfc9111_3_statusMustBeFinal_andUnderstoodOnlyUnderMustUnderstand() {
        let cc: HTTPFields = [("Cache-Control", "max-age=60")]
        for status in [100, 101, 103, 199, 304, 600, 999, -1, 0] {
            XCTAssertFalse(storable(status: status, res: cc), "\(status)")
        }
        for status in [200, 201, 299, 302, 307, 499, 500, 503, 599] {
            XCTAssertTrue(storable(status: status, res: cc), "\(status)")
        }
        // §5.2.2.3: must-understand limits storing to statuses the cache understands.
        let mu: HTTPFields = [("Cache-Control", "max-age=60, must-understand, no-store")]
        XCTAssertTrue(storable(status: 200, res: mu))
        XCTAssertFalse(storable(status: 299, res: mu))
    }

    func test_rfc9111_3_206NotStoredYet() {
        XCTAssertFalse(storable(status: 206, res: [("Cache-Control", "max-age=60")]))
    }

    func test_rfc9110_15_1_heuristicallyCacheableStatusesWithoutExplicitFreshness() {
        for status in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            XCTAssertTrue(storable(status: status, res: []), "\(status)")
        }
        for status in [201, 302, 303, 307, 500, 503] {
            XCTAssertFalse(storable(status: status, res: []), "\(status)")
        }
    }

    func test_rfc9111_3_explicitFreshnessOrPublicMakesOtherStatusesStorable() {
        XCTAssertTrue(storable(status: 302, res: [("Expires", "Sun, 06 Nov 2094 08:49:37 GMT")]))
        XCTAssertTrue(storable(status: 302, res: [("Expires", "garbage")]), "presence is enough; it is just stale")
        XCTAssertTrue(storable(status: 302, res: [("Cache-Control", "public")]))
        XCTAssertTrue(storable(status: 500, res: [("Cache-Control", "s-maxage=5")]))
    }

    func test_rfc9111_4_1_varyStarNotStored() {
        XCTAssertFalse(storable(res: [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding, *")]))
        XCTAssertTrue(storable(res: [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")]))
    }
}
