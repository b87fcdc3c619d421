import Foundation
import LodestarGeo
import LodestarSelection
import LodestarTopology
import XCTest

/// The compiled answer engine against its oracle, the reference path (`EdgeSelector` over a live GeoIP lookup): on a
/// random database (IPv4 and IPv6 networks, shared locations, unlocated networks), random topologies with overrides
/// and a fallback region, random health, and random clients, the engine gives the reference's answer, and every
/// address inside the scope it returns gets that same answer.
final class AnswerEngineTests: XCTestCase {
    /// A database file in the temp folder.
    static func temporaryFile(_ bytes: [UInt8], name: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    struct FixedHealth: HealthView {
        var states: [String: EdgeHealth]
        func health(ofEdge id: String) -> EdgeHealth { states[id] ?? .healthy }
        var generation: UInt64 { 0 }
    }

    /// A seeded generator (SplitMix64), so a failure can be replayed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Random networks that do not overlap: /16s in 10 first octets (whole, or cut into /20s with their own
    /// records), and IPv6 /32s under 2001::/16 (whole, or cut into /40s); locations drawn from a small set so that
    /// neighbours often share one.
    static func randomDatabase(_ rng: inout Seeded) throws -> GeoDatabase {
        let points = (0..<25).map { i in
            (Double.random(in: -60...70, using: &rng), Double.random(in: -180...180, using: &rng), ["DE", "US", "JP", "BR", "ZA"][i % 5])
        }
        var records = [GeoRecord]()
        func add(_ text: String) {
            guard let prefix = IPPrefix(text), Int.random(in: 0..<10, using: &rng) > 0 else { return }  // some stay empty
            let p = points[Int.random(in: 0..<points.count, using: &rng)]
            records.append(GeoRecord(prefix: prefix, latitude: p.0, longitude: p.1, country: p.2, continent: "EU"))
        }
        for first in [1, 23, 45, 77, 89, 100, 130, 151, 180, 203] {
            for second in Set((0..<40).map { _ in Int.random(in: 0..<256, using: &rng) }) {
                if Bool.random(using: &rng) {
                    add("\(first).\(second).0.0/16")
                } else {
                    for sub in 0..<16 where Bool.random(using: &rng) { add("\(first).\(second).\(sub * 16).0/20") }
                }
            }
        }
        for block in Set((0..<60).map { _ in Int.random(in: 0..<0x1000, using: &rng) }) {
            let hex = String(block, radix: 16)
            if Bool.random(using: &rng) {
                add("2001:\(hex)::/32")
            } else {
                for sub in 0..<8 where Bool.random(using: &rng) { add("2001:\(hex):\(String(sub * 32, radix: 16))00::/40") }
            }
        }
        let bytes = try MMDBWriter.build(records: records, description: "engine property test", buildEpoch: 1)
        return try GeoDatabase(path: try Self.temporaryFile(bytes, name: "engine-\(UUID().uuidString).mmdb"))
    }

    static func randomTopology(_ rng: inout Seeded, regionCount: Int) -> Topology {
        let regions = (0..<regionCount).map { i in
            Region(id: "r\(i)", latitude: Double.random(in: -60...70, using: &rng), longitude: Double.random(in: -180...180, using: &rng),
                   name: "r\(i)")
        }
        // One edge per region (distinct distances: no tie draws), every third without IPv6.
        let edges = regions.enumerated().map { i, r in
            Edge(id: "e\(i)", region: r.id, addresses: i % 3 == 2 ? [.v4(0x0A00_0000 | UInt32(i))] : [.v4(0x0A00_0000 | UInt32(i)), .v6(0x2001_0DB8 << 32, UInt64(i))],
                 weight: 1)
        }
        let overrides = [
            RegionOverride(prefix: IPPrefix("23.0.0.0/9")!, region: "r1"),
            RegionOverride(prefix: IPPrefix("23.64.0.0/12")!, region: "r2"),
            RegionOverride(prefix: IPPrefix("100.\(Int.random(in: 0..<256, using: &rng)).0.0/20")!, region: "r0"),
            RegionOverride(prefix: IPPrefix("2001:\(String(Int.random(in: 0..<0x1000, using: &rng), radix: 16))::/28")!, region: "r3"),
        ]
        let services = [
            Service(name: "www", fqdn: "www.example.test", edges: edges.map(\.id), answerCount: 2, ttlSeconds: 30,
                    fallbackRegion: "r4", overrides: overrides, failClosed: false),
            Service(name: "api", fqdn: "api.example.test", edges: Array(edges.prefix(4).map(\.id)), answerCount: 1, ttlSeconds: 30,
                    fallbackRegion: nil, overrides: [], failClosed: true),
        ]
        let zone = Zone(name: "example.test", soa: SOA(primary: "ns1.example.test", contact: "h.example.test", serial: 1,
                                                       refreshSeconds: 1, retrySeconds: 1, expireSeconds: 1, minimumSeconds: 1,
                                                       ttlSeconds: 1),
                        nameservers: [], records: [])
        return Topology(zone: zone, regions: regions, edges: edges, services: services,
                        dns: DNSSettings(nodeId: "d", listen: [], geoDatabase: "-"))
    }

    static func randomClient(_ rng: inout Seeded) -> IPAddress {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0..<4:
            let first = [1, 23, 45, 77, 89, 100, 130, 151, 180, 203][Int.random(in: 0..<10, using: &rng)]
            return .v4(UInt32(first) << 24 | UInt32.random(in: 0..<(1 << 24), using: &rng))
        case 4..<6: return .v4(UInt32.random(in: 0...UInt32.max, using: &rng))
        case 6: // IPv4-mapped: the tree's alias of its IPv4 subtree
            let first = [1, 23, 45, 77, 89, 100, 130, 151, 180, 203][Int.random(in: 0..<10, using: &rng)]
            return .v6(0, 0xFFFF_0000_0000 | UInt64(first) << 24 | UInt64.random(in: 0..<(1 << 24), using: &rng))
        case 7..<9: return .v6(0x2001_0000_0000_0000 | UInt64.random(in: 0..<(1 << 48), using: &rng), UInt64.random(in: 0...UInt64.max, using: &rng))
        default: return .v6(UInt64.random(in: 0...UInt64.max, using: &rng), UInt64.random(in: 0...UInt64.max, using: &rng))
        }
    }

