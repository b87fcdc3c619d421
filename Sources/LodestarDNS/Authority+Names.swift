/// Where a name sits in the zone: below a delegation (a referral), or answered from a wildcard (RFC 4592).
extension Authority {
    /// RFC 4592 §3.3.1: the wildcard that answers for a name that does not exist — `*.` its closest encloser (the
    /// nearest ancestor that exists, possibly as an empty non-terminal), if that wildcard exists. A name that exists,
    /// even with no data, is never answered from a wildcard.
    func wildcard(matching name: DNSName) -> Node? {
        guard !existing.contains(name) else { return nil }
        var encloser = name.parent
        while let e = encloser, !existing.contains(e) {
            guard e.isSubdomain(of: apex) else { return nil }
            encloser = e.parent
        }
        guard let closest = encloser else { return nil }
        return nodes[DNSName(wire: [1, UInt8(ascii: "*")] + closest.wire)]
    }

    /// The closest delegation point at or above `name` (below the apex), if any.
    func delegation(covering name: DNSName) -> DNSName? {
        Self.delegation(covering: name, among: delegations, apex: apex)
    }

    /// The same over given delegation points (for tables built while the authority is being made).
    static func delegation(covering name: DNSName, among delegations: Set<DNSName>, apex: DNSName) -> DNSName? {
        guard !delegations.isEmpty else { return nil }
        var n: DNSName? = name
        while let cur = n, cur != apex, cur.isSubdomain(of: apex) {
            if delegations.contains(cur) { return cur }
            n = cur.parent
        }
        return nil
    }

    /// RFC 1034 §4.3.2 step 3b: not authoritative below a cut; NS in authority, glue in additional.
    func referral(_ ctx: inout AnswerContext, at cut: DNSName) {
        ctx.authoritative = false
        ctx.kind = .referral
        ctx.authority = nodes[cut]?.rrsets[RRType.ns] ?? []
        for rr in ctx.authority {
            if case .ns(let target) = rr.rdata { appendAddresses(of: target, to: &ctx.additional) }
        }
    }
}
