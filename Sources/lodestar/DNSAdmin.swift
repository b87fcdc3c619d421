import Foundation
import LodestarDNS
import LodestarDNSServer
import LodestarGeo
import LodestarGossip
import LodestarGossipServer
import LodestarMetrics
import LodestarProxy
import LodestarTopology
import NIOCore
import NIOHTTP1
import Synchronization

/// The DNS node's admin API: `GET /healthz`, `/readyz`, `/status` (JSON: configuration version, every edge's health
/// and why, operator drains, gossip members, the top answer decisions), `/metrics` (Prometheus), and
/// `POST /drain|/undrain?edge=ID|region=ID[&reason=…]` (an operator override the answers honour at once, like
/// gdnsd's admin state) and `POST /reload`. Binds only where `dns.admin` says; see `AdminGuard` for who may call it.
enum DNSAdmin {
    static func bind(_ address: ListenAddress, group: any EventLoopGroup, token: String?, state: DNSNodeState,
                     box: AuthorityBox, server: DNSServer, gossip: GossipRuntime?, tracker: ConfigTracker,
                     hub: MetricsHub) async throws -> any Channel {
        let guardian = AdminGuard(listener: address, token: token)
        return try await AdminHTTP.bind(address, group: group) { head, allocator in
            let path = AdminHTTP.path(head.uri)
            if let refused = guardian.refusal(head, path: path, allocator: allocator) { return refused }
            let query = AdminHTTP.query(head.uri)
            switch (head.method, path) {
            case (.GET, "/healthz"), (.HEAD, "/healthz"):
                return AdminHTTP.reply(.ok, "text/plain", "ok\n", allocator: allocator)
            case (.GET, "/readyz"), (.HEAD, "/readyz"):
                return AdminHTTP.reply(.ok, "text/plain", "ready\n", allocator: allocator)
            case (.GET, "/status"), (.HEAD, "/status"):
                let body = statusJSON(state: state, box: box, server: server, gossip: gossip?.node, tracker: tracker)
                return AdminHTTP.reply(.ok, "application/json", body, allocator: allocator)
            case (.GET, "/metrics"), (.HEAD, "/metrics"):
                return AdminHTTP.reply(.ok, MetricsHub.contentType, hub.exposition(), allocator: allocator)
            case (.POST, "/drain"), (.POST, "/undrain"):
                let result = state.drain(path == "/drain", edge: query["edge"], region: query["region"],
                                         reason: query["reason"] ?? "admin API")
                switch result {
                case .success(let drains):
                    return AdminHTTP.reply(.ok, "application/json", "{\"drains\":\(drains)}\n", allocator: allocator)
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
    }

    /// `lodestar_dns_edge_state{edge,region,state}`: the health each edge is answered with (read at every scrape).
    static func registerHealthMetrics(hub: MetricsHub, state: DNSNodeState, box: AuthorityBox) {
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

    /// The status document.
    static func statusJSON(state: DNSNodeState, box: AuthorityBox, server: DNSServer, gossip: GossipNode?,
                           tracker: ConfigTracker) -> String {
        let topology = box.authority.topology
        let health = state.health
        let members = gossip.map { Dictionary($0.members.map { ($0.node.name, $0) }, uniquingKeysWith: { a, _ in a }) } ?? [:]
        var out = "{\"node\":\(q(topology.dns.nodeId)),\"serial\":\(topology.zone.soa.serial),\(tracker.statusJSON)"
        out += ",\"edges\":{" + topology.edges.map { "\(q($0.id)):\(q(health.health(ofEdge: $0.id).description))" }
            .joined(separator: ",") + "}"
        let answered = server.metrics.decisions.byEdge()
        let details = topology.edges.map { edge -> String in
            let h = health.health(ofEdge: edge.id)
            var why = state.operatorReasons(edge: edge.id)
            if let m = members[edge.id] {
                if m.status != .alive { why.append("gossip: member is \(m.status)") }
                if let s = EdgeState(decoding: m.metadata.bytes) {
                    if s.mode == .draining { why.append("gossip: the edge reports it is draining") }
                    if s.healthyOrigins == 0 { why.append("gossip: the edge reports no healthy origin") }
                }
            } else if gossip != nil {
                why.append("gossip: not heard from yet (answered while unknown)")
            }
            if case .suspect = h { why.append("gossip: suspect (answers with a short TTL)") }
            if case .overloaded(let shed) = h { why.append("gossip: above the overload watermark, shedding \(Int(shed * 100)) %") }
            return "{\"id\":\(q(edge.id)),\"region\":\(q(edge.region)),\"health\":\(q(h.description)),\"answers\":\(answered[edge.id] ?? 0)"
                + ",\"why\":[\(why.map(q).joined(separator: ","))]}"
        }
        out += ",\"edgeDetails\":[\(details.joined(separator: ","))]"
        out += ",\"operatorDown\":[\(health.operatorDown.sorted().map(q).joined(separator: ","))]"
        out += ",\"drains\":\(state.drainsJSON())"
        let top = server.metrics.decisions.top(20).map { d, n in
            "{\"country\":\(q(d.country)),\"continent\":\(q(d.continent)),\"edge\":\(q(d.edge)),\"region\":\(q(d.region)),\"answers\":\(n)}"
        }
        out += ",\"decisions\":[\(top.joined(separator: ","))]"
        let st = server.stats
        out += ",\"queries\":{\"udp\":\(st.udpQueries.load(ordering: .relaxed)),\"tcp\":\(st.tcpQueries.load(ordering: .relaxed))}"
        if let gossip {
            let now = NIODeadline.now()
            let heard = gossip.lastHeard
            let list = gossip.members.sorted { $0.node < $1.node }.map { m -> String in
                var item = "{\"id\":\(q(m.node.name)),\"status\":\(q(m.status.description)),\"incarnation\":\(m.incarnation)"
                if let at = heard[m.node] { item += ",\"lastHeardMs\":\((now - at).nanoseconds / 1_000_000)" }
                if let s = EdgeState(decoding: m.metadata.bytes) {
                    item += ",\"state\":{\"mode\":\(q(s.mode.description)),\"healthyOrigins\":\(Double(s.healthyOrigins) / 10_000)"
                        + ",\"connections\":\(s.connections),\"requestsPerSecond\":\(s.requestsPerSecond)"
                        + ",\"cacheHitRatio\":\(Double(s.cacheHitRatio) / 10_000),\"capacity\":\(s.capacity)}"
                }
                return item + "}"
            }
            let stats = gossip.stats
            let drops = stats.dropped.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\(q($0.key.rawValue)):\($0.value)" }
            out += ",\"gossip\":{\"members\":[\(list.joined(separator: ","))],\"packetsIn\":\(stats.packetsIn.load(ordering: .relaxed))"
                + ",\"packetsOut\":\(stats.packetsOut.load(ordering: .relaxed)),\"dropped\":{\(drops.joined(separator: ","))}}"
        }
        return out + "}\n"
    }

    /// A JSON string literal.
    static func q(_ s: String) -> String { AdminJSON.string(s) }
}
