import ArgumentParser
import Foundation
import LodestarDNS
import LodestarDNSServer
import LodestarGeo
import LodestarSelection
import LodestarGossipServer
import LodestarProxy
import LodestarTopology
import Logging
import NIOCore
import NIOPosix

/// `lodestar up`: the whole system of a topology on one machine — the DNS server, every edge that has listeners, and a
/// sample origin on each loopback origin address — in one process, until Ctrl-C.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run the DNS server, every edge and the sample origins of a topology in one process (for a local try).",
        discussion: "Sample origins are started on the loopback addresses the topology's origin pools name. With a gossip section, the DNS node joins the cluster and every edge runs as its own `lodestar edge` child process (kill one to watch the answers move; the status page at dns.admin shows it), with a random gossip key for the run when none is configured. Ctrl-C (SIGINT) or SIGTERM stops everything.")

    @Option(name: .long, help: "Topology file.")
    var topology: String = "topology.json"

    @Flag(name: .long, help: "Do not start sample origins (real ones are already running).")
    var noOrigins = false

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "notice"

    @Option(name: .long, help: "Log line format: logfmt, json or text.")
    var logFormat: String = "logfmt"

    func run() async throws {
        let logging = try LoggingOptions.parse(["--log-level", logLevel, "--log-format", logFormat])
        logging.bootstrap()
        let logger = logging.logger("lodestar.up")
        let loaded = try loadTopologyOrExit(topology)
        let adminToken = try adminTokenOrExit(loaded, path: topology)
        let hub = ProcessMetrics.hub()
        let adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var adminChannel: (any Channel)?

        var rows = [(String, String, String)]()
        let originGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var originChannels = [any Channel]()
        var edges = [EdgeServer]()
        var children = [Process]()
        var dnsServer: DNSServer?
        var dnsState: DNSNodeState?
        var gossip: GossipRuntime?

        func stopAll() async {
            try? await adminChannel?.close()
            try? await adminGroup.shutdownGracefully()
            EdgeChildren.stop(children)
            await gossip?.leave()
            for e in edges { await e.shutdown(grace: .seconds(2)) }
            await dnsServer?.shutdown()
            for c in originChannels { try? await c.close() }
            try? await originGroup.shutdownGracefully()
        }

        do {
            if !noOrigins {
                var seen = Set<ListenAddress>()
                for pool in loaded.pools {
                    for server in pool.servers {
                        guard let address = server.address, address.host.isLoopback, seen.insert(address).inserted else { continue }
                        let name = "origin-\(seen.count)"
                        originChannels.append(try await SampleOrigin.start(listen: address, name: name, group: originGroup))
                        rows.append(("origin", name, "http://\(address)"))
                    }
                }
            }
            if let g = loaded.gossip, g.keyFile == nil, (ProcessInfo.processInfo.environment[g.keyEnvironment] ?? "").isEmpty {
                // A key for this run only: the in-process DNS node and the edge children (which inherit it) share it.
                var rng = SystemRandomNumberGenerator()
                let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
                setenv(g.keyEnvironment, key, 1)
            }
            let health = LiveHealthView()
            let state = DNSNodeState(topologyPath: topology, geoOverride: nil, flagDown: [], health: health, logger: logger)
            if let sec = loaded.dns.dnssec, sec.keys.isEmpty {
                // A zone key for this run only (as the gossip key): its DS is printed below.
                state.runKeys = [DNSSECKey.generate()]
            }
            dnsState = state
            state.attachDrains(for: loaded)
            let version = state.version(for: loaded)
            let box = AuthorityBox(try state.build(from: loaded, version: version))
            let tracker = ConfigTracker(role: "dns", initial: .init(version: version, serial: loaded.zone.soa.serial, loadedAt: Date()),
                                        hub: hub)
            state.box = box
            state.tracker = tracker
            var config = DNSServer.Configuration(
                listen: loaded.dns.listen, threads: 1, tcpIdleTimeout: .seconds(Int64(loaded.dns.tcpIdleTimeoutSeconds)),
                maxTCPConnections: loaded.dns.maxTCPConnections, rateLimit: loaded.dns.rateLimit,
                packetCacheEntries: loaded.dns.packetCacheEntries)
            config.metrics = hub
            let dns = DNSServer(authority: box, configuration: config, logger: logger)
            _ = try await dns.start()
            dnsServer = dns
            DNSAdmin.registerHealthMetrics(hub: hub, state: state, box: box)
            gossip = try await GossipRuntime.startDNS(loaded, health: health, logger: logger, metrics: hub, state: state)
            var dnsListens = loaded.dns.listen.map { "\($0) udp+tcp" }
            if let address = loaded.dns.admin {
                adminChannel = try await DNSAdmin.bind(address, group: adminGroup, token: adminToken, state: state, box: box,
                                                       server: dns, gossip: gossip, tracker: tracker, hub: hub)
                dnsListens.append("admin http://\(address) (status page)")
            }
            if let g = loaded.dns.gossip, gossip != nil { dnsListens.append("gossip udp \(g)") }
            rows.append(("dns", loaded.dns.nodeId, dnsListens.joined(separator: ", ")))
            for edge in loaded.edges where !edge.listen.isEmpty {
                var whereabouts = edge.listen.map { ($0.tls == nil ? "http://" : "https://") + $0.address.description }
                    + (edge.admin.map { ["admin http://\($0)"] } ?? [])
                if gossip != nil {
                    let child = try EdgeChildren.start(edge: edge, topology: topology, logLevel: logLevel, logFormat: logFormat)
                    children.append(child)
                    try EdgeChildren.waitUntilListening(child, edge: edge)
                    whereabouts.append("pid \(child.processIdentifier)")
                } else {
                    var edgeLogger = logger
                    edgeLogger[metadataKey: "edge"] = "\(edge.id)"
                    let server = try EdgeServer(topology: loaded, edgeId: edge.id, threads: 1, logger: edgeLogger, metrics: hub)
                    server.configureAdmin(token: adminToken, hooks: AdminHooks())
                    try await server.start()
                    edges.append(server)
                }
                rows.append(("edge", edge.id, whereabouts.joined(separator: ", ")))
            }
        } catch {
            await stopAll()
            if let e = error as? EdgeStartError { printError("\(topology): \(e.description)") } else { printError("\(topology): \(error)") }
            throw ExitCode(1)
        }

        var text = Self.table(rows) + "\n"
        let zoneKeys = dnsState?.box?.authority.signer?.keys.map(\.key) ?? []
        if let service = loaded.services.first, let dnsAddress = loaded.dns.listen.first,
           let edge = loaded.edges.first(where: { !$0.listen.isEmpty }), let port = edge.listen.first?.address.port {
            let server = dnsAddress.host.isIPv4 ? dnsAddress.host.description : "\(dnsAddress.host)"
            text += """

            Try:
              dig @\(server) -p \(dnsAddress.port) \(service.fqdn)
              dig @\(server) -p \(dnsAddress.port) \(service.fqdn) +subnet=81.2.69.0/24
              curl --resolve \(service.fqdn):\(port):$(dig @\(server) -p \(dnsAddress.port) +short \(service.fqdn)) http://\(service.fqdn):\(port)/

            \(Self.dnssecHint(loaded, keys: zoneKeys, server: server, port: dnsAddress.port))Ctrl-C stops everything.

            """
        }

        // Written at once, unbuffered: the table must show even when stdout is a pipe.
        FileHandle.standardOutput.write(Data(text.utf8))

        let signals = SignalWatcher()
        let stop = AsyncStream<Void>.makeStream()
        signals.on(SIGINT) { stop.continuation.yield() }
        signals.on(SIGTERM) { stop.continuation.yield() }
        for await _ in stop.stream { break }
        await stopAll()
    }

    /// The DNSSEC lines of the greeting: the DS of the zone's keys (those the running signer holds: the key files, or
    /// the key made for the run) and how to see and validate a signed answer.
    static func dnssecHint(_ t: Topology, keys: [DNSSECKey], server: String, port: Int) -> String {
        guard let sec = t.dns.dnssec, let service = t.services.first, let first = keys.first else { return "" }
        let owner = (DNSName(t.zone.name) ?? .root).lowercased
        let digest = first.dsDigestHex(owner: owner)
        return """
          The zone is signed\(sec.keys.isEmpty ? " with a key made for this run" : ""); its DS:
            \(keys.map { $0.dsRecord(owner: owner) }.joined(separator: "\n    "))
          dig +dnssec @\(server) -p \(port) \(service.fqdn)
          delv @\(server) -p \(port) +root=\(t.zone.name) -a <(echo 'trust-anchors { \(owner) static-ds \(first.keyTag) \(first.algorithm.rawValue) 2 "\(digest)"; };') \(service.fqdn)


        """
    }

    /// Aligned columns: role, id, where it listens.
    static func table(_ rows: [(String, String, String)]) -> String {
        let w0 = max(4, rows.map(\.0.count).max() ?? 0), w1 = max(2, rows.map(\.1.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        var lines = ["\(pad("role", w0))  \(pad("id", w1))  listens on"]
        for r in rows { lines.append("\(pad(r.0, w0))  \(pad(r.1, w1))  \(r.2)") }
        return lines.joined(separator: "\n")
    }
}

/// The edges of `lodestar up` as child processes (`lodestar edge --node ID --parent-pid …`).
enum EdgeChildren {
    /// Starts the edge `edge` of the topology at `topology` (a path) as a child sharing this process's stdout/stderr.
    static func start(edge: Edge, topology: String, logLevel: String, logFormat: String) throws -> Process {
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = topology.hasPrefix("/") ? topology : FileManager.default.currentDirectoryPath + "/" + topology
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["edge", "--topology", path, "--node", edge.id, "--threads", "1", "--log-level", logLevel,
                       "--log-format", logFormat, "--parent-pid", "\(getpid())"]
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Waits (at most 15 s) until the child accepts connections on its first listener; throws if it exits first.
    static func waitUntilListening(_ p: Process, edge: Edge) throws {
        guard let address = edge.listen.first?.address else { return }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            guard p.isRunning else {
                throw UpError(description: "edge \(edge.id) exited (status \(p.terminationStatus)) before listening")
            }
            if (try? AdminClient.request(method: "GET", address: edge.admin ?? address, target: "/healthz", token: nil,
                                         timeout: 1)) != nil {
                return
            }
            usleep(50_000)
        }
        throw UpError(description: "edge \(edge.id) did not listen within 15 s")
    }

    /// SIGINT to every child (stop accepting, finish requests in flight), SIGKILL after 6 s.
    static func stop(_ children: [Process]) {
        for p in children where p.isRunning { kill(p.processIdentifier, SIGINT) }
        let deadline = Date().addingTimeInterval(6)
        for p in children {
            while p.isRunning && Date() < deadline { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
    }
}

/// Why `lodestar up` could not start an edge child.
struct UpError: Error, CustomStringConvertible {
    var description: String
}
