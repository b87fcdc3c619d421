/// SWIM §4.1 dissemination buffer: one pending update per member, each piggybacked a bounded number of times.
struct SWIMGossipQueue: Sendable {
    struct Entry: Sendable {
        var gossip: SWIMGossip
        var transmits: Int
        /// Payload-only refreshes yield to state changes when space is short.
        var metadataOnly: Bool
        var order: UInt64
    }

    private(set) var entries: [SWIMNodeID: Entry] = [:]
    private var counter: UInt64 = 0

    var count: Int { entries.count }

    /// Queues `gossip`, replacing (invalidating) any older update about the same member.
    mutating func enqueue(_ gossip: SWIMGossip, metadataOnly: Bool = false) {
        counter += 1
        entries[gossip.node] = Entry(gossip: gossip, transmits: 0, metadataOnly: metadataOnly, order: counter)
    }

    /// Takes up to `max` updates (state changes first, then fewest transmits, then newest), counting a transmit on each
    /// and dropping those that reached `limit`. `skipping` is left out (it is already on the message).
    mutating func take(max: Int, limit: Int, skipping: SWIMNodeID? = nil) -> [SWIMGossip] {
        guard max > 0, !entries.isEmpty else { return [] }
        var candidates = Array(entries.values)
        if let skipping { candidates.removeAll { $0.gossip.node == skipping } }
        candidates.sort { a, b in
            if a.metadataOnly != b.metadataOnly { return !a.metadataOnly }
            if a.transmits != b.transmits { return a.transmits < b.transmits }
            return a.order > b.order
        }
        var result: [SWIMGossip] = []
        result.reserveCapacity(Swift.min(max, candidates.count))
        for entry in candidates.prefix(max) {
            result.append(entry.gossip)
            let transmits = entry.transmits + 1
            if transmits >= limit {
                entries[entry.gossip.node] = nil
            } else {
                entries[entry.gossip.node]?.transmits = transmits
            }
        }
        return result
    }

    /// Transmit count of the pending update about `node`, if any (for tests).
    func transmits(of node: SWIMNodeID) -> Int? { entries[node]?.transmits }
}
