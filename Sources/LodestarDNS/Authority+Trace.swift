import LodestarGeo
import LodestarSelection
import LodestarTopology

/// CHAOS answers and the decision traces (`CH TXT` of a service name, `/explain`): they take the reference path,
/// `EdgeSelector` over a live GeoIP lookup, so they can show the placement and every candidate.
extension Authority {
    /// CHAOS class: `id.server`/`hostname.bind` give the node id (RFC 4892), `version.server`/`version.bind` the software,
    /// `config.lodestar` the configuration version and zone serial in force.
    func answerChaos<R: RandomNumberGenerator>(_ ctx: inout AnswerContext, random: inout R) {
        let name = ctx.question.name.lowercased
        if name.isSubdomain(of: apex), let service = nodes[name]?.service {
            answerTrace(&ctx, service: service, random: &random)
            return
        }
        let text: [[UInt8]]
        switch name.description {
        case "id.server.", "hostname.bind.": text = [nodeIdBytes]
        case "version.server.", "version.bind.": text = [Array("Lodestar".utf8)]
        case "config.lodestar.":
            text = [Array("version=\(configVersion)".utf8), Array("serial=\(topology.zone.soa.serial)".utf8)]
        default:
            refuse(&ctx)
            return
        }
        guard asksForTXT(&ctx) else { return }
        ctx.answers.append(ResourceRecord(name: ctx.question.name, type: RRType.txt, rclass: RRClass.ch, ttl: 0, rdata: .txt(text)))
    }

    /// `CH TXT <service name>`: the decision an IN query from this client (ECS or source) would get, and why,
    /// as TXT strings — where GeoIP puts the client, every candidate edge with distance and health, the choice,
    /// and the ECS scope. Who may ask is `dns.trace` (loopback clients only by default).
    func answerTrace<R: RandomNumberGenerator>(_ ctx: inout AnswerContext, service: Service, random: inout R) {
        // Whether a trace is given depends on the source address, which an ECS key leaves out: never cache.
        ctx.reusable = false
        let allowed: Bool
        switch topology.dns.trace {
        case .off: allowed = false
        case .loopback: allowed = ctx.source.isLoopback
        case .any: allowed = true
        }
        guard allowed else {
            refuse(&ctx)
            return
        }
        guard asksForTXT(&ctx) else { return }
        let e = explainDecision(client: ctx.client, locatedByECS: ctx.locatedByECS, service: service, random: &random)
        ctx.scope = e.selection.scopePrefixLength
        let strings = e.lines.map { Array($0.utf8.prefix(255)) }
        ctx.answers.append(ResourceRecord(name: ctx.question.name, type: RRType.txt, rclass: RRClass.ch, ttl: 0, rdata: .txt(strings)))
    }

    /// Why a client gets the answer it gets: the engine's own selection and the trace lines of `CH TXT <service>`.
    public struct Explanation: Sendable {
        /// The client address the decision is for.
        public var client: IPAddress
        /// The service decided for.
        public var service: Service
        /// What GeoIP says of the client.
        public var geo: GeoLookup
        /// The ranking and the choice.
        public var selection: EdgeSelection
        /// The answer TTL.
        public var ttlSeconds: UInt32
        /// The trace, one line per TXT string.
        public var lines: [String]
    }

    /// The decision an address query for `service` (the first service when nil) from `client` would get now.
    public func explain<R: RandomNumberGenerator>(client: IPAddress, locatedByECS: Bool, service: Service? = nil,
                                                  random: inout R) -> Explanation? {
        guard let service = service ?? topology.services.first else { return nil }
        return explainDecision(client: client, locatedByECS: locatedByECS, service: service, random: &random)
    }

    func explainDecision<R: RandomNumberGenerator>(client: IPAddress, locatedByECS: Bool, service: Service,
                                           random: inout R) -> Explanation {
        let geoResult = geo.lookup(client)
        let family: EdgeSelector.Family = client.isIPv4 ? .v4 : .v6
        let selection = selector.select(service: service, client: client, geo: geoResult, family: family,
                                        health: health, random: &random)
        var lines = [String]()
        let via = locatedByECS ? "ECS" : "source address"
        lines.append("client \(client) (\(via)); GeoIP network \(client.masked(to: geoResult.prefixLength))/\(geoResult.prefixLength)")
        switch selection.reason {
        case .override(let p, let region): lines.append("placed by override \(p) -> region \(region)")
        case .geo(let loc):
            lines.append("placed by GeoIP: \(loc.city ?? "-"), \(loc.country ?? "-"), \(loc.continent ?? "-") (\(loc.latitude), \(loc.longitude))")
        case .fallback(let region): lines.append("location unknown -> fallback region \(region)")
        case .unlocated: lines.append("location unknown, no fallback region -> configuration order")
        }
        for r in selection.ranked {
            let state = r.health.description
            lines.append("candidate \(r.edge.id) region \(r.edge.region) \(Int(r.distanceKm.rounded())) km \(state)")
        }
        let chosen = selection.chosen.map { e in e.id + " " + e.addresses.filter { $0.isIPv4 == (family == .v4) }.map(\.description).joined(separator: " ") }
        lines.append("answer \(chosen.isEmpty ? "none" : chosen.joined(separator: ", "))\(selection.failedOpen ? " (no edge up: failing open)" : "")")
        let ttl = min(service.ttlSeconds, selection.ttlCapSeconds.map { UInt32(clamping: $0) } ?? service.ttlSeconds)
        lines.append("ECS scope /\(selection.scopePrefixLength); TTL \(ttl)\(ttl < service.ttlSeconds ? " (a suspect edge)" : "")")
        return Explanation(client: client, service: service, geo: geoResult, selection: selection, ttlSeconds: ttl, lines: lines)
    }
}
