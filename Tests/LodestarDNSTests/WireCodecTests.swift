import LodestarDNS
import LodestarTopology
import XCTest

/// The message codec against bytes captured from dig (see Fixtures/capture.sh) and hostile inputs.
final class WireCodecTests: XCTestCase {
    func test_decodesDigPlainQuery_RFC1035_4_1() throws {
        let bytes = try Fixture.digFixture("plain")
        let m = try DNSMessage(decoding: bytes)
        XCTAssertFalse(m.header.isResponse)
        XCTAssertTrue(m.header.recursionDesired)
        XCTAssertEqual(m.questions, [DNSQuestion(name: DNSName("www.example.test")!, type: RRType.a, qclass: RRClass.in)])
        let opt = try XCTUnwrap(m.opt)
        XCTAssertEqual(opt.rclass, 1232, "dig 9.18 advertises 1232 bytes")
        guard case .opt(let options) = opt.rdata else { return XCTFail("OPT rdata") }
        XCTAssertTrue(options.contains { $0.code == EDNSOptionCode.cookie && $0.data.count == 8 }, "dig sends a client cookie")
    }

    func test_digQueriesRoundTripByteForByte() throws {
        for name in ["plain", "ecs-v4", "ecs-v6", "nsid", "edns1", "noedns", "aaaa-mixedcase", "any"] {
            let bytes = try Fixture.digFixture(name)
            let m = try DNSMessage(decoding: bytes)
            XCTAssertEqual(m.encoded(), bytes, "fixture \(name)")
        }
    }

    func test_decodesDigECSOption_RFC7871_6() throws {
        let m = try DNSMessage(decoding: try Fixture.digFixture("ecs-v4"))
        guard case .opt(let options)? = m.opt?.rdata, let o = options.first(where: { $0.code == 8 }) else { return XCTFail("no ECS") }
        let ecs = try XCTUnwrap(ClientSubnet(optionData: o.data))
        XCTAssertEqual(ecs.family, 1)
        XCTAssertEqual(ecs.sourcePrefixLength, 24)
        XCTAssertEqual(ecs.scopePrefixLength, 0)
        XCTAssertEqual(ecs.addressBytes, [81, 2, 69])
        XCTAssertEqual(ecs.address, IPAddress("81.2.69.0"))

        let v6 = try DNSMessage(decoding: try Fixture.digFixture("ecs-v6"))
        guard case .opt(let o6)? = v6.opt?.rdata, let e6 = o6.first(where: { $0.code == 8 }) else { return XCTFail("no ECS") }
        let ecs6 = try XCTUnwrap(ClientSubnet(optionData: e6.data))
        XCTAssertEqual(ecs6.family, 2)
        XCTAssertEqual(ecs6.sourcePrefixLength, 48)
        XCTAssertEqual(ecs6.address, IPAddress("2a00:1450:4001::"))
    }

    func test_digEDNSVersionAndNSIDFixtures_RFC6891_RFC5001() throws {
        let e1 = try DNSMessage(decoding: try Fixture.digFixture("edns1"))
        XCTAssertEqual((e1.opt?.ttl ?? 0) >> 16 & 0xFF, 1)
        let nsid = try DNSMessage(decoding: try Fixture.digFixture("nsid"))
        guard case .opt(let options)? = nsid.opt?.rdata else { return XCTFail("no OPT") }
        XCTAssertTrue(options.contains(EDNSOption(code: EDNSOptionCode.nsid, data: [])))
        XCTAssertNil(try DNSMessage(decoding: try Fixture.digFixture("noedns")).opt)
    }

    func test_mixedCaseNameKeptAsSent_RFC4343() throws {
        let m = try DNSMessage(decoding: try Fixture.digFixture("aaaa-mixedcase"))
        XCTAssertEqual(m.questions.first?.name.description, "WwW.ExAmPlE.TeSt.")
        XCTAssertEqual(m.questions.first?.name.lowercased, DNSName("www.example.test"))
    }

