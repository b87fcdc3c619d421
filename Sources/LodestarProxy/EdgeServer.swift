import LodestarEdge
import LodestarMetrics
import LodestarTopology
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Why an edge could not start.
public struct EdgeStartError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// `lodestar edge`: the HTTP(S) listeners, per-loop upstream pools and active health checks of one edge (its admin
/// endpoint is LodestarAdmin's `EdgeAdmin`, bound by the node).
public final class EdgeServer: Sendable {
    public let edge: Edge
    /// Position of the edge in the topology's `edges` (for error paths).
    let edgeIndex: Int
    let shared: EdgeShared
    private let group: MultiThreadedEventLoopGroup
    private let loops: [ObjectIdentifier: LoopStateBox]
    /// The client listeners (bound at start, changed by reloads).
    private let listeners: EdgeListeners
    /// Idle-connection sweepers, one per loop.
    private let sweepers: [RepeatedTask]
    /// Active health checks of the pools in force.
    private let checker: Mutex<[RepeatedTask]>
    /// Open client connections, for `nudgeClients()`.
    private let open = ConnectionSet()
    /// Addresses of origin servers given by name.
    private let resolver: OriginResolver
    /// Serializes the two ways a configuration is installed: a reload, and origin addresses that changed.
    private let installing = Mutex(())

    /// Counters of this edge.
    public var stats: EdgeStats { shared.stats }

