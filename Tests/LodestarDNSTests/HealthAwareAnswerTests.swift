import Foundation
import LodestarDNS
import LodestarGeo
import LodestarSelection
import LodestarTopology
import XCTest

/// Answers driven by run-time edge health (what gossip feeds): suspect edges get a short TTL, overloaded edges shed
/// a share of their queries to the next nearest, down edges are skipped; the operator's down set always wins.
final class HealthAwareAnswerTests: XCTestCase {
    let london = Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")]))

    func authority(_ view: LiveHealthView) throws -> Authority {
        Authority(topology: try Fixture.topology(), geo: TableLocator.sample, health: view)
    }

    func test_suspectEdgeIsStillAnsweredWithAShortTTL() throws {
        let view = LiveHealthView()
        let a = try authority(view)
        let before = try Fixture.ask(a, london)
        XCTAssertEqual(before.answers.first?.ttl, 30)
        view.update(["edge-eu": .suspect])
        let r = try Fixture.ask(a, london)
        XCTAssertEqual(r.answerAddresses, ["127.0.2.1"], "suspect is not dead: London still gets Frankfurt")
        XCTAssertEqual(r.answers.first?.ttl, UInt32(EdgeSelector.suspectTTLSeconds))
        // The trace says why.
        let trace = try Fixture.ask(a, Fixture.query("www.example.test", RRType.txt, qclass: RRClass.ch,
                                                     edns: (1232, 0, [Fixture.ecs("81.2.69.0/24")])))
        let text = trace.answers.compactMap { rr -> String? in
            if case .txt(let strings) = rr.rdata { return strings.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n") }
            return nil
        }.joined()
        XCTAssertTrue(text.contains("edge-eu region eu-central") && text.contains("suspect"), text)
        XCTAssertTrue(text.contains("TTL 5 (a suspect edge)"), text)
    }

    func test_overloadedEdgeShedsItsShareToTheNextNearest() throws {
        let view = LiveHealthView()
        let a = try authority(view)
        view.update(["edge-eu": .overloaded(shed: 1.0)])
        XCTAssertEqual(try Fixture.ask(a, london).answerAddresses, ["127.0.1.1"], "shedding everything: next nearest")
        view.update(["edge-eu": .overloaded(shed: 0.3)])
        var rng = FastRandom(seed: 7)
        var counts = [String: Int]()
        for _ in 0..<2000 {
            let response = try XCTUnwrap(a.respond(to: london, from: IPAddress("127.0.0.1")!, transport: .udp, random: &rng))
            let m = try DNSMessage(decoding: response.bytes)
            counts[m.answerAddresses.first ?? "-", default: 0] += 1
        }
        let shed = Double(counts["127.0.1.1", default: 0]) / 2000
        XCTAssertEqual(shed, 0.3, accuracy: 0.05, "\(counts)")
        // An overloaded edge that is the only one up is still answered.
        view.update(["edge-eu": .overloaded(shed: 1.0), "edge-us": .down, "edge-ap": .down])
        XCTAssertEqual(try Fixture.ask(a, london).answerAddresses, ["127.0.2.1"])
    }

    func test_deadOrDrainingEdgesAreSkippedAndTheOperatorWins() throws {
        let view = LiveHealthView()
        let a = try authority(view)
        view.update(["edge-eu": .down])
        XCTAssertEqual(try Fixture.ask(a, london).answerAddresses, ["127.0.1.1"])
        view.update(["edge-eu": .healthy])
        XCTAssertEqual(try Fixture.ask(a, london).answerAddresses, ["127.0.2.1"])
        view.setDown(["edge-eu"])
        XCTAssertEqual(try Fixture.ask(a, london).answerAddresses, ["127.0.1.1"], "an operator's down beats gossip's healthy")
    }

    func test_liveViewMovesItsGenerationOnlyOnChange() {
        let view = LiveHealthView()
        XCTAssertEqual(view.health(ofEdge: "never-heard"), .healthy, "fail open before gossip converges")
        let g0 = view.generation
        XCTAssertTrue(view.update(["e1": .suspect]))
        XCTAssertFalse(view.update(["e1": .suspect]), "the same report changes nothing")
        XCTAssertEqual(view.generation, g0 + 1)
        view.setDown(["e2"])
        view.setDown(["e2"])
        XCTAssertEqual(view.generation, g0 + 2)
        XCTAssertEqual(view.health(ofEdge: "e2"), .down)
        XCTAssertEqual(view.reported, ["e1": .suspect])
    }
}
