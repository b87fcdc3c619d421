import Foundation
import LodestarAdmin
import LodestarGeo
import LodestarSelection
import LodestarGossip
import LodestarGossipServer
import LodestarMetrics
import LodestarProxy
import LodestarTopology
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A process's gossip member (DNS node or edge) with its own event loop, started from the topology's gossip section.
package final class GossipRuntime: Sendable {
    package let node: GossipNode
    package let group: MultiThreadedEventLoopGroup
    private let publisher = Mutex<RepeatedTask?>(nil)
    /// An edge's state meter (nil for a DNS node).
    private let meter = Mutex<EdgeStateMeter?>(nil)
    /// The DNS nodes an edge sends its state to directly.
    package let dnsNodes: [SWIMNodeID]

    private init(node: GossipNode, group: MultiThreadedEventLoopGroup, dnsNodes: [SWIMNodeID]) {
        self.node = node
        self.group = group
        self.dnsNodes = dnsNodes
    }

    /// Starts the member `id` at `address` and joins the topology's other members. Throws (nothing left running)
    /// when there is no usable key or the address cannot be bound.
    package static func start(_ topology: Topology, id: String, address: ListenAddress, logger: Logger, metrics: MetricsHub,
                      onChange: @escaping @Sendable ([SWIMMember]) -> Void) async throws -> GossipRuntime {
        guard let settings = topology.gossip else { throw GossipCluster.SetupError(description: "gossip: no gossip section") }
        let keyring = try GossipCluster.keyring(settings)
        let peers = try GossipCluster.peers(topology)
        let listen = try GossipCluster.socketAddress(address)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let node = GossipNode(myself: SWIMNodeID(id), listen: listen, keyring: keyring,
                              settings: GossipCluster.swimSettings(settings), seeds: Array(peers.keys), group: group,
                              logger: logger, onChange: onChange)
        do {
            try await node.start()
        } catch {
            try? await group.shutdownGracefully()
            throw GossipCluster.SetupError(description: "gossip: cannot listen on \(address): \(error)")
        }
        node.join(peers: peers)
        GossipMetrics.register(node, on: metrics)
        return GossipRuntime(node: node, group: group,
                             dnsNodes: topology.gossipMembers.filter { !$0.isEdge && $0.id != id }.map { SWIMNodeID($0.id) })
    }

    /// The DNS node's member: every change of the members' states is turned into edge health for the answers.
    /// It also publishes the node's operator drains every second (and at once on a change) and takes the other DNS
    /// nodes' drains into `state`, so a drain asked of any DNS node holds on all of them.
    package static func startDNS(_ topology: Topology, health: LiveHealthView, logger: Logger,
                         metrics: MetricsHub, state: DNSNodeState) async throws -> GossipRuntime? {
        guard let settings = topology.gossip, let address = topology.dns.gossip else { return nil }
        let edgeIds = Set(topology.edges.map(\.id))
        let peers = Set(topology.gossipMembers.filter { !$0.isEdge }.map(\.id)).subtracting([topology.dns.nodeId])
        let watermark = settings.overloadWatermark
        let runtime = try await start(topology, id: topology.dns.nodeId, address: address, logger: logger, metrics: metrics) { members in
            if health.update(GossipCluster.edgeHealth(members, edgeIds: edgeIds, watermark: watermark)) {
                let view = health.reported.filter { $0.value != .healthy }.map { "\($0.key)=\($0.value)" }.sorted()
                logger.notice("edge health changed", metadata: ["not-healthy": "\(view)"])
            }
            for m in members where peers.contains(m.node.name) && !m.metadata.bytes.isEmpty {
                state.peerDrains(m.metadata.bytes, from: m.node.name)
            }
        }
        if let book = state.drainBook {
            let node = runtime.node
            book.onChange = { bytes in node.publish(bytes, announce: true) }
            node.publish(book.encoded, announce: true)
            let task = runtime.group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                node.publish(book.encoded)
            }
            runtime.publisher.withLock { $0 = task }
        }
        return runtime
    }

    /// An edge's member: publishes its `EdgeState` every second (and at once when `draining` is set).
    package static func startEdge(_ topology: Topology, edge: Edge, server: EdgeServer, draining: DrainFlag,
                          logger: Logger) async throws -> GossipRuntime? {
        guard topology.gossip != nil, let address = edge.gossip else { return nil }
        let runtime = try await start(topology, id: edge.id, address: address, logger: logger,
                                      metrics: server.metricsHub) { _ in }
        let meter = EdgeStateMeter(server: server, capacity: edge.capacity)
        // The DNS nodes get every report straight away; gossip carries it to the other edges (issue 19 §3: at a
        // thousand members payload refreshes wait behind membership changes, and the DNS tier must not wait).
        let dnsNodes = runtime.dnsNodes
        runtime.node.publish(meter.state(draining: draining.isSet).encoded(), directTo: dnsNodes)
        let node = runtime.node
        let task = runtime.group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            node.publish(meter.state(draining: draining.isSet).encoded(), directTo: dnsNodes)
        }
        runtime.publisher.withLock { $0 = task }
        runtime.meter.withLock { $0 = meter }
        return runtime
    }

    /// Publishes the edge's state now and pings it to the other members (e.g. when draining starts or ends), without
    /// waiting for the next second.
    package func publishNow(draining: Bool) {
        if let meter = meter.withLock({ $0 }) {
            node.publish(meter.state(draining: draining).encoded(), announce: true, directTo: dnsNodes)
        }
    }

    /// Announces the leave, stops the member and its event loop.
    package func leave() async {
        publisher.withLock { $0?.cancel() }
        await node.leave()
        try? await group.shutdownGracefully()
    }
}

