import Foundation
import LodestarDNS
import LodestarTopology
import Logging
import NIOCore
import Synchronization

/// Keeps the addresses of the origin host names a topology uses (`"servers": ["app.internal:8443"]`): from the hosts
/// file when a name is listed there, else by asking the recursive resolvers (`proxy.resolver`, or /etc/resolv.conf),
/// and again when the answer's TTL ends (clamped to `minTTLSeconds...maxTTLSeconds`, or the pool's
/// `resolveIntervalMs`). Nothing blocks an event loop: lookups are UDP (TCP when cut) on the resolver's loop.
///
/// A failed lookup keeps the last addresses and tries again sooner (1 s, doubling up to 30 s); an answer that the name
/// does not exist, or has no address, removes them. When a name's addresses change, `onChange` is called and the
/// edge compiles its pools again (an address that went away is drained: its requests in flight finish).
final class OriginResolver: @unchecked Sendable {
    /// What the topology's pools need of one name.
    struct Want: Equatable {
        var v4 = false
        var v6 = false
        /// The shortest `resolveIntervalMs` of the pools using the name (nil: follow the TTL).
        var intervalMs: Int?
    }

    /// The outcome of looking up one family of a name.
    enum FamilyResult {
        case skipped
        case found([IPAddress], ttl: UInt32)
        case none(ttl: UInt32)
        case failed(String)
    }

    private struct Entry {
        var want: Want
        var timer: Scheduled<Void>?
        var failures = 0
        /// The first lookup has ended (with addresses or not).
        var settled = false
        /// Bumped per lookup, so a late answer to an older one is ignored.
        var generation = 0
    }

    private let loop: any EventLoop
    private let logger: Logger
    private let published = Mutex<ResolvedNames>([:])
    private let changed = Mutex<(@Sendable () -> Void)?>(nil)
    private let hostsPath: String
    private let resolvConfPath: String
    // State below is touched only on `loop`.
    private let transport: ResolverTransport
    private var settings = ResolverSettings()
    private var nameservers: [ListenAddress] = []
    private var entries: [String: Entry] = [:]
    private var waiters: [EventLoopPromise<Void>] = []

    init(loop: any EventLoop, logger: Logger, hostsPath: String = "/etc/hosts", resolvConfPath: String = "/etc/resolv.conf") {
        self.loop = loop
        self.logger = logger
        self.hostsPath = hostsPath
        self.resolvConfPath = resolvConfPath
        self.transport = ResolverTransport(loop: loop)
    }

    /// Called (on the resolver's loop) when some name's addresses changed.
    func onChange(_ body: @escaping @Sendable () -> Void) { changed.withLock { $0 = body } }

    /// The addresses known now, by name.
    var resolved: ResolvedNames { published.withLock { $0 } }

    /// The names `topology`'s pools use and what they need of each.
    static func wanted(_ topology: Topology) -> [String: Want] {
        var out = [String: Want]()
        for pool in topology.pools {
            for server in pool.servers {
                guard case .name(let name, _) = server.target else { continue }
                var w = out[name] ?? Want()
                switch pool.resolveFamily {
                case .ipv4: w.v4 = true
                case .ipv6: w.v6 = true
                case .ipv4Preferred, .any: w.v4 = true; w.v6 = true
                }
                if let i = pool.resolveIntervalMs { w.intervalMs = min(w.intervalMs ?? i, i) }
                out[name] = w
            }
        }
        return out
    }

    /// Follows a new topology: its resolver settings, new names looked up at once, names no longer used forgotten.
    func configure(_ topology: Topology) {
        loop.execute { [self] in
            settings = topology.proxy.resolver
            nameservers = settings.nameservers
            if nameservers.isEmpty {
                nameservers = ResolverFiles.nameservers(resolvConf: (try? String(contentsOfFile: resolvConfPath, encoding: .utf8)) ?? "")
            }
            if nameservers.isEmpty, let local = ListenAddress("127.0.0.1:53") { nameservers = [local] }
            let wanted = Self.wanted(topology)
            for (name, e) in entries where wanted[name] == nil {
                e.timer?.cancel()
                entries[name] = nil
                published.withLock { _ = $0.removeValue(forKey: name) }
            }
            for (name, want) in wanted where entries[name]?.want != want {
                entries[name]?.timer?.cancel()
                var e = entries[name] ?? Entry(want: want)
                e.want = want
                entries[name] = e
                lookUp(name)
            }
            checkWaiters()
        }
    }

