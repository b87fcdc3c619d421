import LodestarGeo
import LodestarSelection
import LodestarTopology

/// How a query reached the server (decides truncation and which limits apply).
public enum DNSTransport: Sendable {
    case udp, tcp
}

/// What kind of answer a response is (for rate limiting, metrics and logs).
public enum ResponseKind: Sendable, Equatable {
    case answer, referral, nodata, nxdomain, refused, error
}

/// A response ready to send, and what it was.
public struct DNSResponse: Sendable {
    public var bytes: [UInt8]
    public var rcode: UInt16
    public var kind: ResponseKind
    /// Lower-cased query name (empty when the question could not be read), for RRL buckets.
    public var qname: DNSName
    /// True when the response had to be truncated to fit the UDP payload size.
    public var truncated: Bool
    /// True when any query with the same `AnswerKey` gets the same bytes (ID aside): no random draw decided it.
    public var reusable: Bool = true
    /// The question's type (0 when there was no readable question), for metrics and the query log.
    public var qtype: UInt16 = 0
    /// True when the query carried an EDNS Client Subnet option.
    public var hadClientSubnet = false
    /// The GSLB decision behind an address answer (nil for every other response).
    public var decision: AnswerDecision?
}

/// Which edge a GSLB answer named, and where GeoIP put the client (for metrics, `/status` and the query log).
public struct AnswerDecision: Sendable, Hashable {
    /// The first edge answered.
    public var edge: String
    /// That edge's region.
    public var region: String
    /// The client's ISO country code from GeoIP ("" when unknown).
    public var country: String
    /// The client's continent code from GeoIP ("" when unknown).
    public var continent: String
    /// Where GeoIP placed the client (not part of equality: decisions are counted per country and edge).
    public var latitude: Double?
    public var longitude: Double?

    /// A decision record.
    public init(edge: String, region: String, country: String, continent: String, latitude: Double? = nil,
                longitude: Double? = nil) {
        self.edge = edge
        self.region = region
        self.country = country
        self.continent = continent
        self.latitude = latitude
        self.longitude = longitude
    }

    public static func == (a: AnswerDecision, b: AnswerDecision) -> Bool {
        a.edge == b.edge && a.region == b.region && a.country == b.country && a.continent == b.continent
    }

    public func hash(into h: inout Hasher) {
        h.combine(edge)
        h.combine(region)
        h.combine(country)
        h.combine(continent)
    }
}

/// The authoritative answer engine: zone data, GSLB services, EDNS/ECS/NSID. Pure — no sockets or clocks.
/// It is immutable and safe to share between event loops; a reload builds a new one.
public final class Authority: Sendable {
    /// Zone data after normalisation (lower-case owners).
    struct Node: Sendable {
        var rrsets: [UInt16: [ResourceRecord]] = [:]
        var service: Service?
    }

    public let topology: Topology
    let apex: DNSName
    let nodes: [DNSName: Node]
    /// Every owner name and every ancestor up to the apex (empty non-terminals answer NODATA, RFC 8020).
    let existing: Set<DNSName>
    /// Names below the apex that carry NS records (delegation points).
    let delegations: Set<DNSName>
    let soa: ResourceRecord
    let negativeTTL: UInt32
    let selector: EdgeSelector
    /// The compiled answer engine (nil: every answer takes the reference path, `selector` with a live `geo` lookup).
    let engine: AnswerEngine?
    let geo: any GeoLocator
    let health: any HealthView
    let nodeIdBytes: [UInt8]
    let maxUDPPayload: Int
    /// The services `fastRespond` answers.
    let fastServices: FastServiceTable
    /// Signs answers to queries with DO (nil: the zone is not signed).
    public let signer: ZoneSigner?

    /// The configuration version (a digest of the topology file and GeoIP database) that `CH TXT config.lodestar.` reports.
    public let configVersion: String

