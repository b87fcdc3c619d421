import Foundation
import XCTest

/// PROXY protocol v1 and v2 on a listener configured for it: the client it names is the one the origin sees.
final class EdgeProxyProtocolTests: EdgeTestCase {
    /// A v2 PROXY header for TCP over IPv4.
    static func proxyV2(source: [UInt8], sourcePort: UInt16, destination: [UInt8] = [127, 0, 0, 1], destinationPort: UInt16 = 80) -> Data {
        var d = Data([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])
        d.append(contentsOf: [0x21, 0x11, 0x00, 0x0C])
        d.append(contentsOf: source + destination)
        d.append(contentsOf: [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)])
        return d
    }

    func test_proxyProtocol_v1AndV2NameTheClient_missingHeaderCloses() throws {
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()], proxyProtocol: true)
        guard let port = edge.ports.proxy else { throw IntegrationError("no PROXY protocol port") }

        // v1, then a second request on the same connection.
        do {
            let c = try EdgeConnection(port: port)
            try c.send(Data("PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n".utf8) + EdgeRequest.make("GET", "/echo?v=1"))
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200, "\(r)")
            XCTAssertEqual(r.echoed("X-Forwarded-For"), ["203.0.113.7"], "v1: \(r.echoedHeaders)")
            try c.send(EdgeRequest.make("GET", "/echo?v=1b"))
            let again = try c.readResponse()
            XCTAssertEqual(again.echoed("X-Forwarded-For"), ["203.0.113.7"], "v1, keep-alive: \(again.echoedHeaders)")
        }
        // v1 header and request in separate writes.
        do {
            let c = try EdgeConnection(port: port)
            try c.send("PROXY TCP4 198.51.100.20 127.0.0.1 4000 80\r\n")
            usleep(50_000)
            try c.send(EdgeRequest.make("GET", "/echo?v=1split"))
            let r = try c.readResponse()
            XCTAssertEqual(r.echoed("X-Forwarded-For"), ["198.51.100.20"], "v1 split: \(r.echoedHeaders)")
        }
        // v2 (binary).
        do {
            let c = try EdgeConnection(port: port)
            try c.send(Self.proxyV2(source: [203, 0, 113, 8], sourcePort: 5555) + EdgeRequest.make("GET", "/echo?v=2"))
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200, "\(r)")
            XCTAssertEqual(r.echoed("X-Forwarded-For"), ["203.0.113.8"], "v2: \(r.echoedHeaders)")
        }
        XCTAssertEqual(try origin.count(), 4)

        // No PROXY header: closed without a response, nothing forwarded.
        do {
            let c = try EdgeConnection(port: port)
            try c.send(EdgeRequest.make("GET", "/echo?v=none"))
            let closed = c.waitForClose(timeout: 3)
            XCTAssertNotNil(closed, "a connection without the PROXY header must be closed")
            XCTAssertEqual(closed?.extra.count ?? -1, 0,
                           "no response expected, got \(String(decoding: closed?.extra ?? [], as: UTF8.self).debugDescription)")
        }
        // A malformed v1 header too.
        do {
            let c = try EdgeConnection(port: port)
            try c.send("PROXY TCP4 not-an-address 127.0.0.1 1 80\r\n" + "GET /echo HTTP/1.1\r\nHost: www.example.test\r\n\r\n")
            let closed = c.waitForClose(timeout: 3)
            XCTAssertNotNil(closed, "a malformed PROXY header must close the connection")
            XCTAssertEqual(closed?.extra.count ?? -1, 0, "no response to a malformed PROXY header")
        }
        XCTAssertEqual(try origin.count(), 4, "nothing more forwarded")

        // The plain listener does not honour a PROXY header (no spoofing of the client address there).
        do {
            let c = try EdgeConnection(port: edge.port)
            try c.send(Data("PROXY TCP4 203.0.113.66 127.0.0.1 5555 80\r\n".utf8) + EdgeRequest.make("GET", "/echo?v=plain"))
            let r = try? c.readResponse(timeout: 5)
            print("EDGE-FIGURES: PROXY header on the plain listener -> \(r.map { "\($0.status)" } ?? "no answer")")
            XCTAssertNotEqual(r?.status, 200, "plain listener accepted a PROXY header: \(r.map { "\($0)" } ?? "-")")
            XCTAssertFalse(try origin.counters().requests.contains { $0.contains("v=plain") }, "forwarded")
        }
        XCTAssertTrue(edge.isRunning, "the edge died")
    }
}
