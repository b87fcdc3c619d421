/// Address ranges that tile one address space, each with a 32-bit value: the sorted range starts, their values, and
/// an index over the top 16 bits, so a lookup is one short binary search inside one bucket. Built by appending ranges
/// in address order; adjacent ranges with the same value merge.
public struct RangeTable<Key: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    private(set) var starts: [Key] = []
    private(set) var values: [UInt32] = []
    /// For each value of the top 16 bits, the range holding the first address with those bits (65,537 entries).
    private var index: [UInt32] = []

    public init() {}

    /// Number of ranges.
    public var count: Int { starts.count }

    /// Bytes held by the table.
    public var byteCount: Int { starts.capacity * MemoryLayout<Key>.stride + values.capacity * 4 + index.capacity * 4 }

    /// Appends the range starting at `start` (above every start so far) with `value`; merged into the last range when
    /// the values are equal. The first range must start at 0.
    public mutating func append(start: Key, value: UInt32) {
        if let last = values.last, last == value { return }
        starts.append(start)
        values.append(value)
    }

    /// Builds the bucket index; call once after the last `append`.
    public mutating func finish() {
        // Exact capacity: the tables live as long as the configuration.
        starts = starts.withUnsafeBufferPointer { Array($0) }
        values = values.withUnsafeBufferPointer { Array($0) }
        let shift = Key.bitWidth - 16
        var out = [UInt32](repeating: 0, count: 65_537)
        var j = 0
        for bucket in 0..<65_536 {
            let first = Key(truncatingIfNeeded: bucket) << shift
            while j + 1 < starts.count, starts[j + 1] <= first { j += 1 }
            out[bucket] = UInt32(j)
        }
        out[65_536] = UInt32(max(0, starts.count - 1))
        index = out
    }

    /// The range holding `key`: its position, value, first and last address.
    public func find(_ key: Key) -> (position: Int, value: UInt32, first: Key, last: Key)? {
        guard !starts.isEmpty, index.count == 65_537 else { return nil }
        let bucket = Int(truncatingIfNeeded: key >> (Key.bitWidth - 16))
        var lo = Int(index[bucket]), hi = Int(index[bucket + 1])
        // The last range whose start is at or below `key`.
        while lo < hi {
            let mid = (lo + hi + 1) >> 1
            if starts[mid] <= key { lo = mid } else { hi = mid - 1 }
        }
        let last = lo + 1 < starts.count ? starts[lo + 1] - 1 : Key.max
        return (lo, values[lo], starts[lo], last)
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
    public var ranges: Zip2Sequence<[Key], [UInt32]> { zip(starts, values) }
}

extension RangeTable {
    /// A copy with every value passed through `transform` (adjacent ranges that become equal merge).
    public func mapped(_ transform: (UInt32) -> UInt32) -> RangeTable {
        var out = RangeTable()
        for (start, value) in zip(starts, values) { out.append(start: start, value: transform(value)) }
        out.finish()
        return out
    }

    /// A copy where `first...last` has `value` (painted over what was there).
    public func painting(first: Key, last: Key, value: UInt32) -> RangeTable {
        var out = RangeTable()
        var inserted = false
        for (i, start) in starts.enumerated() {
            let end = i + 1 < starts.count ? starts[i + 1] - 1 : Key.max
            if end < first || start > last {
                out.append(start: start, value: values[i])
                continue
            }
            if start < first { out.append(start: start, value: values[i]) }
            if !inserted {
                out.append(start: first, value: value)
                inserted = true
            }
            if end > last { out.append(start: last + 1, value: values[i]) }
        }
        out.finish()
        return out
    }
}
