import LodestarGeo
import LodestarTopology

/// The allocation-free side of the engine, for the DNS server's fast path: services by slot, health read from a
/// snapshot taken once per health generation, and the chosen edges written as candidate indices to a caller's buffer.
extension AnswerEngine {
    /// Every compiled service's candidates' health at one health generation (`HealthView.generation`).
    public final class HealthSnapshot: Sendable {
        /// The generation the snapshot was taken at (read before the edges, so a change during the build moves past it).
        public let generation: UInt64
        let perSlot: [[EdgeHealth]]

        init(generation: UInt64, perSlot: [[EdgeHealth]]) {
            self.generation = generation
            self.perSlot = perSlot
        }
    }

    /// What a walk over a class decided besides the edges (written as candidate indices to the caller's buffer).
    public struct FastChoice: Sendable {
        /// The ECS scope: the merged prefix of the client's class.
        public var scope: Int
        /// No random draw decided the edges or their order (the answer may be cached).
        public var deterministic: Bool
        /// An answered edge is suspect: cap the TTL at `EdgeSelector.suspectTTLSeconds`.
        public var suspect: Bool
        /// No edge was up and the service failed open.
        public var failedOpen: Bool
    }

    /// The slot of a compiled service (nil: the service was not compiled).
    public func slot(of serviceName: String) -> Int? { slotByName[serviceName] }

    /// Takes the health of every compiled candidate from `view`.
    public func healthSnapshot(of view: any HealthView) -> HealthSnapshot {
        let generation = view.generation
        let perSlot = slots.map { compiled in compiled.candidates.map { view.health(ofEdge: $0.edge.id) } }
        return HealthSnapshot(generation: generation, perSlot: perSlot)
    }

    /// The choice for `client` in service `slot`, with the chosen candidates' indices in `picks` (nearest first); nil
    /// when the compiled classes cannot decide it (the reference path must answer). Allocates nothing unless a group
    /// of equally near edges has to be drawn.
    public func choose<R: RandomNumberGenerator>(slot: Int, client: IPAddress, family: EdgeSelector.Family, want: Int,
                                                failClosed: Bool, health: HealthSnapshot, random: inout R,
                                                into picks: inout [UInt16]) -> FastChoice? {
        guard slot >= 0, slot < slots.count, slot < health.perSlot.count else { return nil }
        let compiled = slots[slot]
        guard let (classIndex, scope) = Self.classify(client, in: compiled) else { return nil }
        let rankClass = compiled.classes[Int(classIndex)], snapshot = health.perSlot[slot]
        if let choice = Self.chooseAmongSingles(compiled, rankClass, family: family, want: want, scope: scope,
                                                 health: snapshot, into: &picks) {
            return choice
        }
        var walk = ClassWalk(compiled: compiled, rankClass: rankClass, family: family, health: .snapshot(snapshot))
        return walk.choose(want: want, failClosed: failClosed, scope: scope, random: &random, into: &picks)
    }

    /// `ClassWalk.choose`'s answer in its most common case, with no walk state: every group it meets holds one
    /// candidate, and neither shedding nor failing open takes part. It takes the first `want` candidates that fit
    /// `family` and are up, then looks one up candidate further, as the walk does (a tie drawn there would make the
    /// choice non-deterministic). nil when the case does not hold: then the walk decides, from the start.
    private static func chooseAmongSingles(_ compiled: CompiledService, _ rankClass: RankClass, family: EdgeSelector.Family,
                                           want: Int, scope: Int, health: [EdgeHealth],
                                           into picks: inout [UInt16]) -> FastChoice? {
        while !picks.isEmpty { picks.removeLast() }  // a few entries; `removeAll` takes a generic path
        var suspect = false
        for members in rankClass.groups {
            guard members.count == 1 else { return nil }
            let c = Int(members[0])
            guard c < compiled.candidates.count, c < health.count else { return nil }
            guard family == .v4 ? compiled.candidates[c].hasIPv4 : compiled.candidates[c].hasIPv6 else { continue }
            let h = health[c]
            if case .overloaded(let shed) = h, shed > 0 { return nil }
            guard h.isUp else { continue }
            if picks.count == want { break }  // the walk's look-ahead: one more up candidate, and no tie before it
            picks.append(UInt16(c))
            if h == .suspect { suspect = true }
        }
        guard !picks.isEmpty, picks.count == want || !rankClass.truncated else { return nil }
        return FastChoice(scope: scope, deterministic: true, suspect: suspect, failedOpen: false)
    }

    /// The address of the first word `choose` reads for `client` in service `slot` (its table's index word), so that a
    /// batch of queries can prefetch them all before the first is answered: on a large database each is otherwise a
    /// cache miss. nil for an unknown slot. A prefetch hint only (`RangeTable.indexWordHint`): never read through it.
    public func indexWordHint(slot: Int, client: IPAddress) -> UnsafeRawPointer? {
        guard slot >= 0, slot < slots.count else { return nil }
        switch client {
        case .v4(let v): return slots[slot].v4.indexWordHint(for: v)
        case .v6(let hi, let lo): return slots[slot].v6.indexWordHint(for: Self.key(hi, lo))
        }
    }

    /// The edge behind a candidate index of service `slot` (as written by `choose`).
    public func edge(slot: Int, candidate: UInt16) -> Edge? {
        guard slot >= 0, slot < slots.count, Int(candidate) < slots[slot].candidates.count else { return nil }
        return slots[slot].candidates[Int(candidate)].edge
    }

    /// The number of candidates of service `slot`.
    public func candidateCount(slot: Int) -> Int { slot >= 0 && slot < slots.count ? slots[slot].candidates.count : 0 }
}