    public init(topology: Topology, geo: any GeoLocator, health: any HealthView, configVersion: String = "",
                engine: AnswerEngine? = nil, signer: ZoneSigner? = nil) {
        self.configVersion = configVersion
        self.signer = signer
        self.topology = topology
        self.engine = engine
        self.geo = geo
        self.health = health
        selector = EdgeSelector(topology: topology)
        nodeIdBytes = Array(topology.dns.nodeId.utf8)
        maxUDPPayload = topology.dns.maxUDPPayload
        let zone = topology.zone
        apex = (DNSName(zone.name) ?? .root).lowercased
        let s = zone.soa
        soa = ResourceRecord(name: apex, type: RRType.soa, rclass: RRClass.in, ttl: s.ttlSeconds,
                             rdata: .soa(mname: DNSName(s.primary) ?? .root, rname: DNSName(s.contact) ?? .root,
                                         serial: s.serial, refresh: s.refreshSeconds, retry: s.retrySeconds,
                                         expire: s.expireSeconds, minimum: s.minimumSeconds))
        negativeTTL = min(s.ttlSeconds, s.minimumSeconds)

        var nodes = [DNSName: Node]()
        func add(_ owner: String, _ type: UInt16, _ ttl: UInt32, _ rdata: RData) {
            guard let name = DNSName(owner)?.lowercased else { return }
            nodes[name, default: Node()].rrsets[type, default: []].append(
                ResourceRecord(name: name, type: type, rclass: RRClass.in, ttl: ttl, rdata: rdata))
        }
        nodes[apex, default: Node()].rrsets[RRType.soa] = [soa]
        if let signer { nodes[apex, default: Node()].rrsets[RRType.dnskey] = signer.dnskeyRecords(ttl: s.ttlSeconds) }
        for ns in zone.nameservers {
            add(zone.name, RRType.ns, ns.ttlSeconds, .ns(DNSName(ns.name) ?? .root))
            let inZone = ns.name == zone.name || ns.name.hasSuffix("." + zone.name)
            guard inZone else { continue }
            for a in ns.addresses { add(ns.name, a.isIPv4 ? RRType.a : RRType.aaaa, ns.ttlSeconds, Authority.rdata(for: a)) }
        }
        var delegations = Set<DNSName>()
        for r in zone.records {
            switch r.data {
            case .a(let ip), .aaaa(let ip): add(r.name, ip.isIPv4 ? RRType.a : RRType.aaaa, r.ttlSeconds, Authority.rdata(for: ip))
            case .cname(let t): add(r.name, RRType.cname, r.ttlSeconds, .cname(DNSName(t) ?? .root))
            case .ns(let t):
                add(r.name, RRType.ns, r.ttlSeconds, .ns(DNSName(t) ?? .root))
                if let n = DNSName(r.name)?.lowercased { delegations.insert(n) }
            case .mx(let pref, let ex): add(r.name, RRType.mx, r.ttlSeconds, .mx(preference: pref, exchange: DNSName(ex) ?? .root))
            case .txt(let strings): add(r.name, RRType.txt, r.ttlSeconds, .txt(strings.map { Array($0.utf8) }))
            }
        }
        for service in topology.services {
            guard let name = DNSName(service.fqdn)?.lowercased else { continue }
            nodes[name, default: Node()].service = service
        }
        var existing = Set<DNSName>()
        for name in nodes.keys {
            var n: DNSName? = name
            while let cur = n, cur.isSubdomain(of: apex) {
                if !existing.insert(cur).inserted { break }
                n = cur.parent
            }
        }
        self.nodes = nodes
        self.existing = existing
        self.delegations = delegations
        fastServices = FastServiceTable(authority: nodes, delegations: delegations, apex: apex, engine: engine)
    }

    static func rdata(for ip: IPAddress) -> RData {
        switch ip {
        case .v4(let v): return .a(v)
        case .v6: return .aaaa(ip.bytes)
        }
    }

    // MARK: Answering

