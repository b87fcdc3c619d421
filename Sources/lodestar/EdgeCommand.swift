import ArgumentParser
import Dispatch
import Foundation
import LodestarNode
import LodestarProxy
import LodestarTopology
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
import Synchronization

/// `lodestar edge`: one edge node's HTTP(S) reverse proxy in front of the topology's origin pools.
struct EdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "Run an edge node: the HTTP(S) reverse proxy named by --node in the topology.",
        discussion: "Listeners, admin endpoint, origin pools, routes and limits come from the topology (edges[].listen, edges[].admin, origins, routes, proxy). SIGHUP reloads the topology (routes, pools, limits, rate limits, header rules; TLS certificate files are read again for new connections; a bad file is refused and the running configuration kept; added or removed listeners change on restart). With edges[].gossip the edge joins the gossip cluster and publishes its state; SIGTERM then drains it (DNS stops sending users, it keeps serving for gossip.drainSeconds, then leaves). SIGINT, and SIGTERM without gossip, stop accepting and let requests in flight finish (up to 5 s).")

    @Option(name: .long, help: "Topology file.")
    var topology: String = "topology.json"

    @Option(name: .long, help: "Edge id (an entry of the topology's edges).")
    var node: String

    @Option(name: .long, help: "Event loop threads (replaces proxy.threads; default one per core).")
    var threads: Int?

    @OptionGroup var logging: LoggingOptions

    @Option(name: .long, help: ArgumentHelp("Stop when this process (the parent, `lodestar up`) is gone.", visibility: .hidden))
    var parentPid: Int32?

    func run() async throws {
        logging.bootstrap()
        var configured = logging.logger("lodestar.edge")
        configured[metadataKey: "edge"] = "\(node)"
        let logger = configured
        let loaded = try loadTopologyOrExit(topology)
        let edge: EdgeNode
        do {
            // Everything that can be refused is refused here, before a socket is bound.
            edge = try EdgeNode(topology: loaded, path: topology, node: node, threads: threads,
                                adminToken: adminTokenOrExit(loaded, path: topology), hub: ProcessMetrics.hub(),
                                parentPid: parentPid, logger: logger)
            try await edge.start()
        } catch let e as EdgeStartError {
            printError("\(topology): \(e.description)")
            throw ExitCode(1)
        } catch NodeStartError.other(let message) {
            printError(message)
            throw ExitCode(1)
        }
        // SIGTERM: graceful (drains when gossiping); SIGINT: cancellation (stops at once, requests in flight finish).
        try await ServiceGroup(services: [edge], gracefulShutdownSignals: [.sigterm], cancellationSignals: [.sigint],
                               logger: logger).run()
    }
}

/// `lodestar origin`: the sample origin server the default topology's edges forward to.
struct OriginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "origin",
        abstract: "Run a small sample origin (GET / names the origin, /healthz, /bytes/N) for local tries.")

    @Option(name: .long, help: "Listen address ADDR:PORT or [ADDR]:PORT.")
    var listen: String = "127.0.0.1:8000"

    @Option(name: .long, help: "Name shown in pages and the X-Origin header.")
    var name: String = "sample-origin"

    func run() async throws {
        guard let address = ListenAddress(listen) else { throw ValidationError("--listen \(listen): not ADDR:PORT or [ADDR]:PORT") }
        let logger = Logger(label: "lodestar.origin")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel: any Channel
        do {
            channel = try await SampleOrigin.start(listen: address, name: name, group: group)
        } catch {
            printError("origin: cannot listen on \(address): \(error)")
            throw ExitCode(1)
        }
        logger.info("sample origin listening", metadata: ["address": "\(address)", "name": "\(name)"])
        let signals = SignalWatcher()
        let stop = AsyncStream<Void>.makeStream()
        signals.on(SIGINT) { stop.continuation.yield() }
        signals.on(SIGTERM) { stop.continuation.yield() }
        for await _ in stop.stream { break }
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}
