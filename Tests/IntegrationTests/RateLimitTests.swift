import Foundation
import XCTest

/// Response rate limiting on the real server (loopback exemption turned off so test traffic counts).
final class RateLimitTests: IntegrationTestCase {
    func test_floodFromOnePrefixIsLimitedWithSlip() throws {
        let server = try startServer { t in
            try t.edit("dns") {
                $0["rateLimit"] = ["enabled": true, "responsesPerSecond": 5, "slip": 2, "exemptLoopback": false]
            }
        }
        let udp = try UDPClient(port: server.port)
        for i in 0..<60 { try udp.send(DNSPacket.query(id: UInt16(i), name: "www.example.test")) }
        var full = 0, slipped = 0
        while let reply = udp.receive(timeout: 0.5) {
            guard let h = ResponseHeader(reply) else { continue }
            if h.truncated && h.an == 0 { slipped += 1 } else if h.an > 0 { full += 1 }
        }
        // A bucket of 5 (plus refill while sending), then every 2nd limited response slips as an empty TC=1 reply.
        XCTAssertGreaterThanOrEqual(full, 5)
        XCTAssertLessThanOrEqual(full, 12, "full answers beyond the rate: \(full)")
        XCTAssertGreaterThanOrEqual(slipped, 20, "slipped \(slipped)")
        XCTAssertLessThan(full + slipped, 60, "some responses were dropped outright")
        // Another /24 (source 127.0.2.1) has its own bucket.
        let other = try UDPClient(port: server.port, source: "127.0.2.1")
        let reply = try XCTUnwrap(try other.exchange(DNSPacket.query(id: 77, name: "www.example.test")))
        XCTAssertEqual(ResponseHeader(reply)?.an, 1)
        // Loopback clients are exempt in the default topology: the same flood is answered in full there.
        let exempt = try startServer()
        let u2 = try UDPClient(port: exempt.port)
        for i in 0..<60 { try u2.send(DNSPacket.query(id: UInt16(i), name: "www.example.test")) }
        var answered = 0
        while let r = u2.receive(timeout: 0.5) { if ResponseHeader(r)?.an == 1 { answered += 1 } }
        XCTAssertEqual(answered, 60)
    }
}
