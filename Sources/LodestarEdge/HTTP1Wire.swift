/// A strict reader of HTTP/1.1 heads for the edge's pass-through lane (pure: bytes in, fields out).
///
/// It takes only the plainest form of a message (RFC 9112): a request line `METHOD SP /target SP HTTP/1.1`, a status
/// line `HTTP/1.x SP 3DIGIT [SP reason]`, field lines `name ":" OWS value OWS`, every line ended by CRLF. Anything else
/// — another version, an absolute-form or `*` target, a bare LF or CR, obs-fold, control bytes, a space before the
/// colon, too many or too long lines — is `unusual` for a request (the full HTTP/1 parser then decides, and refuses
/// what must be refused) and `invalid` for a response. So the lane never accepts what the full parser would refuse.
public enum HTTP1Wire {
    /// What reading a head gave.
    public enum Read<Head> {
        /// More bytes are needed (and the bytes so far are within the limit).
        case incomplete
        /// Not in the strict form (requests: the full parser's turn; responses: the origin's fault).
        case unusual
        case head(Head)
    }

    /// Limits: the head's bytes (request line or status line included) and its field count.
    public struct Limits: Sendable {
        public var maxBytes: Int
        public var maxFields: Int
        public init(maxBytes: Int, maxFields: Int) {
            self.maxBytes = maxBytes
            self.maxFields = maxFields
        }
    }

    /// A request head in origin-form, HTTP/1.1.
    public struct Request {
        public var method: String
        public var target: String
        public var fields: AdmissionFields
        /// Bytes of the head, blank line included.
        public var length: Int

        public init(method: String, target: String, fields: AdmissionFields, length: Int) {
            self.method = method
            self.target = target
            self.fields = fields
            self.length = length
        }
    }

    /// A field of a response head as byte offsets into the head (no strings made: the pass-through lane copies
    /// most fields as they are).
    public struct Field: Sendable {
        public var name: Range<Int>
        /// Without the surrounding spaces.
        public var value: Range<Int>
        /// The whole line, CRLF excluded.
        public var line: Range<Int>
    }

    /// A response head.
    public struct Response {
        public var status: Int
        /// 0 or 1 (HTTP/1.0 or HTTP/1.1).
        public var minorVersion: Int
        public var fields: [Field]
        /// Bytes of the head, blank line included.
        public var length: Int
    }

    /// Reads a request head from the start of `bytes`.
    public static func readRequest(_ bytes: UnsafeRawBufferPointer, limits: Limits) -> Read<Request> {
        var cursor = Cursor(bytes: bytes, limit: limits.maxBytes)
        guard let line = cursor.line() else { return cursor.verdict() }
        guard let (method, target) = requestLine(bytes, line) else { return .unusual }
        switch readFields(&cursor, limits: limits) {
        case .incomplete: return .incomplete
        case .unusual: return .unusual
        case .head(let fields): return .head(Request(method: method, target: target, fields: fields, length: cursor.position))
        }
    }

    /// Reads a response head from the start of `bytes`.
    public static func readResponse(_ bytes: UnsafeRawBufferPointer, limits: Limits) -> Read<Response> {
        var cursor = Cursor(bytes: bytes, limit: limits.maxBytes)
        guard let line = cursor.line() else { return cursor.verdict() }
        guard let (minor, status) = statusLine(bytes, line) else { return .unusual }
        var fields = [Field]()
        fields.reserveCapacity(12)
        while true {
            guard let line = cursor.line() else { return cursor.verdict() }
            if line.isEmpty { break }
            guard fields.count < limits.maxFields, let field = fieldRanges(bytes, line) else { return .unusual }
            fields.append(field)
        }
        return .head(Response(status: status, minorVersion: minor, fields: fields, length: cursor.position))
    }

    // MARK: Lines

    /// Walks CRLF-ended lines; a bare CR or LF, or a NUL, stops it as unusual.
    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        let limit: Int
        var position = 0
        var bad = false

        init(bytes: UnsafeRawBufferPointer, limit: Int) {
            self.bytes = bytes
            self.limit = limit
        }

        /// The next line's range (without its CRLF), or nil: not complete yet, or bad (see `verdict`).
        mutating func line() -> Range<Int>? {
            let start = position
            var i = start
            let end = min(bytes.count, limit)
            while i < end {
                let b = bytes[i]
                if b == 13 {
                    guard i + 1 < bytes.count else { break }
                    guard bytes[i + 1] == 10, i + 2 <= limit else { bad = true; return nil }
                    position = i + 2
                    return start..<i
                }
                if b == 10 || b == 0 { bad = true; return nil }
                i += 1
            }
            if i >= limit { bad = true }
            return nil
        }

