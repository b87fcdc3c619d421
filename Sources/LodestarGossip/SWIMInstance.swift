/// SWIM membership of one node as a pure state machine: inputs (ticks, messages, join/leave) in, directives out.
///
/// Time (`now`, monotonic, from any fixed origin) and randomness (`rng`) are passed in, so a shell can drive it
/// from a UDP transport and a test from a virtual clock. No locks: the owner serialises calls.
/// Call `onTick` at (or after) `nextTickDeadline`, and `onMessage` for every authenticated incoming message.
public struct SWIMInstance: Sendable {
    /// The knobs this instance runs with.
    public let settings: SWIMSettings
    /// This node.
    public let myself: SWIMNodeID
    /// SWIM §4.2: this node's incarnation; only this node increases it (to refute suspicion).
    public internal(set) var incarnation: UInt64 = 0
    /// This node's own state: `alive` until `leave`.
    public private(set) var myStatus: SWIMMemberStatus = .alive
    /// This node's own payload as last set with `updateMetadata`.
    public private(set) var myMetadata: SWIMMetadata = .empty

    struct Record: Sendable {
        var status: SWIMMemberStatus
        var incarnation: UInt64
        var metadata: SWIMMetadata
    }

    /// The probe of the current protocol period (SWIM §3.1).
    struct Probe: Sendable {
        var target: SWIMNodeID
        var sequence: UInt64
        var startedAt: Int64
        var directDeadline: Int64
        var endsAt: Int64
        var indirectSent = false
        /// The second direct ping's and the relays' sequences (each its own, so an ack tells which path answered).
        var secondSequence: UInt64 = 0
        var relaySequence: UInt64 = 0
        var expectedNacks = 0
        var nacks = 0
    }

    /// A ping-req this node is serving for another prober (SWIM §3.1, Lifeguard §3.1 nack).
    private struct Relay: Sendable {
        var prober: SWIMNodeID
        var proberSequence: UInt64
        var target: SWIMNodeID
        var deadline: Int64
    }

    var records: [SWIMNodeID: Record] = [:]
    /// Every member ever known, in the order learnt: deterministic iteration (dictionary order is per-process).
    var known: [SWIMNodeID] = []
    var suspicions: [SWIMNodeID: SuspicionTimer] = [:]
    var probeOrder: [SWIMNodeID] = []
    /// Suspects this node heard of from others and has not probed since: every other probe takes the oldest of them,
    /// so the round-robin keeps going however many suspicions are heard (at most `confirmFirstLimit` are kept).
    var confirmFirst: [SWIMNodeID] = []
    /// True when the last probe came from `confirmFirst`: the next one comes from the round-robin.
    var lastProbeConfirmed = false
    /// How many heard suspects `confirmFirst` keeps (the oldest goes first).
    static let confirmFirstLimit = 16
    var probeIndex = 0
    var probe: Probe?
    private var relays: [UInt64: Relay] = [:]
    private var nextSequence: UInt64 = 1
    var nextProbeAt: Int64
    /// When the probe of the current period started (a heard suspicion may start the next one early; see `hurryProbe`).
    var probeStartedAt = Int64.min
    private var nextSyncAt: Int64
    /// Lifeguard §3.1 local health score, 0 … S−1; the multiplier is score + 1.
    private var healthScore = 0
    /// Number of other members that are alive or suspect.
    var liveOthers = 0
    var queue = SWIMGossipQueue()
    /// Members that told us a refuted verdict about ourselves; the next message to each carries our alive update.
    var correctionsOwed: Set<SWIMNodeID> = []
    /// Checks of suspects before a verdict (sequence → suspect), answered by an ack with that sequence.
    var verifications: [UInt64: SWIMNodeID] = [:]
    /// Smoothed round trip to each member that answered a probe (see SWIMInstance+RoundTrip.swift).
    var roundTrips: [SWIMNodeID: Int64] = [:]
    /// After refuting a verdict about itself, until this time every message carries this node's alive update.
    var refutingUntil = Int64.min
    /// The time of the input being handled (onTick/onMessage), for decisions deep in sending.
    private var clock = Int64.min

    /// Creates the instance; `seeds` (e.g. from the topology) start as alive at incarnation 0 and the first probe is due at `now`.
    public init(settings: SWIMSettings = SWIMSettings(), myself: SWIMNodeID, seeds: [SWIMNodeID], now: Duration) {
        self.settings = settings
        self.myself = myself
        let t = now.swimNanoseconds
        self.nextProbeAt = t
        self.nextSyncAt = t + settings.fullSyncInterval.swimNanoseconds
        for seed in seeds where seed != myself && records[seed] == nil {
            records[seed] = Record(status: .alive, incarnation: 0, metadata: .empty)
            known.append(seed)
            liveOthers += 1
        }
        probeOrder = known
        probeIndex = probeOrder.count  // forces a shuffle before the first probe
    }

