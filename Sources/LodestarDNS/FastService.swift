import Glibc
import LodestarSelection
import LodestarTopology

/// A GSLB service the fast path answers: the name as lower-cased wire bytes, its engine slot and what the answer
/// needs of its record (a class: a query holds one reference).
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

    init(wire: [UInt8], name: DNSName, slot: Int, service: Service, engine: AnswerEngine) {
        self.wire = wire
        self.name = name
        self.slot = slot
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

    /// Writes the A or AAAA records of the candidates `picks` (checked by `recordCount`), owner compressed to the
    /// question's name.
    func writeRecords(_ picks: [UInt16], v4: Bool, ttl: UInt32, into w: inout FastWriter) {
        let bounds = v4 ? v4Bounds : v6Bounds
        let rrType: UInt16 = v4 ? RRType.a : RRType.aaaa
        for index in picks {
            let c = Int(index)
            guard c + 1 < bounds.count else { continue }
            var k = bounds[c]
            while k < bounds[c + 1] {
                w.u16(0xC00C)
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

/// The services the fast path may answer, found by a hash of the question name folded to lower case. Only services
/// whose answer is the engine's alone qualify: no other record at the name and no delegation above it.
struct FastServiceTable: Sendable {
    /// The services; a query refers to one by its position (a plain integer, so a read query copies as plain bytes).
    private let services: [FastService]
    private let byHash: [UInt64: Int]
    /// The same as a list when it is short: a few comparisons beat hashing the key.
    private let few: [(UInt64, Int)]

    init(authority nodes: [DNSName: Authority.Node], delegations: Set<DNSName>, apex: DNSName, engine: AnswerEngine?) {
        var byHash: [UInt64: FastService] = [:]
        var collided = Set<UInt64>()
        if let engine {
            for (name, node) in nodes {
                guard let service = node.service, node.rrsets.isEmpty, let slot = engine.slot(of: service.name),
                      Authority.delegation(covering: name, among: delegations, apex: apex) == nil else { continue }
                let hash = FastServiceTable.hash(name.wire)
                if byHash[hash] != nil { collided.insert(hash) }
                byHash[hash] = FastService(wire: name.wire, name: name, slot: slot, service: service, engine: engine)
            }
        }
        for h in collided { byHash[h] = nil }  // two names, one hash: both take the full path
        let sorted = byHash.sorted { $0.key < $1.key }
        services = sorted.map(\.value)
        self.byHash = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($0.element.key, $0.offset) })
        few = sorted.count <= 4 ? sorted.enumerated().map { ($0.element.key, $0.offset) } : []
    }

    /// FNV-1a over bytes folded to lower case (ASCII letters only, as DNS compares names).
    @inline(__always)
    static func fold(_ h: UInt64, _ b: UInt8) -> UInt64 {
        let lower = b &- 0x41 < 26 ? b | 0x20 : b
        return (h ^ UInt64(lower)) &* 0x0000_0100_0000_01B3
    }

    static let seed: UInt64 = 0xCBF2_9CE4_8422_2325

    static func hash(_ wire: [UInt8]) -> UInt64 { wire.reduce(seed, fold) }

    var isEmpty: Bool { services.isEmpty }

    /// The service at a position `find` returned (nil for one from another table).
    @inline(__always)
    func service(at position: Int) -> FastService? { position >= 0 && position < services.count ? services[position] : nil }

    /// The service whose name equals `packet[start..<end]` (case-insensitively), with its position, if any.
    func find(_ hash: UInt64, _ packet: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (position: Int, service: FastService)? {
        let found: Int?
        if services.count <= 4 {
            found = few.first { $0.0 == hash }?.1
        } else {
            found = byHash[hash]
        }
        guard let position = found, let s = service(at: position), s.wire.count == end - start, start >= 0,
              end <= packet.count else { return nil }
        // Most names arrive in lower case: one comparison of the bytes, then the folding loop only when it fails.
        let exact = s.wire.withUnsafeBytes { wire in
            guard let a = wire.baseAddress, let b = packet.baseAddress else { return false }
            return memcmp(a, b + start, wire.count) == 0
        }
        if exact { return (position, s) }
        for k in 0..<s.wire.count {
            let b = packet[start + k]
            if (b &- 0x41 < 26 ? b | 0x20 : b) != s.wire[k] { return nil }
        }
        return (position, s)
    }
}
