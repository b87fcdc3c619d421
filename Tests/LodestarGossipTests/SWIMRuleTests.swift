import LodestarGossip
import LodestarTopology
import XCTest

/// The membership rules of SWIM §4.2, Lifeguard §3 and memberlist, checked on single instances.
final class SWIMRuleTests: XCTestCase {
    let me: SWIMNodeID = "me"
    let a: SWIMNodeID = "a"
    let b: SWIMNodeID = "b"
    let c: SWIMNodeID = "c"
    var rng = SeededRNG(seed: 42)

    func makeInstance(seeds: [SWIMNodeID]? = nil, settings: SWIMSettings = SWIMSettings()) -> SWIMInstance {
        SWIMInstance(settings: settings, myself: me, seeds: seeds ?? [a, b, c], now: .zero)
    }

    /// Delivers a ping from `from` carrying `gossip`, at `now`.
    @discardableResult
    func deliver(_ gossip: [SWIMGossip], to instance: inout SWIMInstance, from: SWIMNodeID? = nil,
                 at now: Duration = .zero) -> [SWIMDirective] {
        instance.onMessage(SWIMMessage(.ping(sequence: 999), gossip: gossip), from: from ?? a, now: now, rng: &rng)
    }

    func g(_ node: SWIMNodeID, _ status: SWIMMemberStatus, _ incarnation: UInt64, origin: SWIMNodeID? = nil,
           metadata: SWIMMetadata? = nil) -> SWIMGossip {
        SWIMGossip(node: node, status: status, incarnation: incarnation, metadata: metadata, origin: origin ?? a)
    }

    func statusChanges(_ directives: [SWIMDirective]) -> [SWIMStatusChange] {
        directives.compactMap { if case .statusChanged(let change) = $0 { change } else { nil } }
    }

    func sends(_ directives: [SWIMDirective]) -> [(SWIMMessage, SWIMNodeID)] {
        directives.compactMap { if case .send(let message, let to) = $0 { (message, to) } else { nil } }
    }

    // MARK: SWIM §4.2 precedence

    func test_suspectOverridesAliveOfSameIncarnation_SWIM_4_2() {
        var node = makeInstance()
        let changes = statusChanges(deliver([g(b, .suspect, 0)], to: &node))
        XCTAssertEqual(node.member(b)?.status, .suspect)
        XCTAssertEqual(changes, [SWIMStatusChange(node: b, previous: .alive, current: .suspect, incarnation: 0)])
    }

    func test_aliveOfSameIncarnationDoesNotClearSuspicion_SWIM_4_2() {
        var node = makeInstance()
        deliver([g(b, .suspect, 3)], to: &node)
        deliver([g(b, .alive, 3)], to: &node)
        XCTAssertEqual(node.member(b)?.status, .suspect)
        deliver([g(b, .alive, 2)], to: &node)
        XCTAssertEqual(node.member(b)?.status, .suspect)
    }

    func test_aliveWithHigherIncarnationOverridesSuspect_SWIM_4_2() {
        var node = makeInstance()
        deliver([g(b, .suspect, 3)], to: &node)
        let changes = statusChanges(deliver([g(b, .alive, 4)], to: &node))
        XCTAssertEqual(node.member(b), SWIMMember(node: b, status: .alive, incarnation: 4))
        XCTAssertEqual(changes.map(\.current), [.alive])
        XCTAssertNil(node.suspicionDeadline(of: b), "refuted suspicion must stop its timer")
    }

    func test_suspectOfOlderIncarnationIsIgnored_SWIM_4_2() {
        var node = makeInstance()
        deliver([g(b, .alive, 5)], to: &node)
        deliver([g(b, .suspect, 4)], to: &node)
        XCTAssertEqual(node.member(b)?.status, .alive)
    }