    // MARK: - Queries

    /// Lifeguard §3.1 local health multiplier (1 = healthy … `localHealthMaxMultiplier`).
    public var localHealthMultiplier: Int { healthScore + 1 }

    /// This node's view of `node` (itself included).
    public func member(_ node: SWIMNodeID) -> SWIMMember? {
        if node == myself {
            return SWIMMember(node: myself, status: myStatus, incarnation: incarnation, metadata: myMetadata)
        }
        return records[node].map { SWIMMember(node: node, status: $0.status, incarnation: $0.incarnation, metadata: $0.metadata) }
    }

    /// Every other member known, dead and left ones included, in the order they were learnt.
    public var members: [SWIMMember] { known.compactMap { member($0) } }

    /// n of SWIM §4.1: live members including this node.
    public var liveMemberCount: Int { liveOthers + 1 }

    /// SWIM §4.1: how many times an update is piggybacked: λ·⌈log10(n+1)⌉.
    public var retransmitLimit: Int {
        let digits = Double(liveMemberCount + 1).log10Ceiling
        return Swift.max(1, settings.gossipRetransmitMultiplier * digits)
    }

    /// Updates waiting to be piggybacked.
    public var pendingGossipCount: Int { queue.count }

    /// How many times the pending update about `node` has been sent so far, if one is pending.
    public func pendingGossipTransmits(about node: SWIMNodeID) -> Int? { queue.transmits(of: node) }

    /// The suspicion deadline this node holds for `node`, if it suspects it (Lifeguard §3.2).
    public func suspicionDeadline(of node: SWIMNodeID) -> Duration? {
        suspicions[node].map { .nanoseconds($0.deadline) }
    }

    /// The earliest time at which `onTick` has work to do; the shell MUST call `onTick` no later than this after any input.
    public var nextTickDeadline: Duration? {
        var deadline = Int64.max
        for relay in relays.values { deadline = Swift.min(deadline, relay.deadline) }
        for timer in suspicions.values { deadline = Swift.min(deadline, timer.deadline) }
        if myStatus != .left {
            let checks = verdictChecks
            for timer in suspicions.values {
                if let at = checks.nextCheck(of: timer) { deadline = Swift.min(deadline, at) }
            }
            for timer in suspicions.values where !timer.recheckSent {
                deadline = Swift.min(deadline, timer.recheckAt)
            }
            if let probe {
                deadline = Swift.min(deadline, probe.indirectSent ? probe.endsAt : probe.directDeadline)
            } else {
                deadline = Swift.min(deadline, nextProbeAt)
            }
            deadline = Swift.min(deadline, nextSyncAt)
        }
        return deadline == Int64.max ? nil : .nanoseconds(deadline)
    }

    // MARK: - Inputs

    /// Advances timers: relay nacks, suspicion timeouts (SWIM §4.2), the probe of this period (SWIM §3.1) and full sync.
    public mutating func onTick(now: Duration, rng: inout some RandomNumberGenerator) -> [SWIMDirective] {
        let t = now.swimNanoseconds
        clock = t
        var out: [SWIMDirective] = []

        // Lifeguard §3.1: a relay that heard no ack answers nack so the prober can tell its own health.
        let expiredRelays = relays.filter { $0.value.deadline <= t }.keys.sorted()
        for sequence in expiredRelays {
            guard let relay = relays.removeValue(forKey: sequence) else { continue }
            send(.nack(sequence: relay.proberSequence), to: relay.prober, into: &out)
        }

        checkSuspectsAndDeclareDead(now: t, rng: &rng, into: &out)

        guard myStatus != .left else { return out }

        // Lodestar addition to Lifeguard §3.2: a lingering suspicion gets one direct ping carrying the verdict; a live
        // suspect answers with its newer incarnation, so a refutation this node missed cannot turn into a false death.
        let rechecks = suspicions.filter { !$0.value.recheckSent && $0.value.recheckAt <= t }.keys.sorted()
        for node in rechecks {
            suspicions[node]?.recheckSent = true
            sendPing(sequence: takeSequence(), to: node, into: &out)
        }

        if var current = probe {
            if !current.indirectSent && t >= current.directDeadline {
                // Lodestar addition: a second direct ping goes with the indirect probes, as memberlist sends its TCP
                // fallback ping; on a lossy network it halves the probes that fail on the direct path. It and the
                // relays have sequences of their own, so an ack tells which path answered (SWIMInstance+RoundTrip).
                current.secondSequence = takeSequence()
                current.relaySequence = takeSequence()
                sendPing(sequence: current.secondSequence, to: current.target, into: &out)
                current.expectedNacks = sendIndirectProbes(for: current, rng: &rng, into: &out)
                current.indirectSent = true
                probe = current
            }
            if t >= current.endsAt {
                probe = nil
                probeFailed(current, now: t, rng: &rng, into: &out)
            }
        }
        if probe == nil && t >= nextProbeAt {
            startProbe(now: t, rng: &rng, into: &out)
        }

        if t >= nextSyncAt {
            nextSyncAt = t + settings.fullSyncInterval.swimNanoseconds
            let candidates = known.filter { records[$0]?.status == .alive }
            if let peer = candidates.randomElement(using: &rng) {
                send(.sync(state: fullState(), isReply: false), to: peer, into: &out)
            }
        }
        return out
    }

