import LodestarGossip
import XCTest

/// Lodestar's probe timeouts that follow each member's round trip (SWIMInstance+RoundTrip.swift).
extension SWIMRuleTests {
    func test_farMemberGetsADirectTimeoutFromItsRoundTrip() {
        var node = makeInstance(seeds: [a])
        let settings = node.settings
        let first = sends(node.onTick(now: .zero, rng: &rng))
        guard case .ping(let sequence)? = first.first?.0.kind else { return XCTFail("no probe: \(first)") }
        XCTAssertEqual(node.nextTickDeadline, settings.pingTimeout, "an unknown member: the configured timeout")
        // The first ping's ack, 200 ms later (after the direct timeout: the second ping went out meanwhile).
        _ = node.onTick(now: settings.pingTimeout, rng: &rng)
        _ = node.onMessage(SWIMMessage(.ack(sequence: sequence)), from: a, now: .milliseconds(200), rng: &rng)
        XCTAssertEqual(node.member(a)?.status, .alive)
        XCTAssertEqual(node.roundTrip(to: a), .milliseconds(200))
        // The next probe of `a` waits 1.5 × 200 ms + 5 ms for the direct answer.
        let start = settings.probeInterval
        let next = sends(node.onTick(now: start, rng: &rng))
        XCTAssertTrue(next.contains { if case .ping = $0.0.kind { $0.1 == a } else { false } }, "\(next)")
        XCTAssertEqual(node.nextTickDeadline, start + .milliseconds(305))
    }

    func test_relayedAnswerMeasuresNoRoundTripAndTheSecondPingItsOwn() {
        var node = makeInstance()
        let settings = node.settings
        let first = sends(node.onTick(now: .zero, rng: &rng))
        guard case .ping? = first.first?.0.kind, let target = first.first?.1 else { return XCTFail("no probe") }
        let indirect = sends(node.onTick(now: settings.pingTimeout, rng: &rng))
        let relayed = indirect.compactMap { if case .pingRequest(let s, _) = $0.0.kind { s } else { nil } }
        let second = indirect.compactMap { if case .ping(let s) = $0.0.kind, $0.1 == target { s } else { nil } }
        guard let relaySequence = relayed.first, let secondSequence = second.first else {
            return XCTFail("no second ping or relays: \(indirect)")
        }
        XCTAssertNotEqual(relaySequence, secondSequence, "each path has its own sequence")
        _ = node.onMessage(SWIMMessage(.ack(sequence: relaySequence)), from: a, now: .milliseconds(260), rng: &rng)
        XCTAssertNil(node.roundTrip(to: target), "a relayed ack says nothing of the direct path")
        XCTAssertEqual(node.member(target)?.status, .alive, "but it answers the probe")

        // Next period, same shape; this time the second ping is answered 30 ms after it went out.
        var other = makeInstance()
        let out = sends(other.onTick(now: .zero, rng: &rng))
        guard let probed = out.first?.1 else { return XCTFail("no probe") }
        let again = sends(other.onTick(now: settings.pingTimeout, rng: &rng))
        guard let seq2 = again.compactMap({ if case .ping(let s) = $0.0.kind, $0.1 == probed { s } else { nil } }).first else {
            return XCTFail("no second ping: \(again)")
        }
        _ = other.onMessage(SWIMMessage(.ack(sequence: seq2)), from: probed, now: settings.pingTimeout + .milliseconds(30),
                            rng: &rng)
        XCTAssertEqual(other.roundTrip(to: probed), .milliseconds(30))
    }
}
