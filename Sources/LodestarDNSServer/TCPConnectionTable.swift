import LodestarTopology
import NIOCore
import Synchronization

/// The DNS server's open TCP connections, so that an idle crowd cannot lock new clients out (RFC 7766 §6.2.3, RFC
/// 9210 §4): a new connection past the cap closes the longest-idle one rather than being refused, a client past its
/// own cap gives up its own longest-idle one, and the idle timeout shortens as the table fills. Thread-safe.
final class TCPConnectionTable: Sendable {
    /// One connection: its channel, its client, and when it opened or last read a query.
    private struct Entry {
        let channel: any Channel
        let client: IPAddress
        var lastActive: NIODeadline
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var perClient: [IPAddress: Int] = [:]
    }

    private let state = Mutex(State())
    /// At most this many connections (`dns.maxTCPConnections`), and this many per client address.
    let capacity: Int
    let perClientCapacity: Int
    /// The idle timeout while the table is at most half full (`dns.tcpIdleTimeoutSeconds`).
    let idleTimeout: TimeAmount
    /// The shortest the idle timeout gets, with the table full.
    static let minimumIdleTimeout = TimeAmount.seconds(1)

    init(capacity: Int, idleTimeout: TimeAmount) {
        self.capacity = max(1, capacity)
        perClientCapacity = max(8, self.capacity / 8)
        self.idleTimeout = idleTimeout
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Adds a new connection; returns the connections to close to make room for it (longest idle first).
    func admit(_ channel: any Channel, client: IPAddress, now: NIODeadline = .now()) -> [any Channel] {
        state.withLock { s in
            var evicted: [any Channel] = []
            if s.perClient[client, default: 0] >= perClientCapacity, let id = Self.longestIdle(s, client: client),
               let channel = Self.remove(&s, id) {
                evicted.append(channel)
            }
            while s.entries.count >= capacity, let id = Self.longestIdle(s, client: nil), let channel = Self.remove(&s, id) {
                evicted.append(channel)
            }
            s.entries[ObjectIdentifier(channel)] = Entry(channel: channel, client: client, lastActive: now)
            s.perClient[client, default: 0] += 1
            return evicted
        }
    }

    /// The connection read a query or wrote an answer.
    func touch(_ channel: any Channel, now: NIODeadline = .now()) {
        state.withLock { $0.entries[ObjectIdentifier(channel)]?.lastActive = now }
    }

    /// The connection closed.
    func remove(_ channel: any Channel) {
        state.withLock { s in
            _ = Self.remove(&s, ObjectIdentifier(channel))
        }
    }

    /// The idle timeout at this fill: the configured one up to half full, then shrinking linearly to
    /// `minimumIdleTimeout` when full.
    func effectiveIdleTimeout(count: Int) -> TimeAmount {
        guard count * 2 > capacity else { return idleTimeout }
        let left = Int64(max(0, capacity - count))
        let scaled = idleTimeout.nanoseconds / Int64(capacity) * 2 * left
        return .nanoseconds(max(Self.minimumIdleTimeout.nanoseconds, scaled))
    }

    /// The connections idle past the effective timeout (they are forgotten here; the caller closes them).
    func expired(now: NIODeadline = .now()) -> [any Channel] {
        state.withLock { s in
            let limit = effectiveIdleTimeout(count: s.entries.count)
            let stale = s.entries.filter { now - $0.value.lastActive >= limit }.keys
            return stale.compactMap { Self.remove(&s, $0) }
        }
    }

    private static func longestIdle(_ s: State, client: IPAddress?) -> ObjectIdentifier? {
        var best: ObjectIdentifier?
        var oldest = NIODeadline.distantFuture
        for (id, e) in s.entries where (client == nil || e.client == client) && e.lastActive < oldest {
            best = id
            oldest = e.lastActive
        }
        return best
    }

    private static func remove(_ s: inout State, _ id: ObjectIdentifier) -> (any Channel)? {
        guard let e = s.entries.removeValue(forKey: id) else { return nil }
        s.perClient[e.client, default: 1] -= 1
        if s.perClient[e.client] == 0 { s.perClient[e.client] = nil }
        return e.channel
    }
}

/// On the TCP listener's own channel, before NIO hands an accepted connection to its event loop: enters it in the
/// table in the order the kernel gave the connections, stamped with the time it was accepted, so that "longest idle"
/// means what it says even when one event loop is slower to set its connections up than the other.
final class TCPAcceptAdmission: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let table: TCPConnectionTable
    private let stats: DNSServerStats

    init(table: TCPConnectionTable, stats: DNSServerStats) {
        self.table = table
        self.stats = stats
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = unwrapInboundIn(data)
        let table = self.table, stats = self.stats
        stats.tcpConnections.add(1, ordering: .relaxed)
        channel.closeFuture.whenComplete { _ in
            stats.tcpConnections.subtract(1, ordering: .relaxed)
            table.remove(channel)
        }
        // Past the caps the longest-idle connections make room; the newcomer is served (RFC 7766 §6.2.3).
        let client = channel.remoteAddress.flatMap { IPAddress($0) } ?? .v4(0)
        for old in table.admit(channel, client: client) {
            stats.tcpRejected.add(1, ordering: .relaxed)
            old.close(promise: nil)
        }
        context.fireChannelRead(data)
    }
}
