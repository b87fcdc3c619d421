import LodestarEdge
import XCTest

/// gRPC facts the edge uses (grpc doc/PROTOCOL-HTTP2.md).
final class GRPCTests: XCTestCase {
    func test_contentTypeTellsGRPC() {
        XCTAssertTrue(GRPC.isGRPC(contentType: "application/grpc"))
        XCTAssertTrue(GRPC.isGRPC(contentType: "application/grpc+proto"))
        XCTAssertTrue(GRPC.isGRPC(contentType: "Application/GRPC"))
        XCTAssertFalse(GRPC.isGRPC(contentType: "application/grpc-web"), "gRPC-Web is plain HTTP to the edge")
        XCTAssertFalse(GRPC.isGRPC(contentType: "application/json"))
        XCTAssertFalse(GRPC.isGRPC(contentType: nil))
    }

    func test_grpcTimeoutUnits() {
        XCTAssertEqual(GRPC.timeoutNanoseconds("500m"), 500_000_000)
        XCTAssertEqual(GRPC.timeoutNanoseconds("10S"), 10_000_000_000)
        XCTAssertEqual(GRPC.timeoutNanoseconds("2M"), 120_000_000_000)
        XCTAssertEqual(GRPC.timeoutNanoseconds("1H"), 3_600_000_000_000)
        XCTAssertEqual(GRPC.timeoutNanoseconds("7u"), 7_000)
        XCTAssertEqual(GRPC.timeoutNanoseconds("9n"), 9)
        XCTAssertNil(GRPC.timeoutNanoseconds("10"), "no unit")
        XCTAssertNil(GRPC.timeoutNanoseconds("123456789S"), "more than 8 digits")
        XCTAssertNil(GRPC.timeoutNanoseconds("-1S"))
        XCTAssertNil(GRPC.timeoutNanoseconds("1x"))
        XCTAssertEqual(GRPC.timeoutNanoseconds("99999999H"), Int64.max, "overflow saturates")
    }

    func test_edgeFailuresBecomeGRPCStatuses() {
        XCTAssertEqual(GRPC.status(httpStatus: 503), .unavailable, "no healthy origin")
        XCTAssertEqual(GRPC.status(httpStatus: 502), .unavailable, "connect failure")
        XCTAssertEqual(GRPC.status(httpStatus: 504), .deadlineExceeded)
        XCTAssertEqual(GRPC.status(httpStatus: 502, timedOut: true), .deadlineExceeded)
        XCTAssertEqual(GRPC.status(httpStatus: 429), .resourceExhausted)
        XCTAssertEqual(GRPC.status(httpStatus: 404), .unimplemented)
        XCTAssertEqual(GRPC.status(httpStatus: 403), .permissionDenied)
    }

    func test_messageIsPercentEncoded() {
        XCTAssertEqual(GRPC.encodeMessage("no healthy origin"), "no healthy origin")
        XCTAssertEqual(GRPC.encodeMessage("50% off\n"), "50%25 off%0A")
        XCTAssertEqual(GRPC.encodeMessage("é"), "%C3%A9")
    }
}
