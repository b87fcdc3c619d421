import Foundation
import Synchronization

/// Online DNSSEC signing of a zone's RRsets (RFC 4034 §3, §6; RFC 4035 §2.2): RRSIGs made when first asked for and
/// kept until they near expiry, so each of the few RRsets a geo service can answer is signed once per validity period.
/// Safe to share between threads; a reload makes a new signer (and a new cache).
public final class ZoneSigner: Sendable {
    /// Signature timing (`dns.dnssec`).
    public struct Timing: Sendable, Equatable {
        /// From signing to expiry.
        public var validitySeconds: UInt32 = 7 * 86_400
        /// Inception is back-dated this far, for validators whose clocks run slow.
        public var inceptionOffsetSeconds: UInt32 = 3_600
        /// A kept signature is made again once its expiry is this close.
        public var refreshBeforeSeconds: UInt32 = 2 * 86_400

        public init(validitySeconds: UInt32 = 7 * 86_400, inceptionOffsetSeconds: UInt32 = 3_600,
                    refreshBeforeSeconds: UInt32 = 2 * 86_400) {
            self.validitySeconds = validitySeconds
            self.inceptionOffsetSeconds = inceptionOffsetSeconds
            self.refreshBeforeSeconds = refreshBeforeSeconds
        }
    }

    /// A key and whether it signs (a key that only appears in DNSKEY is pre-published, or kept while it retires).
    public struct ZoneKey: Sendable {
        public var key: DNSSECKey
        public var signs: Bool
        public init(_ key: DNSSECKey, signs: Bool = true) {
            self.key = key
            self.signs = signs
        }
    }

    private struct Kept {
        var expiration: UInt32
        var records: [ResourceRecord]
    }

    /// The zone apex (lower case): every RRSIG's signer name.
    public let apex: DNSName
    public let keys: [ZoneKey]
    public let timing: Timing
    private let clock: @Sendable () -> UInt32
    private let kept = Mutex<[[UInt8]: Kept]>([:])
    private let limit: Int
    /// Signatures made (not served from the cache), for metrics and tests.
    private let made = Atomic<Int>(0)

    /// - Parameters:
    ///   - clock: seconds since 1970 (tests move it; the default is the system clock).
    ///   - cacheEntries: RRsets whose signatures are kept; past it the cache starts again empty.
    public init(apex: DNSName, keys: [ZoneKey], timing: Timing = Timing(), cacheEntries: Int = 65_536,
                clock: @escaping @Sendable () -> UInt32 = { UInt32(clamping: Int(Date().timeIntervalSince1970)) }) {
        self.apex = apex.lowercased
        self.keys = keys
        self.timing = timing
        self.limit = max(16, cacheEntries)
        self.clock = clock
    }

    /// Signatures made so far (cache misses).
    public var signaturesMade: Int { made.load(ordering: .relaxed) }

    /// The apex DNSKEY RRset: every listed key.
    public func dnskeyRecords(ttl: UInt32) -> [ResourceRecord] {
        keys.map { ResourceRecord(name: apex, type: RRType.dnskey, rclass: RRClass.in, ttl: ttl, rdata: .unknown($0.key.dnskeyRData)) }
    }

