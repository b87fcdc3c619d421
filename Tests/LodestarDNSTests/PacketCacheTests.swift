@testable import LodestarDNSServer
import LodestarDNS
import LodestarTopology
import XCTest

/// The per-loop packet cache keeps storing only while it earns its place: a load where nothing repeats (many ECS
/// subnets) stops the stores, a load that repeats again turns them back on.
final class PacketCacheTests: XCTestCase {
    typealias T = Fixture

    func test_admissionFollowsTheHitShare() throws {
        let authority = try T.authority()
        var cache = PacketCache(capacity: 1024)
        cache.sync(with: authority)
        var rng = FastRandom(seed: 1)
        func ask(_ subnet: String) -> (key: AnswerKey, hit: Bool) {
            let packet = T.query("www.example.test", edns: (1232, 0, [T.ecs(subnet)]))
            let key = authority.answerKey(for: packet, from: .v4(0x7F00_0001), transport: .udp)!
            if cache.lookup(key) != nil { return (key, true) }
            if let r = authority.respond(to: packet, from: .v4(0x7F00_0001), transport: .udp, random: &rng) { cache.store(key, r) }
            return (key, false)
        }
        XCTAssertTrue(cache.admitting)
        // A window where no subnet repeats: admission stops.
        for i in 0..<PacketCache.windowSize { _ = ask("\(1 + i / 65_536 % 200).\(i / 256 % 256).\(i % 256).0/24") }
        XCTAssertFalse(cache.admitting, "nothing repeated: stores stop")
        // Only one miss in `sampleEvery` is stored now.
        let keys = (0..<160).map { ask("203.0.\($0).0/24").key }
        let stored = keys.filter { cache.lookup($0) != nil }.count
        XCTAssertTrue((160 / PacketCache.sampleEvery - 1...160 / PacketCache.sampleEvery).contains(stored),
                      "about one miss in \(PacketCache.sampleEvery) stored: \(stored) of 160")
        // A repetitive window (a few subnets asked again and again) turns admission back on.
        for i in 0..<PacketCache.windowSize { _ = ask("81.2.\(i % 4).0/24") }
        XCTAssertTrue(cache.admitting, "a repeating load is cached again")
        XCTAssertTrue(ask("81.2.1.0/24").hit)
    }
}
