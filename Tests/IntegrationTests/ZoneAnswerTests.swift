import Foundation
import XCTest

/// Authoritative answers from the real binary, checked with dig.
final class ZoneAnswerTests: IntegrationTestCase {
    func test_plainQueryIsAuthoritativeFallbackAnswer_RFC1035_4_1_1() throws {
        let server = try startServer()
        // 127.0.0.1 is not in the GeoIP data: the service's fallback region (us-east) answers.
        let r = try server.dig("www.example.test", "A")
        assertStatus(r, "NOERROR")
        assertFlags(r, has: ["qr", "aa", "rd"], lacks: ["ra", "tc"])
        XCTAssertEqual(r.opcode, "QUERY")
        XCTAssertEqual(r.answer.count, 1, "\(r)")
        assertSingleA(r, Self.us, ttl: 30, owner: "www.example.test.")
        XCTAssertEqual(r.authority.count, 0, "\(r)")
        XCTAssertEqual(r.transport, "UDP")
    }

    func test_sourceAddressSelectsNearestEdge() throws {
        let server = try startServer()
        // Loopback source addresses 127.0.2.0/24 (Frankfurt) and 127.0.3.0/24 (Singapore) in the sample GeoIP data.
        let eu = try server.dig(["-b", Self.eu, "www.example.test", "A"])
        assertStatus(eu, "NOERROR")
        assertSingleA(eu, Self.eu, ttl: 30)
        let ap = try server.dig(["-b", Self.ap, "www.example.test", "A"])
        assertSingleA(ap, Self.ap, ttl: 30)
        let us = try server.dig(["-b", Self.us, "www.example.test", "A"])
        assertSingleA(us, Self.us, ttl: 30)
    }

    func test_nxdomainCarriesSOA_RFC2308_2_1() throws {
        let server = try startServer()
        let r = try server.dig("nope.example.test", "A")
        assertStatus(r, "NXDOMAIN")
        assertFlags(r, has: ["aa"], lacks: ["ra"])
        XCTAssertEqual(r.answer.count, 0, "\(r)")
        assertNegativeSOA(r)
        // Deeper non-existent names too.
        let deeper = try server.dig("x.y.nope.example.test", "TXT")
        assertStatus(deeper, "NXDOMAIN")
        assertNegativeSOA(deeper)
    }

    func test_nodataForStaticNameCarriesSOA_RFC2308_2_2() throws {
        let server = try startServer()
        let r = try server.dig("mail.example.test", "AAAA")
        assertStatus(r, "NOERROR")
        assertFlags(r, has: ["aa"])
        XCTAssertEqual(r.answer.count, 0, "\(r)")
        assertNegativeSOA(r)
    }

    func test_nodataForServiceWithoutIPv6Edges_RFC2308_2_2() throws {
        let server = try startServer()
        let r = try server.dig("www.example.test", "AAAA")
        assertStatus(r, "NOERROR")
        assertFlags(r, has: ["aa"])
        XCTAssertEqual(r.answer.count, 0, "\(r)")
        assertNegativeSOA(r)
    }

    func test_staticAAAAAnswerAndNodataForA_RFC3596_2_1() throws {
        let server = try startServer()
        let aaaa = try server.dig("v6only.example.test", "AAAA")
        assertStatus(aaaa, "NOERROR")
        XCTAssertEqual(aaaa.answers("AAAA").map(\.data), ["2001:db8::53"], "\(aaaa)")
        let a = try server.dig("v6only.example.test", "A")
        assertStatus(a, "NOERROR")
        XCTAssertEqual(a.answer.count, 0, "\(a)")
        assertNegativeSOA(a)
    }

    func test_emptyNonTerminalIsNodata_RFC8020_2() throws {
        let server = try startServer { t in
            try t.addRecord(["name": "a.b", "type": "A", "value": "127.0.0.77"])
        }
        let leaf = try server.dig("a.b.example.test", "A")
        assertStatus(leaf, "NOERROR")
        XCTAssertEqual(leaf.answers("A").map(\.data), ["127.0.0.77"], "\(leaf)")
        // b.example.test owns nothing but has a descendant: it exists (NOERROR, no data), it is not NXDOMAIN.
        let ent = try server.dig("b.example.test", "A")
        assertStatus(ent, "NOERROR")
        assertFlags(ent, has: ["aa"])
        XCTAssertEqual(ent.answer.count, 0, "\(ent)")
        assertNegativeSOA(ent)
        // A sibling below the empty non-terminal still does not exist.
        let sibling = try server.dig("c.b.example.test", "A")
        assertStatus(sibling, "NXDOMAIN")
    }

