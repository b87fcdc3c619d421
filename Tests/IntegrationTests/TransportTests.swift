import Foundation
import XCTest

/// TCP service, pipelining, idle timeout and UDP truncation.
final class TransportTests: IntegrationTestCase {
    func test_tcpGivesSameAnswersAsUDP_RFC7766_5() throws {
        let server = try startServer()
        let queries: [[String]] = [
            ["www.example.test", "A"],
            ["-b", Self.eu, "www.example.test", "A"],
            ["www.example.test", "A", "+subnet=133.1.2.0/24"],
            ["api.example.test", "A"],
            ["example.test", "MX"],
            ["nope.example.test", "A"],
            ["mail.example.test", "AAAA"],
            ["www.example.com", "A"],
        ]
        for q in queries {
            let udp = try server.dig(q)
            let tcp = try server.dig(q + ["+tcp"])
            XCTAssertEqual(udp.transport, "UDP")
            XCTAssertEqual(tcp.transport, "TCP", "\(tcp)")
            XCTAssertEqual(tcp.status, udp.status, "\(q)\n\(tcp)")
            XCTAssertEqual(tcp.flags, udp.flags, "\(q)\n\(tcp)")
            XCTAssertEqual(tcp.answer, udp.answer, "\(q)\n\(tcp)")
            XCTAssertEqual(tcp.authority, udp.authority, "\(q)\n\(tcp)")
            XCTAssertEqual(tcp.additional, udp.additional, "\(q)\n\(tcp)")
            XCTAssertEqual(tcp.clientSubnet?.scope, udp.clientSubnet?.scope, "\(q)")
        }
    }

    func test_tcpPipelinedQueriesAnsweredInOrder_RFC7766_6_2_1_1() throws {
        let server = try startServer()
        let tcp = try TCPClient(port: server.port)
        let queries = [
            DNSPacket.query(id: 0x1001, name: "www.example.test"),
            DNSPacket.query(id: 0x1002, name: "nope.example.test"),
            DNSPacket.query(id: 0x1003, name: "www.example.com"),
        ]
        // All three in a single write, before reading anything.
        try tcp.send(queries.flatMap(TCPClient.framed))
        var headers = [ResponseHeader]()
        for i in 0..<3 {
            let frame = try XCTUnwrap(tcp.readFrame(timeout: 3), "answer \(i + 1) of 3 missing")
            headers.append(try XCTUnwrap(ResponseHeader(frame)))
        }
        XCTAssertEqual(headers.map(\.id), [0x1001, 0x1002, 0x1003], "\(headers)")
        XCTAssertEqual(headers.map(\.rcode), [0, 3, 5], "NOERROR, NXDOMAIN, REFUSED: \(headers)")
        XCTAssertEqual(headers.map(\.an), [1, 0, 0], "\(headers)")
        // The connection stays usable for another query.
        try tcp.send(TCPClient.framed(DNSPacket.query(id: 0x1004, name: "mail.example.test")))
        let fourth = try XCTUnwrap(tcp.readFrame(timeout: 3).flatMap(ResponseHeader.init))
        XCTAssertEqual(fourth.id, 0x1004)
        XCTAssertEqual(fourth.an, 1)
    }

    func test_idleTCPConnectionClosedAfterTimeout_RFC7766_6_2_3() throws {
        // tcpIdleTimeoutSeconds is 2 in the test topology.
        let server = try startServer()
        let idle = try TCPClient(port: server.port)
        let waited = idle.waitForClose(timeout: 8)
        let seconds = try XCTUnwrap(waited, "idle connection still open after 8 s (timeout configured: 2 s)")
        XCTAssertGreaterThanOrEqual(seconds, 1.5, "closed too early")
        XCTAssertLessThanOrEqual(seconds, 5, "closed too late")
        // The server still takes new connections.
        let fresh = try TCPClient(port: server.port)
        try fresh.send(TCPClient.framed(DNSPacket.query(id: 7, name: "www.example.test")))
        let h = try XCTUnwrap(fresh.readFrame(timeout: 3).flatMap(ResponseHeader.init))
        XCTAssertEqual(h.an, 1)
    }

    /// Adds `big` (3 × 255-octet strings, ~825-octet answer) and `huge` (6 strings, ~1600 octets).
    private func startWithLargeTXT() throws -> LodestarServer {
        try startServer { t in
            try t.addRecord(["name": "big", "type": "TXT", "value": [String(repeating: "a", count: 255),
                                                                      String(repeating: "b", count: 255),
                                                                      String(repeating: "c", count: 255)]])
            try t.addRecord(["name": "huge", "type": "TXT", "value": Array(repeating: String(repeating: "h", count: 255), count: 6)])
        }
    }

