import Foundation
import LodestarGeo
import LodestarTopology

extension AnswerEngine {
    /// Compiles `topology`'s services against `database` (see the type's documentation). Throws `GeoTreeError` when
    /// the database's search tree is corrupt.
    public static func compile(database: GeoDatabase, topology: Topology) throws -> AnswerEngine {
        let engine = try build(database: database, topology: topology)
        GeoDatabase.returnFreedMemory()  // the walk's temporary tables go back to the system
        return engine
    }

    /// One walk over the tree: each network's record is looked up (decoded on first sight), and its range appended
    /// to every table at once — the client areas, and each service's classes — so nothing as large as the tree is
    /// held in between.
    private static func build(database: GeoDatabase, topology: Topology) throws -> AnswerEngine {
        let started = Date()
        var records = RecordTable(database: database)
        var builders = topology.services.compactMap { ServiceBuilder(service: $0, topology: topology) }
        var areas4 = RangeTable<UInt32>(), areas6 = RangeTable<UInt128>()
        var networks = 0, ranges = 0
        var last4: UInt32?, last6: UInt32?
        var classified = 0  // records every builder has classified
        try database.forEachNetwork(v4: true) { n in
            networks += 1
            if networks % 1_024 == 0 { database.releasePages() }
            let record = records.index(of: n.offset)
            guard record != last4 else { return }  // the same record as the network before: the ranges go on
            last4 = record
            ranges += 1
            if records.points.count > classified { classifyNew(&builders, &classified, records) }
            let start = UInt32(truncatingIfNeeded: n.start)
            areas4.append(start: start, value: record == noLocation ? record : records.area[Int(record)])
            for i in builders.indices { builders[i].append4(start: start, record: record) }
        }
        try database.forEachNetwork(v4: false) { n in
            networks += 1
            if networks % 1_024 == 0 { database.releasePages() }
            let record = n.ipv4Alias ? aliasBase + UInt32(n.length) : records.index(of: n.offset)
            guard record != last6 else { return }
            last6 = record
            ranges += 1
            if records.points.count > classified { classifyNew(&builders, &classified, records) }
            areas6.append(start: n.start, value: record >= aliasBase ? record : records.area[Int(record)])
            for i in builders.indices { builders[i].append6(start: n.start, record: record) }
        }
        database.releasePages()
        records.releaseLookups()  // the walk is over: its lookup tables go before the ranges are copied to size
        areas4.finish()
        areas6.finish()
        var services = [String: CompiledService]()
        for b in builders { services[b.service.name] = b.finish() }
        let areas = records.areas()
        let bytes = areas4.byteCount + areas6.byteCount + areas.count * MemoryLayout<GeoLocation>.stride
            + services.values.reduce(0) { $0 + $1.v4.byteCount + $1.v6.byteCount + ($1.v4ForAliases?.byteCount ?? 0)
                + $1.classes.reduce(0) { $0 + 16 * $1.groups.count } }
        let stats = Stats(seconds: Date().timeIntervalSince(started), networks: networks, locations: records.points.count,
                          locationRanges: ranges, classes: services.mapValues(\.classes.count),
                          serviceRanges: services.mapValues { $0.v4.count + $0.v6.count }, bytes: bytes)
        return AnswerEngine(locations: areas, v4: areas4, v6: areas6, services: services, stats: stats)
    }

    /// Gives every builder the class of each record met since the last call (once per record and service, not per
    /// range: the walk's per-range step then only reads the builders' own arrays).
    private static func classifyNew(_ builders: inout [ServiceBuilder], _ classified: inout Int, _ records: RecordTable) {
        while classified < records.points.count {
            let point = Ranker.Prepared(records.points[classified])  // its trigonometry once for every service
            for i in builders.indices { builders[i].classify(point) }
            classified += 1
        }
    }
}

