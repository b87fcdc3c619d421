import LodestarEdge
import LodestarTopology
import XCTest

/// Load-balancing policies: smooth weighted round robin, consistent hash ring, least connections, key hash.
final class BalancerTests: XCTestCase {
    // MARK: smooth weighted round robin

    func picks(_ wrr: inout SmoothWeightedRoundRobin, _ count: Int, available: (Int) -> Bool = { _ in true }) -> [Int] {
        (0..<count).compactMap { _ in wrr.next(isAvailable: available) }
    }

    func test_wrrIsNginxSequence() {
        var wrr = SmoothWeightedRoundRobin(weights: [5, 1, 1])
        XCTAssertEqual(picks(&wrr, 7), [0, 0, 1, 0, 2, 0, 0], "a a b a c a a")
        XCTAssertEqual(picks(&wrr, 7), [0, 0, 1, 0, 2, 0, 0], "and again")
    }

    func test_wrrExactProportionsAndSmoothness() {
        let weights = [1, 2, 3]
        var wrr = SmoothWeightedRoundRobin(weights: weights)
        let sequence = picks(&wrr, 600)
        XCTAssertEqual((0..<3).map { s in sequence.filter { $0 == s }.count }, [100, 200, 300])
        // Smooth: in every window, no server is more than one pick ahead of its exact share.
        let total = weights.reduce(0, +)
        for window in 1...12 {
            for start in 0...(sequence.count - window) {
                let slice = sequence[start..<start + window]
                for s in 0..<3 {
                    let bound = (weights[s] * window + total - 1) / total + 1
                    XCTAssertLessThanOrEqual(slice.filter { $0 == s }.count, bound, "server \(s), window \(window) at \(start)")
                }
            }
        }
        // The heaviest server never runs three times in a row with these weights.
        XCTAssertFalse(zip(sequence, zip(sequence.dropFirst(), sequence.dropFirst(2))).contains { $0 == 2 && $1.0 == 2 && $1.1 == 2 })
    }

    func test_wrrSkipsUnavailableServers() {
        var wrr = SmoothWeightedRoundRobin(weights: [1, 1, 1])
        let sequence = picks(&wrr, 10) { $0 != 1 }
        XCTAssertFalse(sequence.contains(1))
        XCTAssertEqual(sequence.filter { $0 == 0 }.count, 5)
        XCTAssertNil(wrr.next { _ in false })
        XCTAssertEqual(picks(&wrr, 300).filter { $0 == 1 }.count, 100, "back in rotation at its share")
        var empty = SmoothWeightedRoundRobin(weights: [])
        XCTAssertNil(empty.next { _ in true })
    }

    func test_wrrProportionsHoldWhileAvailabilityFlaps() {
        var wrr = SmoothWeightedRoundRobin(weights: [1, 3])
        var counts = [0, 0]
        for i in 0..<4000 {
            // Server 1 is out for every tenth request; it neither gains nor loses credit meanwhile.
            if let s = wrr.next(isAvailable: { $0 == 0 || i % 10 != 0 }) { counts[s] += 1 }
        }
        XCTAssertEqual(Double(counts[1]) / 4000, 0.9 * 0.75, accuracy: 0.01, "its share of the requests it was up for")
    }

    // MARK: hash ring

    func keys(_ count: Int, seed: UInt64 = 99) -> [UInt64] {
        var rng = FastRandom(seed: seed)
        return (0..<count).map { _ in KeyHash.hash("/objects/\(rng.next())") }
    }

    func test_ringSpreadsEqualServersEvenly() {
        let ring = HashRing(weights: [1, 1, 1])
        var counts = [0, 0, 0]
        for key in keys(30_000) { counts[ring.lookup(key) { _ in true } ?? -1] += 1 }
        for c in counts { XCTAssert((0.25...0.42).contains(Double(c) / 30_000), "\(counts)") }
    }