        /// Why `line()` gave nothing.
        func verdict<Head>() -> Read<Head> { bad ? .unusual : .incomplete }
    }

    private enum FieldsRead {
        case incomplete, unusual
        case head(AdmissionFields)
    }

    private static func readFields(_ cursor: inout Cursor, limits: Limits) -> FieldsRead {
        var fields = AdmissionFields()
        fields.reserveCapacity(8)
        while true {
            guard let line = cursor.line() else { return cursor.bad ? .unusual : .incomplete }
            if line.isEmpty { return .head(fields) }
            guard fields.count < limits.maxFields, let f = fieldRanges(cursor.bytes, line) else { return .unusual }
            fields.append((text(cursor.bytes, f.name), text(cursor.bytes, f.value)))
        }
    }

    /// `name ":" OWS value OWS`: the name a token, the value visible bytes, spaces, tabs or obs-text.
    static func fieldRanges(_ b: UnsafeRawBufferPointer, _ line: Range<Int>) -> Field? {
        var i = line.lowerBound
        while i < line.upperBound && isTokenByte(b[i]) { i += 1 }
        guard i > line.lowerBound, i < line.upperBound, b[i] == UInt8(ascii: ":") else { return nil }
        let nameEnd = i
        i += 1
        while i < line.upperBound && (b[i] == 32 || b[i] == 9) { i += 1 }
        var end = line.upperBound
        while end > i && (b[end - 1] == 32 || b[end - 1] == 9) { end -= 1 }
        for j in i..<end where !isValueByte(b[j]) { return nil }
        return Field(name: line.lowerBound..<nameEnd, value: i..<end, line: line)
    }

    /// ASCII case-insensitive equality of `bytes[range]` with a lower-case name.
    @inlinable
    public static func bytes(_ b: UnsafeRawBufferPointer, _ range: Range<Int>, equal lower: StaticString) -> Bool {
        guard range.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        var k = 0
        for i in range {
            let x = b[i]
            if ((x >= 65 && x <= 90) ? x | 0x20 : x) != l[k] { return false }
            k += 1
        }
        return true
    }

    /// The text of `bytes[range]`.
    public static func string(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> String { text(b, range) }

    /// `METHOD SP /target SP HTTP/1.1`.
    static func requestLine(_ b: UnsafeRawBufferPointer, _ line: Range<Int>) -> (String, String)? {
        var i = line.lowerBound
        while i < line.upperBound && isTokenByte(b[i]) { i += 1 }
        let methodEnd = i
        guard methodEnd > line.lowerBound, methodEnd < line.upperBound, b[methodEnd] == 32 else { return nil }
        let targetStart = methodEnd + 1
        guard targetStart < line.upperBound, b[targetStart] == UInt8(ascii: "/") else { return nil }
        i = targetStart
        while i < line.upperBound && b[i] > 32 && b[i] < 127 { i += 1 }
        guard line.upperBound - i == 9, matches(b, at: i, " HTTP/1.1") else { return nil }
        return (text(b, line.lowerBound..<methodEnd), text(b, targetStart..<i))
    }

    /// `HTTP/1.x SP 3DIGIT [SP reason]` → (x, status).
    static func statusLine(_ b: UnsafeRawBufferPointer, _ line: Range<Int>) -> (Int, Int)? {
        let s = line.lowerBound
        guard line.count >= 12 else { return nil }
        guard matches(b, at: s, "HTTP/1.") else { return nil }
        let minor = Int(b[s + 7]) - 48
        guard minor == 0 || minor == 1, b[s + 8] == 32 else { return nil }
        var status = 0
        for k in 9..<12 {
            let d = Int(b[s + k]) - 48
            guard d >= 0 && d <= 9 else { return nil }
            status = status * 10 + d
        }
        guard status >= 100 else { return nil }
        if line.count > 12 {
            guard b[s + 12] == 32 else { return nil }
            for j in (s + 13)..<line.upperBound where !isValueByte(b[j]) { return nil }
        }
        return (minor, status)
    }

    /// `b[at...]` starts with `literal` (the caller checked there are enough bytes).
    @inline(__always)
    static func matches(_ b: UnsafeRawBufferPointer, at start: Int, _ literal: StaticString) -> Bool {
        let l = literal.utf8Start
        for k in 0..<literal.utf8CodeUnitCount where b[start + k] != l[k] { return false }
        return true
    }

    /// RFC 9110 §5.6.2 tchar (the framing checks' own rule).
    @inline(__always)
    static func isTokenByte(_ c: UInt8) -> Bool { RequestFraming.isTchar(c) }

    /// Field value bytes: visible ASCII, space, tab, obs-text (RFC 9110 §5.5).
    @inline(__always)
    static func isValueByte(_ c: UInt8) -> Bool { c == 9 || (c >= 32 && c != 127) }

    @inline(__always)
    static func text(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: b[r]), as: UTF8.self)
    }
}