    /// Handles one authenticated message from `sender`: merges its gossip (SWIM §4.2), then answers it.
    public mutating func onMessage(_ message: SWIMMessage, from sender: SWIMNodeID, now: Duration,
                                   rng: inout some RandomNumberGenerator) -> [SWIMDirective] {
        let t = now.swimNanoseconds
        clock = t
        var out: [SWIMDirective] = []
        for update in message.gossip {
            apply(update, fromSync: false, sender: sender, now: t, rng: &rng, into: &out)
        }
        switch message.kind {
        case .ping(let sequence):
            send(.ack(sequence: sequence), to: sender, into: &out)

        case .pingRequest(let sequence, let target):
            if target == myself {
                send(.ack(sequence: sequence), to: sender, into: &out)
            } else if myStatus != .left {
                let relaySequence = takeSequence()
                relays[relaySequence] = Relay(
                    prober: sender, proberSequence: sequence, target: target,
                    deadline: t + relayTimeout(to: target))
                sendPing(sequence: relaySequence, to: target, into: &out)
            }

        case .ack(let sequence):
            if let current = probe, let sentAt = current.sentAt(ofAck: sequence) {
                probe = nil
                // A direct answer measures the path; a relayed one (sentAt nil) does not.
                if let sentAt { recordRoundTrip(t - sentAt, to: current.target) }
                // Lifeguard §3.1: a successful probe lowers the score. Lodestar addition: one answered only after the
                // direct timeout (second ping or a relay) raises it — the direct round trip failed. Below about 25 %
                // loss the direct answers win and the multiplier stays 1; above, it grows, so probes slow down and
                // suspicions wait longer while the network drops this much.
                adjustHealth(by: current.indirectSent ? 1 : -1)
                suspectAnswered(current.target, now: t)
                hurryProbe(now: t)
            } else if let relay = relays.removeValue(forKey: sequence) {
                // Lodestar addition: the forwarded ack carries what the target just told us about itself, so a prober
                // checking a suspect through relays hears its refutation as surely as over the direct path.
                send(.ack(sequence: relay.proberSequence), to: relay.prober, first: aliveRecord(of: relay.target), into: &out)
            }

        case .nack(let sequence):
            if var current = probe, current.indirectSent, current.relaySequence == sequence {
                current.nacks += 1
                probe = current
            }

        case .sync(let state, let isReply):
            for update in state {
                apply(update, fromSync: true, sender: sender, now: t, rng: &rng, into: &out)
            }
            if !isReply {
                send(.sync(state: fullState(), isReply: true), to: sender, into: &out)
            }
        }
        if case .ack(let sequence) = message.kind, let node = verifications.removeValue(forKey: sequence) {
            suspectAnswered(node, now: t)  // the check before the verdict was answered
        }
        if correctionsOwed.contains(sender) {
            // No reply went back (ack, nack, sync reply): carry the correction on a ping of its own.
            sendPing(sequence: takeSequence(), to: sender, into: &out)
        }
        return out
    }

    /// Announces this node (alive, next incarnation after a leave) and asks `contacts` for a full-state exchange.
    public mutating func join(contacts: [SWIMNodeID], now: Duration, rng: inout some RandomNumberGenerator) -> [SWIMDirective] {
        var out: [SWIMDirective] = []
        if myStatus == .left {
            incarnation += 1
            myStatus = .alive
            nextProbeAt = now.swimNanoseconds
        }
        queue.enqueue(selfGossip())
        for contact in contacts where contact != myself {
            send(.sync(state: fullState(), isReply: false), to: contact, into: &out)
        }
        return out
    }

