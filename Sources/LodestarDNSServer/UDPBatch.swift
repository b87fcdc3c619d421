import CLodestarNet
import Glibc
import LodestarTopology

/// The memory one UDP loop receives and answers a batch in (`UDPSocketLoop`): `batch` slots, each holding a datagram
/// and then its reply (written over it), the message headers of `recvmmsg` and `sendmmsg` pointing at them, and per
/// slot the client and what the first pass read. The headers are wired once; a receive changes only their lengths and
/// flags. Plain values throughout, so a batch goes by with no reference counting.
final class UDPBatch {
    /// Bytes a slot holds: a datagram and its reply.
    static let slotSize = 4096
    /// Distance between slots: a few cache lines more than a page, so the slots' first lines (where every datagram
    /// and reply lies) fall in different cache sets instead of all in one.
    static let slotStride = slotSize + 3 * 64

    let capacity: Int
    let received: UnsafeMutablePointer<lodestar_mmsghdr>
    let replies: UnsafeMutablePointer<lodestar_mmsghdr>
    let clients: UnsafeMutablePointer<IPAddress?>
    let prepared: UnsafeMutablePointer<UDPAnswerer.Prepared>
    private let input: UnsafeMutableRawBufferPointer
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let inVectors: UnsafeMutablePointer<iovec>
    private let outVectors: UnsafeMutablePointer<iovec>

    init(capacity: Int) {
        self.capacity = capacity
        input = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity * Self.slotStride, alignment: 64)
        names = .allocate(capacity: capacity)
        inVectors = .allocate(capacity: capacity)
        outVectors = .allocate(capacity: capacity)
        received = .allocate(capacity: capacity)
        replies = .allocate(capacity: capacity)
        clients = .allocate(capacity: capacity)
        prepared = .allocate(capacity: capacity)
        clients.initialize(repeating: nil, count: capacity)
        prepared.initialize(repeating: .unread, count: capacity)
        for i in 0..<capacity {
            inVectors[i] = iovec(iov_base: slot(i).baseAddress, iov_len: Self.slotSize)
            received[i] = lodestar_mmsghdr()
            received[i].hdr.msg_name = UnsafeMutableRawPointer(names + i)
            received[i].hdr.msg_iov = inVectors + i
            received[i].hdr.msg_iovlen = 1
            replies[i] = lodestar_mmsghdr()
            replies[i].hdr.msg_iov = outVectors + i
            replies[i].hdr.msg_iovlen = 1
        }
    }

    deinit {
        input.deallocate(); names.deallocate(); inVectors.deallocate(); outVectors.deallocate()
        received.deallocate(); replies.deallocate(); clients.deallocate(); prepared.deallocate()
    }

    /// Readies every header for the next `recvmmsg`: the kernel rewrites each one's name length and flags.
    func resetForReceive() {
        let nameSize = socklen_t(MemoryLayout<sockaddr_storage>.size)
        for i in 0..<capacity {
            received[i].hdr.msg_namelen = nameSize
            received[i].hdr.msg_flags = 0
        }
    }

    /// Slot `i`'s bytes (the reply is written there).
    @inline(__always)
    func slot(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: input[(i * Self.slotStride)..<(i * Self.slotStride + Self.slotSize)])
    }

    /// The datagram received in slot `i`.
    @inline(__always)
    func datagram(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: slot(i)[0..<min(Int(received[i].len), Self.slotSize)])
    }

    /// Slot `i`'s client, read from its name (nil for a truncated datagram or an unusable address).
    func client(_ i: Int) -> IPAddress? {
        guard received[i].hdr.msg_flags & Int32(MSG_TRUNC) == 0 else { return nil }
        return UDPSocketLoop.ipAddress(names[i], length: received[i].hdr.msg_namelen)
    }

    /// Makes reply header `r` send the first `length` bytes of slot `i` back to where slot `i`'s datagram came from.
    @inline(__always)
    func setReply(_ r: Int, slot i: Int, length: Int) {
        outVectors[r] = iovec(iov_base: slot(i).baseAddress, iov_len: length)
        replies[r].hdr.msg_name = UnsafeMutableRawPointer(names + i)
        replies[r].hdr.msg_namelen = received[i].hdr.msg_namelen
    }
}
