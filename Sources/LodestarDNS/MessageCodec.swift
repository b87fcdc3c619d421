extension DNSMessage {
    /// Decodes a whole message; every length is checked before it is read (RFC 1035 §4.1).
    public init(decoding bytes: [UInt8]) throws(DNSDecodingError) {
        var r = WireReader(bytes)
        let id = try r.u16()
        let flags = try r.u16()
        let qd = try r.u16(), an = try r.u16(), ns = try r.u16(), ar = try r.u16()
        var msg = DNSMessage(header: DNSHeader(id: id, flags: flags))
        // Counts are untrusted: never reserve from them, and a record needs ≥ 11 bytes, a question ≥ 5.
        for _ in 0..<qd {
            let name = try r.name()
            let type = try r.u16()
            let qclass = try r.u16()
            msg.questions.append(DNSQuestion(name: name, type: type, qclass: qclass))
        }
        for _ in 0..<an { msg.answers.append(try r.record()) }
        for _ in 0..<ns { msg.authority.append(try r.record()) }
        for _ in 0..<ar { msg.additional.append(try r.record()) }
        guard r.remaining == 0 else { throw .trailingBytes(at: r.offset) }
        self = msg
    }

    /// Encodes the message with name compression (RFC 1035 §4.1.4).
    public func encoded() -> [UInt8] {
        var w = WireWriter()
        w.header(header, qd: questions.count, an: answers.count, ns: authority.count, ar: additional.count)
        for q in questions {
            w.name(q.name)
            w.u16(q.type)
            w.u16(q.qclass)
        }
        for rr in answers { w.record(rr) }
        for rr in authority { w.record(rr) }
        for rr in additional { w.record(rr) }
        return w.bytes
    }
}

extension WireReader {
    /// Reads one resource record, decoding RDATA of known types and checking it fills RDLENGTH exactly.
    public mutating func record() throws(DNSDecodingError) -> ResourceRecord {
        let name = try self.name()
        let type = try u16()
        let rclass = try u16()
        let ttl = try u32()
        let rdlen = Int(try u16())
        let start = offset
        guard remaining >= rdlen else { throw .truncated(at: offset) }
        let end = start + rdlen
        let rdata: RData
        switch type {
        case RRType.a:
            guard rdlen == 4 else { throw .badRData(at: start) }
            rdata = .a(try u32())
        case RRType.aaaa:
            guard rdlen == 16 else { throw .badRData(at: start) }
            rdata = .aaaa(Array(try take(16)))
        case RRType.ns:
            rdata = .ns(try self.name())
        case RRType.cname:
            rdata = .cname(try self.name())
        case RRType.mx:
            let pref = try u16()
            rdata = .mx(preference: pref, exchange: try self.name())
        case RRType.soa:
            let m = try self.name(), rn = try self.name()
            rdata = .soa(mname: m, rname: rn, serial: try u32(), refresh: try u32(), retry: try u32(), expire: try u32(), minimum: try u32())
        case RRType.txt:
            var strings = [[UInt8]]()
            while offset < end {
                let len = Int(try u8())
                guard offset + len <= end else { throw .badRData(at: offset) }
                strings.append(Array(try take(len)))
            }
            rdata = .txt(strings)
        case RRType.opt:
            var options = [EDNSOption]()
            while offset < end {
                guard end - offset >= 4 else { throw .badRData(at: offset) }
                let code = try u16()
                let len = Int(try u16())
                guard offset + len <= end else { throw .badRData(at: offset) }
                options.append(EDNSOption(code: code, data: Array(try take(len))))
            }
            rdata = .opt(options)
        default:
            rdata = .unknown(Array(try take(rdlen)))
        }
        guard offset == end else { throw .badRData(at: start) }
        return ResourceRecord(name: name, type: type, rclass: rclass, ttl: ttl, rdata: rdata)
    }
}

/// Builds a message into one growing buffer, compressing names against earlier ones (pointers only backwards).
/// Suffixes match byte for byte, case included, so every name keeps the spelling it was given (RFC 4343 §4.1).
public struct WireWriter {
    public private(set) var bytes: [UInt8]
    /// Offsets of name suffixes already written (≤ 0x3FFF so a pointer can reach them), with their wire form.
    private var suffixes: [(offset: Int, name: ArraySlice<UInt8>)] = []

    public init(capacity: Int = 512) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xff)) }
    public mutating func u32(_ v: UInt32) {
        bytes.append(UInt8(v >> 24)); bytes.append(UInt8(v >> 16 & 0xff))
        bytes.append(UInt8(v >> 8 & 0xff)); bytes.append(UInt8(v & 0xff))
    }
    public mutating func raw<C: Collection>(_ c: C) where C.Element == UInt8 { bytes.append(contentsOf: c) }

    /// Overwrites a 16-bit field written earlier (e.g. RDLENGTH or a count).
    public mutating func patch16(at index: Int, _ v: UInt16) {
        guard index >= 0, index + 1 < bytes.count else { return }
        bytes[index] = UInt8(v >> 8)
        bytes[index + 1] = UInt8(v & 0xff)
    }

    public mutating func header(_ h: DNSHeader, qd: Int, an: Int, ns: Int, ar: Int) {
        u16(h.id)
        u16(h.flags)
        u16(UInt16(clamping: qd)); u16(UInt16(clamping: an)); u16(UInt16(clamping: ns)); u16(UInt16(clamping: ar))
    }

    /// Writes a name, replacing its longest already-written suffix with a pointer.
    public mutating func name(_ name: DNSName, compress: Bool = true) {
        let wire = name.wire
        var i = 0
        while i < wire.count, wire[i] != 0 {
            let suffix = wire[i...]
            if compress, let hit = suffixes.first(where: { $0.name.elementsEqual(suffix) }) {
                u16(0xC000 | UInt16(hit.offset))
                return
            }
            if bytes.count <= 0x3FFF { suffixes.append((bytes.count, suffix)) }
            let len = Int(wire[i])
            guard i + 1 + len <= wire.count else { break }
            bytes.append(contentsOf: wire[i...(i + len)])
            i += len + 1
        }
        bytes.append(0)
    }

    /// Writes a record with its RDATA, compressing names inside NS/CNAME/SOA/MX RDATA (RFC 3597 §4 allows these).
    public mutating func record(_ rr: ResourceRecord) {
        name(rr.name)
        u16(rr.type)
        u16(rr.rclass)
        u32(rr.ttl)
        let lenAt = bytes.count
        u16(0)
        switch rr.rdata {
        case .a(let v): u32(v)
        case .aaaa(let b): raw(b)
        case .ns(let n), .cname(let n): name(n)
        case let .soa(m, r, serial, refresh, retry, expire, minimum):
            name(m); name(r)
            u32(serial); u32(refresh); u32(retry); u32(expire); u32(minimum)
        case let .mx(pref, ex):
            u16(pref); name(ex)
        case .txt(let strings):
            for s in strings {
                let chunk = s.prefix(255)
                u8(UInt8(chunk.count))
                raw(chunk)
            }
        case .opt(let options):
            for o in options {
                u16(o.code)
                u16(UInt16(clamping: o.data.count))
                raw(o.data)
            }
        case .unknown(let b): raw(b)
        }
        patch16(at: lenAt, UInt16(clamping: bytes.count - lenAt - 2))
    }
}
