import Foundation

/// SWIM §4.2: merging one gossip update into this node's view of the membership.
extension SWIMInstance {
    /// SWIM §4.2 precedence: alive(i) beats suspect/alive(j) iff i > j (payload version breaks ties among alive);
    /// suspect(i) beats alive(j) iff i ≥ j; dead(i) beats alive/suspect(j) iff i ≥ j; left(i) beats anything but left at j ≤ i;
    /// dead and left are final for their incarnation. From a full sync, dead is downgraded to suspect (memberlist).
    mutating func apply(_ incoming: SWIMGossip, fromSync: Bool, sender: SWIMNodeID? = nil, now t: Int64,
                        rng: inout some RandomNumberGenerator, into out: inout [SWIMDirective]) {
        var update = incoming
        if fromSync {
            if update.status == .dead {
                update.status = .suspect
                if let sender { update.origin = sender }
            }
            // A full state repeats what the peer heard; it is no independent confirmation (Lifeguard §3.2).
            if update.status == .suspect, records[update.node]?.status == .suspect { return }
        }
        if update.node == myself {
            applyAboutMyself(update, from: sender, now: t)
            return
        }
        guard let record = records[update.node] else {
            introduce(update, rng: &rng, into: &out)
            return
        }
        if update.incarnation < record.incarnation {
            // Stale news (e.g. a suspicion already refuted): re-arm our newer fact so the laggard is corrected soon.
            // Without this, a member that missed the refutation's short epidemic times out a live member.
            if queue.transmits(of: update.node) == nil {
                queue.enqueue(SWIMGossip(node: update.node, status: record.status, incarnation: record.incarnation,
                                         metadata: record.status == .alive ? record.metadata : nil, origin: myself))
            }
            return
        }
        switch update.status {
        case .alive: applyAlive(update, over: record, rng: &rng, into: &out)
        case .suspect: applySuspect(update, over: record, now: t, rng: &rng, into: &out)
        case .dead, .left: applyFinal(update, over: record, rng: &rng, into: &out)
        }
    }

    /// Only an alive update introduces a member; suspect/dead/left about strangers are ignored.
    private mutating func introduce(_ update: SWIMGossip, rng: inout some RandomNumberGenerator,
                                    into out: inout [SWIMDirective]) {
        guard update.status == .alive else { return }
        let metadata = update.metadata ?? .empty
        records[update.node] = Record(status: .alive, incarnation: update.incarnation, metadata: metadata)
        known.append(update.node)
        liveOthers += 1
        probeOrder.insert(update.node, at: Int.random(in: 0...probeOrder.count, using: &rng))
        out.append(.statusChanged(SWIMStatusChange(node: update.node, previous: nil, current: .alive,
                                                   incarnation: update.incarnation)))
        if metadata != .empty { out.append(.metadataChanged(node: update.node, metadata: metadata)) }
        queue.enqueue(update)
    }

    private mutating func applyAlive(_ update: SWIMGossip, over current: Record, rng: inout some RandomNumberGenerator,
                                     into out: inout [SWIMDirective]) {
        var record = current
        if update.incarnation > record.incarnation {
            let previous = record.status
            record.incarnation = update.incarnation
            // A new incarnation may restart the payload's version counter: take its payload as is.
            var metadataChanged = false
            if let metadata = update.metadata, metadata != record.metadata {
                record.metadata = metadata
                metadataChanged = true
            }
            records[update.node] = record
            setStatus(update.node, .alive, previous: previous, incarnation: update.incarnation, rng: &rng, into: &out)
            if metadataChanged { out.append(.metadataChanged(node: update.node, metadata: record.metadata)) }
            queue.enqueue(update)
        } else if update.incarnation == record.incarnation, record.status.isLive,
                  let metadata = update.metadata, metadata.version > record.metadata.version {
            record.metadata = metadata
            records[update.node] = record
            out.append(.metadataChanged(node: update.node, metadata: record.metadata))
            queue.enqueue(update, metadataOnly: true)
        }
    }

    private mutating func applySuspect(_ update: SWIMGossip, over current: Record, now t: Int64,
                                       rng: inout some RandomNumberGenerator, into out: inout [SWIMDirective]) {
        var record = current
        switch record.status {
        case .dead, .left:
            return
        case .suspect:
            if update.incarnation > record.incarnation {
                // A suspicion of a newer incarnation is a new suspicion: its timer starts now.
                record.incarnation = update.incarnation
                records[update.node] = record
                startSuspicion(of: update.node, origin: update.origin, now: t)
                queue.enqueue(update)
            } else if suspicions[update.node]?.confirm(update.origin) == true {
                // Lifeguard §3.2: an independent confirmation shrinks the timeout and is re-gossiped.
                queue.enqueue(update)
            }
        case .alive:
            record.incarnation = update.incarnation
            records[update.node] = record
            setStatus(update.node, .suspect, previous: .alive, incarnation: update.incarnation, rng: &rng, into: &out)
            startSuspicion(of: update.node, origin: update.origin, now: t)
            queue.enqueue(update)
            // Heard from another member: this node's next probe checks it (see `nextProbeTarget`).
            if update.origin != myself, probe?.target != update.node, !confirmFirst.contains(update.node) {
                if confirmFirst.count >= Self.confirmFirstLimit { confirmFirst.removeFirst() }
                confirmFirst.append(update.node)
                hurryProbe(now: t)
            }
        }
    }

