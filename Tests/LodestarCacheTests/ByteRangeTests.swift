import XCTest
@testable import LodestarCache

/// Byte ranges served from complete stored responses (RFC 9110 §14, §13.1.5).
final class ByteRangeTests: XCTestCase {
    func test_rfc9110_14_1_2_firstLastSuffixAndOpenRanges() {
        XCTAssertEqual(ByteRange.parse("bytes=0-1", length: 11), .partial(start: 0, end: 1))
        XCTAssertEqual(ByteRange.parse("bytes=1-", length: 11), .partial(start: 1, end: 10))
        XCTAssertEqual(ByteRange.parse("bytes=-1", length: 11), .partial(start: 10, end: 10))
        XCTAssertEqual(ByteRange.parse("bytes=-50", length: 11), .partial(start: 0, end: 10), "a suffix longer than the body is all of it")
        XCTAssertEqual(ByteRange.parse("bytes=5-500", length: 11), .partial(start: 5, end: 10), "last beyond the end is clipped")
        XCTAssertEqual(ByteRange.parse("Bytes=2-3", length: 11), .partial(start: 2, end: 3), "the unit is case-insensitive")
    }

    func test_rfc9110_14_1_2_unsatisfiableAndInvalidRanges() {
        XCTAssertEqual(ByteRange.parse("bytes=11-", length: 11), .unsatisfiable)
        XCTAssertEqual(ByteRange.parse("bytes=20-30", length: 11), .unsatisfiable)
        XCTAssertEqual(ByteRange.parse("bytes=-0", length: 11), .unsatisfiable)
        for invalid in ["bytes=3-1", "bytes=a-b", "items=0-1", "bytes=", "bytes=-", "bytes=1-2-3", "0-1", "bytes= 1 - 2",
                        "bytes=99999999999999999999-"] {
            XCTAssertEqual(ByteRange.parse(invalid, length: 11), .full, invalid)
        }
        XCTAssertEqual(ByteRange.parse("bytes=0-1,3-4", length: 11), .full, "several ranges are answered whole")
    }

    func test_rfc9110_13_1_5_ifRangeNeedsAStrongMatchOrTheExactDate() {
        let stored: HTTPFields = [("ETag", "\"v1\""), ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")]
        func answer(_ ifRange: String) -> RangeAnswer {
            ByteRange.answer(requestHeaders: [("Range", "bytes=0-1"), ("If-Range", ifRange)], storedHeaders: stored, length: 11)
        }
        XCTAssertEqual(answer("\"v1\""), .partial(start: 0, end: 1))
        XCTAssertEqual(answer("\"v2\""), .full)
        XCTAssertEqual(answer("W/\"v1\""), .full, "weak validators never satisfy If-Range")
        XCTAssertEqual(answer("Sun, 06 Nov 1994 08:49:37 GMT"), .partial(start: 0, end: 1))
        XCTAssertEqual(answer("Sun, 06 Nov 1994 08:49:38 GMT"), .full)
        XCTAssertEqual(answer("garbage"), .full)
        XCTAssertEqual(ByteRange.answer(requestHeaders: [("Range", "bytes=0-1"), ("Range", "bytes=2-3")], storedHeaders: stored,
                                        length: 11), .full, "two Range fields are not served as a range")
        XCTAssertEqual(ByteRange.answer(requestHeaders: [], storedHeaders: stored, length: 11), .full)
    }
}
