import LodestarGossip
import LodestarSelection
import XCTest

/// The one health policy: membership, published state, operator marks and the watermark in; health, state and
/// reasons out.
final class EdgeHealthPolicyTests: XCTestCase {
    let policy = EdgeHealthPolicy(overloadWatermark: 0.9)

    func verdict(_ m: SWIMMemberStatus?, _ s: EdgeState? = nil, marks: [String] = [], gossip: Bool = true,
                 unknown: EdgeHealth = .healthy) -> EdgeHealthPolicy.Verdict {
        policy.verdict(.init(membership: m, published: s, operatorMarks: marks, gossipEnabled: gossip), unknown: unknown)
    }

    func test_membershipDecidesFirst() {
        XCTAssertEqual(verdict(.dead, EdgeState(mode: .serving)).health, .down)
        XCTAssertEqual(verdict(.left).state, "dead")
        XCTAssertEqual(verdict(.left).reasons, ["gossip: member is left"])
        let suspect = verdict(.suspect, EdgeState(mode: .serving))
        XCTAssertEqual(suspect.health, .suspect)
        XCTAssertEqual(suspect.state, "suspect")
        XCTAssertEqual(suspect.reasons, ["gossip: member is suspect", "gossip: suspect (answers with a short TTL)"])
        XCTAssertEqual(verdict(.alive).health, .healthy, "alive with nothing published yet")
    }

    func test_publishedStateDrainingDegradedAndOverload() {
        let draining = verdict(.alive, EdgeState(mode: .draining))
        XCTAssertEqual(draining.health, .down)
        XCTAssertEqual(draining.state, "draining")
        XCTAssertEqual(draining.reasons, ["gossip: the edge reports it is draining"])
        let noOrigin = verdict(.alive, EdgeState(mode: .degraded, healthyOrigins: 0))
        XCTAssertEqual(noOrigin.health, .down)
        XCTAssertEqual(noOrigin.state, "degraded")
        XCTAssertEqual(noOrigin.reasons, ["gossip: the edge reports no healthy origin"])
        // 1,800 rps on a capacity of 1,000: load 1.8 over a 0.9 watermark sheds half.
        let busy = verdict(.alive, EdgeState(mode: .serving, requestsPerSecond: 1800, capacity: 1000))
        XCTAssertEqual(busy.health, .overloaded(shed: 0.5))
        XCTAssertEqual(busy.state, "overloaded")
        XCTAssertEqual(busy.reasons, ["gossip: above the overload watermark, shedding 50 %"])
        let extreme = verdict(.alive, EdgeState(mode: .serving, requestsPerSecond: 1_000_000, capacity: 10))
        XCTAssertEqual(extreme.health, .overloaded(shed: 0.95), "never more than 95 %")
        XCTAssertEqual(EdgeHealthPolicy(overloadWatermark: 0).verdict(.init(membership: .alive,
            published: EdgeState(mode: .serving, requestsPerSecond: 5000, capacity: 10))).health, .healthy, "watermark 0: never sheds")
        XCTAssertEqual(verdict(.alive, EdgeState(mode: .serving, requestsPerSecond: 800, capacity: 1000)).health, .healthy)
    }

    func test_operatorMarksWinAndUnknownEdges() {
        let drained = verdict(.alive, EdgeState(mode: .serving), marks: ["operator: drained (maintenance)"])
        XCTAssertEqual(drained.health, .down)
        XCTAssertEqual(drained.state, "draining")
        XCTAssertEqual(drained.reasons, ["operator: drained (maintenance)"])
        XCTAssertEqual(verdict(.dead, marks: ["--down"]).state, "dead", "a dead edge stays dead")
        let unheard = verdict(nil, unknown: .healthy)
        XCTAssertEqual(unheard.health, .healthy)
        XCTAssertEqual(unheard.state, "unknown")
        XCTAssertEqual(unheard.reasons, ["gossip: not heard from yet (answered while unknown)"])
        XCTAssertEqual(verdict(nil, gossip: false).reasons, [], "without gossip only operators speak")
        XCTAssertEqual(verdict(nil, unknown: .down).health, .down)
    }

    /// The answers' health (`gossipHealth`) and the shown verdict never disagree without operator marks.
    func test_gossipHealthMatchesTheVerdict() {
        let states: [EdgeState?] = [nil, EdgeState(mode: .serving), EdgeState(mode: .draining), EdgeState(mode: .degraded, healthyOrigins: 0),
                                    EdgeState(mode: .serving, requestsPerSecond: 1500, capacity: 1000)]
        for m in [SWIMMemberStatus.alive, .suspect, .dead, .left] {
            for s in states {
                XCTAssertEqual(policy.gossipHealth(membership: m, published: s), verdict(m, s).health, "\(m) \(String(describing: s))")
            }
        }
    }
}
