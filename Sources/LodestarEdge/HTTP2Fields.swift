/// The checks RFC 9113 §8.2–8.3 (and RFC 8441 §4) ask of a header section an HTTP/2 client sends, field by field
/// as they come out of HPACK: a request's HEADERS, or the trailer section that ends a request body. A section that
/// fails is malformed, and its stream is reset with PROTOCOL_ERROR (§8.1.1).
///
/// swift-nio-http2 checks every block it sends or receives the same way; the edge turns that off and checks only
/// what comes in, here (the answers it sends are built from fields it parsed and lower-cased itself): the two
/// passes cost about a sixth of an HTTP/2 request's CPU.
public struct HTTP2FieldCheck: Sendable {
    /// Which header section of a stream is checked.
    public enum Section: Sendable {
        /// The HEADERS that open a request stream.
        case request
        /// The HEADERS that end one (no pseudo-header fields).
        case trailers
    }

    /// Why a section is malformed.
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        /// Not a token of lower-case characters (RFC 9113 §8.2.1).
        case badName(String)
        /// NUL, CR or LF in a value; in a pseudo-header's value also a control character or a space.
        case badValue(String)
        /// A pseudo-header field after a regular one, unknown, repeated, or not allowed in this section.
        case misplacedPseudoHeader(String)
        /// A connection-specific field (§8.2.2), or `te` other than `trailers`.
        case connectionSpecific(String)
        /// `:method`, `:scheme` and `:path` (or, for CONNECT, `:method` and `:authority`) are not all there,
        /// or `:path` is empty.
        case missingPseudoHeaders

        public var description: String {
            switch self {
            case .badName(let n): return "invalid field name \(n.debugDescription)"
            case .badValue(let n): return "invalid value of field \(n)"
            case .misplacedPseudoHeader(let n): return "pseudo-header field \(n) not allowed here"
            case .connectionSpecific(let n): return "connection-specific field \(n)"
            case .missingPseudoHeaders: return "required pseudo-header fields missing or empty"
            }
        }
    }

    private struct Pseudo: OptionSet {
        let rawValue: UInt8
        static let method = Pseudo(rawValue: 1)
        static let scheme = Pseudo(rawValue: 2)
        static let authority = Pseudo(rawValue: 4)
        static let path = Pseudo(rawValue: 8)
        static let `protocol` = Pseudo(rawValue: 16)
    }

    private let section: Section
    private var seen: Pseudo = []
    private var regular = false
    private var isConnect = false
    private var emptyPath = false

    public init(_ section: Section) {
        self.section = section
    }

    /// Checks the next field of the section (in the order received); nil when it is acceptable so far.
    public mutating func check(name: String, value: String) -> Problem? {
        var name = name
        return name.withUTF8 { bytes -> Problem? in
            guard let first = bytes.first else { return .badName("") }
            if first == UInt8(ascii: ":") { return pseudo(name: bytes, value: value) }
            regular = true
            guard Self.isLowerToken(bytes[...]) else { return .badName(String(decoding: bytes, as: UTF8.self)) }
            if let problem = Self.connectionSpecific(bytes, value: value) { return problem }
            guard RequestFraming.isSafeValue(value) else { return .badValue(String(decoding: bytes, as: UTF8.self)) }
            return nil
        }
    }

    /// The section is complete: nil when it was well formed.
    public func finish() -> Problem? {
        guard section == .request else { return nil }
        let required: Pseudo
        let allowed: Pseudo
        if isConnect && !seen.contains(.protocol) {
            required = [.method, .authority]
            allowed = required
        } else {
            required = [.method, .scheme, .path]
            allowed = isConnect ? [.method, .scheme, .authority, .path, .protocol] : [.method, .scheme, .authority, .path]
        }
        guard seen.isSuperset(of: required) else { return .missingPseudoHeaders }
        let extra = seen.subtracting(allowed)
        guard extra.isEmpty else {
            return .misplacedPseudoHeader(extra.contains(.protocol) ? ":protocol" : extra.contains(.path) ? ":path" : ":scheme")
        }
        return emptyPath ? .missingPseudoHeaders : nil
    }

    private mutating func pseudo(name bytes: UnsafeBufferPointer<UInt8>, value: String) -> Problem? {
        guard section == .request, !regular, let kind = Self.pseudoKind(bytes), !seen.contains(kind) else {
            return .misplacedPseudoHeader(String(decoding: bytes, as: UTF8.self))
        }
        seen.insert(kind)
        guard Self.isPseudoValue(value) else { return .badValue(String(decoding: bytes, as: UTF8.self)) }
        if kind == .method { isConnect = value == "CONNECT" }
        if kind == .path { emptyPath = value.isEmpty }
        return nil
    }

    private static func pseudoKind(_ bytes: UnsafeBufferPointer<UInt8>) -> Pseudo? {
        // Told apart by length and second byte, then compared whole.
        let kind: Pseudo
        let text: StaticString
        switch (bytes.count, bytes.count > 1 ? bytes[1] : 0) {
        case (5, UInt8(ascii: "p")): (kind, text) = (.path, ":path")
        case (7, UInt8(ascii: "m")): (kind, text) = (.method, ":method")
        case (7, UInt8(ascii: "s")): (kind, text) = (.scheme, ":scheme")
        case (9, UInt8(ascii: "p")): (kind, text) = (.protocol, ":protocol")
        case (10, UInt8(ascii: "a")): (kind, text) = (.authority, ":authority")
        default: return nil
        }
        return equals(bytes, text) ? kind : nil
    }

    /// `connection`, `proxy-connection`, `keep-alive`, `transfer-encoding`, `upgrade`; `te` but for `trailers`.
    private static func connectionSpecific(_ bytes: UnsafeBufferPointer<UInt8>, value: String) -> Problem? {
        let hit: Bool
        switch bytes.count {
        case 2: return equals(bytes, "te") && value != "trailers" ? .connectionSpecific("te") : nil
        case 7: hit = equals(bytes, "upgrade")
        case 10: hit = equals(bytes, "connection") || equals(bytes, "keep-alive")
        case 16: hit = equals(bytes, "proxy-connection")
        case 17: hit = equals(bytes, "transfer-encoding")
        default: return nil
        }
        return hit ? .connectionSpecific(String(decoding: bytes, as: UTF8.self)) : nil
    }

    private static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { bytes.elementsEqual($0) }
    }

    /// RFC 9110's `tchar` without the upper-case letters (RFC 9113 §8.2.1), at least one.
    static func isLowerToken(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy { RequestFraming.isTchar($0) && !($0 >= 65 && $0 <= 90) }
    }

    /// No control character, space or DEL: a pseudo-header becomes part of an HTTP/1.1 request line (`:path`) or
    /// its `Host` field, and none of their grammars has one.
    static func isPseudoValue(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in !bytes.contains { $0 <= 0x20 || $0 == 0x7f } }
    }
}
