import LodestarGeo
import LodestarSelection
import LodestarTopology

/// What the fast path answered: the facts metrics, RRL and the query log need, with no allocation.
public struct FastAnswer {
    /// Bytes written to the output.
    public var length: Int
    public var qtype: UInt16
    public var hadClientSubnet: Bool
    /// No random draw decided it.
    public var reusable: Bool
    /// The service's position among the authority's fast services: `Authority.fastName(of:)` gives its lower-case name
    /// (for RRL buckets and the query log) when it is needed, so an answer holds no reference.
    public var service: Int
    /// The engine slot of the service and the candidate index of the first edge answered.
    public var slot: Int
    public var firstEdge: UInt16
    /// Where the client was placed (the ECS address, else the source).
    public var located: IPAddress

    /// A static name's answer (`FastStatic`): no engine slot, no edge, no decision.
    public var isStatic: Bool { slot < 0 }
}

/// A query the fast path can answer, read in place.
struct FastQuery {
    var questionEnd = 0
    /// The name's position in the authority's `FastServiceTable`, and its engine slot (a service's; -1 for a static name).
    var service: Int
    var slot: Int
    /// A static name's body answering the query (`FastStatic.bodies`), -1 for a service.
    var staticBody = -1
    var family: EdgeSelector.Family
    var hasOPT = false
    var payload = 512
    var dnssecOK = false
    var wantsNSID = false
    /// ECS option data length (0: none), its source prefix, and the address (all the reply echoes: family and address
    /// bytes come from it, so the reply may overwrite the query — `fastRespond` in place).
    var ecsLength = 0, ecsSource = 0
    var ecsAddress: IPAddress?
}

/// A query read by `Authority.planFast`, to be answered by `fastRespond(plan:…)` from the same packet and authority.
public struct FastPlan {
    let query: FastQuery
    /// Where the client is placed: the ECS address, else the source.
    let located: IPAddress
}

extension Authority {
    /// Reads a query the fast path may answer (nil for anything else; `fastRespond` then declines it too).
    public func planFast(_ packet: UnsafeRawBufferPointer, from client: IPAddress) -> FastPlan? {
        guard !fastServices.isEmpty, let q = readFastQuery(packet) else { return nil }
        return FastPlan(query: q, located: (q.ecsSource > 0 ? q.ecsAddress : nil) ?? client)
    }

    /// The address of the first word the engine reads for `plan`, as a prefetch hint (`AnswerEngine.indexWordHint`).
    @inline(__always)
    public func indexWordHint(of plan: FastPlan) -> UnsafeRawPointer? {
        guard plan.query.slot >= 0 else { return nil }
        return engine?.indexWordHint(slot: plan.query.slot, client: plan.located)
    }

    /// The address of what the engine reads after the index word for `plan`, as a second prefetch hint
    /// (`AnswerEngine.secondHint`).
    public func secondHint(of plan: FastPlan) -> PrefetchHint? {
        guard plan.query.slot >= 0 else { return nil }
        return engine?.secondHint(slot: plan.query.slot, client: plan.located, family: plan.query.family)
    }

    /// Answers the most common queries — a GSLB service's A or AAAA over UDP, with or without EDNS, ECS and NSID, the
    /// same for an alias of one (a CNAME to the service, asked in lower case), and a static name's records asked for
    /// in lower case (`FastStatic`, precompiled) — in place: the packet is read
    /// without copying, the engine chooses from its compiled classes with health from `health`, and the response is
    /// written to `out`, byte for byte what `respond` would send. `out` may be the packet's own memory: nothing is
    /// written until the answer is known to fit, and nothing is read after. Returns nil for anything else (another name
    /// or type, a malformed or unusual query, an answer that needs the reference path, NODATA, or one that does not fit
    /// in `out` or the client's payload size): then `respond` must answer.
    public func fastRespond<R: RandomNumberGenerator>(to packet: UnsafeRawBufferPointer, from client: IPAddress,
                                                      health: AnswerEngine.HealthSnapshot, random: inout R,
                                                      picks: inout [UInt16], into out: UnsafeMutableRawBufferPointer) -> FastAnswer? {
        guard let plan = planFast(packet, from: client) else { return nil }
        return fastRespond(plan: plan, packet: packet, health: health, random: &random, picks: &picks, into: out)
    }

