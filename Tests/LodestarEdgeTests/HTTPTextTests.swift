import LodestarEdge
import XCTest

final class HTTPTextTests: XCTestCase {
    func test_keepAliveTimeoutIsReadFromTheParameterList() {
        XCTAssertEqual(HTTPText.keepAliveTimeout("timeout=5"), 5, "Node.js and Apache send this")
        XCTAssertEqual(HTTPText.keepAliveTimeout("max=100, Timeout = 15"), 15)
        XCTAssertEqual(HTTPText.keepAliveTimeout("timeout=\"7\""), 7)
        XCTAssertNil(HTTPText.keepAliveTimeout("max=100"))
        XCTAssertNil(HTTPText.keepAliveTimeout("timeout=-1"))
        XCTAssertNil(HTTPText.keepAliveTimeout("timeout=5s"))
        XCTAssertNil(HTTPText.keepAliveTimeout("timeout=99999999999999999999"))
        XCTAssertNil(HTTPText.keepAliveTimeout(""))
    }

    func test_nameEqualsIgnoresASCIICaseOnly() {
        XCTAssertTrue(HTTPText.nameEquals("Keep-Alive", "keep-alive"))
        XCTAssertFalse(HTTPText.nameEquals("keep-alivee", "keep-alive"))
    }
}
