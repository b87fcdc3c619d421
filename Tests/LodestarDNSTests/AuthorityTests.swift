import Foundation
import LodestarDNS
import LodestarGeo
import LodestarSelection
import LodestarTopology
import XCTest

/// Authoritative semantics, one RCODE path or rule per test.
final class AuthorityTests: XCTestCase {
    var authority: Authority!

    override func setUpWithError() throws {
        authority = try Fixture.authority()
    }

    func ask(_ packet: [UInt8], from client: String = "127.0.0.1", transport: DNSTransport = .udp,
             file: StaticString = #filePath, line: UInt = #line) throws -> DNSMessage {
        try Fixture.ask(authority, packet, from: client, transport: transport, file: file, line: line)
    }

    // MARK: Positive answers

    func test_gslbAnswerIsAuthoritativeWithoutRecursion_RFC1035_4_1_1() throws {
        let r = try ask(Fixture.query("www.example.test", id: 0xBEEF))
        XCTAssertEqual(r.header.id, 0xBEEF)
        XCTAssertTrue(r.header.isResponse)
        XCTAssertTrue(r.header.authoritative)
        XCTAssertFalse(r.header.recursionAvailable)
        XCTAssertTrue(r.header.recursionDesired, "RD is copied")
        XCTAssertEqual(r.rcode, RCode.noError)
        XCTAssertEqual(r.answerAddresses, ["127.0.1.1"], "127.0.0.1 is not in the table: fallback region us-east")
        XCTAssertEqual(r.answers.first?.ttl, 30)
    }

    func test_sourceAddressLocatesClientWithoutECS() throws {
        XCTAssertEqual(try ask(Fixture.query("www.example.test"), from: "127.0.2.9").answerAddresses, ["127.0.2.1"])
        XCTAssertEqual(try ask(Fixture.query("www.example.test"), from: "133.1.1.1").answerAddresses, ["127.0.3.1"])
        XCTAssertNil(try ask(Fixture.query("www.example.test"), from: "133.1.1.1").clientSubnet, "no ECS in reply without ECS in query")
    }

