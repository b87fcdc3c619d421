/// Counts by 64-bit key, for a UDP loop's tally of fast answers (`LocalDNSCounters`): open addressing with linear
/// probing and Fibonacci hashing in one flat array, so counting an answer costs a multiply and, nearly always, one
/// probe — where a `Dictionary` runs SipHash over the key first. Grows at half full; emptied in place.
struct CountTable {
    private struct Slot {
        var key: UInt64
        /// 0: empty (counts are positive).
        var count: Int
    }

    private var slots: [Slot]
    private var shift: UInt64
    /// Distinct keys counted.
    private(set) var count = 0

    /// A table with room for `capacity` keys before it first grows.
    init(capacity: Int = 32) {
        var size = 8
        while size < 2 * capacity { size *= 2 }
        slots = Array(repeating: Slot(key: 0, count: 0), count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// Adds `n` (ignored unless positive) to `key`'s count.
    @inline(__always)
    mutating func add(_ key: UInt64, _ n: Int = 1) {
        guard n > 0 else { return }
        let mask = slots.count - 1
        var i = home(key)
        while slots[i].count != 0 {
            if slots[i].key == key {
                slots[i].count += n
                return
            }
            i = (i + 1) & mask
        }
        slots[i] = Slot(key: key, count: n)
        count += 1
        if count * 2 > slots.count { grow() }
    }

    /// The count of `key` (0 when never counted).
    func value(of key: UInt64) -> Int {
        let mask = slots.count - 1
        var i = home(key)
        while slots[i].count != 0 {
            if slots[i].key == key { return slots[i].count }
            i = (i + 1) & mask
        }
        return 0
    }

    /// Calls `body` with every key counted and its count (in no particular order).
    func forEach(_ body: (UInt64, Int) -> Void) {
        for slot in slots where slot.count != 0 { body(slot.key, slot.count) }
    }

    /// Forgets every count, keeping the room.
    mutating func removeAll() {
        guard count > 0 else { return }
        for i in slots.indices { slots[i].count = 0 }
        count = 0
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(key: 0, count: 0), count: old.count * 2)
        shift -= 1
        count = 0
        for slot in old where slot.count != 0 { add(slot.key, slot.count) }
    }
}
