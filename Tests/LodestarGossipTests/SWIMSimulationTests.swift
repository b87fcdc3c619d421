import Foundation
import LodestarGossip
import XCTest

/// Cluster behaviour in the deterministic simulator (issue 5 acceptance: 50 members, 0/10/30 % loss, a crash).
final class SWIMSimulationTests: XCTestCase {
    func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Runs `seeds` crash experiments at `loss` and formats one table row.
    func crashRow(loss: Double, seeds: [UInt64], settings: SWIMSettings, label: String)
        -> (row: String, runs: [SWIMSimulation.CrashRun]) {
        let runs = seeds.map { SWIMSimulation.runCrash(loss: loss, seed: $0, settings: settings) }
        let suspects = runs.compactMap(\.firstSuspect)
        let deads = runs.compactMap(\.allDead)
        let sum = { (key: KeyPath<SWIMSimulation.CrashRun, Int>) in runs.map { $0[keyPath: key] }.reduce(0, +) }
        let rate = runs.map(\.messagesPerMemberPerSecond).reduce(0, +) / Double(runs.count)
        let row = String(format: "%@ %3.0f%% | %5.2f / %5.2f | %5.2f / %5.2f (%d/%d) | %4d / %5d | %4d / %5d | %4.1f",
                         label, loss * 100, median(suspects), suspects.max() ?? .nan,
                         median(deads), deads.max() ?? .nan, deads.count, runs.count,
                         sum(\.falseSuspicionIncidents), sum(\.falseSuspicionViews),
                         sum(\.falseDeathIncidents), sum(\.falseDeathViews), rate)
        return (row, runs)
    }

    /// Issue 5 acceptance: crash detection with 50 members, 500 ms period, 0/10/30 % loss, 5 seeds each.
    func test_crashIsDetectedWithin3sMedian_50Members_SWIM_5() {
        let settings = SWIMSettings()
        let seeds: [UInt64] = [1, 2, 3, 4, 5]
        var table = [
            "SWIM crash of 1 of 50 members; probe 500 ms, ping timeout 150 ms, k=3, latency 1-20 ms, \(seeds.count) seeds/row; times in s after the crash",
            "cfg   loss | first suspect med / max | all live say dead med / max (runs) | false suspect incidents / views | false death incidents / views | msgs/member/s",
        ]
        for loss in [0.0, 0.1, 0.3] {
            let (row, runs) = crashRow(loss: loss, seeds: seeds, settings: settings, label: "2-10s")
            table.append(row)
            let suspects = runs.compactMap(\.firstSuspect)
            XCTAssertEqual(suspects.count, runs.count, "every crash is suspected at \(loss) loss")
            XCTAssertLessThanOrEqual(median(suspects), 3.0, "median time to first suspicion at \(loss) loss")
            guard loss <= 0.1 else { continue }
            // Dead everywhere within: first suspicion + the maximum suspicion timeout (scaled by log10 n: 1.7 at 50
            // members) + 2 s of dissemination.
            let bound = settings.suspicionTimeoutMax.seconds * log10(50.0) + 2
            for run in runs {
                guard let first = run.firstSuspect, let dead = run.allDead else {
                    XCTFail("every live member reaches dead at \(loss) loss"); continue
                }
                XCTAssertLessThanOrEqual(dead - first, bound, "dead everywhere within the suspicion bound at \(loss) loss")
            }
            XCTAssertEqual(runs.map(\.falseDeathViews).reduce(0, +), 0, "no live member declared dead at \(loss) loss")
        }
        // The same 30 % case with memberlist-like longer suspicion (3…20 s) and a 10 s full sync, for comparison.
        var conservative = settings
        conservative.suspicionTimeoutMin = .seconds(3)
        conservative.suspicionTimeoutMax = .seconds(20)
        conservative.fullSyncInterval = .seconds(10)
        table.append(crashRow(loss: 0.3, seeds: seeds, settings: conservative, label: "3-20s").row)
        // What `lodestar` runs with (GossipCluster.swimSettings), at its default 300 ms period and at 500 ms.
        for period: Int64 in [300, 500] {
            for loss in [0.0, 0.1, 0.3] {
                let (row, runs) = crashRow(loss: loss, seeds: seeds, settings: RuntimeTimingTests.runtime(period: period),
                                           label: "rt\(period)")
                table.append(row)
                XCTAssertLessThanOrEqual(median(runs.compactMap(\.firstSuspect)), 3.0, "runtime \(period) ms at \(loss) loss")
                if loss <= 0.1 { XCTAssertEqual(runs.map(\.falseDeathViews).reduce(0, +), 0, "runtime \(period) ms at \(loss) loss") }
            }
        }
        print(table.joined(separator: "\n"))
    }

