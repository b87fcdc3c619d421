#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address held as plain integers (no sockets, no allocation).
public enum IPAddress: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// IPv4 address in host order.
    case v4(UInt32)
    /// IPv6 address as its high and low 64 bits in host order.
    case v6(UInt64, UInt64)

    /// Parses dotted-quad IPv4 or RFC 4291 text IPv6; nil when the text is not an address.
    public init?(_ text: String) {
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            self.init(bytes: bytes[...])
        } else {
            var raw = in_addr()
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self = .v4(UInt32(bigEndian: raw.s_addr))
        }
    }

    /// Builds an address from 4 or 16 network-order bytes; nil for any other length.
    @inlinable
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        switch bytes.count {
        case 4:
            var v: UInt32 = 0
            for b in bytes { v = v << 8 | UInt32(b) }
            self = .v4(v)
        case 16:
            var hi: UInt64 = 0, lo: UInt64 = 0
            var i = 0
            for b in bytes {
                if i < 8 { hi = hi << 8 | UInt64(b) } else { lo = lo << 8 | UInt64(b) }
                i += 1
            }
            self = .v6(hi, lo)
        default:
            return nil
        }
    }

    /// True for IPv4.
    public var isIPv4: Bool { if case .v4 = self { return true } else { return false } }

    /// Address width in bits (32 or 128).
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    /// Network-order bytes (4 or 16).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let v):
            return [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        case .v6(let hi, let lo):
            var out = [UInt8]()
            out.reserveCapacity(16)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(hi >> UInt64(shift) & 0xff)) }
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(lo >> UInt64(shift) & 0xff)) }
            return out
        }
    }

    /// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback.
    public var isLoopback: Bool {
        switch self {
        case .v4(let v): return v >> 24 == 127
        case .v6(let hi, let lo):
            if hi == 0 && lo == 1 { return true }
            if hi == 0 && lo >> 32 == 0xffff { return (lo & 0xffff_ffff) >> 24 == 127 }
            return false
        }
    }

    /// This address with every bit past `length` cleared.
    public func masked(to length: Int) -> IPAddress {
        switch self {
        case .v4(let v):
            let l = max(0, min(32, length))
            if l == 0 { return .v4(0) }
            return .v4(v & (UInt32.max << UInt32(32 - l)))
        case .v6(let hi, let lo):
            let l = max(0, min(128, length))
            if l == 0 { return .v6(0, 0) }
            if l <= 64 { return .v6(l == 64 ? hi : hi & (UInt64.max << UInt64(64 - l)), 0) }
            let rest = l - 64
            return .v6(hi, rest == 64 ? lo : lo & (UInt64.max << UInt64(64 - rest)))
        }
    }

    public var description: String {
        var buf = [CChar](repeating: 0, count: 64)
        switch self {
        case .v4(let v):
            var raw = in_addr(s_addr: v.bigEndian)
            _ = inet_ntop(AF_INET, &raw, &buf, socklen_t(buf.count))
        case .v6:
            var raw = in6_addr()
            let b = bytes
            withUnsafeMutableBytes(of: &raw) { dst in
                for i in 0..<16 { dst[i] = b[i] }
            }
            _ = inet_ntop(AF_INET6, &raw, &buf, socklen_t(buf.count))
        }
        let end = buf.firstIndex(of: 0) ?? buf.count
        return String(decoding: buf[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): return x < y
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        case (.v6(let h1, let l1), .v6(let h2, let l2)): return (h1, l1) < (h2, l2)
        }
    }
}

/// An address prefix such as `10.1.0.0/16` (host bits are cleared on creation).
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The network address, host bits zero.
    public let address: IPAddress
    /// Prefix length in bits.
    public let length: Int

    /// Makes a prefix, clearing host bits; nil when the length exceeds the address width.
    public init?(address: IPAddress, length: Int) {
        guard length >= 0, length <= address.bitWidth else { return nil }
        self.address = address.masked(to: length)
        self.length = length
    }

    /// Parses `ADDR/LEN` (or a bare address, meaning a host prefix).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let addr = IPAddress(String(first)) else { return nil }
        if parts.count == 2 {
            guard let len = Int(parts[1]), String(len) == parts[1] else { return nil }
            self.init(address: addr, length: len)
        } else {
            self.init(address: addr, length: addr.bitWidth)
        }
    }

    /// True when `other` falls inside this prefix (same family only).
    public func contains(_ other: IPAddress) -> Bool {
        guard other.isIPv4 == address.isIPv4 else { return false }
        return other.masked(to: length) == address
    }

    public var description: String { "\(address)/\(length)" }
}