    func test_deadIsFinalForItsIncarnation_SWIM_4_2() {
        var node = makeInstance()
        deliver([g(b, .dead, 2)], to: &node)
        XCTAssertEqual(node.member(b)?.status, .dead)
        deliver([g(b, .alive, 2), g(b, .suspect, 2), g(b, .suspect, 7)], to: &node)
        XCTAssertEqual(node.member(b), SWIMMember(node: b, status: .dead, incarnation: 2))
        // A restarted member comes back only with a higher incarnation.
        deliver([g(b, .alive, 3)], to: &node)
        XCTAssertEqual(node.member(b)?.status, .alive)
    }

    func test_staleAliveGossipDoesNotResurrectLeftMember_SWIM_4_2() {
        var node = makeInstance()
        deliver([g(b, .alive, 4)], to: &node)
        deliver([g(b, .left, 4, origin: b)], to: &node)
        XCTAssertEqual(node.member(b)?.status, .left)
        deliver([g(b, .alive, 4), g(b, .alive, 1), g(b, .suspect, 4), g(b, .dead, 4)], to: &node)
        XCTAssertEqual(node.member(b), SWIMMember(node: b, status: .left, incarnation: 4))
        // Full sync from a peer that missed the leave must not resurrect it either.
        _ = node.onMessage(SWIMMessage(.sync(state: [g(b, .alive, 4)], isReply: true)), from: c, now: .zero, rng: &rng)
        XCTAssertEqual(node.member(b)?.status, .left)
    }

    func test_leftOverridesDeadOfSameIncarnation() {
        var node = makeInstance()
        deliver([g(b, .dead, 1)], to: &node)
        deliver([g(b, .left, 1, origin: b)], to: &node)
        XCTAssertEqual(node.member(b)?.status, .left)
    }

    func test_unknownMemberIsLearntOnlyFromAlive_SWIM_4_2() {
        var node = makeInstance()
        deliver([g("x", .suspect, 0), g("y", .dead, 0), g("z", .left, 0)], to: &node)
        XCTAssertNil(node.member("x"))
        XCTAssertNil(node.member("y"))
        let changes = statusChanges(deliver([g("w", .alive, 0)], to: &node))
        XCTAssertEqual(changes, [SWIMStatusChange(node: "w", previous: nil, current: .alive, incarnation: 0)])
    }

    func test_fullSyncDowngradesDeadToSuspect_memberlist_pushPull() {
        var node = makeInstance()
        _ = node.onMessage(SWIMMessage(.sync(state: [g(b, .dead, 0)], isReply: true)), from: c, now: .zero, rng: &rng)
        XCTAssertEqual(node.member(b)?.status, .suspect)
    }

    func test_syncIsAnsweredWithFullState_memberlist_pushPull() {
        var node = makeInstance()
        let out = sends(node.onMessage(SWIMMessage(.sync(state: [], isReply: false)), from: c, now: .zero, rng: &rng))
        guard case .sync(let state, true)? = out.first?.0.kind else { return XCTFail("no sync reply: \(out)") }
        XCTAssertEqual(Set(state.map(\.node)), [me, a, b, c])
        XCTAssertEqual(out.first?.1, c)
    }

    func test_metadataVersionOrdersPayloadsWithinAnIncarnation() {
        var node = makeInstance()
        deliver([g(b, .alive, 1, metadata: SWIMMetadata(version: 5, bytes: [5]))], to: &node)
        deliver([g(b, .alive, 1, metadata: SWIMMetadata(version: 4, bytes: [4]))], to: &node)
        XCTAssertEqual(node.member(b)?.metadata, SWIMMetadata(version: 5, bytes: [5]))
        let out = deliver([g(b, .alive, 1, metadata: SWIMMetadata(version: 6, bytes: [6]))], to: &node)
        XCTAssertEqual(node.member(b)?.metadata.bytes, [6])
        XCTAssertTrue(out.contains(.metadataChanged(node: b, metadata: SWIMMetadata(version: 6, bytes: [6]))))
    }