    func test_ecsAddressWinsOverSource_RFC7871_7_1_1() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])), from: "8.8.8.8")
        XCTAssertEqual(r.answerAddresses, ["127.0.2.1"])
    }

    func test_ecsScopeIsGeoNetworkPrefix_RFC7871_7_2_1() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("133.1.2.0/24")])))
        XCTAssertEqual(r.answerAddresses, ["127.0.3.1"])
        let ecs = try XCTUnwrap(r.clientSubnet)
        XCTAssertEqual(ecs.scopePrefixLength, 8, "133.0.0.0/8 decided the answer")
        XCTAssertEqual(ecs.sourcePrefixLength, 24, "source echoed")
        XCTAssertEqual(ecs.addressBytes, [133, 1, 2], "address echoed")
        let gb = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(gb.clientSubnet?.scopePrefixLength, 24, "81.2.69.0/24 decided the answer")
        XCTAssertEqual(ecs.family, 1)
    }

    func test_ecsScopeCappedAtSourcePrefix_RFC7871_7_2_1() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("85.214.0.0/12")])))
        // 85.208.0.0 is in no network (unknown /8), but 85.214.0.0/16 and the 85.214.7.0/24 override lie inside
        // that /8, so the exact scope is /14; capped at the source /12.
        XCTAssertEqual(r.clientSubnet?.scopePrefixLength, 12)
        let s = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("133.0.0.0/4")])))
        XCTAssertEqual(s.clientSubnet?.scopePrefixLength, 4, "geo network /8 is longer than the source /4")
    }

    func test_ecsScopeNarrowedAroundMoreSpecificOverride() throws {
        // 85.214.0.0/16 is EU but 85.214.7.0/24 is pinned to AP: an answer for 85.214.3.0 holds only for 85.214.0.0/21.
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("85.214.3.0/24")])))
        XCTAssertEqual(r.answerAddresses, ["127.0.2.1"])
        XCTAssertEqual(r.clientSubnet?.scopePrefixLength, 22, "85.214.0.0/22 excludes 85.214.7.0/24")
        // Ask at /16 granularity; the override lies inside it, so the scope must narrow past /16.
        let wide = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("85.214.0.0/16")])))
        XCTAssertEqual(wide.clientSubnet?.scopePrefixLength, 16, "capped at source /16 even though the exact scope is /22")
        let pinned = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("85.214.7.0/24")])))
        XCTAssertEqual(pinned.answerAddresses, ["127.0.3.1"], "override pins to ap-southeast")
        XCTAssertEqual(pinned.clientSubnet?.scopePrefixLength, 24)
    }

    func test_overrideScopeArithmetic() {
        let overrides = [RegionOverride(prefix: IPPrefix("85.214.7.0/24")!, region: "x")]
        // 85.214.3.0 and 85.214.7.0 first differ at bit 22 (…0000 0011 vs …0000 0111): scope 22.
        XCTAssertEqual(EdgeSelector.scope(client: IPAddress("85.214.3.0")!, base: 16, overrides: overrides), 22)
        XCTAssertEqual(EdgeSelector.scope(client: IPAddress("85.214.200.0")!, base: 16, overrides: overrides), 17)
        XCTAssertEqual(EdgeSelector.scope(client: IPAddress("9.9.9.9")!, base: 16, overrides: overrides), 16)
    }

    func test_ecsSourceZeroMeansUseSourceAddressAndScopeZero_RFC7871_7_1_2() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("0.0.0.0/0")])), from: "133.5.5.5")
        XCTAssertEqual(r.answerAddresses, ["127.0.3.1"])
        XCTAssertEqual(r.clientSubnet?.scopePrefixLength, 0)
        XCTAssertEqual(r.clientSubnet?.sourcePrefixLength, 0)
    }

    func test_ecsIPv6Subnet() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("2a00:1450:4001::/48")])))
        XCTAssertEqual(r.answerAddresses, ["127.0.2.1"])
        XCTAssertEqual(r.clientSubnet?.scopePrefixLength, 29)
        XCTAssertEqual(r.clientSubnet?.family, 2)
    }

    func test_staticAnswerHasScopeZero_RFC7871_7_2_1() throws {
        let r = try ask(Fixture.query("mail.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(r.answerAddresses, ["127.0.0.25"])
        XCTAssertEqual(r.clientSubnet?.scopePrefixLength, 0)
        let nx = try ask(Fixture.query("nope.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(nx.clientSubnet?.scopePrefixLength, 0)
    }

    func test_unknownLocationUsesFallbackRegion() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("192.0.2.0/24")])))
        XCTAssertEqual(r.answerAddresses, ["127.0.1.1"])
        XCTAssertEqual(r.clientSubnet?.scopePrefixLength, 8, "the empty network around the address decides")
    }

    func test_answerCountGivesNearestFirst() throws {
        let r = try ask(Fixture.query("two.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(r.answerAddresses, ["127.0.2.1", "127.0.1.1"], "London: Frankfurt then Ashburn")
    }

    func test_aaaaAnswersOnlyEdgesWithIPv6() throws {
        let r = try ask(Fixture.query("www.example.test", RRType.aaaa, edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(r.answerAddresses, ["2001:db8:1::1"], "EU edge has no IPv6; US is nearer than AP")
    }

    func test_downEdgeIsSkippedForNextNearest() throws {
        let a = try Fixture.authority(down: ["edge-eu"])
        let r = try Fixture.ask(a, Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(r.answerAddresses, ["127.0.1.1"])
    }

    func test_allEdgesDownFailsOpenUnlessFailClosed() throws {
        let a = try Fixture.authority(down: ["edge-us", "edge-eu", "edge-ap"])
        let open = try Fixture.ask(a, Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(open.answerAddresses, ["127.0.2.1"], "fail open: nearest of all")
        let closed = try Fixture.ask(a, Fixture.query("closed.example.test"))
        XCTAssertEqual(closed.rcode, RCode.noError)
        XCTAssertTrue(closed.answers.isEmpty)
        XCTAssertEqual(closed.authority.first?.type, RRType.soa)
    }

    func test_caseOfQueryNamePreservedInAnswer_RFC4343() throws {
        let r = try ask(Fixture.query("WwW.ExAmPlE.TeSt"))
        XCTAssertEqual(r.questions.first?.name.description, "WwW.ExAmPlE.TeSt.")
        XCTAssertEqual(r.answers.first?.name.description, "WwW.ExAmPlE.TeSt.")
    }

    func test_cnameIsChasedInsideTheZone_RFC1034_4_3_2() throws {
        let r = try ask(Fixture.query("api.example.test"))
        XCTAssertEqual(r.answers.map(\.type), [RRType.cname, RRType.a])
        XCTAssertEqual(r.answers.last?.name, DNSName("www.example.test"))
        let away = try ask(Fixture.query("away.example.test"))
        XCTAssertEqual(away.answers.map(\.type), [RRType.cname], "out-of-zone target is left to the resolver")
        let cnameItself = try ask(Fixture.query("api.example.test", RRType.cname))
        XCTAssertEqual(cnameItself.answers.map(\.type), [RRType.cname])
    }

    /// `lodestar check` refuses CNAME loops, but the server must not hang on one either (a topology built in code).
    func test_cnameLoopTerminates() throws {
        var t = try Fixture.topology()
        t.zone.records += [StaticRecord(name: "loop1.example.test", ttlSeconds: 300, data: .cname("loop2.example.test")),
                           StaticRecord(name: "loop2.example.test", ttlSeconds: 300, data: .cname("loop1.example.test"))]
        let authority = Authority(topology: t, geo: TableLocator.sample, health: StaticHealthView())
        let r = try Fixture.ask(authority, Fixture.query("loop1.example.test"))
        XCTAssertEqual(r.answers.map(\.type), [RRType.cname, RRType.cname])
        XCTAssertEqual(r.rcode, RCode.noError)
    }

    func test_mxAnswerCarriesGlue_RFC1035_3_3_9() throws {
        let r = try ask(Fixture.query("example.test", RRType.mx))
        XCTAssertEqual(r.answers.map(\.type), [RRType.mx])
        XCTAssertEqual(r.additional.filter { $0.type == RRType.a }.map(\.name), [DNSName("mail.example.test")!])
    }

    func test_apexNSWithGlue() throws {
        let r = try ask(Fixture.query("example.test", RRType.ns))
        XCTAssertEqual(r.answers.map(\.type), [RRType.ns])
        XCTAssertEqual(Set(r.additional.map(\.type)), [RRType.a, RRType.aaaa, RRType.opt])
    }

    func test_referralBelowDelegation_RFC1034_4_3_2() throws {
        let r = try ask(Fixture.query("host.sub.example.test"))
        XCTAssertFalse(r.header.authoritative)
        XCTAssertTrue(r.answers.isEmpty)
        XCTAssertEqual(r.authority.map(\.type), [RRType.ns])
        XCTAssertEqual(r.additional.first?.name, DNSName("ns.sub.example.test"))
    }

    func test_anyGetsOneRRset_RFC8482() throws {
        let r = try ask(Fixture.query("example.test", RRType.any))
        XCTAssertEqual(Set(r.answers.map(\.type)).count, 1)
        let svc = try ask(Fixture.query("www.example.test", RRType.any))
        XCTAssertEqual(svc.answers.map(\.type), [RRType.a])
    }

    // MARK: Negative answers

    func test_nxdomainCarriesSOA_RFC2308_2_1() throws {
        let r = try ask(Fixture.query("nope.example.test"))
        XCTAssertEqual(r.rcode, RCode.nxDomain)
        XCTAssertTrue(r.header.authoritative)
        XCTAssertTrue(r.answers.isEmpty)
        XCTAssertEqual(r.authority.map(\.type), [RRType.soa])
        XCTAssertEqual(r.authority.first?.ttl, 60, "min(SOA TTL, MINIMUM), RFC 2308 §3")
    }

    func test_nodataCarriesSOA_RFC2308_2_2() throws {
        let r = try ask(Fixture.query("mail.example.test", RRType.aaaa))
        XCTAssertEqual(r.rcode, RCode.noError)
        XCTAssertTrue(r.answers.isEmpty)
        XCTAssertEqual(r.authority.map(\.type), [RRType.soa])
        let svc = try ask(Fixture.query("www.example.test", RRType.txt))
        XCTAssertEqual(svc.rcode, RCode.noError)
        XCTAssertTrue(svc.answers.isEmpty)
    }

    func test_emptyNonTerminalIsNodataNotNxdomain_RFC8020() throws {
        let r = try ask(Fixture.query("b.example.test"))
        XCTAssertEqual(r.rcode, RCode.noError)
        XCTAssertTrue(r.answers.isEmpty)
        let below = try ask(Fixture.query("x.a.b.example.test"))
        XCTAssertEqual(below.rcode, RCode.nxDomain)
    }

    func test_nameOutsideZoneIsRefused() throws {
        let r = try ask(Fixture.query("www.example.com"))
        XCTAssertEqual(r.rcode, RCode.refused)
        XCTAssertFalse(r.header.authoritative)
        XCTAssertTrue(r.answers.isEmpty)
        XCTAssertEqual(try ask(Fixture.query("test")).rcode, RCode.refused, "the parent of the apex is outside")
    }

    func test_zoneTransferIsRefused() throws {
        XCTAssertEqual(try ask(Fixture.query("example.test", RRType.axfr), transport: .tcp).rcode, RCode.refused)
    }

    // MARK: Errors

    func test_otherOpcodesGetNOTIMP_RFC1035_4_1_1() throws {
        var q = Fixture.query("www.example.test")
        q[2] = (q[2] & 0x87) | (4 << 3)  // NOTIFY
        let r = try ask(q)
        XCTAssertEqual(r.rcode, RCode.notImp)
        XCTAssertEqual(r.header.opcode, 4)
    }

    func test_questionCountOtherThanOneIsFORMERR() throws {
        var none = DNSMessage()
        none.header.id = 9
        XCTAssertEqual(try ask(none.encoded()).rcode, RCode.formErr)
        var two = DNSMessage()
        two.questions = [DNSQuestion(name: DNSName("a.example.test")!, type: 1, qclass: 1),
                         DNSQuestion(name: DNSName("b.example.test")!, type: 1, qclass: 1)]
        let r = try ask(two.encoded())
        XCTAssertEqual(r.rcode, RCode.formErr)
        XCTAssertTrue(r.questions.isEmpty)
    }

    func test_malformedBodyGetsFORMERRWithSameID() throws {
        var q = Fixture.query("www.example.test", id: 0x4242, edns: nil)
        q.removeLast(3)
        let r = try ask(q)
        XCTAssertEqual(r.header.id, 0x4242)
        XCTAssertEqual(r.rcode, RCode.formErr)
    }

    func test_shortPacketsAndResponsesAreDropped() throws {
        var rng = FastRandom(seed: 3)
        let client = IPAddress("127.0.0.1")!
        XCTAssertNil(authority.respond(to: [], from: client, transport: .udp, random: &rng))
        XCTAssertNil(authority.respond(to: [1, 2, 3, 4, 5], from: client, transport: .udp, random: &rng))
        var resp = Fixture.query("www.example.test")
        resp[2] |= 0x80
        XCTAssertNil(authority.respond(to: resp, from: client, transport: .udp, random: &rng), "never answer a response")
    }

    func test_ednsVersionAboveZeroGetsBADVERS_RFC6891_6_1_3() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 1, [])))
        XCTAssertEqual(r.rcode, RCode.badVers)
        XCTAssertEqual(r.header.rcode, 0, "low bits zero; 16 lives in the OPT's extended RCODE")
        XCTAssertEqual((r.opt?.ttl ?? 0) >> 16 & 0xFF, 0, "we answer with the version we speak")
        XCTAssertTrue(r.answers.isEmpty)
    }

    func test_twoOPTRecordsAreFORMERR_RFC6891_6_1_1() throws {
        var m = try DNSMessage(decoding: Fixture.query("www.example.test"))
        m.additional.append(m.additional[0])
        XCTAssertEqual(try ask(m.encoded()).rcode, RCode.formErr)
    }

    func test_malformedECSIsFORMERR_RFC7871_7_1_1() throws {
        let bad = EDNSOption(code: EDNSOptionCode.clientSubnet, data: [0, 1, 24, 0, 81, 2])
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [bad])))
        XCTAssertEqual(r.rcode, RCode.formErr)
        XCTAssertNotNil(r.opt, "the FORMERR still carries OPT")
        let scoped = try ask(Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24", scope: 24)])))
        XCTAssertEqual(scoped.rcode, RCode.formErr)
    }

    // MARK: EDNS

    func test_optEchoedWithOurPayloadSize_RFC6891_6_2_3() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (4096, 0, [])))
        XCTAssertEqual(r.opt?.rclass, 1232)
        XCTAssertNil(try ask(Fixture.query("www.example.test", edns: nil)).opt, "no OPT in reply without OPT in query")
    }

    func test_nsidAnswersNodeId_RFC5001() throws {
        let r = try ask(Fixture.query("www.example.test", edns: (1232, 0, [EDNSOption(code: 3, data: [])])))
        guard case .opt(let options)? = r.opt?.rdata else { return XCTFail("no OPT") }
        XCTAssertEqual(options.first { $0.code == 3 }?.data, Array("test-node".utf8))
        guard case .opt(let none)? = try ask(Fixture.query("www.example.test")).opt?.rdata else { return XCTFail("no OPT") }
        XCTAssertFalse(none.contains { $0.code == 3 }, "NSID only when asked")
    }

    func test_udpAnswerTooBigIsTruncated_RFC6891_7() throws {
        let small = try ask(Fixture.query("big.example.test", RRType.txt, edns: (512, 0, [])))
        XCTAssertTrue(small.header.truncated)
        XCTAssertTrue(small.answers.isEmpty)
        XCTAssertNotNil(small.opt)
        let noEDNS = try ask(Fixture.query("big.example.test", RRType.txt, edns: nil))
        XCTAssertTrue(noEDNS.header.truncated, "512 without EDNS (RFC 1035 §4.2.1)")
        let big = try ask(Fixture.query("big.example.test", RRType.txt, edns: (1232, 0, [])))
        XCTAssertFalse(big.header.truncated)
        let tcp = try ask(Fixture.query("big.example.test", RRType.txt, edns: nil), transport: .tcp)
        XCTAssertFalse(tcp.header.truncated)
        XCTAssertEqual(tcp.answers.count, 1)
    }

    func test_dnssecOKBitIsCopied_RFC3225_3() throws {
        var q = try DNSMessage(decoding: Fixture.query("www.example.test"))
        q.additional[0].ttl |= 0x8000
        XCTAssertEqual((try ask(q.encoded()).opt?.ttl ?? 0) & 0x8000, 0x8000)
    }

    func test_chaosIdServerGivesNodeId_RFC4892() throws {
        let r = try ask(Fixture.query("id.server", RRType.txt, qclass: RRClass.ch))
        XCTAssertEqual(r.answers.first?.rdata, .txt([Array("test-node".utf8)]))
        XCTAssertEqual(try ask(Fixture.query("other.server", RRType.txt, qclass: RRClass.ch)).rcode, RCode.refused)
    }

    func test_chaosConfigLodestarGivesVersionAndSerial() throws {
        let a = Authority(topology: try Fixture.topology(), geo: TableLocator.sample, health: StaticHealthView(), configVersion: "0123abcd4567")
        let r = try Fixture.ask(a, Fixture.query("config.lodestar", RRType.txt, qclass: RRClass.ch))
        let serial = try Fixture.topology().zone.soa.serial
        XCTAssertEqual(r.answers.first?.rdata, .txt([Array("version=0123abcd4567".utf8), Array("serial=\(serial)".utf8)]))
        XCTAssertEqual(r.answers.first?.ttl, 0)
    }

    func test_responseCarriesTheDecisionForMetrics() throws {
        let a = try Fixture.authority()
        var random = SystemRandomNumberGenerator()
        let ecs = Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")]))
        let r = try XCTUnwrap(a.respond(to: ecs, from: .v4(0x7F00_0001), transport: .udp, random: &random))
        XCTAssertEqual(r.qtype, RRType.a)
        XCTAssertTrue(r.hadClientSubnet)
        let d = try XCTUnwrap(r.decision, "an address answer names its edge")
        XCTAssertFalse(d.edge.isEmpty)
        XCTAssertEqual(try Fixture.topology().edge(d.edge)?.region, d.region)
        let soa = try XCTUnwrap(a.respond(to: Fixture.query("example.test", RRType.soa, edns: nil), from: .v4(0x7F00_0001),
                                          transport: .udp, random: &random))
        XCTAssertNil(soa.decision, "no GSLB decision behind a SOA answer")
        XCTAssertFalse(soa.hadClientSubnet)
    }

    func test_unknownClassIsRefused() throws {
        XCTAssertEqual(try ask(Fixture.query("www.example.test", qclass: 4)).rcode, RCode.refused)
    }
}

