/// How a request's body is delimited.
public enum BodyFraming: Sendable, Equatable {
    /// No body (no Content-Length, no Transfer-Encoding).
    case none
    /// Exactly this many bytes.
    case length(Int64)
    /// `Transfer-Encoding: chunked`.
    case chunked
}

/// Outcome of the request framing check.
public enum FramingVerdict: Sendable, Equatable {
    case ok(BodyFraming)
    /// Refuse with 400 and close the connection; the reason is for the log.
    case reject(String)
}

/// Request framing checks against request smuggling (RFC 9112 §6.1–6.3, §11.2; RFC 9110 §5.1, §5.5).
///
/// Deliberately stricter than the RFCs where they allow several readings: anything an intermediary and an origin
/// could frame differently is refused rather than normalised.
public enum RequestFraming {
    /// Longest Content-Length accepted, in digits (fits Int64 without overflow).
    public static let maxContentLengthDigits = 18

    /// Checks every header field and works out the body framing.
    public static func check(headers: some Sequence<(String, String)>) -> FramingVerdict {
        var checker = FramingChecker()
        for (name, value) in headers {
            if let reject = checker.add(name: name, value: value) { return reject }
        }
        return checker.verdict
    }

    /// RFC 9110 §5.6.2 `token`: one or more tchars.
    public static func isToken(_ name: String) -> Bool {
        var count = 0
        for b in name.utf8 {
            guard isTchar(b) else { return false }
            count += 1
        }
        return count > 0
    }

    /// `tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA`.
    @inline(__always)
    static func isTchar(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// False when the value holds CR, LF or NUL (RFC 9110 §5.5: must be rejected).
    public static func isSafeValue(_ value: String) -> Bool {
        for b in value.utf8 where b == 0x0D || b == 0x0A || b == 0x00 { return false }
        return true
    }

    /// 1–18 ASCII digits, optionally surrounded by spaces or tabs; anything else (sign, comma list, empty) is nil.
    static func parseContentLength(_ value: String) -> Int64? {
        var result: Int64 = 0
        var digits = 0
        var trailing = false
        for b in value.utf8 {
            if b == 0x20 || b == 0x09 {
                if digits > 0 { trailing = true }
                continue
            }
            let d = b &- 0x30
            guard d <= 9, !trailing else { return nil }
            digits += 1
            guard digits <= maxContentLengthDigits else { return nil }
            result = result * 10 + Int64(d)
        }
        return digits > 0 ? result : nil
    }

    /// True for exactly `chunked` (any case), optionally surrounded by spaces or tabs.
    static func isChunked(_ value: String) -> Bool {
        let word: StaticString = "chunked"
        var matched = 0
        var trailing = false
        return word.withUTF8Buffer { w in
            for b in value.utf8 {
                if b == 0x20 || b == 0x09 {
                    if matched > 0 { trailing = true }
                    continue
                }
                guard !trailing, matched < w.count, asciiLower(b) == w[matched] else { return false }
                matched += 1
            }
            return matched == w.count
        }
    }
}

/// The framing check one header field at a time (non-generic, so a caller in another module pays no generic dispatch).
public struct FramingChecker: Sendable {
    private var contentLength: Int64?
    private var sawContentLength = false
    private var sawTransferEncoding = false
    private let syntaxChecked: Bool

    /// `syntaxChecked`: the fields' names and values were checked by their reader already (see
    /// `AdmissionRequest.fieldSyntaxChecked`).
    public init(syntaxChecked: Bool = false) {
        self.syntaxChecked = syntaxChecked
    }

    /// Adds one field; returns the rejection as soon as the request is known to be bad.
    public mutating func add(name: String, value: String) -> FramingVerdict? {
        if !syntaxChecked {
            guard RequestFraming.isToken(name) else { return .reject("invalid header field name") }
            guard RequestFraming.isSafeValue(value) else { return .reject("CR, LF or NUL in a header field value") }
        }
        if asciiCaseInsensitiveEquals(name, "content-length") {
            guard !sawContentLength else { return .reject("more than one Content-Length") }
            sawContentLength = true
            guard let length = RequestFraming.parseContentLength(value) else { return .reject("invalid Content-Length") }
            contentLength = length
        } else if asciiCaseInsensitiveEquals(name, "transfer-encoding") {
            guard !sawTransferEncoding else { return .reject("more than one Transfer-Encoding") }
            sawTransferEncoding = true
            guard RequestFraming.isChunked(value) else { return .reject("Transfer-Encoding other than chunked") }
        }
        return nil
    }

    /// The verdict once every field was added.
    public var verdict: FramingVerdict {
        if sawContentLength && sawTransferEncoding { return .reject("Content-Length with Transfer-Encoding") }
        if sawTransferEncoding { return .ok(.chunked) }
        if let contentLength { return .ok(.length(contentLength)) }
        return .ok(.none)
    }
}
