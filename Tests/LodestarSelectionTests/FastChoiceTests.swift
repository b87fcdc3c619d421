import LodestarGeo
import LodestarSelection
import LodestarTopology
import XCTest

/// The engine's fast choice (`choose`, with health from a snapshot: the walk-free case of all-single groups, else the
/// walk) against the walk itself (`select`, health read live): the same edges in the same order, the same flags and
/// scope, and the same random draws — the fast case draws nothing, so a generator in the same state gives the walk's
/// draws — on random databases, topologies (single edges per region, edges tied in a region, classes cut short with
/// many regions) and health (down, suspect, shedding all or nothing).
final class FastChoiceTests: XCTestCase {
    typealias Helpers = AnswerEngineTests

    /// `topology` with a second edge in regions r0 and r1 (equal distance: a weighted draw orders each pair).
    static func withTies(_ topology: Topology) -> Topology {
        let extra = [
            Edge(id: "t0", region: "r0", addresses: [.v4(0x0B00_0000), .v6(0x2001_0DB8 << 32, 0xF0)], weight: 2),
            Edge(id: "t1", region: "r1", addresses: [.v4(0x0B00_0001)], weight: 1),
        ]
        let services = topology.services.map { s in
            Service(name: s.name, fqdn: s.fqdn, edges: s.edges + extra.map(\.id), answerCount: s.answerCount,
                    ttlSeconds: s.ttlSeconds, fallbackRegion: s.fallbackRegion, overrides: s.overrides, failClosed: s.failClosed)
        }
        return Topology(zone: topology.zone, regions: topology.regions, edges: topology.edges + extra, services: services,
                        dns: topology.dns)
    }

    func test_fastChoiceEqualsTheWalk() throws {
        var rng = Helpers.Seeded(state: 0xFA57_C401)
        var compared = 0, declined = 0, drawn = 0
        let states: [EdgeHealth] = [.healthy, .healthy, .healthy, .down, .suspect, .overloaded(shed: 1), .overloaded(shed: 0)]
        for round in 0..<3 {
            let db = try Helpers.randomDatabase(&rng)
            let plain = Helpers.randomTopology(&rng, regionCount: round == 2 ? 40 : 6)
            let topology = round == 1 ? Self.withTies(plain) : plain
            let engine = try AnswerEngine.compile(database: db, topology: topology)
            for _ in 0..<100 {
                let health = Helpers.FixedHealth(states: Dictionary(uniqueKeysWithValues: topology.edges.map {
                    ($0.id, states[Int.random(in: 0..<states.count, using: &rng)])
                }))
                let snapshot = engine.healthSnapshot(of: health)
                for service in topology.services {
                    let slot = try XCTUnwrap(engine.slot(of: service.name))
                    for _ in 0..<8 {
                        let client = Helpers.randomClient(&rng)
                        for family in [EdgeSelector.Family.v4, .v6] {
                            var r1 = rng, r2 = rng
                            var picks: [UInt16] = [9, 9, 9]  // left over from a previous answer: must be replaced
                            let fast = engine.choose(slot: slot, client: client, family: family, want: service.answerCount,
                                                     failClosed: service.failClosed, health: snapshot, random: &r1, into: &picks)
                            let walk = engine.select(service: service, client: client, family: family, health: health, random: &r2)
                            let label = "\(service.name) \(client) \(family) \(health.states.sorted { $0.key < $1.key })"
                            XCTAssertEqual(fast == nil, walk == nil, label)
                            guard let fast, let walk else {
                                declined += 1
                                continue
                            }
                            compared += 1
                            if !walk.deterministic { drawn += 1 }
                            XCTAssertEqual(picks.map { engine.edge(slot: slot, candidate: $0)?.id ?? "?" }, walk.chosen.map(\.id), label)
                            XCTAssertEqual(fast.deterministic, walk.deterministic, label)
                            XCTAssertEqual(fast.suspect, walk.ttlCapSeconds != nil, label)
                            XCTAssertEqual(fast.failedOpen, walk.failedOpen, label)
                            XCTAssertEqual(fast.scope, walk.scopePrefixLength, label)
                            XCTAssertEqual(r1.state, r2.state, "the same draws: \(label)")
                        }
                    }
                }
            }
        }
        print("fast choice: \(compared) compared (\(drawn) drawn), \(declined) declined by both")
        XCTAssertGreaterThan(compared, 5_000)
        XCTAssertGreaterThan(drawn, 100)
    }
}
