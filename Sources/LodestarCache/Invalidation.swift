/// Which stored responses an unsafe request invalidates (RFC 9111 §4.4).
public enum Invalidation {
    /// Methods that are safe (RFC 9110 §9.2.1) and so never invalidate.
    public static let safeMethods: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE"]

    /// The URIs to invalidate after an unsafe request got a 2xx or 3xx response.
    ///
    /// Returns the request URI, then `Location` and `Content-Location` when same-origin:
    /// relative references (absolute paths kept, relative paths resolved against the request
    /// path) or absolute URIs whose authority equals `authority` (case-insensitive; the scheme
    /// too when `scheme` is given). Absolute same-origin URIs are returned in origin-form
    /// (path and query). Results are de-duplicated; empty for safe methods or other statuses.
    public static func targets(
        method: String, status: Int, requestURI: String, responseHeaders: HTTPFields,
        authority: String, scheme: String? = nil
    ) -> [String] {
        guard !safeMethods.contains(method), (200...399).contains(status) else { return [] }
        var out = [requestURI]
        for name in ["location", "content-location"] {
            guard let raw = HeaderFields.first(name, in: responseHeaders), !raw.isEmpty,
                  let target = sameOrigin(raw, requestURI: requestURI, authority: authority, scheme: scheme),
                  !out.contains(target)
            else { continue }
            out.append(target)
        }
        return out
    }

    /// The origin-form of `reference` when it is same-origin, else nil.
    static func sameOrigin(_ reference: String, requestURI: String, authority: String, scheme: String?) -> String? {
        let bytes = Array(reference.utf8)
        if let (refScheme, rest) = splitScheme(bytes) {
            if let scheme, HeaderFields.asciiLowercased(scheme) != refScheme { return nil }
            return networkPath(rest, authority: authority)
        }
        if bytes.starts(with: [0x2F, 0x2F]) { return networkPath(Array(bytes.dropFirst(2)), authority: authority) }
        if bytes.first == 0x2F { return reference }
        // Relative path: resolve against the directory of the request path (no dot-segment removal).
        let requestPath = Array(requestURI.utf8.prefix { $0 != 0x3F && $0 != 0x23 })
        let base = requestPath.lastIndex(of: 0x2F).map { Array(requestPath[...$0]) } ?? [0x2F]
        return String(decoding: base + bytes, as: UTF8.self)
    }

    /// Splits `scheme:` off an absolute URI (RFC 3986 §3.1), lower-casing the scheme.
    private static func splitScheme(_ b: [UInt8]) -> (String, [UInt8])? {
        guard let colon = b.firstIndex(of: 0x3A), colon > 0 else { return nil }
        let schemeBytes = b[0..<colon]
        guard let first = schemeBytes.first, isAlpha(first),
              schemeBytes.allSatisfy({ isAlpha($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E })
        else { return nil }
        let scheme = HeaderFields.asciiLowercased(String(decoding: schemeBytes, as: UTF8.self))
        let rest = Array(b[(colon + 1)...])
        guard rest.starts(with: [0x2F, 0x2F]) else { return nil }
        return (scheme, Array(rest.dropFirst(2)))
    }

    /// For `authority/path?query` returns `/path?query` when the authority matches.
    private static func networkPath(_ b: [UInt8], authority: String) -> String? {
        let end = b.firstIndex { $0 == 0x2F || $0 == 0x3F || $0 == 0x23 } ?? b.count
        let host = HeaderFields.asciiLowercased(String(decoding: b[0..<end], as: UTF8.self))
        guard host == HeaderFields.asciiLowercased(authority) else { return nil }
        var path = Array(b[end...].prefix { $0 != 0x23 })
        if path.first != 0x2F { path.insert(0x2F, at: 0) }
        return String(decoding: path, as: UTF8.self)
    }

    private static func isAlpha(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
}
