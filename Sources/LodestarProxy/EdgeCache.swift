import Foundation
import LodestarCache
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Counters of an edge's shared cache, updated from every event loop.
public final class CacheStats: Sendable {
    /// Answered from a fresh stored response (or one the request's `max-stale` accepts).
    public let hits = Atomic<Int>(0)
    /// Went to the origin with nothing usable stored.
    public let misses = Atomic<Int>(0)
    /// Answered from a stale stored response (stale-while-revalidate, stale-if-error, grace).
    public let stale = Atomic<Int>(0)
    /// Answered from a stored response the origin confirmed with a 304.
    public let revalidated = Atomic<Int>(0)
    /// Requests on a caching route the cache could not take part in (unsafe method, Range, a body).
    public let bypass = Atomic<Int>(0)
    /// Misses that waited for another request's origin response instead of making their own.
    public let coalesced = Atomic<Int>(0)
    /// Responses stored.
    public let stores = Atomic<Int>(0)
    /// Storable responses passed through because they were larger than `maxObjectBytes`.
    public let tooLarge = Atomic<Int>(0)
    /// Background refreshes started (stale-while-revalidate).
    public let refreshes = Atomic<Int>(0)
    /// Entries removed by unsafe requests (RFC 9111 §4.4) and by the purge API.
    public let invalidations = Atomic<Int>(0)
    /// Body bytes sent from the cache.
    public let bytesServed = Atomic<Int>(0)

    /// Hits (fresh, stale and revalidated) over hits plus misses; 0 before any request.
    public var hitRatio: Double {
        let served = hits.load(ordering: .relaxed) + stale.load(ordering: .relaxed) + revalidated.load(ordering: .relaxed)
        let total = served + misses.load(ordering: .relaxed)
        return total == 0 ? 0 : Double(served) / Double(total)
    }
}

/// How an origin fetch that other requests waited for ended.
enum FillOutcome: Sendable {
    /// A response was stored: look it up again.
    case stored
    /// Nothing was stored: go to the origin yourself.
    case notStored
}

/// One leader's claim on an origin fetch for a cache key; released exactly once (explicitly or when dropped).
final class FillClaim: Sendable {
    let cache: EdgeCache
    let key: String
    private let released = Atomic<Bool>(false)

    init(cache: EdgeCache, key: String) {
        self.cache = cache
        self.key = key
    }

    /// Wakes the waiters; later calls do nothing.
    func release(_ outcome: FillOutcome) {
        guard released.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        cache.endFill(key: key, outcome: outcome)
    }

    deinit { release(.notStored) }
}

/// The disk tier: the store and the threads its blocking file IO runs on (stopped when the tier goes).
final class DiskTier: Sendable {
    let store: DiskStore
    let io: NIOThreadPool

    init(store: DiskStore) {
        self.store = store
        io = NIOThreadPool(numberOfThreads: 2)
        io.start()
    }

    deinit { io.shutdownGracefully { _ in } }
}

/// The edge's shared HTTP cache (RFC 9111): a byte-bounded memory tier, an optional disk tier read and written on a
/// thread pool, request coalescing (one origin fetch per key at a time) and counters.
public final class EdgeCache: Sendable {
    /// The settings it was built from (a reload with different settings builds a new cache).
    public let settings: CacheSettings
    /// The memory tier.
    public let memory: MemoryStore
    /// The disk tier and its IO threads, when configured (shared with the cache a reload replaces).
    let diskTier: DiskTier?
    /// The disk tier's store.
    public var disk: DiskStore? { diskTier?.store }
    /// Runs disk reads and writes off the event loops.
    var io: NIOThreadPool? { diskTier?.io }
    /// Counters.
    public let stats = CacheStats()
    private let fills = Mutex<[String: [@Sendable (FillOutcome) -> Void]]>([:])
    private let logger: Logger

    /// Creates the tiers; the disk tier lives in `diskPath/<edgeId>`. A running cache's disk tier in the same directory
    /// (`reuse`) is taken over, since one directory has one owner. Throws when the directory cannot be used.
    init(settings: CacheSettings, edgeId: String, logger: Logger, reuse: EdgeCache? = nil) throws {
        self.settings = settings
        self.logger = logger
        memory = MemoryStore(capacityBytes: settings.memoryBytes, maxObjectBytes: settings.maxObjectBytes)
        if let path = settings.diskPath {
            let dir = (path as NSString).appendingPathComponent(edgeId)
            if let old = reuse?.diskTier, old.store.directory == dir {
                if reuse?.settings.diskBytes != settings.diskBytes {
                    logger.warning("reload: a new disk cache size takes effect on restart", metadata: ["path": "\(dir)"])
                }
                diskTier = old
            } else {
                diskTier = DiskTier(store: try DiskStore(directory: dir, capacityBytes: settings.diskBytes,
                                                         maxObjectBytes: settings.maxObjectBytes))
            }
        } else {
            diskTier = nil
        }
    }

    /// The primary cache key: the host (lower case, no port) and the request target in origin-form.
    static func key(host: String, uri: String) -> String { host + uri }

    /// The key for a URL given to the purge API (`http://host[:port]/path?q` or `host/path`); nil when it has no path.
    package static func key(url: String) -> String? {
        var rest = Substring(url)
        if let (length, _) = HTTPText.httpScheme(url) { rest = rest.dropFirst(length) }
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let host = Admission.hostWithoutPort(String(rest[..<slash]))
        guard !host.isEmpty else { return nil }
        return host + rest[slash...]
    }

