import LodestarTopology

/// A zone name whose answers never depend on the client (its own records, no service, no CNAME, no delegation above
/// it), precompiled for the fast path: per type stored at the name, the sections after the question exactly as the
/// full path encodes them for a question in lower case (answers renamed to the question, then the glue).
final class FastStatic: Sendable {
    /// One type's answer: its type, the bytes after the question, and the answer and additional counts.
    struct Body: Sendable {
        let qtype: UInt16
        let bytes: [UInt8]
        let answerCount: UInt16
        let additionalCount: UInt16
    }

    let wire: [UInt8]
    let name: DNSName
    let bodies: [Body]

    init(name: DNSName, bodies: [Body]) {
        wire = name.wire
        self.name = name
        self.bodies = bodies
    }

    /// The body answering `qtype`, by its index in `bodies`.
    @inline(__always)
    func body(for qtype: UInt16) -> Int? {
        for k in bodies.indices where bodies[k].qtype == qtype { return k }
        return nil
    }

    /// Every static name of a zone with its precompiled answers. A name qualifies when the full path answers it from
    /// its own records alone: no service at it, no CNAME (a chain may end at a service), not at or below a delegation.
    static func compile(nodes: [DNSName: Authority.Node], delegations: Set<DNSName>, apex: DNSName) -> [FastStatic] {
        var out: [FastStatic] = []
        for (name, node) in nodes.sorted(by: { $0.key.wire.lexicographicallyPrecedes($1.key.wire) }) {
            guard node.service == nil, node.rrsets[RRType.cname] == nil, name.isSubdomain(of: apex),
                  Authority.delegation(covering: name, among: delegations, apex: apex) == nil else { continue }
            var bodies: [Body] = []
            for (type, rrset) in node.rrsets.sorted(by: { $0.key < $1.key }) where !rrset.isEmpty {
                var glue: [ResourceRecord] = []
                for rr in rrset { Authority.appendGlue(of: rr, nodes: nodes, apex: apex, to: &glue) }
                let message = DNSMessage(questions: [DNSQuestion(name: name, type: type, qclass: RRClass.in)],
                                         answers: rrset, additional: glue)
                let bytes = message.encoded()
                let questionEnd = 12 + name.wire.count + 4
                guard bytes.count > questionEnd, rrset.count <= 0xFFFF, glue.count < 0xFFFF else { continue }
                bodies.append(Body(qtype: type, bytes: Array(bytes[questionEnd...]), answerCount: UInt16(rrset.count),
                                   additionalCount: UInt16(glue.count)))
            }
            if !bodies.isEmpty { out.append(FastStatic(name: name, bodies: bodies)) }
        }
        return out
    }
}

extension Authority {
    /// Writes a static name's answer (`FastStatic`) for a query read by `readFastQuery`: header, the question as sent,
    /// the precompiled sections, then OPT as the full path writes it (ECS scope 0: the answer is everyone's). Nil when
    /// it does not fit the client's payload size or `out` (the full path then truncates), or for DO in a signed zone.
    func fastStaticRespond(_ q: FastQuery, packet: UnsafeRawBufferPointer, client: IPAddress,
                           into out: UnsafeMutableRawBufferPointer) -> FastAnswer? {
        guard let name = fastServices.staticName(at: q.service), q.staticBody >= 0, q.staticBody < name.bodies.count,
              !(q.dnssecOK && signer != nil) else { return nil }
        let body = name.bodies[q.staticBody]
        let length = q.questionEnd + body.bytes.count + optLength(q)
        guard fits(length, q, packet: packet, out: out) else { return nil }
        var w = FastWriter(out)
        writeHeader(&w, packet, q, answers: body.answerCount, additional: body.additionalCount)
        body.bytes.withUnsafeBytes { w.bytes($0, 0, $0.count) }
        if q.hasOPT { writeOPT(&w, q, scope: 0) }
        guard !w.overflowed, w.count == length else { return nil }
        return FastAnswer(length: w.count, qtype: body.qtype, hadClientSubnet: q.ecsLength > 0, reusable: true,
                          service: q.service, slot: -1, firstEdge: 0, located: client)
    }
}
