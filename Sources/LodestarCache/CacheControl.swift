/// The parsed directives of a `Cache-Control` field (RFC 9111 §5.2).
///
/// Names are case-insensitive and unknown directives are ignored. When a directive occurs
/// more than once the first occurrence wins (RFC 9111 §4.2.1 allows "first" or "stale").
/// Arguments may be a token or a quoted-string (§5.2: recipients accept both forms).
/// A delta-seconds argument that is negative, empty or non-numeric is invalid
/// (see `invalidDirectives`); one that overflows is taken as 2^31 (§1.2.2).
public struct CacheControl: Sendable, Equatable {
    /// The request `max-stale` argument: any staleness, or at most so many seconds.
    public enum MaxStale: Sendable, Equatable {
        /// `max-stale` without a value: any staleness is accepted.
        case any
        /// `max-stale=N`: staleness of at most N seconds is accepted.
        case seconds(Int64)
    }

    /// `max-age` (request or response). An invalid value is recorded as 0 (stale / not acceptable).
    public var maxAge: Int64?
    /// `s-maxage` (response). An invalid value is recorded as 0 (stale).
    public var sMaxAge: Int64?
    /// `no-cache` present (qualified or not).
    public var noCache = false
    /// The field names of a qualified `no-cache="a, b"` (lower-cased); empty when unqualified.
    public var noCacheFields: [String] = []
    /// `no-store`.
    public var noStore = false
    /// `private` present (qualified or not).
    public var isPrivate = false
    /// The field names of a qualified `private="a, b"` (lower-cased); empty when unqualified.
    public var privateFields: [String] = []
    /// `public`.
    public var isPublic = false
    /// `must-revalidate`.
    public var mustRevalidate = false
    /// `proxy-revalidate`.
    public var proxyRevalidate = false
    /// `no-transform`.
    public var noTransform = false
    /// `must-understand`.
    public var mustUnderstand = false
    /// `immutable` (RFC 8246).
    public var immutable = false
    /// `stale-while-revalidate` (RFC 5861 §3).
    public var staleWhileRevalidate: Int64?
    /// `stale-if-error` (RFC 5861 §4).
    public var staleIfError: Int64?
    /// Request `max-stale`, with or without a value.
    public var maxStale: MaxStale?
    /// Request `min-fresh`.
    public var minFresh: Int64?
    /// Request `only-if-cached`.
    public var onlyIfCached = false
    /// Lower-cased names of delta-seconds directives whose argument was invalid.
    public var invalidDirectives: Set<String> = []

    /// An empty set of directives.
    public init() {}

    /// Parses one (possibly combined) `Cache-Control` field value.
    public init(_ value: String) {
        self.init(values: [value])
    }

    /// Parses several `Cache-Control` field lines as one comma list (RFC 9110 §5.3).
    public init(values: [String]) {
        var seen: Set<String> = []
        for line in values {
            for member in HeaderFields.splitList(line) {
                let (name, argument) = Self.split(member)
                guard !name.isEmpty, seen.insert(name).inserted else { continue }
                apply(name: name, argument: argument)
            }
        }
    }

    /// The directives a shared cache obeys for a response: those of `CDN-Cache-Control` when that field is present
    /// and parses as a Structured Fields dictionary (RFC 9213 §2.1: it then replaces `Cache-Control` entirely),
    /// else those of `Cache-Control`.
    public static func response(_ headers: HTTPFields) -> CacheControl {
        let targeted = HeaderFields.values("cdn-cache-control", in: headers)
        if !targeted.isEmpty, let cc = CacheControl(targeted: targeted.joined(separator: ", ")) {
            return cc
        }
        return CacheControl(values: HeaderFields.values("cache-control", in: headers))
    }

    /// Parses a targeted cache-control field (RFC 9213) as a Structured Fields dictionary (RFC 8941 §4.2.2); nil when
    /// it does not parse. Delta-seconds directives need an integer value (another type ignores the directive);
    /// parameters are ignored.
    public init?(targeted value: String) {
        guard let members = SFDictionary.parse(Array(value.utf8)) else { return nil }
        self.init()
        var seen: Set<String> = []
        for (name, item) in members where seen.insert(name).inserted {
            switch item {
            case .integer(let n):
                apply(name: name, argument: n >= 0 ? String(n) : "-1")
            case .bool(true):
                if ["max-age", "s-maxage", "stale-while-revalidate", "stale-if-error"].contains(name) { continue }
                apply(name: name, argument: nil)
            case .string(let text):
                if name == "no-cache" || name == "private" { apply(name: name, argument: text) }
            default:
                continue
            }
        }
    }

