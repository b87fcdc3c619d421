import Foundation
import LodestarGeo
import LodestarTopology

/// The GSLB answer engine compiled from a GeoIP database and a topology, the way gdnsd does it: the database's search
/// tree is walked once, each distinct record decoded once, and every service gets a table of address ranges, each
/// mapped to a *ranking class* — the nearest regions' edges in order, in groups of equal distance (overrides folded
/// in; the fallback region for networks without a location). Adjacent ranges of one class merge, and the merged range
/// is the ECS scope. A query is one range lookup plus a walk over its class's first groups, skipping what is down: no
/// libmaxminddb call, no great-circle math, and no cost that grows with the number of edges.
///
/// A class keeps the first `groupLimit` groups. When health leaves too few edges in them the engine answers nil and
/// the caller takes the reference path (`EdgeSelector` with a live GeoIP lookup), which also stays the test oracle.
public final class AnswerEngine: Sendable {
    /// An edge of a service with its region's coordinates.
    struct Candidate: Sendable {
        let edge: Edge
        let hasIPv4: Bool
        let hasIPv6: Bool
    }

    /// The ordered groups of equally near candidates (indices into the service's candidates) for a set of clients.
    struct RankClass: Sendable, Hashable {
        let groups: [[UInt16]]
        /// More candidates exist beyond the groups kept.
        let truncated: Bool
    }

    /// One service compiled (a class, so a query's walk holds one reference rather than copying five).
    final class CompiledService: Sendable {
        let candidates: [Candidate]
        let classes: [RankClass]
        let v4: RangeTable<UInt32>
        let v6: RangeTable<UInt128>
        /// The IPv4 classes without the IPv4 overrides, for IPv6 addresses that alias IPv4 ones (an IPv4 override does
        /// not match an IPv6 client); nil when there are no IPv4 overrides (`v4` serves).
        let v4ForAliases: RangeTable<UInt32>?
        /// For the fast choice (`chooseAmongSingles`), per class and family: when every group of the class holds one
        /// candidate, the candidates with an address of the family in rank order, as a range of `singleMembers`
        /// (`SinglesCode`); `SinglesCode.walk` for any other class.
        let singlesV4: [UInt32], singlesV6: [UInt32]
        let singleMembers: [UInt16]

        init(candidates: [Candidate], classes: [RankClass], v4: RangeTable<UInt32>, v6: RangeTable<UInt128>,
             v4ForAliases: RangeTable<UInt32>?) {
            self.candidates = candidates
            self.classes = classes
            self.v4 = v4
            self.v6 = v6
            self.v4ForAliases = v4ForAliases
            (singlesV4, singlesV6, singleMembers) = SinglesCode.build(classes: classes, candidates: candidates)
        }
    }

    /// What compiling cost, for logs and the benchmark.
    public struct Stats: Sendable, CustomStringConvertible {
        public var seconds: Double
        public var networks: Int
        public var locations: Int
        public var locationRanges: Int
        public var classes: [String: Int]
        public var serviceRanges: [String: Int]
        public var bytes: Int

        public var description: String {
            let per = classes.keys.sorted().map { "\($0): \(classes[$0] ?? 0) classes, \(serviceRanges[$0] ?? 0) ranges" }
            return String(format: "compiled in %.2f s: %d networks, %d locations in %d ranges; ", seconds, networks, locations, locationRanges)
                + per.joined(separator: "; ") + String(format: "; %.1f MiB", Double(bytes) / 1_048_576)
        }
    }

    /// Groups kept per class.
    static let groupLimit = 8

    /// Every distinct location of the database, and the tables mapping addresses to them (for the decision record).
    let locations: [GeoLocation]
    let locationsV4: RangeTable<UInt32>
    let locationsV6: RangeTable<UInt128>
    let services: [String: CompiledService]
    /// The compiled services in name order; a service's index here is its *slot* (`slot(of:)`).
    let slots: [CompiledService]
    let slotByName: [String: Int]
    public let stats: Stats

    init(locations: [GeoLocation], v4: RangeTable<UInt32>, v6: RangeTable<UInt128>, services: [String: CompiledService], stats: Stats) {
        self.locations = locations
        self.locationsV4 = v4
        self.locationsV6 = v6
        self.services = services
        let names = services.keys.sorted()
        slots = names.compactMap { services[$0] }
        slotByName = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        self.stats = stats
    }

    /// Marks "no location" in the location tables.
    static let noLocation = UInt32.max
    /// In IPv6 tables, `aliasBase + L` marks a /L prefix that points into the IPv4 space: the 32 bits after it are
    /// looked up in the IPv4 table.
    static let aliasBase: UInt32 = 0xFFFF_FF00

    /// An IPv6 address as the key of the IPv6 tables.
    @inline(__always)
    static func key(_ hi: UInt64, _ lo: UInt64) -> UInt128 { UInt128(hi) << 64 | UInt128(lo) }

