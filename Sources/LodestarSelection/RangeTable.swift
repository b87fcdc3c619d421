/// What `RangeTable.secondHint(for:)` found after the index word (one type for both key widths).
public enum RangeTableHint {
    case none
    case value(UInt32)
    /// The first range entry the search reads, and how many bytes of entries its first probes read from there.
    case entries(UnsafeRawPointer, bytes: Int)
}

/// Memory worth prefetching: `bytes` from `address` (a hint only, never read through).
public struct PrefetchHint {
    public let address: UnsafeRawPointer
    public let bytes: Int

    public init(address: UnsafeRawPointer, bytes: Int) {
        self.address = address
        self.bytes = bytes
    }
}

/// Address ranges that tile one address space, each with a 32-bit value: the ranges as (start, value) pairs sorted by
/// start, in one array so that a probe reads the start and the value from the same cache line, and an index over the
/// top 16 bits. A bucket of the index that one range covers whole holds that range's value and scope itself, so most
/// lookups read one word (on GeoLite2-City about nine queries in ten); the others search from the bucket's first range.
/// Built by appending ranges in address order; adjacent ranges with the same value merge.
public struct RangeTable<Key: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    /// One range: its first address and its value.
    struct Entry: Sendable {
        var start: Key
        var value: UInt32
    }

    private(set) var entries: [Entry] = []
    /// For each value of the top 16 bits (65,536 words): with `wholeBucket` set, one range covers the bucket and the
    /// word holds its value (low 26 bits) and the scope it gives every key of the bucket (5 bits above); else the
    /// position of the range holding the bucket's first address.
    private var index: [UInt32] = []
    static var wholeBucket: UInt32 { 0x8000_0000 }
    /// Values below this fit in a whole bucket's word.
    static var packedValueLimit: UInt32 { 1 << 26 }

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
        var out = [UInt32](repeating: 0, count: 65_536)
        var j = 0
        for bucket in 0..<65_536 {
            let first = Key(truncatingIfNeeded: bucket) << shift
            let last = first | (Key.max >> 16)
            while j + 1 < entries.count, entries[j + 1].start <= first { j += 1 }
            out[bucket] = UInt32(j)
            guard j < entries.count, entries[j].value < Self.packedValueLimit,
                  j + 1 == entries.count || entries[j + 1].start > last else { continue }
            // Every key of the bucket shares its top 16 bits, and the range's neighbours lie outside the bucket, so
            // the first bit where a key and a neighbour differ is among those 16: one scope (at most 16) for all keys.
            let scope = Self.scope(of: first, first: entries[j].start, last: rangeEnd(j))
            out[bucket] = Self.wholeBucket | UInt32(scope) << 26 | entries[j].value
        }
        index = out
    }

    /// The index bucket of `key`: its top 16 bits.
    @inline(__always)
    static func bucket(of key: Key) -> Int { Int(truncatingIfNeeded: key >> (Key.bitWidth - 16)) }

    /// The last address of the range at `position`.
    @inline(__always)
    private func rangeEnd(_ position: Int) -> Key { position + 1 < entries.count ? entries[position + 1].start - 1 : Key.max }

    /// The value of the range holding `key`, and the widest prefix around `key` inside that range (`scope(of:)`).
    @inline(__always)
    public func lookup(_ key: Key) -> (value: UInt32, scope: Int)? {
        index.withUnsafeBufferPointer { index -> (value: UInt32, scope: Int)? in
            guard index.count == 65_536 else { return nil }
            let word = index[Self.bucket(of: key)]
            if word & Self.wholeBucket != 0 { return (word & (Self.packedValueLimit - 1), Int(word >> 26 & 0x1F)) }
            return entries.withUnsafeBufferPointer { entries -> (value: UInt32, scope: Int)? in
                let n = entries.count
                var lo = Int(word)
                // The index was built from these entries: the position is inside them, its range starts at or below
                // every key of the bucket. Gallop to a bound past `key`, then search between.
                guard lo < n else { return nil }
                var step = 1
                while lo + step < n, entries[lo + step].start <= key {
                    lo += step
                    step <<= 1
                }
                var hi = min(lo + step, n) - 1
                while lo < hi {
                    let mid = (lo + hi + 1) >> 1
                    if entries[mid].start <= key { lo = mid } else { hi = mid - 1 }
                }
                let last = lo + 1 < n ? entries[lo + 1].start - 1 : Key.max
                return (entries[lo].value, Self.scope(of: key, first: entries[lo].start, last: last))
            }
        }
    }

    /// What `lookup(key)` reads after the index word, for a second prefetch once that word is in cache: nil when the
    /// word decides alone (a whole bucket: then its value, `.value`) or before `finish`, else the address of the range
    /// entries the search starts from and the span its gallop's first probes read (32 entries, at most five cache
    /// lines: in a crowded bucket, as with a service of many edges, those are otherwise a miss each) (`.entries`, a hint
    /// only, as `indexWordHint`).
    @inline(__always)
    public func secondHint(for key: Key) -> RangeTableHint {
        index.withUnsafeBufferPointer { index -> RangeTableHint in
            guard index.count == 65_536 else { return .none }
            let word = index[Self.bucket(of: key)]
            if word & Self.wholeBucket != 0 { return .value(word & (Self.packedValueLimit - 1)) }
            return entries.withUnsafeBufferPointer { entries in
                guard let base = entries.baseAddress, Int(word) < entries.count else { return .none }
                return .entries(UnsafeRawPointer(base + Int(word)), bytes: min(33 * MemoryLayout<Entry>.stride, 320))
            }
        }
    }

    /// The address of the index word `lookup(key)` reads first, to prefetch it a few queries ahead; nil before
    /// `finish`. A hint only, never to be read through: it stays right while the table lives unchanged (its storage is
    /// not copied or freed meanwhile), and a prefetch of a stale address is harmless.
    @inline(__always)
    public func indexWordHint(for key: Key) -> UnsafeRawPointer? {
        index.withUnsafeBufferPointer { index in
            guard index.count == 65_536, let base = index.baseAddress else { return nil }
            return UnsafeRawPointer(base + Self.bucket(of: key))
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
