import NIOCore
import NIOEmbedded
import Synchronization
import XCTest

@testable import LodestarProxy

/// How the pass-through lane hands an answer to the client's channel: a small counted body in the head's buffer
/// (one write for the whole answer), anything else after its head.
extension FastLaneTests {
    private func writes(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let b = try channel.readOutbound(as: ByteBuffer.self) { out.append(String(buffer: b)) }
        return out
    }

    func test_aSmallAnswerLeavesInOneWriteALargerOneAfterItsHead() throws {
        let r = try rig()
        try r.client.writeInbound(ByteBuffer(string: "GET /small HTTP/1.1\r\nHost: www.example.test\r\n\r\n"))
        XCTAssertEqual(lines(try text(r.origin)).first, "GET /small HTTP/1.1")
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
        let small = try writes(r.client)
        XCTAssertEqual(small.count, 1, "head and body in one buffer: \(small)")
        XCTAssertTrue(small.first?.hasPrefix("HTTP/1.1 200 OK\r\n") == true, "\(small)")
        XCTAssertTrue(small.first?.hasSuffix("\r\n\r\nhello") == true, "\(small)")

        // Over the limit: the head, then the body as it came.
        let big = String(repeating: "x", count: Int(FastLane.bodyInHeadLimit) + 1)
        try r.client.writeInbound(ByteBuffer(string: "GET /big HTTP/1.1\r\nHost: www.example.test\r\n\r\n"))
        XCTAssertEqual(lines(try text(r.origin)).first, "GET /big HTTP/1.1")
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(big.utf8.count)\r\n\r\n" + big))
        let large = try writes(r.client)
        XCTAssertEqual(large.count, 2, "head, then body")
        XCTAssertTrue(large.first?.hasSuffix("\r\n\r\n") == true)
        XCTAssertEqual(large.last, big)

        // A small body split over reads: what came with the head goes with it, the rest after.
        try r.client.writeInbound(ByteBuffer(string: "GET /split HTTP/1.1\r\nHost: www.example.test\r\n\r\n"))
        XCTAssertEqual(lines(try text(r.origin)).first, "GET /split HTTP/1.1")
        try r.origin.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"))
        try r.origin.writeInbound(ByteBuffer(string: "lo"))
        let split = try writes(r.client)
        XCTAssertEqual(split.count, 2, "\(split)")
        XCTAssertTrue(split.first?.hasSuffix("\r\n\r\nhel") == true, "\(split)")
        XCTAssertEqual(split.last, "lo")
        XCTAssertEqual(r.shared.stats.responses2xx.load(ordering: .relaxed), 3)
        XCTAssertTrue(r.client.isActive)
        _ = try? r.client.finish()
    }
}