    // MARK: Refutation (SWIM §4.2) and local health (Lifeguard §3.1)

    func test_suspicionOfSelfIsRefutedByIncrementingIncarnation_SWIM_4_2() {
        var node = makeInstance()
        XCTAssertEqual(node.incarnation, 0)
        let out = sends(deliver([g(me, .suspect, 0)], to: &node))
        XCTAssertEqual(node.incarnation, 1)
        XCTAssertEqual(node.myStatus, .alive)
        // The refutation rides on the very ack this node sends back.
        let refutation = out.first?.0.gossip.first { $0.node == me }
        XCTAssertEqual(refutation?.status, .alive)
        XCTAssertEqual(refutation?.incarnation, 1)
        // Lifeguard §3.1: having to refute counts against local health.
        XCTAssertEqual(node.localHealthMultiplier, 2)
        // Stale suspicion (older incarnation) needs no refutation.
        deliver([g(me, .suspect, 0)], to: &node)
        XCTAssertEqual(node.incarnation, 1)
        // A claim of death is refuted too.
        deliver([g(me, .dead, 1)], to: &node)
        XCTAssertEqual(node.incarnation, 2)
    }

    func test_localHealthMultiplierRisesAfterMissedAcks_Lifeguard_3_1() {
        var node = makeInstance()
        let period = node.settings.probeInterval
        XCTAssertEqual(node.localHealthMultiplier, 1)
        // Nobody answers: the direct ping and all k indirect probes go unanswered, no nacks come back.
        var now = Duration.zero
        var probeStarts: [Duration] = []
        for _ in 0..<40 {
            guard let deadline = node.nextTickDeadline else { break }
            now = max(now, deadline)
            let out = sends(node.onTick(now: now, rng: &rng))
            // A probe starts with a ping alone; the second direct ping goes out with the ping-reqs.
            let pings = out.contains { if case .ping = $0.0.kind { true } else { false } }
            let requests = out.contains { if case .pingRequest = $0.0.kind { true } else { false } }
            if pings && !requests { probeStarts.append(now) }
            if probeStarts.count >= 4 { break }
        }
        XCTAssertGreaterThan(node.localHealthMultiplier, 1)
        XCTAssertLessThanOrEqual(node.localHealthMultiplier, node.settings.localHealthMaxMultiplier)
        // Lifeguard §3.1: the probe period stretches by the multiplier.
        XCTAssertGreaterThan(probeStarts[3] - probeStarts[2], period)
    }

    func test_localHealthMultiplierFallsAfterSuccessfulProbes_Lifeguard_3_1() {
        var node = makeInstance()
        deliver([g(me, .suspect, 0)], to: &node)
        deliver([g(me, .suspect, 1)], to: &node)
        XCTAssertEqual(node.localHealthMultiplier, 3)
        var now = Duration.zero
        for _ in 0..<2 {
            now = max(now, node.nextTickDeadline ?? now)
            let out = sends(node.onTick(now: now, rng: &rng))
            guard let (ping, target) = out.first(where: { if case .ping = $0.0.kind { true } else { false } }),
                  case .ping(let sequence) = ping.kind else { return XCTFail("no probe") }
            _ = node.onMessage(SWIMMessage(.ack(sequence: sequence)), from: target, now: now, rng: &rng)
        }
        XCTAssertEqual(node.localHealthMultiplier, 1)
    }

    func test_localHealthMultiplierIsCapped_Lifeguard_3_1() {
        var node = makeInstance()
        for i in 0..<20 { deliver([g(me, .suspect, UInt64(i))], to: &node) }
        XCTAssertEqual(node.localHealthMultiplier, node.settings.localHealthMaxMultiplier)
    }

    // MARK: Suspicion timeout (Lifeguard §3.2)

