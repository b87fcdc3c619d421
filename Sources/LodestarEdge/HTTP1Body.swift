/// How an HTTP/1.1 response body is delimited (RFC 9112 §6.3).
public enum ResponseFraming: Equatable, Sendable {
    /// No body (a HEAD request, 1xx, 204, 304).
    case none
    /// `Content-Length` bytes.
    case length(Int64)
    /// `Transfer-Encoding: chunked`.
    case chunked
    /// Until the origin closes the connection.
    case close
}

/// What the pass-through lane needs to know of a response head.
public struct ResponseFacts: Equatable, Sendable {
    public var framing: ResponseFraming
    /// The origin keeps the connection open after this response (HTTP/1.1, no `Connection: close`, one clear length).
    public var reusable: Bool
    /// Seconds from the origin's `Keep-Alive: timeout=`.
    public var keepAliveTimeout: Int?

    /// The facts of `head` (read from `bytes`) as the answer to a request (`isHEAD`: the request's method was HEAD);
    /// nil when the head cannot be relayed safely (an unreadable or contradictory `Content-Length`).
    public init?(_ head: HTTP1Wire.Response, bytes b: UnsafeRawBufferPointer, isHEAD: Bool) {
        var length: Int64?
        var codings: [Substring] = []
        var close = false
        var keepAliveTimeout: Int?
        for f in head.fields {
            switch f.name.count {
            case 14 where HTTP1Wire.bytes(b, f.name, equal: "content-length"):
                guard let n = Self.contentLength(b, f.value), length == nil || length == n else { return nil }
                length = n
            case 17 where HTTP1Wire.bytes(b, f.name, equal: "transfer-encoding"):
                codings += HTTP1Wire.string(b, f.value).split(separator: ",").map { $0.trimmingSpaces() }
            case 10 where HTTP1Wire.bytes(b, f.name, equal: "connection"):
                // The usual values without making a string.
                if HTTP1Wire.bytes(b, f.value, equal: "keep-alive") { continue }
                if HTTP1Wire.bytes(b, f.value, equal: "close") || HTTPText.listNames(HTTP1Wire.string(b, f.value), "close") {
                    close = true
                }
            case 10 where HTTP1Wire.bytes(b, f.name, equal: "keep-alive"):
                keepAliveTimeout = HTTPText.keepAliveTimeout(HTTP1Wire.string(b, f.value))
            default:
                break
            }
        }
        self.keepAliveTimeout = keepAliveTimeout
        var clean = true
        if isHEAD || head.status < 200 || head.status == 204 || head.status == 304 {
            framing = .none
        } else if !codings.isEmpty {
            // Chunked last: the end is known. Anything else ends with the connection (RFC 9112 §6.3 ¶4); a length
            // beside a coding is a smuggling pattern, so the connection is not kept either way.
            let chunked = codings.count == 1 && HTTPText.nameEquals(String(codings[0]), "chunked")
            framing = chunked ? .chunked : .close
            clean = chunked && length == nil
        } else if let length {
            framing = .length(length)
        } else {
            framing = .close
        }
        reusable = clean && !close && head.minorVersion == 1 && framing != .close
    }

    /// 1*DIGIT, at most 18 of them.
    static func contentLength(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int64? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var n: Int64 = 0
        for i in range {
            let c = b[i]
            guard c >= 48 && c <= 57 else { return nil }
            n = n * 10 + Int64(c - 48)
        }
        return n
    }
}

/// Finds the end of a chunked body (RFC 9112 §7.1) in bytes relayed as they are: chunk sizes, extensions, data,
/// the last chunk and the trailer section. Strict: hex sizes of at most 15 digits, CRLF line ends, bounded extension
/// and trailer lengths.
public struct ChunkedScanner: Sendable {
    @usableFromInline enum State: Sendable { case size, extensions, sizeLF, data, dataCR, dataLF, trailerStart, trailerLine, trailerLF, lastLF, done }

    @usableFromInline var state = State.size
    var remaining: UInt64 = 0
    var digits = 0
    var lineBytes = 0
    var trailerBytes = 0
    /// Chunk data bytes scanned so far (the body's length without its framing).
    public internal(set) var dataBytes: Int64 = 0

    static let maxLineBytes = 4096
    static let maxTrailerBytes = 16384

    public init() {}

    /// The body has ended (its last chunk and trailer section were scanned).
    public var isDone: Bool { state == .done }

