import LodestarGossip
import XCTest

/// Lodestar's additions that bring a crash's verdict sooner: verdicts told straight to `verdictFanout` members, and a
/// heard suspicion checked by a probe that starts early.
extension SWIMRuleTests {
    /// The pings in `directives` (other than to `subject`) whose first gossip is `status` about `subject` from this node.
    func announcements(of status: SWIMMemberStatus, about subject: SWIMNodeID,
                       in directives: [SWIMDirective]) -> [SWIMNodeID] {
        sends(directives).compactMap { message, to in
            guard case .ping = message.kind, to != subject, let first = message.gossip.first,
                  first.node == subject, first.status == status, first.origin == me else { return nil }
            return to
        }
    }

    /// One probe period whose target never answers while the relays answer nack (a crash); returns the target and the
    /// pings that carried the suspicion first at the period's end, with `fanout`.
    func suspicionTold(fanout: Int) -> (target: SWIMNodeID, told: [SWIMNodeID])? {
        var settings = SWIMSettings()
        settings.verdictFanout = fanout
        var node = makeInstance(seeds: [a, b, c, "d", "e"], settings: settings)
        let out = sends(node.onTick(now: .zero, rng: &rng))
        guard case .ping? = out.first?.0.kind, let target = out.first?.1 else { return nil }
        let relays = sends(node.onTick(now: settings.pingTimeout, rng: &rng)).compactMap { message, to in
            if case .pingRequest(let sequence, _) = message.kind { (to, sequence) } else { nil }
        }
        for (relay, sequence) in relays {
            _ = node.onMessage(SWIMMessage(.nack(sequence: sequence)), from: relay, now: settings.pingTimeout * 2, rng: &rng)
        }
        let end = node.onTick(now: settings.probeInterval, rng: &rng)
        guard node.member(target)?.status == .suspect, node.localHealthMultiplier == 1 else { return nil }
        return (target, announcements(of: .suspect, about: target, in: end))
    }

    func test_ownSuspicionIsToldToFanoutMembersAtOnce() {
        guard let told = suspicionTold(fanout: 3), let piggybacked = suspicionTold(fanout: 0) else {
            return XCTFail("no suspicion at local health 1")
        }
        // Without fanout only the next probe carries it (piggybacking); with it, three more pings.
        XCTAssertEqual(piggybacked.told.count, 1, "\(piggybacked)")
        XCTAssertEqual(told.told.count, 1 + 3, "\(told)")
        XCTAssertEqual(Set(told.told).count, told.told.count, "each member told once")
    }

    /// A suspicion heard from `a` runs out (local health held at 1); returns the pings that carried the death first.
    func deathTold(fanout: Int) -> [SWIMNodeID] {
        var settings = SWIMSettings()
        settings.localHealthMaxMultiplier = 1
        settings.verdictFanout = fanout
        var node = makeInstance(seeds: [a, b, c, "d", "e"], settings: settings)
        deliver([g(b, .suspect, 0, origin: a)], to: &node, at: .seconds(1))
        guard let deadline = node.suspicionDeadline(of: b) else { return [] }
        let lead = settings.pingTimeout * 2
        for at in [deadline - lead * 2, deadline - lead] { _ = node.onTick(now: at, rng: &rng) }
        let out = node.onTick(now: deadline, rng: &rng)
        return node.member(b)?.status == .dead ? announcements(of: .dead, about: b, in: out) : []
    }

    func test_ownVerdictOfDeathIsToldToFanoutMembersAtOnce() {
        let told = deathTold(fanout: 3), piggybacked = deathTold(fanout: 0)
        XCTAssertEqual(told.count, piggybacked.count + 3, "told \(told), piggybacked \(piggybacked)")
        XCTAssertFalse(told.contains(b))
    }

    func test_heardSuspicionIsCheckedBeforeThePeriodEnds() {
        var node = makeInstance()
        let period = node.settings.probeInterval
        let first = sends(node.onTick(now: .zero, rng: &rng))
        guard case .ping(let sequence)? = first.first?.0.kind, let target = first.first?.1 else { return XCTFail("no probe") }
        _ = node.onMessage(SWIMMessage(.ack(sequence: sequence)), from: target, now: .milliseconds(5), rng: &rng)
        XCTAssertEqual(node.nextTickDeadline, period, "answered: the next probe at the period's end")
        let suspect = [a, b, c].first { $0 != target } ?? a
        let teller = [a, b, c].first { $0 != target && $0 != suspect } ?? a
        deliver([g(suspect, .suspect, 0, origin: teller)], to: &node, from: teller, at: .milliseconds(100))
        // Brought forward, but not sooner than half a period after the last probe began.
        XCTAssertEqual(node.nextTickDeadline, period / 2)
        let check = sends(node.onTick(now: period / 2, rng: &rng))
        XCTAssertTrue(check.contains { if case .ping = $0.0.kind { $0.1 == suspect } else { false } }, "\(check)")
    }
}