    func test_suspicionTimeoutShrinksWithIndependentConfirmations_Lifeguard_3_2() {
        let min = Duration.seconds(2), max = Duration.seconds(10)
        XCTAssertEqual(SWIMSuspicion.timeout(min: min, max: max, confirmations: 0, expected: 3), max)
        XCTAssertEqual(SWIMSuspicion.timeout(min: min, max: max, confirmations: 3, expected: 3), min)
        XCTAssertEqual(SWIMSuspicion.timeout(min: min, max: max, confirmations: 9, expected: 3), min)
        // log(2)/log(4) = 0.5 → halfway.
        XCTAssertEqual(SWIMSuspicion.timeout(min: min, max: max, confirmations: 1, expected: 3), .seconds(6))
        XCTAssertEqual(SWIMSuspicion.timeout(min: min, max: max, confirmations: 0, expected: 0), min)

        // The instance applies it: confirmations from distinct suspectors shrink the deadline; repeats do not.
        var node = makeInstance(seeds: [a, b, c, "d", "e", "f"])
        deliver([g(b, .suspect, 0, origin: a)], to: &node, at: .seconds(1))
        XCTAssertEqual(node.suspicionDeadline(of: b), .seconds(11))
        deliver([g(b, .suspect, 0, origin: c)], to: &node, at: .seconds(2))
        XCTAssertEqual(node.suspicionDeadline(of: b), .seconds(7))
        deliver([g(b, .suspect, 0, origin: c)], to: &node, at: .seconds(3))
        XCTAssertEqual(node.suspicionDeadline(of: b), .seconds(7))
        deliver([g(b, .suspect, 0, origin: "d"), g(b, .suspect, 0, origin: "e")], to: &node, at: .seconds(3))
        XCTAssertEqual(node.suspicionDeadline(of: b), .seconds(3), "K confirmations: start + min")
    }

    func test_suspectIsDeclaredDeadAtSuspicionTimeout_SWIM_4_2() {
        // Local health held at 1 (this lone instance's own probes all go unanswered, which would raise it and add a
        // third check): two checks, the second ending at the deadline.
        var settings = SWIMSettings()
        settings.localHealthMaxMultiplier = 1
        var node = makeInstance(settings: settings)
        deliver([g(b, .suspect, 0, origin: a)], to: &node, at: .seconds(1))
        guard let deadline = node.suspicionDeadline(of: b) else { return XCTFail("no timer") }
        // Before the verdict the node checks the suspect itself twice, two ping timeouts apart, the second ending at
        // the deadline (each a ping and ping-reqs under one sequence).
        let lead = SWIMSettings().pingTimeout * 2
        XCTAssertEqual(node.nextTickDeadline.map { $0 <= deadline - lead * 2 }, true, "the first check is due before the verdict")
        for at in [deadline - lead * 2, deadline - lead] {
            let check = sends(node.onTick(now: at, rng: &rng))
            XCTAssertTrue(check.contains { if case .ping = $0.0.kind { $0.1 == b } else { false } }, "\(check)")
            XCTAssertTrue(check.contains { if case .pingRequest(_, let target) = $0.0.kind { target == b } else { false } }, "\(check)")
        }
        XCTAssertEqual(node.suspicionDeadline(of: b), deadline, "the checks do not move the verdict of a crash")
        _ = node.onTick(now: deadline - .milliseconds(1), rng: &rng)
        XCTAssertEqual(node.member(b)?.status, .suspect)
        let changes = statusChanges(node.onTick(now: deadline, rng: &rng))
        XCTAssertEqual(node.member(b)?.status, .dead, "no answer to the check: dead at the deadline")
        XCTAssertTrue(changes.contains(SWIMStatusChange(node: b, previous: .suspect, current: .dead, incarnation: 0)))
    }

