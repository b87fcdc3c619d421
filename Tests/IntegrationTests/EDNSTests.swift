import Foundation
import XCTest

/// EDNS(0) behaviour: OPT presence, payload size, NSID, version negotiation.
final class EDNSTests: IntegrationTestCase {
    func test_ednsQueryGetsOPTWithServerPayload_RFC6891_6_1_1() throws {
        let server = try startServer()
        let r = try server.dig("www.example.test", "A", "+bufsize=4096")
        XCTAssertTrue(r.hasOPT, "\(r)")
        XCTAssertEqual(r.ednsVersion, 0)
        XCTAssertEqual(r.udpPayload, 1232, "the server advertises its maxUDPPayload\n\(r)")
        XCTAssertEqual(r.counts["ADDITIONAL"], 1, "\(r)")
    }

    func test_noEDNSQueryGetsNoOPT_RFC6891_7() throws {
        let server = try startServer()
        let r = try server.dig("www.example.test", "A", "+noedns")
        assertStatus(r, "NOERROR")
        XCTAssertFalse(r.hasOPT, "OPT in a reply to a query without one\n\(r)")
        XCTAssertEqual(r.counts["ADDITIONAL"], 0, "\(r)")
        assertSingleA(r, Self.us, ttl: 30)
    }

    func test_nsidReturnsNodeId_RFC5001_2_3() throws {
        let server = try startServer()
        let r = try server.dig("www.example.test", "A", "+nsid")
        assertStatus(r, "NOERROR")
        XCTAssertEqual(r.nsid, "dns-local-1", "\(r)")
        // Also on negative answers, and only when asked.
        let nx = try server.dig("nope.example.test", "A", "+nsid")
        XCTAssertEqual(nx.nsid, "dns-local-1", "\(nx)")
        let plain = try server.dig("www.example.test", "A")
        XCTAssertNil(plain.nsid, "NSID without being asked\n\(plain)")
    }

    /// BUG (server): a query with an unimplemented opcode and a valid OPT gets NOTIMP without an OPT record.
    func test_notImpReplyToEDNSQueryCarriesOPT_RFC6891_7() throws {
        let server = try startServer()
        // "If an OPT record is present in a received request, compliant responders MUST include an OPT record
        // in their respective responses." (RFC 6891 §7)
        let notify = try server.dig(["+opcode=notify", "example.test", "SOA"])
        XCTAssertEqual(notify.status, "NOTIMP", "\(notify)")
        XCTAssertTrue(notify.hasOPT, "NOTIMP reply to an EDNS query has no OPT record\n\(notify)")
        // The same with a hand-made opcode 2 (STATUS) query carrying OPT: ARCOUNT must be 1.
        let udp = try UDPClient(port: server.port)
        let query = DNSPacket.query(id: 0x6891, name: "example.test", type: RRTypeCode.soa, opcode: 2, opt: DNSPacket.opt())
        let h = try XCTUnwrap(udp.exchange(query).flatMap(ResponseHeader.init), "no reply")
        XCTAssertEqual(h.rcode, 4, "\(h)")
        XCTAssertEqual(h.ar, 1, "NOTIMP reply lacks the OPT record: \(h)")
    }

    func test_unsupportedEDNSVersionGetsBADVERS_RFC6891_6_1_3() throws {
        let server = try startServer()
        let r = try server.dig("www.example.test", "A", "+edns=1", "+noednsneg")
        XCTAssertEqual(r.status, "BADVERS", "\(r)")
        XCTAssertTrue(r.hasOPT, "BADVERS travels in the OPT's extended RCODE\n\(r)")
        XCTAssertEqual(r.ednsVersion, 0, "the reply carries the version the server implements\n\(r)")
        XCTAssertEqual(r.answer.count, 0, "\(r)")
    }
}
