import Foundation
import LodestarDNS
import LodestarDNSServer
import LodestarGeo
import LodestarSelection
import LodestarGossip
import LodestarGossipServer
import LodestarMetrics
import LodestarProxy
import LodestarStatusPage
import LodestarTopology
import NIOCore
import NIOHTTP1
import Synchronization

/// What the DNS admin endpoint asks of the node it serves (LodestarNode's `DNSNodeState`).
public protocol DNSAdminSource: AnyObject, Sendable {
    /// The health the answers use (gossip and operator marks).
    var health: LiveHealthView { get }
    /// Why the operator marks an edge down (`--down`, the down file, drains); empty when not marked.
    func operatorReasons(edge id: String) -> [String]
    /// The operator drains in force, with who set them and when.
    func drainList() -> [StatusSnapshot.Drain]
    /// Starts (`on`) or ends a drain of an edge or a region; the drains in force after it, or why it was refused.
    func drain(_ on: Bool, edge: String?, region: String?, reason: String) -> Result<[StatusSnapshot.Drain], DrainError>
    /// Re-reads the topology (and GeoIP database): whether it was taken, and a message.
    func reload(source: String) -> (ok: Bool, message: String)
}

/// The DNS node's admin API: `GET /` (the status page), `/healthz`, `/readyz`, `/status` (JSON: configuration
/// version, every edge's health and why, operator drains, gossip members, the top answer decisions), `/explain`
/// (what a client would be answered), `/metrics` (Prometheus), and
/// `POST /drain|/undrain?edge=ID|region=ID[&reason=…]` (an operator override the answers honour at once, like
/// gdnsd's admin state) and `POST /reload`. Binds only where `dns.admin` says; see `AdminGuard` for who may call it.
public enum DNSAdmin {
    /// Binds the endpoint at `address`; `config` gives the configuration in force for `/status`.
    public static func bind(_ address: ListenAddress, group: any EventLoopGroup, token: String?, state: any DNSAdminSource,
                            box: AuthorityBox, server: DNSServer, gossip: GossipNode?,
                            config: @escaping @Sendable () -> StatusSnapshot.Config, hub: MetricsHub) async throws -> any Channel {
        let guardian = AdminGuard(listener: address, token: token)
        let rates = AnswerRates(decisions: server.metrics.decisions)
        let decisions = server.metrics.decisions
        let windowStart = Mutex(NIODeadline.now())
        let sampler = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            rates.sample()
            // The page's flows show the last 5 to 10 minutes of decisions.
            let rotate = windowStart.withLock { start -> Bool in
                guard NIODeadline.now() - start >= .minutes(5) else { return false }
                start = .now()
                return true
            }
            if rotate { decisions.rotate() }
        }
        let probeMs = box.authority.topology.gossip?.probeIntervalMs ?? 1000
        let channel = try await AdminHTTP.bind(address, group: group) { head, allocator in
            let path = AdminHTTP.path(head.uri)
            if let refused = guardian.refusal(head, path: path, allocator: allocator) { return refused }
            let query = AdminHTTP.query(head.uri)
            func current() -> StatusSnapshot {
                snapshot(state: state, box: box, server: server, gossip: gossip, config: config(), rates: rates,
                         probeIntervalMs: probeMs)
            }
            switch (head.method, path) {
            case (.GET, "/"), (.HEAD, "/"):
                let explained = query["client"].map { explain($0, box: box) }
                return SimpleResponse(status: .ok, contentType: "text/html; charset=utf-8",
                                      body: allocator.buffer(string: StatusPage.render(current(), explain: explained)),
                                      headers: [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                                                ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")])
            case (.GET, "/healthz"), (.HEAD, "/healthz"):
                return AdminHTTP.reply(.ok, "text/plain", "ok\n", allocator: allocator)
            case (.GET, "/readyz"), (.HEAD, "/readyz"):
                return AdminHTTP.reply(.ok, "text/plain", "ready\n", allocator: allocator)
            case (.GET, "/status"), (.HEAD, "/status"):
                return AdminHTTP.reply(.ok, "application/json", jsonText(current()), allocator: allocator)
            case (.GET, "/explain"), (.HEAD, "/explain"):
                let result = explain(query["client"] ?? "", box: box)
                return AdminHTTP.reply(result.error == nil ? .ok : .badRequest, "application/json", jsonText(result), allocator: allocator)
            case (.GET, "/metrics"), (.HEAD, "/metrics"):
                return AdminHTTP.reply(.ok, MetricsHub.contentType, hub.exposition(), allocator: allocator)
            case (.POST, "/drain"), (.POST, "/undrain"):
                let result = state.drain(path == "/drain", edge: query["edge"], region: query["region"],
                                         reason: query["reason"] ?? "admin API")
                switch result {
                case .success(let drains):
                    return AdminHTTP.reply(.ok, "application/json", jsonText(["drains": drains]), allocator: allocator)
                case .failure(let e):
                    return AdminHTTP.reply(.badRequest, "text/plain", e.description + "\n", allocator: allocator)
                }
            case (.POST, "/reload"):
                let result = state.reload(source: "admin API")
                return AdminHTTP.reply(result.ok ? .ok : .unprocessableEntity, "text/plain", result.message + "\n", allocator: allocator)
            case (_, "/drain"), (_, "/undrain"), (_, "/reload"):
                return AdminHTTP.reply(.methodNotAllowed, "text/plain", "use POST\n", allocator: allocator)
            default:
                return AdminHTTP.reply(.notFound, "text/plain", "not found\n", allocator: allocator)
            }
        }
        channel.closeFuture.whenComplete { _ in sampler.cancel() }
        return channel
    }

    /// `lodestar_dns_edge_state{edge,region,state}`: the health each edge is answered with (read at every scrape).
    public static func registerHealthMetrics(hub: MetricsHub, state: any DNSAdminSource, box: AuthorityBox) {
        let gauge = StateGauge(hub, name: "lodestar_dns_edge_state",
                               help: "The health the DNS answers use for each edge: 1 for its current state.",
                               subjectLabel: "edge", states: ["healthy", "suspect", "overloaded", "down"])
        hub.addCollector {
            for edge in box.authority.topology.edges {
                let h = state.health.health(ofEdge: edge.id)
                let name: String
                switch h {
                case .healthy: name = "healthy"
                case .suspect: name = "suspect"
                case .overloaded: name = "overloaded"
                case .down: name = "down"
                }
                gauge.set(edge.id, to: name)
            }
        }
    }

    /// What the node knows now, for `/status` and the page.
    static func snapshot(state: any DNSAdminSource, box: AuthorityBox, server: DNSServer, gossip: GossipNode?,
                         config: StatusSnapshot.Config, rates: AnswerRates, probeIntervalMs: Int) -> StatusSnapshot {
        let topology = box.authority.topology
        let health = state.health
        let edgeIds = Set(topology.edges.map(\.id))
        let now = NIODeadline.now()
        let heard = gossip?.lastHeard ?? [:]
        let memberList = gossip?.members ?? []
        let members = Dictionary(memberList.map { ($0.node.name, $0) }, uniquingKeysWith: { a, _ in a })
        func heardMs(_ id: SWIMNodeID) -> Int? { heard[id].map { Int((now - $0).nanoseconds / 1_000_000) } }
        let answered = server.metrics.decisions.byEdge()
        let perSecond = rates.perSecond()
        let policy = EdgeHealthPolicy(overloadWatermark: topology.gossip?.overloadWatermark ?? GossipSettings().overloadWatermark)
        let details = topology.edges.map { edge -> StatusSnapshot.EdgeDetail in
            let m = members[edge.id]
            let published = m.flatMap { EdgeState(decoding: $0.metadata.bytes) }
            let verdict = policy.verdict(.init(membership: m?.status, published: published,
                                               operatorMarks: state.operatorReasons(edge: edge.id), gossipEnabled: gossip != nil),
                                         unknown: health.unknown)
            // The health the answers use now (the view may lag the members by one update).
            let h = health.health(ofEdge: edge.id)
            var d = StatusSnapshot.EdgeDetail(id: edge.id, region: edge.region, health: h.description, state: verdict.state,
                                              answers: answered[edge.id] ?? 0, answersPerSecond: perSecond[edge.id] ?? 0)
            d.why = verdict.reasons
            if let m { d.lastHeardMs = heardMs(m.node) }
            if let s = published {
                let shown = memberState(s)
                d.requestsPerSecond = shown.requestsPerSecond
                d.capacity = s.capacity > 0 ? shown.capacity : nil
                d.load = s.capacity > 0 ? s.load : nil
                d.cacheHitRatio = shown.cacheHitRatio
                d.healthyOrigins = shown.healthyOrigins
                d.connections = shown.connections
            }
            return d
        }
        var cluster = StatusSnapshot.Cluster(gossip: gossip != nil, visible: false, note: "")
        if let gossip {
            let others = memberList.filter { $0.node != gossip.myself }
            let freshest = others.compactMap { heardMs($0.node) }.min()
            let window = max(5_000, probeIntervalMs * 10)
            if let freshest, freshest <= window {
                cluster.visible = true
            } else {
                cluster.note = freshest.map { "This DNS node has heard no other gossip member for \($0 / 1000) s: it cannot see the cluster. "
                    + "Its answers use the edge health it last knew." }
                    ?? "This DNS node has not heard from any other gossip member: it cannot see the cluster. Its answers fail open (every edge not marked down is answered)."
            }
        } else {
            cluster.note = "Gossip is off for this DNS node: edge health comes only from operator marks (--down, the down file, drains)."
        }
        let decisions = server.metrics.decisions.top(50).map { d, n in
            StatusSnapshot.Decision(country: d.country, continent: d.continent, latitude: d.latitude, longitude: d.longitude,
                                    edge: d.edge, region: d.region, answers: n)
        }
        var gossipPart: StatusSnapshot.Gossip?
        if let gossip {
            let list = memberList.sorted { $0.node < $1.node }.map { m -> StatusSnapshot.Member in
                var item = StatusSnapshot.Member(id: m.node.name, role: edgeIds.contains(m.node.name) ? "edge" : "dns",
                                                 status: m.status.description, incarnation: m.incarnation,
                                                 lastHeardMs: m.node == gossip.myself ? 0 : heardMs(m.node))
                item.state = EdgeState(decoding: m.metadata.bytes).map(memberState)
                return item
            }
            let stats = gossip.stats
            gossipPart = .init(members: list, packetsIn: stats.packetsIn.load(ordering: .relaxed),
                               packetsOut: stats.packetsOut.load(ordering: .relaxed),
                               dropped: Dictionary(stats.dropped.map { ($0.key.rawValue, $0.value) }, uniquingKeysWith: +))
        }
        let st = server.stats
        return StatusSnapshot(
            node: topology.dns.nodeId, zone: topology.zone.name, serial: topology.zone.soa.serial, generatedAt: iso(Date()),
            config: config, cluster: cluster,
            regions: topology.regions.map { .init(id: $0.id, name: $0.name, latitude: $0.latitude, longitude: $0.longitude) },
            edges: Dictionary(topology.edges.map { ($0.id, health.health(ofEdge: $0.id).description) }, uniquingKeysWith: { a, _ in a }),
            edgeDetails: details, operatorDown: health.operatorDown.sorted(), drains: state.drainList(),
            decisions: decisions, queries: .init(udp: st.udpQueries.load(ordering: .relaxed), tcp: st.tcpQueries.load(ordering: .relaxed)),
            gossip: gossipPart)
    }

    /// An edge's published state as `/status` shows it (shares as fractions of 1).
    static func memberState(_ s: EdgeState) -> StatusSnapshot.MemberState {
        .init(mode: s.mode.description, healthyOrigins: Double(s.healthyOrigins) / 10_000, connections: Int(s.connections),
              requestsPerSecond: Int(s.requestsPerSecond), cacheHitRatio: Double(s.cacheHitRatio) / 10_000,
              capacity: Int(s.capacity))
    }

    /// `GET /explain?client=IP[/LEN]`: the decision a query from there would get now (the trace of `CH TXT <service>`).
    static func explain(_ query: String, box: AuthorityBox) -> ExplainResult {
        let text = query.trimmingCharacters(in: .whitespaces)
        var result = ExplainResult(query: text)
        let address: IPAddress
        let viaSubnet: Bool
        if text.contains("/") {
            guard let p = IPPrefix(text) else {
                result.error = "not an IP address or subnet: use 203.0.113.7 or 81.2.69.0/24"
                return result
            }
            address = p.address.masked(to: p.length)
            viaSubnet = true
        } else if let a = IPAddress(text) {
            address = a
            viaSubnet = false
        } else {
            result.error = text.isEmpty ? "type an IP address or subnet" : "not an IP address or subnet: use 203.0.113.7 or 81.2.69.0/24"
            return result
        }
        var random = SystemRandomNumberGenerator()
        guard let e = box.authority.explain(client: address, locatedByECS: viaSubnet, random: &random) else {
            result.error = "the topology has no service"
            return result
        }
        result.client = "\(address)"
        result.service = e.service.fqdn
        result.geoPrefixLength = e.geo.prefixLength
        if let loc = e.geo.location {
            result.location = .init(latitude: loc.latitude, longitude: loc.longitude, country: loc.country, continent: loc.continent,
                                    city: loc.city)
        }
        result.placement = e.lines.dropFirst().first
        let chosen = Set(e.selection.chosen.map(\.id))
        result.candidates = e.selection.ranked.map {
            .init(edge: $0.edge.id, region: $0.edge.region, distanceKm: Int($0.distanceKm.rounded()), health: $0.health.description,
                  chosen: chosen.contains($0.edge.id))
        }
        result.answer = e.selection.chosen.map { edge in
            ([edge.id] + edge.addresses.filter { $0.isIPv4 == address.isIPv4 }.map(\.description)).joined(separator: " ")
        }
        result.ttlSeconds = e.ttlSeconds
        result.scopePrefixLength = e.selection.scopePrefixLength
        result.trace = e.lines
        return result
    }
}

/// Answers per second per edge over the last few seconds (sampled once a second from the decision table).
final class AnswerRates: Sendable {
    private let decisions: DecisionTable
    private let samples = Mutex<[(at: NIODeadline, counts: [String: Int])]>([])

    init(decisions: DecisionTable) { self.decisions = decisions }

    /// Takes one sample (keeps the last six).
    func sample() {
        let counts = decisions.byEdge()
        samples.withLock {
            $0.append((NIODeadline.now(), counts))
            if $0.count > 6 { $0.removeFirst($0.count - 6) }
        }
    }

    /// Per edge: answers per second between the oldest and the newest sample.
    func perSecond() -> [String: Double] {
        let s = samples.withLock { $0 }
        guard let first = s.first, let last = s.last, s.count >= 2 else { return [:] }
        let seconds = Double((last.at - first.at).nanoseconds) / 1e9
        guard seconds > 0 else { return [:] }
        return last.counts.reduce(into: [:]) { out, kv in out[kv.key] = Double(kv.value - (first.counts[kv.key] ?? 0)) / seconds }
    }
}