    /// `fastRespond(to:…)` for a query already read by `planFast` from `packet` with this authority.
    public func fastRespond<R: RandomNumberGenerator>(plan: FastPlan, packet: UnsafeRawBufferPointer,
                                                      health: AnswerEngine.HealthSnapshot, random: inout R,
                                                      picks: inout [UInt16], into out: UnsafeMutableRawBufferPointer) -> FastAnswer? {
        let q = plan.query, located = plan.located
        if q.staticBody >= 0 { return fastStaticRespond(q, packet: packet, client: located, into: out) }
        guard let engine, let service = fastServices.service(at: q.service) else { return nil }
        guard let choice = engine.choose(slot: service.slot, client: located, family: q.family, want: service.answerCount,
                                         failClosed: service.failClosed, health: health, random: &random, into: &picks),
              let first = picks.first else { return nil }
        let ttl = choice.suspect ? min(service.ttl, UInt32(EdgeSelector.suspectTTLSeconds)) : service.ttl
        let v4 = q.family == .v4
        // Everything is decided before the first byte is written, so `out` may be the query's own buffer.
        guard let answers = service.recordCount(picks, v4: v4) else { return nil }
        // With DO and a signed zone: the RRSIGs of this RRset, kept per choice (made as the full path makes them).
        var signatures: [[UInt8]] = []
        if q.dnssecOK, let signer {
            // An alias's CNAME would be signed too: the full path answers.
            guard answers > 0, !service.isAlias, let sigs = signer.fastSignatures(slot: service.slot, v4: v4, ttl: ttl, picks: picks,
                                                                records: { service.records(picks, v4: v4, ttl: ttl) })
            else { return nil }
            signatures = sigs
        }
        let aliases = service.isAlias ? 1 : 0
        let length = q.questionEnd + service.alias.count + answers * (v4 ? 16 : 28) + signatures.reduce(0) { $0 + 12 + $1.count }
            + optLength(q)
        guard answers > 0, aliases + answers + signatures.count <= 0xFFFF, fits(length, q, packet: packet, out: out) else { return nil }
        var w = FastWriter(out)
        writeHeader(&w, packet, q, answers: UInt16(aliases + answers + signatures.count), additional: 0)
        let rrType: UInt16 = v4 ? RRType.a : RRType.aaaa
        if service.isAlias { service.writeAlias(into: &w) }
        service.writeRecords(picks, v4: v4, ttl: ttl, into: &w)
        for rdata in signatures {
            w.u16(0xC00C)
            w.u16(RRType.rrsig)
            w.u16(RRClass.in)
            w.u32(ttl)
            w.u16(UInt16(clamping: rdata.count))
            for b in rdata { w.u8(b) }
        }
        if q.hasOPT { writeOPT(&w, q, scope: choice.scope) }
        guard !w.overflowed, w.count == length else { return nil }
        return FastAnswer(length: w.count, qtype: rrType, hadClientSubnet: q.ecsLength > 0, reusable: choice.deterministic,
                          service: q.service, slot: service.slot, firstEdge: first, located: located)
    }

    /// The bytes of the OPT record `writeOPT` writes for `q` (0 without EDNS).
    func optLength(_ q: FastQuery) -> Int {
        q.hasOPT ? 11 + (q.wantsNSID ? 4 + nodeIdBytes.count : 0) + (q.ecsLength > 0 ? 4 + q.ecsLength : 0) : 0
    }

