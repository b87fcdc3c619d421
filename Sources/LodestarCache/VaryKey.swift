/// The secondary cache key built from a response's `Vary` and the request (RFC 9111 §4.1).
public enum VaryKey {
    /// Request fields whose values are case-insensitive and so are lower-cased when normalised.
    public static let caseInsensitiveFields: Set<String> = [
        "accept-encoding", "accept-charset", "accept-language",
    ]

    /// The secondary key of a request for the given `Vary` value; nil for `Vary: *` (never matches).
    ///
    /// Field names are lower-cased, de-duplicated and sorted; each request value is the field
    /// lines combined with ", ", whitespace around commas collapsed, list order kept, and
    /// lower-cased for case-insensitive fields. An absent field is encoded differently from an
    /// empty one, and values are length-prefixed so the key is unambiguous. No `Vary` gives "".
    public static func secondaryKey(vary: String?, requestHeaders: HTTPFields) -> String? {
        guard let vary else { return "" }
        var names = Set<String>()
        for member in HeaderFields.splitList(vary) {
            if member == "*" { return nil }
            names.insert(HeaderFields.asciiLowercased(member))
        }
        var key = ""
        for name in names.sorted() {
            key += name
            let lines = HeaderFields.values(name, in: requestHeaders)
            if lines.isEmpty {
                key += "!;"
                continue
            }
            var value = normalise(lines)
            if caseInsensitiveFields.contains(name) { value = HeaderFields.asciiLowercased(value) }
            key += "=\(value.utf8.count):\(value);"
        }
        return key
    }

    /// The secondary key for a stored response, reading (and combining) its `Vary` field lines.
    public static func secondaryKey(responseHeaders: HTTPFields, requestHeaders: HTTPFields) -> String? {
        secondaryKey(vary: HeaderFields.combined("vary", in: responseHeaders), requestHeaders: requestHeaders)
    }

    /// Whether a new request selects the stored response varying on `storedVary` (RFC 9111 §4.1).
    public static func matches(storedVary: String?, storedRequestHeaders: HTTPFields, requestHeaders: HTTPFields) -> Bool {
        guard let a = secondaryKey(vary: storedVary, requestHeaders: storedRequestHeaders),
              let b = secondaryKey(vary: storedVary, requestHeaders: requestHeaders)
        else { return false }
        return a == b
    }

    /// Combines field lines and collapses whitespace around commas (members containing quoted commas stay whole).
    static func normalise(_ lines: [String]) -> String {
        lines.flatMap { HeaderFields.splitList($0) }.joined(separator: ", ")
    }
}