    func test_outOfZoneQueryRefusedWithoutAA_RFC1035_4_1_1() throws {
        let server = try startServer()
        let r = try server.dig("www.example.com", "A")
        assertStatus(r, "REFUSED")
        assertFlags(r, lacks: ["aa", "ra"])
        XCTAssertEqual(r.answer.count + r.authority.count, 0, "\(r)")
        // A name that merely ends in the zone's text is outside it.
        let lookalike = try server.dig("wwwexample.test", "A")
        assertStatus(lookalike, "REFUSED")
    }

    func test_cnameIsChasedWithinZone_RFC1034_4_3_2() throws {
        let server = try startServer()
        let r = try server.dig("api.example.test", "A")
        assertStatus(r, "NOERROR")
        assertFlags(r, has: ["aa"])
        XCTAssertEqual(r.answer.map(\.type), ["CNAME", "A"], "\(r)")
        XCTAssertEqual(r.answer.first?.name, "api.example.test.")
        XCTAssertEqual(r.answer.first?.data.lowercased(), "www.example.test.")
        XCTAssertEqual(r.answer.last?.name.lowercased(), "www.example.test.")
        XCTAssertEqual(r.answer.last?.data, Self.us)
        XCTAssertEqual(r.answer.last?.ttl, 30)
        // The chased GSLB answer follows the client too.
        let eu = try server.dig(["-b", Self.eu, "api.example.test", "A"])
        XCTAssertEqual(eu.answers("A").map(\.data), [Self.eu], "\(eu)")
        // Asking for the CNAME itself returns it without chasing.
        let cname = try server.dig("api.example.test", "CNAME")
        XCTAssertEqual(cname.answer.map(\.type), ["CNAME"], "\(cname)")
    }

    func test_mxAnswerCarriesAddressInAdditional_RFC1035_3_3_9() throws {
        let server = try startServer()
        let r = try server.dig("example.test", "MX")
        assertStatus(r, "NOERROR")
        assertFlags(r, has: ["aa"])
        XCTAssertEqual(r.answer.map(\.data), ["10 mail.example.test."], "\(r)")
        XCTAssertEqual(r.answer.first?.ttl, 300)
        let glue = r.additional.filter { $0.type == "A" }
        XCTAssertEqual(glue.map(\.name), ["mail.example.test."], "\(r)")
        XCTAssertEqual(glue.map(\.data), ["127.0.0.25"], "\(r)")
        XCTAssertEqual(glue.first?.ttl, 3600)
    }

    func test_apexNSCarriesGlue_RFC1035_3_3_11() throws {
        let server = try startServer()
        let r = try server.dig("example.test", "NS", "+norecurse")
        assertStatus(r, "NOERROR")
        assertFlags(r, has: ["aa"])
        XCTAssertEqual(r.answer.map(\.data), ["ns1.example.test."], "\(r)")
        let glue = Dictionary(grouping: r.additional.filter { $0.name == "ns1.example.test." }, by: \.type)
        XCTAssertEqual(glue["A"]?.map(\.data), ["127.0.0.1"], "\(r)")
        XCTAssertEqual(glue["AAAA"]?.map(\.data), ["::1"], "\(r)")
    }

    func test_soaAtApex_RFC1035_3_3_13() throws {
        let server = try startServer()
        let r = try server.dig("example.test", "SOA")
        assertStatus(r, "NOERROR")
        assertFlags(r, has: ["aa"])
        XCTAssertEqual(r.answer.count, 1, "\(r)")
        XCTAssertEqual(r.answer.first?.ttl, 3600)
        XCTAssertEqual(r.answer.first?.data, "ns1.example.test. hostmaster.example.test. 2026112501 3600 600 604800 60")
    }

    func test_norecurseQueryAnsweredWithoutRD_RFC1035_4_1_1() throws {
        let server = try startServer()
        let r = try server.dig("www.example.test", "A", "+norecurse")
        assertStatus(r, "NOERROR")
        // RD is copied from the query (clear here); RA is never set by an authoritative-only server.
        assertFlags(r, has: ["qr", "aa"], lacks: ["rd", "ra"])
        assertSingleA(r, Self.us, ttl: 30)
    }