    /// Whether a reply of `length` bytes to `q` fits the client's UDP payload size (512 without EDNS, else its own, at
    /// least 512 and at most ours) and `out`, and `packet` holds a header to echo.
    func fits(_ length: Int, _ q: FastQuery, packet: UnsafeRawBufferPointer, out: UnsafeMutableRawBufferPointer) -> Bool {
        let limit = q.hasOPT ? min(max(512, q.payload), maxUDPPayload) : 512
        return length <= limit && length <= out.count && packet.count >= 12
    }

    /// The reply's header — the query's ID; QR and AA with RD and CD echoed; one question, `answers` answers, no
    /// authority, `additional` records and OPT when the query had one — then the question as sent.
    func writeHeader(_ w: inout FastWriter, _ packet: UnsafeRawBufferPointer, _ q: FastQuery, answers: UInt16,
                     additional: UInt16) {
        w.bytes(packet, 0, 2)
        w.u16(0x8400 | UInt16(packet[2] & 0x01) << 8 | UInt16(packet[3] & 0x10))
        w.u16(1)
        w.u16(answers)
        w.u16(0)
        w.u16(additional + (q.hasOPT ? 1 : 0))
        w.bytes(packet, 12, q.questionEnd)
    }

    /// The response OPT: our payload size, DO echoed, NSID then ECS with the scope (RFC 7871 §7.2.1), as `finish` writes it.
    func writeOPT(_ w: inout FastWriter, _ q: FastQuery, scope: Int) {
        w.u8(0)
        w.u16(RRType.opt)
        w.u16(UInt16(clamping: maxUDPPayload))
        w.u32(q.dnssecOK ? 0x8000 : 0)
        let nsidLength = q.wantsNSID ? 4 + nodeIdBytes.count : 0
        let ecsLength = q.ecsLength > 0 ? 4 + q.ecsLength : 0
        w.u16(UInt16(clamping: nsidLength + ecsLength))
        if q.wantsNSID {
            w.u16(EDNSOptionCode.nsid)
            w.u16(UInt16(clamping: nodeIdBytes.count))
            for b in nodeIdBytes { w.u8(b) }
        }
        if q.ecsLength > 0 {
            w.u16(EDNSOptionCode.clientSubnet)
            w.u16(UInt16(q.ecsLength))
            // Family, source, scope, then the address bytes as sent (⌈source/8⌉ of them; those past the prefix are zero).
            let (family, hi, lo): (UInt16, UInt64, UInt64)
            switch q.ecsAddress {
            case .v6(let h, let l)?: (family, hi, lo) = (2, h, l)
            case .v4(let v)?: (family, hi, lo) = (1, UInt64(v) << 32, 0)
            case nil: (family, hi, lo) = (0, 0, 0)
            }
            w.u16(family)
            w.u8(UInt8(clamping: q.ecsSource))
            w.u8(UInt8(clamping: min(scope, q.ecsSource)))
            for k in 0..<(q.ecsLength - 4) {
                w.u8(UInt8(truncatingIfNeeded: (k < 8 ? hi : lo) >> (56 - 8 * UInt64(k % 8))))
            }
        }
    }

    /// Reads a query the fast path answers, every read bounds-checked; nil for anything else.
    private func readFastQuery(_ p: UnsafeRawBufferPointer) -> FastQuery? {
        let n = p.count
        guard n >= 17, p[2] & 0xFA == 0,  // QR, opcode and TC zero
              p[4] == 0, p[5] == 1, p[6] == 0, p[7] == 0, p[8] == 0, p[9] == 0, p[10] == 0, p[11] <= 1 else { return nil }
        var i = 12
        while true {
            guard i < n else { return nil }
            let len = Int(p[i])
            guard len <= 63, i - 12 + len + 1 < 255, i + len < n else { return nil }
            i += len + 1
            if len == 0 { break }
        }
        let hash = FastServiceTable.hash(p, 12, i)
        guard i + 4 <= n, let (position, exact) = fastServices.find(hash, p, 12, i) else { return nil }
        let qtype = UInt16(p[i]) << 8 | UInt16(p[i + 1])
        guard p[i + 2] == 0, p[i + 3] == 1 else { return nil }
        i += 4
        var q: FastQuery
        if let service = fastServices.service(at: position) {
            // An alias's CNAME was encoded for the name in lower case, like a static name's answers.
            guard qtype == RRType.a || qtype == RRType.aaaa, exact || !service.isAlias else { return nil }
            q = FastQuery(questionEnd: i, service: position, slot: service.slot, family: qtype == RRType.a ? .v4 : .v6)
        } else {
            // A static name's answer was precompiled for the name in lower case: other spellings take the full path.
            guard exact, let name = fastServices.staticName(at: position), let body = name.body(for: qtype) else { return nil }
            q = FastQuery(questionEnd: i, service: position, slot: -1, family: .v4)
            q.staticBody = body
        }
        guard p[11] == 1 else { return i == n ? q : nil }
        guard readOPT(p, at: i, into: &q) else { return nil }
        return q
    }