    /// The directives of a request's `Cache-Control` fields; `Pragma: no-cache` counts as
    /// `no-cache` only when there is no `Cache-Control` field (RFC 9111 §5.4, RFC 7234 §5.4).
    public static func request(_ headers: HTTPFields) -> CacheControl {
        let lines = HeaderFields.values("cache-control", in: headers)
        var cc = CacheControl(values: lines)
        if lines.isEmpty {
            for line in HeaderFields.values("pragma", in: headers) {
                for member in HeaderFields.splitList(line)
                where HeaderFields.asciiLowercased(Self.split(member).name) == "no-cache" {
                    cc.noCache = true
                }
            }
        }
        return cc
    }

    /// Splits `name[=argument]` into a lower-cased name and an unquoted argument.
    private static func split(_ member: String) -> (name: String, argument: String?) {
        let bytes = Array(member.utf8)
        guard let eq = bytes.firstIndex(of: 0x3D) else {
            return (HeaderFields.asciiLowercased(HeaderFields.trimOWS(member)), nil)
        }
        let name = HeaderFields.asciiLowercased(HeaderFields.trimOWS(String(decoding: bytes[0..<eq], as: UTF8.self)))
        let raw = HeaderFields.trimOWS(String(decoding: bytes[(eq + 1)...], as: UTF8.self))
        return (name, unquote(raw))
    }