    /// The IPv4 address an aliased IPv6 key stands for, and the alias prefix length; nil when `value` is no alias.
    @inline(__always)
    static func alias(_ key: UInt128, value: UInt32) -> (v4: UInt32, length: Int)? {
        guard value >= aliasBase, value != noLocation else { return nil }
        let length = Int(value - aliasBase)
        guard length + 32 <= 128 else { return nil }
        return (UInt32(truncatingIfNeeded: key >> (96 - length)), length)
    }

    /// The index of `client`'s GeoIP location (`location(at:)`), nil when the database has none.
    public func locationIndex(of client: IPAddress) -> UInt32? {
        let value: UInt32?
        switch client {
        case .v4(let v): value = locationsV4.lookup(v)?.value
        case .v6(let hi, let lo):
            let key = Self.key(hi, lo)
            value = locationsV6.lookup(key).flatMap { r in Self.alias(key, value: r.value).map { locationsV4.lookup($0.v4)?.value } ?? r.value }
        }
        guard let value, value != Self.noLocation, Int(value) < locations.count else { return nil }
        return value
    }

    /// The location at an index from `locationIndex(of:)`.
    public func location(at index: UInt32) -> GeoLocation? { Int(index) < locations.count ? locations[Int(index)] : nil }

    /// The GeoIP location of `client` (nil when the database has none).
    public func location(of client: IPAddress) -> GeoLocation? { locationIndex(of: client).flatMap(location(at:)) }

    /// The answer for `service` and `client`, or nil when the compiled classes cannot decide it (an unknown
    /// service, or too few edges up in the groups kept): then the reference path must answer.
    public func select<R: RandomNumberGenerator>(service: Service, client: IPAddress, family: EdgeSelector.Family,
                                                health: any HealthView, random: inout R) -> EdgeSelection? {
        guard let compiled = services[service.name], let (classIndex, scope) = Self.classify(client, in: compiled) else { return nil }
        var walk = ClassWalk(compiled: compiled, rankClass: compiled.classes[Int(classIndex)], family: family, health: .view(health))
        var picks: [UInt16] = []
        guard let choice = walk.choose(want: service.answerCount, failClosed: service.failClosed, scope: scope,
                                       random: &random, into: &picks) else { return nil }
        return EdgeSelection(chosen: picks.map { compiled.candidates[Int($0)].edge }, ranked: [], reason: .unlocated,
                             failedOpen: choice.failedOpen, scopePrefixLength: scope, deterministic: choice.deterministic,
                             ttlCapSeconds: choice.suspect ? EdgeSelector.suspectTTLSeconds : nil)
    }

    /// The ranking class of `client` in `compiled` and the prefix length over which it holds (the ECS scope).
    @inline(__always)
    static func classify(_ client: IPAddress, in compiled: CompiledService) -> (UInt32, Int)? {
        let classIndex: UInt32, scope: Int
        switch client {
        case .v4(let v):
            guard let r = compiled.v4.lookup(v) else { return nil }
            (classIndex, scope) = r
        case .v6(let hi, let lo):
            let key = Self.key(hi, lo)
            guard let r = compiled.v6.lookup(key) else { return nil }
            if let (v4, length) = Self.alias(key, value: r.value) {
                guard let r4 = (compiled.v4ForAliases ?? compiled.v4).lookup(v4) else { return nil }
                classIndex = r4.value
                // Inside the IPv4 range, and inside what is left of the alias when an IPv6 override cut into it.
                scope = max(length + r4.scope, r.scope)
            } else {
                (classIndex, scope) = r
            }
        }
        guard Int(classIndex) < compiled.classes.count else { return nil }
        return (classIndex, scope)
    }
}

/// Where a walk reads edge health: the live view (one call per candidate met), or a snapshot of the service's
/// candidates taken once per health generation (`AnswerEngine.HealthSnapshot`), which costs one array read.
enum HealthSource {
    /// The live view.
    case view(any HealthView)
    /// The snapshot's part for the service, by candidate index from its start.
    case snapshot(ArraySlice<EdgeHealth>)
}

/// One query's walk over a class: candidates of the asked family in order, ties drawn by weight group by group, as
/// `EdgeSelector.select` ranks them, but only as far as the answer needs, and with no allocation for groups of one.
struct ClassWalk {
    /// A candidate met on the walk.
    struct Pick {
        let index: UInt16
        let health: EdgeHealth
    }

    let compiled: AnswerEngine.CompiledService
    let rankClass: AnswerEngine.RankClass
    let family: EdgeSelector.Family
    let health: HealthSource
    private var group = 0
    /// The members of the current group not drawn yet (those of the asked family).
    private var remaining: [UInt16] = []
    private(set) var tiesDrawn = false

    init(compiled: AnswerEngine.CompiledService, rankClass: AnswerEngine.RankClass, family: EdgeSelector.Family, health: HealthSource) {
        self.compiled = compiled
        self.rankClass = rankClass
        self.family = family
        self.health = health
    }

    private func fits(_ i: UInt16) -> Bool {
        let c = compiled.candidates[Int(i)]
        return family == .v4 ? c.hasIPv4 : c.hasIPv6
    }

