import Dispatch
import LodestarEdge
import LodestarTopology
import XCTest

/// Active (rise/fall) and passive (ejection) origin health, and in-flight counters.
final class OriginHealthTests: XCTestCase {
    let second: UInt64 = 1_000_000_000
    let ms: UInt64 = 1_000_000

    func pool(_ count: Int, failures: Int = 3, ejectMs: Int = 1000, maxEjectedPercent: Int = 50) -> PoolHealth {
        PoolHealth(serverCount: count, active: HealthCheckSettings(rise: 2, fall: 3),
                   passive: PassiveHealthSettings(failures: failures, ejectMs: ejectMs, maxEjectedPercent: maxEjectedPercent))
    }

    /// Records `count` failed requests; returns the last transition.
    @discardableResult
    func fail(_ health: PoolHealth, _ server: Int, times count: Int, at now: UInt64) -> HealthTransition? {
        var last: HealthTransition?
        for _ in 0..<count { last = health.recordOutcome(server, success: false, now: now) }
        return last
    }

    // MARK: active checks

    func test_serversStartHealthy() {
        let health = pool(3)
        XCTAssertEqual(health.availableCount(now: 0), 3)
        for i in 0..<3 {
            XCTAssertTrue(health.isAvailable(i, now: 0))
            XCTAssertEqual(health.status(i, now: 0), .healthy)
        }
    }

    /// A pool rebuilt with new addresses (a name re-resolved): servers that stay keep their state, new ones start
    /// healthy.
    func test_inheritedStateFollowsTheAddress() {
        let old = pool(2)
        for _ in 0..<3 { _ = old.recordCheck(1, success: false) }
        XCTAssertFalse(old.isAvailable(1, now: 0))
        // New pool: [new server, old server 1, old server 0].
        let rebuilt = PoolHealth(serverCount: 3, active: HealthCheckSettings(rise: 2, fall: 3), passive: PassiveHealthSettings(),
                                 inheriting: (old, [nil, 1, 0]))
        XCTAssertTrue(rebuilt.isAvailable(0, now: 0))
        XCTAssertFalse(rebuilt.isAvailable(1, now: 0), "still down where it went")
        XCTAssertEqual(rebuilt.status(1, now: 0), .down)
        XCTAssertTrue(rebuilt.isAvailable(2, now: 0))
        XCTAssertNil(rebuilt.recordCheck(1, success: true))
        XCTAssertEqual(rebuilt.recordCheck(1, success: true), .becameHealthy(1), "its rise run goes on")
    }

    func test_fallThenRise() {
        let health = pool(2)
        XCTAssertNil(health.recordCheck(0, success: false))
        XCTAssertNil(health.recordCheck(0, success: false))
        XCTAssertTrue(health.isAvailable(0, now: 0))
        XCTAssertEqual(health.recordCheck(0, success: false), .becameDown(0))
        XCTAssertFalse(health.isAvailable(0, now: 0))
        XCTAssertEqual(health.status(0, now: 0), .down)
        XCTAssertEqual(health.availableCount(now: 0), 1)
        XCTAssertNil(health.recordCheck(0, success: false), "already down")
        XCTAssertNil(health.recordCheck(0, success: true))
        XCTAssertFalse(health.isAvailable(0, now: 0))
        XCTAssertEqual(health.recordCheck(0, success: true), .becameHealthy(0))
        XCTAssertTrue(health.isAvailable(0, now: 0))
        XCTAssertEqual(health.status(0, now: 0), .healthy)
    }

    func test_runsMustBeConsecutive() {
        let health = pool(1)
        for _ in 0..<10 {
            XCTAssertNil(health.recordCheck(0, success: false))
            XCTAssertNil(health.recordCheck(0, success: false))
            XCTAssertNil(health.recordCheck(0, success: true), "a success breaks the failure run")
        }
        XCTAssertTrue(health.isAvailable(0, now: 0))
        for _ in 0..<3 { _ = health.recordCheck(0, success: false) }
        for _ in 0..<10 {
            XCTAssertNil(health.recordCheck(0, success: true))
            XCTAssertNil(health.recordCheck(0, success: false), "a failure breaks the success run")
        }
        XCTAssertFalse(health.isAvailable(0, now: 0))
    }

    // MARK: passive ejection

