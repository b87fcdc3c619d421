import Foundation
import LodestarGeo
import LodestarGossip
import LodestarGossipServer
import LodestarProxy
import LodestarTopology
import NIOCore
import NIOHTTP1
import Synchronization

/// The DNS node's admin endpoint: `GET /healthz` and `GET /status` (JSON: the health view the answers use, and with
/// gossip every member's state, payload and when it was last heard, plus the drop counters). Binds only where
/// `dns.admin` says.
enum DNSAdmin {
    static func bind(_ address: ListenAddress, group: any EventLoopGroup, topology: Topology, health: LiveHealthView,
                     gossip: GossipRuntime?) async throws -> any Channel {
        let edgeIds = topology.edges.map(\.id)
        let node = topology.dns.nodeId
        let serial = topology.zone.soa.serial
        return try await AdminHTTP.bind(address, group: group) { head, allocator in
            let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
            let body: String
            var status = HTTPResponseStatus.ok
            var type = "application/json"
            switch (head.method, path) {
            case (.GET, "/healthz"), (.HEAD, "/healthz"):
                (body, type) = ("ok\n", "text/plain")
            case (.GET, "/status"), (.HEAD, "/status"):
                body = statusJSON(node: node, serial: serial, edgeIds: edgeIds, health: health, gossip: gossip?.node)
            default:
                (body, type, status) = ("not found\n", "text/plain", .notFound)
            }
            return SimpleResponse(status: status, contentType: type, body: allocator.buffer(string: body),
                                  headers: [("Cache-Control", "no-store")])
        }
    }

    /// The status document.
    static func statusJSON(node: String, serial: UInt32, edgeIds: [String], health: LiveHealthView, gossip: GossipNode?) -> String {
        var out = "{\"node\":\(q(node)),\"serial\":\(serial),\"edges\":{"
        out += edgeIds.map { "\(q($0)):\(q(health.health(ofEdge: $0).description))" }.joined(separator: ",")
        out += "},\"operatorDown\":[\(health.operatorDown.sorted().map(q).joined(separator: ","))]"
        if let gossip {
            let now = NIODeadline.now()
            let heard = gossip.lastHeard
            let members = gossip.members.sorted { $0.node < $1.node }.map { m -> String in
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
            out += ",\"gossip\":{\"members\":[\(members.joined(separator: ","))],\"packetsIn\":\(stats.packetsIn.load(ordering: .relaxed))"
                + ",\"packetsOut\":\(stats.packetsOut.load(ordering: .relaxed)),\"dropped\":{\(drops.joined(separator: ","))}}"
        }
        return out + "}\n"
    }

    /// A JSON string literal.
    static func q(_ s: String) -> String { AdminJSON.string(s) }
}
