import NIOCore
import Synchronization

/// One stored response: head, body chunks (the same ByteBuffers the edge relays; ByteBuffer is copy-on-write), times.
public struct CachedResponse: Sendable {
    /// The final status code.
    public var status: Int
    /// The stored response header fields.
    public var headers: HTTPFields
    /// The body, as the chunks it arrived in.
    public var body: [ByteBuffer]
    /// When the request that produced it was sent (epoch seconds).
    public var requestTime: Int64
    /// When the response was received (epoch seconds).
    public var responseTime: Int64
    /// Request header values named by the response's Vary (for secondary-key matching).
    public var varyRequestHeaders: HTTPFields
    /// The policy's view parsed once, set by `MemoryStore` when it stores or updates the entry (nil before).
    public internal(set) var facts: StoredFacts?
    /// Something the storing layer keeps with the entry (the edge: a copy of the body for zero-copy sends).
    public var attachment: (any AnyObject & Sendable)?
    /// Bytes the attachment holds, charged to the store like the body.
    public var attachmentBytes = 0

    /// The fixed bookkeeping overhead charged to every entry, in bytes.
    public static let entryOverhead = 256

    /// Creates a stored response.
    public init(
        status: Int, headers: HTTPFields, body: [ByteBuffer], requestTime: Int64, responseTime: Int64,
        varyRequestHeaders: HTTPFields = []
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.requestTime = requestTime
        self.responseTime = responseTime
        self.varyRequestHeaders = varyRequestHeaders
    }

    /// The body length: the sum of the chunks' readable bytes.
    public var bodyBytes: Int { body.reduce(0) { $0 + $1.readableBytes } }

    /// The bytes charged to the store: body, header lines (name + value + 4 for ": " and CRLF, for both
    /// the response headers and the kept request headers) and `entryOverhead`.
    public var cost: Int {
        bodyBytes + attachmentBytes + Self.fieldBytes(headers) + Self.fieldBytes(varyRequestHeaders) + Self.entryOverhead
    }

    /// The policy view of this response (for `CachePolicy.decide` and friends).
    public var info: StoredResponseInfo {
        StoredResponseInfo(status: status, headers: headers, requestTime: requestTime, responseTime: responseTime)
    }

    /// The serialised size of a field list (name, ": ", value, CRLF per line).
    static func fieldBytes(_ fields: HTTPFields) -> Int {
        fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }
}

/// Counters and gauges of a `MemoryStore`.
public struct MemoryStoreStats: Sendable, Equatable {
    /// Stored variants (across all primary keys).
    public var entries: Int
    /// The sum of the stored entries' costs.
    public var bytes: Int
    /// The configured byte capacity.
    public var capacityBytes: Int
    /// Lookups that found a matching variant.
    public var hits: Int
    /// Lookups that found none.
    public var misses: Int
    /// Successful `store` calls.
    public var stores: Int
    /// Entries removed to make room (LRU), or dropped by `update` for growing past `maxObjectBytes`.
    public var evictions: Int
    /// Entries removed by `purge(key:)` and `purge(prefix:)`.
    public var purges: Int

    /// Creates a stats snapshot.
    public init(
        entries: Int = 0, bytes: Int = 0, capacityBytes: Int = 0, hits: Int = 0, misses: Int = 0,
        stores: Int = 0, evictions: Int = 0, purges: Int = 0
    ) {
        self.entries = entries
        self.bytes = bytes
        self.capacityBytes = capacityBytes
        self.hits = hits
        self.misses = misses
        self.stores = stores
        self.evictions = evictions
        self.purges = purges
    }
}

/// A thread-safe in-memory cache bounded in bytes, LRU eviction, several Vary variants per primary key.
public final class MemoryStore: Sendable {
    /// The largest single entry cost accepted.
    public let maxObjectBytes: Int
    /// The total cost bound.
    public let capacityBytes: Int

    private let state: Mutex<MemoryStoreState>

    /// Creates an empty store holding at most `capacityBytes` of entry cost, each entry at most `maxObjectBytes`.
    public init(capacityBytes: Int, maxObjectBytes: Int) {
        self.capacityBytes = max(0, capacityBytes)
        self.maxObjectBytes = max(0, maxObjectBytes)
        self.state = Mutex(MemoryStoreState(capacity: max(0, capacityBytes)))
    }

    /// The variant of `key` selected by the request's headers (most recent response if several match); refreshes its recency.
    public func lookup(key: String, requestHeaders: HTTPFields) -> CachedResponse? {
        state.withLock { s -> CachedResponse? in
            guard let slot = s.select(key: key, requestHeaders: requestHeaders) else {
                s.misses += 1
                return nil
            }
            s.hits += 1
            s.moveToFront(slot)
            return s.slots[slot]?.response
        }
    }

