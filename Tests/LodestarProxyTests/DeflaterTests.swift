import CZlib
import LodestarEdge
import NIOCore
import XCTest

@testable import LodestarProxy

/// The lanes' streaming encoder: what goes in comes out of zlib's decoder, part by part.
final class DeflaterTests: XCTestCase {
    /// zlib's decoder, gzip or zlib framing detected from the header (window bits 32 + 15).
    static func inflate(_ data: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 47, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw XCTSkip("inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var input = data, out: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 65536)
        var rc = Z_OK
        try input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = UInt32(inBuf.count)
            repeat {
                let produced = chunk.withUnsafeMutableBufferPointer { outBuf -> Int in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = UInt32(outBuf.count)
                    rc = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return outBuf.count - Int(stream.avail_out)
                }
                out += chunk[0..<produced]
                if rc != Z_OK && rc != Z_STREAM_END { throw NSError(domain: "zlib", code: Int(rc)) }
            } while rc != Z_STREAM_END
        }
        return out
    }

    private func text(_ n: Int) -> [UInt8] {
        (0..<n).map { i in UInt8(ascii: "a") + UInt8((i * 7 + i / 13) % 26) }
    }

    func test_partsFlushedAndFinishedDecodeToTheInput() throws {
        for coding in [ContentCoding.gzip, .deflate] {
            let input = text(200_000)
            let d = try XCTUnwrap(Deflater(coding))
            var wire: [UInt8] = []
            var offset = 0
            for size in [1, 7, 1000, 65536, 100_000] {
                var out = ByteBuffer()
                d.compress(ByteBuffer(bytes: input[offset..<min(offset + size, input.count)]))
                d.flush(into: &out)
                offset += size
                wire += out.readableBytesView
                // After a flush, what was given so far can be decoded (a stream is not held back).
                XCTAssertGreaterThan(out.readableBytes, 0, "\(coding) flush after \(size) bytes")
            }
            var rest = ByteBuffer()
            d.compress(ByteBuffer(bytes: input[offset...]))
            d.finish(into: &rest)
            wire += rest.readableBytesView
            var after = ByteBuffer()
            d.finish(into: &after)
            d.compress(ByteBuffer(string: "late"))
            d.flush(into: &after)
            XCTAssertEqual(after.readableBytes, 0, "nothing after the end")
            XCTAssertEqual(try Self.inflate(wire), input, "\(coding)")
            XCTAssertLessThan(wire.count, input.count / 2, "\(coding) compresses")
            XCTAssertEqual(wire.prefix(2) == [0x1f, 0x8b], coding == .gzip, "gzip magic only for gzip")
        }
    }

    func test_anEmptyBodyIsAValidStream() throws {
        let d = try XCTUnwrap(Deflater(.gzip))
        var out = ByteBuffer()
        d.finish(into: &out)
        XCTAssertEqual(try Self.inflate(Array(out.readableBytesView)), [])
    }

    /// A small body gets a smaller window and hash table (as nginx sizes them); any input still decodes, even past
    /// the length the window was sized for.
    func test_theWindowFitsTheBody() throws {
        XCTAssertTrue(Deflater.sizes(nil) == (15, 8))
        XCTAssertTrue(Deflater.sizes(1 << 20) == (15, 8))
        XCTAssertTrue(Deflater.sizes(8152) == (14, 7))
        XCTAssertTrue(Deflater.sizes(1500) == (11, 4))
        XCTAssertTrue(Deflater.sizes(10) == (9, 2), "never below 9 bits")
        let input = text(50_000)
        for length: Int64 in [10, 1500, 8152] {
            let d = try XCTUnwrap(Deflater(.gzip, level: 1, length: length))
            var out = ByteBuffer()
            d.compress(ByteBuffer(bytes: input))
            d.finish(into: &out)
            XCTAssertEqual(try Self.inflate(Array(out.readableBytesView)), input, "sized for \(length)")
        }
    }
}
