import ArgumentParser
import Dispatch
import Foundation
import LodestarDNS
import LodestarDNSServer
import LodestarGeo
import LodestarTopology
import Logging
import NIOCore
import NIOPosix

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

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        var configured = Logger(label: "lodestar.dns")
        configured.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let logger = configured

        let loaded = try loadTopologyOrExit(topology)
        let listenAddresses = try listen.isEmpty ? loaded.dns.listen : listen.map { text in
            guard let a = ListenAddress(text) else { throw ValidationError("--listen \(text): not ADDR:PORT or [ADDR]:PORT") }
            return a
        }
        let health = LiveHealthView()
        let state = DNSNodeState(topologyPath: topology, geoOverride: geo, flagDown: Set(down), health: health, logger: logger)
        let initial = try state.build(from: loaded)

        let box = AuthorityBox(initial)
        let config = DNSServer.Configuration(
            listen: listenAddresses, threads: threads ?? System.coreCount,
            tcpIdleTimeout: .seconds(Int64(loaded.dns.tcpIdleTimeoutSeconds)),
            maxTCPConnections: loaded.dns.maxTCPConnections, rateLimit: loaded.dns.rateLimit,
            packetCacheEntries: packetCache ?? loaded.dns.packetCacheEntries)
        let server = DNSServer(authority: box, configuration: config, logger: logger)
        do {
            try await server.start()
        } catch {
            logger.critical("cannot listen", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        logger.info("serving", metadata: ["zone": "\(loaded.zone.name)", "node": "\(loaded.dns.nodeId)",
                                          "geo": "\(state.geoPath(for: loaded))", "threads": "\(config.threads)"])
        let gossip: GossipRuntime?
        do {
            gossip = try await GossipRuntime.startDNS(loaded, health: health, logger: logger)
        } catch {
            printError("\(topology): \(error)")
            await server.shutdown()
            throw ExitCode(1)
        }
        var admin: (any Channel)?
        let adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        if let address = loaded.dns.admin {
            do {
                admin = try await DNSAdmin.bind(address, group: adminGroup, topology: loaded, health: health, gossip: gossip)
                logger.info("admin listening", metadata: ["address": "\(address)"])
            } catch {
                printError("\(topology): dns.admin: cannot listen on \(address): \(error)")
                await gossip?.leave()
                await server.shutdown()
                throw ExitCode(1)
            }
        }

        let signals = SignalWatcher()
        let stop = AsyncStream<Void>.makeStream()
        signals.on(SIGHUP) {
            do {
                let fresh = try Topology.load(path: topology)
                box.replace(with: try state.build(from: fresh))
                if fresh.dns.listen != loaded.dns.listen && listen.isEmpty {
                    logger.warning("reload: dns.listen changed; listeners change only on restart")
                }
                logger.info("reloaded", metadata: ["topology": "\(topology)", "serial": "\(fresh.zone.soa.serial)"])
            } catch {
                logger.error("reload refused; keeping the running configuration", metadata: ["error": "\(error)"])
            }
        }
        signals.on(SIGINT) { stop.continuation.yield() }
        signals.on(SIGTERM) { stop.continuation.yield() }
        let downWatch = state.watchDownFile(every: .seconds(1))

        for await _ in stop.stream { break }
        downWatch.cancel()
        logger.info("stopping", metadata: ["stats": "\(server.stats.summary)"])
        try? await admin?.close()
        try? await adminGroup.shutdownGracefully()
        await gossip?.leave()
        await server.shutdown()
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

/// What a DNS node builds its `Authority` from, and the operator's down list it keeps current.
final class DNSNodeState: @unchecked Sendable {
    let topologyPath: String
    let geoOverride: String?
    let flagDown: Set<String>
    let health: LiveHealthView
    let logger: Logger
    private let lock = NSLock()
    private var downFile: String?
    private var downFileStamp: Date?

    init(topologyPath: String, geoOverride: String?, flagDown: Set<String>, health: LiveHealthView, logger: Logger) {
        self.topologyPath = topologyPath
        self.geoOverride = geoOverride
        self.flagDown = flagDown
        self.health = health
        self.logger = logger
    }

    func geoPath(for t: Topology) -> String { geoOverride ?? t.dns.geoDatabase }

    /// Opens the GeoIP database afresh (so a reload picks up a replaced `.mmdb`) and makes an `Authority`;
    /// throws, leaving the running configuration alone, when the database cannot be opened.
    func build(from t: Topology) throws -> Authority {
        let path = geoPath(for: t)
        let unknown = flagDown.subtracting(t.edges.map(\.id))
        if !unknown.isEmpty { throw ValidationError("--down: unknown edge(s) \(unknown.sorted().joined(separator: ", "))") }
        let db = try GeoDatabase(path: path)
        lock.withLock {
            downFile = t.dns.downFile
            downFileStamp = nil
        }
        refreshDown()
        return Authority(topology: t, geo: db, health: health)
    }

    /// Re-reads the down file when it changed; marks `--down` edges and the file's edges down.
    func refreshDown() {
        let (file, stamp) = lock.withLock { (downFile, downFileStamp) }
        var ids = flagDown
        if let file {
            let attrs = try? FileManager.default.attributesOfItem(atPath: file)
            let mtime = attrs?[.modificationDate] as? Date
            if mtime == stamp && stamp != nil { return }
            if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                ids.formUnion(StaticHealthView.parseDownFile(text))
            }
            lock.withLock { downFileStamp = mtime }
        }
        if ids != health.operatorDown {
            logger.notice("edges marked down changed", metadata: ["down": "\(ids.sorted())"])
            health.setDown(ids)
        }
    }

    /// Polls the down file (named in the topology; re-read when its modification time changes).
    func watchDownFile(every interval: DispatchTimeInterval) -> any DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in self?.refreshDown() }
        timer.resume()
        return timer
    }
}

/// Runs handlers for POSIX signals on a dispatch queue (the default action is disabled for each).
final class SignalWatcher: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []

    func on(_ signalNumber: Int32, _ handler: @escaping @Sendable () -> Void) {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        sources.append(source)
    }
}
