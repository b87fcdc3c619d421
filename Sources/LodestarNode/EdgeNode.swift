import Dispatch
import Foundation
import LodestarAdmin
import LodestarProxy
import LodestarTopology
import Logging
import NIOCore
import NIOPosix
import LodestarMetrics
import ServiceLifecycle
import Synchronization

/// One edge node of a process, as a swift-service-lifecycle `Service`: what `lodestar edge` runs. Creating it builds
/// the proxy from the topology (routes, pools, TLS files: refused there, before any socket is bound); `start` opens the
/// listeners and joins gossip; `run` serves SIGHUP reloads until the `ServiceGroup` shuts it down. A graceful shutdown
/// (SIGTERM) drains first when the edge gossips — the DNS tier stops sending users, those already sent are served for
/// `gossip.drainSeconds` — and a cancellation (SIGINT) stops at once, letting requests in flight finish.
package final class EdgeNode: ServiceLifecycle.Service, @unchecked Sendable {
    package let server: EdgeServer
    private let topology: Topology
    private let path: String
    private let node: String
    private let tracker: ConfigTracker
    private let version: String
    private let draining = DrainFlag()
    private let gossipBox = Mutex<GossipRuntime?>(nil)
    private let reloadLock = NSLock()
    private let logger: Logger
    private let adminToken: String?
    /// The admin endpoint and the thread it runs on, made only when the edge has `edges[].admin`.
    private let admin = Mutex<(channel: any Channel, group: MultiThreadedEventLoopGroup)?>(nil)
    /// The `lodestar up` that started this edge: when it is gone, the edge stops (even after a SIGKILL of it).
    private let parentPid: Int32?

    package init(topology: Topology, path: String, node: String, threads: Int?, adminToken: String?, hub: MetricsHub,
         parentPid: Int32?, logger: Logger) throws {
        self.topology = topology
        self.path = path
        self.node = node
        self.adminToken = adminToken
        self.parentPid = parentPid
        self.logger = logger
        version = ConfigTracker.version(topologyPath: path, geoPath: nil)
        tracker = ConfigTracker(role: "edge", initial: .init(version: version, serial: topology.zone.soa.serial, loadedAt: Date()),
                                hub: hub)
        server = try EdgeServer(topology: topology, edgeId: node, threads: threads, logger: logger, metrics: hub)
    }

    /// The admin API's reload, drain (only when gossiping: there is no one to tell otherwise) and status hooks.
    private func adminHooks(gossiping: Bool) -> AdminHooks {
        var hooks = AdminHooks()
        hooks.reload = { [self] in reloadLock.withLock { reload(source: "admin API") } }
        hooks.status = { [tracker, draining] in tracker.statusJSON + "," + draining.statusJSON }
        hooks.ready = { [draining] in !draining.isSet }
        guard gossiping else { return hooks }
        hooks.drain = { [self] on, reason in
            guard let gossip = gossipBox.withLock({ $0 }) else { return "{\"error\":\"no gossip\"}" }
            if on { draining.set(reason: reason) } else { draining.clear() }
            gossip.publishNow(draining: on)
            if on { server.nudgeClients() }
            logger.notice(on ? "draining (admin API)" : "drain ended (admin API)", metadata: ["reason": "\(reason)"])
            return "{" + draining.statusJSON + "}\n"
        }
        return hooks
    }

    /// Opens the listeners and joins gossip; on a failure closes what it opened.
    package func start() async throws {
        try await server.start()
        logger.info("edge serving", metadata: ["routes": "\(topology.routes.count)", "pools": "\(topology.pools.count)",
                                               "version": "\(version)"])
        do {
            if let edge = topology.edge(node) {
                let gossip = try await GossipRuntime.startEdge(topology, edge: edge, server: server, draining: draining, logger: logger)
                gossipBox.withLock { $0 = gossip }
            }
        } catch {
            await server.shutdown(grace: .zero)
            throw NodeStartError.other("\(path): \(error)")
        }
        guard let index = topology.edges.firstIndex(where: { $0.id == node }), let address = topology.edges[index].admin else { return }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let channel = try await EdgeAdmin.bind(address, group: group, server: server, token: adminToken,
                                                   hooks: adminHooks(gossiping: gossipBox.withLock { $0 } != nil),
                                                   path: "edges[\(index)].admin")
            admin.withLock { $0 = (channel, group) }
            logger.info("admin listening", metadata: ["address": "\(address)"])
        } catch {
            try? await group.shutdownGracefully()
            await gossipBox.withLock({ $0 })?.leave()
            await server.shutdown(grace: .zero)
            throw error
        }
    }

    /// Closes the admin endpoint (its requests in flight are dropped with it).
    private func closeAdmin() async {
        guard let (channel, group) = admin.withLock({ a in defer { a = nil }; return a }) else { return }
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    /// Serves until the group shuts down (drains first) or is cancelled, or the parent `lodestar up` is gone.
    package func run() async throws {
        let signals = SignalWatcher()
        signals.on(SIGHUP) { [self] in _ = reloadLock.withLock { reload(source: "SIGHUP") } }
        let graceful = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do { try await gracefulShutdown(); return true } catch { return false }
            }
            if let parentPid {
                group.addTask {
                    while getppid() == parentPid, !Task.isCancelled { try? await Task.sleep(nanoseconds: 500_000_000) }
                    return false
                }
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        // Stopping runs to its end even when the group was cancelled (SIGINT): in a task of its own.
        await Task { [self] in await finish(drain: graceful) }.value
    }

    /// Stops at once without draining (an in-process edge of `lodestar up`): requests in flight may finish.
    package func stop() async { await finish(drain: false) }

    /// Drains first when asked to and gossiping (DNS stops sending users; those already sent are served until their
    /// answers' TTL has passed), then leaves gossip and stops the server (requests in flight may finish).
    private func finish(drain: Bool) async {
        if drain, let gossip = gossipBox.withLock({ $0 }) {
            draining.set(reason: "SIGTERM")
            gossip.publishNow(draining: true)
            server.nudgeClients()
            let seconds = topology.drainSeconds
            logger.notice("draining: serving until DNS answers naming this edge have expired", metadata: ["seconds": "\(seconds)"])
            try? await Task.sleep(nanoseconds: UInt64(seconds) * 1_000_000_000)
        }
        logger.info("stopping", metadata: ["stats": "\(server.stats.snapshot.map { "\($0.0)=\($0.1)" }.joined(separator: " "))"])
        await closeAdmin()
        await gossipBox.withLock({ $0 })?.leave()
        await server.shutdown()
    }

    /// Re-reads the topology for SIGHUP and `POST /reload`; a bad file is refused and the running configuration kept.
    package func reload(source: String) -> (ok: Bool, message: String) {
        tracker.reload(source: source, topologyPath: path, logger: logger) { [server, path] in
            let fresh = try Topology.load(path: path)
            try server.reload(fresh)
            let version = ConfigTracker.version(topologyPath: path, geoPath: nil)
            return (.init(version: version, serial: fresh.zone.soa.serial, loadedAt: Date()),
                    "\(fresh.routes.count) routes, \(fresh.pools.count) pools")
        }
    }
}
