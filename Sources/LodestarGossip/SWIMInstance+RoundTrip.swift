/// Lodestar addition: probe timeouts that follow each member's round trip, so members far apart (gossip between
/// regions, round trips of 100–300 ms) are not probed with a timeout shorter than the path. SWIM and Lifeguard use one
/// fixed timeout for every member; with the runtime's 90 ms direct timeout every probe of a member 200 ms away was
/// answered late, which raised the local health multiplier to about 2.5 and slowed detection everywhere. Near
/// members (round trips under about 55 ms) keep the configured timeouts exactly.
extension SWIMInstance {
    /// The smoothed round trip to `node` (TCP's SRTT: 7/8 old + 1/8 sample), nil before it answered a probe directly.
    /// A sample is the time from a direct ping to its ack; the first ping, the second one and the relays each have a
    /// sequence of their own, so a late or relayed answer is never taken for a long path.
    public func roundTrip(to node: SWIMNodeID) -> Duration? {
        roundTrips[node].map { .nanoseconds($0) }
    }

    mutating func recordRoundTrip(_ sample: Int64, to node: SWIMNodeID) {
        guard sample >= 0 else { return }
        // One entry per member probed, like `records` (members are never forgotten either).
        roundTrips[node] = roundTrips[node].map { $0 + (sample - $0) / 8 } ?? sample
    }

    /// 1.5 × the smoothed round trip plus 5 ms: long enough for an answer on that path, jitter included.
    private func pathTimeout(to node: SWIMNodeID) -> Int64 {
        (roundTrips[node] ?? 0) * 3 / 2 + 5_000_000
    }

    /// How long a relay waits for `node`'s ack before it answers nack: the configured indirect timeout, or longer for
    /// a member whose round trip needs it.
    func relayTimeout(to node: SWIMNodeID) -> Int64 {
        Swift.max(scaled(settings.indirectPingTimeout), pathTimeout(to: node))
    }

    /// The direct deadline and the end of a probe of `node` started at `t`. The end is the period's end (SWIM §3.1)
    /// unless the path is too long for it: then the probe, and the next one with it, waits for the direct timeout,
    /// the relays' timeout and one more round trip for their answers.
    func probeTimes(of node: SWIMNodeID, from t: Int64) -> (direct: Int64, ends: Int64) {
        let direct = t + Swift.max(scaled(settings.pingTimeout), pathTimeout(to: node))
        let relayed = direct + relayTimeout(to: node) + (roundTrips[node] ?? 0)
        return (direct, Swift.max(t + scaled(settings.probeInterval), relayed))
    }
}

extension SWIMInstance.Probe {
    /// When the ping that `sequence` acknowledges was sent: `.some(nil)` for a relayed answer (no path measured), nil
    /// when `sequence` is not this probe's.
    func sentAt(ofAck sequence: UInt64) -> Int64?? {
        if sequence == self.sequence { return .some(startedAt) }
        guard indirectSent else { return nil }
        if sequence == secondSequence { return .some(directDeadline) }
        if sequence == relaySequence { return .some(nil) }
        return nil
    }
}
