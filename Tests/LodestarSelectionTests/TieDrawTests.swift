import LodestarGeo
import LodestarSelection
import LodestarTopology
import XCTest

/// Edges tied at the same distance (one region) are ordered by a weighted draw without replacement: the compiled
/// engine's walk (its own bounded draw, `ClassWalk.draw(below:)`) and the reference `EdgeSelector` both give each edge
/// its weight's share of first places, and a want of every edge gets each exactly once.
final class TieDrawTests: XCTestCase {
    typealias Helpers = AnswerEngineTests

    /// `base` with one service over three edges of weights 1, 2 and 5 in region r0.
    static func weighted(_ base: Topology, answerCount: Int) -> Topology {
        let edges = [(1, "w1"), (2, "w2"), (5, "w5")].enumerated().map { i, e in
            Edge(id: e.1, region: "r0", addresses: [.v4(0x0C00_0000 + UInt32(i))], weight: e.0)
        }
        let s = base.services[0]
        let service = Service(name: s.name, fqdn: s.fqdn, edges: edges.map(\.id), answerCount: answerCount,
                              ttlSeconds: s.ttlSeconds, fallbackRegion: nil, overrides: [], failClosed: false)
        return Topology(zone: base.zone, regions: base.regions, edges: base.edges + edges, services: [service], dns: base.dns)
    }

    /// `count` random IPv4 clients that `db` locates.
    static func locatedClients(_ db: GeoDatabase, _ rng: inout Helpers.Seeded, count: Int) -> [IPAddress] {
        var found = [IPAddress]()
        while found.count < count {
            let client = Helpers.randomClient(&rng)
            if client.isIPv4, db.lookup(client).location != nil { found.append(client) }
        }
        return found
    }

    func test_tiedEdgesAreDrawnByWeight() throws {
        var rng = Helpers.Seeded(state: 0x71E_D7A3)
        let db = try Helpers.randomDatabase(&rng)
        let topology = Self.weighted(Helpers.randomTopology(&rng, regionCount: 3), answerCount: 1)
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        let selector = EdgeSelector(topology: topology)
        let service = topology.services[0]
        let health = Helpers.FixedHealth(states: [:])
        let draws = 16_000
        var compiled = [String: Int](), reference = [String: Int]()
        var fast = FastRandom(seed: 42), slow = FastRandom(seed: 43)
        // Located IPv4 clients only: an unlocated one gets the fallback order (configuration order, no draw).
        let clients = Self.locatedClients(db, &rng, count: 32)
        for n in 0..<draws {
            let client = clients[n % clients.count]
            let a = try XCTUnwrap(engine.select(service: service, client: client, family: .v4, health: health, random: &fast))
            XCTAssertFalse(a.deterministic)
            compiled[a.chosen[0].id, default: 0] += 1
            let r = selector.select(service: service, client: client, geo: db.lookup(client), family: .v4, health: health,
                                    random: &slow)
            reference[r.chosen[0].id, default: 0] += 1
        }
        for (name, counts) in [("engine", compiled), ("reference", reference)] {
            let total = Double(counts.values.reduce(0, +))
            XCTAssertEqual(total, Double(draws), name)
            // Binomial standard deviations at these counts are under 0.8 percentage points: 3 points is a wide margin.
            XCTAssertEqual(Double(counts["w1"] ?? 0) / total, 1.0 / 8, accuracy: 0.03, "\(name): \(counts)")
            XCTAssertEqual(Double(counts["w2"] ?? 0) / total, 2.0 / 8, accuracy: 0.03, "\(name): \(counts)")
            XCTAssertEqual(Double(counts["w5"] ?? 0) / total, 5.0 / 8, accuracy: 0.03, "\(name): \(counts)")
        }
    }

    func test_aWantOfEveryTiedEdgeGetsEachOnce() throws {
        var rng = Helpers.Seeded(state: 0x0E_AC40)
        let db = try Helpers.randomDatabase(&rng)
        let topology = Self.weighted(Helpers.randomTopology(&rng, regionCount: 3), answerCount: 3)
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        let health = Helpers.FixedHealth(states: [:])
        var random = FastRandom(seed: 7)
        var firsts = Set<String>()
        let client = Self.locatedClients(db, &rng, count: 1)[0]
        for _ in 0..<200 {
            let a = try XCTUnwrap(engine.select(service: topology.services[0], client: client, family: .v4,
                                                health: health, random: &random))
            XCTAssertEqual(Set(a.chosen.map(\.id)), ["w1", "w2", "w5"])
            XCTAssertEqual(a.chosen.count, 3)
            firsts.insert(a.chosen[0].id)
        }
        XCTAssertEqual(firsts.count, 3, "every edge comes first sometimes")
    }
}
