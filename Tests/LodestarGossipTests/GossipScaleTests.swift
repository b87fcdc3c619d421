import Foundation
import XCTest

@testable import LodestarGossip

/// Gossip at a thousand members and more (issue 19 §3), in the deterministic simulator with the timings `lodestar`
/// runs with: a crash's first suspicion and "every live member says dead", false deaths, and message rates, per size
/// and loss. Long: it runs only when LODESTAR_GOSSIP_SCALE is set (Benchmarks/gossip-scale.sh sets it, in release).
final class GossipScaleTests: XCTestCase {
    func test_scaleTable() throws {
        guard let spec = ProcessInfo.processInfo.environment["LODESTAR_GOSSIP_SCALE"] else {
            throw XCTSkip("set LODESTAR_GOSSIP_SCALE (e.g. \"1000,5000\") or run Benchmarks/gossip-scale.sh")
        }
        let sizes = spec.split(separator: ",").compactMap { Int($0) }
        let losses = (ProcessInfo.processInfo.environment["LODESTAR_GOSSIP_LOSSES"] ?? "0,0.1,0.3").split(separator: ",").compactMap { Double($0) }
        let seeds = (ProcessInfo.processInfo.environment["LODESTAR_GOSSIP_SEEDS"] ?? "1").split(separator: ",").compactMap { UInt64($0) }
        let window = Int(ProcessInfo.processInfo.environment["LODESTAR_GOSSIP_WINDOW"] ?? "") ?? 60
        let settings = RuntimeTimingTests.runtime(period: 300)
        print("GOSSIP-SCALE members | loss | seeds | first suspect s p50/p99 | all dead s p50/p99 | false suspicions | false deaths "
              + "| msgs/member/s | bytes/member/s | payload to 3 DNS nodes s p50/p99 | wall s")
        for n in sizes {
            for loss in losses {
                let start = Date()
                let runs = seeds.map { SWIMSimulation.runCrash(nodeCount: n, loss: loss, seed: $0, settings: settings, reports: true,
                                                              window: window) }
                let propagation = runs.flatMap(\.propagation)
                let arrived = propagation.compactMap { $0 }
                let missing = propagation.count - arrived.count
                print(String(format: "GOSSIP-SCALE %5d | %3.0f%% | %d | %@ | %@ | %d | %d | %.1f | %.0f | %@%@ | %.1f", n, loss * 100,
                             runs.count, Self.quantiles(runs.map(\.firstSuspect)), Self.quantiles(runs.map(\.allDead)),
                             runs.map(\.falseSuspicionIncidents).reduce(0, +), runs.map(\.falseDeathIncidents).reduce(0, +),
                             runs.map(\.messagesPerMemberPerSecond).reduce(0, +) / Double(runs.count),
                             runs.map(\.bytesPerMemberPerSecond).reduce(0, +) / Double(runs.count),
                             Self.quantiles(arrived), missing > 0 ? " (\(missing) of \(propagation.count) never)" : "",
                             Date().timeIntervalSince(start)))
                print(String(format: "GOSSIP-SCALE   mean local health multiplier at the crash %.2f",
                             runs.map(\.meanHealthMultiplier).reduce(0, +) / Double(runs.count)))
            }
        }
    }

    /// "p50 / p99" of the values (nearest rank); a nil (never happened within the run) counts as worst.
    static func quantiles(_ values: [Double?]) -> String {
        guard !values.isEmpty else { return "-" }
        let sorted = values.map { $0 ?? .infinity }.sorted()
        func rank(_ q: Double) -> String {
            let v = sorted[Swift.min(sorted.count - 1, Int((q * Double(sorted.count)).rounded(.up)) - 1)]
            return v.isFinite ? String(format: "%.2f", v) : "never"
        }
        return "\(rank(0.5)) / \(rank(0.99))"
    }
}
