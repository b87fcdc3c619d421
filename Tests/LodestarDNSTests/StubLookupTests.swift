import LodestarDNS
import LodestarTopology
import XCTest

/// The edge's stub lookups: the query it sends, and what it reads from answers (CNAME chains, negative answers,
/// truncation, answers to another question), plus the system resolver files.
final class StubLookupTests: XCTestCase {
    private func answer(id: UInt16 = 7, name: String = "app.internal", type: UInt16 = RRType.a, rcode: UInt8 = 0,
                        truncated: Bool = false, answers: [ResourceRecord] = [], authority: [ResourceRecord] = []) -> [UInt8] {
        var h = DNSHeader()
        h.id = id
        h.isResponse = true
        h.recursionDesired = true
        h.recursionAvailable = true
        h.truncated = truncated
        h.rcode = rcode
        return DNSMessage(header: h, questions: [DNSQuestion(name: DNSName(name)!, type: type, qclass: RRClass.in)],
                          answers: answers, authority: authority).encoded()
    }

    private func rr(_ name: String, ttl: UInt32, _ rdata: RData) -> ResourceRecord {
        let type: UInt16
        switch rdata {
        case .a: type = RRType.a
        case .aaaa: type = RRType.aaaa
        case .cname: type = RRType.cname
        default: type = RRType.soa
        }
        return ResourceRecord(name: DNSName(name)!, type: type, rclass: RRClass.in, ttl: ttl, rdata: rdata)
    }

    func test_queryAsksRecursivelyWithEDNS() throws {
        let bytes = try XCTUnwrap(StubLookup.query(name: "app.internal", type: RRType.aaaa, id: 0x1234))
        let m = try DNSMessage(decoding: bytes)
        XCTAssertEqual(m.header.id, 0x1234)
        XCTAssertTrue(m.header.recursionDesired)
        XCTAssertFalse(m.header.isResponse)
        XCTAssertEqual(m.questions.first?.type, RRType.aaaa)
        XCTAssertEqual(m.opt?.rclass, StubLookup.payloadSize)
        XCTAssertNil(StubLookup.query(name: String(repeating: "a", count: 64) + ".internal", type: RRType.a, id: 1))
    }

    func test_addressesAfterACNAMEChainWithTheSmallestTTL() {
        let bytes = answer(answers: [rr("app.internal", ttl: 300, .cname(DNSName("lb.internal")!)),
                                     rr("lb.internal", ttl: 20, .a(0x0A00_0002)), rr("lb.internal", ttl: 30, .a(0x0A00_0001))])
        XCTAssertEqual(StubLookup.parse(bytes, name: "APP.internal", type: RRType.a, id: 7),
                       .addresses([.v4(0x0A00_0002), .v4(0x0A00_0001)], ttl: 20))
    }

    func test_negativeAnswersCarryTheSOATTL() {
        let soa = rr("internal", ttl: 60, .soa(mname: DNSName("ns.internal")!, rname: DNSName("h.internal")!, serial: 1,
                                                refresh: 1, retry: 1, expire: 1, minimum: 15))
        XCTAssertEqual(StubLookup.parse(answer(rcode: 3, authority: [soa]), name: "app.internal", type: RRType.a, id: 7),
                       .none(ttl: 15, nxdomain: true))
        XCTAssertEqual(StubLookup.parse(answer(authority: [soa]), name: "app.internal", type: RRType.a, id: 7),
                       .none(ttl: 15, nxdomain: false), "NODATA")
    }

    func test_whatIsNotAnAnswer() {
        XCTAssertEqual(StubLookup.parse(answer(truncated: true), name: "app.internal", type: RRType.a, id: 7), .truncated)
        for (bytes, label) in [(answer(id: 8), "another id"), (answer(name: "other.internal"), "another name"),
                               (answer(type: RRType.aaaa), "another type"), (answer(rcode: 2), "SERVFAIL"),
                               (Array(answer().prefix(20)), "cut bytes")] {
            guard case .failure = StubLookup.parse(bytes, name: "app.internal", type: RRType.a, id: 7) else {
                return XCTFail("\(label) was taken as an answer")
            }
        }
        let loop = answer(answers: [rr("app.internal", ttl: 5, .cname(DNSName("b.internal")!)),
                                    rr("b.internal", ttl: 5, .cname(DNSName("app.internal")!))])
        XCTAssertEqual(StubLookup.parse(loop, name: "app.internal", type: RRType.a, id: 7), .failure("CNAME loop"))
    }

    func test_resolverFiles() {
        let conf = "# comment\nsearch example.test\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nnameserver ::1\noptions ndots:2\n"
        XCTAssertEqual(ResolverFiles.nameservers(resolvConf: conf).map(\.description), ["10.0.0.53:53", "[::1]:53"])
        let hosts = "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost # both\n10.1.2.3 App.Internal.\nnot-an-ip name\n"
        let table = ResolverFiles.hosts(hosts)
        XCTAssertEqual(table["localhost"], [.v4(0x7F00_0001), IPAddress("::1")!])
        XCTAssertEqual(table["app.internal"], [.v4(0x0A01_0203)])
        XCTAssertNil(table["name"])
    }
}
