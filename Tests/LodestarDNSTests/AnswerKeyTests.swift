import LodestarDNS
import LodestarGeo
import LodestarSelection
import LodestarTopology
import XCTest

/// The packet cache's contract: queries with equal `AnswerKey`s get identical responses (ID aside).
final class AnswerKeyTests: XCTestCase {
    func key(_ a: Authority, _ packet: [UInt8], _ client: String = "127.0.0.1") -> AnswerKey? {
        a.answerKey(for: packet, from: IPAddress(client)!, transport: .udp)
    }

    func test_keyIgnoresIDAndCookieButNotCaseOrECS() throws {
        let a = try Fixture.authority()
        let cookie = EDNSOption(code: EDNSOptionCode.cookie, data: [1, 2, 3, 4, 5, 6, 7, 8])
        let base = key(a, Fixture.query("www.example.test", id: 1))
        XCTAssertNotNil(base)
        XCTAssertEqual(base, key(a, Fixture.query("www.example.test", id: 2)))
        XCTAssertEqual(base, key(a, Fixture.query("www.example.test", edns: (1232, 0, [cookie]))), "cookies do not shape the reply")
        XCTAssertNotEqual(base, key(a, Fixture.query("WWW.example.test")), "the question's case is echoed")
        XCTAssertNotEqual(base, key(a, Fixture.query("www.example.test", edns: (1232, 0, [EDNSOption(code: 3, data: [])]))))
        XCTAssertNotEqual(base, key(a, Fixture.query("www.example.test", edns: nil)))
        XCTAssertNotEqual(base, key(a, Fixture.query("www.example.test", edns: (512, 0, []))), "payload size decides truncation")
        XCTAssertNotEqual(base, key(a, Fixture.query("www.example.test"), "127.0.0.2"), "without ECS the source address locates")
    }