    /// Answers one query packet from `client`, or returns nil when it must be dropped
    /// (shorter than a header, or itself a response). Never traps on any input.
    public func respond<R: RandomNumberGenerator>(to packet: [UInt8], from client: IPAddress, transport: DNSTransport,
                                                  random: inout R) -> DNSResponse? {
        guard packet.count >= 12 else { return nil }
        var headerReader = WireReader(packet)
        guard let id = try? headerReader.u16(), let flags = try? headerReader.u16() else { return nil }
        let queryHeader = DNSHeader(id: id, flags: flags)
        guard !queryHeader.isResponse else { return nil }

        let query: DNSMessage
        do {
            query = try DNSMessage(decoding: packet)
        } catch {
            return errorResponse(RCode.formErr, header: queryHeader, question: nil, opt: nil, transport: transport)
        }
        let question = query.questions.count == 1 ? query.questions.first : nil

        // EDNS (RFC 6891 §6.1.1): at most one OPT, owned by the root.
        let opts = query.additional.filter { $0.type == RRType.opt }
        guard opts.count <= 1 else { return errorResponse(RCode.formErr, header: queryHeader, question: question, opt: nil, transport: transport) }
        var edns: EDNSQuery?
        if let opt = opts.first {
            guard opt.name == .root, case .opt(let options) = opt.rdata else {
                return errorResponse(RCode.formErr, header: queryHeader, question: question, opt: nil, transport: transport)
            }
            var e = EDNSQuery(payloadSize: max(512, Int(opt.rclass)), version: UInt8((opt.ttl >> 16) & 0xFF),
                              dnssecOK: opt.ttl & 0x8000 != 0)
            for o in options {
                switch o.code {
                case EDNSOptionCode.nsid:
                    e.wantsNSID = true
                case EDNSOptionCode.clientSubnet:
                    guard e.clientSubnet == nil, let ecs = ClientSubnet(optionData: o.data) else {
                        return errorResponse(RCode.formErr, header: queryHeader, question: question, opt: EDNSQuery(payloadSize: e.payloadSize, version: 0, dnssecOK: e.dnssecOK), transport: transport)
                    }
                    e.clientSubnet = ecs
                default:
                    break  // Unknown options are ignored (RFC 6891 §6.1.2).
                }
            }
            edns = e
            if e.version > 0 {
                return errorResponse(RCode.badVers, header: queryHeader, question: question, opt: e, transport: transport)
            }
        }
        // RFC 6891 §7: once the query had OPT, every reply (NOTIMP and FORMERR too) carries OPT.
        guard queryHeader.opcode == 0 else {
            return errorResponse(RCode.notImp, header: queryHeader, question: question, opt: edns, transport: transport)
        }
        guard let q = question else {
            return errorResponse(RCode.formErr, header: queryHeader, question: nil, opt: edns, transport: transport)
        }

        var ctx = AnswerContext(query: queryHeader, question: q, edns: edns, transport: transport)
        ctx.source = client
        ctx.client = client
        if let ecs = edns?.clientSubnet, ecs.sourcePrefixLength > 0, let addr = ecs.address {
            ctx.client = addr
            ctx.locatedByECS = true
        }

        switch q.type {
        case RRType.opt:
            return errorResponse(RCode.formErr, header: queryHeader, question: q, opt: edns, transport: transport)
        case RRType.axfr, RRType.ixfr:
            refuse(&ctx)
            return finish(&ctx)
        default:
            break
        }

        switch q.qclass {
        case RRClass.in, RRClass.any:
            answerIN(&ctx, random: &random)
        case RRClass.ch:
            answerChaos(&ctx, random: &random)
        default:
            refuse(&ctx)
        }
        return finish(&ctx)
    }

    /// EDNS parameters of a query.
    struct EDNSQuery {
        var payloadSize: Int
        var version: UInt8
        var dnssecOK: Bool
        var wantsNSID = false
        var clientSubnet: ClientSubnet?
    }

