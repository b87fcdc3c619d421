import ArgumentParser
import Dispatch
import Foundation
import LodestarProxy
import LodestarTopology
import Logging
import NIOCore
import NIOPosix
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
        let adminToken = try adminTokenOrExit(loaded, path: topology)
        let hub = ProcessMetrics.hub()
        let server: EdgeServer
        let version = ConfigTracker.version(topologyPath: topology, geoPath: nil)
        let tracker = ConfigTracker(role: "edge", initial: .init(version: version, serial: loaded.zone.soa.serial, loadedAt: Date()),
                                    hub: hub)
        let draining = DrainFlag()
        let gossipBox = Mutex<GossipRuntime?>(nil)
        let path = topology
        let reloadLock = NSLock()
        do {
            server = try EdgeServer(topology: loaded, edgeId: node, threads: threads, logger: logger, metrics: hub)
            var hooks = AdminHooks()
            hooks.reload = { reloadLock.withLock { EdgeCommand.reload(server, path: path, tracker: tracker, logger: logger, source: "admin API") } }
            hooks.drain = { on, reason in
                guard let gossip = gossipBox.withLock({ $0 }) else { return "{\"error\":\"no gossip\"}" }
                if on { draining.set(reason: reason) } else { draining.clear() }
                gossip.publishNow(draining: on)
                if on { server.nudgeClients() }
                logger.notice(on ? "draining (admin API)" : "drain ended (admin API)", metadata: ["reason": "\(reason)"])
                return "{" + draining.statusJSON + "}\n"
            }
            hooks.status = { tracker.statusJSON + "," + draining.statusJSON }
            hooks.ready = { !draining.isSet }
            server.configureAdmin(token: adminToken, hooks: hooks)
            try await server.start()
        } catch let e as EdgeStartError {
            printError("\(topology): \(e.description)")
            throw ExitCode(1)
        }
        logger.info("edge serving", metadata: ["routes": "\(loaded.routes.count)", "pools": "\(loaded.pools.count)", "version": "\(version)"])
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
        if let gossip {
            gossipBox.withLock { $0 = gossip }
        } else {
            var hooks = server.adminHooks
            hooks.drain = nil
            server.configureAdmin(token: adminToken, hooks: hooks)
        }

        let signals = SignalWatcher()
        let stop = AsyncStream<Void>.makeStream()
        signals.on(SIGHUP) {
            _ = reloadLock.withLock { EdgeCommand.reload(server, path: path, tracker: tracker, logger: logger, source: "SIGHUP") }
        }
        let terminated = Mutex(false)
        signals.on(SIGINT) { stop.continuation.yield() }
        signals.on(SIGTERM) {
            terminated.withLock { $0 = true }
            stop.continuation.yield()
        }
        var orphanWatch: (any DispatchSourceTimer)?
        if let parentPid {
            // A child of `lodestar up` must not outlive it (even when it was killed with SIGKILL).
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.schedule(deadline: .now() + .milliseconds(500), repeating: .milliseconds(500))
            timer.setEventHandler {
                if getppid() != parentPid { stop.continuation.yield() }
            }
            timer.resume()
            orphanWatch = timer
        }
        for await _ in stop.stream { break }
        orphanWatch?.cancel()
        if let gossip, terminated.withLock({ $0 }) {
            // Self-reported drain: the DNS tier stops sending users at once; those already sent (for up to the
            // answers' TTL) are still served; then the edge leaves the cluster and stops.
            draining.set(reason: "SIGTERM")
            gossip.publishNow(draining: true)
            server.nudgeClients()
            let seconds = loaded.drainSeconds
            logger.notice("draining: serving until DNS answers naming this edge have expired", metadata: ["seconds": "\(seconds)"])
            try? await Task.sleep(nanoseconds: UInt64(seconds) * 1_000_000_000)
        }
        logger.info("stopping", metadata: ["stats": "\(server.stats.snapshot.map { "\($0.0)=\($0.1)" }.joined(separator: " "))"])
        await gossip?.leave()
        await server.shutdown()
    }

    /// Re-reads the topology for SIGHUP and `POST /reload`; a bad file is refused and the running configuration kept.
    static func reload(_ server: EdgeServer, path: String, tracker: ConfigTracker, logger: Logger,
                       source: String) -> (ok: Bool, message: String) {
        tracker.reload(source: source, topologyPath: path, logger: logger) {
            let fresh = try Topology.load(path: path)
            try server.reload(fresh)
            let version = ConfigTracker.version(topologyPath: path, geoPath: nil)
            return (.init(version: version, serial: fresh.zone.soa.serial, loadedAt: Date()),
                    "\(fresh.routes.count) routes, \(fresh.pools.count) pools")
        }
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