    /// Stores a response under `key`, replacing the variant with the same secondary key and evicting LRU entries as needed.
    ///
    /// Returns false (nothing changes) when the cost exceeds `maxObjectBytes` or the capacity, or for `Vary: *`.
    @discardableResult
    public func store(key: String, response: CachedResponse) -> Bool {
        let vary = HeaderFields.combined("vary", in: response.headers)
        guard let secondary = VaryKey.secondaryKey(vary: vary, requestHeaders: response.varyRequestHeaders) else {
            return false
        }
        let cost = response.cost
        guard cost <= maxObjectBytes, cost <= capacityBytes else { return false }
        var response = response
        response.facts = StoredFacts(response.info)
        return state.withLock { s -> Bool in
            if let old = s.variant(key: key, secondaryKey: secondary) {
                s.free(old)
            }
            let slot = s.link(
                MemoryStoreEntry(key: key, secondaryKey: secondary, vary: vary, response: response, cost: cost))
            s.stores += 1
            s.evict(keeping: slot)
            return true
        }
    }

    /// Edits the variant selected by the request's headers in place (e.g. a 304 header merge); recomputes its cost.
    ///
    /// Returns false when no variant matches, or when the edited entry can no longer be stored (its cost
    /// exceeds `maxObjectBytes`/capacity or it became `Vary: *`) and was therefore removed. A successful
    /// update refreshes recency and may evict other entries. `body` runs under the store's lock: keep it
    /// short and never call back into the store from it.
    public func update(key: String, requestHeaders: HTTPFields, _ body: (inout CachedResponse) -> Void) -> Bool {
        state.withLock { s -> Bool in
            guard let slot = s.select(key: key, requestHeaders: requestHeaders),
                  var entry = s.slots[slot]
            else { return false }
            s.free(slot)
            body(&entry.response)
            entry.response.facts = StoredFacts(entry.response.info)
            let vary = HeaderFields.combined("vary", in: entry.response.headers)
            let cost = entry.response.cost
            guard let secondary = VaryKey.secondaryKey(vary: vary, requestHeaders: entry.response.varyRequestHeaders),
                  cost <= maxObjectBytes, cost <= s.capacity
            else {
                s.evictions += 1
                return false
            }
            if let clash = s.variant(key: key, secondaryKey: secondary) {
                s.free(clash)
            }
            entry.vary = vary
            entry.secondaryKey = secondary
            entry.cost = cost
            let newSlot = s.link(entry)
            s.evict(keeping: newSlot)
            return true
        }
    }

    /// Removes every variant of a primary key; returns how many were removed.
    @discardableResult
    public func purge(key: String) -> Int {
        state.withLock { s -> Int in
            s.purge(key: key)
        }
    }

    /// Removes every variant of every primary key starting with `prefix`; returns how many were removed.
    @discardableResult
    public func purge(prefix: String) -> Int {
        state.withLock { s -> Int in
            let keys = s.index.keys.filter { $0.hasPrefix(prefix) }
            var removed = 0
            for key in keys { removed += s.purge(key: key) }
            return removed
        }
    }

    /// A consistent snapshot of the counters.
    public var stats: MemoryStoreStats {
        state.withLock { s in
            MemoryStoreStats(
                entries: s.count, bytes: s.bytes, capacityBytes: s.capacity, hits: s.hits, misses: s.misses,
                stores: s.stores, evictions: s.evictions, purges: s.purges)
        }
    }
}

/// One stored variant plus its place in the LRU list.
struct MemoryStoreEntry: SlotLinked, StoredVariant {
    var key: String
    var secondaryKey: String
    /// The response's combined `Vary` value at store time (nil when absent).
    var vary: String?
    var response: CachedResponse
    var cost: Int
    var prev: Int = SlotLRUNone
    var next: Int = SlotLRUNone

    var responseTime: Int64 { response.responseTime }
    var charge: Int { cost }
}

/// The store's state under the lock: its slots, LRU list and key index (`SlotLRU`) and its counters.
struct MemoryStoreState: SlotLRU {
    static let none = SlotLRUNone

    let capacity: Int
    var slots: [MemoryStoreEntry?] = []
    var freeSlots: [Int] = []
    var index: [String: [Int]] = [:]
    var head = MemoryStoreState.none
    var tail = MemoryStoreState.none
    var count = 0
    var bytes = 0
    var hits = 0
    var misses = 0
    var stores = 0
    var evictions = 0
    var purges = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The slot of the variant of `key` with exactly this secondary key.
    func variant(key: String, secondaryKey: String) -> Int? {
        index[key]?.first { slots[$0]?.secondaryKey == secondaryKey }
    }

    /// Evicts from the LRU tail until within capacity, never evicting `keep`.
    mutating func evict(keeping keep: Int) {
        while bytes > capacity, tail != MemoryStoreState.none, tail != keep {
            free(tail)
            evictions += 1
        }
    }

    /// Removes every variant of a key, counting them as purges.
    mutating func purge(key: String) -> Int {
        guard let list = index[key] else { return 0 }
        for slot in list { free(slot) }
        purges += list.count
        return list.count
    }
}
