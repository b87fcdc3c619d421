import Foundation
import LodestarDNS
import LodestarGeo
import LodestarSelection
import LodestarTopology
import XCTest

/// `Authority.fastRespond` against its oracle, `respond`: for random queries (names in random case — services, a
/// CNAME to one, static names (apex, glue, a TXT too big for 512 bytes), names at and under a delegation —,
/// A/AAAA/TXT/ANY/MX/NS/SOA/DNSKEY, with or without EDNS, DO, NSID, ECS of
/// either family and any prefix, malformed ECS, unknown options, odd flags and counts) under random health, whatever
/// the fast path answers is byte for byte what the full path sends, and what it declines the full path answers.
final class FastPathTests: XCTestCase {
    static func database() throws -> GeoDatabase {
        let points: [(String, Double, Double, String)] = [
            ("81.2.69.0/24", 51.51, -0.13, "GB"), ("85.214.0.0/16", 52.52, 13.40, "DE"), ("8.8.8.0/24", 37.39, -122.08, "US"),
            ("133.0.0.0/8", 35.68, 139.69, "JP"), ("177.0.0.0/10", -23.5, -46.6, "BR"), ("41.0.0.0/11", -26.2, 28.0, "ZA"),
            ("2a00:1450::/29", 53.35, -6.26, "IE"), ("2400:cb00::/32", 1.35, 103.8, "SG"), ("2600::/20", 40.7, -74.0, "US"),
        ]
        let records = points.map { GeoRecord(prefix: IPPrefix($0.0)!, latitude: $0.1, longitude: $0.2, country: $0.3, continent: "XX") }
        let bytes = try MMDBWriter.build(records: records, description: "fast path test", buildEpoch: 1)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fastpath-\(UUID().uuidString).mmdb")
        try Data(bytes).write(to: url)
        return try GeoDatabase(path: url.path)
    }

    /// Clients inside and outside the database's networks, of both families.
    static let subnets = ["81.2.69.0/24", "85.214.7.0/24", "85.214.0.0/16", "8.8.8.0/24", "133.1.0.0/16", "177.1.2.0/24",
                          "41.5.0.0/16", "9.9.9.0/24", "2a00:1450:4001::/48", "2400:cb00:1::/48", "2600:1::/32", "2001:db8::/32"]