    /// Prepares (but does not bind) the edge `edgeId` of `topology`.
    public init(topology: Topology, edgeId: String, threads: Int? = nil, logger: Logger, metrics: MetricsHub = MetricsHub()) throws {
        guard let index = topology.edges.firstIndex(where: { $0.id == edgeId }) else {
            throw EdgeStartError(description: "edges: no edge \"\(edgeId)\" (--node; known: \(topology.edges.map(\.id).joined(separator: ", ")))")
        }
        let edge = topology.edges[index]
        guard !edge.listen.isEmpty else {
            throw EdgeStartError(description: "edges[\(index)].listen: edge \"\(edgeId)\" has no listen addresses")
        }
        self.edge = edge
        self.edgeIndex = index
        let config = try EdgeConfig(topology: topology, edgeId: edgeId)
        let cache = try Self.makeCache(topology, edgeId: edgeId, existing: nil, logger: logger)
        self.shared = EdgeShared(config: config, logger: logger, metrics: metrics)
        shared.cache = cache
        shared.metrics.startCollecting(shared)
        let count = threads ?? (topology.proxy.threads > 0 ? topology.proxy.threads : System.coreCount)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, count))
        var loops = [ObjectIdentifier: LoopStateBox]()
        var sweepers = [RepeatedTask]()
        for loop in group.makeIterator() {
            let box = LoopStateBox(LoopState(config: config, eventLoop: loop, cache: cache))
            loops[ObjectIdentifier(loop)] = box
            sweepers.append(try loop.submit { box.state.startSweeping(on: loop) }.wait())
        }
        self.loops = loops
        self.sweepers = sweepers
        self.checker = Mutex([])
        self.listeners = EdgeListeners(shared: shared, group: group, loops: loops, open: open, edgeIndex: index)
        self.resolver = OriginResolver(loop: group.next(), logger: logger)
        resolver.onChange { [weak self] in self?.originAddressesChanged() }
        resolver.configure(topology)
    }

    /// Binds every listener and starts the health checks (the admin endpoint is LodestarAdmin's `EdgeAdmin`). Throws (with nothing left bound) on failure.
    public func start() async throws {
        do {
            // Origin names are looked up before the first request can arrive (bounded by the resolver's timeouts).
            let settings = shared.config.settings.resolver
            try? await resolver.settled(timeout: .milliseconds(Int64(settings.timeoutMs * settings.attempts + 500))).get()
            originAddressesChanged()
            try await listeners.bindAll(edge.listen)
        } catch {
            await shutdown()
            throw error
        }
        startHealthChecks()
    }

    /// What the edge does with a response when it compresses (the full path and the lanes alike):
    /// nothing for one it would never compress; `Vary: Accept-Encoding` alone for one it could compress but does not
    /// now (shorter than `minBytes`, `no-transform`, or a client that accepts no coding); compress it otherwise.
    static func compression(status: Int, _ f: CompressionFacts, accepts: Bool, settings: CompressionSettings) -> CompressionDecision {
        guard compressible(status: status, contentType: f.contentType, encoded: f.encoded, types: settings.types) else {
            return .none
        }
        if let length = f.length, length < Int64(settings.minBytes) { return .varyOnly }
        return f.noTransform || !accepts ? .varyOnly : .compress
    }

    /// A response the edge compresses for a client that asks (so its answer varies on `Accept-Encoding`): a status
    /// with a body other than 206, not already encoded, of a type in `types` (`text/*` style wildcards allowed).
    static func compressible(status: Int, contentType: String?, encoded: Bool, types: [String]) -> Bool {
        guard status >= 200, status != 204, status != 304, status != 206, !encoded, let type = contentType else { return false }
        let mediaType = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() } ?? ""
        return types.contains { t in t.hasSuffix("/*") ? mediaType.hasPrefix(t.dropLast()) : mediaType == t }
    }

    /// `Vary` already names `Accept-Encoding` (or `*`); `values` are its comma-separated items.
    static func variesOnEncoding<S: Sequence>(_ values: S) -> Bool where S.Element: StringProtocol {
        values.contains { $0.lowercased() == "accept-encoding" || $0 == "*" }
    }

    /// TLS 1.2+ context; with several certificates, SNI picks one (the first is the default).
    static func makeTLSContext(_ settings: TLSSettings, protocols: [ListenerProtocol] = [.http1]) throws -> NIOSSLContext {
        struct Loaded: Sendable {
            let names: [String]
            let chain: [NIOSSLCertificateSource]
            let key: NIOSSLPrivateKeySource
        }
        var loaded = [Loaded]()
        for c in settings.certificates {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(c.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
                guard !chain.isEmpty else { throw EdgeStartError(description: "no certificate in \(c.certificatePath)") }
                let key = try NIOSSLPrivateKey(file: c.keyPath, format: .pem)
                loaded.append(Loaded(names: c.serverNames, chain: chain, key: .privateKey(key)))
            } catch let e as EdgeStartError {
                throw e
            } catch {
                throw EdgeStartError(description: "cannot load TLS certificate \(c.certificatePath) / key \(c.keyPath): \(error)")
            }
        }
        guard let first = loaded.first else { throw EdgeStartError(description: "TLS needs a certificate") }
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: first.chain, privateKey: first.key)
        config.minimumTLSVersion = settings.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        // ALPN in the listener's order of preference (RFC 7301); a client that offers none gets HTTP/1.1.
        config.applicationProtocols = protocols.map(\.rawValue)
        if loaded.count > 1 {
            let choices = loaded
            config.sslContextCallback = { values, promise in
                let host = values.serverHostname?.lowercased() ?? ""
                let match = choices.first { c in Self.serverName(host, matchesAny: c.names) }
                guard let match else { return promise.succeed(.noChanges) }
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = match.chain
                override.privateKey = match.key
                promise.succeed(override)
            }
        }
        do {
            return try NIOSSLContext(configuration: config)
        } catch {
            throw EdgeStartError(description: "TLS configuration refused: \(error)")
        }
    }

    /// A socket error as the system words it (`Address already in use`), anything else as Swift prints it.
    package static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }

    /// Exact name or `*.suffix` matching exactly one label.
    static func serverName(_ host: String, matchesAny names: [String]) -> Bool {
        for n in names {
            if n == host { return true }
            if n.hasPrefix("*."), let dot = host.firstIndex(of: "."), host[host.index(after: dot)...] == n.dropFirst(2) {
                return true
            }
        }
        return false
    }

    // MARK: Health checks

    /// Applies a new topology: routes, pools, balancing, health checks, limits, rate limits, header rules and logging
    /// take effect for new requests; requests in flight finish on what they started with. Listeners that were added
    /// are opened, removed ones closed (their connections finish their requests first), kept ones take their new
    /// settings and re-read certificate files for new connections. The admin address and the thread count change only
    /// on restart (a change is logged). Throws, changing nothing, when this edge is missing from the new topology, a
    /// file is unusable or an added address cannot be bound.
    public func reload(_ topology: Topology) throws {
        try installing.withLock { _ in try reloadLocked(topology) }
    }

    private func reloadLocked(_ topology: Topology) throws {
        guard let edge = topology.edge(self.edge.id) else {
            throw EdgeStartError(description: "edges: no edge \"\(self.edge.id)\" any more; keeping the running configuration")
        }
        if edge.admin != self.edge.admin {
            shared.logger.warning("reload: admin address changed; it changes only on restart")
        }
        guard !edge.listen.isEmpty else {
            throw EdgeStartError(description: "edges[\(edgeIndex)].listen: no listen addresses left; keeping the running configuration")
        }
        let cache = try Self.makeCache(topology, edgeId: self.edge.id, existing: shared.cache, logger: shared.logger)
        let config = try EdgeConfig(topology: topology, edgeId: self.edge.id, resolved: resolver.resolved)
        let change: ListenerChange
        do {
            change = try listeners.prepare(edge.listen, settings: config.settings)
        } catch let e as EdgeStartError {
            throw EdgeStartError(description: e.description + "; keeping the running configuration")
        }
        listeners.commit(change)
        install(config, cache: cache)
        resolver.configure(topology)
    }

    /// Some origin name's addresses changed (or were first learnt): the pools are compiled again from the topology in
    /// force; pools whose servers did not change keep their runtime and connections, changed ones keep the health of
    /// the addresses they still have, and requests in flight to an address that went away finish there.
    private func originAddressesChanged() {
        installing.withLock { _ in
            let current = shared.config
            do {
                let config = try EdgeConfig(topology: current.topology, edgeId: edge.id, resolved: resolver.resolved, previous: current)
                guard zip(config.pools, current.pools).contains(where: { $0 !== $1 }) else { return }
                install(config, cache: shared.cache)
                shared.logger.notice("origin addresses changed", metadata: [
                    "pools": "\(config.pools.map { "\($0.pool.name)=\($0.servers.count)" }.joined(separator: " "))"])
            } catch {
                shared.logger.error("origin addresses changed but the pools could not be rebuilt", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Puts a configuration in force: new requests use it, each loop's pools are carried over or retired, health
    /// checks restart on the new pools.
    private func install(_ config: EdgeConfig, cache: EdgeCache?) {
        shared.config = config
        shared.cache = cache
        for loop in group.makeIterator() {
            guard let box = loops[ObjectIdentifier(loop)] else { continue }
            loop.execute {
                let next = LoopState(config: config, eventLoop: loop, cache: cache, previous: box.state)
                box.state.retire(keeping: next)
                box.state = next
            }
        }
        startHealthChecks()
    }

    /// The shared cache for a topology: none when no route caches; the running one when its settings did not change
    /// (a reload keeps what is stored); else a new one. Throws when the disk tier's directory cannot be used.
    static func makeCache(_ topology: Topology, edgeId: String, existing: EdgeCache?, logger: Logger) throws -> EdgeCache? {
        guard topology.routes.contains(where: { $0.cache.enabled }) else { return nil }
        if let existing, existing.settings == topology.proxy.cache { return existing }
        do {
            let cache = try EdgeCache(settings: topology.proxy.cache, edgeId: edgeId, logger: logger, reuse: existing)
            if existing != nil { logger.notice("cache settings changed: the cache starts empty") }
            return cache
        } catch {
            throw EdgeStartError(description: "proxy.cache.disk.path: \(error)")
        }
    }

    /// (Re)starts the active health checks of the pools in force.
    private func startHealthChecks() {
        for t in checker.withLock({ l in defer { l = [] }; return l }) { t.cancel() }
        let loop = group.next()
        for pool in shared.config.pools {
            guard let check = pool.pool.healthCheck else { continue }
            let shared = self.shared
            let task = loop.scheduleRepeatedTask(initialDelay: .milliseconds(0), delay: .milliseconds(Int64(check.intervalMs))) { _ in
                for i in pool.servers.indices {
                    HealthProbe.run(server: i, check: check, pool: pool, on: loop).whenComplete { result in
                        let ok = (try? result.get()) ?? false
                        if let t = pool.health.recordCheck(i, success: ok) { shared.healthChanged(t, pool: pool) }
                    }
                }
                for t in pool.health.restoreExpired(now: NIODeadline.now().uptimeNanoseconds) { shared.healthChanged(t, pool: pool) }
            }
            checker.withLock { $0.append(task) }
        }
    }

    /// The edge's shared cache (nil: no route caches).
    public var cache: EdgeCache? { shared.cache }

    /// The Prometheus hub this edge registers on.
    public var metricsHub: MetricsHub { shared.metricsHub }

    public func status() -> EdgeStatus { shared.status(now: NIODeadline.now().uptimeNanoseconds) }

    /// Asks every open client connection to move on while the edge keeps serving (drain): HTTP/2 connections get a
    /// graceful GOAWAY (clients reconnect, and re-resolve, for their next requests), HTTP/1.1 connections close after
    /// their current answer or at once when idle. Listeners stay open.
    public func nudgeClients() {
        for channel in open.table.withLock({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Stops accepting, lets requests in flight finish for up to `grace`, then closes everything.
    public func shutdown(grace: TimeAmount = .seconds(5)) async {
        shared.startDraining()
        resolver.shutdown()
        for t in checker.withLock({ $0 }) + sweepers { t.cancel() }
        // Every listener closes, then every open connection (of any listener) is told to finish: HTTP/2 ones send
        // GOAWAY and end when their streams have; HTTP/1.1 ones close when idle (answers meanwhile say
        // `Connection: close`).
        await listeners.closeAll()
        nudgeClients()
        let deadline = NIODeadline.now() + grace
        while shared.stats.connections.load(ordering: .relaxed) > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        try? await group.shutdownGracefully()
    }
}

/// The open client connections of an edge.
final class ConnectionSet: Sendable {
    let table = Mutex<[ObjectIdentifier: any Channel]>([:])
}

/// An event loop's `LoopState`, replaced on reload. Created on the starting thread; afterwards read and replaced only
/// on its own loop.
final class LoopStateBox: @unchecked Sendable {
    var state: LoopState
    init(_ state: LoopState) { self.state = state }
}

/// What a response's head says that the compression rule reads.
struct CompressionFacts {
    var contentType: String?
    /// It has a `Content-Encoding` already.
    var encoded = false
    /// Its `Content-Length`.
    var length: Int64?
    /// `Cache-Control: no-transform` (RFC 9111 §5.2.2.6).
    var noTransform = false
    /// The items of its `Vary`.
    var vary: [Substring] = []
}

/// The compression rule's verdict for one response.
enum CompressionDecision: Equatable {
    case none
    case varyOnly
    case compress
}