    // MARK: Coalescing

    /// Becomes the one fetching `key` (returns a claim), or, when another request already is, registers `waiter`
    /// (called once, on the leader's thread, when that fetch ends) and returns nil.
    func claimOrWait(key: String, waiter: @escaping @Sendable (FillOutcome) -> Void) -> FillClaim? {
        let leader = fills.withLock { table -> Bool in
            if table[key] != nil {
                table[key]?.append(waiter)
                return false
            }
            table[key] = []
            return true
        }
        if leader { return FillClaim(cache: self, key: key) }
        stats.coalesced.add(1, ordering: .relaxed)
        return nil
    }

    /// Claims `key` only when nobody is fetching it (a background refresh never waits).
    func claimIfIdle(key: String) -> FillClaim? {
        let leader = fills.withLock { table -> Bool in
            if table[key] != nil { return false }
            table[key] = []
            return true
        }
        return leader ? FillClaim(cache: self, key: key) : nil
    }

    fileprivate func endFill(key: String, outcome: FillOutcome) {
        let waiters = fills.withLock { $0.removeValue(forKey: key) } ?? []
        for w in waiters { w(outcome) }
    }

    // MARK: Tiers

    /// The memory tier's variant for the request; nil on a miss (the disk tier is asked separately, off-loop).
    func lookupMemory(key: String, requestHeaders: HTTPFields) -> CachedResponse? {
        memory.lookup(key: key, requestHeaders: requestHeaders)
    }

    /// Reads the disk tier on the thread pool; a hit is copied into the memory tier. Completes on `loop`.
    func lookupDisk(key: String, requestHeaders: HTTPFields, on loop: any EventLoop) -> EventLoopFuture<CachedResponse?>? {
        guard let disk, let io else { return nil }
        let memory = self.memory
        return io.runIfActive(eventLoop: loop) {
            guard let found = disk.lookup(key: key, requestHeaders: requestHeaders) else { return nil }
            memory.store(key: key, response: found)
            return found
        }
    }

    /// Stores a response in memory, and on disk in the background.
    @discardableResult
    func store(key: String, response: CachedResponse) -> Bool {
        var inMemory = response
        // Large bodies also go into a memory file, so hits can leave by sendfile (charged twice to the bound, so
        // only when twice the body still fits an object).
        if response.attachment == nil, response.bodyBytes >= BodyFile.threshold, response.body.count == 1,
           response.cost + response.bodyBytes <= settings.maxObjectBytes,
           let first = response.body.first, let file = BodyFile(first) {
            inMemory.attachment = file
            inMemory.attachmentBytes = file.length
        }
        let ok = memory.store(key: key, response: inMemory)
        if let disk, let io {
            io.submit { state in
                if case .active = state { disk.store(key: key, response: response) }
            }
        }
        if ok { stats.stores.add(1, ordering: .relaxed) }
        return ok
    }

    /// Removes every variant of `key` from both tiers; returns how many were removed from memory (and disk).
    @discardableResult
    package func purge(key: String) -> Int {
        var n = memory.purge(key: key)
        if let disk { n += disk.purge(key: key) }
        stats.invalidations.add(n, ordering: .relaxed)
        return n
    }

    /// Removes every entry whose key starts with `prefix` from both tiers.
    @discardableResult
    package func purge(prefix: String) -> Int {
        var n = memory.purge(prefix: prefix)
        if let disk { n += disk.purge(prefix: prefix) }
        stats.invalidations.add(n, ordering: .relaxed)
        return n
    }

    /// The cache part of the admin `/status` JSON.
    func statusJSON() -> String {
        let m = memory.stats
        var out = "{\"hitRatio\":\(String(format: "%.4f", stats.hitRatio))"
        let counters: [(String, Int)] = [
            ("hits", stats.hits.load(ordering: .relaxed)), ("misses", stats.misses.load(ordering: .relaxed)),
            ("stale", stats.stale.load(ordering: .relaxed)), ("revalidated", stats.revalidated.load(ordering: .relaxed)),
            ("bypass", stats.bypass.load(ordering: .relaxed)), ("coalesced", stats.coalesced.load(ordering: .relaxed)),
            ("stores", stats.stores.load(ordering: .relaxed)), ("tooLarge", stats.tooLarge.load(ordering: .relaxed)),
            ("refreshes", stats.refreshes.load(ordering: .relaxed)), ("invalidations", stats.invalidations.load(ordering: .relaxed)),
            ("bytesServed", stats.bytesServed.load(ordering: .relaxed)),
        ]
        for (name, value) in counters { out += ",\"\(name)\":\(value)" }
        out += ",\"memory\":{\"entries\":\(m.entries),\"bytes\":\(m.bytes),\"capacityBytes\":\(m.capacityBytes),"
            + "\"evictions\":\(m.evictions)}"
        if let d = disk?.stats {
            out += ",\"disk\":{\"entries\":\(d.entries),\"bytes\":\(d.bytes),\"capacityBytes\":\(d.capacityBytes),"
                + "\"evictions\":\(d.evictions),\"corruptDropped\":\(d.corruptDropped)}"
        }
        return out + "}"
    }
}
