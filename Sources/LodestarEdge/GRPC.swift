/// gRPC over HTTP/2 as an edge sees it (grpc/grpc `doc/PROTOCOL-HTTP2.md`, `doc/http-grpc-status-mapping.md`): telling
/// gRPC requests apart, their deadline, and the status an edge-made failure becomes.
public enum GRPC {
    /// Status codes (grpc `doc/statuscodes.md`).
    public enum Status: Int, Sendable {
        case ok = 0, cancelled = 1, unknown = 2, invalidArgument = 3, deadlineExceeded = 4, notFound = 5
        case permissionDenied = 7, resourceExhausted = 8, unimplemented = 12, internalError = 13, unavailable = 14
        case unauthenticated = 16
    }

    /// `Content-Type: application/grpc` or `application/grpc+proto` (and other `+suffix`es).
    public static func isGRPC(contentType: String?) -> Bool {
        guard let t = contentType?.utf8, t.count >= 16 else { return false }
        // ASCII case-insensitive "application/grpc", then the end, "+" or ";" (no allocation: on every request).
        var i = t.startIndex
        for expected in "application/grpc".utf8 {
            let b = t[i]
            if ((b >= 65 && b <= 90) ? b | 0x20 : b) != expected { return false }
            i = t.index(after: i)
        }
        return i == t.endIndex || t[i] == UInt8(ascii: "+") || t[i] == UInt8(ascii: ";")
    }

    /// `grpc-timeout` (`1*8DIGIT unit`, unit one of H M S m u n) in nanoseconds; nil when absent or malformed.
    public static func timeoutNanoseconds(_ value: String?) -> Int64? {
        guard let v = value, let unit = v.last, v.count >= 2, v.count <= 9 else { return nil }
        guard let amount = Int64(v.dropLast()), amount >= 0 else { return nil }
        let perUnit: Int64
        switch unit {
        case "H": perUnit = 3_600_000_000_000
        case "M": perUnit = 60_000_000_000
        case "S": perUnit = 1_000_000_000
        case "m": perUnit = 1_000_000
        case "u": perUnit = 1_000
        case "n": perUnit = 1
        default: return nil
        }
        let (product, overflow) = amount.multipliedReportingOverflow(by: perUnit)
        return overflow ? Int64.max : product
    }

    /// The gRPC status for an answer the edge makes itself (HTTP → gRPC mapping of grpc's doc, except that the edge's
    /// own timeouts say DEADLINE_EXCEEDED and its limits RESOURCE_EXHAUSTED, which is what happened).
    public static func status(httpStatus: Int, timedOut: Bool = false) -> Status {
        if timedOut { return .deadlineExceeded }
        switch httpStatus {
        case 400: return .internalError
        case 401: return .unauthenticated
        case 403: return .permissionDenied
        case 404: return .unimplemented
        case 408, 504: return .deadlineExceeded
        case 413, 429, 431: return .resourceExhausted
        case 502, 503: return .unavailable
        default: return httpStatus >= 500 ? .unavailable : .unknown
        }
    }

    /// `grpc-message`: percent-encoded UTF-8 (space and printable ASCII except `%` as they are).
    public static func encodeMessage(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            if b >= 0x20 && b <= 0x7E && b != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(b >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(b & 0xF)]))
            }
        }
        return out
    }
}
