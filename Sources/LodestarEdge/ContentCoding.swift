/// The content coding the edge compresses a response with for a client (RFC 9110 §12.5.3 `Accept-Encoding`): the
/// choice swift-nio-extras' `HTTPResponseCompressor` makes on the full path, so a pass-through lane answers the same
/// request in the same coding.
public enum ContentCoding: Sendable, Equatable {
    case gzip
    case deflate

    /// The `Content-Encoding` token.
    public var token: String {
        switch self {
        case .gzip: "gzip"
        case .deflate: "deflate"
        }
    }

    /// The coding for a request's `Accept-Encoding` field values (nil: none it accepts). gzip or deflate by the
    /// larger q-value (a tie goes to deflate, as the full path's compressor decides); `*` alone means gzip; q=0 refuses.
    public static func choose<S: Sequence>(acceptEncoding values: S) -> ContentCoding? where S.Element: StringProtocol {
        var gzip: Float = -1, deflate: Float = -1, any: Float = -1
        for value in values {
            for item in value.split(separator: ",") {
                let entry = Substring(item).trimmingSpaces()
                if entry.utf8.starts(with: "gzip".utf8) || entry.utf8.starts(with: "x-gzip".utf8) {
                    gzip = qValue(entry)
                } else if entry.utf8.starts(with: "deflate".utf8) {
                    deflate = qValue(entry)
                } else if entry.utf8.starts(with: "*".utf8) {
                    any = qValue(entry)
                }
            }
        }
        if gzip > 0 || deflate > 0 { return gzip > deflate ? .gzip : .deflate }
        return any > 0 ? .gzip : nil
    }

    /// An entry's weight: 1 without parameters, its `q` (0 when malformed or outside 0…1).
    static func qValue(_ entry: Substring) -> Float {
        let parts = entry.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count > 1, !parts[1].isEmpty else { return 1 }
        let q = parts[1].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard q.count > 1, q[0].utf8.count == 1, let c = q[0].utf8.first, c == UInt8(ascii: "q") || c == UInt8(ascii: "Q"),
              let value = Float(q[1]), value >= 0, value <= 1 else { return 0 }
        return value
    }
}
