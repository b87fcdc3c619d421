import NIOCore

/// The on-disk entry format of `DiskStore` (all integers little-endian):
///
///     0   magic "LDSC"                      4 bytes
///     4   format version (1)                UInt16
///     6   flags (0)                         UInt16
///     8   header section length H           UInt32
///     12  header section                    H bytes
///         headerCRC                         UInt32, CRC-32 of bytes 0 ..< 12+H
///         body length B                     UInt64
///         body                              B bytes
///         fileCRC                           UInt32, CRC-32 of every byte before it
///
/// Header section: key, secondary key, vary flag (UInt8 0/1) + vary value, status (Int64), requestTime (Int64),
/// responseTime (Int64), response fields (UInt32 count, then name/value pairs), vary request fields (same);
/// every string is a UInt32 length followed by UTF-8 bytes. The separate header CRC lets the index be rebuilt
/// at start-up from the header section alone; the file CRC is checked on every read.
enum DiskEntryFormat {
    /// The four magic bytes, "LDSC".
    static let magic: UInt32 = 0x4353_444C
    /// The only format version written and accepted.
    static let version: UInt16 = 1
    /// Magic, version, flags and header length.
    static let prefixBytes = 12
    /// Bytes after the header section that are not body: header CRC, body length, file CRC.
    static let trailerBytes = 4 + 8 + 4
    /// Prefix plus the non-body bytes that follow the header section.
    static let fixedBytes = prefixBytes + trailerBytes

    /// The header section of an entry: everything but the body.
    struct Header: Equatable {
        var key: String
        var secondaryKey: String
        var vary: String?
        var status: Int
        var requestTime: Int64
        var responseTime: Int64
        var headers: [Field]
        var varyRequestHeaders: [Field]
        /// The body length declared by the file (checked against the file size by the parser).
        var bodyLength: Int

        /// One name/value pair (tuples are not Equatable).
        struct Field: Equatable {
            var name: String
            var value: String
        }
    }

    /// Serialises a response to the complete file image.
    static func encode(key: String, secondaryKey: String, vary: String?, response: CachedResponse) -> ByteBuffer {
        var header = ByteBuffer()
        writeString(key, to: &header)
        writeString(secondaryKey, to: &header)
        header.writeInteger(UInt8(vary == nil ? 0 : 1))
        writeString(vary ?? "", to: &header)
        header.writeInteger(Int64(response.status), endianness: .little)
        header.writeInteger(response.requestTime, endianness: .little)
        header.writeInteger(response.responseTime, endianness: .little)
        writeFields(response.headers, to: &header)
        writeFields(response.varyRequestHeaders, to: &header)

        let bodyLength = response.bodyBytes
        var out = ByteBuffer()
        out.reserveCapacity(fixedBytes + header.readableBytes + bodyLength)
        out.writeInteger(magic, endianness: .little)
        out.writeInteger(version, endianness: .little)
        out.writeInteger(UInt16(0), endianness: .little)
        out.writeInteger(UInt32(truncatingIfNeeded: header.readableBytes), endianness: .little)
        out.writeImmutableBuffer(header)
        out.writeInteger(CRC32.checksum(out), endianness: .little)
        out.writeInteger(UInt64(bodyLength), endianness: .little)
        for chunk in response.body { out.writeImmutableBuffer(chunk) }
        out.writeInteger(CRC32.checksum(out), endianness: .little)
        return out
    }