    func test_ringRemovingAServerMovesOnlyItsKeys() {
        let ring = HashRing(weights: [1, 1, 1])
        let sample = keys(30_000, seed: 5)
        let before = sample.map { ring.lookup($0) { _ in true } }
        let after = sample.map { ring.lookup($0) { $0 != 1 } }
        var moved = 0
        for (b, a) in zip(before, after) {
            if b == 1 {
                XCTAssertNotEqual(a, 1)
                XCTAssertNotNil(a)
                moved += 1
            } else {
                XCTAssertEqual(a, b, "keys of other servers keep their server")
            }
        }
        XCTAssertGreaterThan(moved, 7_000)
        // Server 1's keys spread over both survivors, not all onto one.
        let receivers = Set(zip(before, after).filter { $0.0 == 1 }.map(\.1))
        XCTAssertEqual(receivers, [0, 2])
    }

    func test_ringWeightsScaleTheShare() {
        let ring = HashRing(weights: [1, 3])
        var counts = [0, 0]
        for key in keys(30_000, seed: 11) { counts[ring.lookup(key) { _ in true } ?? -1] += 1 }
        XCTAssertEqual(Double(counts[0]) / 30_000, 0.25, accuracy: 0.06, "\(counts)")
        XCTAssertEqual(Double(counts[1]) / 30_000, 0.75, accuracy: 0.06, "\(counts)")
    }

    func test_ringIsDeterministicAndHandlesEdgeCases() {
        let a = HashRing(weights: [2, 1, 1, 3]), b = HashRing(weights: [2, 1, 1, 3])
        for key in keys(1000) { XCTAssertEqual(a.lookup(key) { _ in true }, b.lookup(key) { _ in true }) }
        XCTAssertNil(a.lookup(12345) { _ in false })
        XCTAssertNil(HashRing(weights: []).lookup(1) { _ in true })
        XCTAssertEqual(HashRing(weights: [1]).lookup(UInt64.max) { _ in true }, 0, "past the last point wraps around")
        XCTAssertEqual(HashRing(weights: [1, 1]).lookup(0) { $0 == 1 }, 1)
    }

    func test_ringWithManyServersStopsAtTheFirstAvailable() {
        let ring = HashRing(weights: Array(repeating: 1, count: 100), pointsPerWeight: 40)
        for key in keys(500) {
            XCTAssertEqual(ring.lookup(key) { $0 == 77 }, 77)
            XCTAssertNil(ring.lookup(key) { _ in false })
        }
    }

    func test_ringReducesWeightsByTheirCommonDivisor() {
        let big = HashRing(weights: [1000, 3000]), small = HashRing(weights: [1, 3])
        for key in keys(2000) { XCTAssertEqual(big.lookup(key) { _ in true }, small.lookup(key) { _ in true }) }
    }

    func test_ringCapsHugeConfigurations() {
        // Coprime weights: 8 × ~1000 × 1000 points would be 8M; the ring is scaled to maxPoints, shares kept.
        let weights = [1000, 999, 1000, 999, 1000, 999, 1000, 999]
        let ring = HashRing(weights: weights, pointsPerWeight: 1000)
        var counts = [Int](repeating: 0, count: 8)
        for key in keys(8000) { counts[ring.lookup(key) { _ in true } ?? 0] += 1 }
        for c in counts { XCTAssert((700...1300).contains(c), "\(counts)") }
    }

    // MARK: least connections

    func test_leastConnectionsPicksFewestInFlight() {
        let load = [5, 2, 7]
        XCTAssertEqual(LeastConnections.pick(weights: [1, 1, 1], inFlight: { load[$0] }, isAvailable: { _ in true }, start: 0), 1)
        XCTAssertEqual(LeastConnections.pick(weights: [1, 1, 1], inFlight: { load[$0] }, isAvailable: { $0 != 1 }, start: 0), 0)
        XCTAssertNil(LeastConnections.pick(weights: [1, 1, 1], inFlight: { load[$0] }, isAvailable: { _ in false }, start: 0))
        XCTAssertNil(LeastConnections.pick(weights: [], inFlight: { _ in 0 }, isAvailable: { _ in true }, start: 0))
    }

