import Foundation
import XCTest

/// A gossip cluster of real processes on loopback: `lodestar dns` and the default topology's three `lodestar edge`s.
struct GossipTestCluster {
    let dns: LodestarServer
    let dnsAdmin: UInt16
    let edges: [String: EdgeNode]
    let origin: EdgeOrigin
}

extension EdgeTestCase {
    typealias Cluster = GossipTestCluster

    /// The default topology with gossip on every member, a key file in each process's folder, 500 ms probes.
    func startCluster(drainSeconds: Int = 3, probeIntervalMs: Int = 500, edit: (inout [String: Any]) throws -> Void = { _ in }) throws -> Cluster {
        let origin = try startOrigin("origin")
        var topology = try IntegrationEnvironment.defaultTopology()
        let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        var edges = topology["edges"] as? [[String: Any]] ?? []
        let httpPort = try freePort()
        var ports: [String: EdgePorts] = [:]
        for i in edges.indices {
            let address = (edges[i]["addresses"] as? [String])?.first ?? "127.0.0.1"
            let id = edges[i]["id"] as? String ?? "?"
            // The region address (what DNS answers) and a 127.0.0.1 port of its own (what the test talks to).
            let p = EdgePorts(http: try freePort(), admin: try freePort())
            ports[id] = p
            edges[i]["listen"] = ["\(address):\(httpPort)", "127.0.0.1:\(p.http)"]
            edges[i]["admin"] = "127.0.0.1:\(p.admin)"
            edges[i]["gossip"] = "\(address):\(try freePort())"
        }
        topology["edges"] = edges
        let dnsAdmin = try freePort()
        try topology.edit("dns") {
            $0["gossip"] = "127.0.0.1:\(try freePort())"
            $0["admin"] = "127.0.0.1:\(dnsAdmin)"
        }
        try topology.edit("origins") { origins in
            // Every pool of the default topology (sample, sample-grpc) goes to the test's origin.
            for name in origins.keys { origins[name] = ["servers": [origin.address]] }
        }
        topology["gossip"] = ["keyFile": "gossip.key", "probeIntervalMs": probeIntervalMs, "drainSeconds": drainSeconds]

        try edit(&topology)
        let dns = try LodestarServer(topology: topology)
        addTeardownBlock { dns.cleanUp() }
        try key.write(toFile: dns.folder.appendingPathComponent("gossip.key").path, atomically: true, encoding: .utf8)
        try key.write(toFile: workFolder.appendingPathComponent("gossip.key").path, atomically: true, encoding: .utf8)
        try dns.start()
        var nodes: [String: EdgeNode] = [:]
        for (id, p) in ports {
            let node = try EdgeNode(folder: workFolder, topology: topology, ports: EdgePorts(http: p.http, admin: p.admin),
                                    name: "topology-\(id).json")
            try node.start(node: id)
            addTeardownBlock { node.stop() }
            nodes[id] = node
        }
        return Cluster(dns: dns, dnsAdmin: dnsAdmin, edges: nodes, origin: origin)
    }

}
