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

    /// The directives of a response's `Cache-Control` fields.
    public static func response(_ headers: HTTPFields) -> CacheControl {
        CacheControl(values: HeaderFields.values("cache-control", in: headers))
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
