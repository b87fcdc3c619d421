/// DNSSEC for answers to queries with DO (RFC 4035 §3.1): RRSIGs for the authoritative RRsets, and denial by compact
/// answers (RFC 9824, "black lies"): a name that does not exist is answered NOERROR with an NSEC at that name whose
/// bitmap holds only NSEC, RRSIG and NXNAME; no data is an NSEC listing what the name does hold. Nothing is
/// precomputed and no NSEC chain exists to walk.
extension Authority {
    /// RFC 9824 §2: the pseudo-type that marks a name as non-existent in a compact denial.
    static let nxname: UInt16 = 128

    /// Adds the DNSSEC records to a finished answer when the query asked for them and the zone signs.
    func addDNSSEC(_ ctx: inout AnswerContext) {
        guard let signer, ctx.edns?.dnssecOK == true, ctx.question.qclass != RRClass.ch,
              ctx.kind != .refused, ctx.kind != .error else { return }
        // The signatures are fresh for a while but not for ever: such responses are not kept in the packet cache.
        ctx.reusable = false
        if ctx.kind == .referral {
            // An insecure delegation: the NSEC at the cut shows there is no DS (RFC 4035 §3.1.4).
            if let cut = ctx.authority.first(where: { $0.type == RRType.ns })?.name {
                ctx.authority.append(nsec(at: cut, types: [RRType.ns, RRType.rrsig, RRType.nsec]))
            }
        } else if ctx.authority.contains(where: { $0.type == RRType.soa }) {
            let name = deniedName(ctx)
            if ctx.rcode == RCode.nxDomain {
                ctx.rcode = RCode.noError
                ctx.authority.append(nsec(at: name, types: [RRType.rrsig, RRType.nsec, Self.nxname]))
            } else {
                var types = Set(existingTypes(at: name))
                types.remove(ctx.question.type)  // the bitmap must not claim what this answer says is absent
                types.formUnion([RRType.rrsig, RRType.nsec])
                ctx.authority.append(nsec(at: name, types: Array(types)))
            }
        }
        ctx.answers = signed(ctx.answers, with: signer)
        ctx.authority = signed(ctx.authority.filter { ctx.kind != .referral || $0.type != RRType.ns }, with: signer)
            + (ctx.kind == .referral ? ctx.authority.filter { $0.type == RRType.ns } : [])
    }

    /// The name a negative answer is about: the last CNAME's target, or else the question.
    func deniedName(_ ctx: AnswerContext) -> DNSName {
        if let last = ctx.answers.last, case .cname(let target) = last.rdata { return target.lowercased }
        return ctx.question.name.lowercased
    }

    /// What types `name` holds (a wildcard's when it is answered from one); a service holds A and AAAA.
    func existingTypes(at name: DNSName) -> [UInt16] {
        guard let node = nodes[name] ?? wildcard(matching: name) else { return [] }
        var types = Array(node.rrsets.keys)
        if node.service != nil { types += [RRType.a, RRType.aaaa] }
        return types
    }

    func nsec(at name: DNSName, types: [UInt16]) -> ResourceRecord {
        ResourceRecord(name: name, type: RRType.nsec, rclass: RRClass.in, ttl: negativeTTL,
                       rdata: .unknown(ZoneSigner.nsecRData(owner: name, types: types)))
    }

    /// Each RRset of `records` followed by its signatures (records keep their order; an RRset is the records with the
    /// same owner, ignoring case, and type).
    func signed(_ records: [ResourceRecord], with signer: ZoneSigner) -> [ResourceRecord] {
        guard !records.isEmpty else { return records }
        var out = [ResourceRecord]()
        out.reserveCapacity(records.count * 2)
        var done = [Int](repeating: 0, count: records.count)
        for i in records.indices where done[i] == 0 {
            let owner = records[i].name.lowercased, type = records[i].type
            var set = [ResourceRecord]()
            for j in i..<records.count where done[j] == 0 && records[j].type == type && records[j].name.lowercased == owner {
                done[j] = 1
                set.append(records[j])
            }
            out.append(contentsOf: set)
            out.append(contentsOf: signer.signatures(for: set))
        }
        return out
    }
}
