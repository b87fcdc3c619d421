#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// A failed file-system call of `DiskStore`, with the path and the errno text.
public struct DiskStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being done ("create directory", "read directory", "lock").
    public var operation: String
    /// The path involved.
    public var path: String
    /// The errno value (0 when the failure was not a system call error).
    public var code: Int32
    /// The errno text or other explanation.
    public var reason: String

    /// Creates an error from the current errno or an explicit reason.
    init(_ operation: String, path: String, code: Int32 = errno, reason: String? = nil) {
        self.operation = operation
        self.path = path
        self.code = code
        self.reason = reason ?? DiskIO.errorText(code)
    }

    /// "disk cache: cannot <operation> <path>: <reason>".
    public var description: String { "disk cache: cannot \(operation) \(path): \(reason)" }
}

/// Thin, EINTR-safe wrappers over the POSIX calls the disk store uses.
enum DiskIO {
    /// A file's size, modification time (nanoseconds since the epoch) and type.
    struct Status {
        var size: Int
        var mtimeNanos: Int64
        var isDirectory: Bool
        var isRegular: Bool
    }

    /// The strerror text of an errno value.
    static func errorText(_ code: Int32) -> String {
        guard let s = strerror(code) else { return "errno \(code)" }
        return String(cString: s)
    }

    /// Converts a stat buffer.
    private static func status(_ st: stat) -> Status {
        #if canImport(Darwin)
        let mtime = Int64(st.st_mtimespec.tv_sec) &* 1_000_000_000 &+ Int64(st.st_mtimespec.tv_nsec)
        #else
        let mtime = Int64(st.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(st.st_mtim.tv_nsec)
        #endif
        let type = st.st_mode & S_IFMT
        return Status(size: Int(st.st_size), mtimeNanos: mtime, isDirectory: type == S_IFDIR, isRegular: type == S_IFREG)
    }

    /// lstat(2); nil on failure.
    static func lstatus(_ path: String) -> Status? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return status(st)
    }

    /// fstat(2); nil on failure.
    static func fstatus(_ fd: Int32) -> Status? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return status(st)
    }

    /// mkdir -p: creates missing directories (mode 0700); an existing directory is fine.
    static func makeDirectories(_ path: String) throws(DiskStoreError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + String(component)
            if mkdir(prefix, 0o700) != 0 {
                let code = errno
                guard code == EEXIST else { throw DiskStoreError("create directory", path: prefix, code: code) }
                guard let st = lstatus(prefix), st.isDirectory || isDirectoryFollowingLinks(prefix) else {
                    throw DiskStoreError("create directory", path: prefix, code: ENOTDIR)
                }
            }
        }
    }

    /// Whether the path (following symlinks) is a directory.
    private static func isDirectoryFollowingLinks(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return st.st_mode & S_IFMT == S_IFDIR
    }

    /// The names in a directory, without "." and "..".
    static func list(_ path: String) throws(DiskStoreError) -> [String] {
        guard let dir = opendir(path) else { throw DiskStoreError("read directory", path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                let code = errno
                if code != 0 { throw DiskStoreError("read directory", path: path, code: code) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Opens a file read-only, not following a symlink in the last component; -1 on failure.
    static func openRead(_ path: String) -> Int32 {
        while true {
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            if fd >= 0 || errno != EINTR { return fd }
        }
    }

    /// Reads exactly `count` bytes at `offset` into a new buffer; nil on error or early end of file.
    static func read(_ fd: Int32, count: Int, offset: Int) -> ByteBuffer? {
        guard count >= 0 else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var ok = true
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out -> Int in
            var done = 0
            while done < count {
                guard let base = out.baseAddress else { ok = false; return 0 }
                let n = pread(fd, base + done, count - done, off_t(offset + done))
                if n > 0 {
                    done += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    ok = false
                    return 0
                }
            }
            return done
        }
        return ok ? buffer : nil
    }

    /// Creates a new file (O_EXCL, mode 0600), writes the buffer and optionally fsyncs it; returns 0, or the errno
    /// of the failed call (the partial file is then removed).
    static func writeNewFile(_ path: String, _ buffer: ByteBuffer, sync: Bool) -> Int32 {
        var fd: Int32
        repeat { fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { return errno }
        var failure = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            var done = 0
            while done < bytes.count {
                guard let base = bytes.baseAddress else { return EFAULT }
                let n = write(fd, base + done, bytes.count - done)
                if n > 0 {
                    done += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return n < 0 ? errno : EIO
                }
            }
            return 0
        }
        if failure == 0 && sync && fsync(fd) != 0 { failure = errno }
        if close(fd) != 0 && failure == 0 && errno != EINTR { failure = errno }
        if failure != 0 { _ = unlink(path) }
        return failure
    }

    /// Takes an exclusive, non-blocking flock(2) on a lock file in the directory; returns its descriptor.
    static func lockDirectory(_ path: String) throws(DiskStoreError) -> Int32 {
        let lockPath = path + "/.lock"
        var fd: Int32
        repeat { fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw DiskStoreError("open lock file", path: lockPath) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            _ = close(fd)
            if code == EWOULDBLOCK {
                throw DiskStoreError("lock", path: path, code: code, reason: "directory already in use by another DiskStore")
            }
            throw DiskStoreError("lock", path: lockPath, code: code)
        }
        return fd
    }
}
