/// Address ranges that tile one address space, each with a 32-bit value: the ranges as (start, value) pairs sorted by
/// start, in one array so that a probe reads the start and the value from the same cache line, and an index over the
/// top 16 bits, so a lookup is one short binary search inside one bucket. Built by appending ranges in address order;
/// adjacent ranges with the same value merge.
public struct RangeTable<Key: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    /// One range: its first address and its value.
    struct Entry: Sendable {
        var start: Key
        var value: UInt32
    }

    private(set) var entries: [Entry] = []
    /// For each value of the top 16 bits, the range holding the first address with those bits (65,537 entries).
    private var index: [UInt32] = []

    public init() {}

    /// Number of ranges.
    public var count: Int { entries.count }

    /// Bytes held by the table.
    public var byteCount: Int { entries.capacity * MemoryLayout<Entry>.stride + index.capacity * 4 }

    /// Appends the range starting at `start` (above every start so far) with `value`; merged into the last range when
    /// the values are equal. The first range must start at 0.
    public mutating func append(start: Key, value: UInt32) {
        if let last = entries.last, last.value == value { return }
        entries.append(Entry(start: start, value: value))
    }

    /// Builds the bucket index; call once after the last `append`.
    public mutating func finish() {
        // Exact capacity: the tables live as long as the configuration.
        entries = entries.withUnsafeBufferPointer { Array($0) }
        let shift = Key.bitWidth - 16
        var out = [UInt32](repeating: 0, count: 65_537)
        var j = 0
        for bucket in 0..<65_536 {
            let first = Key(truncatingIfNeeded: bucket) << shift
            while j + 1 < entries.count, entries[j + 1].start <= first { j += 1 }
            out[bucket] = UInt32(j)
        }
        out[65_536] = UInt32(max(0, entries.count - 1))
        index = out
    }

    /// The range holding `key`: its position, value, first and last address.
    @inline(__always)
    public func find(_ key: Key) -> (position: Int, value: UInt32, first: Key, last: Key)? {
        index.withUnsafeBufferPointer { index in
            entries.withUnsafeBufferPointer { entries -> (position: Int, value: UInt32, first: Key, last: Key)? in
                guard !entries.isEmpty, index.count == 65_537 else { return nil }
                let bucket = Int(truncatingIfNeeded: key >> (Key.bitWidth - 16))
                var lo = Int(index[bucket]), hi = Int(index[bucket + 1])
                // The index was built from these entries: every position it holds is inside them.
                guard hi < entries.count else { return nil }
                // The last range whose start is at or below `key`.
                while lo < hi {
                    let mid = (lo + hi + 1) >> 1
                    if entries[mid].start <= key { lo = mid } else { hi = mid - 1 }
                }
                let last = lo + 1 < entries.count ? entries[lo + 1].start - 1 : Key.max
                return (lo, entries[lo].value, entries[lo].start, last)
            }
        }
    }

    /// The widest prefix around `key` that lies inside `first...last` (RFC 7871 scope of a merged range).
    @inlinable
    public static func scope(of key: Key, first: Key, last: Key) -> Int {
        var length = 0
        if first > 0 { length = max(length, (key ^ (first - 1)).leadingZeroBitCount + 1) }
        if last < Key.max { length = max(length, (key ^ (last + 1)).leadingZeroBitCount + 1) }
        return min(length, Key.bitWidth)
    }

    /// The ranges as (start, value) pairs (for building derived tables).
    public var ranges: [(Key, UInt32)] { entries.map { ($0.start, $0.value) } }
}

extension RangeTable {
    /// A copy with every value passed through `transform` (adjacent ranges that become equal merge).
    public func mapped(_ transform: (UInt32) -> UInt32) -> RangeTable {
        var out = RangeTable()
        for e in entries { out.append(start: e.start, value: transform(e.value)) }
        out.finish()
        return out
    }

    /// A copy where `first...last` has `value` (painted over what was there).
    public func painting(first: Key, last: Key, value: UInt32) -> RangeTable {
        var out = RangeTable()
        var inserted = false
        for (i, e) in entries.enumerated() {
            let end = i + 1 < entries.count ? entries[i + 1].start - 1 : Key.max
            if end < first || e.start > last {
                out.append(start: e.start, value: e.value)
                continue
            }
            if e.start < first { out.append(start: e.start, value: e.value) }
            if !inserted {
                out.append(start: first, value: value)
                inserted = true
            }
            if end > last { out.append(start: last + 1, value: e.value) }
        }
        out.finish()
        return out
    }
}
