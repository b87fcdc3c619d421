import Dispatch
import Foundation
import LodestarAdmin
import LodestarDNS
import LodestarDNSServer
import LodestarMetrics
import LodestarSelection
import LodestarTopology
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Why a node (DNS or edge) could not start; `listen` failures of the DNS listeners are logged as "cannot listen".
package enum NodeStartError: Error, CustomStringConvertible {
    case listen(any Error)
    case other(String)
    package var description: String {
        switch self {
        case .listen(let error): "cannot listen: \(error)"
        case .other(let message): message
        }
    }
}

/// The DNS role of a process, as a swift-service-lifecycle `Service`: what `lodestar dns` runs, and the DNS part of
/// `lodestar up`. Creating it builds the answer engine from the topology (a bad database, zone or key is refused
/// there, before any socket is bound); `start` binds DNS, gossip and the admin endpoint; `run` serves SIGHUP reloads
/// and the down file until graceful shutdown, then stops everything it started.
package final class DNSNode: ServiceLifecycle.Service, @unchecked Sendable {
    package let topology: Topology
    package let path: String
    package let state: DNSNodeState
    package let box: AuthorityBox
    package let tracker: ConfigTracker
    package let server: DNSServer
    package let version: String
    private let hub: MetricsHub
    private let adminToken: String?
    private let logger: Logger
    private let adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    package private(set) var gossip: GossipRuntime?
    private var admin: (any Channel)?
    private let stopped = Mutex(false)

    /// Builds the node's state and answer engine. `runKey`: when the topology signs without key files, make the key
    /// for this run now (as `lodestar up` does, printing its DS) rather than with a warning at the first build.
    package init(topology: Topology, path: String, node: String?, geoOverride: String? = nil, flagDown: Set<String> = [],
         runKey: Bool = false, configuration: DNSServer.Configuration, adminToken: String?, hub: MetricsHub,
         logger: Logger) throws {
        self.topology = topology
        self.path = path
        self.hub = hub
        self.adminToken = adminToken
        self.logger = logger
        state = DNSNodeState(topologyPath: path, geoOverride: geoOverride, flagDown: flagDown, health: LiveHealthView(),
                             logger: logger)
        state.node = node
        if runKey, let sec = topology.dns.dnssec, sec.keys.isEmpty { state.runKeys = [DNSSECKey.generate()] }
        state.attachDrains(for: topology)
        version = state.version(for: topology)
        box = AuthorityBox(try state.build(from: topology, version: version))
        tracker = ConfigTracker(role: "dns", initial: .init(version: version, serial: topology.zone.soa.serial, loadedAt: Date()),
                                hub: hub)
        state.box = box
        state.tracker = tracker
        server = DNSServer(authority: box, configuration: configuration, logger: logger)
    }

    /// Binds the DNS listeners, joins gossip and opens the admin endpoint; on a failure closes what it opened.
    package func start() async throws {
        do {
            try await server.start()
        } catch {
            throw NodeStartError.listen(error)
        }
        logger.info("serving", metadata: ["zone": "\(topology.zone.name)", "node": "\(topology.dns.nodeId)", "version": "\(version)",
                                          "geo": "\(state.geoPath(for: topology))", "threads": "\(server.configuration.threads)"])
        do {
            gossip = try await GossipRuntime.startDNS(topology, health: state.health, logger: logger, metrics: hub, state: state)
        } catch {
            await server.shutdown()
            throw NodeStartError.other("\(path): \(error)")
        }
        DNSAdmin.registerHealthMetrics(hub: hub, state: state, box: box)
        guard let address = topology.dns.admin else { return }
        do {
            admin = try await DNSAdmin.bind(address, group: adminGroup, token: adminToken, state: state, box: box,
                                            server: server, gossip: gossip?.node, config: { [tracker] in tracker.status }, hub: hub)
            logger.info("admin listening", metadata: ["address": "\(address)"])
        } catch {
            await gossip?.leave()
            await server.shutdown()
            throw NodeStartError.other("\(path): dns.admin: cannot listen on \(address): \(error)")
        }
    }

    /// Serves until graceful shutdown (SIGTERM/SIGINT through the `ServiceGroup`): SIGHUP reloads the topology, the
    /// down file is re-read every second. Then it stops.
    package func run() async throws {
        let signals = SignalWatcher()
        let listenOverridden = server.configuration.listen != topology.dns.listen
        signals.on(SIGHUP) { [state, topology, logger] in
            let result = state.reload(source: "SIGHUP")
            if result.ok, let fresh = state.currentTopology, fresh.dns.listen != topology.dns.listen && !listenOverridden {
                logger.warning("reload: dns.listen changed; listeners change only on restart")
            }
        }
        let downWatch = state.watchDownFile(every: .seconds(1))
        try? await gracefulShutdown()
        downWatch.cancel()
        await stop()
    }

    /// Closes the admin endpoint, leaves gossip and stops the DNS server (once; later calls return at once).
    package func stop() async {
        guard stopped.withLock({ let was = $0; $0 = true; return !was }) else { return }
        logger.info("stopping", metadata: ["stats": "\(server.stats.summary)"])
        try? await admin?.close()
        try? await adminGroup.shutdownGracefully()
        await gossip?.leave()
        await server.shutdown()
    }
}
