/// A domain name in uncompressed wire form (length-prefixed labels, ending with the root's zero byte).
/// Comparison with `==` is exact; use `lowercased` / `isEqualIgnoringCase` for DNS matching (RFC 4343).
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// Wire bytes, always ending in 0.
    public let wire: [UInt8]

    /// The root name.
    public static let root = DNSName(wire: [0])

    /// Wraps wire bytes that the caller has validated (labels ≤ 63, total ≤ 255, ending in 0).
    public init(wire: [UInt8]) { self.wire = wire }

    /// The wire bytes in one call (the synthesized conformance fed them to the hasher one by one, with the count):
    /// names key the zone's tables and every RRL bucket. Equal names have equal bytes, and the bytes delimit
    /// themselves (length-prefixed labels, a final 0), so the count adds nothing.
    public func hash(into hasher: inout Hasher) {
        wire.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    /// Builds a name from dotted text (`www.example.test` or with a trailing dot); nil when a label is empty or too long.
    public init?(_ text: String) {
        var out = [UInt8]()
        var trimmed = Substring(text)
        if trimmed.hasSuffix(".") { trimmed.removeLast() }
        if !trimmed.isEmpty {
            for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
                let bytes = Array(label.utf8)
                guard !bytes.isEmpty, bytes.count <= 63 else { return nil }
                out.append(UInt8(bytes.count))
                out.append(contentsOf: bytes)
            }
        }
        out.append(0)
        guard out.count <= 255 else { return nil }
        self.wire = out
    }

    /// The same name with ASCII letters lower-cased (RFC 4343 comparison form).
    public var lowercased: DNSName {
        DNSName(wire: wire.map { ($0 >= 65 && $0 <= 90) ? $0 | 0x20 : $0 })
    }

    /// Number of labels, root excluded.
    public var labelCount: Int {
        var n = 0, i = 0
        while i < wire.count, wire[i] != 0 {
            n += 1
            i += Int(wire[i]) + 1
        }
        return n
    }

    /// True when this name equals `other` or lies below it, ignoring ASCII case.
    public func isSubdomain(of other: DNSName) -> Bool {
        guard wire.count >= other.wire.count else { return false }
        let start = wire.count - other.wire.count
        // The suffix must begin on a label boundary.
        var i = 0
        while i < start {
            guard i < wire.count else { return false }
            i += Int(wire[i]) + 1
        }
        guard i == start else { return false }
        for k in 0..<other.wire.count where DNSName.fold(wire[start + k]) != DNSName.fold(other.wire[k]) {
            return false
        }
        return true
    }

    /// The parent name (one label removed); nil for the root.
    public var parent: DNSName? {
        guard let first = wire.first, first != 0 else { return nil }
        return DNSName(wire: Array(wire[(Int(first) + 1)...]))
    }

    /// Three-digit zero-padded decimal for `\DDD` escapes.
    static func threeDigits(_ b: UInt8) -> String {
        let d = String(b)
        return String(repeating: "0", count: 3 - d.count) + d
    }

    @inline(__always) static func fold(_ b: UInt8) -> UInt8 { (b >= 65 && b <= 90) ? b | 0x20 : b }

    /// Dotted presentation form with a trailing dot; bytes outside printable ASCII and `.`/`\` are escaped as `\DDD`.
    public var description: String {
        if wire == [0] { return "." }
        var s = ""
        var i = 0
        while i < wire.count, wire[i] != 0 {
            let len = Int(wire[i])
            let end = min(wire.count, i + 1 + len)
            for b in wire[(i + 1)..<end] {
                if b == UInt8(ascii: ".") || b == UInt8(ascii: "\\") {
                    s.append("\\"); s.append(Character(UnicodeScalar(b)))
                } else if b > 0x20 && b < 0x7F {
                    s.append(Character(UnicodeScalar(b)))
                } else {
                    s.append("\\" + DNSName.threeDigits(b))
                }
            }
            s.append(".")
            i = end
        }
        return s
    }
}