    /// Lodestar addition: a suspect that answers the check before the verdict is not declared dead on rumour; its
    /// suspicion starts over (a lossy network delays the refutation, it does not kill a live member).
    func test_suspectThatAnswersTheCheckIsNotDeclaredDead() {
        var node = makeInstance()
        deliver([g(b, .suspect, 0, origin: a)], to: &node, at: .seconds(1))
        guard let deadline = node.suspicionDeadline(of: b) else { return XCTFail("no timer") }
        let lead = SWIMSettings().pingTimeout * 2
        let check = sends(node.onTick(now: deadline - lead * 2, rng: &rng))
        guard let sequence = check.compactMap({ if case .ping(let s) = $0.0.kind, $0.1 == b { s } else { nil } }).first else {
            return XCTFail("no check ping: \(check)")
        }
        // The answer comes back through a relay (an ack with the check's sequence).
        _ = node.onMessage(SWIMMessage(.ack(sequence: sequence)), from: c, now: deadline - lead / 2, rng: &rng)
        _ = node.onTick(now: deadline, rng: &rng)
        XCTAssertEqual(node.member(b)?.status, .suspect, "answered the check: not dead")
        let restarted = try? XCTUnwrap(node.suspicionDeadline(of: b))
        XCTAssertGreaterThan(restarted ?? .zero, deadline, "its suspicion started over")
    }

    func test_pingToSuspectCarriesTheSuspicion_LifeguardBuddySystem() {
        var node = makeInstance(seeds: [b])
        deliver([g(b, .suspect, 0, origin: a)], to: &node, from: a)
        let out = sends(node.onTick(now: .zero, rng: &rng))
        guard let (ping, target) = out.first else { return XCTFail("no probe") }
        XCTAssertEqual(target, b)
        XCTAssertEqual(ping.gossip.first?.node, b)
        XCTAssertEqual(ping.gossip.first?.status, .suspect)
    }

    // MARK: Dissemination (SWIM §4.1)

    func test_piggybackedUpdateIsRetransmittedAtMostLambdaLogN_SWIM_4_1() {
        let others = (0..<49).map { SWIMNodeID("m\($0)") }
        var node = makeInstance(seeds: others)
        XCTAssertEqual(node.liveMemberCount, 50)
        // λ = 6, ⌈log10(51)⌉ = 2.
        XCTAssertEqual(node.retransmitLimit, 12)
        node.updateMetadata([1, 2, 3])
        var carried = 0
        for i in 0..<30 {
            let out = sends(node.onMessage(SWIMMessage(.ping(sequence: UInt64(i))), from: others[i], now: .zero, rng: &rng))
            if out.contains(where: { $0.0.gossip.contains { $0.node == me } }) { carried += 1 }
        }
        XCTAssertEqual(carried, node.retransmitLimit)
        XCTAssertEqual(node.pendingGossipCount, 0)
    }