    func test_queryNameCasePreservedInAnswer_RFC4343_4_1() throws {
        let server = try startServer()
        let r = try server.dig("WwW.ExAmPlE.TeSt", "A")
        assertStatus(r, "NOERROR")
        assertSingleA(r, Self.us, ttl: 30, owner: "WwW.ExAmPlE.TeSt.")
        XCTAssertTrue(r.output.contains(";WwW.ExAmPlE.TeSt.\t"), "question echoed with its case\n\(r)")
        let mail = try server.dig("MAIL.example.TEST", "A")
        XCTAssertEqual(mail.answer.first?.name, "MAIL.example.TEST.", "\(mail)")
        XCTAssertEqual(mail.answer.first?.data, "127.0.0.25")
    }

    func test_anyQueryReturnsOneRRset_RFC8482_4_2() throws {
        let server = try startServer()
        for name in ["example.test", "mail.example.test", "www.example.test"] {
            let r = try server.dig(name, "ANY")
            assertStatus(r, "NOERROR")
            assertFlags(r, has: ["aa"])
            XCTAssertFalse(r.answer.isEmpty, "\(r)")
            XCTAssertEqual(Set(r.answer.map(\.type)).count, 1, "ANY \(name): one RRset only\n\(r)")
            XCTAssertEqual(Set(r.answer.map(\.name)).count, 1, "\(r)")
        }
        // The apex owns SOA, NS, MX and TXT; only one of them comes back.
        let apex = try server.dig("example.test", "ANY")
        XCTAssertLessThanOrEqual(apex.answer.count, 1, "\(apex)")
    }

    func test_chaosIdServerGivesNodeId_RFC4892_2() throws {
        let server = try startServer()
        for name in ["id.server", "hostname.bind"] {
            let r = try server.dig(["CH", "TXT", name])
            assertStatus(r, "NOERROR")
            XCTAssertEqual(r.answer.count, 1, "\(r)")
            XCTAssertEqual(r.answer.first?.rclass, "CH")
            XCTAssertEqual(r.answer.first?.data, "\"dns-local-1\"", "\(r)")
        }
    }

    func test_zoneTransferRefused_RFC5936_4_2() throws {
        let server = try startServer()
        let r = try server.dig("example.test", "AXFR")
        // dig reports the refusal as a failed transfer; whatever it prints, no zone content may appear.
        XCTAssertTrue(r.output.contains("Transfer failed") || r.status == "REFUSED", "\(r)")
        XCTAssertTrue(r.answer.isEmpty, "AXFR returned records:\n\(r)")
        for secret in ["127.0.0.25", "mail.example.test", "2001:db8::53", "Lodestar GSLB sample zone"] {
            XCTAssertFalse(r.output.contains(secret), "AXFR leaked \(secret)\n\(r)")
        }
        // The same over a raw TCP connection: REFUSED with no records.
        let tcp = try TCPClient(port: server.port)
        try tcp.send(TCPClient.framed(DNSPacket.query(id: 0xA1F5, name: "example.test", type: RRTypeCode.axfr)))
        let reply = try XCTUnwrap(tcp.readFrame(timeout: 3), "no reply to AXFR over TCP")
        let h = try XCTUnwrap(ResponseHeader(reply))
        XCTAssertEqual(h.id, 0xA1F5)
        XCTAssertEqual(h.rcode, 5, "AXFR → REFUSED: \(h)")
        XCTAssertEqual(h.an, 0, "\(h)")
    }

    func test_unknownOpcodeIsNotImp_RFC1035_4_1_1() throws {
        let server = try startServer()
        let notify = try server.dig(["+opcode=notify", "example.test", "SOA"])
        XCTAssertEqual(notify.status, "NOTIMP", "\(notify)")
        XCTAssertEqual(notify.opcode, "NOTIFY", "\(notify)")
        // Opcode 2 (STATUS) sent by hand.
        let udp = try UDPClient(port: server.port)
        let reply = try XCTUnwrap(udp.exchange(DNSPacket.query(id: 0x0F0F, name: "www.example.test", opcode: 2)), "no reply to opcode 2")
        let h = try XCTUnwrap(ResponseHeader(reply))
        XCTAssertEqual(h.id, 0x0F0F)
        XCTAssertTrue(h.isResponse)
        XCTAssertEqual(h.opcode, 2, "\(h)")
        XCTAssertEqual(h.rcode, 4, "opcode 2 → NOTIMP: \(h)")
        XCTAssertEqual(h.an, 0, "\(h)")
    }
}