    /// Writes a UInt32 length and the UTF-8 bytes.
    private static func writeString(_ s: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(truncatingIfNeeded: s.utf8.count), endianness: .little)
        buffer.writeString(s)
    }

    /// Writes a UInt32 count and the name/value pairs.
    private static func writeFields(_ fields: HTTPFields, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(truncatingIfNeeded: fields.count), endianness: .little)
        for field in fields {
            writeString(field.name, to: &buffer)
            writeString(field.value, to: &buffer)
        }
    }

    /// The header section length declared by a 12-byte prefix, nil when the magic, version or flags are wrong.
    static func headerLength(prefix: ByteBuffer) -> Int? {
        guard let m = prefix.getInteger(at: prefix.readerIndex, endianness: .little, as: UInt32.self), m == magic,
              let v = prefix.getInteger(at: prefix.readerIndex + 4, endianness: .little, as: UInt16.self), v == version,
              let f = prefix.getInteger(at: prefix.readerIndex + 6, endianness: .little, as: UInt16.self), f == 0,
              let h = prefix.getInteger(at: prefix.readerIndex + 8, endianness: .little, as: UInt32.self)
        else { return nil }
        return Int(h)
    }

    /// Parses the start of a file (at least through the body length) of `fileSize` bytes; nil when anything is off:
    /// magic, version, lengths that do not add up to exactly the file size, header CRC, strings, trailing bytes.
    static func parseHeader(_ buffer: ByteBuffer, fileSize: Int) -> Header? {
        guard let h = headerLength(prefix: buffer), h <= fileSize - fixedBytes else { return nil }
        let start = buffer.readerIndex
        guard let headerCRC = buffer.getInteger(at: start + prefixBytes + h, endianness: .little, as: UInt32.self),
              let bodyLength64 = buffer.getInteger(at: start + prefixBytes + h + 4, endianness: .little, as: UInt64.self),
              let covered = buffer.getSlice(at: start, length: prefixBytes + h),
              CRC32.checksum(covered) == headerCRC,
              bodyLength64 == UInt64(fileSize - fixedBytes - h),
              var section = buffer.getSlice(at: start + prefixBytes, length: h)
        else { return nil }
        guard let key = readString(&section),
              let secondaryKey = readString(&section),
              let varyFlag = section.readInteger(as: UInt8.self), varyFlag <= 1,
              let varyValue = readString(&section),
              varyFlag == 1 || varyValue.isEmpty,
              let status64 = section.readInteger(endianness: .little, as: Int64.self),
              let status = Int(exactly: status64),
              let requestTime = section.readInteger(endianness: .little, as: Int64.self),
              let responseTime = section.readInteger(endianness: .little, as: Int64.self),
              let headers = readFields(&section),
              let varyRequestHeaders = readFields(&section),
              section.readableBytes == 0
        else { return nil }
        return Header(
            key: key, secondaryKey: secondaryKey, vary: varyFlag == 1 ? varyValue : nil, status: status,
            requestTime: requestTime, responseTime: responseTime, headers: headers,
            varyRequestHeaders: varyRequestHeaders, bodyLength: Int(bodyLength64))
    }

    /// Parses a complete file image, checking the file CRC; returns the header and the body (a slice of `buffer`).
    static func parseFile(_ buffer: ByteBuffer) -> (header: Header, body: ByteBuffer)? {
        let size = buffer.readableBytes
        guard size >= fixedBytes,
              let storedCRC = buffer.getInteger(at: buffer.readerIndex + size - 4, endianness: .little, as: UInt32.self),
              let covered = buffer.getSlice(at: buffer.readerIndex, length: size - 4),
              CRC32.checksum(covered) == storedCRC,
              let header = parseHeader(buffer, fileSize: size),
              let body = buffer.getSlice(at: buffer.readerIndex + size - 4 - header.bodyLength, length: header.bodyLength)
        else { return nil }
        return (header, body)
    }

    /// Reads a UInt32-length-prefixed UTF-8 string; nil when short or not valid UTF-8.
    private static func readString(_ buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(endianness: .little, as: UInt32.self),
              Int(length) <= buffer.readableBytes,
              let bytes = buffer.readSlice(length: Int(length))
        else { return nil }
        return bytes.withUnsafeReadableBytes { String(validating: $0, as: UTF8.self) }
    }

    /// Reads a UInt32 count of name/value pairs; nil when the count cannot fit in what is left or a string is bad.
    private static func readFields(_ buffer: inout ByteBuffer) -> [Header.Field]? {
        guard let count = buffer.readInteger(endianness: .little, as: UInt32.self),
              Int(count) <= buffer.readableBytes / 8
        else { return nil }
        var out: [Header.Field] = []
        out.reserveCapacity(Int(count))
        for _ in 0..<Int(count) {
            guard let name = readString(&buffer), let value = readString(&buffer) else { return nil }
            out.append(Header.Field(name: name, value: value))
        }
        return out
    }
}

/// The 128-bit name of an entry file: a hash of key + NUL + secondary key (not cryptographic; the file holds the
/// full keys, which are compared on every read, so a collision is a miss, never a wrong answer).
struct DiskEntryName: Hashable, Sendable {
    /// The high 64 bits (the first 16 hex digits).
    var high: UInt64
    /// The low 64 bits.
    var low: UInt64

    /// Hashes a primary and secondary key: two FNV-1a 64 passes with different offset bases, each finalised
    /// with the MurmurHash3 fmix64 mixer.
    init(key: String, secondaryKey: String) {
        var a: UInt64 = 0xCBF2_9CE4_8422_2325
        var b: UInt64 = 0x6C62_272E_07BB_0142
        let prime: UInt64 = 0x0000_0100_0000_01B3
        func feed(_ byte: UInt8) {
            a = (a ^ UInt64(byte)) &* prime
            b = (b ^ UInt64(byte ^ 0x5A)) &* prime
            b = b ^ (b >> 29)
        }
        for byte in key.utf8 { feed(byte) }
        feed(0)
        for byte in secondaryKey.utf8 { feed(byte) }
        let length = UInt64(key.utf8.count &+ secondaryKey.utf8.count)
        high = Self.fmix64(a ^ length)
        low = Self.fmix64(b &+ length &* 0x9E37_79B9_7F4A_7C15)
    }

    /// Creates a name from 32 lowercase hex digits; nil for anything else.
    init?(hex: String) {
        let bytes = Array(hex.utf8)
        guard bytes.count == 32 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (i, byte) in bytes.enumerated() {
            let digit: UInt64
            switch byte {
            case 0x30...0x39: digit = UInt64(byte - 0x30)
            case 0x61...0x66: digit = UInt64(byte - 0x61 + 10)
            default: return nil
            }
            if i < 16 { high = high << 4 | digit } else { low = low << 4 | digit }
        }
        self.high = high
        self.low = low
    }

    /// The 32 lowercase hex digits of the name.
    var hex: String { Self.hex16(high) + Self.hex16(low) }

    /// The two-digit subdirectory the file lives in (the first byte of the name).
    var directory: String { String(hex.prefix(2)) }

    /// Sixteen zero-padded lowercase hex digits.
    private static func hex16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// MurmurHash3's 64-bit finaliser (full avalanche).
    private static func fmix64(_ value: UInt64) -> UInt64 {
        var k = value
        k ^= k >> 33
        k = k &* 0xFF51_AFD7_ED55_8CCD
        k ^= k >> 33
        k = k &* 0xC4CE_B9FE_1A85_EC53
        k ^= k >> 33
        return k
    }
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), slicing-by-8.
enum CRC32 {
    /// Eight 256-entry tables, one after the other.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    /// The CRC-32 of a buffer's readable bytes.
    static func checksum(_ buffer: ByteBuffer) -> UInt32 {
        buffer.withUnsafeReadableBytes { update(0, $0) }
    }

    /// Continues a CRC-32 over more bytes (start with 0).
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        tables.withUnsafeBufferPointer { t in
            var c = ~crc
            var i = 0
            let n = bytes.count
            while i + 8 <= n {
                let lo = bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ c
                let hi = bytes.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
            return ~c
        }
    }
}
