import LodestarSelection
import XCTest

/// `RangeTable.lookup` against a linear scan of the same ranges: the value of the range holding a key and the widest
/// prefix around the key inside it, for tables mixing buckets one range covers whole (answered from the index word)
/// with crowded buckets (searched), values too large to pack, and keys at range and bucket edges.
final class RangeTableTests: XCTestCase {
    /// Ranges as (start, value), starting at 0, ascending, adjacent values distinct (as `append` keeps them).
    struct Reference<Key: FixedWidthInteger & UnsignedInteger & Sendable> {
        var ranges: [(Key, UInt32)] = []

        func answer(_ key: Key) -> (value: UInt32, scope: Int) {
            var i = 0
            while i + 1 < ranges.count, ranges[i + 1].0 <= key { i += 1 }
            let last = i + 1 < ranges.count ? ranges[i + 1].0 - 1 : Key.max
            return (ranges[i].1, RangeTable<Key>.scope(of: key, first: ranges[i].0, last: last))
        }

        /// Scope from first principles: the largest L such that every key sharing `key`'s first L bits lies in its
        /// range (checked on the prefix's first and last key).
        func widestPrefix(_ key: Key) -> Int {
            let value = answer(key).value
            for length in 0...Key.bitWidth {
                let mask: Key = length == 0 ? 0 : Key.max << (Key.bitWidth - length)
                let low = key & mask, high = key | ~mask
                if answer(low).value == value, answer(high).value == value, sameRange(low, high) { return length }
            }
            return Key.bitWidth
        }

        private func sameRange(_ a: Key, _ b: Key) -> Bool {
            ranges.lastIndex { $0.0 <= a } == ranges.lastIndex { $0.0 <= b }
        }
    }

    typealias Seeded = AnswerEngineTests.Seeded

    /// Random ranges: a few wide ones (whole buckets) and clusters of narrow ones (crowded buckets).
    func build<Key: FixedWidthInteger & UnsignedInteger & Sendable>(_: Key.Type, random: inout Seeded)
        -> (RangeTable<Key>, Reference<Key>, [Key]) {
        var starts = Set<Key>([0])
        for _ in 0..<40 { starts.insert(Key.random(in: 0...Key.max, using: &random)) }
        for _ in 0..<30 {
            let base = Key.random(in: 0...Key.max, using: &random)
            for _ in 0..<Int.random(in: 2...40, using: &random) {
                let offset = Key(truncatingIfNeeded: UInt64.random(in: 0...(1 << 20), using: &random))
                starts.insert(base &+ offset)
            }
        }
        var table = RangeTable<Key>()
        var reference = Reference<Key>()
        var previous: UInt32?
        for start in starts.sorted() {
            // Mostly small class numbers; some too large to pack into an index word.
            var value = Bool.random(using: &random) ? UInt32.random(in: 0..<6, using: &random)
                                                    : UInt32.random(in: (1 << 26)...(UInt32.max - 1), using: &random)
            if value == previous { value = value &+ 1 }
            previous = value
            table.append(start: start, value: value)
            reference.ranges.append((start, value))
        }
        table.finish()
        var keys: [Key] = [0, Key.max]
        for (start, _) in reference.ranges {
            keys += [start, start &- 1, start &+ 1]
            let bucket = start & ~(Key.max >> 16)
            keys += [bucket, bucket | (Key.max >> 16)]
        }
        for _ in 0..<2_000 { keys.append(Key.random(in: 0...Key.max, using: &random)) }
        return (table, reference, keys)
    }

    func check<Key: FixedWidthInteger & UnsignedInteger & Sendable>(_ type: Key.Type, seed: UInt64) {
        var random = Seeded(state: seed)
        let (table, reference, keys) = build(type, random: &random)
        for key in keys {
            guard let got = table.lookup(key) else { return XCTFail("no range for \(key)") }
            let want = reference.answer(key)
            XCTAssertEqual(got.value, want.value, "value of \(key) (seed \(seed))")
            XCTAssertEqual(got.scope, want.scope, "scope of \(key) (seed \(seed))")
            // The second prefetch hint: a whole bucket's value is the key's; else the search's first range, whose
            // start is at or below the key (read here only to check it, with the table alive).
            withExtendedLifetime(table) {
                switch table.secondHint(for: key) {
                case .value(let v): XCTAssertEqual(v, want.value, "whole-bucket hint of \(key) (seed \(seed))")
                case .entries(let p, let bytes):
                    XCTAssertLessThanOrEqual(p.load(as: Key.self), key, "entries hint of \(key)")
                    XCTAssertGreaterThanOrEqual(bytes, 64, "a hint spans the search's first probes")
                case .none: XCTFail("no hint for \(key)")
                }
            }
        }
        // The scope formula itself, on a sample: the widest prefix whose every key lies in the key's range.
        for key in keys.prefix(seed <= 3 ? 60 : 0) where Key.bitWidth == 32 {
            XCTAssertEqual(table.lookup(key)?.scope, reference.widestPrefix(key), "widest prefix of \(key)")
        }
    }

    func test_lookupMatchesLinearScan_IPv4() {
        for seed in 1...20 { check(UInt32.self, seed: UInt64(seed)) }
    }

    func test_lookupMatchesLinearScan_IPv6() {
        for seed in 1...10 { check(UInt128.self, seed: UInt64(seed) * 7919) }
    }

    func test_wholeBucketsAnswerFromTheIndexWithTheirScope() {
        // 10.0.0.0/8 one range, the rest another: every bucket inside the /8 is whole, scope 8.
        var table = RangeTable<UInt32>()
        table.append(start: 0, value: 1)
        table.append(start: 0x0A00_0000, value: 2)
        table.append(start: 0x0B00_0000, value: 1)
        table.finish()
        XCTAssertEqual(table.lookup(0x0A12_3456)?.value, 2)
        XCTAssertEqual(table.lookup(0x0A12_3456)?.scope, 8)
        XCTAssertEqual(table.lookup(0x0AFF_FFFF)?.scope, 8)
        XCTAssertEqual(table.lookup(0x0B00_0000)?.value, 1)
        XCTAssertEqual(table.lookup(0x0B00_0000)?.scope, 8)
        XCTAssertEqual(table.count, 3)
    }

    func test_emptyTableFindsNothing() {
        var table = RangeTable<UInt32>()
        table.finish()
        XCTAssertNil(table.lookup(42))
    }
}