    func test_gossipPerMessageIsBounded_SWIM_4_1() {
        var node = makeInstance()
        let newcomers = (0..<20).map { g(SWIMNodeID("new\($0)"), .alive, 0) }
        deliver(newcomers, to: &node)
        XCTAssertEqual(node.pendingGossipCount, 20)
        let out = sends(deliver([], to: &node))
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.0.gossip.count, node.settings.maxGossipPerMessage)
    }

    func test_stateChangesArePiggybackedBeforePayloadRefreshes_SWIM_4_1() {
        var settings = SWIMSettings()
        settings.maxGossipPerMessage = 1
        var node = makeInstance(settings: settings)
        node.updateMetadata([9])
        deliver([g(b, .suspect, 0)], to: &node)  // the ack for this ping already carries it
        let out = sends(deliver([], to: &node))
        XCTAssertEqual(out.first?.0.gossip.first?.node, b)
    }

    // MARK: Probing (SWIM §3.1, §4.3)

    func test_roundRobinProbesEveryMemberWithinNPeriods_SWIM_4_3() {
        let others = (0..<9).map { SWIMNodeID("m\($0)") }
        var node = makeInstance(seeds: others)
        var probed: [SWIMNodeID] = []
        var now = Duration.zero
        for _ in 0..<18 {
            now = max(now, node.nextTickDeadline ?? now)
            let out = sends(node.onTick(now: now, rng: &rng))
            for (message, target) in out {
                if case .ping(let sequence) = message.kind {
                    probed.append(target)
                    _ = node.onMessage(SWIMMessage(.ack(sequence: sequence)), from: target, now: now, rng: &rng)
                }
            }
        }
        XCTAssertEqual(probed.count, 18)
        XCTAssertEqual(Set(probed.prefix(9)), Set(others))
        XCTAssertEqual(Set(probed.suffix(9)), Set(others))
    }

    func test_failedDirectPingAsksKOthersThenSuspects_SWIM_3_1() {
        var node = makeInstance(seeds: [a, b, c, "d", "e"])
        var out = sends(node.onTick(now: .zero, rng: &rng))
        guard case .ping? = out.first?.0.kind, let target = out.first?.1 else { return XCTFail("no probe") }
        out = sends(node.onTick(now: node.settings.pingTimeout, rng: &rng))
        let relays = out.filter { if case .pingRequest(_, target) = $0.0.kind { true } else { false } }.map(\.1)
        XCTAssertEqual(relays.count, 3)
        XCTAssertFalse(relays.contains(target))
        _ = node.onTick(now: node.settings.probeInterval, rng: &rng)
        XCTAssertEqual(node.member(target)?.status, .suspect)
    }

    func test_relayAnswersNackWhenTargetIsSilent_Lifeguard_3_1() {
        var node = makeInstance()
        let out = sends(node.onMessage(SWIMMessage(.pingRequest(sequence: 77, target: b)), from: a, now: .zero, rng: &rng))
        guard case .ping? = out.first?.0.kind, out.first?.1 == b else { return XCTFail("relay did not ping") }
        let later = sends(node.onTick(now: node.settings.indirectPingTimeout, rng: &rng))
        XCTAssertTrue(later.contains { $0.1 == a && $0.0.kind == .nack(sequence: 77) })
    }

    func test_relayForwardsTargetsAck_SWIM_3_1() {
        var node = makeInstance()
        let out = sends(node.onMessage(SWIMMessage(.pingRequest(sequence: 77, target: b)), from: a, now: .zero, rng: &rng))
        guard case .ping(let relaySequence)? = out.first?.0.kind else { return XCTFail("relay did not ping") }
        let forwarded = sends(node.onMessage(SWIMMessage(.ack(sequence: relaySequence)), from: b, now: .milliseconds(5), rng: &rng))
        XCTAssertTrue(forwarded.contains { $0.1 == a && $0.0.kind == .ack(sequence: 77) })
    }

    // MARK: Join and leave

    func test_leaveAnnouncesLeftAndStopsProbing() {
        var node = makeInstance()
        let out = sends(node.leave(now: .zero, rng: &rng))
        XCTAssertEqual(node.myStatus, .left)
        XCTAssertEqual(out.count, 3)
        XCTAssertTrue(out.allSatisfy { $0.0.gossip.contains { $0.node == me && $0.status == .left } })
        XCTAssertTrue(sends(node.onTick(now: .seconds(5), rng: &rng)).isEmpty)
        // Suspicion of a node that left is not refuted.
        deliver([g(me, .suspect, 0)], to: &node)
        XCTAssertEqual(node.incarnation, 0)
    }

    func test_rejoinAfterLeaveUsesHigherIncarnation_SWIM_4_2() {
        var node = makeInstance()
        _ = node.leave(now: .zero, rng: &rng)
        let out = sends(node.join(contacts: [a], now: .seconds(1), rng: &rng))
        XCTAssertEqual(node.myStatus, .alive)
        XCTAssertEqual(node.incarnation, 1)
        guard case .sync(let state, false)? = out.first?.0.kind else { return XCTFail("join must push-pull") }
        XCTAssertTrue(state.contains(SWIMGossip(node: me, status: .alive, incarnation: 1, metadata: .empty, origin: me)))
    }

    // MARK: Keeping refutations from being missed

    func test_suspicionOfNewerIncarnationRestartsTheTimer_SWIM_4_2() {
        var node = makeInstance()
        deliver([g(b, .suspect, 0, origin: a)], to: &node, at: .seconds(1))
        XCTAssertEqual(node.suspicionDeadline(of: b), .seconds(11))
        deliver([g(b, .suspect, 1, origin: c)], to: &node, at: .seconds(9))
        XCTAssertEqual(node.member(b), SWIMMember(node: b, status: .suspect, incarnation: 1))
        XCTAssertEqual(node.suspicionDeadline(of: b), .seconds(19), "a new incarnation's suspicion is a new timer, not a confirmation")
    }

    func test_fullSyncIsNoIndependentConfirmation_Lifeguard_3_2() {
        var node = makeInstance(seeds: [a, b, c, "d", "e"])
        deliver([g(b, .suspect, 0, origin: a)], to: &node, at: .zero)
        let before = node.suspicionDeadline(of: b)
        _ = node.onMessage(SWIMMessage(.sync(state: [g(b, .suspect, 0, origin: c)], isReply: true)), from: c, now: .zero, rng: &rng)
        XCTAssertEqual(node.suspicionDeadline(of: b), before)
    }

    func test_staleGossipAboutOthersReArmsTheNewerFact_SWIM_4_1() {
        var node = makeInstance()
        deliver([g(b, .alive, 3)], to: &node)
        // Drain the queue.
        for i in 0..<40 { _ = node.onMessage(SWIMMessage(.ping(sequence: UInt64(i))), from: a, now: .zero, rng: &rng) }
        XCTAssertNil(node.pendingGossipTransmits(about: b))
        deliver([g(b, .suspect, 2)], to: &node, from: c)
        XCTAssertEqual(node.member(b)?.status, .alive)
        let out = sends(deliver([], to: &node, from: c))
        XCTAssertTrue(out.first?.0.gossip.contains(SWIMGossip(node: b, status: .alive, incarnation: 3, metadata: .empty, origin: me)) == true)
    }

    func test_staleVerdictAboutSelfIsCorrectedDirectly_SWIM_4_2() {
        var node = makeInstance()
        deliver([g(me, .suspect, 0)], to: &node)
        XCTAssertEqual(node.incarnation, 1)
        // b still thinks we are suspect at incarnation 0 and says so on an ack: answer it with our incarnation.
        let out = sends(node.onMessage(SWIMMessage(.ack(sequence: 12_345), gossip: [g(me, .suspect, 0, origin: b)]),
                                       from: b, now: .seconds(1), rng: &rng))
        XCTAssertEqual(node.incarnation, 1, "a stale verdict needs no new incarnation")
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.1, b)
        XCTAssertEqual(out.first?.0.gossip.first, SWIMGossip(node: me, status: .alive, incarnation: 1, metadata: .empty, origin: me))
    }

    func test_lingeringSuspicionIsRecheckedByOneDirectPing() {
        var node = makeInstance()
        deliver([g(b, .suspect, 0, origin: a)], to: &node, at: .zero)
        // Half of the maximum suspicion timeout later this node pings the suspect itself, carrying the verdict.
        let recheck = node.settings.suspicionTimeoutMax / 2
        XCTAssertLessThanOrEqual(node.nextTickDeadline ?? .seconds(999), recheck)
        let out = sends(node.onTick(now: recheck, rng: &rng)).filter { $0.1 == b }
        XCTAssertTrue(out.contains { message, _ in
            if case .ping = message.kind { message.gossip.first?.status == .suspect } else { false }
        })
        let again = sends(node.onTick(now: recheck + .milliseconds(1), rng: &rng)).filter { $0.1 == b }
        XCTAssertFalse(again.contains { if case .ping = $0.0.kind { true } else { false } }, "only once per suspicion")
    }
}