/// One service being compiled: its candidates and ranker, the class of each record met so far, and its tables.
struct ServiceBuilder {
    let service: Service
    let regionsById: [String: Region]
    let candidates: [AnswerEngine.Candidate]
    var ranker: Ranker
    /// Per record index: its class (filled as records are met, `classify`).
    var classOf: [UInt32] = []
    let unlocated: UInt32
    var v4 = RangeTable<UInt32>()
    var v6 = RangeTable<UInt128>()

    /// Nil when the service has more candidates than a class can index (it then takes the reference path).
    init?(service: Service, topology: Topology) {
        var regionsById = [String: Region]()
        for r in topology.regions { regionsById[r.id] = r }
        var edgesById = [String: Edge]()
        for e in topology.edges { edgesById[e.id] = e }
        var candidates = [AnswerEngine.Candidate]()
        var points = [String: RegionPoint]()
        var order = [String]()
        for id in service.edges {
            guard let edge = edgesById[id], let region = regionsById[edge.region] else { continue }
            let index = UInt16(truncatingIfNeeded: candidates.count)
            candidates.append(AnswerEngine.Candidate(edge: edge, hasIPv4: edge.addresses.contains { $0.isIPv4 },
                                                     hasIPv6: edge.addresses.contains { !$0.isIPv4 }))
            if points[region.id] == nil { order.append(region.id) }
            points[region.id, default: RegionPoint(latitude: region.latitude, longitude: region.longitude)].members.append(index)
        }
        guard candidates.count < Int(UInt16.max) else { return nil }
        self.service = service
        self.regionsById = regionsById
        self.candidates = candidates
        var ranker = Ranker(points: order.compactMap { points[$0] }, candidateCount: candidates.count)
        if let id = service.fallbackRegion, let r = regionsById[id] {
            unlocated = ranker.classIndex(latitude: r.latitude, longitude: r.longitude)
        } else {
            unlocated = ranker.intern(AnswerEngine.RankClass(groups: candidates.indices.map { [UInt16($0)] }, truncated: false))
        }
        self.ranker = ranker
    }

    /// Classifies the next record, at `point` (records are distinct points, or one point in several areas).
    mutating func classify(_ point: Ranker.Prepared) {
        classOf.append(ranker.classIndex(of: point))
    }

    /// The class of a classified record (an IPv4 alias marker stays one).
    @inline(__always)
    func value(of record: UInt32) -> UInt32 {
        if record >= AnswerEngine.aliasBase { return record == AnswerEngine.noLocation ? unlocated : record }
        return classOf[Int(record)]
    }

    mutating func append4(start: UInt32, record: UInt32) {
        v4.append(start: start, value: value(of: record))
    }

    mutating func append6(start: UInt128, record: UInt32) {
        v6.append(start: start, value: value(of: record))
    }

    /// The tables with the overrides painted over (the first override in the list wins where they overlap: the
    /// last is painted first).
    func finish() -> AnswerEngine.CompiledService {
        var ranker = self.ranker
        var v4 = self.v4, v6 = self.v6
        v4.finish()
        v6.finish()
        let unpainted = v4
        for o in service.overrides.reversed() {
            guard let r = regionsById[o.region] else { continue }
            let value = ranker.classIndex(latitude: r.latitude, longitude: r.longitude)
            switch o.prefix.address {
            case .v4(let a):
                let mask: UInt32 = o.prefix.length == 0 ? 0 : ~UInt32(0) << (32 - o.prefix.length)
                v4 = v4.painting(first: a & mask, last: a | ~mask, value: value)
            case .v6(let hi, let lo):
                let a = AnswerEngine.key(hi, lo)
                let mask: UInt128 = o.prefix.length == 0 ? 0 : ~UInt128(0) << (128 - o.prefix.length)
                v6 = v6.painting(first: a & mask, last: a | ~mask, value: value)
            }
        }
        let hasV4Overrides = service.overrides.contains { $0.prefix.address.isIPv4 }
        return AnswerEngine.CompiledService(candidates: candidates, classes: ranker.classes, v4: v4, v6: v6,
                                            v4ForAliases: hasV4Overrides ? unpainted : nil)
    }
}

