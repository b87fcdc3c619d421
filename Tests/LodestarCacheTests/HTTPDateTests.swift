import LodestarTopology
import XCTest
@testable import LodestarCache

final class HTTPDateTests: XCTestCase {
    /// 1994-11-06T08:49:37Z, the RFC's example instant.
    let example: Int64 = 784_111_777

    func test_rfc9110_5_6_7_imfFixdate() {
        XCTAssertEqual(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT"), example)
    }

    func test_rfc9110_5_6_7_rfc850() {
        XCTAssertEqual(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT"), example)
    }

    func test_rfc9110_5_6_7_asctimeSpacePaddedAndTwoDigitDay() {
        XCTAssertEqual(HTTPDate.parse("Sun Nov  6 08:49:37 1994"), example)
        XCTAssertEqual(HTTPDate.parse("Sun Nov 16 08:49:37 1994"), example + 10 * 86_400)
    }

    func test_rfc9110_5_6_7_rfc850YearRule() {
        // now = 2026-11-25: "75" would be 2075, within 50 years → 2075; "94" would be 2094 → 1994.
        let now: Int64 = 1_795_000_000
        XCTAssertEqual(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT", now: now), example)
        let y2075 = HTTPDate.parse("Wednesday, 06-Nov-75 08:49:37 GMT", now: now)
        XCTAssertEqual(y2075, HTTPDate.parse("Wed, 06 Nov 2075 08:49:37 GMT"))
        let y1977 = HTTPDate.parse("Sunday, 06-Nov-77 08:49:37 GMT", now: now)
        XCTAssertEqual(y1977, HTTPDate.parse("Sun, 06 Nov 1977 08:49:37 GMT"))
        // Without `now` the fixed window 1970–2069 applies.
        XCTAssertEqual(HTTPDate.parse("Sunday, 06-Nov-69 08:49:37 GMT"), HTTPDate.parse("Sun, 06 Nov 2069 08:49:37 GMT"))
        XCTAssertEqual(HTTPDate.parse("Sunday, 06-Nov-70 08:49:37 GMT"), HTTPDate.parse("Sun, 06 Nov 1970 08:49:37 GMT"))
    }

    func test_rfc9110_5_6_7_rfc850YearRuleWithExtremeNowNeverTraps() {
        XCTAssertNil(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT", now: Int64.max))
        XCTAssertNil(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT", now: Int64.min))
        XCTAssertNotNil(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT", now: 0))
    }

    func test_rfc9110_5_6_7_formatIMFFixdate() {
        XCTAssertEqual(HTTPDate.format(example), "Sun, 06 Nov 1994 08:49:37 GMT")
        XCTAssertEqual(HTTPDate.format(0), "Thu, 01 Jan 1970 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(-1), "Wed, 31 Dec 1969 23:59:59 GMT")
        XCTAssertEqual(HTTPDate.format(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT")
    }

    func test_rfc9110_5_6_7_formatParseRoundTrip() {
        for t: Int64 in [0, 1, 86_399, 951_782_400, 1_700_000_000, 4_102_444_800, -2_208_988_800] {
            XCTAssertEqual(HTTPDate.parse(HTTPDate.format(t)), t, "\(t)")
        }
    }

    func test_rfc9110_5_6_7_formatClampsHugeValues() {
        XCTAssertEqual(HTTPDate.format(Int64.max), "Fri, 31 Dec 9999 23:59:59 GMT")
        XCTAssertEqual(HTTPDate.format(Int64.min), "Mon, 01 Jan 0001 00:00:00 GMT")
    }

    func test_rfc9110_5_6_7_invalidDatesAreNil() {
        let bad = [
            "", " ", "GMT", "Sun,", "Sun, 06 Nov 1994", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT trailing", "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994", "Sun Nov  6 08:49:37 94", "0", "-1", "Sun, -6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 0000 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT\u{0}", "\u{FF}\u{FE}garbage",
            String(repeating: "9", count: 10_000),
        ]
        for s in bad { XCTAssertNil(HTTPDate.parse(s), s) }
    }

    func test_rfc9110_5_6_7_leapDayAndLeapSecondAccepted() {
        XCTAssertEqual(HTTPDate.parse("Tue, 29 Feb 2000 00:00:00 GMT"), 951_782_400)
        XCTAssertEqual(HTTPDate.parse("Sat, 31 Dec 2016 23:59:60 GMT"), 1_483_228_800)
    }

    func test_rfc9110_5_6_7_surroundingWhitespaceTrimmed() {
        XCTAssertEqual(HTTPDate.parse("  Sun, 06 Nov 1994 08:49:37 GMT\t"), example)
    }

    func test_rfc9110_5_6_7_garbageBytesNeverTrap() {
        var rng = FastRandom(seed: 0x9111)
        let alphabet = Array("Sun, 06 Nov 1994 08:49:37 GMT-:day".utf8) + [0, 0xFF, 0x22, 0x2C]
        for _ in 0..<2_000 {
            let len = Int.random(in: 0...40, using: &rng)
            let bytes = (0..<len).map { _ in alphabet.randomElement(using: &rng) ?? 0 }
            _ = HTTPDate.parse(String(decoding: bytes, as: UTF8.self))
        }
    }
}