    func test_encoderCompressesRepeatedNames_RFC1035_4_1_4() throws {
        let owner = DNSName("www.example.test")!
        var h = DNSHeader()
        h.isResponse = true
        let m = DNSMessage(header: h, questions: [DNSQuestion(name: owner, type: RRType.mx, qclass: RRClass.in)],
                           answers: [ResourceRecord(name: owner, type: RRType.mx, rclass: 1, ttl: 60,
                                                    rdata: .mx(preference: 10, exchange: DNSName("MAIL.example.test")!))])
        let bytes = m.encoded()
        // Question name 18 bytes at offset 12; answer owner is a 2-byte pointer to 12; MX exchange is "mail" + pointer to "example.test" at 16.
        XCTAssertEqual(Array(bytes[34..<36]), [0xC0, 12])
        let exchangeStart = 34 + 2 + 10 + 2
        XCTAssertEqual(Array(bytes[exchangeStart..<(exchangeStart + 7)]), [4, 77, 65, 73, 76, 0xC0, 16])
        XCTAssertEqual(try DNSMessage(decoding: bytes), m)
    }

    func test_compressionKeepsEachNamesCase_RFC4343_4_1() throws {
        // Found by the fuzzer: matching suffixes case-insensitively made "test" come back as "tesT".
        var h = DNSHeader()
        h.isResponse = true
        let m = DNSMessage(header: h, questions: [DNSQuestion(name: DNSName("WWW.Example.TEST")!, type: RRType.cname, qclass: 1)],
                           answers: [ResourceRecord(name: DNSName("WWW.Example.TEST")!, type: RRType.cname, rclass: 1, ttl: 60,
                                                    rdata: .cname(DNSName("edge.example.test")!))])
        let back = try DNSMessage(decoding: m.encoded())
        XCTAssertEqual(back, m)
        guard case .cname(let target) = back.answers[0].rdata else { return XCTFail("not a CNAME") }
        XCTAssertEqual(target.description, "edge.example.test.")
        let regress = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/regress-compression-case.bin"))
        let decoded = try DNSMessage(decoding: Array(regress))
        XCTAssertEqual(try DNSMessage(decoding: decoded.encoded()), decoded)
    }

