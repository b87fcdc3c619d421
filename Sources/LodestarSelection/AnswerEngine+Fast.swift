import LodestarGeo
import LodestarTopology

/// The allocation-free side of the engine, for the DNS server's fast path: services by slot, health read from a
/// snapshot taken once per health generation, and the chosen edges written as candidate indices to a caller's buffer.
extension AnswerEngine {
    /// Every compiled service's candidates' health at one health generation (`HealthView.generation`).
    public final class HealthSnapshot: Sendable {
        /// The generation the snapshot was taken at (read before the edges, so a change during the build moves past it).
        public let generation: UInt64
        /// Every slot's candidates in one array: slot `s`'s at `flat[starts[s]..<starts[s + 1]]`.
        let flat: [EdgeHealth]
        let starts: [Int]

        init(generation: UInt64, perSlot: [[EdgeHealth]]) {
            self.generation = generation
            flat = perSlot.flatMap { $0 }
            starts = perSlot.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1.count) }
        }

        /// The number of slots the snapshot holds.
        var slotCount: Int { starts.count - 1 }

        /// Slot `slot`'s candidates (a valid slot: below `slotCount`).
        func slot(_ slot: Int) -> ArraySlice<EdgeHealth> { flat[starts[slot]..<starts[slot + 1]] }
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
        guard slot >= 0, slot < slots.count, slot < health.slotCount else { return nil }
        let compiled = slots[slot]
        guard let (classIndex, scope) = Self.classify(client, in: compiled) else { return nil }
        if let choice = compiled.chooseAmongSingles(Int(classIndex), family: family, want: want, scope: scope, health: health,
                                                    slot: slot, into: &picks) {
            return choice
        }
        var walk = ClassWalk(compiled: compiled, rankClass: compiled.classes[Int(classIndex)], family: family,
                             health: .snapshot(health.slot(slot)))
        return walk.choose(want: want, failClosed: failClosed, scope: scope, random: &random, into: &picks)
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

    /// What `choose` reads after the index word (`indexWordHint`), to prefetch once that word is in cache: the range
    /// entries its search starts from, or, when the word names the class alone, the class's entry of the walk-free
    /// lists. nil when there is nothing to fetch (or an unknown slot). A hint only: never read through it.
    public func secondHint(slot: Int, client: IPAddress, family: EdgeSelector.Family) -> PrefetchHint? {
        guard slot >= 0, slot < slots.count else { return nil }
        let compiled = slots[slot]
        let hint: RangeTableHint
        switch client {
        case .v4(let v): hint = compiled.v4.secondHint(for: v)
        case .v6(let hi, let lo): hint = compiled.v6.secondHint(for: Self.key(hi, lo))
        }
        switch hint {
        case .none: return nil
        case .entries(let p, let bytes): return PrefetchHint(address: p, bytes: bytes)
        case .value(let classIndex):
            // An IPv6 table's value may be an alias of IPv4 ranges rather than a class: no second look there.
            guard case .v4 = client else { return nil }
            let codes = family == .v4 ? compiled.singlesV4 : compiled.singlesV6
            guard Int(classIndex) < codes.count else { return nil }
            return codes.withUnsafeBufferPointer {
                $0.baseAddress.map { PrefetchHint(address: UnsafeRawPointer($0 + Int(classIndex)), bytes: 4) }
            }
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

/// A class's entry in `CompiledService.singlesV4`/`singlesV6`: bit 31 the class is truncated, bits 8–30 where its
/// fitting candidates start in `singleMembers`, bits 0–7 how many there are.
enum SinglesCode {
    /// The class has a group of several candidates (or too many to code): the walk decides.
    static let walk = UInt32.max

    static func build(classes: [AnswerEngine.RankClass], candidates: [AnswerEngine.Candidate])
        -> (v4: [UInt32], v6: [UInt32], members: [UInt16]) {
        var v4: [UInt32] = [], v6: [UInt32] = [], members: [UInt16] = []
        v4.reserveCapacity(classes.count)
        v6.reserveCapacity(classes.count)
        for rankClass in classes {
            guard rankClass.groups.allSatisfy({ $0.count == 1 }) else {
                v4.append(walk)
                v6.append(walk)
                continue
            }
            for family in [EdgeSelector.Family.v4, .v6] {
                let fitting = rankClass.groups.compactMap { group -> UInt16? in
                    let c = Int(group[0])
                    guard c < candidates.count, family == .v4 ? candidates[c].hasIPv4 : candidates[c].hasIPv6 else { return nil }
                    return group[0]
                }
                var code = walk
                if fitting.count <= 0xFF, members.count < 1 << 23 {
                    code = (rankClass.truncated ? 1 << 31 : 0) | UInt32(members.count) << 8 | UInt32(fitting.count)
                    members += fitting
                }
                if family == .v4 { v4.append(code) } else { v6.append(code) }
            }
        }
        return (v4, v6, members)
    }
}

extension AnswerEngine.CompiledService {
    /// `ClassWalk.choose`'s answer for class `classIndex` in its most common case, with no walk: every group of the
    /// class holds one candidate (so nothing is drawn), and none met is shedding; the first `want` candidates of the
    /// family that are up, health from `slot`'s part of `health`. nil when the case does not hold or nothing is up
    /// (failing open or closed): then the walk decides, from the start. A method of the service, so its arrays and the
    /// snapshot's are read borrowed, with no reference counting on the way.
    func chooseAmongSingles(_ classIndex: Int, family: EdgeSelector.Family, want: Int, scope: Int,
                            health: AnswerEngine.HealthSnapshot, slot: Int,
                            into picks: inout [UInt16]) -> AnswerEngine.FastChoice? {
        let codes = family == .v4 ? singlesV4 : singlesV6
        guard classIndex >= 0, classIndex < codes.count, slot >= 0, slot < health.slotCount else { return nil }
        let code = codes[classIndex]
        guard code != SinglesCode.walk else { return nil }
        let truncated = code >> 31 != 0
        var k = Int(code >> 8 & 0x7F_FFFF)
        let end = k + Int(code & 0xFF)
        let base = health.starts[slot], limit = health.starts[slot + 1]
        guard end <= singleMembers.count, limit <= health.flat.count else { return nil }
        while !picks.isEmpty { picks.removeLast() }  // a few entries; `removeAll` takes a generic path
        var suspect = false
        while k < end, picks.count < want {
            let c = Int(singleMembers[k])
            k += 1
            guard base + c < limit else { return nil }
            let h = health.flat[base + c]
            if case .overloaded(let shed) = h, shed > 0 { return nil }
            guard h.isUp else { continue }
            picks.append(UInt16(c))
            if h == .suspect { suspect = true }
        }
        guard !picks.isEmpty, picks.count == want || !truncated else { return nil }
        return AnswerEngine.FastChoice(scope: scope, deterministic: true, suspect: suspect, failedOpen: false)
    }
}