    /// The query's OPT (root owner, version 0) and its NSID and ECS options; false when the full path must answer.
    private func readOPT(_ p: UnsafeRawBufferPointer, at i: Int, into q: inout FastQuery) -> Bool {
        let n = p.count
        guard i + 11 <= n, p[i] == 0, p[i + 1] == 0, p[i + 2] == 41, p[i + 6] == 0 else { return false }
        q.hasOPT = true
        q.payload = Int(p[i + 3]) << 8 | Int(p[i + 4])
        q.dnssecOK = p[i + 7] & 0x80 != 0
        let rdlen = Int(p[i + 9]) << 8 | Int(p[i + 10])
        var o = i + 11
        guard o + rdlen == n else { return false }
        while o < n {
            guard o + 4 <= n else { return false }
            let code = UInt16(p[o]) << 8 | UInt16(p[o + 1])
            let len = Int(p[o + 2]) << 8 | Int(p[o + 3])
            guard o + 4 + len <= n else { return false }
            if code == EDNSOptionCode.nsid {
                q.wantsNSID = true
            } else if code == EDNSOptionCode.clientSubnet {
                guard q.ecsLength == 0, let address = Self.readECS(p, at: o + 4, length: len, source: &q.ecsSource) else { return false }
                q.ecsLength = len
                q.ecsAddress = address
            }
            o += 4 + len
        }
        return true
    }

    /// An ECS option's address (RFC 7871 §6, the checks of `ClientSubnet(optionData:)`); nil when malformed.
    private static func readECS(_ p: UnsafeRawBufferPointer, at o: Int, length: Int, source: inout Int) -> IPAddress? {
        guard length >= 4 else { return nil }
        let family = UInt16(p[o]) << 8 | UInt16(p[o + 1])
        let prefix = Int(p[o + 2])
        guard (family == 1 || family == 2), p[o + 3] == 0 else { return nil }
        let width = family == 1 ? 4 : 16
        let count = length - 4
        guard prefix <= width * 8, count == (prefix + 7) / 8 else { return nil }
        if prefix % 8 != 0, count > 0 {
            guard p[o + 4 + count - 1] & (UInt8(0xFF) >> UInt8(prefix % 8)) == 0 else { return nil }
        }
        source = prefix
        var hi: UInt64 = 0, lo: UInt64 = 0
        for k in 0..<width {
            let b = UInt64(k < count ? p[o + 4 + k] : 0)
            if width == 4 { lo = lo << 8 | b } else if k < 8 { hi = hi << 8 | b } else { lo = lo << 8 | b }
        }
        return family == 1 ? .v4(UInt32(truncatingIfNeeded: lo)) : .v6(hi, lo)
    }
}

/// Writes big-endian fields to a fixed buffer; past its end it only notes the overflow.
struct FastWriter {
    let out: UnsafeMutableRawBufferPointer
    private(set) var count = 0
    private(set) var overflowed = false

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    @inline(__always)
    mutating func u8(_ v: UInt8) {
        guard count < out.count else {
            overflowed = true
            return
        }
        out[count] = v
        count += 1
    }