    /// The failover target (2 s) in the clusters the tests and the quick start run: 4 to 7 members at the runtime's
    /// 300 ms period. Over 200 crashes each, every live member marks the victim dead within 2 s in at least 98.5 % of
    /// runs, half of them within 1.3 s (the tail comes from the round-robin: a victim probed last by every member is
    /// first suspected after a second or more). Verdicts told at once and heard suspicions checked early
    /// (`verdictFanout`, `hurryProbe`) took the 4-member p99 from 2.28 s to 1.69 s.
    func test_smallClusterCrashIsDeadEverywhereWithin2sAt300ms() {
        for n in [4, 5, 7] {
            let runs = (UInt64(1)...200).map {
                SWIMSimulation.runCrash(nodeCount: n, loss: 0, seed: $0, settings: RuntimeTimingTests.runtime(period: 300))
            }
            let dead = runs.map { $0.allDead ?? .infinity }.sorted()
            let suspected = runs.map { $0.firstSuspect ?? .infinity }.sorted()
            let within = dead.filter { $0 <= 2.0 }.count
            print(String(format: "SWIM-FAILOVER %d members, 300 ms: dead everywhere median %.2f s, p90 %.2f s, p99 %.2f s, max %.2f s; %d/200 within 2 s; first suspicion median %.2f s, max %.2f s",
                         n, dead[100], dead[180], dead[198], dead[199], within, suspected[100], suspected[199]))
            XCTAssertGreaterThanOrEqual(within, 197, "\(n) members: crashes dead everywhere within 2 s")
            XCTAssertLessThanOrEqual(dead[100], 1.3, "\(n) members: median time to dead everywhere")
            XCTAssertEqual(runs.map(\.falseDeathViews).reduce(0, +), 0, "\(n) members: no false death without loss")
        }
    }

    /// The same small clusters with the gossip itself crossing regions: one-way delays of 65–155 ms (round trips of
    /// 130–310 ms, as between Ashburn, Frankfurt and Singapore), at the runtime's 300 ms period. The configured direct
    /// timeout (90 ms) is below every round trip; with one fixed timeout every probe was answered late, the local
    /// health multiplier rose to about 2.4 and the 4-member median was 4.05 s (max 5.86 s). Timeouts from each
    /// member's round trip (SWIMInstance+RoundTrip.swift) keep the multiplier at 1: median 3.02 s, max 5.24 s. The
    /// 2 s target holds where members are near each other (the namespace and container regions delay the clients'
    /// traffic, not the gossip). What must hold here: every crash dead everywhere within 6 s, no live member dead, and
    /// no rise of the multiplier.
    func test_crashAcrossRegionLatencyIsDetectedWithoutFalseDeaths() {
        for n in [4, 7] {
            let runs = (UInt64(1)...40).map {
                SWIMSimulation.runCrash(nodeCount: n, loss: 0, seed: $0, settings: RuntimeTimingTests.runtime(period: 300),
                                        window: 30, latencyMillis: 65...155)
            }
            let dead = runs.map { $0.allDead ?? .infinity }.sorted()
            let multiplier = runs.map(\.meanHealthMultiplier).reduce(0, +) / Double(runs.count)
            print(String(format: "SWIM-FAILOVER-WAN %d members, 300 ms, one-way 65-155 ms: dead everywhere median %.2f s, max %.2f s; local health multiplier %.1f",
                         n, dead[20], dead[39], multiplier))
            XCTAssertLessThanOrEqual(dead[39], 6.0, "\(n) members across regions: every crash dead everywhere within 6 s")
            XCTAssertLessThan(multiplier, 1.2, "\(n) members across regions: probes answered in time")
            XCTAssertEqual(runs.map(\.falseDeathViews).reduce(0, +), 0, "\(n) members across regions: no false death")
        }
    }