    func test_pointerToItselfIsRejected() {
        // Header with QDCOUNT=1, then a name that is a pointer to offset 12 (itself).
        let bytes: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]
        XCTAssertThrowsError(try DNSMessage(decoding: bytes)) { XCTAssertEqual($0 as? DNSDecodingError, .badPointer(at: 12)) }
    }

    func test_pointerLoopBetweenTwoNamesIsRejected() {
        // Question at 12: label "a" then pointer to 17; at 17 (inside the answer) a pointer back to 12.
        var bytes: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]
        bytes += [1, 97, 0xC0, 17, 0]  // 12..16 (the 0 at 16 is never reached)
        bytes += [0xC0, 12]  // 17: pointer back
        XCTAssertThrowsError(try DNSMessage(decoding: bytes)) { error in
            guard case .badPointer? = error as? DNSDecodingError else { return XCTFail("\(error)") }
        }
    }

    func test_forwardPointerIsRejected() {
        let bytes: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 20, 0, 1, 0, 1, 0, 0, 1, 97, 0]
        XCTAssertThrowsError(try DNSMessage(decoding: bytes)) { XCTAssertEqual($0 as? DNSDecodingError, .badPointer(at: 12)) }
    }

    func test_longNameAndReservedLabelTypesAreRejected_RFC1035_3_1() {
        var bytes: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        for _ in 0..<5 { bytes += [63] + Array(repeating: 97, count: 63) }  // 320 octets > 255
        bytes += [0, 0, 1, 0, 1]
        XCTAssertThrowsError(try DNSMessage(decoding: bytes)) { error in
            guard case .badName? = error as? DNSDecodingError else { return XCTFail("\(error)") }
        }
        let ext: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 1, 0, 1]
        XCTAssertThrowsError(try DNSMessage(decoding: ext)) { XCTAssertEqual($0 as? DNSDecodingError, .badName(at: 12)) }
    }

    func test_everyTruncationOfAValidResponseFailsCleanly() throws {
        let authority = try Fixture.authority()
        var rng = FastRandom(seed: 1)
        let query = Fixture.query("example.test", RRType.mx, edns: (1232, 0, [EDNSOption(code: 3, data: [])]))
        let full = try XCTUnwrap(authority.respond(to: query, from: IPAddress("127.0.0.1")!, transport: .udp, random: &rng)).bytes
        XCTAssertNoThrow(try DNSMessage(decoding: full))
        for n in 0..<full.count {
            XCTAssertThrowsError(try DNSMessage(decoding: Array(full.prefix(n))), "prefix \(n) of \(full.count)")
        }
    }

    func test_trailingGarbageAndCountMismatchAreErrors() throws {
        var q = Fixture.query("www.example.test", edns: nil)
        q.append(0)
        XCTAssertThrowsError(try DNSMessage(decoding: q)) { XCTAssertEqual($0 as? DNSDecodingError, .trailingBytes(at: q.count - 1)) }
        var r = Fixture.query("www.example.test", edns: nil)
        r[11] = 5  // ARCOUNT says 5 records that are not there
        XCTAssertThrowsError(try DNSMessage(decoding: r)) { error in
            guard case .truncated? = error as? DNSDecodingError else { return XCTFail("\(error)") }
        }
    }

    func test_rdataLengthMustMatchType() {
        // One answer: root owner, type A, class IN, TTL 0, RDLENGTH 3.
        let bytes: [UInt8] = [0, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 3, 1, 2, 3]
        XCTAssertThrowsError(try DNSMessage(decoding: bytes)) { XCTAssertEqual($0 as? DNSDecodingError, .badRData(at: 23)) }
    }

    func test_ecsOptionValidation_RFC7871_6() {
        XCTAssertNotNil(ClientSubnet(optionData: [0, 1, 24, 0, 81, 2, 69]))
        XCTAssertNotNil(ClientSubnet(optionData: [0, 1, 0, 0]), "source /0 carries no address")
        XCTAssertNil(ClientSubnet(optionData: [0, 3, 24, 0, 81, 2, 69]), "unknown family")
        XCTAssertNil(ClientSubnet(optionData: [0, 1, 33, 0, 1, 2, 3, 4, 5]), "prefix longer than IPv4")
        XCTAssertNil(ClientSubnet(optionData: [0, 1, 24, 0, 81, 2]), "address shorter than ceil(24/8)")
        XCTAssertNil(ClientSubnet(optionData: [0, 1, 24, 0, 81, 2, 69, 0]), "address longer than ceil(24/8)")
        XCTAssertNil(ClientSubnet(optionData: [0, 1, 20, 0, 81, 2, 0x4F]), "bits set past the source prefix")
        XCTAssertNil(ClientSubnet(optionData: [0, 1, 24, 8, 81, 2, 69]), "non-zero SCOPE in a query")
        XCTAssertNil(ClientSubnet(optionData: [0, 1, 24]), "too short")
        XCTAssertNil(ClientSubnet(optionData: [0, 2, 129, 0] + Array(repeating: 0, count: 17)))
    }

    func test_namesCompareCaseInsensitivelyOnLabelBoundaries() {
        let zone = DNSName("example.test")!
        XCTAssertTrue(DNSName("WWW.Example.TEST")!.isSubdomain(of: zone))
        XCTAssertTrue(zone.isSubdomain(of: zone))
        XCTAssertFalse(DNSName("wwwexample.test")!.isSubdomain(of: zone))
        XCTAssertFalse(DNSName("example.test.org")!.isSubdomain(of: zone))
        XCTAssertEqual(DNSName("a.b.example.test")!.parent, DNSName("b.example.test"))
        XCTAssertNil(DNSName.root.parent)
        XCTAssertEqual(DNSName(wire: [3, 0x61, 0x2E, 0x00, 0]).description, "a\\.\\000.")
    }
}
