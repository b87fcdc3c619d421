/// An entry kept in a slot array and linked into an LRU list by slot index (`SlotLRUNone` for no neighbour).
protocol SlotLinked {
    var prev: Int { get set }
    var next: Int { get set }
}

/// "No slot" in an LRU list's links.
let SlotLRUNone = -1

/// A store's index under its lock: entries in a slot array (freed slots are reused), a doubly linked LRU list over
/// slot indices (head = most recent), an index from primary key to its variants' slots, and the entry count and bytes
/// charged. The memory and the disk store keep different entries and counters, and the disk store one more index;
/// the list, the accounting and the choice of variant are this one code.
protocol SlotLRU {
    associatedtype Entry: SlotLinked & StoredVariant
    var slots: [Entry?] { get set }
    var freeSlots: [Int] { get set }
    var head: Int { get set }
    var tail: Int { get set }
    var index: [String: [Int]] { get set }
    var count: Int { get set }
    var bytes: Int { get set }
}

/// What choosing among a key's variants reads of each (RFC 9111 §4.1).
protocol StoredVariant {
    var key: String { get }
    var secondaryKey: String { get }
    /// The response's combined `Vary` value at store time (nil when absent).
    var vary: String? { get }
    var responseTime: Int64 { get }
    /// The bytes charged against the store's capacity.
    var charge: Int { get }
}

extension SlotLRU {
    /// Puts `entry` in a free slot (or a new one) at the head of the LRU list and in the key index, and charges it;
    /// returns its slot.
    @discardableResult
    mutating func link(_ entry: Entry) -> Int {
        var entry = entry
        entry.prev = SlotLRUNone
        entry.next = head
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[slot] = entry
        } else {
            slot = slots.count
            slots.append(entry)
        }
        let first = head
        if first != SlotLRUNone { slots[first]?.prev = slot }
        head = slot
        if tail == SlotLRUNone { tail = slot }
        index[entry.key, default: []].append(slot)
        count += 1
        bytes += entry.charge
        return slot
    }

    /// Takes a slot out of the LRU list and the key index, frees it and its charge; returns what it held.
    @discardableResult
    mutating func free(_ slot: Int) -> Entry? {
        guard let entry = slots[slot] else { return nil }
        unlink(slot)
        slots[slot] = nil
        freeSlots.append(slot)
        if var list = index[entry.key] {
            list.removeAll { $0 == slot }
            index[entry.key] = list.isEmpty ? nil : list
        }
        count -= 1
        bytes -= entry.charge
        return entry
    }

    /// Takes a slot out of the LRU list (leaving the entry in place).
    mutating func unlink(_ slot: Int) {
        guard let entry = slots[slot] else { return }
        if entry.prev != SlotLRUNone { slots[entry.prev]?.next = entry.next } else { head = entry.next }
        if entry.next != SlotLRUNone { slots[entry.next]?.prev = entry.prev } else { tail = entry.prev }
        slots[slot]?.prev = SlotLRUNone
        slots[slot]?.next = SlotLRUNone
    }

    /// Marks a slot most recently used.
    mutating func moveToFront(_ slot: Int) {
        guard slot != head, slots[slot] != nil else { return }
        unlink(slot)
        let first = head
        slots[slot]?.next = first
        if first != SlotLRUNone { slots[first]?.prev = slot }
        head = slot
        if tail == SlotLRUNone { tail = slot }
    }

    /// The slot of the variant selected by a request (RFC 9111 §4.1); the latest `responseTime` wins ties.
    func select(key: String, requestHeaders: HTTPFields) -> Int? {
        guard let candidates = index[key] else { return nil }
        var computed: [String?: String?] = [:]
        var best: Int?
        var bestTime = Int64.min
        for slot in candidates {
            guard let entry = slots[slot] else { continue }
            let requestKey: String?
            if let cached = computed[entry.vary] {
                requestKey = cached
            } else {
                requestKey = VaryKey.secondaryKey(vary: entry.vary, requestHeaders: requestHeaders)
                computed[entry.vary] = .some(requestKey)
            }
            if requestKey == entry.secondaryKey, best == nil || entry.responseTime >= bestTime {
                best = slot
                bestTime = entry.responseTime
            }
        }
        return best
    }
}