    private func pick(_ i: UInt16) -> Pick {
        switch health {
        case .snapshot(let s):
            return Pick(index: i, health: Int(i) < s.count ? s[s.startIndex + Int(i)] : .healthy)
        case .view(let view):
            return Pick(index: i, health: view.health(ofEdge: compiled.candidates[Int(i)].edge.id))
        }
    }

    /// A uniform draw below `bound` (> 0), by Lemire's nearly divisionless method over `random.next()`. Not the
    /// standard library's `Int.random(in:using:)`: the engine's entry points are generic over the generator and not
    /// specialized across modules, and there its helpers looked up type metadata at every call (more than the rest
    /// of a query's choice: a group of several equally near edges cost about 2.4 µs more per query than a single one).
    @inline(__always)
    static func draw<R: RandomNumberGenerator>(below bound: UInt64, _ random: inout R) -> UInt64 {
        var m = random.next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = random.next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }

    /// A uniform draw in [0, 1) with 53 random bits (see `draw(below:_:)` for why not `Double.random(in:using:)`).
    @inline(__always)
    static func unitInterval<R: RandomNumberGenerator>(_ random: inout R) -> Double {
        Double(random.next() >> 11) * 0x1p-53
    }

    /// The next ranked candidate; nil at the end of the groups kept. The members of a group of several are drawn by
    /// weight one at a time, as they are asked for (a draw without replacement, as
    /// `EdgeSelector.orderByDistanceThenWeight` orders them all: the same distribution for those taken).
    mutating func next<R: RandomNumberGenerator>(random: inout R) -> Pick? {
        if !remaining.isEmpty { return drawOne(&random) }
        while group < rankClass.groups.count {
            let members = rankClass.groups[group]
            group += 1
            if members.count == 1 {
                if fits(members[0]) { return pick(members[0]) }
                continue
            }
            for m in members where fits(m) { remaining.append(m) }
            if remaining.count > 1 { tiesDrawn = true }
            if !remaining.isEmpty { return drawOne(&random) }
        }
        return nil
    }

    /// One of `remaining`, drawn by weight, and taken out of it.
    private mutating func drawOne<R: RandomNumberGenerator>(_ random: inout R) -> Pick {
        guard remaining.count > 1 else { return pick(remaining.removeLast()) }
        let total = remaining.reduce(0) { $0 + compiled.candidates[Int($1)].edge.weight }
        var r = Int(ClassWalk.draw(below: UInt64(max(1, total)), &random))
        var at = 0
        for (k, i) in remaining.enumerated() {
            let w = compiled.candidates[Int(i)].edge.weight
            if r < w { at = k; break }
            r -= w
        }
        return pick(remaining.remove(at: at))
    }

    /// `EdgeSelector.select`'s choice over this class: the chosen candidates' indices replace `picks`' contents; nil
    /// when the choice needs candidates beyond the groups kept.
    mutating func choose<R: RandomNumberGenerator>(want: Int, failClosed: Bool, scope: Int, random: inout R,
                                                   into picks: inout [UInt16]) -> AnswerEngine.FastChoice? {
        picks.removeAll(keepingCapacity: true)
        var shedDraw = false, suspect = false
        var lookahead = nextUp(random: &random)
        while let current = lookahead, picks.count < want {
            lookahead = nextUp(random: &random)
            if case .overloaded(let shed) = current.health, shed > 0 {
                // The reference sheds only when another edge could take the query: one later, or one chosen already.
                if lookahead == nil && picks.isEmpty && rankClass.truncated { return nil }
                if lookahead != nil || !picks.isEmpty {
                    shedDraw = true
                    if ClassWalk.unitInterval(&random) < shed { continue }
                }
            }
            picks.append(current.index)
            if current.health == .suspect { suspect = true }
        }
        if picks.count < want && rankClass.truncated { return nil }
        var failedOpen = false
        if picks.isEmpty {
            // Every up edge was shed (then the first up ones answer), or none is up (fail open or closed): walk again
            // for the first ones in rank order.
            if rankClass.truncated { return nil }
            var again = ClassWalk(compiled: compiled, rankClass: rankClass, family: family, health: health)
            var firstUp = [Pick](), firstRanked = [Pick]()
            while let p = again.next(random: &random), firstUp.count < want {
                if firstRanked.count < want { firstRanked.append(p) }
                if p.health.isUp { firstUp.append(p) }
            }
            if !firstUp.isEmpty {
                picks = firstUp.map(\.index)
                suspect = firstUp.contains { $0.health == .suspect }
            } else if !failClosed {
                picks = firstRanked.map(\.index)
                failedOpen = !firstRanked.isEmpty
                suspect = false
            }
        }
        return AnswerEngine.FastChoice(scope: scope, deterministic: !(tiesDrawn || shedDraw), suspect: suspect,
                                       failedOpen: failedOpen)
    }

    /// The next candidate that is up.
    private mutating func nextUp<R: RandomNumberGenerator>(random: inout R) -> Pick? {
        while let c = next(random: &random) {
            if c.health.isUp { return c }
        }
        return nil
    }
}