    /// A random address inside `client`/`length`.
    static func inside(_ client: IPAddress, _ length: Int, _ rng: inout Seeded) -> IPAddress {
        switch client {
        case .v4(let v):
            let host: UInt32 = length >= 32 ? 0 : (length == 0 ? .max : ~UInt32(0) >> length)
            return .v4((v & ~host) | (UInt32.random(in: 0...UInt32.max, using: &rng) & host))
        case .v6(let hi, let lo):
            let mask = length == 0 ? UInt128(0) : ~UInt128(0) << (128 - min(length, 128))
            let a = UInt128(hi) << 64 | UInt128(lo)
            let r = UInt128(UInt64.random(in: 0...UInt64.max, using: &rng)) << 64 | UInt128(UInt64.random(in: 0...UInt64.max, using: &rng))
            let b = (a & mask) | (r & ~mask)
            return .v6(UInt64(truncatingIfNeeded: b >> 64), UInt64(truncatingIfNeeded: b))
        }
    }

    func test_compiledEngineAgreesWithTheReferenceAndItsScopesAreSound() throws {
        var rng = Seeded(state: 0x10DE_57A2)
        var compared = 0, fellBack = 0, scopeChecks = 0, drawn = 0
        for round in 0..<4 {
            let db = try Self.randomDatabase(&rng)
            let topology = Self.randomTopology(&rng, regionCount: round == 3 ? 40 : 6)
            let engine = try AnswerEngine.compile(database: db, topology: topology)
            let selector = EdgeSelector(topology: topology)
            let states: [EdgeHealth] = [.healthy, .healthy, .healthy, .down, .suspect, .overloaded(shed: 1), .overloaded(shed: 0)]
            for _ in 0..<150 {
                let health = FixedHealth(states: Dictionary(uniqueKeysWithValues: topology.edges.map {
                    ($0.id, states[Int.random(in: 0..<states.count, using: &rng)])
                }))
                for service in topology.services {
                    let client = Self.randomClient(&rng)
                    for family in [EdgeSelector.Family.v4, .v6] {
                        var r1 = rng, r2 = rng
                        let reference = selector.select(service: service, client: client, geo: db.lookup(client), family: family,
                                                        health: health, random: &r1)
                        guard let compiled = engine.select(service: service, client: client, family: family, health: health,
                                                           random: &r2) else {
                            fellBack += 1
                            continue
                        }
                        compared += 1
                        let label = "\(service.name) \(client) \(family) \(health.states.sorted { $0.key < $1.key })"
                        XCTAssertEqual(compiled.failedOpen, reference.failedOpen, label)
                        XCTAssertEqual(compiled.chosen.count, reference.chosen.count, label)
                        // Equally near regions are ordered by a weighted draw: such answers are not reused, so only
                        // deterministic ones are compared edge by edge and their scope checked.
                        guard reference.deterministic, compiled.deterministic else { drawn += 1; continue }
                        XCTAssertEqual(compiled.chosen.map(\.id), reference.chosen.map(\.id), label)
                        XCTAssertEqual(compiled.ttlCapSeconds, reference.ttlCapSeconds, label)
                        XCTAssertLessThanOrEqual(compiled.scopePrefixLength, reference.scopePrefixLength,
                                                 "the engine's scope is at least as wide as the GeoIP network: \(label)")
                        for _ in 0..<6 {
                            let neighbour = Self.inside(client, compiled.scopePrefixLength, &rng)
                            var r3 = rng
                            let other = selector.select(service: service, client: neighbour, geo: db.lookup(neighbour), family: family,
                                                        health: health, random: &r3)
                            XCTAssertEqual(other.chosen.map(\.id), reference.chosen.map(\.id),
                                           "\(neighbour) inside \(client)/\(compiled.scopePrefixLength) is answered otherwise: \(label)")
                            scopeChecks += 1
                        }
                    }
                }
            }
            for _ in 0..<200 {
                let client = Self.randomClient(&rng)
                let area = engine.location(of: client), located = db.lookup(client).location
                XCTAssertEqual(area?.country, located?.country, "\(client)")
                XCTAssertEqual(area?.continent, located?.continent, "\(client)")
            }
        }
        print("engine property test: \(compared) answers compared (\(drawn) decided by a draw), \(fellBack) left to the reference, \(scopeChecks) scope checks")
        XCTAssertGreaterThan(compared, 1000)
    }

