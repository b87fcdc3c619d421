import CZlib
import LodestarEdge
import NIOCore

/// The edge's streaming gzip or deflate encoder over zlib (the full path's and the lanes'): body parts in, compressed
/// bytes out at each `flush`, which ends what was given so far on a byte boundary (Z_SYNC_FLUSH, so a streamed
/// response is not held back), and at `finish`, which ends the stream. A 32 KiB window and zlib's default memory level; the level is
/// `compression.level`.
final class Deflater {
    /// zlib keeps a pointer back to its stream: it lives at one address until `deinit`.
    private let stream: UnsafeMutablePointer<z_stream>
    private var ended = false
    /// Parts taken since the last flush.
    private var pending: [ByteBuffer] = []

    /// Nil when zlib cannot set the stream up (out of memory): the answer then goes uncompressed. `length`: the
    /// body's size when the origin said it; a small body gets a smaller window and hash table (as nginx sizes them):
    /// the same output, less memory to set up and clear.
    init?(_ coding: ContentCoding, level: Int = 6, length: Int64? = nil) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let (windowBits, memLevel) = Self.sizes(length)
        // RFC 1952 gzip framing: window bits + 16; RFC 1950 zlib framing (HTTP's `deflate`, RFC 9110 §8.4.1.2).
        let bits = coding == .gzip ? windowBits + 16 : windowBits
        guard lodestar_deflate_init(stream, Int32(min(max(level, 1), 9)), bits, memLevel) == Z_OK else {
            stream.deallocate()
            return nil
        }
    }

    /// zlib's window bits and memory level for a body of `length` bytes: the 32 KiB window and memory level 8 unless
    /// the body fits a smaller window (zlib's window is 262 bytes short of its size); never below 9 bits.
    static func sizes(_ length: Int64?) -> (windowBits: Int32, memLevel: Int32) {
        var bits: Int32 = 15, mem: Int32 = 8
        guard let length, length > 0 else { return (bits, mem) }
        while bits > 9 && length < (Int64(1) << (bits - 1)) - 262 {
            bits -= 1
            mem -= 1
        }
        return (bits, max(mem, 1))
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Takes `input` to compress at the next `flush` or `finish` (parts read together are compressed together, into
    /// one buffer: as a whole answer that came in one read is compressed in one call).
    func compress(_ input: ByteBuffer) {
        guard !ended, input.readableBytes > 0 else { return }
        pending.append(input)
    }

    /// Everything given so far, compressed into `out`.
    func flush(into out: inout ByteBuffer) {
        guard !ended, !pending.isEmpty else { return }
        drain(Z_SYNC_FLUSH, into: &out)
    }

    /// Everything given so far and the end of the stream (the gzip trailer); later calls write nothing.
    func finish(into out: inout ByteBuffer) {
        guard !ended else { return }
        drain(Z_FINISH, into: &out)
        ended = true
    }

    private func drain(_ mode: Int32, into out: inout ByteBuffer) {
        let total = pending.reduce(0) { $0 + $1.readableBytes }
        out.reserveCapacity(minimumWritableBytes: Int(deflateBound(stream, UInt(total))) + 16)
        if pending.isEmpty { run(ByteBuffer(), mode, into: &out) }
        for (i, part) in pending.enumerated() { run(part, i == pending.count - 1 ? mode : Z_NO_FLUSH, into: &out) }
        pending.removeAll(keepingCapacity: true)
    }

    private func run(_ input: ByteBuffer, _ mode: Int32, into out: inout ByteBuffer) {
        input.withUnsafeReadableBytes { inBytes in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = UInt32(inBytes.count)
            var rc = Z_OK
            repeat {
                let room = Int(deflateBound(stream, UInt(stream.pointee.avail_in))) + 16
                out.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { outBytes in
                    stream.pointee.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                    stream.pointee.avail_out = UInt32(outBytes.count)
                    rc = deflate(stream, mode)
                    return outBytes.count - Int(stream.pointee.avail_out)
                }
                // Done: the stream ended, zlib could make no progress (Z_BUF_ERROR) or failed, or — short of the
                // end — it took all the input and had room to spare.
            } while rc == Z_OK && (mode == Z_FINISH || stream.pointee.avail_in > 0 || stream.pointee.avail_out == 0)
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
        }
    }
}
