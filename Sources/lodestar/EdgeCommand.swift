import ArgumentParser
import Foundation
import LodestarProxy
import LodestarTopology
import Logging
import NIOCore
import NIOPosix

/// `lodestar edge`: one edge node's HTTP(S) reverse proxy in front of the topology's origin pools.
struct EdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "Run an edge node: the HTTP(S) reverse proxy named by --node in the topology.",
        discussion: "Listeners, admin endpoint, origin pools, routes and limits come from the topology (edges[].listen, edges[].admin, origins, routes, proxy). SIGHUP reloads the topology (routes, pools, limits, rate limits, header rules; a bad file is refused and the running configuration kept; listeners and certificates change on restart). With edges[].gossip the edge joins the gossip cluster and publishes its state; SIGTERM then drains it (DNS stops sending users, it keeps serving for gossip.drainSeconds, then leaves). SIGINT, and SIGTERM without gossip, stop accepting and let requests in flight finish (up to 5 s).")

    @Option(name: .long, help: "Topology file.")
    var topology: String = "topology.json"

    @Option(name: .long, help: "Edge id (an entry of the topology's edges).")
    var node: String

    @Option(name: .long, help: "Event loop threads (replaces proxy.threads; default one per core).")
    var threads: Int?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        var configured = Logger(label: "lodestar.edge")
        configured.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        configured[metadataKey: "edge"] = "\(node)"
        let logger = configured
        let loaded = try loadTopologyOrExit(topology)
        let server: EdgeServer
        do {
            server = try EdgeServer(topology: loaded, edgeId: node, threads: threads, logger: logger)
            try await server.start()
        } catch let e as EdgeStartError {
            printError("\(topology): \(e.description)")
            throw ExitCode(1)
        }
        logger.info("edge serving", metadata: ["routes": "\(loaded.routes.count)", "pools": "\(loaded.pools.count)"])
        let draining = DrainFlag()
        let gossip: GossipRuntime?
        do {
            if let edge = loaded.edge(node) {
                gossip = try await GossipRuntime.startEdge(loaded, edge: edge, server: server, draining: draining, logger: logger)
            } else {
                gossip = nil
            }
        } catch {
            printError("\(topology): \(error)")
            await server.shutdown(grace: .zero)
            throw ExitCode(1)
        }

        let signals = SignalWatcher()
        let stop = AsyncStream<Void>.makeStream()
        let path = topology
        signals.on(SIGHUP) {
            do {
                let fresh = try Topology.load(path: path)
                try server.reload(fresh)
                logger.info("reloaded", metadata: ["topology": "\(path)", "routes": "\(fresh.routes.count)", "pools": "\(fresh.pools.count)"])
            } catch let errors as TopologyErrors {
                for issue in errors.issues { logger.error("reload refused: \(issue.description)") }
                logger.error("reload refused; keeping the running configuration")
            } catch {
                logger.error("reload refused; keeping the running configuration", metadata: ["error": "\(error)"])
            }
        }
        let terminated = DrainFlag()
        signals.on(SIGINT) { stop.continuation.yield() }
        signals.on(SIGTERM) {
            terminated.set()
            stop.continuation.yield()
        }
        for await _ in stop.stream { break }
        if let gossip, terminated.isSet {
            // Self-reported drain: the DNS tier stops sending users at once; those already sent (for up to the
            // answers' TTL) are still served; then the edge leaves the cluster and stops.
            draining.set()
            gossip.publishNow(draining: true)
            let seconds = loaded.drainSeconds
            logger.notice("draining: serving until DNS answers naming this edge have expired", metadata: ["seconds": "\(seconds)"])
            try? await Task.sleep(nanoseconds: UInt64(seconds) * 1_000_000_000)
        }
        logger.info("stopping", metadata: ["stats": "\(server.stats.snapshot.map { "\($0.0)=\($0.1)" }.joined(separator: " "))"])
        await gossip?.leave()
        await server.shutdown()
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