    func test_consecutiveFailuresEjectUntilThePeriodEnds() {
        let health = pool(4)
        let t = 100 * second
        XCTAssertNil(fail(health, 0, times: 2, at: t))
        XCTAssertEqual(health.recordOutcome(0, success: false, now: t), .ejected(0, untilNanos: t + second))
        XCTAssertFalse(health.isAvailable(0, now: t))
        XCTAssertFalse(health.isAvailable(0, now: t + second - 1))
        XCTAssertEqual(health.status(0, now: t + 500 * ms), .ejected)
        XCTAssertEqual(health.availableCount(now: t), 3)
        XCTAssertNil(health.recordOutcome(0, success: false, now: t + 10 * ms), "late failures during an ejection are ignored")
        // Expiry: available again without any call in between.
        XCTAssertTrue(health.isAvailable(0, now: t + second))
        XCTAssertEqual(health.status(0, now: t + second), .healthy)
        XCTAssertEqual(health.availableCount(now: t + second), 4)
        XCTAssertEqual(health.recordOutcome(0, success: true, now: t + second), .restored(0))
        XCTAssertNil(health.recordOutcome(0, success: true, now: t + second))
    }

    func test_successResetsTheFailureRun() {
        let health = pool(4)
        for _ in 0..<10 {
            XCTAssertNil(fail(health, 1, times: 2, at: 0))
            XCTAssertNil(health.recordOutcome(1, success: true, now: 0))
        }
        XCTAssertTrue(health.isAvailable(1, now: 0))
    }

    func test_atMostHalfThePoolIsEjected() {
        let health = pool(4)  // floor(4 × 50 / 100) = 2
        let t: UInt64 = 0
        XCTAssertEqual(fail(health, 0, times: 3, at: t), .ejected(0, untilNanos: t + second))
        XCTAssertEqual(fail(health, 1, times: 3, at: t + 100 * ms), .ejected(1, untilNanos: t + 1100 * ms))
        XCTAssertNil(fail(health, 2, times: 3, at: t + 200 * ms), "a third ejection would exceed half the pool")
        XCTAssertNil(fail(health, 2, times: 5, at: t + 300 * ms))
        XCTAssertTrue(health.isAvailable(2, now: t + 300 * ms))
        XCTAssertEqual(health.availableCount(now: t + 300 * ms), 2)
        // Server 0's ejection ends: the still-running failure count of server 2 ejects it at its next failure.
        XCTAssertEqual(health.recordOutcome(2, success: false, now: t + second),
                       .ejected(2, untilNanos: t + 2 * second))
        XCTAssertEqual(health.availableCount(now: t + second), 2)
    }

    func test_capRoundsDown() {
        let single = pool(1)
        XCTAssertNil(fail(single, 0, times: 50, at: 0), "floor(1 × 50%) = 0: a lone server is never ejected")
        XCTAssertTrue(single.isAvailable(0, now: 0))
        let three = pool(3)  // floor(1.5) = 1
        XCTAssertNotNil(fail(three, 0, times: 3, at: 0))
        XCTAssertNil(fail(three, 1, times: 3, at: 0))
        let all = pool(3, maxEjectedPercent: 100)
        for i in 0..<3 { XCTAssertNotNil(fail(all, i, times: 3, at: 0)) }
        XCTAssertEqual(all.availableCount(now: 0), 0)
    }

    func test_backoffDoublesUpToTenTimes() {
        let health = pool(2, failures: 2, maxEjectedPercent: 100)
        var now: UInt64 = 0
        var periods: [UInt64] = []
        for _ in 0..<7 {
            guard case .ejected(0, let until) = fail(health, 0, times: 2, at: now) else { return XCTFail("not ejected") }
            periods.append((until - now) / ms)
            now = until
        }
        XCTAssertEqual(periods, [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000])
        // A success after the ejection ends starts over at the first period.
        XCTAssertEqual(health.recordOutcome(0, success: true, now: now), .restored(0))
        XCTAssertEqual(fail(health, 0, times: 2, at: now), .ejected(0, untilNanos: now + second))
    }

    func test_failureAfterRestoreCountsAFreshRun() {
        let health = pool(2, failures: 2, maxEjectedPercent: 100)
        XCTAssertEqual(fail(health, 0, times: 2, at: 0), .ejected(0, untilNanos: second))
        XCTAssertEqual(health.recordOutcome(0, success: false, now: second), .restored(0), "one failure is not a run yet")
        XCTAssertEqual(health.recordOutcome(0, success: false, now: second), .ejected(0, untilNanos: 3 * second),
                       "no success in between: the second period")
    }

