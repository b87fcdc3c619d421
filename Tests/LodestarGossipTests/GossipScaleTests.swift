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
        let settings = RuntimeTimingTests.runtime(period: 300)
        print("GOSSIP-SCALE members | loss | first suspect s | all dead s | false suspect incidents/views | false death incidents/views | msgs/member/s | wall s")
        for n in sizes {
            for loss in losses {
                for seed in seeds {
                    let start = Date()
                    let run = SWIMSimulation.runCrash(nodeCount: n, loss: loss, seed: seed, settings: settings)
                    print(String(format: "GOSSIP-SCALE %5d | %3.0f%% | %@ | %@ | %d / %d | %d / %d | %.1f | %.1f", n, loss * 100,
                                 run.firstSuspect.map { String(format: "%.2f", $0) } ?? "-",
                                 run.allDead.map { String(format: "%.2f", $0) } ?? "not within 60 s",
                                 run.falseSuspicionIncidents, run.falseSuspicionViews, run.falseDeathIncidents, run.falseDeathViews,
                                 run.messagesPerMemberPerSecond, Date().timeIntervalSince(start)))
                }
            }
        }
    }
}
