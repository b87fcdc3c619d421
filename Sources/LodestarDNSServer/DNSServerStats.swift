import Synchronization

/// Counters of one DNS server (all event loops), safe to bump from any thread.
public final class DNSServerStats: Sendable {
    public let udpQueries = Atomic<Int>(0)
    public let tcpQueries = Atomic<Int>(0)
    /// Datagrams too short for a header, or with QR=1: dropped unanswered.
    public let dropped = Atomic<Int>(0)
    public let formErr = Atomic<Int>(0)
    public let nxDomain = Atomic<Int>(0)
    public let refused = Atomic<Int>(0)
    public let truncated = Atomic<Int>(0)
    public let rateLimitedDrops = Atomic<Int>(0)
    public let rateLimitedSlips = Atomic<Int>(0)
    public let tcpConnections = Atomic<Int>(0)
    /// UDP answers served from the packet cache.
    public let cacheHits = Atomic<Int>(0)
    public let tcpRejected = Atomic<Int>(0)

    public init() {}

    /// One-line summary for logs.
    public var summary: String {
        "udp=\(udpQueries.load(ordering: .relaxed)) tcp=\(tcpQueries.load(ordering: .relaxed)) "
            + "dropped=\(dropped.load(ordering: .relaxed)) formerr=\(formErr.load(ordering: .relaxed)) "
            + "nxdomain=\(nxDomain.load(ordering: .relaxed)) refused=\(refused.load(ordering: .relaxed)) "
            + "truncated=\(truncated.load(ordering: .relaxed)) rrl_drop=\(rateLimitedDrops.load(ordering: .relaxed)) "
            + "rrl_slip=\(rateLimitedSlips.load(ordering: .relaxed)) cache_hits=\(cacheHits.load(ordering: .relaxed)) tcp_rejected=\(tcpRejected.load(ordering: .relaxed))"
    }

    /// Counts one sent response by its outcome.
    func record(rcode: UInt16, truncated: Bool) {
        switch rcode {
        case 1: formErr.add(1, ordering: .relaxed)
        case 3: nxDomain.add(1, ordering: .relaxed)
        case 5: refused.add(1, ordering: .relaxed)
        default: break
        }
        if truncated { self.truncated.add(1, ordering: .relaxed) }
    }
}