    /// With many regions a class keeps its nearest groups only; a client whose kept edges are all down is left to
    /// the reference path (nil), which then answers.
    func test_classesAreCutAndTheReferenceTakesOver() throws {
        var rng = Seeded(state: 7)
        let db = try Self.randomDatabase(&rng)
        let topology = Self.randomTopology(&rng, regionCount: 30)
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        guard let www = topology.services.first else { return XCTFail("no service") }
        let client = IPAddress.v4(0x0101_0101)
        var r = rng
        guard let healthy = engine.select(service: www, client: client, family: .v4, health: FixedHealth(states: [:]), random: &r) else {
            return XCTFail("the engine answers when its nearest edges are up")
        }
        XCTAssertEqual(healthy.chosen.count, 2)
        // Everything but the farthest edge down: the kept groups cannot answer.
        let reference = EdgeSelector(topology: topology)
        var all = [String: EdgeHealth]()
        for e in topology.edges { all[e.id] = .down }
        let ranked = reference.select(service: www, client: client, geo: db.lookup(client), family: .v4,
                                      health: FixedHealth(states: [:]), random: &r).ranked
        if let last = ranked.last { all[last.edge.id] = .healthy }
        XCTAssertNil(engine.select(service: www, client: client, family: .v4, health: FixedHealth(states: all), random: &r))
        print("compile: \(engine.stats)")
    }
}
