#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Synchronization

/// A stored body also kept in an anonymous shared-memory file (unlinked at once), so a cache hit on a plain-HTTP connection can be sent
/// with sendfile(2) instead of being copied from user memory into the socket: the copy dominated large hits.
/// Each event loop gets its own duplicate descriptor (a `NIOFileHandle` must not be used by two threads at once).
final class BodyFile: Sendable {
    /// Bodies from this size up are worth a file.
    static let threshold = 32 << 10
    /// The body length.
    let length: Int
    private let fd: CInt
    private let handles = Mutex<[ObjectIdentifier: NIOFileHandle]>([:])
    /// Makes shared-memory names unique within the process.
    private static let counter = Atomic<UInt64>(0)

    /// Copies `body` into a new memory file; nil when the system refuses one (the hit path then sends the buffer).
    init?(_ body: ByteBuffer) {
        #if os(Linux)
        // An unlinked POSIX shared-memory object (memfd_create is not visible from Swift's Glibc module).
        let name = "/lodestar-body-\(getpid())-\(BodyFile.counter.add(1, ordering: .relaxed).newValue)"
        let fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        shm_unlink(name)
        var written = 0
        let ok = body.withUnsafeReadableBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return raw.isEmpty }
            while written < raw.count {
                let n = write(fd, base + written, raw.count - written)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                written += n
            }
            return true
        }
        guard ok else {
            close(fd)
            return nil
        }
        self.fd = fd
        self.length = body.readableBytes
        #else
        return nil
        #endif
    }

    deinit {
        for h in handles.withLock({ $0.values }) { try? h.close() }
        close(fd)
    }

    /// A region of the file for a write on `loop` (its own descriptor); nil when no descriptor could be made.
    func region(on loop: any EventLoop, from offset: Int, count: Int) -> FileRegion? {
        let key = ObjectIdentifier(loop)
        let handle = handles.withLock { table -> NIOFileHandle? in
            if let h = table[key] { return h }
            let copy = dup(fd)
            guard copy >= 0 else { return nil }
            let h = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: copy)
            table[key] = h
            return h
        }
        return handle.map { FileRegion(fileHandle: $0, readerIndex: offset, endIndex: offset + count) }
    }
}