    /// Leaves gracefully: marks itself `left` (final for this incarnation), tells `leaveFanout` live members directly,
    /// and keeps piggybacking the news on acks until the shell shuts it down. Stops probing.
    public mutating func leave(now: Duration, rng: inout some RandomNumberGenerator) -> [SWIMDirective] {
        guard myStatus != .left else { return [] }
        myStatus = .left
        probe = nil
        queue.enqueue(selfGossip())
        var out: [SWIMDirective] = []
        pingRandomAliveMembers(settings.leaveFanout, rng: &rng, into: &out)
        return out
    }

    /// Publishes a new payload (version + 1) at the current incarnation; it spreads as a payload-only alive update.
    public mutating func updateMetadata(_ bytes: [UInt8]) {
        myMetadata = SWIMMetadata(version: myMetadata.version + 1, bytes: bytes)
        queue.enqueue(selfGossip(), metadataOnly: true)
    }

    /// Publishes a new payload and tells up to `fanout` live members at once by pinging them with it piggybacked
    /// (a drain should reach the DNS tier now, not when probing next comes by).
    public mutating func updateMetadataAndAnnounce(_ bytes: [UInt8], fanout: Int,
                                                  rng: inout some RandomNumberGenerator) -> [SWIMDirective] {
        updateMetadata(bytes)
        var out: [SWIMDirective] = []
        pingRandomAliveMembers(fanout, rng: &rng, into: &out)
        return out
    }

    /// Sends this node's current state and payload straight to `targets` (an edge's DNS nodes), each on a ping of its
    /// own carrying it first, so they have a new payload one message later however busy dissemination is (payload
    /// refreshes yield to membership changes in the gossip queue). Everyone else still gets it by gossip.
    public mutating func sendPayload(to targets: [SWIMNodeID]) -> [SWIMDirective] {
        var out: [SWIMDirective] = []
        let mine = selfGossip()
        for target in targets where target != myself && records[target]?.status.isLive == true {
            send(.ping(sequence: takeSequence()), to: target, first: mine, into: &out)
        }
        return out
    }

    // MARK: - Probing (SWIM §3.1, §4.3); the choice of target is in SWIMInstance+ProbeOrder.swift

    private mutating func startProbe(now t: Int64, rng: inout some RandomNumberGenerator, into out: inout [SWIMDirective]) {
        nextProbeAt = t + scaled(settings.probeInterval)
        probeStartedAt = t
        guard let target = nextProbeTarget(rng: &rng) else { return }
        let sequence = takeSequence()
        let (direct, ends) = probeTimes(of: target, from: t)
        nextProbeAt = ends  // the period's end, or later for a far member (never sooner)
        probe = Probe(target: target, sequence: sequence, startedAt: t, directDeadline: direct, endsAt: nextProbeAt)
        sendPing(sequence: sequence, to: target, into: &out)
    }

    /// SWIM §3.1: ask k random alive members (not the target) to probe it; returns how many were asked.
    private mutating func sendIndirectProbes(for probe: Probe, rng: inout some RandomNumberGenerator,
                                             into out: inout [SWIMDirective]) -> Int {
        // Lodestar addition: k × the local health multiplier (at most 16). The multiplier grows only when this node's
        // direct probes keep failing (heavy loss or overload); more paths then keep live members from being suspected.
        let k = Swift.min(settings.indirectProbeCount * localHealthMultiplier, Swift.max(settings.indirectProbeCount, 16))
        return askRelays(k, toProbe: probe.target, sequence: probe.relaySequence, rng: &rng, into: &out)
    }

    /// SWIM §3.1 ping-req: asks up to `count` random alive members (not the target) to probe `target` under
    /// `sequence`; returns how many were asked.
    mutating func askRelays(_ count: Int, toProbe target: SWIMNodeID, sequence: UInt64,
                            rng: inout some RandomNumberGenerator, into out: inout [SWIMDirective]) -> Int {
        let candidates = known.filter { $0 != target && records[$0]?.status == .alive }
        let relays = pickRandom(count, from: candidates, rng: &rng)
        for relay in relays {
            send(.pingRequest(sequence: sequence, target: target), to: relay, into: &out)
        }
        return relays.count
    }

