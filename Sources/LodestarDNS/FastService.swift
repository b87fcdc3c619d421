import Glibc
import LodestarSelection
import LodestarTopology

/// A GSLB service the fast path answers: the name as lower-cased wire bytes, its engine slot and what the answer
/// needs of its record (a class: a query holds one reference). Or an alias of one: a name whose only record is a
/// CNAME to a service's name, answered as the full path chases it — the CNAME, then the service's records.
final class FastService: Sendable {
    let wire: [UInt8]
    let name: DNSName
    let slot: Int
    let answerCount: Int
    let failClosed: Bool
    let ttl: UInt32
    /// Every candidate's IPv4 addresses, one after the other, and where each candidate's begin (one more entry than
    /// candidates); the same for IPv6 (two words an address). Flat, so writing an answer copies no edge.
    let v4: [UInt32], v4Bounds: [Int]
    let v6: [UInt64], v6Bounds: [Int]
    /// An alias's CNAME record as the full path encodes it after the question (the name asked in lower case); empty for
    /// a service.
    let alias: [UInt8]
    /// The owner of each address record: a pointer to the question's name, or for an alias to the CNAME's target.
    let owner: UInt16

    var isAlias: Bool { !alias.isEmpty }

    init(wire: [UInt8], name: DNSName, slot: Int, service: Service, engine: AnswerEngine) {
        self.wire = wire
        self.name = name
        self.slot = slot
        alias = []
        owner = 0xC00C
        answerCount = service.answerCount
        failClosed = service.failClosed
        ttl = service.ttlSeconds
        var v4: [UInt32] = [], v6: [UInt64] = [], v4Bounds = [0], v6Bounds = [0]
        for c in 0..<engine.candidateCount(slot: slot) {
            for ip in engine.edge(slot: slot, candidate: UInt16(c))?.addresses ?? [] {
                switch ip {
                case .v4(let v): v4.append(v)
                case .v6(let hi, let lo): v6.append(contentsOf: [hi, lo])
                }
            }
            v4Bounds.append(v4.count)
            v6Bounds.append(v6.count)
        }
        (self.v4, self.v4Bounds, self.v6, self.v6Bounds) = (v4, v4Bounds, v6, v6Bounds)
    }

    /// `name`, whose only record is `cname` (to `target`'s name), as an alias of `target`; nil when the full path's
    /// encoding of the chase is not the one `fastRespond` writes (the CNAME owned by the question, the target's
    /// records by a pointer into the CNAME's RDATA).
    init?(alias name: DNSName, cname: ResourceRecord, of target: FastService) {
        guard case .cname(let spelled) = cname.rdata else { return nil }
        // The full path's answer for an A question in lower case, with one address record, encoded as it encodes one.
        let renamed = ResourceRecord(name: name, type: cname.type, rclass: cname.rclass, ttl: cname.ttl, rdata: cname.rdata)
        let probe = ResourceRecord(name: spelled, type: RRType.a, rclass: RRClass.in, ttl: 0, rdata: .a(0))
        let bytes = DNSMessage(questions: [DNSQuestion(name: name, type: RRType.a, qclass: RRClass.in)],
                               answers: [renamed, probe]).encoded()
        let questionEnd = 12 + name.wire.count + 4
        guard bytes.count >= questionEnd + 12, bytes[questionEnd] == 0xC0, bytes[questionEnd + 1] == 0x0C else { return nil }
        let end = questionEnd + 12 + (Int(bytes[questionEnd + 10]) << 8 | Int(bytes[questionEnd + 11]))
        // What follows the CNAME is the probe: a two-byte owner pointer and 14 bytes of type, class, TTL and address.
        guard bytes.count == end + 16, bytes[end] & 0xC0 == 0xC0 else { return nil }
        wire = name.wire
        self.name = name
        alias = Array(bytes[questionEnd..<end])
        owner = UInt16(bytes[end]) << 8 | UInt16(bytes[end + 1])
        (slot, answerCount, failClosed, ttl) = (target.slot, target.answerCount, target.failClosed, target.ttl)
        (v4, v4Bounds, v6, v6Bounds) = (target.v4, target.v4Bounds, target.v6, target.v6Bounds)
    }

    /// The number of records the candidates `picks` give in an A (`v4`) or AAAA answer; nil for an index beyond them.
    /// (Methods of the service, so its arrays are read borrowed, with no reference counting on the way.)
    func recordCount(_ picks: [UInt16], v4: Bool) -> Int? {
        let bounds = v4 ? v4Bounds : v6Bounds
        var records = 0
        for index in picks {
            let c = Int(index)
            guard c + 1 < bounds.count else { return nil }
            records += v4 ? bounds[c + 1] - bounds[c] : (bounds[c + 1] - bounds[c]) >> 1
        }
        return records
    }

