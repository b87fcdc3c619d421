import LodestarGossip
import XCTest

/// The operator drain table the DNS nodes gossip: last writer wins per target, undrains travel as tombstones, and
/// the wire form round-trips and stays within the metadata limit.
final class OperatorDrainsTests: XCTestCase {
    func test_lastWriterWinsWhicheverOrderTheTablesMeet() {
        var a = OperatorDrains(), b = OperatorDrains()
        a.set("edge:eu", active: true, reason: "kernel upgrade", now: 1_000, by: "dns-1")
        b.set("edge:eu", active: false, reason: "", now: 2_000, by: "dns-2")  // a later undrain on the other node
        b.set("region:ap", active: true, reason: "fibre cut", now: 1_500, by: "dns-2")
        var ab = a, ba = b
        XCTAssertTrue(ab.merge(b))
        ba.merge(a)
        XCTAssertEqual(ab, ba, "merging is commutative")
        XCTAssertEqual(ab.active.keys.sorted(), ["region:ap"], "the undrain (later) wins; the region drain is kept")
        XCTAssertFalse(ab.merge(a), "merging again changes nothing")
    }

    func test_aDecisionHereAlwaysBeatsTheOneItReplacesEvenWithASlowClock() {
        var t = OperatorDrains()
        t.set("edge:eu", active: true, reason: "x", now: 5_000, by: "dns-2")
        t.set("edge:eu", active: false, reason: "", now: 4_000, by: "dns-1")  // this node's clock is behind
        XCTAssertTrue(t.active.isEmpty)
        XCTAssertEqual(t.entries["edge:eu"]?.stamp, 5_001)
    }

    func test_tiesAreBrokenTheSameWayEverywhere() {
        var a = OperatorDrains(), b = OperatorDrains()
        a.set("edge:eu", active: true, reason: "a", now: 7, by: "dns-1")
        b.set("edge:eu", active: false, reason: "", now: 7, by: "dns-2")
        var ab = a, ba = b
        ab.merge(b)
        ba.merge(a)
        XCTAssertEqual(ab, ba)
        XCTAssertEqual(ab.entries["edge:eu"]?.setBy, "dns-2")
    }

    func test_tombstonesAreForgottenAfterTheirTime() {
        var t = OperatorDrains()
        t.set("edge:eu", active: false, reason: "", now: 1_000, by: "dns-1")
        t.set("edge:us", active: true, reason: "y", now: 1_000, by: "dns-1")
        t.forgetUndrains(olderThan: 600_000, now: 500_000)
        XCTAssertEqual(t.entries.count, 2)
        t.forgetUndrains(olderThan: 600_000, now: 700_000)
        XCTAssertEqual(t.entries.keys.sorted(), ["edge:us"], "an active drain is never forgotten")
    }

    func test_wireFormRoundTripsAndFitsTheMetadataLimit() {
        var t = OperatorDrains()
        t.set("edge:eu", active: true, reason: "kernel upgrade — ü", now: 1_764_900_000_000, by: "dns-local-1")
        t.set("region:ap", active: false, reason: "", now: 1_764_900_000_001, by: "dns-2")
        XCTAssertEqual(OperatorDrains(decoding: t.encoded()), t)
        XCTAssertNil(OperatorDrains(decoding: [1, 0, 0, 0]), "an edge's EdgeState is not a drain table")
        XCTAssertNil(OperatorDrains(decoding: Array(t.encoded().dropLast())), "cut short")
        var many = OperatorDrains()
        for i in 0..<200 {
            many.set("edge:edge-\(i)-" + String(repeating: "x", count: 40), active: i % 3 != 0, reason: String(repeating: "r", count: 100),
                     now: UInt64(i), by: "dns-node-" + String(repeating: "n", count: 30))
        }
        let bytes = many.encoded()
        XCTAssertLessThanOrEqual(bytes.count, OperatorDrains.maxBytes)
        let back = OperatorDrains(decoding: bytes)
        XCTAssertNotNil(back)
        XCTAssertTrue(back?.entries.values.allSatisfy(\.active) ?? false, "active drains go first; tombstones are left out")
        XCTAssertEqual(many.entries.values.first?.reason.utf8.count, OperatorDrains.maxReasonBytes, "reasons are capped")
    }
}