    /// SWIM §4.2 + Lifeguard §3.1: a failed probe raises the local health score by the missing nacks
    /// (or by one without relays), then suspects the target.
    private mutating func probeFailed(_ failed: Probe, now t: Int64, rng: inout some RandomNumberGenerator,
                                      into out: inout [SWIMDirective]) {
        let missing = failed.expectedNacks > 0 ? Swift.max(0, failed.expectedNacks - failed.nacks) : 1
        adjustHealth(by: missing)
        guard let record = records[failed.target], record.status.isLive else { return }
        let suspicion = SWIMGossip(node: failed.target, status: .suspect, incarnation: record.incarnation, origin: myself)
        let counted = suspicions[failed.target]?.suspectors.contains(myself) == true
        apply(suspicion, fromSync: false, now: t, rng: &rng, into: &out)
        // Lifeguard §3.2 relies on the suspect hearing of it quickly: tell it directly (one extra ping, ack unused).
        if records[failed.target]?.status == .suspect {
            sendPing(sequence: takeSequence(), to: failed.target, into: &out)
            // A new suspicion, or this node's confirmation of one it heard: straight to a few members.
            if !counted { announce(suspicion, rng: &rng, into: &out) }
        }
    }

    // MARK: - Sending

    mutating func sendPing(sequence: UInt64, to target: SWIMNodeID, into out: inout [SWIMDirective]) {
        send(.ping(sequence: sequence), to: target, into: &out)
    }

    /// Lifeguard "buddy system" (memberlist), extended to every message: whatever this node sends to a member it
    /// holds suspect or dead carries that verdict first, so a live member learns it and refutes at once (SWIM §4.2).
    private func verdict(about target: SWIMNodeID) -> SWIMGossip? {
        guard let record = records[target] else { return nil }
        switch record.status {
        case .suspect:
            return SWIMGossip(node: target, status: .suspect, incarnation: record.incarnation,
                              origin: suspicions[target]?.firstSuspector ?? myself)
        case .dead:
            return SWIMGossip(node: target, status: .dead, incarnation: record.incarnation, origin: myself)
        case .alive, .left:
            return nil
        }
    }

    /// A member's current record as an alive update, if it is alive.
    private func aliveRecord(of node: SWIMNodeID) -> SWIMGossip? {
        guard let record = records[node], record.status == .alive else { return nil }
        return SWIMGossip(node: node, status: .alive, incarnation: record.incarnation, metadata: record.metadata, origin: myself)
    }

    mutating func send(_ kind: SWIMMessage.Kind, to target: SWIMNodeID, first: SWIMGossip? = nil,
                               into out: inout [SWIMDirective]) {
        var gossip: [SWIMGossip] = []
        var room = settings.maxGossipPerMessage
        if let first, room > 1 {
            gossip.append(first)
            room -= 1
        }
        var buddy = verdict(about: target)
        if buddy == nil, correctionsOwed.remove(target) != nil || clock < refutingUntil {
            buddy = selfGossip()
        }
        if let buddy, room > 0 {
            gossip.append(buddy)
            room -= 1
        }
        gossip += queue.take(max: room, limit: retransmitLimit, skipping: buddy?.node ?? first?.node)
        out.append(.send(SWIMMessage(kind, gossip: gossip), to: target))
    }

    func selfGossip() -> SWIMGossip {
        SWIMGossip(node: myself, status: myStatus, incarnation: incarnation,
                   metadata: myStatus == .alive ? myMetadata : nil, origin: myself)
    }

    /// memberlist push-pull: this node plus every known member.
    private func fullState() -> [SWIMGossip] {
        var state = [selfGossip()]
        state.reserveCapacity(known.count + 1)
        for node in known {
            guard let record = records[node] else { continue }
            let origin = record.status == .suspect ? (suspicions[node]?.firstSuspector ?? myself) : myself
            state.append(SWIMGossip(node: node, status: record.status, incarnation: record.incarnation,
                                    metadata: record.status == .alive ? record.metadata : nil, origin: origin))
        }
        return state
    }

    // MARK: - Helpers

    mutating func takeSequence() -> UInt64 {
        defer { nextSequence &+= 1 }
        return nextSequence
    }

    /// Lifeguard §3.1: keeps the score within 0 … S−1.
    mutating func adjustHealth(by delta: Int) {
        healthScore = Swift.min(Swift.max(0, healthScore + delta), Swift.max(0, settings.localHealthMaxMultiplier - 1))
    }

    /// Lifeguard §3.1: `duration` × local health multiplier, in nanoseconds.
    func scaled(_ duration: Duration) -> Int64 {
        duration.swimNanoseconds * Int64(localHealthMultiplier)
    }
}

extension Double {
    /// ⌈log10(self)⌉ for self ≥ 1, as memberlist's retransmit limit uses.
    fileprivate var log10Ceiling: Int {
        var digits = 0
        var value = 1.0
        while value < self {
            value *= 10
            digits += 1
        }
        return digits
    }
}
