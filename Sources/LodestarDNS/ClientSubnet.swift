import LodestarTopology

/// The EDNS Client Subnet option (RFC 7871 §6) of a query.
public struct ClientSubnet: Equatable, Sendable {
    /// 1 = IPv4, 2 = IPv6 (IANA address family numbers).
    public var family: UInt16
    public var sourcePrefixLength: Int
    public var scopePrefixLength: Int
    /// The address bytes exactly as sent (⌈source/8⌉ octets).
    public var addressBytes: [UInt8]

    public init(family: UInt16, sourcePrefixLength: Int, scopePrefixLength: Int, addressBytes: [UInt8]) {
        self.family = family
        self.sourcePrefixLength = sourcePrefixLength
        self.scopePrefixLength = scopePrefixLength
        self.addressBytes = addressBytes
    }

    /// Parses option data; nil when malformed (RFC 7871 §7.1.1/§6: unknown family, prefix too long,
    /// address length not ⌈SOURCE/8⌉, non-zero bits past the prefix, or non-zero SCOPE in a query) → FORMERR.
    public init?(optionData d: [UInt8]) {
        guard d.count >= 4 else { return nil }
        let family = UInt16(d[0]) << 8 | UInt16(d[1])
        let source = Int(d[2]), scope = Int(d[3])
        let width: Int
        switch family {
        case 1: width = 32
        case 2: width = 128
        default: return nil
        }
        guard source <= width, scope == 0 else { return nil }
        let addr = Array(d[4...])
        guard addr.count == (source + 7) / 8 else { return nil }
        if source % 8 != 0, let last = addr.last {
            let mask = UInt8(0xFF) >> UInt8(source % 8)
            guard last & mask == 0 else { return nil }
        }
        self.init(family: family, sourcePrefixLength: source, scopePrefixLength: scope, addressBytes: addr)
    }

    /// The subnet's address padded to full width (nil only for an unknown family).
    public var address: IPAddress? {
        let width = family == 1 ? 4 : 16
        var full = addressBytes
        if full.count < width { full.append(contentsOf: repeatElement(0, count: width - full.count)) }
        return IPAddress(bytes: full.prefix(width))
    }

    /// Option data for a response: family, source and address as received, with `scope` (RFC 7871 §7.2.1).
    public func responseData(scope: Int) -> [UInt8] {
        var d: [UInt8] = [UInt8(family >> 8), UInt8(family & 0xff), UInt8(sourcePrefixLength), UInt8(clamping: scope)]
        d.append(contentsOf: addressBytes)
        return d
    }
}