    /// Issue 5 acceptance: 10 simulated minutes at 10 % loss, no crash: zero false deaths (3 seeds).
    func test_noFalseDeathsIn10MinutesAt10PercentLoss_Lifeguard() {
        let minutes = 10.0
        for seed: UInt64 in [2026, 7, 14] {
            var configuration = SWIMSimulation.Configuration()
            configuration.lossRate = 0.1
            configuration.seed = seed
            let sim = SWIMSimulation(configuration)
            var suspicionViews = 0
            var suspicionIncidents = Set<SWIMGossipKey>()
            var deaths = 0
            sim.onObservation = { observation in
                if observation.change.current == .suspect {
                    suspicionViews += 1
                    suspicionIncidents.insert(SWIMGossipKey(node: observation.change.node, incarnation: observation.change.incarnation))
                }
                if observation.change.current == .dead { deaths += 1 }
            }
            sim.run(until: .seconds(minutes * 60))
            let rate = Double(sim.messagesSent) / 50 / (minutes * 60)
            let maxLHM = sim.nodes.map(\.localHealthMultiplier).max() ?? 0
            print(String(format: "SWIM 10 simulated min, 50 members, 10%% loss, no crash, seed %llu: false suspicion incidents %d (views %d), false deaths %d, msgs/member/s %.1f, max LHM at end %d",
                         seed, suspicionIncidents.count, suspicionViews, deaths, rate, maxLHM))
            XCTAssertEqual(deaths, 0, "seed \(seed)")
            XCTAssertTrue(sim.nodes.allSatisfy { node in node.members.allSatisfy { $0.status.isLive } }, "seed \(seed)")
        }
    }

    /// SWIM §3.1: when the direct path A↔B drops everything, the indirect probe through k others keeps B from being suspected.
    func test_indirectProbeSuccessPreventsSuspicionWhenDirectPathDrops_SWIM_3_1() {
        var configuration = SWIMSimulation.Configuration()
        configuration.nodeCount = 6
        configuration.seed = 7
        let sim = SWIMSimulation(configuration)
        var pingRequests = 0
        sim.dropRule = { from, to, message in
            if case .pingRequest = message.kind, from == 0 { pingRequests += 1 }
            return (from == 0 && to == 1) || (from == 1 && to == 0)
        }
        var suspicions: [SWIMStatusChange] = []
        sim.onObservation = { if $0.change.current != .alive { suspicions.append($0.change) } }
        sim.run(until: .seconds(30))
        XCTAssertGreaterThan(pingRequests, 0, "node 0 had to use indirect probes")
        XCTAssertEqual(suspicions, [])
    }

    /// A member joins at run time through one contact; later another leaves; everyone converges, nobody is declared dead.
    func test_memberJoinsAndLeavesAtRunTime() {
        var configuration = SWIMSimulation.Configuration()
        configuration.nodeCount = 10
        configuration.seed = 11
        // Node 9 is not in anybody's seed list and knows nobody.
        configuration.seedsFor = { i, ids in i == 9 ? [] : Array(ids.prefix(9)) }
        let sim = SWIMSimulation(configuration)
        var deaths = 0
        sim.onObservation = { if $0.change.current == .dead { deaths += 1 } }
        sim.run(until: .seconds(2))
        let newcomer = sim.ids[9]
        sim.perform(9) { node, now, rng in node.join(contacts: [sim.ids[0]], now: now, rng: &rng) }
        sim.run(until: .seconds(8))
        for i in 0..<9 {
            XCTAssertEqual(sim.nodes[i].member(newcomer)?.status, .alive, "node \(i) learnt the newcomer")
        }
        XCTAssertEqual(sim.nodes[9].members.filter { $0.status == .alive }.count, 9, "newcomer learnt everyone")

        let leaver = sim.ids[3]
        sim.perform(3) { node, now, rng in node.leave(now: now, rng: &rng) }
        sim.run(until: .seconds(14))
        for i in 0..<10 where i != 3 {
            XCTAssertEqual(sim.nodes[i].member(leaver)?.status, .left, "node \(i) saw the leave")
        }
        XCTAssertEqual(deaths, 0)
    }

    /// The simulator itself is deterministic: same seed, same figures.
    func test_simulationIsDeterministicForASeed() {
        let first = SWIMSimulation.runCrash(nodeCount: 12, loss: 0.1, seed: 99)
        let second = SWIMSimulation.runCrash(nodeCount: 12, loss: 0.1, seed: 99)
        XCTAssertEqual(first.firstSuspect, second.firstSuspect)
        XCTAssertEqual(first.allDead, second.allDead)
        XCTAssertEqual(first.falseSuspicionViews, second.falseSuspicionViews)
    }
}