    /// RRSIG records for one RRset (same owner, type and class; the owner's spelling is kept in the RRSIGs). The DNSKEY
    /// RRset is signed by every listed key, the rest by the keys that sign.
    public func signatures(for rrset: [ResourceRecord]) -> [ResourceRecord] {
        guard let first = rrset.first else { return [] }
        let data = Self.canonicalRRset(rrset)
        let ttl = first.ttl
        var cacheKey = data
        cacheKey.append(contentsOf: [UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xFF), UInt8(ttl >> 8 & 0xFF), UInt8(ttl & 0xFF)])
        let now = clock()
        if let hit = kept.withLock({ $0[cacheKey] }), isFresh(hit.expiration, now: now) {
            return hit.records.map { var r = $0; r.name = first.name; return r }
        }
        let inception = now &- timing.inceptionOffsetSeconds
        let expiration = now &+ timing.validitySeconds
        let signers = keys.filter { $0.signs || first.type == RRType.dnskey }
        var out = [ResourceRecord]()
        for k in signers {
            var rdata = Self.rrsigHeader(type: first.type, algorithm: k.key.algorithm.rawValue, labels: Self.labels(of: first.name),
                                         ttl: ttl, expiration: expiration, inception: inception, keyTag: k.key.keyTag, signer: apex)
            let signature = k.key.sign(rdata + data)
            guard !signature.isEmpty else { continue }
            rdata.append(contentsOf: signature)
            out.append(ResourceRecord(name: first.name, type: RRType.rrsig, rclass: first.rclass, ttl: ttl, rdata: .unknown(rdata)))
        }
        made.add(out.count, ordering: .relaxed)
        kept.withLock {
            if $0.count >= limit { $0.removeAll(keepingCapacity: true) }
            $0[cacheKey] = Kept(expiration: expiration, records: out)
        }
        return out
    }

    /// Whether a kept signature expiring at `expiration` may still be served: more than `refreshBeforeSeconds` left,
    /// and not from a clock that went back past its making.
    private func isFresh(_ expiration: UInt32, now: UInt32) -> Bool {
        expiration &- now > timing.refreshBeforeSeconds && expiration &- now <= timing.validitySeconds
    }

    // MARK: The fast path's signatures

    private struct FastKey: Hashable {
        let slot: Int
        let family: UInt8
        let ttl: UInt32
        /// Up to four candidate indices, sorted, 16 bits each (the RRset does not depend on their order).
        let picks: UInt64
    }

    private struct FastKept {
        var expiration: UInt32
        var rdatas: [[UInt8]]
    }

    private let fastKept = Mutex<[FastKey: FastKept]>([:])

    /// The RRSIG RDATAs for a GSLB answer the fast path writes: the RRset of `records()` (the picked candidates'
    /// addresses at `owner`) for engine slot `slot`. Kept per (slot, family, TTL, picks) so a repeated choice costs one
    /// lookup; made through `signatures(for:)`, so the bytes are those the full path sends. Nil for more than four picks.
    func fastSignatures(slot: Int, v4: Bool, ttl: UInt32, picks: [UInt16], records: () -> [ResourceRecord]) -> [[UInt8]]? {
        guard picks.count <= 4 else { return nil }
        var sorted = picks
        sorted.sort()
        var packed: UInt64 = 0
        for p in sorted { packed = packed << 16 | UInt64(p) }
        let key = FastKey(slot: slot, family: v4 ? 4 : 6, ttl: ttl, picks: packed | UInt64(picks.count) << 62)
        let now = clock()
        if let hit = fastKept.withLock({ $0[key] }), isFresh(hit.expiration, now: now) {
            return hit.rdatas
        }
        let made = signatures(for: records())
        var rdatas = [[UInt8]]()
        var expiration = now &+ timing.validitySeconds
        for rr in made {
            guard case .unknown(let b) = rr.rdata, b.count >= 12 else { return nil }
            rdatas.append(b)
            expiration = min(expiration, UInt32(b[8]) << 24 | UInt32(b[9]) << 16 | UInt32(b[10]) << 8 | UInt32(b[11]))
        }
        fastKept.withLock {
            if $0.count >= limit { $0.removeAll(keepingCapacity: true) }
            $0[key] = FastKept(expiration: expiration, rdatas: rdatas)
        }
        return rdatas
    }

    // MARK: Canonical form (RFC 4034 §6)

    /// RRSIG RDATA up to the signature (RFC 4034 §3.1): what is signed ahead of the RRset.
    static func rrsigHeader(type: UInt16, algorithm: UInt8, labels: UInt8, ttl: UInt32, expiration: UInt32, inception: UInt32,
                            keyTag: UInt16, signer: DNSName) -> [UInt8] {
        var w = WireWriter(capacity: 64)
        w.u16(type)
        w.u8(algorithm)
        w.u8(labels)
        w.u32(ttl)
        w.u32(expiration)
        w.u32(inception)
        w.u16(keyTag)
        w.raw(signer.lowercased.wire)
        return w.bytes
    }

    /// The Labels field: the owner's labels, a leading `*` not counted (RFC 4034 §3.1.3).
    static func labels(of owner: DNSName) -> UInt8 {
        let wire = owner.wire
        let wildcard = wire.count >= 2 && wire[0] == 1 && wire[1] == UInt8(ascii: "*")
        return UInt8(clamping: owner.labelCount - (wildcard ? 1 : 0))
    }

    /// The RRset in canonical form and order: lower-case owner, type, class, TTL, RDLENGTH and canonical RDATA per record,
    /// the records sorted by their RDATA and duplicates dropped (RFC 4034 §6.3).
    static func canonicalRRset(_ rrset: [ResourceRecord]) -> [UInt8] {
        guard let first = rrset.first else { return [] }
        let owner = first.name.lowercased.wire
        var rdatas = rrset.map { canonicalRData($0.rdata) }
        rdatas.sort { $0.lexicographicallyPrecedes($1) }
        var out = [UInt8]()
        var previous: [UInt8]?
        for rd in rdatas where rd != previous {
            previous = rd
            out.append(contentsOf: owner)
            out.append(contentsOf: [UInt8(first.type >> 8), UInt8(first.type & 0xFF), UInt8(first.rclass >> 8), UInt8(first.rclass & 0xFF)])
            let ttl = first.ttl
            out.append(contentsOf: [UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xFF), UInt8(ttl >> 8 & 0xFF), UInt8(ttl & 0xFF)])
            out.append(contentsOf: [UInt8(rd.count >> 8 & 0xFF), UInt8(rd.count & 0xFF)])
            out.append(contentsOf: rd)
        }
        return out
    }

    /// RDATA with embedded names lower-cased and uncompressed (RFC 4034 §6.2, item 3).
    static func canonicalRData(_ rdata: RData) -> [UInt8] {
        var w = WireWriter(capacity: 32)
        switch rdata {
        case .a(let v): w.u32(v)
        case .aaaa(let b): w.raw(b)
        case .ns(let n), .cname(let n): w.raw(n.lowercased.wire)
        case let .soa(m, r, serial, refresh, retry, expire, minimum):
            w.raw(m.lowercased.wire); w.raw(r.lowercased.wire)
            w.u32(serial); w.u32(refresh); w.u32(retry); w.u32(expire); w.u32(minimum)
        case let .mx(pref, ex):
            w.u16(pref); w.raw(ex.lowercased.wire)
        case .txt(let strings):
            for s in strings {
                let chunk = s.prefix(255)
                w.u8(UInt8(chunk.count))
                w.raw(chunk)
            }
        case .opt: break
        case .unknown(let b): w.raw(b)
        }
        return w.bytes
    }

    // MARK: Denial (RFC 9824 compact answers)

    /// NSEC RDATA for a compact denial at `owner`: the next name is `\000.owner` (nothing can sort between them) and the
    /// bitmap lists `types` (RFC 4034 §4.1).
    static func nsecRData(owner: DNSName, types: [UInt16]) -> [UInt8] {
        let o = owner.lowercased.wire
        var out = o.count + 2 <= 255 ? [1, 0] + o : o
        out.append(contentsOf: typeBitmap(types))
        return out
    }

    /// The type bitmap field (RFC 4034 §4.1.2): per 256-type window, its number, the bitmap length and the bits.
    public static func typeBitmap(_ types: [UInt16]) -> [UInt8] {
        var windows = [UInt8: [UInt8]]()
        for t in Set(types) {
            let window = UInt8(t >> 8), low = Int(t & 0xFF)
            var bits = windows[window] ?? []
            if bits.count <= low / 8 { bits += [UInt8](repeating: 0, count: low / 8 + 1 - bits.count) }
            bits[low / 8] |= 0x80 >> UInt8(low % 8)
            windows[window] = bits
        }
        var out = [UInt8]()
        for w in windows.keys.sorted() {
            guard let bits = windows[w] else { continue }
            out.append(w)
            out.append(UInt8(bits.count))
            out.append(contentsOf: bits)
        }
        return out
    }
}