/// The distinct records met while walking a database (each decoded once): for each, the point that ranks edges and
/// the client area (country and continent) the decision record names. Records at the same point of the same
/// country are one.
struct RecordTable {
    let database: GeoDatabase
    /// Per record: its point.
    private(set) var points: [Ranker.Coordinate] = []
    /// Per record: its area's index.
    private(set) var area: [UInt32] = []
    private var byOffset: [UInt32: UInt32] = [:]
    private var byKey: [Key: UInt32] = [:]
    private var areaIndex: [AreaKey: UInt32] = [:]
    /// Per area: the sum of its records' coordinates and their count (the area's point is their mean).
    private var areaSums: [(key: AreaKey, latitude: Double, longitude: Double, count: Double)] = []

    struct AreaKey: Hashable {
        let country: String?
        let continent: String?
    }

    /// A distinct record: its point and its area's index (24 bytes, where the area's strings would take 56).
    struct Key: Hashable {
        let point: Ranker.Coordinate
        let area: UInt32
    }

    init(database: GeoDatabase) { self.database = database }

    mutating func index(of offset: UInt32?) -> UInt32 {
        guard let offset else { return AnswerEngine.noLocation }
        if let known = byOffset[offset] { return known }
        var index = AnswerEngine.noLocation
        if let loc = database.location(atOffset: offset) {
            let point = Ranker.Coordinate(latitude: loc.latitude, longitude: loc.longitude)
            let key = Key(point: point, area: areaOf(AreaKey(country: loc.country, continent: loc.continent)))
            if let same = byKey[key] {
                index = same
            } else {
                index = UInt32(points.count)
                points.append(point)
                area.append(key.area)
                areaSums[Int(key.area)].latitude += point.latitude
                areaSums[Int(key.area)].longitude += point.longitude
                areaSums[Int(key.area)].count += 1
                byKey[key] = index
            }
        }
        byOffset[offset] = index
        return index
    }

    /// Forgets the tables that map offsets and points to records (only the walk needs them).
    mutating func releaseLookups() {
        byOffset = [:]
        byKey = [:]
    }

    private mutating func areaOf(_ key: AreaKey) -> UInt32 {
        if let known = areaIndex[key] { return known }
        let i = UInt32(areaSums.count)
        areaSums.append((key, 0, 0, 0))
        areaIndex[key] = i
        return i
    }

    /// The client areas, each at the mean of its records' points.
    func areas() -> [GeoLocation] {
        areaSums.map { a in
            GeoLocation(latitude: a.latitude / max(1, a.count), longitude: a.longitude / max(1, a.count),
                        country: a.key.country, continent: a.key.continent)
        }
    }
}

/// A region of a service as the ranking sees it: its coordinates (and unit vector) and its candidates.
struct RegionPoint {
    let point: Ranker.Prepared
    var members: [UInt16] = []

    init(latitude: Double, longitude: Double) {
        point = Ranker.Prepared(Ranker.Coordinate(latitude: latitude, longitude: longitude))
    }
}

/// Ranks a service's regions for a point as `EdgeSelector` does (haversine kilometres, rounded; equal distances form
/// one group, members in configuration order), keeping the first `AnswerEngine.groupLimit` groups, and interns the
/// resulting classes. The nearest regions are found by dot product of unit vectors (monotonic in distance), so a
/// point costs one pass over the regions and a few haversines.
struct Ranker {
    let points: [RegionPoint]
    let candidateCount: Int
    private(set) var classes: [AnswerEngine.RankClass] = []
    private var interned: [AnswerEngine.RankClass: UInt32] = [:]
    /// `rank`'s working lists, kept between calls (a compile ranks every location once per service).
    private var top: [(dot: Double, index: Int)] = []
    private var near: [(km: Double, first: UInt16, index: Int)] = []

    struct Coordinate: Hashable {
        let latitude: Double
        let longitude: Double
    }

    init(points: [RegionPoint], candidateCount: Int) {
        self.points = points
        self.candidateCount = candidateCount
    }

