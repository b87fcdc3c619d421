import NIOCore

/// One indexed variant (its file holds the response) plus its place in the LRU list.
struct DiskIndexEntry: SlotLinked, StoredVariant {
    var key: String
    var secondaryKey: String
    /// The response's combined `Vary` value (nil when absent).
    var vary: String?
    /// For choosing the newest of several matching variants.
    var responseTime: Int64
    var name: DiskEntryName
    /// The file size, charged against the capacity.
    var size: Int
    /// A store-unique number: lets IO done outside the lock tell whether the entry was replaced meanwhile.
    var generation: UInt64
    var prev: Int = SlotLRUNone
    var next: Int = SlotLRUNone

    var charge: Int { size }
}

/// The disk store's index under the lock (`SlotLRU`), plus one index from file name to slot.
struct DiskIndex: SlotLRU {
    static let none = SlotLRUNone

    let capacity: Int
    var slots: [DiskIndexEntry?] = []
    var freeSlots: [Int] = []
    var index: [String: [Int]] = [:]
    var byName: [DiskEntryName: Int] = [:]
    var head = DiskIndex.none
    var tail = DiskIndex.none
    var count = 0
    var bytes = 0
    var hits = 0
    var misses = 0
    var stores = 0
    var evictions = 0
    var purges = 0
    var corruptDropped = 0
    var writeErrors = 0
    var nextGeneration: UInt64 = 1
    /// Counts purge calls; `store` compares it before and after writing its file.
    var purgeEpoch: UInt64 = 0
    /// The most recent purge calls (epoch after the call, key or prefix), oldest first, at most `purgeLogLimit`.
    var purgeLog: [(epoch: UInt64, pattern: String, isPrefix: Bool)] = []
    static let purgeLogLimit = 64

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Adds an entry at the head of the LRU list (`link`) and to the file-name index; returns its slot.
    mutating func insert(_ entry: DiskIndexEntry) -> Int {
        let slot = link(entry)
        byName[entry.name] = slot
        return slot
    }

    /// Frees a slot (`free`) and its file-name index entry (the file is the caller's business).
    mutating func remove(_ slot: Int) {
        guard let entry = free(slot) else { return }
        if byName[entry.name] == slot { byName[entry.name] = nil }
    }

    /// Evicts from the LRU tail until within capacity, never evicting `keep`; returns the evicted file names.
    mutating func evict(keeping keep: Int) -> [DiskEntryName] {
        var victims: [DiskEntryName] = []
        while bytes > capacity, tail != DiskIndex.none, tail != keep {
            guard let entry = slots[tail] else { break }
            victims.append(entry.name)
            remove(tail)
            evictions += 1
        }
        return victims
    }

    /// Records a purge call (by key or by prefix) in the purge log.
    mutating func logPurge(_ pattern: String, isPrefix: Bool) {
        purgeEpoch &+= 1
        if purgeLog.count == DiskIndex.purgeLogLimit { purgeLog.removeFirst() }
        purgeLog.append((purgeEpoch, pattern, isPrefix))
    }

    /// Whether a purge covering `key` ran after `epoch`; true when the log no longer reaches back that far.
    func purged(key: String, since epoch: UInt64) -> Bool {
        guard purgeEpoch != epoch else { return false }
        guard let oldest = purgeLog.first, oldest.epoch <= epoch &+ 1 else { return true }
        return purgeLog.contains { $0.epoch > epoch && ($0.isPrefix ? key.hasPrefix($0.pattern) : key == $0.pattern) }
    }

    /// Removes every variant of a key, counting them as purges; returns their file names.
    mutating func purge(key: String) -> [DiskEntryName] {
        guard let list = index[key] else { return [] }
        var names: [DiskEntryName] = []
        for slot in list {
            if let entry = slots[slot] { names.append(entry.name) }
            remove(slot)
        }
        purges += names.count
        return names
    }
}
