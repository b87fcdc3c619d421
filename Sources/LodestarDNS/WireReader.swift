/// Why a DNS message could not be decoded; every case says where in the packet it happened.
public enum DNSDecodingError: Error, Equatable, Sendable {
    /// The packet ended before a field at this offset was complete.
    case truncated(at: Int)
    /// A compression pointer pointed forward, at itself, or formed a loop (RFC 1035 §4.1.4 allows only earlier offsets).
    case badPointer(at: Int)
    /// A name is longer than 255 octets or uses a reserved label type (RFC 1035 §3.1, RFC 6891 §5).
    case badName(at: Int)
    /// An RDATA length disagrees with its record type's layout.
    case badRData(at: Int)
    /// Bytes remain after the last record the header counted.
    case trailingBytes(at: Int)
}

/// Bounds-checked big-endian reads over a received packet; nothing here can trap on hostile input.
public struct WireReader {
    /// The whole packet (compression pointers are offsets into it).
    public let bytes: [UInt8]
    /// Offset of the next unread byte.
    public var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    /// Bytes not yet read.
    public var remaining: Int { bytes.count - offset }

    public mutating func u8() throws(DNSDecodingError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated(at: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() throws(DNSDecodingError) -> UInt16 {
        guard offset >= 0, bytes.count - offset >= 2 else { throw .truncated(at: offset) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    public mutating func u32() throws(DNSDecodingError) -> UInt32 {
        guard offset >= 0, bytes.count - offset >= 4 else { throw .truncated(at: offset) }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// Reads `count` raw bytes.
    public mutating func take(_ count: Int) throws(DNSDecodingError) -> ArraySlice<UInt8> {
        guard count >= 0, offset >= 0, bytes.count - offset >= count else { throw .truncated(at: offset) }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// Reads a possibly compressed domain name (RFC 1035 §4.1.4) into uncompressed wire form.
    /// Pointers must point strictly backwards from the label that holds them, so loops are impossible;
    /// the expanded name is limited to 255 octets.
    public mutating func name() throws(DNSDecodingError) -> DNSName {
        var out = [UInt8]()
        out.reserveCapacity(32)
        var cursor = offset
        var jumped = false
        var lowestTarget = offset  // every jump must go below all previous positions
        while true {
            guard cursor >= 0, cursor < bytes.count else { throw .truncated(at: cursor) }
            let len = bytes[cursor]
            switch len & 0xC0 {
            case 0x00:
                if len == 0 {
                    out.append(0)
                    if !jumped { offset = cursor + 1 }
                    guard out.count <= 255 else { throw .badName(at: cursor) }
                    return DNSName(wire: out)
                }
                let end = cursor + 1 + Int(len)
                guard end <= bytes.count else { throw .truncated(at: cursor) }
                guard out.count + 1 + Int(len) + 1 <= 255 else { throw .badName(at: cursor) }
                out.append(len)
                out.append(contentsOf: bytes[(cursor + 1)..<end])
                cursor = end
            case 0xC0:
                guard cursor + 1 < bytes.count else { throw .truncated(at: cursor) }
                let target = Int(len & 0x3F) << 8 | Int(bytes[cursor + 1])
                guard target < lowestTarget, target < cursor else { throw .badPointer(at: cursor) }
                if !jumped { offset = cursor + 2 }
                jumped = true
                lowestTarget = target
                cursor = target
            default:
                // 0x40 (extended label, RFC 6891 §5 deprecated) and 0x80 are reserved.
                throw .badName(at: cursor)
            }
        }
    }
}