/// Whether the edge is draining (SIGTERM, or the admin API), why and since when; read by the state publisher.
package final class DrainFlag: Sendable {
    private let state = Mutex<(on: Bool, reason: String, since: Date?)>((false, "", nil))
    /// Whether draining is on.
    package var isSet: Bool { state.withLock { $0.on } }
    /// Starts draining.
    package func set(reason: String = "SIGTERM") { state.withLock { $0 = (true, reason, Date()) } }
    /// Ends a drain (the admin API's undrain).
    package func clear() { state.withLock { $0 = (false, "", nil) } }
    /// `"drain":{…}` for `/status`.
    package var statusJSON: String {
        let s = state.withLock { $0 }
        guard s.on else { return "\"drain\":{\"draining\":false}" }
        return "\"drain\":{\"draining\":true,\"reason\":\(json(s.reason)),\"since\":\(json(iso(s.since ?? Date())))}"
    }
}

/// Turns an edge's counters into the `EdgeState` it publishes (requests per second over the interval since the last call).
package final class EdgeStateMeter: Sendable {
    private let server: EdgeServer
    private let capacity: Int
    private let last = Mutex<(requests: Int, at: NIODeadline)>((0, .now()))

    package init(server: EdgeServer, capacity: Int) {
        self.server = server
        self.capacity = capacity
        last.withLock { $0 = (server.stats.requests.load(ordering: .relaxed), .now()) }
    }

    /// The edge's state now.
    package func state(draining: Bool) -> EdgeState {
        let status = server.status()
        let servers = status.pools.reduce(0) { $0 + $1.servers.count }
        let available = status.pools.reduce(0) { $0 + $1.available }
        let requests = server.stats.requests.load(ordering: .relaxed)
        let now = NIODeadline.now()
        let rps = last.withLock { l -> Double in
            let seconds = Double((now - l.at).nanoseconds) / 1e9
            defer { l = (requests, now) }
            return seconds > 0 ? Double(requests - l.requests) / seconds : 0
        }
        let mode: EdgeState.Mode = draining ? .draining : (status.degraded ? .degraded : .serving)
        return EdgeState(mode: mode,
                         healthyOrigins: servers == 0 ? 10_000 : UInt16(clamping: available * 10_000 / servers),
                         connections: UInt32(clamping: server.stats.connections.load(ordering: .relaxed)),
                         requestsPerSecond: UInt32(clamping: Int(rps.rounded())),
                         cacheHitRatio: UInt16(clamping: Int(((status.cacheHitRatio ?? 0) * 10_000).rounded())),
                         capacity: UInt32(clamping: capacity))
    }
}
