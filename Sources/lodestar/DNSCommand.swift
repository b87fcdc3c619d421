import ArgumentParser
import Dispatch
import Foundation
import LodestarNode
import LodestarDNS
import LodestarDNSServer
import LodestarGeo
import LodestarGossip
import LodestarMetrics
import LodestarSelection
import LodestarStatusPage
import LodestarTopology
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// `lodestar dns`: the authoritative GeoDNS server.
struct DNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "Run the authoritative GeoDNS server for the topology's zone.",
        discussion: "SIGHUP reloads the topology and reopens the GeoIP database (a bad file is refused and the running config kept); SIGINT/SIGTERM stop. With dns.gossip and a gossip section the node joins the gossip cluster and its answers follow the edges' published states (dead, draining, suspect, overloaded); dns.admin serves /healthz and /status.")

    @Option(name: .long, help: "Topology file.")
    var topology: String = "topology.json"

    @Option(name: .long, help: "Listen address ADDR:PORT or [ADDR]:PORT (repeatable; replaces the topology's dns.listen).")
    var listen: [String] = []

    @Option(name: .long, help: "GeoIP .mmdb file (replaces the topology's dns.geoDatabase).")
    var geo: String?

    @Option(name: .long, help: "Event loop threads (default: one per core).")
    var threads: Int?

    @Option(name: .long, help: "Packet cache entries per UDP event loop (replaces dns.packetCacheEntries; 0 turns it off).")
    var packetCache: Int?

    @Option(name: .long, help: "Mark an edge down (repeatable); added to the topology's dns.downFile contents.")
    var down: [String] = []

    @Option(name: .long, help: "Log one query in N to the query log (0: off, 1: every query).")
    var queryLogSample: Int = 0

    @Option(name: .long, help: "The DNS node of the topology to run: dns.nodeId (the default) or one of dns.nodes[].nodeId.")
    var node: String?

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        logging.bootstrap()
        let logger = logging.logger("lodestar.dns")
        guard queryLogSample >= 0 else { throw ValidationError("--query-log-sample must be 0 or more") }
        let loaded = try DNSNodeState.select(node, in: try loadTopologyOrExit(topology))
        let hub = ProcessMetrics.hub()
        // Everything that can be refused is refused here, before a socket is bound.
        let dns = try DNSNode(topology: loaded, path: topology, node: node, geoOverride: geo, flagDown: Set(down),
                              configuration: serverConfiguration(loaded, metrics: hub),
                              adminToken: adminTokenOrExit(loaded, path: topology), hub: hub, logger: logger)
        do {
            try await dns.start()
        } catch NodeStartError.listen(let error) {
            logger.critical("cannot listen", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        try await ServiceGroup(services: [dns], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}

extension DNSCommand {
    /// The server's settings: the topology's, with the command line's `--listen`, `--threads`, `--packet-cache` and
    /// `--query-log-sample` over them.
    func serverConfiguration(_ t: Topology, metrics: MetricsHub) throws -> DNSServer.Configuration {
        let addresses = try listen.isEmpty ? t.dns.listen : listen.map { text in
            guard let a = ListenAddress(text) else { throw ValidationError("--listen \(text): not ADDR:PORT or [ADDR]:PORT") }
            return a
        }
        var config = DNSServer.Configuration(
            listen: addresses, threads: threads ?? System.coreCount, tcpIdleTimeout: .seconds(Int64(t.dns.tcpIdleTimeoutSeconds)),
            maxTCPConnections: t.dns.maxTCPConnections, rateLimit: t.dns.rateLimit,
            packetCacheEntries: packetCache ?? t.dns.packetCacheEntries)
        config.metrics = metrics
        config.queryLogSample = queryLogSample
        return config
    }
}

/// Reads the admin token when the topology has an `admin` section, printing the reason and exiting 1 when it cannot.
func adminTokenOrExit(_ t: Topology, path: String) throws -> String? {
    guard let settings = t.admin else { return nil }
    do {
        return try settings.token()
    } catch {
        printError("\(path): \(error)")
        throw ExitCode(1)
    }
}

/// Loads a topology, printing every error (file, path, reason) and exiting 1 on failure.
func loadTopologyOrExit(_ path: String) throws -> Topology {
    do {
        return try Topology.load(path: path)
    } catch let errors as TopologyErrors {
        for issue in errors.issues { printError(issue.description) }
        throw ExitCode(1)
    }
}
