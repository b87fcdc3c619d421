/// The response packet: header flags, OPT (NSID, ECS scope, DO), DNSSEC records, truncation.
extension Authority {
    // MARK: Building the packet

    /// Header, question and OPT for an error response.
    func errorResponse(_ rcode: UInt16, header: DNSHeader, question: DNSQuestion?, opt: EDNSQuery?, transport: DNSTransport) -> DNSResponse {
        var ctx = AnswerContext(query: header, question: question ?? DNSQuestion(name: .root, type: 0, qclass: 0), edns: opt, transport: transport)
        ctx.rcode = rcode
        ctx.kind = .error
        ctx.authoritative = false
        return finish(&ctx, includeQuestion: question != nil)
    }

    /// Encodes the response; over UDP, one that exceeds the client's payload size is cut to header+question+OPT with TC=1 (RFC 2181 §9).
    func finish(_ ctx: inout AnswerContext, includeQuestion: Bool = true) -> DNSResponse {
        addDNSSEC(&ctx)
        var h = DNSHeader()
        h.id = ctx.query.id
        h.isResponse = true
        h.opcode = ctx.query.opcode
        h.recursionDesired = ctx.query.recursionDesired
        h.checkingDisabled = ctx.query.checkingDisabled
        h.authoritative = ctx.authoritative
        h.rcode = UInt8(ctx.rcode & 0x0F)
        var opt: ResourceRecord?
        if let e = ctx.edns {
            var options = [EDNSOption]()
            if e.wantsNSID { options.append(EDNSOption(code: EDNSOptionCode.nsid, data: nodeIdBytes)) }
            if let ecs = e.clientSubnet {
                let scope = min(ctx.scope, ecs.sourcePrefixLength)
                options.append(EDNSOption(code: EDNSOptionCode.clientSubnet, data: ecs.responseData(scope: scope)))
            }
            let ttl = UInt32(ctx.rcode >> 4) << 24 | (e.dnssecOK ? 0x8000 : 0)
            opt = ResourceRecord(name: .root, type: RRType.opt, rclass: UInt16(maxUDPPayload), ttl: ttl, rdata: .opt(options))
        }
        let questions = includeQuestion ? [ctx.question] : []
        var msg = DNSMessage(header: h, questions: questions, answers: ctx.answers, authority: ctx.authority,
                             additional: ctx.additional + (opt.map { [$0] } ?? []))
        var bytes = msg.encoded()
        var truncated = false
        if ctx.transport == .udp {
            let limit = ctx.edns.map { min(max(512, $0.payloadSize), maxUDPPayload) } ?? 512
            if bytes.count > limit {
                msg.header.truncated = true
                msg.answers = []
                msg.authority = []
                msg.additional = opt.map { [$0] } ?? []
                bytes = msg.encoded()
                truncated = true
            }
        }
        return DNSResponse(bytes: bytes, rcode: ctx.rcode, kind: ctx.kind,
                           qname: includeQuestion ? ctx.question.name.lowercased : .root, truncated: truncated,
                           reusable: ctx.reusable, qtype: includeQuestion ? ctx.question.type : 0,
                           hadClientSubnet: ctx.edns?.clientSubnet != nil, decision: ctx.decision)
    }
}
