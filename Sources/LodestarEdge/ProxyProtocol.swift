import LodestarTopology

/// What a PROXY protocol header says about the connection it precedes.
public struct ProxyHeader: Sendable, Equatable {
    /// The original client address; nil for `UNKNOWN`, `LOCAL` and address families other than TCP over IPv4/IPv6.
    public var source: IPAddress?
    /// The original client port.
    public var sourcePort: Int?
    /// The address the client connected to.
    public var destination: IPAddress?
    /// The port the client connected to.
    public var destinationPort: Int?
    /// Bytes of the header, to drop from the front of the stream.
    public var consumed: Int

    public init(source: IPAddress? = nil, sourcePort: Int? = nil, destination: IPAddress? = nil,
                destinationPort: Int? = nil, consumed: Int) {
        self.source = source
        self.sourcePort = sourcePort
        self.destination = destination
        self.destinationPort = destinationPort
        self.consumed = consumed
    }
}

/// Outcome of parsing the first bytes of a connection as a PROXY protocol header.
public enum ProxyParseResult: Sendable, Equatable {
    /// A valid prefix so far; call again with more bytes.
    case needMoreData
    /// A complete, valid header.
    case header(ProxyHeader)
    /// Not a valid v1 or v2 header; close the connection.
    case invalid(String)
}

