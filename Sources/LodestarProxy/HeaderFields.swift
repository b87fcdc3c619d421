import LodestarEdge
import NIOCore
import NIOHTTP1

/// One header field as the rewriter reads it: its name told apart and compared without making a string, its value
/// made into one only where a rule reads it. Two kinds: a field held as strings (NIO's `HTTPHeaders`, admission's
/// fields) and a field still in the bytes it arrived in (`WireField`, the pass-through lane's responses).
protocol HeaderFieldRef {
    var kind: KnownHeader { get }
    func nameEquals(_ lower: String) -> Bool
    /// The value is `lower` in any case (no string made for a field still in its bytes).
    func valueEquals(_ lower: StaticString) -> Bool
    var name: String { get }
    var value: String { get }
    /// The name in lower case (HTTP/2's spelling).
    var lowercasedName: String { get }
    /// Writes the field as an HTTP/1.1 line (`name: value` CRLF).
    func write(into buffer: inout ByteBuffer)
}

extension HeaderFieldRef {
    var lowercasedName: String { HTTPText.lowercased(name) }

    func isListed(in lowerNames: [String]) -> Bool {
        for n in lowerNames where nameEquals(n) { return true }
        return false
    }
}

/// A field held as strings.
struct StringField: HeaderFieldRef {
    let name: String
    let value: String

    var kind: KnownHeader { KnownHeader(name) }
    func nameEquals(_ lower: String) -> Bool { HTTPText.nameEquals(name, lower) }
    func valueEquals(_ lower: StaticString) -> Bool {
        var value = value
        return value.withUTF8 { HTTP1Wire.bytes(UnsafeRawBufferPointer($0), 0..<$0.count, equal: lower) }
    }

    /// `name: value` CRLF, in one reservation of the buffer (four separate writes each checked its capacity).
    func write(into buffer: inout ByteBuffer) {
        var name = name, value = value
        name.withUTF8 { n in
            value.withUTF8 { v in
                let total = n.count + v.count + 4
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
                    out.copyMemory(from: UnsafeRawBufferPointer(n))
                    out[n.count] = UInt8(ascii: ":")
                    out[n.count + 1] = UInt8(ascii: " ")
                    UnsafeMutableRawBufferPointer(rebasing: out[(n.count + 2)...]).copyMemory(from: UnsafeRawBufferPointer(v))
                    out[total - 2] = 13
                    out[total - 1] = 10
                    return total
                }
            }
        }
    }
}

/// A field in the bytes it arrived in (valid while those bytes are: inside `withUnsafeReadableBytes`).
struct WireField: HeaderFieldRef {
    let bytes: UnsafeRawBufferPointer
    let field: HTTP1Wire.Field

    var kind: KnownHeader { KnownHeader(bytes: UnsafeRawBufferPointer(rebasing: bytes[field.name])) }

    func nameEquals(_ lower: String) -> Bool {
        guard field.name.count == lower.utf8.count else { return false }
        var i = field.name.lowerBound
        for y in lower.utf8 {
            let x = bytes[i]
            if ((x >= 65 && x <= 90) ? x | 0x20 : x) != y { return false }
            i += 1
        }
        return true
    }

    func valueEquals(_ lower: StaticString) -> Bool { HTTP1Wire.bytes(bytes, field.value, equal: lower) }

    var name: String { HTTP1Wire.string(bytes, field.name) }
    var value: String { HTTP1Wire.string(bytes, field.value) }

    /// Made from the bytes in lower case at once (not a string, then its lower-cased copy).
    var lowercasedName: String { HTTPText.lowercasedASCII(UnsafeRawBufferPointer(rebasing: bytes[field.name])) }

    /// The line as it came (the name's spelling and the value's bytes kept).
    func write(into buffer: inout ByteBuffer) {
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line]))
        buffer.writeInteger(0x0D0A as UInt16)
    }
}

/// A response's fields over the bytes they arrived in, as the rewriter reads them: a sequence of its own, where a
/// lazy map's closure (holding the bytes) was boxed on the heap for every response.
struct WireFields: Sequence {
    let bytes: UnsafeRawBufferPointer
    let fields: [HTTP1Wire.Field]

    func makeIterator() -> Iterator { Iterator(bytes: bytes, inner: fields.makeIterator()) }

    struct Iterator: IteratorProtocol {
        let bytes: UnsafeRawBufferPointer
        var inner: IndexingIterator<[HTTP1Wire.Field]>

        mutating func next() -> WireField? { inner.next().map { WireField(bytes: bytes, field: $0) } }
    }
}

extension HTTPHeaders {
    /// The fields as the rewriter reads them (no copy).
    var fieldRefs: LazyMapSequence<HTTPHeaders, StringField> { lazy.map { StringField(name: $0.name, value: $0.value) } }
}

extension Array where Element == (name: String, value: String) {
    /// The fields as the rewriter reads them (no copy).
    var fieldRefs: LazyMapSequence<[(name: String, value: String)], StringField> {
        lazy.map { StringField(name: $0.name, value: $0.value) }
    }
}
