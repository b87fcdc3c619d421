#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Where a `StructuredLogHandler` sends its lines: a file descriptor (stderr) or an in-memory buffer for tests.
///
/// Every line goes out whole: to a file descriptor as one `write(2)` of the line plus `"\n"` (retried only
/// on `EINTR` or a short write, under a lock so lines of this process never interleave), to memory as one append.
public final class LogOutput: Sendable {
    private enum Sink {
        case fileDescriptor(Int32)
        case memory
    }

    private let sink: Sink
    /// Captured lines (memory sink); for a file descriptor sink only the write lock.
    private let state = Mutex<[String]>([])

    private init(sink: Sink) {
        self.sink = sink
    }

    /// Internal: an output writing to an already open file descriptor, which it does not own or close.
    init(fileDescriptor: Int32) {
        self.sink = .fileDescriptor(fileDescriptor)
    }

    /// The process's standard error (file descriptor 2).
    public static let standardError = LogOutput(sink: .fileDescriptor(2))

    /// A new in-memory output that keeps every line written to it (for tests).
    public static func capture() -> LogOutput {
        LogOutput(sink: .memory)
    }

    /// The lines written so far, without their trailing newline, in write order (always empty for a file descriptor).
    public var captured: [String] {
        state.withLock { $0 }
    }

    /// Writes one line; `line` should not end in a newline, one is appended.
    public func write(_ line: String) {
        switch sink {
        case .memory:
            state.withLock { $0.append(line) }
        case .fileDescriptor(let fd):
            var bytes = Array(line.utf8)
            bytes.append(UInt8(ascii: "\n"))
            state.withLock { _ in
                bytes.withUnsafeBytes { raw in
                    guard var base = raw.baseAddress else { return }
                    var remaining = raw.count
                    while remaining > 0 {
                        let n = systemWrite(fd, base, remaining)
                        if n > 0 {
                            remaining -= n
                            base += n
                        } else if n < 0 && errno == EINTR {
                            continue
                        } else {
                            return  // EPIPE, EBADF, EAGAIN, ...: drop the rest rather than block or crash
                        }
                    }
                }
            }
        }
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.write(fd, buffer, count)
    #elseif canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Musl.write(fd, buffer, count)
    #endif
}