    func test_zeroFailuresDisablesPassiveEjection() {
        let health = pool(2, failures: 0)
        XCTAssertNil(fail(health, 0, times: 100, at: 0))
        XCTAssertTrue(health.isAvailable(0, now: 0))
    }

    func test_downWinsOverEjectedAndBothRecover() {
        let health = pool(2, maxEjectedPercent: 100)
        XCTAssertNotNil(fail(health, 0, times: 3, at: 0))
        for _ in 0..<3 { _ = health.recordCheck(0, success: false) }
        XCTAssertEqual(health.status(0, now: 0), .down)
        XCTAssertFalse(health.isAvailable(0, now: 10 * second), "down outlasts the ejection")
        _ = health.recordCheck(0, success: true)
        XCTAssertEqual(health.recordCheck(0, success: true), .becameHealthy(0))
        XCTAssertTrue(health.isAvailable(0, now: 10 * second))
        // Healthy again while an ejection still runs: not available until it ends.
        XCTAssertNotNil(fail(health, 1, times: 3, at: 20 * second))
        for _ in 0..<3 { _ = health.recordCheck(1, success: false) }
        _ = health.recordCheck(1, success: true)
        _ = health.recordCheck(1, success: true)
        XCTAssertEqual(health.status(1, now: 20 * second), .ejected)
        XCTAssertFalse(health.isAvailable(1, now: 20 * second))
        XCTAssertTrue(health.isAvailable(1, now: 21 * second))
    }

    func test_restoreExpiredReportsEndedEjections() {
        let health = pool(4)
        _ = fail(health, 0, times: 3, at: 0)
        _ = fail(health, 3, times: 3, at: 500 * ms)
        XCTAssertEqual(health.restoreExpired(now: 999 * ms), [])
        XCTAssertEqual(health.restoreExpired(now: second), [.restored(0)])
        XCTAssertEqual(health.restoreExpired(now: 2 * second), [.restored(3)])
        XCTAssertEqual(health.restoreExpired(now: 3 * second), [])
        XCTAssertNil(health.recordOutcome(0, success: true, now: 3 * second), "already restored")
    }

    func test_indicesOutsideThePoolAreHarmless() {
        let health = pool(2)
        for i in [-1, 2, Int.max, Int.min] {
            XCTAssertFalse(health.isAvailable(i, now: 0))
            XCTAssertEqual(health.status(i, now: 0), .down)
            XCTAssertNil(health.recordCheck(i, success: false))
            XCTAssertNil(health.recordOutcome(i, success: false, now: 0))
            health.begin(i)
            health.end(i)
            XCTAssertEqual(health.inFlight(i), 0)
        }
        let empty = PoolHealth(serverCount: 0, active: nil, passive: PassiveHealthSettings())
        XCTAssertEqual(empty.availableCount(now: 0), 0)
    }

    // MARK: in-flight counters

    func test_inFlightCounts() {
        let health = pool(2)
        health.begin(1)
        health.begin(1)
        XCTAssertEqual(health.inFlight(1), 2)
        XCTAssertEqual(health.inFlight(0), 0)
        health.end(1)
        health.end(1)
        health.end(1)
        XCTAssertEqual(health.inFlight(1), 0, "an unbalanced end does not go negative")
    }

    func test_concurrentBeginEndBalancesToZero() {
        let health = pool(4)
        let peak = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<20_000 {
                let server = (worker + i) % 4
                health.begin(server)
                if i % 1000 == 0 { peak.add(health.inFlight(server) > 0 ? 1 : 0) }
                health.end(server)
            }
        }
        for s in 0..<4 { XCTAssertEqual(health.inFlight(s), 0) }
        XCTAssertEqual(peak.value, 8 * 20, "a counter is positive between begin and end")
    }

    func test_concurrentOutcomesNeverEjectMoreThanTheCap() {
        let health = pool(10, failures: 1, ejectMs: 60_000, maxEjectedPercent: 30)
        let ejections = Counter()
        let now = second
        DispatchQueue.concurrentPerform(iterations: 10) { server in
            for _ in 0..<100 {
                if case .ejected = health.recordOutcome(server, success: false, now: now) { ejections.add(1) }
            }
        }
        XCTAssertEqual(ejections.value, 3)
        XCTAssertEqual(health.availableCount(now: second), 7)
    }
}