    func test_oversizeUDPAnswerSetsTC_RFC2181_9() throws {
        let server = try startWithLargeTXT()
        let udp = try server.dig("big.example.test", "TXT", "+bufsize=512", "+ignore")
        assertStatus(udp, "NOERROR")
        assertFlags(udp, has: ["tc", "aa"])
        XCTAssertEqual(udp.answer.count, 0, "\(udp)")
        XCTAssertEqual(udp.transport, "UDP")
        let tcp = try server.dig("big.example.test", "TXT", "+tcp")
        assertStatus(tcp, "NOERROR")
        assertFlags(tcp, lacks: ["tc"])
        XCTAssertEqual(tcp.answers("TXT").count, 1, "\(tcp)")
        let text = tcp.answers("TXT").first?.data ?? ""
        for ch in ["a", "b", "c"] {
            XCTAssertTrue(text.contains("\"" + String(repeating: ch, count: 255) + "\""), "string of \(ch) missing over TCP")
        }
        // Without +ignore dig retries over TCP by itself and gets everything.
        let retried = try server.dig("big.example.test", "TXT", "+bufsize=512")
        XCTAssertEqual(retried.transport, "TCP", "\(retried)")
        XCTAssertEqual(retried.answers("TXT").count, 1, "\(retried)")
        // A payload large enough for the answer gets it over UDP.
        let fits = try server.dig("big.example.test", "TXT", "+bufsize=1232", "+ignore")
        assertFlags(fits, lacks: ["tc"])
        XCTAssertEqual(fits.answers("TXT").count, 1, "\(fits)")
    }

    func test_noEDNSLimitsUDPTo512_RFC1035_4_2_1() throws {
        let server = try startWithLargeTXT()
        let r = try server.dig("big.example.test", "TXT", "+noedns", "+ignore")
        assertFlags(r, has: ["tc"])
        XCTAssertEqual(r.answer.count, 0, "\(r)")
        XCTAssertFalse(r.hasOPT)
    }

    func test_udpPayloadCappedAtServerMaximum_RFC6891_6_2_5() throws {
        let server = try startWithLargeTXT()
        // The client offers 4096 but the server's maxUDPPayload is 1232: a ~1600-octet answer is truncated.
        let r = try server.dig("huge.example.test", "TXT", "+bufsize=4096", "+ignore")
        assertFlags(r, has: ["tc"])
        XCTAssertEqual(r.answer.count, 0, "\(r)")
        let tcp = try server.dig("huge.example.test", "TXT", "+tcp")
        XCTAssertEqual(tcp.answers("TXT").count, 1, "\(tcp)")
    }
}

/// Listeners on IPv6 loopback and the TCP connection cap.
final class ListenerTests: IntegrationTestCase {
    func test_ipv6ListenerAnswersOverUDPAndTCP() throws {
        let server = try startServer(arguments: ["--listen", "[::1]:{PORT}"])
        for transport in ["+notcp", "+tcp"] {
            let r = try server.dig([transport, "www.example.test", "A", "+subnet=81.2.69.0/24"], server: "::1")
            XCTAssertTrue(r.output.contains("SERVER: ::1#\(server.port)"), "\(r)")
            XCTAssertEqual(r.status, "NOERROR", "\(r)")
            XCTAssertEqual(r.answers("A").map(\.data), [Self.eu], "\(transport)\n\(r)")
        }
        XCTAssertTrue(server.log.contains("[::1]:\(server.port)"), server.log)
    }

    func test_tcpConnectionsBeyondTheCapAreClosed() throws {
        let server = try startServer { t in try t.edit("dns") { $0["maxTCPConnections"] = 2 } }
        let query = TCPClient.framed(DNSPacket.query(id: 9, name: "www.example.test"))
        let first = try TCPClient(port: server.port), second = try TCPClient(port: server.port)
        for c in [first, second] {
            try c.send(query)
            XCTAssertNotNil(c.readFrame(timeout: 2), "connections within the cap are served")
        }
        let third = try TCPClient(port: server.port)
        XCTAssertNotNil(third.waitForClose(timeout: 2), "the third connection is closed at once")
        close(first.fd)
        Thread.sleep(forTimeInterval: 0.3)
        let again = try TCPClient(port: server.port)
        try again.send(query)
        XCTAssertNotNil(again.readFrame(timeout: 2), "a slot freed by a close is usable again")
    }
}
