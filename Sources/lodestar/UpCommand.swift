import ArgumentParser
import Foundation
import LodestarNode
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
import ServiceLifecycle
import UnixSignals

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
        let up = UpRun(topology: loaded, path: topology, adminToken: try adminTokenOrExit(loaded, path: topology),
                       logLevel: logLevel, logFormat: logFormat, logger: logger)
        do {
            if !noOrigins { try await up.startOrigins() }
            up.makeGossipKeyIfNone()
            let dns = try await up.startDNS()
            try await up.startEdges(gossip: dns.gossip != nil)
        } catch {
            await up.stopAll()
            switch error {
            case let e as EdgeStartError: printError("\(topology): \(e.description)")
            case NodeStartError.other(let message): printError(message)
            default: printError("\(topology): \(error)")
            }
            throw ExitCode(1)
        }
        // Written at once, unbuffered: the table must show even when stdout is a pipe.
        FileHandle.standardOutput.write(Data(up.greeting().utf8))
        // The DNS node serves until SIGINT/SIGTERM (and reloads on SIGHUP); then the rest stops too.
        if let dns = up.dnsNode {
            try await ServiceGroup(services: [dns], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
        }
        await up.stopAll()
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
    static func waitUntilListening(_ p: Process, edge: Edge) async throws {
        guard let address = edge.listen.first?.address else { return }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            guard p.isRunning else {
                throw UpError(description: "edge \(edge.id) exited (status \(p.terminationStatus)) before listening")
            }
            if (try? await AdminClient.request(method: "GET", address: edge.admin ?? address, target: "/healthz", token: nil,
                                         timeout: 1)) != nil {
                return
            }
            try await Task.sleep(nanoseconds: 50_000_000)
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
