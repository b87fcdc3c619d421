import LodestarGossip
import LodestarMetrics
import Synchronization

/// The gossip member's Prometheus families: members by state, probes, suspicions, packets, bytes and drops by
/// reason (authentication failures among them). Values are read from the node at scrape time.
public enum GossipMetrics {
    /// Registers the node's families on `hub`.
    public static func register(_ node: GossipNode, on hub: MetricsHub) {
        let member = [("member", node.myself.name)]
        let states = ["alive", "suspect", "dead", "left"]
        let byState = states.map {
            hub.gauge("lodestar_gossip_members", member + [("state", $0)], help: "Members this node knows, by state (itself included).")
        }
        let s = node.stats
        func mirrored(_ name: String, _ labels: [(String, String)], _ help: String) -> MirroredCounter {
            MirroredCounter(hub, name: name, labels: member + labels, help: help)
        }
        let probes = mirrored("lodestar_gossip_probes_total", [("kind", "direct")], "Probes sent: pings, and ping-reqs asking others to probe.")
        let indirect = mirrored("lodestar_gossip_probes_total", [("kind", "indirect")], "Probes sent: pings, and ping-reqs asking others to probe.")
        let suspicions = mirrored("lodestar_gossip_suspicions_total", [], "Times a member was seen to become suspect.")
        let reopens = mirrored("lodestar_gossip_socket_reopens_total", [], "Times a send error closed the gossip socket and it was opened again.")
        let packetsIn = mirrored("lodestar_gossip_packets_total", [("direction", "in")], "Datagrams accepted (in) and sent (out).")
        let packetsOut = mirrored("lodestar_gossip_packets_total", [("direction", "out")], "Datagrams accepted (in) and sent (out).")
        let bytesIn = mirrored("lodestar_gossip_bytes_total", [("direction", "in")], "Datagram bytes received (all) and sent.")
        let bytesOut = mirrored("lodestar_gossip_bytes_total", [("direction", "out")], "Datagram bytes received (all) and sent.")
        let unsent = mirrored("lodestar_gossip_unsent_total", [], "Messages not sent: too large, or no address known for the target.")
        let drops = GossipDropReason.allCases.map {
            mirrored("lodestar_gossip_dropped_total", [("reason", $0.rawValue)],
                     "Datagrams dropped before the protocol saw them (authentication = forged or foreign key).")
        }
        hub.addCollector {
            let members = node.members
            for (i, state) in states.enumerated() {
                byState[i].set(to: Double(members.filter { $0.status.description == state }.count))
            }
            probes.sync(to: s.probes.load(ordering: .relaxed))
            indirect.sync(to: s.indirectProbes.load(ordering: .relaxed))
            suspicions.sync(to: s.suspicions.load(ordering: .relaxed))
            reopens.sync(to: s.socketReopens.load(ordering: .relaxed))
            packetsIn.sync(to: s.packetsIn.load(ordering: .relaxed))
            packetsOut.sync(to: s.packetsOut.load(ordering: .relaxed))
            bytesIn.sync(to: s.bytesIn.load(ordering: .relaxed))
            bytesOut.sync(to: s.bytesOut.load(ordering: .relaxed))
            unsent.sync(to: s.unsent.load(ordering: .relaxed))
            let dropped = s.dropped
            for (i, reason) in GossipDropReason.allCases.enumerated() { drops[i].sync(to: dropped[reason] ?? 0) }
        }
    }
}