    /// Succeeds when every name has had its first lookup, or after `timeout` (whichever comes first).
    func settled(timeout: TimeAmount) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        loop.execute { [self] in
            waiters.append(promise)
            checkWaiters()
        }
        loop.scheduleTask(in: timeout) { promise.succeed() }
        return promise.futureResult
    }

    /// Stops every lookup and timer.
    func shutdown() {
        loop.execute { [self] in
            for (_, e) in entries { e.timer?.cancel() }
            entries = [:]
            transport.close()
            checkWaiters()
        }
    }

    // MARK: On the loop

    private func checkWaiters() {
        guard entries.values.allSatisfy(\.settled) else { return }
        for w in waiters { w.succeed() }
        waiters = []
    }

    private func lookUp(_ name: String) {
        guard var e = entries[name] else { return }
        e.generation += 1
        let generation = e.generation
        entries[name] = e
        if settings.useHostsFile, let listed = hostsTable()[name] {
            // Listed in the hosts file: its addresses, looked at again later (the file may change).
            let v4 = listed.filter(\.isIPv4), v6 = listed.filter { !$0.isIPv4 }
            finish(name, generation, v4: e.want.v4 ? .found(v4, ttl: 30) : .skipped, v6: e.want.v6 ? .found(v6, ttl: 30) : .skipped)
            return
        }
        let v4 = e.want.v4 ? query(name, type: RRType.a) : loop.makeSucceededFuture(FamilyResult.skipped)
        let v6 = e.want.v6 ? query(name, type: RRType.aaaa) : loop.makeSucceededFuture(FamilyResult.skipped)
        v4.and(v6).assumeIsolated().whenSuccess { [self] results in
            finish(name, generation, v4: results.0, v6: results.1)
        }
    }

    private func hostsTable() -> [String: [IPAddress]] {
        ResolverFiles.hosts((try? String(contentsOfFile: hostsPath, encoding: .utf8)) ?? "")
    }

    /// One family of a name, trying the nameservers in turn up to `attempts` times; never fails (a failure is a value).
    private func query(_ name: String, type: UInt16, attempt: Int = 0) -> EventLoopFuture<FamilyResult> {
        let id = transport.freshID()
        guard !nameservers.isEmpty, let bytes = StubLookup.query(name: name, type: type, id: id) else {
            return loop.makeSucceededFuture(.failed("no nameserver or an invalid name"))
        }
        let server = nameservers[attempt % nameservers.count]
        let timeout = TimeAmount.milliseconds(Int64(settings.timeoutMs))
        let transport = self.transport
        return transport.udp(bytes, id: id, server: server, timeout: timeout).assumeIsolated()
            .flatMap { answer -> EventLoopFuture<FamilyResult> in
                let outcome = StubLookup.parse(answer, name: name, type: type, id: id)
                guard outcome == .truncated else { return self.loop.makeSucceededFuture(Self.result(outcome, server)) }
                return transport.tcp(bytes, server: server, timeout: timeout)
                    .map { Self.result(StubLookup.parse($0, name: name, type: type, id: id), server) }
            }
            .flatMapError { error in self.loop.makeSucceededFuture(FamilyResult.failed("\(error)")) }
            .flatMap { result -> EventLoopFuture<FamilyResult> in
                if case .failed = result, attempt + 1 < self.settings.attempts {
                    return self.query(name, type: type, attempt: attempt + 1)
                }
                return self.loop.makeSucceededFuture(result)
            }
            .nonisolated()
    }

    private static func result(_ outcome: StubLookup.Outcome, _ server: ListenAddress) -> FamilyResult {
        switch outcome {
        case .addresses(let list, let ttl): return .found(list.sorted(), ttl: ttl)
        case .none(let ttl, _): return .none(ttl: ttl)
        case .truncated: return .failed("\(server): answer cut even over TCP")
        case .failure(let why): return .failed("\(server): \(why)")
        }
    }

    /// Takes a lookup's results: new addresses published (and `onChange` called) when they differ, the next lookup
    /// scheduled.
    private func finish(_ name: String, _ generation: Int, v4: FamilyResult, v6: FamilyResult) {
        guard var e = entries[name], e.generation == generation else { return }
        let old = published.withLock { $0[name] } ?? NameAddresses()
        var new = old
        var ttl: UInt32?
        var failures = [String]()
        for (result, isV4) in [(v4, true), (v6, false)] {
            switch result {
            case .skipped: if isV4 { new.v4 = [] } else { new.v6 = [] }
            case .found(let list, let t):
                if isV4 { new.v4 = list } else { new.v6 = list }
                ttl = min(ttl ?? t, t)
            case .none(let t):
                if isV4 { new.v4 = [] } else { new.v6 = [] }
                ttl = min(ttl ?? t, t)
            case .failed(let why): failures.append((isV4 ? "A: " : "AAAA: ") + why)
            }
        }
        e.failures = failures.isEmpty ? 0 : e.failures + 1
        e.timer = loop.assumeIsolated().scheduleTask(in: nextLookup(e, ttl: ttl)) { [self] in lookUp(name) }
        let first = !e.settled
        e.settled = true
        entries[name] = e
        if !failures.isEmpty {
            logger.warning("origin name lookup failed; keeping the last addresses", metadata: [
                "name": "\(name)", "error": "\(failures.joined(separator: "; "))", "addresses": "\(new.v4.count + new.v6.count)"])
        }
        if new != old || (first && published.withLock({ $0[name] }) == nil) {
            published.withLock { $0[name] = new }
            logger.notice("origin name resolved", metadata: [
                "name": "\(name)", "addresses": "\((new.v4 + new.v6).map(\.description).joined(separator: " "))"])
            if new != old { changed.withLock { $0 }?() }
        }
        if first { checkWaiters() }
    }

    /// When to look a name up again: soon after failures (1 s doubling to 30 s), else the pools' interval or the TTL
    /// within the configured bounds (never under 250 ms).
    private func nextLookup(_ e: Entry, ttl: UInt32?) -> TimeAmount {
        if e.failures > 0 { return .seconds(Int64(min(30, 1 << min(e.failures - 1, 5)))) }
        if let interval = e.want.intervalMs { return .milliseconds(Int64(interval)) }
        let seconds = min(max(Int(ttl ?? UInt32(settings.maxTTLSeconds)), settings.minTTLSeconds), settings.maxTTLSeconds)
        return .milliseconds(Int64(max(250, seconds * 1000)))
    }
}