/// The decision trace: `CH TXT <service name>` explains the IN answer the same client would get.
final class TraceTests: XCTestCase {
    func trace(_ a: Authority, ecs: String?, from client: String) throws -> DNSMessage {
        let options = ecs.map { [Fixture.ecs($0)] } ?? []
        return try Fixture.ask(a, Fixture.query("www.example.test", RRType.txt, qclass: RRClass.ch, edns: (1232, 0, options)), from: client)
    }

    func lines(_ m: DNSMessage) -> [String] {
        guard case .txt(let strings)? = m.answers.first?.rdata else { return [] }
        return strings.map { String(decoding: $0, as: UTF8.self) }
    }

    func test_traceNamesPlacementCandidatesAndChoice() throws {
        let a = try Fixture.authority(down: ["edge-eu"])
        let r = try trace(a, ecs: "81.2.69.0/24", from: "127.0.0.1")
        XCTAssertEqual(r.rcode, RCode.noError)
        let text = lines(r)
        XCTAssertEqual(text.first, "client 81.2.69.0 (ECS); GeoIP network 81.2.69.0/24")
        XCTAssertTrue(text.contains("placed by GeoIP: -, GB, EU (51.51, -0.13)"), "\(text)")
        XCTAssertTrue(text.contains { $0.hasPrefix("candidate edge-eu region eu-central") && $0.hasSuffix("down") }, "\(text)")
        XCTAssertTrue(text.contains("answer edge-us 127.0.1.1"), "EU is down: the trace names the next-nearest\n\(text)")
        XCTAssertEqual(r.clientSubnet?.scopePrefixLength, 24)
        // The IN answer agrees with the trace.
        let answer = try Fixture.ask(a, Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(answer.answerAddresses, ["127.0.1.1"])
    }

    func test_traceBySourceAddressAndOverride() throws {
        let a = try Fixture.authority()
        let bySource = lines(try trace(a, ecs: nil, from: "127.0.0.1"))
        XCTAssertEqual(bySource.first, "client 127.0.0.1 (source address); GeoIP network 127.0.0.0/8")
        XCTAssertTrue(bySource.contains("location unknown -> fallback region us-east"), "\(bySource)")
        let pinned = lines(try trace(a, ecs: "85.214.7.0/24", from: "127.0.0.1"))
        XCTAssertTrue(pinned.contains("placed by override 85.214.7.0/24 -> region ap-southeast"), "\(pinned)")
    }

    func test_traceIsForLoopbackClientsByDefault() throws {
        let a = try Fixture.authority()
        XCTAssertEqual(try trace(a, ecs: "81.2.69.0/24", from: "8.8.8.8").rcode, RCode.refused)
        var rng = FastRandom(seed: 1)
        let q = Fixture.query("www.example.test", RRType.txt, qclass: RRClass.ch)
        XCTAssertEqual(a.respond(to: q, from: IPAddress("127.0.0.1")!, transport: .udp, random: &rng)?.reusable, false,
                       "a trace depends on the source address even with ECS: never packet-cached")
    }

    func test_traceAccessSetting() throws {
        let anyJSON = Fixture.topologyJSON.replacingOccurrences(of: #""geoDatabase": "unused.mmdb""#,
                                                                with: #""geoDatabase": "unused.mmdb", "trace": "any""#)
        let open = Authority(topology: try Topology.decode(Data(anyJSON.utf8), file: "t"), geo: TableLocator.sample, health: StaticHealthView())
        XCTAssertEqual(try trace(open, ecs: nil, from: "8.8.8.8").rcode, RCode.noError)
        let offJSON = Fixture.topologyJSON.replacingOccurrences(of: #""geoDatabase": "unused.mmdb""#,
                                                                with: #""geoDatabase": "unused.mmdb", "trace": "off""#)
        let off = Authority(topology: try Topology.decode(Data(offJSON.utf8), file: "t"), geo: TableLocator.sample, health: StaticHealthView())
        XCTAssertEqual(try trace(off, ecs: nil, from: "127.0.0.1").rcode, RCode.refused)
        let badJSON = Fixture.topologyJSON.replacingOccurrences(of: #""geoDatabase": "unused.mmdb""#,
                                                                with: #""geoDatabase": "unused.mmdb", "trace": "everyone""#)
        XCTAssertThrowsError(try Topology.decode(Data(badJSON.utf8), file: "t")) { error in
            XCTAssertTrue("\(error)".contains("t: dns.trace: \"everyone\" is not one of off, loopback, any"), "\(error)")
        }
    }
}

/// Wildcard records (RFC 4592): synthesis from `*.` the closest encloser, and the names that block it.
final class WildcardTests: XCTestCase {
    func authority() throws -> Authority {
        let json = Fixture.topologyJSON.replacingOccurrences(of: "\"records\": [", with: """
        "records": [
          { "name": "*.wild", "type": "A", "value": "127.0.0.77" },
          { "name": "*.wild", "type": "TXT", "value": "wild" },
          { "name": "host.wild", "type": "A", "value": "127.0.0.78" },
          { "name": "b.c.wild", "type": "A", "value": "127.0.0.79" },
          { "name": "*.cn", "type": "CNAME", "value": "www.example.test." },
        """).replacingOccurrences(of: "\"services\": {", with: """
        "services": {
          "*.cdn": { "edges": ["edge-us", "edge-eu", "edge-ap"], "ttl": 20 },
        """)
        return Authority(topology: try Topology.decode(Data(json.utf8), file: "w.json"), geo: TableLocator.sample,
                         health: StaticHealthView())
    }

    func ask(_ name: String, _ type: UInt16 = RRType.a) throws -> DNSMessage {
        try Fixture.ask(try authority(), Fixture.query(name, type), from: "81.2.69.7")
    }

    func test_wildcardSynthesis_RFC4592_3_3_1() throws {
        for name in ["a.wild.example.test", "x.y.wild.example.test", "A.Wild.example.test", "*.wild.example.test"] {
            let r = try ask(name)
            XCTAssertEqual(r.header.rcode, 0, name)
            XCTAssertEqual(r.answerAddresses, ["127.0.0.77"], name)
            XCTAssertEqual(r.answers.first?.name.description, name + ".", "the owner is the query name, as asked")
        }
        let cname = try ask("a.cn.example.test")
        XCTAssertEqual(cname.answers.map(\.type), [RRType.cname, RRType.a], "a wildcard CNAME is chased")
        XCTAssertEqual(cname.answers.first?.name.description, "a.cn.example.test.")
    }

    /// A wildcard service: every name below `cdn` is answered with the nearest edge, owner as asked.
    func test_wildcardServiceAnswersWithTheNearestEdge() throws {
        let london = try Fixture.ask(try authority(), Fixture.query("img.cdn.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        XCTAssertEqual(london.answerAddresses, ["127.0.2.1"], "London gets eu-central")
        XCTAssertEqual(london.answers.first?.name.description, "img.cdn.example.test.")
        XCTAssertEqual(london.answers.first?.ttl, 20)
        XCTAssertNotNil(london.clientSubnet, "the ECS scope is given as for any service")
        let tokyo = try Fixture.ask(try authority(), Fixture.query("a.b.cdn.example.test", edns: (1232, 0, [Fixture.ecs("133.1.0.0/16")])))
        XCTAssertEqual(tokyo.answerAddresses, ["127.0.3.1"], "Tokyo gets ap-southeast")
    }

    func test_namesThatBlockTheWildcard_RFC4592_2_2() throws {
        XCTAssertEqual(try ask("host.wild.example.test").answerAddresses, ["127.0.0.78"], "an existing name answers for itself")
        let below = try ask("sub.host.wild.example.test")
        XCTAssertEqual(below.header.rcode, 3, "closest encloser host.wild has no wildcard: NXDOMAIN")
        for ent in ["c.wild.example.test", "wild.example.test"] {
            let r = try ask(ent)
            XCTAssertEqual(r.header.rcode, 0, ent)
            XCTAssertTrue(r.answers.isEmpty, "an empty non-terminal is NODATA, not a wildcard match: \(ent)")
            XCTAssertEqual(r.authority.first?.type, RRType.soa, ent)
        }
        let noMX = try ask("a.wild.example.test", RRType.mx)
        XCTAssertTrue(noMX.answers.isEmpty, "the wildcard has no MX: NODATA")
        XCTAssertEqual(noMX.header.rcode, 0)
    }
}