    func randomQuery(_ rng: inout FastRandom) -> [UInt8] {
        let names = ["www.example.test", "WwW.Example.TEST", "two.example.test", "closed.example.test", "api.example.test",
                     "mail.example.test", "x.sub.example.test", "nope.example.test", "www.example.com", "example.test",
                     "ns1.example.test", "big.example.test", "a.b.example.test", "ns.sub.example.test", "sub.example.test"]
        var name = names[Int.random(in: 0..<names.count, using: &rng)]
        if Int.random(in: 0..<4, using: &rng) == 0 {
            name = String(name.map { Bool.random(using: &rng) ? Character($0.uppercased()) : $0 })
        }
        let types = [RRType.a, RRType.a, RRType.aaaa, RRType.aaaa, RRType.txt, RRType.any, RRType.mx, RRType.ns, RRType.soa,
                     RRType.dnskey]
        var h = DNSHeader()
        h.id = UInt16.random(in: 0...UInt16.max, using: &rng)
        h.recursionDesired = Bool.random(using: &rng)
        h.checkingDisabled = Int.random(in: 0..<4, using: &rng) == 0
        h.authenticData = Int.random(in: 0..<8, using: &rng) == 0
        let qclass = Int.random(in: 0..<12, using: &rng) == 0 ? RRClass.ch : RRClass.in
        var m = DNSMessage(header: h, questions: [DNSQuestion(name: DNSName(name)!, type: types[Int.random(in: 0..<types.count, using: &rng)], qclass: qclass)])
        if Int.random(in: 0..<5, using: &rng) > 0 {
            var options: [EDNSOption] = []
            if Bool.random(using: &rng) { options.append(EDNSOption(code: EDNSOptionCode.nsid, data: [])) }
            if Int.random(in: 0..<6, using: &rng) == 0 { options.append(EDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])) }
            if Int.random(in: 0..<5, using: &rng) > 0 {
                let subnet = IPPrefix(Self.subnets[Int.random(in: 0..<Self.subnets.count, using: &rng)])!
                let width = subnet.address.isIPv4 ? 32 : 128
                let length = Int.random(in: 0..<6, using: &rng) == 0 ? 0 : Int.random(in: 1...width, using: &rng)
                var bytes = Array(subnet.address.bytes.prefix((length + 7) / 8))
                if length % 8 != 0, !bytes.isEmpty {
                    bytes[bytes.count - 1] &= ~(UInt8(0xFF) >> UInt8(length % 8))
                    if Int.random(in: 0..<10, using: &rng) == 0 { bytes[bytes.count - 1] |= 1 }  // malformed: bits past the prefix
                }
                options.append(EDNSOption(code: EDNSOptionCode.clientSubnet, data: [0, width == 32 ? 1 : 2, UInt8(length), 0] + bytes))
            }
            let payload = [UInt16(0), 512, 1232, 4096][Int.random(in: 0..<4, using: &rng)]
            let version: UInt32 = Int.random(in: 0..<20, using: &rng) == 0 ? 1 : 0
            let doBit: UInt32 = Bool.random(using: &rng) ? 0x8000 : 0
            m.additional.append(ResourceRecord(name: .root, type: RRType.opt, rclass: payload, ttl: version << 16 | doBit, rdata: .opt(options)))
        }
        var bytes = m.encoded()
        if Int.random(in: 0..<30, using: &rng) == 0 { bytes.append(0) }  // trailing garbage
        return bytes
    }

    func test_fastPathIsByteForByteTheFullPath() throws {
        try compareWithTheFullPath(signer: nil)
    }

    /// The same with a signed zone: answers to DO queries carry the RRSIGs the full path sends, byte for byte.
    func test_fastPathIsByteForByteTheFullPathWhenSigning() throws {
        let signer = ZoneSigner(apex: DNSName("example.test")!, keys: [.init(.generate())])
        try compareWithTheFullPath(signer: signer)
        XCTAssertGreaterThan(signer.signaturesMade, 0)
    }

    func compareWithTheFullPath(signer: ZoneSigner?) throws {
        let topology = try Fixture.topology()
        let db = try Self.database()
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        let view = LiveHealthView()
        let authority = Authority(topology: topology, geo: db, health: view, engine: engine, signer: signer)
        var rng = FastRandom(seed: 0xFA57)
        var picks: [UInt16] = []
        var out = [UInt8](repeating: 0, count: 4096)
        var fast = 0, same = 0, drawn = 0, declined = 0, statics = 0, aliases = 0
        let states: [EdgeHealth] = [.healthy, .healthy, .healthy, .down, .suspect, .overloaded(shed: 0.5)]
        for round in 0..<400 {
            view.update(Dictionary(uniqueKeysWithValues: topology.edges.map { ($0.id, states[Int.random(in: 0..<states.count, using: &rng)]) }))
            let snapshot = engine.healthSnapshot(of: view)
            for _ in 0..<40 {
                let packet = randomQuery(&rng)
                let client: IPAddress = Bool.random(using: &rng) ? IPAddress("81.2.69.7")! : IPAddress("2600:1::5")!
                var r1 = FastRandom(seed: UInt64(round)), r2 = FastRandom(seed: UInt64(round))
                let full = authority.respond(to: packet, from: client, transport: .udp, random: &r1)
                let answer = packet.withUnsafeBytes { p in
                    out.withUnsafeMutableBytes { o in
                        authority.fastRespond(to: p, from: client, health: snapshot, random: &r2, picks: &picks, into: o)
                    }
                }
                // The same over the query's own buffer (as the UDP loop calls it): the same reply, or, when declined, the
                // query left untouched for the full path.
                var slot = packet + [UInt8](repeating: 0xEE, count: 4096 - packet.count)
                var r3 = FastRandom(seed: UInt64(round))
                let inPlace = slot.withUnsafeMutableBytes { s in
                    authority.fastRespond(to: UnsafeRawBufferPointer(rebasing: s[0..<packet.count]), from: client, health: snapshot,
                                          random: &r3, picks: &picks, into: s)
                }
                XCTAssertEqual(inPlace?.length, answer?.length, "in place and apart agree on answering: \(packet)")
                if inPlace == nil { XCTAssertEqual(Array(slot.prefix(packet.count)), packet, "a declined query is left as it came") }
                guard let answer else {
                    declined += 1
                    continue
                }
                fast += 1
                if answer.reusable { XCTAssertEqual(Array(slot.prefix(answer.length)), Array(out.prefix(answer.length)), "in place: \(packet)") }
                let bytes = Array(out.prefix(answer.length))
                let reference = try XCTUnwrap(full, "the full path dropped what the fast path answered")
                let label = "query \(packet) from \(client)"
                // Signed answers are kept out of the packet cache (their signatures expire), drawn or not.
                let signedAnswer = signer != nil && reference.bytes.count > 12 && Self.hasDO(packet)
                XCTAssertEqual(answer.reusable, reference.reusable || (signedAnswer && answer.reusable), label)
                XCTAssertEqual(answer.qtype, reference.qtype, label)
                XCTAssertEqual(answer.hadClientSubnet, reference.hadClientSubnet, label)
                XCTAssertEqual(authority.fastName(of: answer), reference.qname, label)
                guard answer.reusable else {
                    // A draw among equally near or shedding edges: the same shape, not necessarily the same edges.
                    drawn += 1
                    XCTAssertEqual(bytes.count, reference.bytes.count, label)
                    continue
                }
                XCTAssertEqual(bytes, reference.bytes, label)
                if authority.fastName(of: answer) == DNSName("api.example.test") { aliases += 1 }
                if answer.isStatic {
                    statics += 1
                    XCTAssertNil(reference.decision, label)
                    XCTAssertNil(authority.decision(of: answer), label)
                } else {
                    XCTAssertEqual(reference.decision?.edge, engine.edge(slot: answer.slot, candidate: answer.firstEdge)?.id, label)
                }
                if bytes == reference.bytes { same += 1 }
            }
        }
        print("FAST-PATH\(signer == nil ? "" : " (signing)") \(fast) answered by the fast path (\(same) byte-identical, \(drawn) drawn, \(statics) static, \(aliases) through the CNAME), \(declined) declined")
        XCTAssertGreaterThan(statics, 300, "static names should be answered by the fast path too")
        XCTAssertGreaterThan(aliases, 50, "a CNAME to a service should be answered by the fast path too")
        XCTAssertGreaterThan(same, 1200, "the fast path answered too few queries for the comparison to mean much")
        XCTAssertGreaterThan(declined, 3000, "the generator should make many queries the fast path declines")
    }

    /// Whether a query's OPT record sets DO.
    static func hasDO(_ packet: [UInt8]) -> Bool {
        guard let m = try? DNSMessage(decoding: packet), let opt = m.opt else { return false }
        return opt.ttl & 0x8000 != 0
    }

    /// Truncated or corrupted packets are declined or answered exactly as the full path answers them; none traps.
    func test_mangledPacketsNeverTrapAndMatchTheFullPath() throws {
        let topology = try Fixture.topology()
        let db = try Self.database()
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        let authority = Authority(topology: topology, geo: db, health: StaticHealthView(), engine: engine)
        let snapshot = engine.healthSnapshot(of: StaticHealthView())
        var rng = FastRandom(seed: 0xBAD)
        var picks: [UInt16] = []
        var out = [UInt8](repeating: 0, count: 600)
        var answered = 0
        for _ in 0..<20_000 {
            var packet = randomQuery(&rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: packet = Array(packet.prefix(Int.random(in: 0...packet.count, using: &rng)))
            case 1: packet[Int.random(in: 0..<packet.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            default: break
            }
            var r1 = FastRandom(seed: 1), r2 = FastRandom(seed: 1)
            let answer = packet.withUnsafeBytes { p in
                out.withUnsafeMutableBytes { o in
                    authority.fastRespond(to: p, from: IPAddress("8.8.8.8")!, health: snapshot, random: &r2, picks: &picks, into: o)
                }
            }
            guard let answer, answer.reusable else { continue }
            answered += 1
            let full = authority.respond(to: packet, from: IPAddress("8.8.8.8")!, transport: .udp, random: &r1)
            XCTAssertEqual(Array(out.prefix(answer.length)), full?.bytes, "\(packet)")
        }
        XCTAssertGreaterThan(answered, 1000)
    }
}

/// Static names on the fast path (`FastStatic`): which spellings and queries it takes, and what it leaves to the full path.
final class FastStaticTests: XCTestCase {
    func answer(_ authority: Authority, _ name: String, _ type: UInt16, edns: Bool = false, doBit: Bool = false) throws -> (FastAnswer?, [UInt8]?) {
        var m = DNSMessage(questions: [DNSQuestion(name: try XCTUnwrap(DNSName(name)), type: type, qclass: RRClass.in)])
        m.header.id = 0x1234
        if edns { m.additional.append(ResourceRecord(name: .root, type: RRType.opt, rclass: 1232, ttl: doBit ? 0x8000 : 0, rdata: .opt([]))) }
        let packet = m.encoded()
        var picks: [UInt16] = []
        var out = [UInt8](repeating: 0, count: 1232)
        var r = FastRandom(seed: 1)
        let health = try XCTUnwrap(authority.fastHealthSnapshot())
        let answer = packet.withUnsafeBytes { p in
            out.withUnsafeMutableBytes { o in authority.fastRespond(to: p, from: IPAddress("8.8.8.8")!, health: health, random: &r, picks: &picks, into: o) }
        }
        return (answer, answer.map { Array(out.prefix($0.length)) })
    }

    func test_staticNamesInLowerCaseAreAnsweredAndOtherSpellingsAreLeftToTheFullPath() throws {
        let topology = try Fixture.topology()
        let db = try FastPathTests.database()
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        let authority = Authority(topology: topology, geo: db, health: StaticHealthView(), engine: engine)
        var r = FastRandom(seed: 1)
        // The apex MX with its glue, as the full path sends it.
        let (mx, mxBytes) = try answer(authority, "example.test", RRType.mx, edns: true)
        let reference = try XCTUnwrap(authority.respond(to: {
            var m = DNSMessage(questions: [DNSQuestion(name: DNSName("example.test")!, type: RRType.mx, qclass: RRClass.in)])
            m.header.id = 0x1234
            m.additional.append(ResourceRecord(name: .root, type: RRType.opt, rclass: 1232, ttl: 0, rdata: .opt([])))
            return m.encoded()
        }(), from: IPAddress("8.8.8.8")!, transport: .udp, random: &r))
        XCTAssertEqual(mx?.isStatic, true)
        XCTAssertEqual(mxBytes, reference.bytes)
        let decoded = try DNSMessage(decoding: try XCTUnwrap(mxBytes))
        XCTAssertEqual(decoded.answers.count, 1)
        XCTAssertEqual(decoded.additional.map(\.type), [RRType.a, RRType.opt], "glue, then OPT")
        XCTAssertEqual(authority.fastName(of: try XCTUnwrap(mx)), DNSName("example.test"))
        // A CNAME to a service asked in lower case: the CNAME, then the service's address record owned by its target.
        let (alias, aliasBytes) = try answer(authority, "api.example.test", RRType.a, edns: true)
        XCTAssertEqual(alias?.isStatic, false)
        let chased = try DNSMessage(decoding: try XCTUnwrap(aliasBytes))
        XCTAssertEqual(chased.answers.map(\.type), [RRType.cname, RRType.a])
        XCTAssertEqual(chased.answers.last?.name, DNSName("www.example.test"))
        XCTAssertEqual(authority.fastName(of: try XCTUnwrap(alias)), DNSName("api.example.test"))
        // Declined: another spelling (of a static name or an alias), a type the name lacks, the CNAME itself, a name
        // under a delegation, a TXT over 512 bytes without EDNS (the full path truncates it), and everything at a
        // service but A/AAAA.
        XCTAssertNil(try answer(authority, "Example.Test", RRType.mx).0)
        XCTAssertNil(try answer(authority, "mail.example.test", RRType.aaaa).0)
        XCTAssertNil(try answer(authority, "API.example.test", RRType.a).0)
        XCTAssertNil(try answer(authority, "api.example.test", RRType.cname).0)
        XCTAssertNil(try answer(authority, "ns.sub.example.test", RRType.a).0)
        XCTAssertNil(try answer(authority, "big.example.test", RRType.txt).0)
        XCTAssertNotNil(try answer(authority, "big.example.test", RRType.txt, edns: true).0)
        XCTAssertNil(try answer(authority, "www.example.test", RRType.txt).0)
    }

    func test_aSignedZoneLeavesDOQueriesForStaticNamesToTheFullPath() throws {
        let topology = try Fixture.topology()
        let db = try FastPathTests.database()
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        let signer = ZoneSigner(apex: DNSName("example.test")!, keys: [.init(.generate())])
        let authority = Authority(topology: topology, geo: db, health: StaticHealthView(), engine: engine, signer: signer)
        XCTAssertNil(try answer(authority, "mail.example.test", RRType.a, edns: true, doBit: true).0)
        XCTAssertNotNil(try answer(authority, "mail.example.test", RRType.a, edns: true).0)
        XCTAssertNotNil(try answer(authority, "example.test", RRType.dnskey).0, "DNSKEY without DO is a static answer")
    }
}
