import XCTest

@testable import LodestarGossip

/// The timings `lodestar` runs with (GossipCluster.swimSettings for a 500 ms probe period: ping 150 ms, indirect
/// 200 ms, suspicion 1–5 s shrinking with 2 confirmations), checked in the simulator against the false-death
/// target. (Suspicion of 1–1.5 s made 3–10 false deaths per seed here, which is why the ceiling is 10 periods.)
final class RuntimeTimingTests: XCTestCase {
    static var runtime: SWIMSettings {
        var s = SWIMSettings()
        s.probeInterval = .milliseconds(500)
        s.pingTimeout = .milliseconds(150)
        s.indirectPingTimeout = .milliseconds(200)
        s.suspicionTimeoutMin = .milliseconds(1000)
        s.suspicionTimeoutMax = .milliseconds(5000)
        s.suspicionConfirmationsExpected = 2
        return s
    }

    func test_runtimeTimingsMakeNoFalseDeathsIn10MinutesAt10PercentLoss() {
        for seed: UInt64 in [2026, 7, 14] {
            var configuration = SWIMSimulation.Configuration()
            configuration.lossRate = 0.1
            configuration.seed = seed
            configuration.settings = Self.runtime
            let sim = SWIMSimulation(configuration)
            var deaths = 0
            var suspicions = 0
            sim.onObservation = { o in
                if o.change.current == .dead { deaths += 1 }
                if o.change.current == .suspect { suspicions += 1 }
            }
            sim.run(until: .seconds(600))
            print("RUNTIME-TIMINGS seed \(seed): 50 members, 10 % loss, 10 min: false suspicion views \(suspicions), false deaths \(deaths)")
            XCTAssertEqual(deaths, 0, "seed \(seed)")
        }
    }
}
