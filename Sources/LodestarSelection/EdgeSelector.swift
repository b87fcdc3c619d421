import LodestarGeo
import LodestarTopology

/// Why the selector placed the client where it did.
public enum PlacementReason: Sendable, Equatable {
    /// A service override pinned the client's prefix to a region.
    case override(IPPrefix, region: String)
    /// GeoIP located the client.
    case geo(GeoLocation)
    /// GeoIP had no location; the service's fallback region stood in.
    case fallback(region: String)
    /// No location and no fallback region: edges in configuration order.
    case unlocated
}

/// One candidate edge as ranked for a client (for answers and for decision traces).
public struct RankedEdge: Sendable, Equatable {
    public var edge: Edge
    public var distanceKm: Double
    public var health: EdgeHealth
}

/// The outcome of choosing edges for one query.
public struct EdgeSelection: Sendable, Equatable {
    /// Edges to answer with, nearest first.
    public var chosen: [Edge]
    /// Every candidate with the address family asked for, ranked nearest first.
    public var ranked: [RankedEdge]
    public var reason: PlacementReason
    /// True when no candidate was healthy and the service failed open (answering all candidates).
    public var failedOpen: Bool
    /// Prefix length over which this answer holds for the client address (RFC 7871 §7.2.1 SCOPE), before capping at the source prefix.
    public var scopePrefixLength: Int
    /// False when a weighted random draw decided which edges (or their order) were chosen: such an answer must not be reused.
    public var deterministic: Bool
    /// A TTL ceiling for this answer (an answered edge is suspect), nil when the service's TTL stands.
    public var ttlCapSeconds: Int? = nil
}

/// Chooses the nearest healthy edges of a service for a client location (pure; no sockets, clocks or files).
public struct EdgeSelector: Sendable {
    /// The TTL of an answer naming a suspect edge: clients ask again soon, so a dead edge leaves their caches fast.
    public static let suspectTTLSeconds = 5

    /// Address family of the answer being built.
    public enum Family: Sendable { case v4, v6 }

    /// An edge with its region's coordinates resolved once, at construction.
    struct Candidate: Sendable {
        let edge: Edge
        let latitude: Double
        let longitude: Double
        let hasIPv4: Bool
        let hasIPv6: Bool
    }

    private let regions: [String: Region]
    /// Each service's edges in configuration order, by service name (one lookup per query, not one per edge).
    private let candidates: [String: [Candidate]]

    public init(topology: Topology) {
        var r = [String: Region]()
        for region in topology.regions { r[region.id] = region }
        var e = [String: Edge]()
        for edge in topology.edges { e[edge.id] = edge }
        var c = [String: [Candidate]]()
        for service in topology.services {
            c[service.name] = service.edges.compactMap { id in
                guard let edge = e[id], let region = r[edge.region] else { return nil }
                return Candidate(edge: edge, latitude: region.latitude, longitude: region.longitude,
                                 hasIPv4: edge.addresses.contains { $0.isIPv4 }, hasIPv6: edge.addresses.contains { !$0.isIPv4 })
            }
        }
        regions = r
        candidates = c
    }

    /// Ranks and picks edges of `service` for a client at `client` (the ECS address or the source address) whose
    /// GeoIP result is `geo`. Distance decides; equally distant edges (same region) are ordered by weighted
    /// random draw using `random`, so weights split load among them. Down edges are skipped; an overloaded edge is
    /// skipped for its shed fraction of queries (by random draw) when another edge is up; a suspect edge is answered
    /// with a TTL of at most `suspectTTLSeconds`. When no edge is up the service fails open (all candidates) unless it
    /// is fail-closed.
    public func select<R: RandomNumberGenerator>(service: Service, client: IPAddress, geo: GeoLookup,
                                                family: Family, health: any HealthView, random: inout R) -> EdgeSelection {
        let (origin, reason, baseScope) = place(service: service, client: client, geo: geo)
        let list = candidates[service.name] ?? []
        var ranked = [RankedEdge]()
        ranked.reserveCapacity(list.count)
        for c in list where family == .v4 ? c.hasIPv4 : c.hasIPv6 {
            var distance = 0.0
            if let origin {
                distance = GreatCircle.distanceKm(latitude1: origin.latitude, longitude1: origin.longitude,
                                                  latitude2: c.latitude, longitude2: c.longitude)
            }
            ranked.append(RankedEdge(edge: c.edge, distanceKm: distance, health: health.health(ofEdge: c.edge.id)))
        }
        var tiesDrawn = false
        if origin != nil {
            ranked = Self.orderByDistanceThenWeight(ranked, random: &random, tiesDrawn: &tiesDrawn)
        }
        let up = ranked.filter { $0.health.isUp }
        var healthy: [RankedEdge] = []
        healthy.reserveCapacity(min(up.count, service.answerCount))
        for (i, r) in up.enumerated() where healthy.count < service.answerCount {
            if case .overloaded(let shed) = r.health, shed > 0, up.count - i - 1 > 0 || !healthy.isEmpty {
                tiesDrawn = true  // a draw decides: the answer must not be reused
                if Double.random(in: 0..<1, using: &random) < shed { continue }
            }
            healthy.append(r)
        }
        if healthy.isEmpty { healthy = Array(up.prefix(service.answerCount)) }
        var chosen: [Edge]
        var failedOpen = false
        if healthy.isEmpty {
            if service.failClosed {
                chosen = []
            } else {
                chosen = ranked.prefix(service.answerCount).map(\.edge)
                failedOpen = !ranked.isEmpty
            }
        } else {
            chosen = healthy.map(\.edge)
        }
        let scope = Self.scope(client: client, base: baseScope, overrides: service.overrides)
        let suspect = healthy.contains { $0.health == .suspect }
        return EdgeSelection(chosen: chosen, ranked: ranked, reason: reason, failedOpen: failedOpen, scopePrefixLength: scope,
                             deterministic: !tiesDrawn, ttlCapSeconds: suspect ? Self.suspectTTLSeconds : nil)
    }