    /// Two bytes, big-endian, with one bounds check (a store, not two byte writes).
    @inline(__always)
    mutating func u16(_ v: UInt16) {
        guard out.count - count >= 2 else {
            overflowed = true
            return
        }
        out.storeBytes(of: v.bigEndian, toByteOffset: count, as: UInt16.self)
        count += 2
    }

    /// Four bytes, big-endian, with one bounds check.
    @inline(__always)
    mutating func u32(_ v: UInt32) {
        guard out.count - count >= 4 else {
            overflowed = true
            return
        }
        out.storeBytes(of: v.bigEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    /// Copies `p[start..<end]` (as much of it as `p` holds); nothing to copy when it already lies where it goes (a
    /// reply written over its query keeps the query's ID and question in place).
    @inline(__always)
    mutating func bytes(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) {
        let n = min(end, p.count) - start
        guard n > 0, start >= 0 else { return }
        guard n <= out.count - count, let destination = out.baseAddress, let source = p.baseAddress else {
            overflowed = true
            return
        }
        if destination + count != source + start {
            (destination + count).copyMemory(from: source + start, byteCount: n)
        }
        count += n
    }

    /// RDLENGTH and RDATA of an A or AAAA record.
    @inline(__always)
    mutating func address(_ ip: IPAddress) {
        switch ip {
        case .v4(let v):
            u16(4)
            u32(v)
        case .v6(let hi, let lo):
            u16(16)
            u32(UInt32(truncatingIfNeeded: hi >> 32))
            u32(UInt32(truncatingIfNeeded: hi))
            u32(UInt32(truncatingIfNeeded: lo >> 32))
            u32(UInt32(truncatingIfNeeded: lo))
        }
    }
}

extension Authority {
    /// The health of every compiled candidate now, for `fastRespond` (nil without a compiled engine). Take a new one
    /// when `healthGeneration` moves past the snapshot's `generation`.
    public func fastHealthSnapshot() -> AnswerEngine.HealthSnapshot? { engine?.healthSnapshot(of: health) }

    /// The lower-case name a fast answer answered (the root for an answer of another authority).
    public func fastName(of answer: FastAnswer) -> DNSName { fastServices.name(at: answer.service) ?? .root }

    /// The decision record of a fast answer (edge, region and the client's GeoIP country and continent).
    public func decision(of answer: FastAnswer) -> AnswerDecision? {
        answer.isStatic ? nil : decision(ofKey: decisionKey(of: answer))
    }

    /// A fast answer's decision as one integer (service slot, first edge, client location), for per-loop tallies;
    /// `decision(ofKey:)` turns it back into the record with this authority's engine.
    public func decisionKey(of answer: FastAnswer) -> UInt64 {
        Self.key(answer, location: engine?.locationIndex(of: answer.located) ?? UInt32.max)
    }

    /// A fast answer's service slot and first edge as one integer, like `decisionKey` with no location (no GeoIP
    /// lookup): `decision(ofKey:)` gives the edge with an empty country.
    public func edgeKey(of answer: FastAnswer) -> UInt64 { Self.key(answer, location: UInt32.max) }

    /// Slot (16 bits), first edge (16) and location index (32) in one word.
    private static func key(_ answer: FastAnswer, location: UInt32) -> UInt64 {
        UInt64(UInt16(truncatingIfNeeded: answer.slot)) << 48 | UInt64(answer.firstEdge) << 32 | UInt64(location)
    }

    /// The decision record behind a `decisionKey` or `edgeKey`.
    public func decision(ofKey key: UInt64) -> AnswerDecision? {
        let slot = Int(key >> 48), candidate = UInt16(truncatingIfNeeded: key >> 32)
        guard let engine, let edge = engine.edge(slot: slot, candidate: candidate) else { return nil }
        let location = engine.location(at: UInt32(truncatingIfNeeded: key))
        return AnswerDecision(edge: edge.id, region: edge.region, country: location?.country ?? "",
                              continent: location?.continent ?? "", latitude: location?.latitude, longitude: location?.longitude)
    }
}
