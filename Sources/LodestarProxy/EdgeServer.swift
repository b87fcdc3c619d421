import LodestarEdge
import LodestarMetrics
import LodestarTopology
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
import NIOSSL
import Synchronization

/// Why an edge could not start.
public struct EdgeStartError: Error, CustomStringConvertible {
    public var description: String
}

/// `lodestar edge`: the HTTP(S) listeners, per-loop upstream pools, active health checks and the admin endpoint of one edge.
public final class EdgeServer: Sendable {
    public let edge: Edge
    /// Position of the edge in the topology's `edges` (for error paths).
    let edgeIndex: Int
    let shared: EdgeShared
    private let group: MultiThreadedEventLoopGroup
    private let loops: [ObjectIdentifier: LoopStateBox]
    private let channels: Mutex<[any Channel]>
    /// Idle-connection sweepers, one per loop.
    private let sweepers: [RepeatedTask]
    /// Active health checks of the pools in force.
    private let checker: Mutex<[RepeatedTask]>
    /// Tells every client connection to finish up at shutdown (HTTP/2: GOAWAY; HTTP/1.1: close when idle).
    private let quiescing: ServerQuiescingHelper
    /// Open client connections, for `nudgeClients()`.
    private let open = ConnectionSet()
    /// Each TLS listener's certificates in force (re-read on reload; new connections take the newest).
    private let tlsBoxes = Mutex<[ListenAddress: TLSContextBox]>([:])

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
        self.channels = Mutex([])
        self.sweepers = sweepers
        self.checker = Mutex([])
        self.quiescing = ServerQuiescingHelper(group: group)
    }

    /// Binds every listener and the admin endpoint, and starts the health checks. Throws (with nothing left bound) on failure.
    public func start() async throws {
        do {
            for (j, listener) in edge.listen.enumerated() {
                let path = "edges[\(edgeIndex)].listen[\(j)]"
                var tls: TLSContextBox?
                do {
                    if let settings = listener.tls {
                        let box = TLSContextBox(try Self.makeTLSContext(settings, protocols: listener.protocols))
                        tlsBoxes.withLock { $0[listener.address] = box }
                        tls = box
                    }
                } catch let e as EdgeStartError {
                    throw EdgeStartError(description: "\(path).tls: \(e.description)")
                }
                let ch = try await bind(listener, tls: tls, path: path)
                channels.withLock { $0.append(ch) }
                shared.logger.info("edge listening", metadata: [
                    "address": "\(listener.address)", "tls": "\(listener.tls != nil)", "proxyProtocol": "\(listener.proxyProtocol)"])
            }
            if let admin = edge.admin {
                let ch = try await AdminServer.bind(admin, group: group, shared: shared, path: "edges[\(edgeIndex)].admin")
                channels.withLock { $0.append(ch) }
                shared.logger.info("admin listening", metadata: ["address": "\(admin)"])
            }
        } catch {
            await shutdown()
            throw error
        }
        startHealthChecks()
    }

    private func bind(_ listener: EdgeListener, tls: TLSContextBox?, path: String) async throws -> any Channel {
        let shared = self.shared
        let limits = shared.config.settings.limits
        let pipeline = ClientPipeline(shared: shared, loops: loops, listener: listener, tls: tls)
        let quiescing = self.quiescing
        let openConnections = self.open
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // A client that sends its request and then shuts its sending side still gets the answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let count = shared.stats.connections.add(1, ordering: .relaxed).newValue
                    let id = ObjectIdentifier(channel)
                    openConnections.table.withLock { $0[id] = channel }
                    channel.closeFuture.whenComplete { _ in
                        shared.stats.connections.subtract(1, ordering: .relaxed)
                        openConnections.table.withLock { _ = $0.removeValue(forKey: id) }
                    }
                    if count > limits.maxConnections {
                        shared.stats.connectionsRefused.add(1, ordering: .relaxed)
                        channel.close(promise: nil)
                        return
                    }
                    try pipeline.initialize(channel)
                }
            }
        do {
            return try await bootstrap.bind(host: listener.address.host.description, port: listener.address.port).get()
        } catch {
            throw EdgeStartError(description: "\(path): cannot listen on \(listener.address): \(Self.describe(error))")
        }
    }

    /// gzip only what is worth it: compressible types, big enough, not already encoded, not partial, not for HTTP/1.0.
    static func compressionPredicate(_ settings: CompressionSettings) -> HTTPResponseCompressor.ResponseCompressionPredicate {
        let types = settings.types
        let minBytes = settings.minBytes
        return { head, supported in
            if head.headers.contains(name: EdgeShared.noCompressMarker) {
                head.headers.remove(name: EdgeShared.noCompressMarker)
                return .doNotCompress
            }
            guard head.status.mayHaveResponseBody, head.status != .partialContent,
                  head.headers[canonicalForm: "content-encoding"].isEmpty,
                  let type = head.headers.first(name: "content-type") else { return .doNotCompress }
            let mediaType = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() } ?? ""
            let compressible = types.contains { t in
                t.hasSuffix("/*") ? mediaType.hasPrefix(t.dropLast()) : mediaType == t
            }
            guard compressible else { return .doNotCompress }
            if !head.headers[canonicalForm: "vary"].contains(where: { $0.lowercased() == "accept-encoding" || $0 == "*" }) {
                head.headers.add(name: "Vary", value: "Accept-Encoding")
            }
            if let len = head.headers.first(name: "content-length").flatMap(Int.init), len < minBytes { return .doNotCompress }
            if head.headers[canonicalForm: "cache-control"].contains(where: { $0.lowercased() == "no-transform" }) {
                return .doNotCompress
            }
            guard supported else { return .doNotCompress }
            head.headers.remove(name: "content-length")  // the encoder frames the gzip stream itself
            return .compressIfPossible
        }
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
    static func describe(_ error: any Error) -> String {
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
    /// take effect for new requests; requests in flight finish on what they started with. TLS certificate files are
    /// read again and served to new connections. Added or removed listeners and the thread count change only on
    /// restart (a change is logged). Throws, changing nothing, when this edge is missing from the new topology or a file is unusable.
    public func reload(_ topology: Topology) throws {
        guard let edge = topology.edge(self.edge.id) else {
            throw EdgeStartError(description: "edges: no edge \"\(self.edge.id)\" any more; keeping the running configuration")
        }
        if edge.listen != self.edge.listen || edge.admin != self.edge.admin {
            shared.logger.warning("reload: listen or admin changed; listeners change only on restart")
        }
        let cache = try Self.makeCache(topology, edgeId: self.edge.id, existing: shared.cache, logger: shared.logger)
        let config = try EdgeConfig(topology: topology, edgeId: self.edge.id)
        let certificates = try reloadedCertificates(edge)
        shared.config = config
        shared.cache = cache
        for (box, context) in certificates { box.current.withLock { $0 = context } }
        if !certificates.isEmpty {
            shared.logger.notice("reload: TLS certificates re-read", metadata: ["listeners": "\(certificates.count)"])
        }
        for loop in group.makeIterator() {
            guard let box = loops[ObjectIdentifier(loop)] else { continue }
            loop.execute {
                box.state.retire()
                box.state = LoopState(config: config, eventLoop: loop, cache: cache)
            }
        }
        for t in checker.withLock({ l in defer { l = [] }; return l }) { t.cancel() }
        startHealthChecks()
    }

    /// New TLS contexts, from the certificate files as they are now, for every TLS listener that is still bound (a
    /// renewed certificate is served to new connections; established ones keep theirs). Throws, changing nothing,
    /// when a file cannot be used.
    private func reloadedCertificates(_ edge: Edge) throws -> [(TLSContextBox, NIOSSLContext)] {
        let boxes = tlsBoxes.withLock { $0 }
        var out = [(TLSContextBox, NIOSSLContext)]()
        for (j, listener) in edge.listen.enumerated() {
            guard let settings = listener.tls, let box = boxes[listener.address] else { continue }
            do {
                out.append((box, try Self.makeTLSContext(settings, protocols: listener.protocols)))
            } catch let e as EdgeStartError {
                throw EdgeStartError(description: "edges[\(edgeIndex)].listen[\(j)].tls: \(e.description); keeping the running certificates")
            }
        }
        return out
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

    private func startHealthChecks() {
        let loop = group.next()
        for pool in shared.config.pools {
            guard let check = pool.pool.healthCheck else { continue }
            let shared = self.shared
            let task = loop.scheduleRepeatedTask(initialDelay: .milliseconds(0), delay: .milliseconds(Int64(check.intervalMs))) { _ in
                for (i, server) in pool.pool.servers.enumerated() {
                    HealthProbe.run(server: server.address, check: check, pool: pool, on: loop).whenComplete { result in
                        let ok = (try? result.get()) ?? false
                        if let t = pool.health.recordCheck(i, success: ok) { shared.healthChanged(t, pool: pool) }
                    }
                }
                for t in pool.health.restoreExpired(now: NIODeadline.now().uptimeNanoseconds) { shared.healthChanged(t, pool: pool) }
            }
            checker.withLock { $0.append(task) }
        }
    }

    /// The edge's health as gossip will publish it.
    /// Sets the admin API's token and hooks (before `start()`).
    public func configureAdmin(token: String?, hooks: AdminHooks) {
        shared.adminToken = token
        shared.adminHooks = hooks
    }

    /// The admin hooks in force.
    public var adminHooks: AdminHooks { shared.adminHooks }

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
        for t in checker.withLock({ $0 }) + sweepers { t.cancel() }
        let list = channels.withLock { l in defer { l = [] }; return l }
        // Listeners close and every open connection is told to finish: HTTP/2 ones send GOAWAY and end when their
        // streams have; HTTP/1.1 ones close when idle (answers meanwhile say `Connection: close`).
        quiescing.initiateShutdown(promise: nil)
        for ch in list { try? await ch.close() }
        let deadline = NIODeadline.now() + grace
        while shared.stats.connections.load(ordering: .relaxed) > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        try? await group.shutdownGracefully()
    }
}

/// A TLS listener's context in force; a reload swaps it, and each new connection takes the current one.
final class TLSContextBox: Sendable {
    let current: Mutex<NIOSSLContext>
    init(_ context: NIOSSLContext) { current = Mutex(context) }
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
