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

/// Listeners on IPv6 loopback, and TCP under pressure: the connection cap, an idle crowd, a client that never reads.
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

    /// Past the cap the longest-idle connection makes room and the newcomer is served (RFC 7766 §6.2.3).
    func test_tcpConnectionPastTheCapClosesTheLongestIdleOne() throws {
        let server = try startServer { t in try t.edit("dns") { $0["maxTCPConnections"] = 2 } }
        let query = TCPClient.framed(DNSPacket.query(id: 9, name: "www.example.test"))
        let first = try TCPClient(port: server.port), second = try TCPClient(port: server.port)
        for c in [first, second] {
            try c.send(query)
            XCTAssertNotNil(c.readFrame(timeout: 2), "connections within the cap are served")
            Thread.sleep(forTimeInterval: 0.05)
        }
        let third = try TCPClient(port: server.port)
        try third.send(query)
        XCTAssertNotNil(third.readFrame(timeout: 2), "the newcomer is served")
        XCTAssertNotNil(first.waitForClose(timeout: 2), "the longest-idle connection was closed to make room")
        try second.send(query)
        XCTAssertNotNil(second.readFrame(timeout: 2), "the other one stays")
    }

    /// An idle crowd (issue 18 §4): 3,000 connections from 3,000 loopback addresses are opened and left idle; a new
    /// client is still answered at once, and the server closed the idle ones oldest first.
    func test_idleCrowdCannotLockOutANewTCPClient() throws {
        let server = try startServer { t in try t.edit("dns") { $0["tcpIdleTimeoutSeconds"] = 30 } }
        var crowd: [Int32] = []
        defer { for fd in crowd { close(fd) } }
        for i in 0..<3_000 {
            let fd = socket(AF_INET, SocketType.stream, 0)
            guard fd >= 0 else { throw IntegrationError("socket: errno \(errno)") }
            var local = SocketAddress.loopbackV4(port: 0, address: "127.1.\(i / 200).\(i % 200 + 1)")
            var remote = SocketAddress.loopbackV4(port: server.port)
            guard SocketAddress.bind(fd, &local) == 0, SocketAddress.connect(fd, &remote) == 0 else {
                close(fd)
                throw IntegrationError("connection \(i): errno \(errno)")
            }
            crowd.append(fd)
        }
        Thread.sleep(forTimeInterval: 0.5)
        let started = Date()
        let client = try TCPClient(port: server.port)
        try client.send(TCPClient.framed(DNSPacket.query(id: 7, name: "www.example.test")))
        let answer = client.readFrame(timeout: 2)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertNotNil(answer, "the new client was not answered with 3,000 idle connections held")
        XCTAssertLessThan(elapsed, 0.1, "answered in \(elapsed) s")
        // Which of the crowd the server closed: EOF readable at once on a closed one.
        let closed = crowd.map { fd -> Bool in
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&pfd, 1, 0) == 1
        }
        let closedCount = closed.filter { $0 }.count
        let firstOpen = closed.firstIndex(of: false) ?? closed.count
        print("TCP-CROWD 3,000 idle connections: new client answered in \(String(format: "%.1f", elapsed * 1000)) ms; "
              + "server closed \(closedCount), the first still open is #\(firstOpen)")
        XCTAssertGreaterThanOrEqual(closedCount, 3_000 - 256, "the server keeps at most its cap")
        // Oldest first: the listener admits connections in the order it accepts them (give or take the newest few,
        // whose closes may still be on their way to their event loops).
        XCTAssertGreaterThanOrEqual(firstOpen, 3_000 - 256 - 32, "closed oldest first")
    }

    /// A client that pipelines queries and never reads the answers is closed rather than buffered without bound.
    func test_tcpClientThatNeverReadsIsClosed() throws {
        let server = try startServer()
        let client = try TCPClient(port: server.port)
        var small: Int32 = 4096
        setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let query = TCPClient.framed(DNSPacket.query(id: 1, name: "www.example.test"))
        var batch: [UInt8] = []
        for _ in 0..<1_000 { batch += query }
        var sent = 0
        for _ in 0..<40 {
            guard (try? client.send(batch)) != nil else { break }
            sent += 1_000
        }
        XCTAssertNotNil(client.waitForClose(timeout: 10), "a client that never reads was not closed (\(sent) queries sent)")
        let other = try TCPClient(port: server.port)
        try other.send(query)
        XCTAssertNotNil(other.readFrame(timeout: 2), "others are still served")
    }
}
