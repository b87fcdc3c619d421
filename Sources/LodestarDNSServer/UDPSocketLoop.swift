import CLodestarNet
import Dispatch
import Foundation
import LodestarTopology
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One UDP socket served by its own thread, the way gdnsd serves its listeners: a blocking `recvmmsg` takes up to
/// `batch` datagrams, each is answered in place, the reply written over the query in its slot (`UDPAnswerer`), and one `sendmmsg`
/// sends them all. Several loops share a port through SO_REUSEPORT, so the kernel spreads clients over them. No event
/// loop, no per-datagram allocation on the way in or out.
final class UDPSocketLoop: @unchecked Sendable {
    /// Bytes kept per received datagram (a longer query is truncated and answered FORMERR or dropped) and per reply
    /// (`dns.maxUDPPayload` is at most 4096).
    static let slotSize = UDPBatch.slotSize
    /// How often an idle loop wakes to see whether it must stop and to flush its tallies.
    static let idleWake = timeval(tv_sec: 0, tv_usec: 200_000)

    let fd: Int32
    /// The address the socket is bound to.
    let local: SocketAddress
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    /// Opens a UDP socket bound to `host`:`port` (0: any free port) with SO_REUSEADDR and SO_REUSEPORT, and a receive
    /// timeout of `idleWake`.
    init(host: String, port: Int) throws {
        let address = try SocketAddress(ipAddress: host, port: port)
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UDPSocketError(operation: "socket", errno: errno, address: "\(host):\(port)") }
        var one: Int32 = 1
        var wake = Self.idleWake
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size)
        // IPV6_V6ONLY stays at the system default, as for the TCP listener: `[::]` also takes IPv4 (as mapped addresses).
        // Replies go without DF and without path-MTU state (as gdnsd and Knot send them): a reply that a spoofed ICMP
        // "fragmentation needed" could shrink or drop is the classic DNS fragmentation attack; replies over the
        // client's size are truncated instead.
        var omit: Int32 = 5  // IP_PMTUDISC_OMIT and IPV6_PMTUDISC_OMIT (Linux 3.15+)
        if family == AF_INET6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MTU_DISCOVER, &omit, size)
        } else {
            setsockopt(fd, Int32(IPPROTO_IP), IP_MTU_DISCOVER, &omit, size)
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wake, socklen_t(MemoryLayout<timeval>.size))
        let bound = address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
        guard bound == 0 else {
            let error = UDPSocketError(operation: "bind", errno: errno, address: "\(host):\(port)")
            close(fd)
            throw error
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.local = (try? Self.socketAddress(storage)) ?? address
    }

    /// Starts the loop's thread; it answers with `answerer`, up to `batch` datagrams per system call, until `stop()`.
    func start(answerer: UDPAnswerer, batch: Int = 32, logger: Logger) {
        started = true
        let batch = max(1, batch)
        let thread = Thread { [self] in
            var worker = answerer
            run(&worker, batch: batch, logger: logger)
            finished.signal()
        }
        thread.name = "lodestar-udp-\(local.port ?? 0)"
        thread.start()
    }

    /// Stops the thread (within `idleWake`) and closes the socket.
    func stop() async {
        stopping.store(true, ordering: .releasing)
        if started {
            let finished = self.finished
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async {
                    finished.wait()
                    done.resume()
                }
            }
        }
        close(fd)
    }

    private func run(_ worker: inout UDPAnswerer, batch: Int, logger: Logger) {
        let b = UDPBatch(capacity: batch)
        let waitForOne = lodestar_msg_waitforone()
        var failures = 0
        while !stopping.load(ordering: .acquiring) {
            b.resetForReceive()
            let count = Int(lodestar_recvmmsg(fd, b.received, UInt32(batch), waitForOne, nil))
            if count <= 0 {
                let code = errno
                if count < 0, code != EAGAIN, code != EWOULDBLOCK, code != EINTR {
                    failures += 1
                    if failures == 1 || failures % 1000 == 0 {
                        logger.warning("udp receive failed", metadata: ["errno": "\(code)", "address": "\(local)"])
                    }
                    if code == EBADF { break }
                    usleep(1000)
                }
                worker.endOfBatch(force: true)
                continue
            }
            let start = NIODeadline.now()
            // First pass: read each query and prefetch what its answer reads first; second pass: prefetch what it
            // reads next (the misses of a batch overlap instead of each stalling its answer); third pass: answer.
            // The reply is written over its query, in the same slot (as gdnsd does): one cache footprint, not two.
            // The batch is answered with one authority and health snapshot, held here and lent to each call.
            let context = worker.beginBatch()
            for i in 0..<count {
                b.clients[i] = b.client(i)
                if let client = b.clients[i] { b.prepared[i] = worker.prepare(b.datagram(i), from: client, in: context) }
            }
            if count > 1 {
                for i in 0..<count where b.clients[i] != nil { worker.prefetchAgain(b.prepared[i], in: context) }
            }
            var replyCount = 0
            for i in 0..<count {
                guard let client = b.clients[i] else {
                    worker.dropMalformed()
                    continue
                }
                guard let written = worker.answer(b.datagram(i), from: client, start: start, into: b.slot(i),
                                                  prepared: b.prepared[i], in: context) else { continue }
                b.setReply(replyCount, slot: i, length: written)
                replyCount += 1
            }
            send(b.replies, count: replyCount)
            let end = NIODeadline.now()
            worker.endOfBatch(force: false, elapsed: end - start, now: end)
        }
    }

    /// Sends every reply without blocking (as gdnsd does); one that fails (a vanished route, a full send buffer) is
    /// skipped, not retried, so a stuck peer cannot stall the loop.
    private func send(_ replies: UnsafeMutablePointer<lodestar_mmsghdr>, count: Int) {
        var next = 0
        while next < count {
            let sent = Int(lodestar_sendmmsg(fd, replies + next, UInt32(count - next), Int32(MSG_DONTWAIT)))
            if sent > 0 {
                next += sent
            } else if sent < 0, errno == EINTR {
                continue
            } else {
                next += 1
            }
        }
    }

    /// The client of a received datagram (IPv4-mapped IPv6 becomes IPv4), read from the raw `sockaddr_in` (address at
    /// byte 4) or `sockaddr_in6` (address at byte 8).
    static func ipAddress(_ storage: sockaddr_storage, length: socklen_t) -> IPAddress? {
        withUnsafeBytes(of: storage) { raw -> IPAddress? in
            switch Int32(storage.ss_family) {
            case AF_INET:
                guard length >= socklen_t(MemoryLayout<sockaddr_in>.size), raw.count >= 8 else { return nil }
                return IPAddress(bytes: raw[4..<8])
            case AF_INET6:
                guard length >= socklen_t(MemoryLayout<sockaddr_in6>.size), raw.count >= 24 else { return nil }
                return IPAddress(bytes: raw[8..<24])?.unmapped
            default:
                return nil
            }
        }
    }

    static func socketAddress(_ storage: sockaddr_storage) throws -> SocketAddress {
        var s = storage
        switch Int32(s.ss_family) {
        case AF_INET: return SocketAddress(withUnsafeBytes(of: &s) { $0.load(as: sockaddr_in.self) }, host: "")
        case AF_INET6: return SocketAddress(withUnsafeBytes(of: &s) { $0.load(as: sockaddr_in6.self) }, host: "")
        default: throw UDPSocketError(operation: "getsockname", errno: EAFNOSUPPORT, address: "?")
        }
    }
}

/// A UDP socket call that failed, with the address and the reason.
struct UDPSocketError: Error, CustomStringConvertible {
    let operation: String
    let errno: Int32
    let address: String

    var description: String { "\(operation) \(address): \(String(cString: strerror(errno)))" }
}