/// PROXY protocol v1 (text) and v2 (binary) header parser, after haproxy's proxy-protocol.txt.
///
/// The input is untrusted: every read is bounds-checked against the buffer's count, whatever the bytes say.
public enum ProxyProtocol {
    /// Longest v1 header, CRLF included (spec §2.1).
    public static let maxV1Length = 107
    /// The 12-byte v2 signature `\r\n\r\n\0\r\nQUIT\n`.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// The v1 prefix `PROXY `.
    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)

    /// Parses a header at the start of `bytes`; bytes after the header are left alone (see `consumed`).
    public static func parse(_ bytes: [UInt8]) -> ProxyParseResult {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// Parses a header at the start of `bytes`; bytes after the header are left alone (see `consumed`).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> ProxyParseResult {
        let n = bytes.count
        if n == 0 { return .needMoreData }
        if prefixMatches(bytes, v1Prefix) {
            return n < v1Prefix.count ? .needMoreData : parseV1(bytes)
        }
        if prefixMatches(bytes, v2Signature) {
            return n < v2Signature.count ? .needMoreData : parseV2(bytes)
        }
        return .invalid("not a PROXY protocol header")
    }

    /// True when the first min(count, expected.count) bytes equal `expected`'s.
    private static func prefixMatches(_ bytes: UnsafeRawBufferPointer, _ expected: [UInt8]) -> Bool {
        let n = min(bytes.count, expected.count)
        var i = 0
        while i < n {
            if bytes[i] != expected[i] { return false }
            i += 1
        }
        return true
    }

    // MARK: v1

    private static let cr: UInt8 = 0x0D
    private static let lf: UInt8 = 0x0A
    private static let space: UInt8 = 0x20

    /// Parses a v1 line; `bytes` starts with `PROXY ` (checked by the caller).
    private static func parseV1(_ bytes: UnsafeRawBufferPointer) -> ProxyParseResult {
        let n = bytes.count
        // The CR must come by index 105 (CRLF ending at 107 bytes): no CR in the first 106 bytes is already too long.
        let crLimit = maxV1Length - 1
        let limit = min(n, crLimit)
        var lineEnd = -1
        var i = v1Prefix.count
        while i < limit {
            let b = bytes[i]
            if b == cr { lineEnd = i; break }
            if b < 0x20 || b > 0x7E { return .invalid("v1 header has a control or non-ASCII byte") }
            i += 1
        }
        guard lineEnd >= 0 else {
            return n >= crLimit ? .invalid("v1 header longer than 107 bytes") : .needMoreData
        }
        guard lineEnd + 1 < n else { return .needMoreData }
        guard bytes[lineEnd + 1] == lf else { return .invalid("v1 header: CR not followed by LF") }
        let consumed = lineEnd + 2

        guard let proto = field(bytes, from: v1Prefix.count, end: lineEnd) else { return .invalid("v1 header: empty protocol") }
        if equals(bytes, proto, "UNKNOWN") {
            // Anything may follow UNKNOWN up to the CRLF; the receiver ignores it.
            return .header(ProxyHeader(consumed: consumed))
        }
        let isV4: Bool
        if equals(bytes, proto, "TCP4") {
            isV4 = true
        } else if equals(bytes, proto, "TCP6") {
            isV4 = false
        } else {
            return .invalid("v1 header: unknown protocol")
        }
        guard let src = field(bytes, from: proto.upperBound + 1, end: lineEnd),
              let dst = field(bytes, from: src.upperBound + 1, end: lineEnd),
              let sport = field(bytes, from: dst.upperBound + 1, end: lineEnd),
              let dport = field(bytes, from: sport.upperBound + 1, end: lineEnd),
              dport.upperBound == lineEnd
        else { return .invalid("v1 header: wrong number of fields") }
        let source = isV4 ? parseIPv4(bytes, src) : parseIPv6(bytes, src)
        let destination = isV4 ? parseIPv4(bytes, dst) : parseIPv6(bytes, dst)
        guard let source, let destination else { return .invalid("v1 header: bad address") }
        guard let sourcePort = parsePort(bytes, sport), let destinationPort = parsePort(bytes, dport) else {
            return .invalid("v1 header: bad port")
        }
        return .header(ProxyHeader(source: source, sourcePort: sourcePort, destination: destination,
                                   destinationPort: destinationPort, consumed: consumed))
    }

    /// The non-empty run of non-space bytes starting at `start` and ending at a single space or `end`; nil when empty.
    private static func field(_ bytes: UnsafeRawBufferPointer, from start: Int, end: Int) -> Range<Int>? {
        guard start < end, end <= bytes.count else { return nil }
        var i = start
        while i < end && bytes[i] != space { i += 1 }
        return i > start ? start..<i : nil
    }

    /// True when the bytes in `range` spell `word` exactly.
    private static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ word: StaticString) -> Bool {
        guard range.count == word.utf8CodeUnitCount, range.upperBound <= bytes.count else { return false }
        return word.withUTF8Buffer { w in
            var j = 0
            for i in range {
                if bytes[i] != w[j] { return false }
                j += 1
            }
            return true
        }
    }

    /// A decimal port 0...65535 without sign or leading zeros.
    static func parsePort(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard range.count >= 1, range.count <= 5, range.upperBound <= bytes.count else { return nil }
        if range.count > 1 && bytes[range.lowerBound] == 0x30 { return nil }
        var value = 0
        for i in range {
            let d = bytes[i] &- 0x30
            guard d <= 9 else { return nil }
            value = value * 10 + Int(d)
        }
        return value <= 65535 ? value : nil
    }

    /// Strict dotted-quad IPv4: four decimal parts 0...255, no leading zeros, nothing else.
    static func parseIPv4(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> IPAddress? {
        guard let v = parseIPv4Value(bytes, range) else { return nil }
        return .v4(v)
    }

    /// The host-order value of a strict dotted-quad IPv4 text in `range`.
    private static func parseIPv4Value(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt32? {
        guard range.upperBound <= bytes.count, range.count >= 7, range.count <= 15 else { return nil }
        var value: UInt32 = 0
        var part: UInt32 = 0
        var digits = 0
        var parts = 0
        var i = range.lowerBound
        while i <= range.upperBound {
            if i == range.upperBound || bytes[i] == 0x2E {
                guard digits > 0 else { return nil }
                value = value << 8 | part
                parts += 1
                part = 0
                digits = 0
            } else {
                let d = bytes[i] &- 0x30
                guard d <= 9 else { return nil }
                if digits == 1 && part == 0 { return nil }  // leading zero
                digits += 1
                part = part * 10 + UInt32(d)
                guard digits <= 3, part <= 255 else { return nil }
            }
            i += 1
        }
        return parts == 4 ? value : nil
    }

    /// RFC 4291 §2.2 IPv6 text: hex groups of 1–4 digits, one optional `::`, an optional dotted-quad tail.
    static func parseIPv6(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> IPAddress? {
        guard range.upperBound <= bytes.count, range.count >= 2, range.count <= 45 else { return nil }
        var head: UInt128 = 0, headCount = 0
        var tail: UInt128 = 0, tailCount = 0
        var compressed = false
        var i = range.lowerBound
        let end = range.upperBound

        /// Appends one 16-bit group on the correct side of the `::`; false when there are too many.
        func append(_ group: UInt16) -> Bool {
            guard headCount + tailCount < 8 else { return false }
            if compressed {
                tail = tail << 16 | UInt128(group)
                tailCount += 1
            } else {
                head = head << 16 | UInt128(group)
                headCount += 1
            }
            return true
        }

        if bytes[i] == 0x3A {
            guard bytes[i + 1] == 0x3A else { return nil }
            compressed = true
            i += 2
        }
        while i < end {
            let groupStart = i
            var group: UInt16 = 0
            var digits = 0
            while i < end, let h = hexValue(bytes[i]) {
                digits += 1
                if digits <= 4 { group = group << 4 | UInt16(h) }
                i += 1
            }
            if i < end && bytes[i] == 0x2E {
                // Dotted-quad tail: the last 32 bits.
                guard let v4 = parseIPv4Value(bytes, groupStart..<end),
                      append(UInt16(truncatingIfNeeded: v4 >> 16)), append(UInt16(truncatingIfNeeded: v4))
                else { return nil }
                i = end
                break
            }
            guard digits >= 1, digits <= 4, append(group) else { return nil }
            if i == end { break }
            guard bytes[i] == 0x3A else { return nil }
            i += 1
            if i < end && bytes[i] == 0x3A {
                guard !compressed else { return nil }
                compressed = true
                i += 1
            } else if i == end {
                return nil  // a trailing single colon
            }
        }
        let value: UInt128
        if compressed {
            guard headCount + tailCount <= 7 else { return nil }
            value = head << UInt128(16 * (8 - headCount)) | tail
        } else {
            guard headCount == 8 else { return nil }
            value = head
        }
        return .v6(UInt64(truncatingIfNeeded: value >> 64), UInt64(truncatingIfNeeded: value))
    }

    /// The value of an ASCII hex digit.
    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    // MARK: v2

    /// v2 header fixed part: signature, version/command, family/protocol, length.
    private static let v2FixedLength = 16

    /// Parses a v2 header; `bytes` starts with the full 12-byte signature (checked by the caller).
    private static func parseV2(_ bytes: UnsafeRawBufferPointer) -> ProxyParseResult {
        let n = bytes.count
        guard n > 12 else { return .needMoreData }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid("v2 header: version is not 2") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid("v2 header: unknown command") }
        guard n > 13 else { return .needMoreData }
        let family = bytes[13] >> 4
        let transport = bytes[13] & 0x0F
        guard family <= 3, transport <= 2 else { return .invalid("v2 header: unknown address family or protocol") }
        guard n >= v2FixedLength else { return .needMoreData }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        let isProxy = command == 1
        if isProxy {
            // AF_INET: 2×4 + 2×2, AF_INET6: 2×16 + 2×2, AF_UNIX: 2×108.
            let needed: Int
            switch family {
            case 1: needed = 12
            case 2: needed = 36
            case 3: needed = 216
            default: needed = 0
            }
            guard length >= needed else { return .invalid("v2 header: address block shorter than its family") }
        }
        let total = v2FixedLength + length
        guard n >= total else { return .needMoreData }
        // LOCAL: the proxy's own connection (health checks); addresses are ignored. Other families: no address.
        guard isProxy, transport == 1, family == 1 || family == 2 else { return .header(ProxyHeader(consumed: total)) }
        let a = v2FixedLength
        if family == 1 {
            let src = IPAddress.v4(readUInt32(bytes, a))
            let dst = IPAddress.v4(readUInt32(bytes, a + 4))
            return .header(ProxyHeader(source: src, sourcePort: Int(readUInt16(bytes, a + 8)), destination: dst,
                                       destinationPort: Int(readUInt16(bytes, a + 10)), consumed: total))
        }
        let src = IPAddress.v6(readUInt64(bytes, a), readUInt64(bytes, a + 8))
        let dst = IPAddress.v6(readUInt64(bytes, a + 16), readUInt64(bytes, a + 24))
        return .header(ProxyHeader(source: src, sourcePort: Int(readUInt16(bytes, a + 32)), destination: dst,
                                   destinationPort: Int(readUInt16(bytes, a + 34)), consumed: total))
    }

    // The readers below are only called with offsets the caller has checked against the header length.

    /// Big-endian UInt16 at `offset` (0 when out of range).
    private static func readUInt16(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        guard offset >= 0, offset + 2 <= bytes.count else { return 0 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    /// Big-endian UInt32 at `offset` (0 when out of range).
    private static func readUInt32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        guard offset >= 0, offset + 4 <= bytes.count else { return 0 }
        var v: UInt32 = 0
        for i in offset..<offset + 4 { v = v << 8 | UInt32(bytes[i]) }
        return v
    }

    /// Big-endian UInt64 at `offset` (0 when out of range).
    private static func readUInt64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        guard offset >= 0, offset + 8 <= bytes.count else { return 0 }
        var v: UInt64 = 0
        for i in offset..<offset + 8 { v = v << 8 | UInt64(bytes[i]) }
        return v
    }
}