    /// Scans `bytes`: how many of them belong to the body (fewer than all when it ends inside them), nil when the
    /// framing is broken.
    public mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Int? {
        scan(bytes) { _ in }
    }

    /// Scans `bytes` as `scan(_:)` does and hands each run of chunk data in them to `data` (offsets into `bytes`):
    /// the body without its framing.
    @inlinable
    public mutating func scan(_ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void) -> Int? {
        scan(bytes, data: data, trailer: { _ in })
    }

    /// Scans as `scan(_:data:)` does and hands `trailer` the bytes in `bytes` that belong to the trailer section
    /// (its field lines and the empty line that ends the body; at most one run per call).
    @inlinable
    public mutating func scan(_ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void,
                              trailer: (Range<Int>) -> Void) -> Int? {
        var i = 0
        let n = bytes.count
        var trailerFrom = -1
        while i < n {
            if inData {
                let take = takeData(n - i)
                if take > 0 { data(i..<(i + take)) }
                i += take
                continue
            }
            if trailerFrom < 0 && inTrailer { trailerFrom = i }
            guard step(bytes[i]) else { return nil }
            i += 1
            if state == .done { break }
        }
        if trailerFrom >= 0 { trailer(trailerFrom..<i) }
        return i
    }

    @usableFromInline
    var inData: Bool { state == .data }

    @usableFromInline
    var inTrailer: Bool {
        switch state {
        case .trailerStart, .trailerLine, .trailerLF, .lastLF: true
        default: false
        }
    }

    /// The field lines of a trailer section as `scan` handed it over (CRLF-ended lines, the empty one last): names as
    /// sent, values without surrounding spaces; a line that is not a valid field (RFC 9112 §5, §7.1.2) is left out.
    public static func trailerFields(_ section: [UInt8]) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        var start = 0
        while start < section.count, let cr = section[start...].firstIndex(of: 13) {
            let line = section[start..<cr]
            start = cr + 2
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[..<colon].allSatisfy(RequestFraming.isTchar) else { continue }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 32 || f == 9 { value = value.dropFirst() }
            while let l = value.last, l == 32 || l == 9 { value = value.dropLast() }
            guard value.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else { continue }
            out.append((String(decoding: line[..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return out
    }

    /// Takes up to `available` bytes of the current chunk's data.
    @usableFromInline
    mutating func takeData(_ available: Int) -> Int {
        let take = Int(min(remaining, UInt64(available)))
        remaining -= UInt64(take)
        dataBytes += Int64(take)
        if remaining == 0 { state = .dataCR }
        return take
    }

    /// One byte outside chunk data.
    @usableFromInline
    mutating func step(_ c: UInt8) -> Bool {
        switch state {
        case .size:
            if let v = Self.hexValue(c) {
                guard digits < 15 else { return false }
                remaining = remaining << 4 | UInt64(v)
                digits += 1
                return true
            }
            guard digits > 0 else { return false }
            if c == 13 { state = .sizeLF; return true }
            guard c == UInt8(ascii: ";") || c == 32 || c == 9 else { return false }
            state = .extensions
            lineBytes = 0
            return true
        case .extensions:
            if c == 13 { state = .sizeLF; return true }
            lineBytes += 1
            return c != 10 && c != 0 && lineBytes <= Self.maxLineBytes
        case .sizeLF:
            guard c == 10 else { return false }
            digits = 0
            if remaining == 0 {
                state = .trailerStart
            } else {
                state = .data
            }
            return true
        case .dataCR:
            guard c == 13 else { return false }
            state = .dataLF
            return true
        case .dataLF:
            guard c == 10 else { return false }
            state = .size
            remaining = 0
            return true
        case .trailerStart:
            if c == 13 { state = .lastLF; return true }
            state = .trailerLine
            return countTrailer(c)
        case .trailerLine:
            if c == 13 { state = .trailerLF; return true }
            return countTrailer(c)
        case .trailerLF:
            guard c == 10 else { return false }
            state = .trailerStart
            return true
        case .lastLF:
            guard c == 10 else { return false }
            state = .done
            return true
        case .data, .done:
            return false
        }
    }

    private mutating func countTrailer(_ c: UInt8) -> Bool {
        trailerBytes += 1
        return c != 10 && c != 0 && trailerBytes <= Self.maxTrailerBytes
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
}