    /// Writes an alias's CNAME record (nothing for a service).
    func writeAlias(into w: inout FastWriter) {
        alias.withUnsafeBytes { w.bytes($0, 0, $0.count) }
    }

    /// Writes the A or AAAA records of the candidates `picks` (checked by `recordCount`), owner compressed to the
    /// question's name (an alias's: to its CNAME's target).
    func writeRecords(_ picks: [UInt16], v4: Bool, ttl: UInt32, into w: inout FastWriter) {
        let bounds = v4 ? v4Bounds : v6Bounds
        let rrType: UInt16 = v4 ? RRType.a : RRType.aaaa
        for index in picks {
            let c = Int(index)
            guard c + 1 < bounds.count else { continue }
            var k = bounds[c]
            while k < bounds[c + 1] {
                w.u16(owner)
                w.u16(rrType)
                w.u16(RRClass.in)
                w.u32(ttl)
                if v4 {
                    w.address(.v4(self.v4[k]))
                    k += 1
                } else {
                    w.address(.v6(v6[k], v6[k + 1]))
                    k += 2
                }
            }
        }
    }

    /// The same RRset as records (for signing it the first time, as the full path makes them).
    func records(_ picks: [UInt16], v4: Bool, ttl: UInt32) -> [ResourceRecord] {
        var out = [ResourceRecord]()
        let bounds = v4 ? v4Bounds : v6Bounds
        for index in picks {
            let c = Int(index)
            guard c + 1 < bounds.count else { continue }
            var k = bounds[c]
            while k < bounds[c + 1] {
                let rdata: RData
                if v4 {
                    rdata = .a(self.v4[k])
                    k += 1
                } else {
                    rdata = Authority.rdata(for: .v6(v6[k], v6[k + 1]))
                    k += 2
                }
                out.append(ResourceRecord(name: name, type: v4 ? RRType.a : RRType.aaaa, rclass: RRClass.in, ttl: ttl, rdata: rdata))
            }
        }
        return out
    }
}

/// The names the fast path may answer, found by a hash of the question name folded to lower case: GSLB services whose
/// answer is the engine's alone (no other record at the name, no delegation above it) and their aliases, then static names
/// (`FastStatic`). A position below `serviceCount` is a service's, the rest a static name's.
struct FastServiceTable: Sendable {
    /// The services, then the static names; a query refers to one by its position (a plain integer, so a read query
    /// copies as plain bytes).
    private let services: [FastService]
    private let statics: [FastStatic]
    /// Every name's lower-case wire bytes by position.
    private let wires: [[UInt8]]
    /// Open addressing over the name hashes (a power of two, at most half full): the hash, and its position (-1: empty).
    private let keys: [UInt64]
    private let positions: [Int32]

    init(authority nodes: [DNSName: Authority.Node], delegations: Set<DNSName>, apex: DNSName, engine: AnswerEngine?) {
        var byHash: [UInt64: (FastService?, FastStatic?)] = [:]
        var collided = Set<UInt64>()
        func add(_ wire: [UInt8], _ entry: (FastService?, FastStatic?)) {
            let hash = FastServiceTable.hash(wire)
            if byHash[hash] != nil { collided.insert(hash) }
            byHash[hash] = entry
        }
        if let engine {
            var byName: [DNSName: FastService] = [:]
            for (name, node) in nodes {
                guard let service = node.service, node.rrsets.isEmpty, let slot = engine.slot(of: service.name),
                      Authority.delegation(covering: name, among: delegations, apex: apex) == nil else { continue }
                let fast = FastService(wire: name.wire, name: name, slot: slot, service: service, engine: engine)
                byName[name] = fast
                add(name.wire, (fast, nil))
            }
            for alias in Self.aliases(nodes, of: byName, delegations: delegations, apex: apex) { add(alias.wire, (alias, nil)) }
        }
        for s in FastStatic.compile(nodes: nodes, delegations: delegations, apex: apex) { add(s.wire, (nil, s)) }
        for h in collided { byHash[h] = nil }  // two names, one hash: both take the full path
        let sorted = byHash.sorted { $0.key < $1.key }
        services = sorted.compactMap(\.value.0)
        statics = sorted.compactMap(\.value.1)
        wires = services.map(\.wire) + statics.map(\.wire)
        let hashes = sorted.filter { $0.value.0 != nil }.map(\.key) + sorted.filter { $0.value.1 != nil }.map(\.key)
        var size = 8
        while size < 2 * hashes.count { size *= 2 }
        var keys = [UInt64](repeating: 0, count: size), positions = [Int32](repeating: -1, count: size)
        for (position, hash) in hashes.enumerated() {
            var k = Int(truncatingIfNeeded: hash) & (size - 1)
            while positions[k] >= 0 { k = (k + 1) & (size - 1) }
            keys[k] = hash
            positions[k] = Int32(position)
        }
        (self.keys, self.positions) = (keys, positions)
    }