    /// Where the client is, why, and the prefix length GeoIP (or the override) vouches for.
    private func place(service: Service, client: IPAddress, geo: GeoLookup) -> ((latitude: Double, longitude: Double)?, PlacementReason, Int) {
        if let o = service.overrides.first(where: { $0.prefix.contains(client) }), let region = regions[o.region] {
            return ((region.latitude, region.longitude), .override(o.prefix, region: o.region), o.prefix.length)
        }
        if let loc = geo.location {
            return ((loc.latitude, loc.longitude), .geo(loc), geo.prefixLength)
        }
        if let id = service.fallbackRegion, let region = regions[id] {
            return ((region.latitude, region.longitude), .fallback(region: id), geo.prefixLength)
        }
        return (nil, .unlocated, geo.prefixLength)
    }

    /// Stable sort by distance (rounded to 1 km so same-region edges tie); ties ordered by weighted random draw.
    /// `tiesDrawn` is set when some group of equally near edges had more than one member (the order came from the draw).
    static func orderByDistanceThenWeight<R: RandomNumberGenerator>(_ list: [RankedEdge], random: inout R,
                                                                    tiesDrawn: inout Bool) -> [RankedEdge] {
        // Sort indices, not the (large) elements; the index breaks ties so the sort is stable.
        let order = list.indices.sorted { a, b in
            let da = list[a].distanceKm.rounded(), db = list[b].distanceKm.rounded()
            return da != db ? da < db : a < b
        }
        var out = [RankedEdge]()
        out.reserveCapacity(list.count)
        var i = 0
        while i < order.count {
            let d = list[order[i]].distanceKm.rounded()
            var j = i + 1
            while j < order.count, list[order[j]].distanceKm.rounded() == d { j += 1 }
            if j - i == 1 {
                out.append(list[order[i]])  // a region of one edge: nothing to draw
                i = j
                continue
            }
            tiesDrawn = true
            var group = order[i..<j].map { list[$0] }
            while !group.isEmpty {
                let total = group.reduce(0) { $0 + $1.edge.weight }
                var pick = Int.random(in: 0..<max(1, total), using: &random)
                var index = 0
                for (k, item) in group.enumerated() {
                    if pick < item.edge.weight { index = k; break }
                    pick -= item.edge.weight
                }
                out.append(group.remove(at: index))
            }
            i = j
        }
        return out
    }

    /// RFC 7871 §7.2.1: the widest prefix over which this answer stays the same. Starts from the GeoIP network
    /// (or override) length and narrows it so that no more specific override inside that network, which the
    /// client does not fall in, is covered by the scope.
    public static func scope(client: IPAddress, base: Int, overrides: [RegionOverride]) -> Int {
        var scope = base
        for o in overrides where o.prefix.address.isIPv4 == client.isIPv4 && o.prefix.length > scope {
            // Only overrides inside the client's current scope network matter.
            guard client.masked(to: scope) == o.prefix.address.masked(to: scope) else { continue }
            if o.prefix.contains(client) {
                scope = max(scope, o.prefix.length)
            } else {
                scope = max(scope, min(o.prefix.length, commonPrefixLength(client, o.prefix.address) + 1))
            }
        }
        return min(scope, client.bitWidth)
    }

    /// Number of leading bits two addresses of one family share.
    static func commonPrefixLength(_ a: IPAddress, _ b: IPAddress) -> Int {
        switch (a, b) {
        case (.v4(let x), .v4(let y)):
            return (x ^ y).leadingZeroBitCount
        case (.v6(let h1, let l1), .v6(let h2, let l2)):
            let hx = h1 ^ h2
            return hx != 0 ? hx.leadingZeroBitCount : 64 + (l1 ^ l2).leadingZeroBitCount
        default:
            return 0
        }
    }
}
