import LodestarEdge
import LodestarTopology
import XCTest

/// PROXY protocol v1 and v2 parsing (haproxy proxy-protocol.txt), including hostile input.
final class ProxyProtocolTests: XCTestCase {
    // MARK: helpers

    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// A v2 header: signature, version 2 + command, family/protocol byte, length, body.
    func v2(command: UInt8 = 1, familyProtocol: UInt8, body: [UInt8], version: UInt8 = 2) -> [UInt8] {
        Self.signature + [version << 4 | command, familyProtocol, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    }

    func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

    func v1(_ text: String) -> [UInt8] { Array(text.utf8) }

    func header(_ result: ProxyParseResult, file: StaticString = #filePath, line: UInt = #line) -> ProxyHeader? {
        guard case .header(let h) = result else {
            XCTFail("expected a header, got \(result)", file: file, line: line)
            return nil
        }
        return h
    }

    func assertInvalid(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        guard case .invalid = ProxyProtocol.parse(bytes) else {
            XCTFail("expected invalid for \(String(decoding: bytes, as: UTF8.self).debugDescription), got \(ProxyProtocol.parse(bytes))",
                    file: file, line: line)
            return
        }
    }

    // MARK: v1

    func test_v1TCP4() throws {
        let line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
        let h = try XCTUnwrap(header(ProxyProtocol.parse(v1(line + "GET / HTTP/1.1\r\n"))))
        XCTAssertEqual(h, ProxyHeader(source: IPAddress("192.168.0.1"), sourcePort: 56324,
                                      destination: IPAddress("192.168.0.11"), destinationPort: 443, consumed: line.utf8.count))
    }

    func test_v1TCP6() throws {
        let line = "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n"
        let h = try XCTUnwrap(header(ProxyProtocol.parse(v1(line))))
        XCTAssertEqual(h.source, IPAddress("2001:db8::1"))
        XCTAssertEqual(h.destination, IPAddress("::ffff:10.0.0.1"))
        XCTAssertEqual(h.sourcePort, 0)
        XCTAssertEqual(h.destinationPort, 65535)
        XCTAssertEqual(h.consumed, line.utf8.count)
    }

    func test_v1LongestHeaderIs107Bytes() throws {
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        let unknown = "PROXY UNKNOWN \(full) \(full) 65535 65535\r\n"
        XCTAssertEqual(unknown.utf8.count, 107)
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v1(unknown)))), ProxyHeader(consumed: 107))
        let tcp6 = "PROXY TCP6 \(full) \(full) 65535 65535\r\n"
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v1(tcp6)))).source,
                       .v6(UInt64.max, UInt64.max))
    }

    func test_v1Unknown() throws {
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v1("PROXY UNKNOWN\r\nGET")))), ProxyHeader(consumed: 15))
        let line = "PROXY UNKNOWN anything goes here\r\n"
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v1(line)))), ProxyHeader(consumed: line.utf8.count))
        assertInvalid(v1("PROXY UNKNOWNX\r\n"))
    }

    func test_v1RejectsMalformedLines() {
        let bad = [
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",          // missing port
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 1\r\n",    // extra field
            "PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",     // double space
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",     // trailing space
            "PROXY  TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            "PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n",      // protocol is case-sensitive
            "PROXY TCP5 192.168.0.1 192.168.0.11 56324 443\r\n",
            "PROXY TCP4 2001:db8::1 192.168.0.11 56324 443\r\n",      // family mismatch
            "PROXY TCP6 192.168.0.1 ::1 56324 443\r\n",
            "PROXY TCP6 ::1 192.168.0.1 56324 443\r\n",
            "PROXY TCP4 256.1.1.1 192.168.0.11 56324 443\r\n",
            "PROXY TCP4 1.2.3 192.168.0.11 56324 443\r\n",
            "PROXY TCP4 1.2.3.4.5 192.168.0.11 56324 443\r\n",
            "PROXY TCP4 01.2.3.4 192.168.0.11 56324 443\r\n",         // leading zero
            "PROXY TCP4 1..3.4 192.168.0.11 56324 443\r\n",
            "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",      // port range
            "PROXY TCP4 192.168.0.1 192.168.0.11 0443 443\r\n",       // leading zero
            "PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
            "PROXY TCP4 192.168.0.1 192.168.0.11 +1 443\r\n",
            "PROXY TCP4 192.168.0.1 192.168.0.11 123456 443\r\n",
            "PROXY TCP6 1:::2 ::1 1 2\r\n",
            "PROXY TCP6 1::2::3 ::1 1 2\r\n",
            "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
            "PROXY TCP6 12345:: ::1 1 2\r\n",
            "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
            "PROXY TCP6 [::1] ::1 1 2\r\n",
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",        // bare LF
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX",       // CR without LF
            "PROXY \r\n",
            "PROXY TCP4\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\u{7f}\r\n",
        ]
        for line in bad { assertInvalid(v1(line)) }
        assertInvalid([UInt8]("PROXY TCP4 ".utf8) + [0xC3, 0xA9] + [UInt8](" 1.2.3.4 1 2\r\n".utf8))
        assertInvalid([UInt8]("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n".utf8))
    }

    func test_v1LengthLimit() {
        // 105 bytes without CRLF: a 107-byte header may still end here.
        let long = [UInt8]("PROXY UNKNOWN ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 91)
        XCTAssertEqual(long.count, 105)
        XCTAssertEqual(ProxyProtocol.parse(long), .needMoreData)
        XCTAssertEqual(ProxyProtocol.parse(long + [0x0D]), .needMoreData)
        XCTAssertEqual(ProxyProtocol.parse(long + [0x0D, 0x0A]), .header(ProxyHeader(consumed: 107)))
        // A 106th byte that is not CR: the CRLF could only end past 107 bytes.
        XCTAssertEqual(ProxyProtocol.parse(long + [0x61]), .invalid("v1 header longer than 107 bytes"))
        XCTAssertEqual(ProxyProtocol.parse(long + [0x61, 0x0D, 0x0A]), .invalid("v1 header longer than 107 bytes"))
        assertInvalid(long + Array(repeating: 0x61, count: 1000))
    }

    func test_ipv6TextAgreesWithInetPton() throws {
        let samples = [
            "::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::8", "fe80::abcd:ef01",
            "FE80::ABCD", "::ffff:1.2.3.4", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:1.2.3.4", "0:0:0:0:0:0:0:0", "2001:0db8::0001",
            ":::", "1:::2", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "12345::", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4",
            ":1::", "1:", ":", "1::2::3", "::01.2.3.4", "1.2.3.4", "::1.2.3.4.5", "g::", "1:2:3:4:5:6:7", "::ffff:256.1.1.1",
        ]
        for text in samples {
            let result = ProxyProtocol.parse(v1("PROXY TCP6 \(text) ::1 1 2\r\n"))
            if let expected = IPAddress(text), !expected.isIPv4 {
                XCTAssertEqual(try XCTUnwrap(header(result)).source, expected, text)
            } else {
                guard case .invalid = result else { return XCTFail("\(text) should be invalid, got \(result)") }
            }
        }
    }

    // MARK: v2

    func test_v2ProxyIPv4WithTrailingData() throws {
        let body: [UInt8] = [192, 0, 2, 1, 198, 51, 100, 7] + be16(40000) + be16(443)
        let bytes = v2(familyProtocol: 0x11, body: body) + v1("GET / HTTP/1.1\r\n")
        let h = try XCTUnwrap(header(ProxyProtocol.parse(bytes)))
        XCTAssertEqual(h, ProxyHeader(source: IPAddress("192.0.2.1"), sourcePort: 40000,
                                      destination: IPAddress("198.51.100.7"), destinationPort: 443, consumed: 28))
    }

    func test_v2ProxyIPv6() throws {
        let src = try XCTUnwrap(IPAddress("2001:db8::42")).bytes, dst = try XCTUnwrap(IPAddress("2001:db8:1::1")).bytes
        let h = try XCTUnwrap(header(ProxyProtocol.parse(v2(familyProtocol: 0x21, body: src + dst + be16(1) + be16(8443)))))
        XCTAssertEqual(h, ProxyHeader(source: IPAddress("2001:db8::42"), sourcePort: 1,
                                      destination: IPAddress("2001:db8:1::1"), destinationPort: 8443, consumed: 52))
    }

    func test_v2TLVsAreSkipped() throws {
        let tlvs: [UInt8] = [0x02, 0x00, 0x0B] + Array("example.com".utf8) + [0x04, 0x00, 0x03, 0, 0, 0]  // AUTHORITY, NOOP
        let body: [UInt8] = [10, 0, 0, 1, 10, 0, 0, 2] + be16(1234) + be16(80) + tlvs
        let bytes = v2(familyProtocol: 0x11, body: body) + [0x47]
        let h = try XCTUnwrap(header(ProxyProtocol.parse(bytes)))
        XCTAssertEqual(h.source, IPAddress("10.0.0.1"))
        XCTAssertEqual(h.consumed, 16 + body.count)
    }

    func test_v2LocalHasNoAddresses() throws {
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v2(command: 0, familyProtocol: 0x00, body: [])))),
                       ProxyHeader(consumed: 16))
        // LOCAL with an address block: still ignored, but consumed.
        let body: [UInt8] = [10, 0, 0, 1, 10, 0, 0, 2] + be16(1) + be16(2)
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v2(command: 0, familyProtocol: 0x11, body: body)))),
                       ProxyHeader(consumed: 28))
        // LOCAL with a short block for its family is fine too: the receiver ignores it.
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v2(command: 0, familyProtocol: 0x21, body: [1, 2])))),
                       ProxyHeader(consumed: 18))
    }

    func test_v2OtherFamiliesAreConsumedWithoutAddresses() throws {
        // UNSPEC, UDP over IPv4, UNIX stream.
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v2(familyProtocol: 0x00, body: [9, 9])))), ProxyHeader(consumed: 18))
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v2(familyProtocol: 0x12, body: Array(repeating: 1, count: 12))))),
                       ProxyHeader(consumed: 28))
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(v2(familyProtocol: 0x31, body: Array(repeating: 0, count: 216))))),
                       ProxyHeader(consumed: 232))
    }

    func test_v2RejectsBadFields() {
        let v4body: [UInt8] = Array(repeating: 1, count: 12)
        assertInvalid(v2(familyProtocol: 0x11, body: v4body, version: 1))
        assertInvalid(v2(familyProtocol: 0x11, body: v4body, version: 3))
        assertInvalid(v2(command: 2, familyProtocol: 0x11, body: v4body))
        assertInvalid(v2(familyProtocol: 0x41, body: v4body))           // unknown family
        assertInvalid(v2(familyProtocol: 0x13, body: v4body))           // unknown protocol
        assertInvalid(v2(familyProtocol: 0x11, body: Array(v4body.prefix(11))))
        assertInvalid(v2(familyProtocol: 0x21, body: Array(repeating: 0, count: 35)))
        assertInvalid(v2(familyProtocol: 0x31, body: Array(repeating: 0, count: 215)))
    }

    func test_v2BadFieldsAreRejectedBeforeTheBodyArrives() {
        // Version, command and short address blocks are known from the fixed 16 bytes.
        XCTAssertEqual(ProxyProtocol.parse(Self.signature + [0x11]), .invalid("v2 header: version is not 2"))
        XCTAssertEqual(ProxyProtocol.parse(Self.signature + [0x2F]), .invalid("v2 header: unknown command"))
        XCTAssertEqual(ProxyProtocol.parse(Self.signature + [0x21, 0x51]),
                       .invalid("v2 header: unknown address family or protocol"))
        XCTAssertEqual(ProxyProtocol.parse(Self.signature + [0x21, 0x11, 0x00, 0x04]),
                       .invalid("v2 header: address block shorter than its family"))
    }

    func test_v2LargestHeaderWaitsForAllBytes() throws {
        let body = [UInt8](repeating: 0, count: 65535)
        let full = v2(familyProtocol: 0x11, body: body)
        XCTAssertEqual(ProxyProtocol.parse(Array(full.dropLast())), .needMoreData)
        XCTAssertEqual(try XCTUnwrap(header(ProxyProtocol.parse(full))).consumed, 16 + 65535)
    }

    // MARK: partial and garbage input

    func test_everyStrictPrefixOfAValidHeaderNeedsMoreData() throws {
        let src6 = try XCTUnwrap(IPAddress("2001:db8::42")).bytes
        let headers: [[UInt8]] = [
            v1("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
            v1("PROXY TCP6 2001:db8::1 ::1 56324 443\r\n"),
            v1("PROXY UNKNOWN\r\n"),
            v2(familyProtocol: 0x11, body: [192, 0, 2, 1, 198, 51, 100, 7] + be16(40000) + be16(443)),
            v2(familyProtocol: 0x21, body: src6 + src6 + be16(1) + be16(2) + [0x04, 0x00, 0x01, 0x00]),
            v2(command: 0, familyProtocol: 0x00, body: []),
        ]
        for full in headers {
            let expected = ProxyProtocol.parse(full)
            guard case .header(let h) = expected else { return XCTFail("\(full) should parse") }
            XCTAssertEqual(h.consumed, full.count)
            for cut in 0..<full.count {
                XCTAssertEqual(ProxyProtocol.parse(Array(full.prefix(cut))), .needMoreData, "prefix of \(cut) bytes")
            }
            XCTAssertEqual(ProxyProtocol.parse(full + [1, 2, 3]), expected, "trailing bytes are not part of the header")
        }
    }

    func test_garbageIsInvalidAtOnce() {
        assertInvalid(v1("GET / HTTP/1.1\r\n"))
        assertInvalid(v1("G"))
        assertInvalid([0x16, 0x03, 0x01])  // a TLS ClientHello
        assertInvalid(v1("PROXX"))
        assertInvalid(v1("proxy "))
        assertInvalid([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x58])
        assertInvalid([0x0D, 0x0A, 0x0A])
        XCTAssertEqual(ProxyProtocol.parse([]), .needMoreData)
        XCTAssertEqual(ProxyProtocol.parse(v1("PRO")), .needMoreData)
        XCTAssertEqual(ProxyProtocol.parse([0x0D, 0x0A, 0x0D]), .needMoreData)
    }

    func test_rawBufferEntryPointMatchesArray() {
        let bytes = v1("xxPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
        bytes.withUnsafeBytes { raw in
            let slice = UnsafeRawBufferPointer(rebasing: raw[2...])
            XCTAssertEqual(ProxyProtocol.parse(slice), ProxyProtocol.parse(Array(bytes.dropFirst(2))))
        }
    }

    /// 20k random and mutated inputs: never a trap, `consumed` always within the input and the format's bounds,
    /// and a header result is stable under more input.
    func test_fuzzRandomAndMutatedInputs() throws {
        var rng = FastRandom(seed: 0x5EED_0F_F00D)
        let src6 = try XCTUnwrap(IPAddress("2001:db8::42")).bytes
        let seeds: [[UInt8]] = [
            v1("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
            v1("PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 56324 443\r\n"),
            v1("PROXY UNKNOWN\r\n"),
            v2(familyProtocol: 0x11, body: [192, 0, 2, 1, 198, 51, 100, 7] + be16(40000) + be16(443)),
            v2(familyProtocol: 0x21, body: src6 + src6 + be16(1) + be16(2) + [0x04, 0x00, 0x01, 0x00]),
            v2(command: 0, familyProtocol: 0x00, body: []),
        ]
        var counts = (header: 0, more: 0, invalid: 0)
        for round in 0..<20_000 {
            var input: [UInt8]
            switch round % 4 {
            case 0:
                input = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                // Random tail after a valid prefix (either signature).
                let prefix = Bool.random(using: &rng) ? v1("PROXY ") : Self.signature
                input = prefix + (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            default:
                input = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    guard !input.isEmpty else { break }
                    let at = Int.random(in: 0..<input.count, using: &rng)
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: input[at] = UInt8.random(in: 0...255, using: &rng)
                    case 1: input[at] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                    case 2: input.remove(at: at)
                    default: input.insert(UInt8.random(in: 0...255, using: &rng), at: at)
                    }
                }
                if Bool.random(using: &rng) { input = Array(input.prefix(Int.random(in: 0...input.count, using: &rng))) }
            }
            let result = ProxyProtocol.parse(input)
            switch result {
            case .header(let h):
                counts.header += 1
                XCTAssertGreaterThan(h.consumed, 0)
                XCTAssertLessThanOrEqual(h.consumed, input.count)
                if input.first == UInt8(ascii: "P") {
                    XCTAssertLessThanOrEqual(h.consumed, ProxyProtocol.maxV1Length)
                } else {
                    XCTAssertGreaterThanOrEqual(h.consumed, 16)
                }
                XCTAssertEqual(ProxyProtocol.parse(input + [0x00, 0xFF]), result)
                XCTAssertEqual(ProxyProtocol.parse(Array(input.prefix(h.consumed))), result)
                if let port = h.sourcePort { XCTAssert((0...65535).contains(port)) }
                XCTAssertEqual(h.source == nil, h.sourcePort == nil)
            case .needMoreData:
                counts.more += 1
                XCTAssertLessThan(input.count, 16 + 65535)
            case .invalid:
                counts.invalid += 1
                XCTAssertFalse(input.isEmpty)
            }
        }
        XCTAssertGreaterThan(counts.header, 100, "mutations should keep some headers valid")
        XCTAssertGreaterThan(counts.more, 100)
        XCTAssertGreaterThan(counts.invalid, 1000)
    }
}