    /// The zone's aliases of fast services: names in the zone, under no delegation, whose only record is one CNAME to a
    /// service's name.
    private static func aliases(_ nodes: [DNSName: Authority.Node], of services: [DNSName: FastService],
                                delegations: Set<DNSName>, apex: DNSName) -> [FastService] {
        var out: [FastService] = []
        for (name, node) in nodes where node.service == nil && node.rrsets.count == 1 {
            guard let rrset = node.rrsets[RRType.cname], rrset.count == 1, case .cname(let target) = rrset[0].rdata,
                  let service = services[target.lowercased], name.isSubdomain(of: apex),
                  Authority.delegation(covering: name, among: delegations, apex: apex) == nil,
                  let alias = FastService(alias: name, cname: rrset[0], of: service) else { continue }
            out.append(alias)
        }
        return out
    }

    /// A hash of `p[start..<end]` folded to lower case (ASCII letters only, as DNS compares names), eight bytes at a
    /// time; 0 for a range outside `p`.
    @inline(__always)
    static func hash(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt64 {
        guard let base = p.baseAddress, start >= 0, start <= end, end <= p.count else { return 0 }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var i = start
        while i + 8 <= end {
            h = mix(h, lowered((base + i).loadUnaligned(as: UInt64.self)))
            i += 8
        }
        if i < end {
            var word: UInt64 = 0
            for k in 0..<(end - i) { word |= UInt64(p[i + k]) << (8 * UInt64(k)) }
            h = mix(h, lowered(word))
        }
        return h
    }

    static func hash(_ wire: [UInt8]) -> UInt64 { wire.withUnsafeBytes { hash($0, 0, $0.count) } }

    /// Eight bytes with each of 'A'–'Z' turned to lower case (SWAR: a byte's high bit marks it upper-case).
    @inline(__always)
    static func lowered(_ x: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low7 = x & (0x7F &* ones)
        let atLeastA = low7 &+ (0x3F &* ones)  // high bit set where the 7 low bits are >= 0x41
        let pastZ = low7 &+ (0x25 &* ones)  // ... >= 0x5B
        let upper = atLeastA & ~pastZ & ~x & (0x80 &* ones)
        return x | upper >> 2
    }

    @inline(__always)
    static func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
        let m = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
        return m ^ m >> 29
    }

    var isEmpty: Bool { wires.isEmpty }

    /// Positions below this are services'.
    var serviceCount: Int { services.count }

    /// The service at a position `find` returned (nil for a static name's, or one from another table).
    @inline(__always)
    func service(at position: Int) -> FastService? { position >= 0 && position < services.count ? services[position] : nil }

    /// The static name at a position `find` returned (nil for a service's, or one from another table).
    @inline(__always)
    func staticName(at position: Int) -> FastStatic? {
        let k = position - services.count
        return position >= 0 && k >= 0 && k < statics.count ? statics[k] : nil
    }

    /// The lower-case name at a position (nil for none).
    func name(at position: Int) -> DNSName? { service(at: position)?.name ?? staticName(at: position)?.name }

    /// The position of the name that equals `packet[start..<end]` case-insensitively, and whether it matched byte for
    /// byte (the name arrived in lower case), if any.
    func find(_ hash: UInt64, _ packet: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (position: Int, exact: Bool)? {
        let mask = keys.count - 1
        var k = Int(truncatingIfNeeded: hash) & mask
        var found = -1
        while positions[k] >= 0 {
            if keys[k] == hash {
                found = Int(positions[k])
                break
            }
            k = (k + 1) & mask
        }
        guard found >= 0, found < wires.count, start >= 0, end <= packet.count else { return nil }
        return wires[found].withUnsafeBytes { wire -> (Int, Bool)? in
            guard wire.count == end - start, let a = wire.baseAddress, let b = packet.baseAddress else { return nil }
            // Most names arrive in lower case: one comparison of the bytes, then the folding loop only when it fails.
            if memcmp(a, b + start, wire.count) == 0 { return (found, true) }
            for k in 0..<wire.count {
                let c = packet[start + k]
                if (c &- 0x41 < 26 ? c | 0x20 : c) != wire[k] { return nil }
            }
            return (found, false)
        }
    }
}
