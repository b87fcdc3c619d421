import LodestarTopology

/// The client side of DNS that the edge needs for origin names: a recursive query (RD set) for the A or AAAA records
/// of a name, and what the answer says — the addresses after following the CNAME chain, with the smallest TTL met
/// on the way, or why there are none. Pure: the adapter sends the bytes and hands back what arrives.
public enum StubLookup {
    /// What an answer says about the name.
    public enum Outcome: Equatable, Sendable {
        /// Addresses of the asked type (possibly after CNAMEs), kept for `ttl` seconds.
        case addresses([IPAddress], ttl: UInt32)
        /// The name does not exist (NXDOMAIN) or has no record of that type (NODATA); the negative TTL (RFC 2308:
        /// the SOA's minimum and TTL, whichever is smaller), 0 without an SOA.
        case none(ttl: UInt32, nxdomain: Bool)
        /// The answer was cut (TC): ask again over TCP.
        case truncated
        /// Not an answer to this question, or a server failure (SERVFAIL, REFUSED, …): ask elsewhere.
        case failure(String)
    }

    /// The EDNS payload size offered (RFC 9715's safe default).
    public static let payloadSize: UInt16 = 1232

    /// The query for `name`'s records of `type` (`RRType.a` or `.aaaa`) with `id`; nil when the name is not a valid
    /// domain name.
    public static func query(name: String, type: UInt16, id: UInt16) -> [UInt8]? {
        guard let qname = DNSName(name) else { return nil }
        var header = DNSHeader()
        header.id = id
        header.recursionDesired = true
        let opt = ResourceRecord(name: .root, type: RRType.opt, rclass: payloadSize, ttl: 0, rdata: .opt([]))
        return DNSMessage(header: header, questions: [DNSQuestion(name: qname, type: type, qclass: RRClass.in)],
                          additional: [opt]).encoded()
    }

    /// Reads the answer to `query(name:type:id:)`.
    public static func parse(_ bytes: [UInt8], name: String, type: UInt16, id: UInt16) -> Outcome {
        guard let asked = DNSName(name)?.lowercased else { return .failure("invalid name") }
        let message: DNSMessage
        do {
            message = try DNSMessage(decoding: bytes)
        } catch {
            return .failure("malformed answer: \(error)")
        }
        let h = message.header
        guard h.isResponse, h.id == id, message.questions.count == 1, let q = message.questions.first,
              q.name.lowercased == asked, q.type == type, q.qclass == RRClass.in else {
            return .failure("an answer to another question")
        }
        if h.truncated { return .truncated }
        switch message.rcode {
        case RCode.noError: break
        case RCode.nxDomain: return .none(ttl: negativeTTL(message), nxdomain: true)
        default: return .failure("rcode \(message.rcode)")
        }
        return follow(message, from: asked, type: type)
    }

    /// Follows CNAMEs from `asked` through the answer section (at most 16 steps, loops cut) and collects the records
    /// of `type` at the end.
    static func follow(_ message: DNSMessage, from asked: DNSName, type: UInt16) -> Outcome {
        var current = asked
        var ttl = UInt32.max
        var seen: Set<DNSName> = [asked]
        for _ in 0..<16 {
            let here = message.answers.filter { $0.rclass == RRClass.in && $0.name.lowercased == current }
            let found: [IPAddress] = here.compactMap { rr in
                guard rr.type == type else { return nil }
                ttl = min(ttl, rr.ttl)
                switch rr.rdata {
                case .a(let v): return .v4(v)
                case .aaaa(let b): return IPAddress(bytes: b)
                default: return nil
                }
            }
            if !found.isEmpty { return .addresses(found, ttl: ttl) }
            guard let alias = here.first(where: { $0.type == RRType.cname }), case .cname(let target) = alias.rdata else { break }
            ttl = min(ttl, alias.ttl)
            current = target.lowercased
            guard seen.insert(current).inserted else { return .failure("CNAME loop") }
        }
        return .none(ttl: negativeTTL(message), nxdomain: false)
    }

    /// RFC 2308 §5: the SOA record's TTL or its MINIMUM field, whichever is smaller.
    static func negativeTTL(_ message: DNSMessage) -> UInt32 {
        for rr in message.authority {
            if case .soa(_, _, _, _, _, _, let minimum) = rr.rdata { return min(rr.ttl, minimum) }
        }
        return 0
    }
}