    /// Removes the quotes and backslash escapes of a quoted-string; other values are returned as is.
    static func unquote(_ s: String) -> String {
        let bytes = Array(s.utf8)
        guard bytes.count >= 2, bytes.first == 0x22, bytes.last == 0x22 else { return s }
        var out: [UInt8] = []
        var escaped = false
        for b in bytes[1..<(bytes.count - 1)] {
            if escaped {
                out.append(b)
                escaped = false
            } else if b == 0x5C {
                escaped = true
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func delta(_ name: String, _ argument: String?) -> Int64? {
        guard let argument, let v = HeaderFields.deltaSeconds(argument) else {
            invalidDirectives.insert(name)
            return nil
        }
        return v
    }

    private static func fieldNames(_ argument: String?) -> [String] {
        guard let argument else { return [] }
        return HeaderFields.splitList(argument).map(HeaderFields.asciiLowercased)
    }

    private mutating func apply(name: String, argument: String?) {
        switch name {
        case "max-age": maxAge = delta(name, argument) ?? 0
        case "s-maxage": sMaxAge = delta(name, argument) ?? 0
        case "no-cache":
            noCache = true
            noCacheFields = Self.fieldNames(argument)
        case "no-store": noStore = true
        case "private":
            isPrivate = true
            privateFields = Self.fieldNames(argument)
        case "public": isPublic = true
        case "must-revalidate": mustRevalidate = true
        case "proxy-revalidate": proxyRevalidate = true
        case "no-transform": noTransform = true
        case "must-understand": mustUnderstand = true
        case "immutable": immutable = true
        case "stale-while-revalidate": staleWhileRevalidate = delta(name, argument)
        case "stale-if-error": staleIfError = delta(name, argument)
        case "max-stale":
            if argument == nil {
                maxStale = .any
            } else if let v = delta(name, argument) {
                maxStale = .seconds(v)
            }
        case "min-fresh": minFresh = delta(name, argument)
        case "only-if-cached": onlyIfCached = true
        default: break
        }
    }
}

/// A minimal Structured Fields dictionary parser (RFC 8941 §4.2.2), enough to validate a targeted cache-control
/// field and read its members' bare items; inner lists and parameters are checked for syntax and skipped.
enum SFDictionary {
    /// A bare item, reduced to what cache directives use.
    enum Item: Equatable {
        case integer(Int64)
        case bool(Bool)
        case string(String)
        case other
    }

    /// The members in order, or nil when the input is not a valid dictionary.
    static func parse(_ b: [UInt8]) -> [(String, Item)]? {
        var i = 0
        var out: [(String, Item)] = []
        func skipSP() { while i < b.count, b[i] == 0x20 { i += 1 } }
        func skipOWS() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 } }
        skipSP()
        if i == b.count { return out }
        while true {
            guard let key = parseKey(b, &i) else { return nil }
            var item = Item.bool(true)
            if i < b.count, b[i] == 0x3D {
                i += 1
                if i < b.count, b[i] == 0x28 {
                    guard skipInnerList(b, &i) else { return nil }
                    item = .other
                } else {
                    guard let bare = parseBareItem(b, &i) else { return nil }
                    item = bare
                }
            }
            guard skipParameters(b, &i) else { return nil }
            out.append((key, item))
            skipOWS()
            if i == b.count { return out }
            guard b[i] == 0x2C else { return nil }
            i += 1
            skipOWS()
            if i == b.count { return nil }  // trailing comma
        }
    }

    /// key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
    static func parseKey(_ b: [UInt8], _ i: inout Int) -> String? {
        guard i < b.count, (b[i] >= 0x61 && b[i] <= 0x7A) || b[i] == 0x2A else { return nil }
        let start = i
        while i < b.count {
            let c = b[i]
            guard (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D || c == 0x2E || c == 0x2A else { break }
            i += 1
        }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    /// An integer, decimal, string, token, byte sequence or boolean.
    static func parseBareItem(_ b: [UInt8], _ i: inout Int) -> Item? {
        guard i < b.count else { return nil }
        let c = b[i]
        if c == 0x2D || (c >= 0x30 && c <= 0x39) { return parseNumber(b, &i) }
        if c == 0x22 {
            i += 1
            var text: [UInt8] = []
            while i < b.count {
                let d = b[i]
                i += 1
                if d == 0x5C {
                    guard i < b.count, b[i] == 0x22 || b[i] == 0x5C else { return nil }
                    text.append(b[i])
                    i += 1
                } else if d == 0x22 {
                    return .string(String(decoding: text, as: UTF8.self))
                } else if d < 0x20 || d > 0x7E {
                    return nil
                } else {
                    text.append(d)
                }
            }
            return nil
        }
        if c == 0x3F {
            guard i + 1 < b.count, b[i + 1] == 0x30 || b[i + 1] == 0x31 else { return nil }
            i += 2
            return .bool(b[i - 1] == 0x31)
        }
        if c == 0x3A {
            i += 1
            while i < b.count, b[i] != 0x3A {
                let d = b[i]
                guard (d >= 0x41 && d <= 0x5A) || (d >= 0x61 && d <= 0x7A) || (d >= 0x30 && d <= 0x39)
                        || d == 0x2B || d == 0x2F || d == 0x3D else { return nil }
                i += 1
            }
            guard i < b.count else { return nil }
            i += 1
            return .other
        }
        if (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2A {
            i += 1
            while i < b.count, isTokenChar(b[i]) || b[i] == 0x3A || b[i] == 0x2F { i += 1 }
            return .other
        }
        return nil
    }

    /// sf-integer (at most 15 digits) or sf-decimal (at most 12 + 3 digits).
    static func parseNumber(_ b: [UInt8], _ i: inout Int) -> Item? {
        var negative = false
        if b[i] == 0x2D {
            negative = true
            i += 1
        }
        var digits = 0
        var value: Int64 = 0
        var decimal = false
        var fraction = 0
        while i < b.count {
            let c = b[i]
            if c >= 0x30 && c <= 0x39 {
                if decimal { fraction += 1 } else { digits += 1; value = value * 10 + Int64(c - 0x30) }
                i += 1
            } else if c == 0x2E && !decimal {
                guard digits > 0, digits <= 12 else { return nil }
                decimal = true
                i += 1
            } else {
                break
            }
            if digits > 15 { return nil }
        }
        guard digits > 0 else { return nil }
        if decimal { return fraction >= 1 && fraction <= 3 ? .other : nil }
        return .integer(negative ? -value : value)
    }

    /// `;key[=bare-item]` repeated.
    static func skipParameters(_ b: [UInt8], _ i: inout Int) -> Bool {
        while i < b.count, b[i] == 0x3B {
            i += 1
            while i < b.count, b[i] == 0x20 { i += 1 }
            guard parseKey(b, &i) != nil else { return false }
            if i < b.count, b[i] == 0x3D {
                i += 1
                guard parseBareItem(b, &i) != nil else { return false }
            }
        }
        return true
    }

    /// `( item *( SP item ) )` with parameters.
    static func skipInnerList(_ b: [UInt8], _ i: inout Int) -> Bool {
        i += 1
        while i < b.count {
            while i < b.count, b[i] == 0x20 { i += 1 }
            guard i < b.count else { return false }
            if b[i] == 0x29 {
                i += 1
                return skipParameters(b, &i)
            }
            guard parseBareItem(b, &i) != nil, skipParameters(b, &i) else { return false }
            guard i < b.count, b[i] == 0x20 || b[i] == 0x29 else { return false }
        }
        return false
    }

    /// RFC 9110 tchar.
    static func isTokenChar(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(c)
    }
}
