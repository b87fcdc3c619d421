/// Small text rules of HTTP the edge's pure core and its NIO adapter share (one home, so the request checks and the
/// header rewriting read fields alike).
public enum HTTPText {
    /// ASCII case-insensitive equality of a field name with a lower-case name (RFC 9110 §5.1), without allocating.
    @inlinable
    public static func nameEquals(_ name: String, _ lower: String) -> Bool {
        let a = name.utf8, b = lower.utf8
        guard a.count == b.count else { return false }
        var i = b.makeIterator()
        for x in a {
            guard let y = i.next() else { return false }
            if ((x >= 65 && x <= 90) ? x | 0x20 : x) != y { return false }
        }
        return true
    }

    /// `text` with its upper-case letters in lower case: the same string when it has none (a field name already in
    /// HTTP/2's spelling costs nothing).
    public static func lowercased(_ text: String) -> String {
        text.utf8.contains { $0 >= 65 && $0 <= 90 } ? text.lowercased() : text
    }

    /// The bytes as a string, ASCII `A`–`Z` in lower case: one string made, not a string and its lower-cased copy.
    public static func lowercasedASCII(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { out in
            for (i, c) in bytes.enumerated() { out[i] = asciiLower(c) }
            return bytes.count
        }
    }

    /// A comma-separated field value (`Connection: keep-alive, close`) names `token` (lower case), in any case and
    /// spacing; the common one-token value without splitting.
    public static func listNames(_ value: String, _ token: String) -> Bool {
        if nameEquals(value, token) { return true }
        return value.split(separator: ",").contains { nameEquals(String($0.trimmingSpaces()), token) }
    }

    /// For an `http://` or `https://` URL (scheme in any case): the length of that prefix and the scheme's default
    /// port as `:80`/`:443`; nil for anything else.
    public static func httpScheme(_ url: String) -> (length: Int, defaultPort: String)? {
        let lower = url.prefix(8).lowercased()
        if lower.hasPrefix("http://") { return (7, ":80") }
        if lower.hasPrefix("https://") { return (8, ":443") }
        return nil
    }

    /// The `timeout` parameter of a `Keep-Alive` response field (`timeout=5, max=100`): how many seconds the origin
    /// keeps an idle connection open. Nil when absent or not a whole number.
    public static func keepAliveTimeout(_ value: String) -> Int? {
        for param in value.split(separator: ",") {
            let pair = param.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, nameEquals(String(pair[0].trimmingSpaces()), "timeout") else { continue }
            var digits = pair[1].trimmingSpaces()
            if digits.first == "\"", digits.last == "\"", digits.count >= 2 { digits = digits.dropFirst().dropLast() }
            guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(digits)
        }
        return nil
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (RFC 9110 §5.6.3 OWS).
    @inlinable
    public func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
