/// Lodestar's addition to SWIM §4.2's verdict: before declaring a suspect dead a node checks it itself — a direct
/// ping and up to 16 indirect probes at once, under a sequence of their own — at least twice, and up to three times
/// while its own probes show loss (the local health multiplier, Lifeguard §3.1). The checks are spaced two ping
/// timeouts apart and the last ends at the deadline, so a real crash is declared when it was before; an answer
/// restarts the suspicion, so only a member this node cannot reach is declared dead, and a live one on a lossy network
/// is not killed by stale rumour.
extension SWIMInstance {
    /// When the checks of a suspicion are due: `needed` of them, `lead` apart, the last ending at the deadline.
    struct VerdictChecks {
        let lead: Int64
        let needed: Int

        /// When `timer`'s next check is due, nil when all were sent.
        func nextCheck(of timer: SuspicionTimer) -> Int64? {
            timer.checks < needed ? timer.deadline - Int64(needed - timer.checks) * lead : nil
        }
    }

    /// The check schedule at this node's local health now.
    var verdictChecks: VerdictChecks {
        VerdictChecks(lead: 2 * scaled(settings.pingTimeout), needed: Swift.max(2, Swift.min(3, localHealthMultiplier)))
    }

    /// Sends the checks that are due, then declares dead every suspect whose checks all went unanswered by its
    /// deadline (SWIM §4.2; a node that left declares without checking).
    mutating func checkSuspectsAndDeclareDead(now t: Int64, rng: inout some RandomNumberGenerator,
                                              into out: inout [SWIMDirective]) {
        let checks = verdictChecks
        if myStatus != .left {
            let due = suspicions.filter { checks.nextCheck(of: $0.value).map { $0 <= t } ?? false }.keys.sorted()
            for node in due where records[node]?.status == .suspect {
                guard var timer = suspicions[node] else { continue }
                // Each check, the last one included, gets its window before the verdict.
                timer.check(until: Swift.max(timer.deadline, t + Int64(checks.needed - timer.checks) * checks.lead))
                suspicions[node] = timer
                sendCheck(of: node, rng: &rng, into: &out)
            }
        }
        let expired = suspicions.filter { $0.value.deadline <= t && ($0.value.checks >= checks.needed || myStatus == .left) }
            .keys.sorted()
        for node in expired {
            guard let record = records[node], record.status == .suspect else { suspicions[node] = nil; continue }
            let death = SWIMGossip(node: node, status: .dead, incarnation: record.incarnation, origin: myself)
            apply(death, fromSync: false, now: t, rng: &rng, into: &out)
            announce(death, rng: &rng, into: &out)
        }
    }

    /// Lodestar addition: tells `verdictFanout` random live members (not the subject) of `gossip` at once, each on a
    /// ping of its own carrying it first (the acks are not awaited). Suspicions, confirmations and deaths then spread
    /// in a round trip rather than with the next protocol period's messages. Piggybacking still carries them as well.
    mutating func announce(_ gossip: SWIMGossip, rng: inout some RandomNumberGenerator, into out: inout [SWIMDirective]) {
        // Only while this node's own probes succeed (local health multiplier 1): under heavy loss the extra pings
        // would spread false suspicions wider and faster, and the confirmation probes they set off would fail too.
        guard localHealthMultiplier == 1 else { return }
        pingRandomAliveMembers(settings.verdictFanout, except: gossip.node, first: gossip, rng: &rng, into: &out)
    }

    /// A suspect answered this node (its own probe, or a check): alive now, whatever the rumour. Its suspicion starts
    /// over rather than running out (the ping that reached it carried the verdict; its refutation should follow).
    mutating func suspectAnswered(_ node: SWIMNodeID, now t: Int64) {
        guard let timer = suspicions[node], records[node]?.status == .suspect else { return }
        startSuspicion(of: node, origin: timer.firstSuspector, now: t)
    }

    /// One check: a direct ping and up to 16 indirect probes at once, under a sequence of their own.
    private mutating func sendCheck(of node: SWIMNodeID, rng: inout some RandomNumberGenerator, into out: inout [SWIMDirective]) {
        let sequence = takeSequence()
        if verifications.count > 64 { verifications.removeAll() }  // answers that never came; bounded
        verifications[sequence] = node
        sendPing(sequence: sequence, to: node, into: &out)
        _ = askRelays(Swift.max(settings.indirectProbeCount, 16), toProbe: node, sequence: sequence, rng: &rng, into: &out)
    }
}
