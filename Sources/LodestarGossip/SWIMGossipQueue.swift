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
    /// One pass keeping the best `max` (the queue holds an update per member: a thousand after a join; sorting it
    /// for every message made gossip quadratic in the cluster size).
    mutating func take(max: Int, limit: Int, skipping: SWIMNodeID? = nil) -> [SWIMGossip] {
        guard max > 0, !entries.isEmpty else { return [] }
        var best: [Entry] = []
        best.reserveCapacity(max + 1)
        for entry in entries.values where entry.gossip.node != skipping {
            if best.count == max, let last = best.last, !Self.precedes(entry, last) { continue }
            var i = best.count
            while i > 0 && Self.precedes(entry, best[i - 1]) { i -= 1 }
            best.insert(entry, at: i)
            if best.count > max { best.removeLast() }
        }
        var result: [SWIMGossip] = []
        result.reserveCapacity(best.count)
        for entry in best {
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

    /// The order updates go out in: state changes before payload refreshes, fewer transmits first, newer first.
    @inline(__always)
    static func precedes(_ a: Entry, _ b: Entry) -> Bool {
        if a.metadataOnly != b.metadataOnly { return !a.metadataOnly }
        if a.transmits != b.transmits { return a.transmits < b.transmits }
        return a.order > b.order
    }

    /// Transmit count of the pending update about `node`, if any (for tests).
    func transmits(of node: SWIMNodeID) -> Int? { entries[node]?.transmits }
}
