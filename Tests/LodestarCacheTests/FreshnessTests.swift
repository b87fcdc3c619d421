import XCTest
@testable import LodestarCache

final class FreshnessTests: XCTestCase {
    let t0: Int64 = 1_700_000_000

    private func lifetime(_ res: HTTPFields, status: Int = 200) -> Int64 {
        CachePolicy.freshnessLifetime(status: status, responseHeaders: res, responseTime: t0)
    }

    func test_rfc9111_4_2_1_sMaxAgeOverMaxAgeOverExpires() {
        let expires = HTTPDate.format(t0 + 500)
        let date = HTTPDate.format(t0)
        XCTAssertEqual(lifetime([("Cache-Control", "max-age=60, s-maxage=30"), ("Expires", expires), ("Date", date)]), 30)
        XCTAssertEqual(lifetime([("Cache-Control", "max-age=60"), ("Expires", expires), ("Date", date)]), 60)
        XCTAssertEqual(lifetime([("Expires", expires), ("Date", date)]), 500)
    }

    func test_rfc9111_4_2_1_expiresMinusDateUsesResponseTimeWithoutDate() {
        XCTAssertEqual(lifetime([("Expires", HTTPDate.format(t0 + 90))]), 90)
        XCTAssertEqual(lifetime([("Expires", HTTPDate.format(t0 + 90)), ("Date", "nonsense")]), 90)
    }

    func test_rfc9111_5_3_invalidExpiresMeansAlreadyExpired() {
        XCTAssertEqual(lifetime([("Expires", "0"), ("Last-Modified", HTTPDate.format(t0 - 100_000))]), 0)
        XCTAssertEqual(lifetime([("Expires", "")]), 0)
        XCTAssertEqual(lifetime([("Expires", HTTPDate.format(t0 - 10)), ("Date", HTTPDate.format(t0))]), 0)
    }

    func test_rfc9111_4_2_2_heuristicTenPercentOfLastModified() {
        let res: HTTPFields = [("Date", HTTPDate.format(t0)), ("Last-Modified", HTTPDate.format(t0 - 10_000))]
        XCTAssertEqual(lifetime(res), 1_000)
    }

    func test_rfc9111_4_2_2_heuristicCappedAtOneDay() {
        let res: HTTPFields = [("Date", HTTPDate.format(t0)), ("Last-Modified", HTTPDate.format(0))]
        XCTAssertEqual(lifetime(res), 86_400)
    }

    func test_rfc9111_4_2_2_heuristicOnlyForCacheableStatusOrPublic() {
        let res: HTTPFields = [("Date", HTTPDate.format(t0)), ("Last-Modified", HTTPDate.format(t0 - 10_000))]
        XCTAssertEqual(lifetime(res, status: 302), 0)
        XCTAssertEqual(lifetime(res + [("Cache-Control", "public")], status: 302), 1_000)
        XCTAssertEqual(lifetime(res + [("Last-Modified", "x")], status: 404), 1_000, "first Last-Modified used")
    }

    func test_rfc9111_4_2_2_noHeuristicWhenExplicitFreshness() {
        let res: HTTPFields = [
            ("Date", HTTPDate.format(t0)), ("Last-Modified", HTTPDate.format(t0 - 10_000)), ("Cache-Control", "max-age=0"),
        ]
        XCTAssertEqual(lifetime(res), 0)
    }

    func test_rfc9111_4_2_2_lastModifiedInFutureGivesZero() {
        let res: HTTPFields = [("Date", HTTPDate.format(t0)), ("Last-Modified", HTTPDate.format(t0 + 10_000))]
        XCTAssertEqual(lifetime(res), 0)
    }

    func test_rfc9111_4_2_3_ageCalculation_withAgeHeaderAndDelay() {
        // Sent at 100, received at 104 (delay 4), Age 30, Date at 102 (apparent age 2); now 200.
        let res: HTTPFields = [("Date", HTTPDate.format(t0 + 102)), ("Age", "30")]
        let age = CachePolicy.currentAge(responseHeaders: res, requestTime: t0 + 100, responseTime: t0 + 104, now: t0 + 200)
        // corrected_initial_age = max(2, 30 + 4) = 34; resident = 96.
        XCTAssertEqual(age, 130)
    }

    func test_rfc9111_4_2_3_ageCalculation_apparentAgeDominates() {
        let res: HTTPFields = [("Date", HTTPDate.format(t0 - 500)), ("Age", "10")]
        let age = CachePolicy.currentAge(responseHeaders: res, requestTime: t0 - 1, responseTime: t0, now: t0 + 5)
        XCTAssertEqual(age, 505)
    }

    func test_rfc9111_4_2_3_ageCalculation_clockSkewAndInvalidAge() {
        let res: HTTPFields = [("Date", HTTPDate.format(t0 + 1_000)), ("Age", "-3")]
        let age = CachePolicy.currentAge(responseHeaders: res, requestTime: t0 + 10, responseTime: t0, now: t0 - 50)
        XCTAssertEqual(age, 0)
    }

    func test_rfc9111_1_2_2_ageHugeValueCappedAndArithmeticSaturates() {
        let res: HTTPFields = [("Age", "999999999999999999999999")]
        let age = CachePolicy.currentAge(responseHeaders: res, requestTime: Int64.min, responseTime: Int64.max, now: Int64.max)
        XCTAssertEqual(age, Int64.max)
        let age2 = CachePolicy.currentAge(responseHeaders: res, requestTime: t0, responseTime: t0, now: t0)
        XCTAssertEqual(age2, 2_147_483_648)
        XCTAssertEqual(
            CachePolicy.freshnessLifetime(status: 200, responseHeaders: [("Expires", HTTPDate.format(t0))], responseTime: Int64.min),
            Int64.max)
    }

    func test_rfc9111_4_2_3_ageListInOneLineCountsByItsFirstMember() {
        func age(_ value: String) -> Int64 {
            CachePolicy.currentAge(responseHeaders: [("Age", value)], requestTime: 100, responseTime: 100, now: 100)
        }
        XCTAssertEqual(age("7200, 0"), 7200)
        XCTAssertEqual(age("0, 7200"), 0)
        XCTAssertEqual(age("abc, 5"), 0, "an invalid first member is an invalid Age")
    }
}