    /// A key written into a reused buffer equals one built afresh, and a key kept (as the cache keeps it) is not
    /// changed by the next key written into the same buffer.
    func test_keysWrittenIntoAReusedBufferAreEqualAndKeptOnesStay() throws {
        let a = try Fixture.authority()
        var buffer: [UInt8] = []
        let queries = [Fixture.query("www.example.test"), Fixture.query("mail.example.test", edns: nil),
                       Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])),
                       Fixture.query("example.test", RRType.soa)]
        var kept: [AnswerKey] = []
        for q in queries + queries {
            let reused = q.withUnsafeBytes {
                a.answerKey(for: $0, from: IPAddress("10.1.2.3")!, transport: .udp, reusing: &buffer)
            }
            XCTAssertEqual(reused, key(a, q, "10.1.2.3"))
            if let reused, kept.count < queries.count { kept.append(reused) }
        }
        for (q, k) in zip(queries, kept) { XCTAssertEqual(k, key(a, q, "10.1.2.3"), "a kept key changed") }
        XCTAssertEqual(Set(kept).count, queries.count)
    }

    func test_ecsKeyDoesNotDependOnSourceAddress() throws {
        let a = try Fixture.authority()
        let q = Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")]))
        XCTAssertEqual(key(a, q, "10.0.0.1"), key(a, q, "10.9.9.9"))
        let zero = Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("0.0.0.0/0")]))
        XCTAssertNotEqual(key(a, zero, "10.0.0.1"), key(a, zero, "10.9.9.9"), "SOURCE 0: the source address locates")
        XCTAssertNotEqual(key(a, q), key(a, Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.70.0/24")]))))
    }

    func test_unusualQueriesHaveNoKey() throws {
        let a = try Fixture.authority()
        var notify = Fixture.query("www.example.test")
        notify[2] |= 4 << 3
        XCTAssertNil(key(a, notify))
        XCTAssertNil(key(a, Array(Fixture.query("www.example.test").dropLast())))
        var twoECS = Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24"), Fixture.ecs("81.2.70.0/24")]))
        XCTAssertNil(key(a, twoECS))
        twoECS = [1, 2]
        XCTAssertNil(key(a, twoECS))
    }

    /// Many varied queries: whenever two keys are equal and the first response was reusable, the responses are the same bytes.
    func test_equalKeysGiveIdenticalResponses() throws {
        let a = try Fixture.authority()
        let names = ["www.example.test", "WWW.example.test", "two.example.test", "api.example.test", "mail.example.test",
                     "nope.example.test", "example.test", "www.example.com", "big.example.test", "host.sub.example.test"]
        let types = [RRType.a, RRType.aaaa, RRType.txt, RRType.mx, RRType.any]
        let subnets = ["81.2.69.0/24", "85.214.3.0/24", "85.214.7.0/24", "8.8.8.0/24", "133.1.0.0/16", "192.0.2.0/24",
                       "0.0.0.0/0", "2a00:1450:4001::/48"]
        let clients = ["127.0.0.1", "127.0.2.7", "133.9.9.9", "8.8.8.8"]
        var seen = [AnswerKey: [UInt8]]()
        var rng = FastRandom(seed: 5)
        var compared = 0
        for round in 0..<3000 {
            let name = names[Int(rng.next() % UInt64(names.count))]
            let type = types[Int(rng.next() % UInt64(types.count))]
            let client = clients[Int(rng.next() % UInt64(clients.count))]
            var options = [EDNSOption]()
            if rng.next() % 2 == 0 { options.append(Fixture.ecs(subnets[Int(rng.next() % UInt64(subnets.count))])) }
            if rng.next() % 4 == 0 { options.append(EDNSOption(code: 3, data: [])) }
            if rng.next() % 3 == 0 { options.append(EDNSOption(code: EDNSOptionCode.cookie, data: (0..<8).map { _ in UInt8(truncatingIfNeeded: rng.next()) })) }
            let payload: UInt16 = rng.next() % 3 == 0 ? 512 : 1232
            let packet = Fixture.query(name, type, id: UInt16(round), edns: rng.next() % 5 == 0 ? nil : (payload, 0, options))
            guard let k = key(a, packet, client) else { return XCTFail("plain query without a key: \(name)") }
            let response = try XCTUnwrap(a.respond(to: packet, from: IPAddress(client)!, transport: .udp, random: &rng))
            var body = response.bytes
            body[0] = 0; body[1] = 0
            if let previous = seen[k] {
                XCTAssertEqual(previous, body, "same key, different reply: \(name) \(type) from \(client)")
                compared += 1
            } else if response.reusable {
                seen[k] = body
            }
        }
        XCTAssertGreaterThan(compared, 500)
    }

    func test_tiedEdgesAreDrawnSoTheAnswerIsNotReusable() throws {
        // Two edges in one region: the order comes from a weighted draw, so the packet cache must not pin it.
        let json = Fixture.topologyJSON.replacingOccurrences(
            of: #"{ "id": "edge-ap", "region": "ap-southeast""#, with: #"{ "id": "edge-ap", "region": "eu-central""#)
        let t = try Topology.decode(Data(json.utf8), file: "t.json")
        let a = Authority(topology: t, geo: TableLocator.sample, health: StaticHealthView())
        var rng = FastRandom(seed: 1)
        let q = Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")]))
        let r = try XCTUnwrap(a.respond(to: q, from: IPAddress("10.0.0.1")!, transport: .udp, random: &rng))
        XCTAssertFalse(r.reusable)
        var seen = Set<[UInt8]>()
        for _ in 0..<50 {
            let reply = try XCTUnwrap(a.respond(to: q, from: IPAddress("10.0.0.1")!, transport: .udp, random: &rng))
            seen.insert(Array(reply.bytes.dropFirst(2)))
        }
        XCTAssertEqual(seen.count, 2, "both EU edges are answered over repeated queries")
    }

    func test_healthChangeBumpsGeneration() {
        let h = StaticHealthView()
        let g = h.generation
        h.setDown(["edge-eu"])
        XCTAssertGreaterThan(h.generation, g)
    }
}
