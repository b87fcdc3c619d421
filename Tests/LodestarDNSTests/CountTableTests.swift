@testable import LodestarDNSServer
import XCTest

/// `CountTable` (the UDP loops' tally of fast answers) against a `Dictionary` doing the same counting.
final class CountTableTests: XCTestCase {
    func test_countsEqualADictionaryThroughGrowthAndClearing() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20 {
            var table = CountTable(capacity: 4)
            var oracle: [UInt64: Int] = [:]
            // Few distinct keys in some rounds (many repeats), many in others (several growths); keys of the
            // fast path's shape (slot, edge and location fields) and random ones, 0 and the maximum included.
            let distinct = round % 2 == 0 ? 5 : 3_000
            let keys: [UInt64] = (0..<distinct).map { i in
                switch i % 4 {
                case 0: return UInt64(i % 3) << 48 | UInt64(i % 7) << 32 | UInt64(UInt32.max)
                case 1: return UInt64.random(in: 0...UInt64.max, using: &generator)
                case 2: return UInt64(i)
                default: return i % 8 == 3 ? 0 : UInt64.max - UInt64(i)
                }
            }
            for _ in 0..<10_000 {
                let key = keys[Int.random(in: 0..<keys.count, using: &generator)]
                let n = Int.random(in: -1...64, using: &generator)
                table.add(key, n)
                if n > 0 { oracle[key, default: 0] += n }
            }
            XCTAssertEqual(table.count, oracle.count)
            var seen: [UInt64: Int] = [:]
            table.forEach { key, n in
                XCTAssertNil(seen[key], "key \(key) visited twice")
                seen[key] = n
            }
            XCTAssertEqual(seen, oracle)
            for (key, n) in oracle { XCTAssertEqual(table.value(of: key), n) }
            table.removeAll()
            XCTAssertTrue(table.isEmpty)
            XCTAssertEqual(table.value(of: keys[0]), 0)
            table.add(keys[0], 3)
            XCTAssertEqual(table.value(of: keys[0]), 3)
            XCTAssertEqual(table.count, 1)
        }
    }
}