    /// Everything the answer under construction needs.
    struct AnswerContext {
        let query: DNSHeader
        let question: DNSQuestion
        let edns: EDNSQuery?
        let transport: DNSTransport
        /// The source address of the query.
        var source: IPAddress = .v4(0)
        /// Where the client is taken to be: the ECS address, or else the source address.
        var client: IPAddress = .v4(0)
        /// True when an ECS option (SOURCE > 0) gave `client`.
        var locatedByECS = false
        var rcode: UInt16 = RCode.noError
        var kind: ResponseKind = .answer
        var authoritative = true
        var answers: [ResourceRecord] = []
        var authority: [ResourceRecord] = []
        var additional: [ResourceRecord] = []
        /// ECS scope to return; 0 unless the answer was tailored to the client's location.
        var scope = 0
        /// Cleared when a random draw chose among equally near edges.
        var reusable = true
        /// Set by a GSLB answer.
        var decision: AnswerDecision?

        init(query: DNSHeader, question: DNSQuestion, edns: EDNSQuery?, transport: DNSTransport) {
            self.query = query
            self.question = question
            self.edns = edns
            self.transport = transport
        }
    }

    /// Answers class IN: REFUSED outside the zone, referral below a delegation, CNAME chains, NXDOMAIN/NODATA with SOA.
    func answerIN<R: RandomNumberGenerator>(_ ctx: inout AnswerContext, random: inout R) {
        var name = ctx.question.name.lowercased
        guard name.isSubdomain(of: apex) else {
            refuse(&ctx)
            return
        }
        var owner = ctx.question.name  // the query's spelling, preserved in the answer
        var visited = [DNSName]()  // names already answered in this CNAME chain (empty unless a CNAME is followed)
        for _ in 0..<9 {
            // DS lives on the parent side of a cut (RFC 4035 §3.1.4.1): a DS query for the cut itself is answered here.
            if let cut = delegation(covering: name), !(cut == name && ctx.question.type == RRType.ds) {
                referral(&ctx, at: cut)
                return
            }
            guard !visited.contains(name) else { return }  // CNAME loop: answer what we have
            guard let node = nodes[name] ?? wildcard(matching: name) else {
                if existing.contains(name) { nodata(&ctx) } else { nxdomain(&ctx) }
                return
            }
            let qtype = ctx.question.type
            if qtype != RRType.cname, qtype != RRType.any, let cname = node.rrsets[RRType.cname]?.first,
               case .cname(let target) = cname.rdata {
                ctx.answers.append(renamed(cname, owner))
                let t = target.lowercased
                guard t.isSubdomain(of: apex) else { return }
                visited.append(name)
                name = t
                owner = target
                continue
            }
            if let service = node.service {
                answerService(&ctx, service: service, owner: owner, random: &random)
                return
            }
            var types: [UInt16]
            if qtype == RRType.any {
                // RFC 8482 §4.2: answer one RRset of what exists rather than all of them.
                types = [RRType.a, RRType.aaaa, RRType.cname, RRType.mx, RRType.txt, RRType.ns, RRType.soa]
                    .filter { node.rrsets[$0] != nil }.prefix(1).map { $0 }
            } else {
                types = node.rrsets[qtype] != nil ? [qtype] : []
            }
            if types.isEmpty {
                nodata(&ctx)
                return
            }
            for t in types {
                for rr in node.rrsets[t] ?? [] { ctx.answers.append(renamed(rr, owner)) }
            }
            addGlue(&ctx)
            return
        }
    }

