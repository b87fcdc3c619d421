/// SWIM §4.3: which member the next probe goes to (the round-robin, and the heard suspects that go between), and the
/// random members that relays, announcements and leaves go to.
extension SWIMInstance {
    /// SWIM §4.3: round-robin over a shuffled list, so each live member is probed within n periods.
    mutating func nextProbeTarget(rng: inout some RandomNumberGenerator) -> SWIMNodeID? {
        // Lodestar addition to Lifeguard §3.2: a suspicion heard from another member is checked by this node's next
        // probe (direct, then k indirect), so a real crash gathers its independent confirmations within about one
        // period instead of waiting for each member's round-robin to come round. Same probes, reordered. Only every
        // other probe: in a large cluster under heavy loss suspicions are heard faster than probes are sent, and
        // taking them all starved the round-robin (5,000 members at 30 % loss never probed a crashed member).
        if !lastProbeConfirmed {
            while !confirmFirst.isEmpty {
                let suspect = confirmFirst.removeFirst()
                if records[suspect]?.status == .suspect {
                    lastProbeConfirmed = true
                    return suspect
                }
            }
        }
        lastProbeConfirmed = false
        var attempts = 0
        while attempts <= probeOrder.count + 1 {
            attempts += 1
            if probeIndex >= probeOrder.count {
                probeOrder = known.filter { records[$0]?.status.isLive == true }
                probeOrder.shuffle(using: &rng)
                probeIndex = 0
                if probeOrder.isEmpty { return nil }
            }
            let candidate = probeOrder[probeIndex]
            probeIndex += 1
            if records[candidate]?.status.isLive == true { return candidate }
        }
        return nil
    }

    /// Lodestar addition: when a suspicion heard from another member waits in `confirmFirst` and this period's probe is
    /// answered, the next probe (the check of that suspect) starts now rather than at the period's end, but never
    /// sooner than half a period after the last one began: a crash gathers its confirmations up to a period sooner,
    /// and probes never come more than twice as often as the round-robin's. Only at local health multiplier 1: a node
    /// whose own probes fail keeps Lifeguard's slower pace.
    mutating func hurryProbe(now t: Int64) {
        guard probe == nil, myStatus != .left, !lastProbeConfirmed, nextProbeAt > t, localHealthMultiplier == 1,
              confirmFirst.contains(where: { records[$0]?.status == .suspect }) else { return }
        let earliest = probeStartedAt == Int64.min ? t : probeStartedAt + scaled(settings.probeInterval) / 2
        nextProbeAt = Swift.max(t, Swift.min(nextProbeAt, earliest))
    }

    /// Pings up to `count` random alive members other than `except`, each on a ping of its own with `first` ahead of
    /// its piggybacked gossip (the acks are not awaited): news that should not wait for the next probe.
    mutating func pingRandomAliveMembers(_ count: Int, except: SWIMNodeID? = nil, first: SWIMGossip? = nil,
                                         rng: inout some RandomNumberGenerator, into out: inout [SWIMDirective]) {
        let candidates = known.filter { $0 != except && records[$0]?.status == .alive }
        for target in pickRandom(count, from: candidates, rng: &rng) {
            send(.ping(sequence: takeSequence()), to: target, first: first, into: &out)
        }
    }

    func pickRandom(_ count: Int, from candidates: [SWIMNodeID], rng: inout some RandomNumberGenerator) -> [SWIMNodeID] {
        guard count > 0, !candidates.isEmpty else { return [] }
        var pool = candidates
        let take = Swift.min(count, pool.count)
        for i in 0..<take {
            pool.swapAt(i, Int.random(in: i..<pool.count, using: &rng))
        }
        return Array(pool[0..<take])
    }
}