    /// Dead and left: dead applies to a live member at ≥ its incarnation or re-kills a newer one; left to anything
    /// not yet left at ≥ its incarnation.
    private mutating func applyFinal(_ update: SWIMGossip, over current: Record, rng: inout some RandomNumberGenerator,
                                     into out: inout [SWIMDirective]) {
        var record = current
        let applies: Bool
        if update.status == .left {
            applies = record.status != .left && update.incarnation >= record.incarnation
        } else {
            applies = record.status.isLive ? update.incarnation >= record.incarnation
                : (record.status == .dead && update.incarnation > record.incarnation)
        }
        guard applies else { return }
        let previous = record.status
        record.incarnation = update.incarnation
        records[update.node] = record
        setStatus(update.node, update.status, previous: previous, incarnation: update.incarnation, rng: &rng, into: &out)
        queue.enqueue(update)
    }

    /// Lifeguard §3.2: K is capped at n − 2 so small clusters can still reach the minimum timeout. Both timeouts grow
    /// with log10 of the cluster size (memberlist's `suspicionMult · log10(n)`, never below 1×): news of a refutation
    /// or a confirmation takes O(log n) periods to spread, so a fixed timeout declares live members dead in large
    /// clusters under loss. Clusters of up to ten members keep the configured timeouts.
    mutating func startSuspicion(of node: SWIMNodeID, origin: SWIMNodeID, now t: Int64) {
        let expected = Swift.min(settings.suspicionConfirmationsExpected, Swift.max(0, liveMemberCount - 2))
        // Lodestar addition: also × the local health multiplier, so a node that sees its own probes fail (overload, or
        // heavy loss) gives suspicions longer to be refuted (1 on a healthy network: detection unchanged).
        let scale = Self.suspicionScale(members: liveMemberCount) * Double(localHealthMultiplier)
        suspicions[node] = SuspicionTimer(
            origin: origin, startedAt: t, expected: expected,
            minimum: Int64(Double(settings.suspicionTimeoutMin.swimNanoseconds) * scale),
            maximum: Int64(Double(settings.suspicionTimeoutMax.swimNanoseconds) * scale))
    }

    /// max(1, log10(n)): 1 up to ten members, 1.7 at 50, 3 at 1,000, 3.7 at 5,000.
    static func suspicionScale(members: Int) -> Double { Swift.max(1, log10(Double(Swift.max(1, members)))) }

    /// SWIM §4.2 refutation: suspicion (or a claim of death/leave) about this node at ≥ its incarnation is answered by
    /// a higher incarnation; Lifeguard §3.1 counts a refuted suspicion against local health.
    mutating func applyAboutMyself(_ update: SWIMGossip, from sender: SWIMNodeID?, now t: Int64) {
        guard myStatus != .left else { return }
        if update.status != .alive, update.incarnation < incarnation, let sender {
            // The sender still holds an already refuted verdict: owe it our current incarnation directly.
            correctionsOwed.insert(sender)
            return
        }
        switch update.status {
        case .alive:
            // A newer incarnation of "me" exists only if an earlier life of this node outlived a restart.
            guard update.incarnation > incarnation else { return }
            incarnation = update.incarnation + 1
        case .suspect, .dead, .left:
            guard update.incarnation >= incarnation else { return }
            incarnation = update.incarnation + 1
            if update.status == .suspect { adjustHealth(by: 1) }
            // Lodestar addition: the teller hears the refutation on our reply, and for as long as a suspicion could
            // last every message this node sends carries it first, so a member that talks to us cannot miss it
            // however busy the gossip queue is (the buddy system, turned round).
            if let sender { correctionsOwed.insert(sender) }
            refutingUntil = t + Int64(Double(settings.suspicionTimeoutMax.swimNanoseconds)
                * Self.suspicionScale(members: liveMemberCount) * Double(localHealthMultiplier))
        }
        queue.enqueue(selfGossip())
    }

    mutating func setStatus(_ node: SWIMNodeID, _ status: SWIMMemberStatus, previous: SWIMMemberStatus,
                                    incarnation: UInt64, rng: inout some RandomNumberGenerator, into out: inout [SWIMDirective]) {
        records[node]?.status = status
        if status != .suspect { suspicions[node] = nil }
        if previous.isLive && !status.isLive { liveOthers -= 1 }
        if !previous.isLive && status.isLive {
            liveOthers += 1
            probeOrder.insert(node, at: Int.random(in: 0...probeOrder.count, using: &rng))
        }
        if previous != status {
            out.append(.statusChanged(SWIMStatusChange(node: node, previous: previous, current: status, incarnation: incarnation)))
        }
    }
}
