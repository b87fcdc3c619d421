/// How a `Range` request is answered from a complete stored representation (RFC 9110 §14).
public enum RangeAnswer: Sendable, Equatable {
    /// Send the whole representation (no Range, a Range the cache does not serve, or an `If-Range` that failed).
    case full
    /// Send bytes `start...end` (inclusive) as 206 with `Content-Range: bytes start-end/length`.
    case partial(start: Int, end: Int)
    /// 416 with `Content-Range: bytes */length`: no range of the set overlaps the representation.
    case unsatisfiable
}

/// Byte ranges over a stored response (RFC 9110 §14.1.2, §13.1.5).
public enum ByteRange {
    /// Decides how to answer `Range` (and `If-Range`) for a stored representation of `length` bytes.
    ///
    /// One range (`first-last`, `first-`, `-suffix`) is served; a set of several ranges is answered whole (a server
    /// may ignore Range, §14.2), as is any `Range` that is not valid `bytes=` syntax. `If-Range` must match a strong
    /// stored ETag exactly or equal the stored `Last-Modified`, else the whole representation is sent (§13.1.5).
    public static func answer(requestHeaders: HTTPFields, storedHeaders: HTTPFields, length: Int) -> RangeAnswer {
        let ranges = HeaderFields.values("range", in: requestHeaders)
        guard ranges.count == 1, let spec = ranges.first else { return .full }
        if let ifRange = HeaderFields.first("if-range", in: requestHeaders), !ifRangeHolds(ifRange, storedHeaders) {
            return .full
        }
        return parse(spec, length: length)
    }

    /// Parses one `Range` value against a representation length.
    public static func parse(_ value: String, length: Int) -> RangeAnswer {
        let bytes = Array(HeaderFields.trimOWS(value).utf8)
        let unit = Array("bytes=".utf8)
        guard bytes.count > unit.count,
              zip(bytes.prefix(unit.count), unit).allSatisfy({ a, b in (a >= 0x41 && a <= 0x5A ? a + 0x20 : a) == b })
        else { return .full }
        let set = HeaderFields.splitList(String(decoding: bytes[unit.count...], as: UTF8.self))
        guard set.count == 1, let spec = set.first else { return .full }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .full }
        let first = digits(parts[0])
        let last = digits(parts[1])
        if parts[0].isEmpty {
            // suffix-range: the last N bytes (§14.1.2); N = 0 is unsatisfiable.
            guard let n = last else { return .full }
            guard n > 0, length > 0 else { return .unsatisfiable }
            return .partial(start: max(0, length - n), end: length - 1)
        }
        guard let start = first else { return .full }
        if !parts[1].isEmpty {
            guard let end = last, end >= start else { return .full }  // invalid: ignored
            guard start < length else { return .unsatisfiable }
            return .partial(start: start, end: min(end, length - 1))
        }
        guard start < length else { return .unsatisfiable }
        return .partial(start: start, end: length - 1)
    }

    /// Whether `If-Range` lets a partial answer go out (strong ETag equality or an exact Last-Modified date).
    static func ifRangeHolds(_ value: String, _ stored: HTTPFields) -> Bool {
        let v = HeaderFields.trimOWS(value)
        if v.hasPrefix("\"") || v.hasPrefix("W/") {
            guard let tag = EntityTag.parseList(v).first, !tag.weak,
                  let raw = HeaderFields.first("etag", in: stored), let storedTag = EntityTag.parseList(raw).first,
                  !storedTag.weak
            else { return false }
            return tag.opaque == storedTag.opaque
        }
        guard let date = HTTPDate.parse(v),
              let lm = HeaderFields.first("last-modified", in: stored).flatMap({ HTTPDate.parse($0) })
        else { return false }
        return date == lm
    }

    /// Non-negative decimal digits (at most 18), else nil.
    private static func digits(_ s: Substring) -> Int? {
        let t = s.utf8
        guard !t.isEmpty, t.count <= 18, t.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s)
    }
}
