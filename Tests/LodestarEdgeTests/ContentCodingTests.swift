import LodestarEdge
import XCTest

/// The coding a client gets: swift-nio-extras' choice on the full path, so both paths answer alike.
final class ContentCodingTests: XCTestCase {
    private func choose(_ values: String...) -> ContentCoding? { ContentCoding.choose(acceptEncoding: values) }

    func test_theClientsPreferenceWins() {
        XCTAssertEqual(choose("gzip"), .gzip)
        XCTAssertEqual(choose("x-gzip"), .gzip)
        XCTAssertEqual(choose("deflate"), .deflate)
        XCTAssertEqual(choose("gzip;q=0.4, deflate;q=0.5"), .deflate)
        XCTAssertEqual(choose("gzip;q=0.6, deflate;q=0.5"), .gzip)
        XCTAssertEqual(choose("gzip;q=0, deflate;q=0.5"), .deflate)
        XCTAssertEqual(choose("br", "gzip"), .gzip, "several fields are one list")
    }

    func test_aTieGoesToDeflateAsTheFullPathDecides() {
        XCTAssertEqual(choose("gzip, deflate, br, zstd"), .deflate)
        XCTAssertEqual(choose("deflate, gzip"), .deflate)
    }

    func test_nothingAcceptableMeansNoCoding() {
        XCTAssertNil(choose())
        XCTAssertNil(choose(""))
        XCTAssertNil(choose("br"))
        XCTAssertNil(choose("identity"))
        XCTAssertNil(choose("gzip;q=0"))
        XCTAssertNil(choose("gzip;q=0, deflate;q=0"))
        XCTAssertEqual(choose("*"), .gzip, "any coding: gzip")
        XCTAssertNil(choose("*;q=0"))
    }

    func test_malformedWeightsCountAsZero() {
        XCTAssertNil(choose("gzip;q"), "a parameter without a value")
        XCTAssertNil(choose("gzip;q=2"), "above 1")
        XCTAssertNil(choose("gzip;q=-1"))
        XCTAssertNil(choose("gzip;level=1"), "a parameter other than q")
        XCTAssertNil(choose("gzip;q=abc"))
        XCTAssertEqual(choose("gzip;"), .gzip, "an empty parameter list: weight 1")
        XCTAssertEqual(ContentCoding.gzip.token, "gzip")
        XCTAssertEqual(ContentCoding.deflate.token, "deflate")
    }
}
