import Foundation
import LodestarTopology
import XCTest

/// Malformed input over UDP and TCP must never stop the server.
final class RobustnessTests: IntegrationTestCase {
    private func assertStillAnswers(_ server: LodestarServer, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(server.isRunning, "lodestar exited", file: file, line: line)
        let r = try server.dig("www.example.test", "A")
        XCTAssertEqual(r.status, "NOERROR", "\(r)", file: file, line: line)
        XCTAssertEqual(r.answers("A").map(\.data), [Self.us], "\(r)", file: file, line: line)
    }

    func test_junkDatagramsDoNotStopServer_RFC1035_4_1_1() throws {
        let server = try startServer()
        let udp = try UDPClient(port: server.port)
        // Shorter than a header: dropped silently.
        try udp.send([])
        XCTAssertNil(udp.receive(timeout: 0.2), "reply to an empty datagram")
        try udp.send([1, 2, 3, 4, 5])
        XCTAssertNil(udp.receive(timeout: 0.2), "reply to a 5-byte datagram")
        // A response (QR=1) is never answered (no reflection loops).
        var response = DNSPacket.query(id: 0x5151, name: "www.example.test")
        response[2] |= 0x80
        try udp.send(response)
        XCTAssertNil(udp.receive(timeout: 0.2), "reply to a packet with QR set")

        // 1000 deterministic random packets of 0…600 bytes, some starting with a plausible header.
        var random = FastRandom(seed: 0x10DE_57A2)
        var answered = 0
        for i in 0..<1000 {
            let length = Int.random(in: 0...600, using: &random)
            var packet = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            if i % 4 == 0, packet.count >= 12 {
                packet[2] &= 0x7F  // a query
                packet[4] = 0; packet[5] = 1  // QDCOUNT 1
            }
            try udp.send(packet)
            if i % 50 == 49 { while udp.receive(timeout: 0.01) != nil { answered += 1 } }
        }
        while udp.receive(timeout: 0.2) != nil { answered += 1 }
        print("random packets: \(answered) of 1000 got a reply")
        try assertStillAnswers(server)
        // The log shows no crash; the process is the one we started.
        XCTAssertFalse(server.log.contains("Fatal error"), server.log)
    }

    func test_headerOnlyQueryGetsFORMERRWithSameID_RFC1035_4_1_1() throws {
        let server = try startServer()
        let udp = try UDPClient(port: server.port)
        // A 12-byte header claiming one question, and nothing else.
        let reply = try XCTUnwrap(udp.exchange(DNSPacket.header(id: 0xBEEF, flags: 0x0100, qd: 1)), "no reply")
        let h = try XCTUnwrap(ResponseHeader(reply))
        XCTAssertEqual(h.id, 0xBEEF, "\(h)")
        XCTAssertTrue(h.isResponse, "\(h)")
        XCTAssertEqual(h.rcode, 1, "FORMERR expected: \(h)")
        XCTAssertEqual(h.an + h.ns, 0, "\(h)")
        // No question at all (QDCOUNT 0) is also a format error.
        let none = try XCTUnwrap(udp.exchange(DNSPacket.header(id: 0xBEF0, flags: 0, qd: 0)).flatMap(ResponseHeader.init))
        XCTAssertEqual(none.id, 0xBEF0)
        XCTAssertEqual(none.rcode, 1, "\(none)")
        try assertStillAnswers(server)
    }

    func test_compressionPointerLoopGetsFORMERR_RFC1035_4_1_4() throws {
        let server = try startServer()
        let udp = try UDPClient(port: server.port)
        // The question name is a pointer to itself (offset 12).
        let selfLoop = DNSPacket.header(id: 0xCAFE, flags: 0, qd: 1) + [0xC0, 12, 0, 1, 0, 1]
        // A label followed by a pointer back to that label.
        let labelLoop = DNSPacket.header(id: 0xCAFF, flags: 0, qd: 1) + [3] + Array("www".utf8) + [0xC0, 12, 0, 1, 0, 1]
        // A pointer past the end of the packet.
        let dangling = DNSPacket.header(id: 0xCB00, flags: 0, qd: 1) + [0xC0, 0xFF, 0, 1, 0, 1]
        for (packet, id) in [(selfLoop, 0xCAFE), (labelLoop, 0xCAFF), (dangling, 0xCB00)] {
            let h = try XCTUnwrap(udp.exchange(packet).flatMap(ResponseHeader.init), "no reply to \(packet)")
            XCTAssertEqual(Int(h.id), id)
            XCTAssertEqual(h.rcode, 1, "FORMERR expected: \(h)")
        }
        try assertStillAnswers(server)
    }

    func test_twoOPTRecordsGetFORMERR_RFC6891_6_1_1() throws {
        let server = try startServer()
        let udp = try UDPClient(port: server.port)
        let opt = DNSPacket.opt()
        var packet = DNSPacket.query(id: 0x0D0D, name: "www.example.test", opt: opt) + opt
        packet[11] = 2  // ARCOUNT 2
        let h = try XCTUnwrap(udp.exchange(packet).flatMap(ResponseHeader.init), "no reply")
        XCTAssertEqual(h.id, 0x0D0D)
        XCTAssertEqual(h.rcode, 1, "\(h)")
        try assertStillAnswers(server)
    }

    func test_tcpJunkDoesNotStopServer_RFC7766_6_2() throws {
        let server = try startServer()
        // A header-only frame is answered FORMERR on the stream.
        let tcp = try TCPClient(port: server.port)
        try tcp.send(TCPClient.framed(DNSPacket.header(id: 0x7777, flags: 0, qd: 1)))
        let h = try XCTUnwrap(tcp.readFrame(timeout: 3).flatMap(ResponseHeader.init), "no FORMERR over TCP")
        XCTAssertEqual(h.id, 0x7777)
        XCTAssertEqual(h.rcode, 1, "\(h)")
        // A frame shorter than a header: the server may close the connection, but it keeps serving others.
        try tcp.send(TCPClient.framed([1, 2, 3]))
        _ = tcp.waitForClose(timeout: 1)
        // A length prefix promising more than ever comes, then the client goes away.
        let partial = try TCPClient(port: server.port)
        try partial.send([0x01, 0x00, 0xAB])
        try assertStillAnswers(server)
        let again = try server.dig("www.example.test", "A", "+tcp")
        XCTAssertEqual(again.answers("A").map(\.data), [Self.us], "\(again)")
    }
}