    static func unit(latitude: Double, longitude: Double) -> (Double, Double, Double) {
        let la = latitude * .pi / 180, lo = longitude * .pi / 180
        return (cos(la) * cos(lo), cos(la) * sin(lo), sin(la))
    }

    mutating func intern(_ c: AnswerEngine.RankClass) -> UInt32 {
        // Most services have a handful of classes: comparing with each is cheaper than hashing the groups.
        if classes.count <= Self.scanLimit {
            if let i = classes.firstIndex(of: c) { return UInt32(i) }
        } else if let known = interned[c] {
            return known
        }
        let index = UInt32(classes.count)
        classes.append(c)
        interned[c] = index
        return index
    }

    /// Classes interned by comparison with each before the table is used.
    static let scanLimit = 8

    /// A point ready to be ranked by every service: its unit vector and the cosine of its latitude.
    struct Prepared {
        let latitude: Double
        let longitude: Double
        let cosLatitude: Double
        let x: Double, y: Double, z: Double

        init(_ c: Coordinate) {
            latitude = c.latitude
            longitude = c.longitude
            cosLatitude = GreatCircle.cosLatitude(c.latitude)
            (x, y, z) = Ranker.unit(latitude: c.latitude, longitude: c.longitude)
        }

        /// Monotonic in the distance to `other` (larger is nearer).
        @inline(__always)
        func dot(_ other: Prepared) -> Double { other.x * x + other.y * y + other.z * z }

        /// `GreatCircle.distanceKm` to `other`, with the cosines already taken.
        @inline(__always)
        func distanceKm(to other: Prepared) -> Double {
            GreatCircle.distanceKm(latitude1: latitude, longitude1: longitude, cosLatitude1: cosLatitude,
                                   latitude2: other.latitude, longitude2: other.longitude, cosLatitude2: other.cosLatitude)
        }
    }

    /// The class of a record's point (`ServiceBuilder` keeps it per record: no lookup by coordinate, whose table
    /// would hold every point once per service).
    mutating func classIndex(of point: Prepared) -> UInt32 {
        intern(rank(point))
    }

    /// The class of a region's point (a fallback region, an override's region).
    mutating func classIndex(latitude: Double, longitude: Double) -> UInt32 {
        classIndex(of: Prepared(Coordinate(latitude: latitude, longitude: longitude)))
    }

    /// The class of one point.
    mutating func rank(_ point: Prepared) -> AnswerEngine.RankClass {
        let limit = AnswerEngine.groupLimit
        var k = min(points.count, limit * 2 + 4)
        while true {
            // The k regions with the largest dot product (the nearest), then their exact distances.
            top.removeAll(keepingCapacity: true)
            for (i, p) in points.enumerated() {
                let d = p.point.dot(point)
                guard top.count < k || d > top[top.count - 1].dot else { continue }
                let at = top.firstIndex { $0.dot < d } ?? top.count
                top.insert((d, i), at: at)
                if top.count > k { top.removeLast() }
            }
            near.removeAll(keepingCapacity: true)
            for t in top {
                let p = points[t.index]
                near.append((point.distanceKm(to: p.point).rounded(), p.members.first ?? 0, t.index))
            }
            near.sort { $0.km != $1.km ? $0.km < $1.km : $0.first < $1.first }
            var groups = [[UInt16]]()
            var lastKm = -1.0
            for n in near {
                if n.km != lastKm {
                    if groups.count == limit { break }
                    groups.append([])
                    lastKm = n.km
                }
                groups[groups.count - 1].append(contentsOf: points[n.index].members)
            }
            let everything = k >= points.count
            // Regions left out are at least as far as the farthest examined one: safe when that one is clearly
            // beyond the last group kept (1 km of margin for rounding between the two formulas).
            let farthest = near.last?.km ?? 0
            if everything || (groups.count == limit && farthest > lastKm + 1) {
                for i in groups.indices { groups[i].sort() }
                let kept = groups.reduce(0) { $0 + $1.count }
                return AnswerEngine.RankClass(groups: groups, truncated: kept < candidateCount)
            }
            k = min(points.count, k * 2)
        }
    }
}
