import ArgumentParser
import Foundation
import LodestarDNS
import LodestarDNSServer
import LodestarGeo
import LodestarProxy
import LodestarTopology
import Logging
import NIOCore
import NIOPosix

/// `lodestar up`: the whole system of a topology on one machine — the DNS server, every edge that has listeners, and a
/// sample origin on each loopback origin address — in one process, until Ctrl-C.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run the DNS server, every edge and the sample origins of a topology in one process (for a local try).",
        discussion: "Sample origins are started on the loopback addresses the topology's origin pools name. Ctrl-C (SIGINT) or SIGTERM stops everything.")

    @Option(name: .long, help: "Topology file.")
    var topology: String = "topology.json"

    @Flag(name: .long, help: "Do not start sample origins (real ones are already running).")
    var noOrigins = false

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "notice"

    @Option(name: .long, help: "Log line format: logfmt, json or text.")
    var logFormat: String = "logfmt"

    func run() async throws {
        let logging = try LoggingOptions.parse(["--log-level", logLevel, "--log-format", logFormat])
        logging.bootstrap()
        let logger = logging.logger("lodestar.up")
        let loaded = try loadTopologyOrExit(topology)
        let adminToken = try adminTokenOrExit(loaded, path: topology)
        let hub = ProcessMetrics.hub()
        let adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var adminChannel: (any Channel)?

        var rows = [(String, String, String)]()
        let originGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var originChannels = [any Channel]()
        var edges = [EdgeServer]()
        var dnsServer: DNSServer?

        func stopAll() async {
            try? await adminChannel?.close()
            try? await adminGroup.shutdownGracefully()
            for e in edges { await e.shutdown(grace: .seconds(2)) }
            await dnsServer?.shutdown()
            for c in originChannels { try? await c.close() }
            try? await originGroup.shutdownGracefully()
        }

        do {
            if !noOrigins {
                var seen = Set<ListenAddress>()
                for pool in loaded.pools {
                    for server in pool.servers where server.address.host.isLoopback && seen.insert(server.address).inserted {
                        let name = "origin-\(seen.count)"
                        originChannels.append(try await SampleOrigin.start(listen: server.address, name: name, group: originGroup))
                        rows.append(("origin", name, "http://\(server.address)"))
                    }
                }
            }
            let health = LiveHealthView()
            let state = DNSNodeState(topologyPath: topology, geoOverride: nil, flagDown: [], health: health, logger: logger)
            let version = state.version(for: loaded)
            let box = AuthorityBox(try state.build(from: loaded, version: version))
            let tracker = ConfigTracker(role: "dns", initial: .init(version: version, serial: loaded.zone.soa.serial, loadedAt: Date()),
                                        hub: hub)
            state.box = box
            state.tracker = tracker
            var config = DNSServer.Configuration(
                listen: loaded.dns.listen, threads: 1, tcpIdleTimeout: .seconds(Int64(loaded.dns.tcpIdleTimeoutSeconds)),
                maxTCPConnections: loaded.dns.maxTCPConnections, rateLimit: loaded.dns.rateLimit,
                packetCacheEntries: loaded.dns.packetCacheEntries)
            config.metrics = hub
            let dns = DNSServer(authority: box, configuration: config, logger: logger)
            _ = try await dns.start()
            dnsServer = dns
            DNSAdmin.registerHealthMetrics(hub: hub, state: state, box: box)
            var dnsListens = loaded.dns.listen.map { "\($0) udp+tcp" }
            if let address = loaded.dns.admin {
                adminChannel = try await DNSAdmin.bind(address, group: adminGroup, token: adminToken, state: state, box: box,
                                                       server: dns, gossip: nil, tracker: tracker, hub: hub)
                dnsListens.append("admin http://\(address)")
            }
            rows.append(("dns", loaded.dns.nodeId, dnsListens.joined(separator: ", ")))
            for edge in loaded.edges where !edge.listen.isEmpty {
                var edgeLogger = logger
                edgeLogger[metadataKey: "edge"] = "\(edge.id)"
                let server = try EdgeServer(topology: loaded, edgeId: edge.id, threads: 1, logger: edgeLogger, metrics: hub)
                server.configureAdmin(token: adminToken, hooks: AdminHooks())
                try await server.start()
                edges.append(server)
                let listeners = edge.listen.map { ($0.tls == nil ? "http://" : "https://") + $0.address.description }
                rows.append(("edge", edge.id, (listeners + (edge.admin.map { ["admin http://\($0)"] } ?? [])).joined(separator: ", ")))
            }
        } catch {
            await stopAll()
            if let e = error as? EdgeStartError { printError("\(topology): \(e.description)") } else { printError("\(topology): \(error)") }
            throw ExitCode(1)
        }

        var text = Self.table(rows) + "\n"
        if let service = loaded.services.first, let dnsAddress = loaded.dns.listen.first,
           let edge = loaded.edges.first(where: { !$0.listen.isEmpty }), let port = edge.listen.first?.address.port {
            let server = dnsAddress.host.isIPv4 ? dnsAddress.host.description : "\(dnsAddress.host)"
            text += """

            Try:
              dig @\(server) -p \(dnsAddress.port) \(service.fqdn)
              dig @\(server) -p \(dnsAddress.port) \(service.fqdn) +subnet=81.2.69.0/24
              curl --resolve \(service.fqdn):\(port):$(dig @\(server) -p \(dnsAddress.port) +short \(service.fqdn)) http://\(service.fqdn):\(port)/

            Ctrl-C stops everything.

            """
        }

        // Written at once, unbuffered: the table must show even when stdout is a pipe.
        FileHandle.standardOutput.write(Data(text.utf8))

        let signals = SignalWatcher()
        let stop = AsyncStream<Void>.makeStream()
        signals.on(SIGINT) { stop.continuation.yield() }
        signals.on(SIGTERM) { stop.continuation.yield() }
        for await _ in stop.stream { break }
        await stopAll()
    }

    /// Aligned columns: role, id, where it listens.
    static func table(_ rows: [(String, String, String)]) -> String {
        let w0 = max(4, rows.map(\.0.count).max() ?? 0), w1 = max(2, rows.map(\.1.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        var lines = ["\(pad("role", w0))  \(pad("id", w1))  listens on"]
        for r in rows { lines.append("\(pad(r.0, w0))  \(pad(r.1, w1))  \(r.2)") }
        return lines.joined(separator: "\n")
    }
}
