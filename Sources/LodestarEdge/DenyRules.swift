import LodestarTopology

/// A shell-style glob over bytes: `*` matches any run (including `/` and nothing), `?` exactly one byte,
/// every other byte itself. Matching is iterative with one backtrack point: O(pattern × text) at worst, never exponential.
public struct GlobPattern: Sendable, Equatable {
    /// The pattern as written.
    public let pattern: String
    /// ASCII letters match either case.
    public let caseInsensitive: Bool
    /// Pattern bytes, runs of `*` collapsed, lower-cased when case-insensitive.
    private let compiled: [UInt8]

    static let star = UInt8(ascii: "*")
    static let question = UInt8(ascii: "?")

    public init(_ pattern: String, caseInsensitive: Bool = false) {
        self.pattern = pattern
        self.caseInsensitive = caseInsensitive
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pattern.utf8.count)
        for b in pattern.utf8 {
            if b == Self.star && bytes.last == Self.star { continue }
            bytes.append(caseInsensitive ? asciiLower(b) : b)
        }
        compiled = bytes
    }

    /// True when the whole of `text` matches.
    public func matches(_ text: String) -> Bool {
        matches(utf8: text.utf8)
    }

    /// True when the whole of `text` matches.
    public func matches(_ text: Substring) -> Bool {
        matches(utf8: text.utf8)
    }

    /// True when the whole of `text` matches.
    public func matches(_ text: Substring.UTF8View) -> Bool {
        matches(utf8: text)
    }

    /// True when the whole byte sequence matches.
    public func matches<C: Collection>(utf8 text: C) -> Bool where C.Element == UInt8 {
        if let result = text.withContiguousStorageIfAvailable({ matchBuffer($0) }) { return result }
        return Array(text).withUnsafeBufferPointer { matchBuffer($0) }
    }

    /// The matcher proper: on a mismatch, retry from the last `*` one text byte further on.
    private func matchBuffer(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        compiled.withUnsafeBufferPointer { pat in
            let pn = pat.count, tn = text.count
            var p = 0, t = 0
            var starP = -1, starT = 0
            while t < tn {
                if p < pn {
                    let c = pat[p]
                    if c == Self.star {
                        starP = p
                        starT = t
                        p += 1
                        continue
                    }
                    let b = caseInsensitive ? asciiLower(text[t]) : text[t]
                    if c == Self.question || c == b {
                        p += 1
                        t += 1
                        continue
                    }
                }
                guard starP >= 0 else { return false }
                if starP + 1 == pn { return true }  // a trailing `*` takes the rest
                p = starP + 1
                starT += 1
                t = starT
            }
            while p < pn && pat[p] == Self.star { p += 1 }
            return p == pn
        }
    }

    /// Equal when written the same with the same case rule (the compiled form follows from those).
    public static func == (a: GlobPattern, b: GlobPattern) -> Bool {
        a.pattern == b.pattern && a.caseInsensitive == b.caseInsensitive
    }
}

/// ASCII `A`–`Z` to lower case; every other byte unchanged.
@inline(__always)
func asciiLower(_ b: UInt8) -> UInt8 {
    b &- 0x41 < 26 ? b | 0x20 : b
}

/// True when two strings are equal ignoring ASCII case.
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let x = a.utf8, y = b.utf8
    guard x.count == y.count else { return false }
    for (p, q) in zip(x, y) where asciiLower(p) != asciiLower(q) { return false }
    return true
}

/// A route's deny rules, compiled once; `denies` runs per request.
public struct DenyMatcher: Sendable {
    /// One rule with its globs compiled.
    struct Rule: Sendable {
        /// Upper-cased methods; empty means any.
        var methods: [String]
        var path: GlobPattern?
        var header: String?
        /// Case-insensitive glob over the header value; only used when `header` is set.
        var value: GlobPattern?
    }

    private let rules: [Rule]

    public init(_ rules: [DenyRule]) {
        self.rules = rules.map { rule in
            Rule(methods: rule.methods.map { $0.uppercased() },
                 path: rule.path.map { GlobPattern($0) },
                 header: rule.header,
                 value: rule.header == nil ? nil : rule.value.map { GlobPattern($0, caseInsensitive: true) })
        }
    }

    /// True when there are no rules (the caller can skip the check).
    public var isEmpty: Bool { rules.isEmpty }

    /// True when some rule's conditions all hold. `path` is the request target's path without the query;
    /// `header` looks a header up by name (case-insensitively) and returns its value, nil when absent.
    /// A rule with no conditions at all denies every request.
    public func denies(method: String, path: String, header: (String) -> String?) -> Bool {
        for rule in rules {
            if !rule.methods.isEmpty && !rule.methods.contains(where: { asciiCaseInsensitiveEquals($0, method) }) { continue }
            if let glob = rule.path, !glob.matches(path) { continue }
            if let name = rule.header {
                guard let value = header(name) else { continue }
                if let glob = rule.value, !glob.matches(value) { continue }
            }
            return true
        }
        return false
    }
}