    /// GSLB answer: the nearest healthy edges for the client (ECS address or source), ECS scope from GeoIP.
    func answerService<R: RandomNumberGenerator>(_ ctx: inout AnswerContext, service: Service, owner: DNSName, random: inout R) {
        let qtype = ctx.question.type
        let family: EdgeSelector.Family
        switch qtype {
        case RRType.a, RRType.any: family = .v4
        case RRType.aaaa: family = .v6
        default:
            nodata(&ctx)
            return
        }
        let selection: EdgeSelection
        let location: GeoLocation?
        if let engine, let compiled = engine.select(service: service, client: ctx.client, family: family, health: health,
                                                    random: &random) {
            selection = compiled
            location = engine.location(of: ctx.client)
        } else {
            let geoResult = geo.lookup(ctx.client)
            selection = selector.select(service: service, client: ctx.client, geo: geoResult, family: family,
                                        health: health, random: &random)
            location = geoResult.location
        }
        ctx.scope = selection.scopePrefixLength
        if !selection.deterministic { ctx.reusable = false }
        let type = family == .v4 ? RRType.a : RRType.aaaa
        let ttl = min(service.ttlSeconds, selection.ttlCapSeconds.map { UInt32(clamping: $0) } ?? service.ttlSeconds)
        if let first = selection.chosen.first {
            ctx.decision = AnswerDecision(edge: first.id, region: first.region, country: location?.country ?? "",
                                          continent: location?.continent ?? "",
                                          latitude: location?.latitude, longitude: location?.longitude)
        }
        for edge in selection.chosen {
            for ip in edge.addresses where ip.isIPv4 == (family == .v4) {
                ctx.answers.append(ResourceRecord(name: owner, type: type, rclass: RRClass.in, ttl: ttl,
                                                  rdata: Authority.rdata(for: ip)))
            }
        }
        if ctx.answers.isEmpty || !ctx.answers.contains(where: { $0.type == type }) {
            nodata(&ctx)
        }
    }

    /// NOERROR with no data: SOA in authority with the negative TTL (RFC 2308 §2.2, §3).
    func nodata(_ ctx: inout AnswerContext) {
        ctx.kind = ctx.answers.isEmpty ? .nodata : .answer
        ctx.authority = [negativeSOA]
    }

    /// Name does not exist: NXDOMAIN with SOA (RFC 2308 §2.1); after a CNAME the RCODE describes the last name (RFC 6604).
    func nxdomain(_ ctx: inout AnswerContext) {
        ctx.rcode = RCode.nxDomain
        ctx.kind = .nxdomain
        ctx.authority = [negativeSOA]
    }

    var negativeSOA: ResourceRecord {
        var r = soa
        r.ttl = negativeTTL
        return r
    }

    /// Adds in-zone addresses of MX exchanges and NS targets (RFC 1035 §3.3.9 additional section processing).
    func addGlue(_ ctx: inout AnswerContext) {
        for rr in ctx.answers { Self.appendGlue(of: rr, nodes: nodes, apex: apex, to: &ctx.additional) }
    }

    /// The glue of one answer record (an MX exchange's or NS target's in-zone addresses), added to `list` once each
    /// (also how `FastStatic` precompiles it).
    static func appendGlue(of rr: ResourceRecord, nodes: [DNSName: Node], apex: DNSName, to list: inout [ResourceRecord]) {
        switch rr.rdata {
        case .mx(_, let target), .ns(let target): appendAddresses(of: target, nodes: nodes, apex: apex, to: &list)
        default: break
        }
    }

    func appendAddresses(of target: DNSName, to list: inout [ResourceRecord]) {
        Self.appendAddresses(of: target, nodes: nodes, apex: apex, to: &list)
    }

    static func appendAddresses(of target: DNSName, nodes: [DNSName: Node], apex: DNSName, to list: inout [ResourceRecord]) {
        let t = target.lowercased
        guard t.isSubdomain(of: apex), let node = nodes[t], node.service == nil else { return }
        for type in [RRType.a, RRType.aaaa] {
            for rr in node.rrsets[type] ?? [] where !list.contains(rr) { list.append(rr) }
        }
    }

    /// REFUSED, without AA: we do not answer for this name or class (RFC 1035 §4.1.1).
    func refuse(_ ctx: inout AnswerContext) {
        ctx.rcode = RCode.refused
        ctx.kind = .refused
        ctx.authoritative = false
    }

    /// True for a TXT or ANY question; otherwise marks the answer NODATA (CHAOS names hold only TXT).
    func asksForTXT(_ ctx: inout AnswerContext) -> Bool {
        guard ctx.question.type == RRType.txt || ctx.question.type == RRType.any else {
            ctx.kind = .nodata
            return false
        }
        return true
    }

    func renamed(_ rr: ResourceRecord, _ owner: DNSName) -> ResourceRecord {
        var r = rr
        r.name = owner
        return r
    }
}