    func test_leastConnectionsIsRelativeToWeight() {
        // 1/1 = 1 against 3/4 = 0.75: the heavier, busier server wins.
        let load = [1, 3]
        XCTAssertEqual(LeastConnections.pick(weights: [1, 4], inFlight: { load[$0] }, isAvailable: { _ in true }, start: 0), 1)
        // 2/1 = 2 against 8/4 = 2: a tie, so the scan start decides.
        let tied = [2, 8]
        XCTAssertEqual(LeastConnections.pick(weights: [1, 4], inFlight: { tied[$0] }, isAvailable: { _ in true }, start: 0), 0)
        XCTAssertEqual(LeastConnections.pick(weights: [1, 4], inFlight: { tied[$0] }, isAvailable: { _ in true }, start: 1), 1)
        // Huge counts do not overflow the cross-multiplication.
        let huge = [Int.max, Int.max - 1]
        XCTAssertEqual(LeastConnections.pick(weights: [1000, 1000], inFlight: { huge[$0] }, isAvailable: { _ in true }, start: 0), 1)
    }

    func test_leastConnectionsTiesRotateWithStart() {
        let picks = (0..<6).map { LeastConnections.pick(weights: [1, 1, 1], inFlight: { _ in 0 }, isAvailable: { _ in true }, start: $0) }
        XCTAssertEqual(picks, [0, 1, 2, 0, 1, 2])
        XCTAssertEqual(LeastConnections.pick(weights: [1, 1, 1], inFlight: { _ in 0 }, isAvailable: { _ in true }, start: -1), 2)
        XCTAssertEqual(LeastConnections.pick(weights: [1, 1, 1], inFlight: { _ in 0 }, isAvailable: { _ in true }, start: Int.min), 1)
    }

    func test_leastConnectionsFillsServersByWeight() {
        let weights = [1, 2, 3]
        var inFlight = [0, 0, 0]
        for start in 0..<600 {
            let s = LeastConnections.pick(weights: weights, inFlight: { inFlight[$0] }, isAvailable: { _ in true }, start: start)
            inFlight[s ?? 0] += 1
        }
        XCTAssertEqual(inFlight, [100, 200, 300])
    }

    // MARK: key hash

    func test_keyHashIsStableAndMixed() {
        // Pinned values: the hash must not change between runs or releases (ring placement depends on it).
        XCTAssertEqual(KeyHash.hash(""), KeyHash.hash([UInt8]()))
        XCTAssertEqual(KeyHash.hash("/index.html"), KeyHash.hash(Array("/index.html".utf8)))
        XCTAssertEqual(KeyHash.hash("a"), 0x02C0_BDBF_4814_20F8, "FNV-1a 0xaf63dc4c8601ec8c, then splitmix64")
        XCTAssertNotEqual(KeyHash.hash("a"), KeyHash.hash("b"))
        var acc = KeyHash.Accumulator()
        acc.appendDecimal(12)
        acc.append(UInt8(ascii: "-"))
        acc.appendDecimal(0)
        XCTAssertEqual(acc.finish(), KeyHash.hash("12-0"))
        var negative = KeyHash.Accumulator()
        negative.appendDecimal(Int.min)
        XCTAssertEqual(negative.finish(), KeyHash.hash("\(Int.min)"))
        // Avalanche: one flipped input bit flips about half the output bits.
        var flipped = 0
        for i in 0..<1000 { flipped += (KeyHash.hash("key\(i)") ^ KeyHash.hash("key\(i)!")).nonzeroBitCount }
        XCTAssertEqual(Double(flipped) / 1000, 32, accuracy: 2)
    }
}
