import Foundation
import LodestarNode
import LodestarDNS
import LodestarDNSServer
import LodestarMetrics
import LodestarProxy
import LodestarTopology
import Logging
import NIOCore
import NIOPosix

/// What `lodestar up` starts, in order, and stops again: the sample origins, the DNS node (a `DNSNode`, as
/// `lodestar dns` runs it), the edges (a `lodestar edge` child each when the topology gossips, else in-process), and
/// the greeting that lists them.
final class UpRun: @unchecked Sendable {
    let topology: Topology
    let path: String
    private let adminToken: String?
    private let logLevel: String
    private let logFormat: String
    private let logger: Logger
    private let hub = ProcessMetrics.hub()
    private let originGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var originChannels: [any Channel] = []
    private var edges: [EdgeNode] = []
    private var children: [Process] = []
    private var rows: [(String, String, String)] = []
    private(set) var dnsNode: LodestarNode.DNSNode?

    init(topology: Topology, path: String, adminToken: String?, logLevel: String, logFormat: String, logger: Logger) {
        self.topology = topology
        self.path = path
        self.adminToken = adminToken
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.logger = logger
    }

    /// A sample origin on every loopback address a pool names.
    func startOrigins() async throws {
        var seen = Set<ListenAddress>()
        for pool in topology.pools {
            for server in pool.servers {
                guard let address = server.address, address.host.isLoopback, seen.insert(address).inserted else { continue }
                let name = "origin-\(seen.count)"
                originChannels.append(try await SampleOrigin.start(listen: address, name: name, group: originGroup))
                rows.append(("origin", name, "http://\(address)"))
            }
        }
    }

    /// A gossip key for this run only, when none is configured: the in-process DNS node and the edge children (which
    /// inherit the environment) share it.
    func makeGossipKeyIfNone() {
        guard let g = topology.gossip, g.keyFile == nil, (ProcessInfo.processInfo.environment[g.keyEnvironment] ?? "").isEmpty
        else { return }
        var rng = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        setenv(g.keyEnvironment, key, 1)
    }

    /// The DNS node on one thread; a zone key for this run when none is configured (its DS is in the greeting).
    func startDNS() async throws -> LodestarNode.DNSNode {
        let d = topology.dns
        var config = DNSServer.Configuration(
            listen: d.listen, threads: 1, tcpIdleTimeout: .seconds(Int64(d.tcpIdleTimeoutSeconds)),
            maxTCPConnections: d.maxTCPConnections, rateLimit: d.rateLimit, packetCacheEntries: d.packetCacheEntries)
        config.metrics = hub
        let dns = try LodestarNode.DNSNode(topology: topology, path: path, node: nil, runKey: true, configuration: config,
                              adminToken: adminToken, hub: hub, logger: logger)
        try await dns.start()
        dnsNode = dns
        var listens = d.listen.map { "\($0) udp+tcp" }
        if let address = d.admin { listens.append("admin http://\(address) (status page)") }
        if let g = d.gossip, dns.gossip != nil { listens.append("gossip udp \(g)") }
        rows.append(("dns", d.nodeId, listens.joined(separator: ", ")))
        return dns
    }

    /// Every edge with listeners: a `lodestar edge` child when gossiping (each its own member), else in-process.
    func startEdges(gossip: Bool) async throws {
        for edge in topology.edges where !edge.listen.isEmpty {
            var whereabouts = edge.listen.map { ($0.tls == nil ? "http://" : "https://") + $0.address.description }
                + (edge.admin.map { ["admin http://\($0)"] } ?? [])
            if gossip {
                let child = try EdgeChildren.start(edge: edge, topology: path, logLevel: logLevel, logFormat: logFormat)
                children.append(child)
                try await EdgeChildren.waitUntilListening(child, edge: edge)
                whereabouts.append("pid \(child.processIdentifier)")
            } else {
                var edgeLogger = logger
                edgeLogger[metadataKey: "edge"] = "\(edge.id)"
                let node = try EdgeNode(topology: topology, path: path, node: edge.id, threads: 1, adminToken: adminToken,
                                        hub: hub, parentPid: nil, logger: edgeLogger)
                try await node.start()
                edges.append(node)
            }
            rows.append(("edge", edge.id, whereabouts.joined(separator: ", ")))
        }
    }

    /// The table of what runs where, and what to try.
    func greeting() -> String {
        var text = UpCommand.table(rows) + "\n"
        let zoneKeys = dnsNode?.box.authority.signer?.keys.map(\.key) ?? []
        guard let service = topology.services.first, let dnsAddress = topology.dns.listen.first,
              let edge = topology.edges.first(where: { !$0.listen.isEmpty }), let port = edge.listen.first?.address.port
        else { return text }
        let server = dnsAddress.host.isIPv4 ? dnsAddress.host.description : "\(dnsAddress.host)"
        text += """

        Try:
          dig @\(server) -p \(dnsAddress.port) \(service.fqdn)
          dig @\(server) -p \(dnsAddress.port) \(service.fqdn) +subnet=81.2.69.0/24
          curl --resolve \(service.fqdn):\(port):$(dig @\(server) -p \(dnsAddress.port) +short \(service.fqdn)) http://\(service.fqdn):\(port)/

        \(UpCommand.dnssecHint(topology, keys: zoneKeys, server: server, port: dnsAddress.port))Ctrl-C stops everything.

        """
        return text
    }

    /// Stops the edge children and in-process edges, the DNS node and the origins.
    func stopAll() async {
        EdgeChildren.stop(children)
        for e in edges { await e.stop() }
        await dnsNode?.stop()
        for c in originChannels { try? await c.close() }
        try? await originGroup.shutdownGracefully()
    }
}
