import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where things are: the package, the `lodestar` binary under test, `dig`, the sample GeoIP database.
enum IntegrationEnvironment {
    /// The package root (this file is Tests/IntegrationTests/Support/LodestarServer.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Folder of the integration test sources (for dnspython_checks.py).
    static let testsFolder: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

    /// Finds the `lodestar` executable built next to the running test bundle, so `swift test --scratch-path X`
    /// tests X's binary. `LODESTAR_BINARY` overrides; as a last resort the newest `.build*/debug/lodestar`.
    static func lodestarBinary() throws -> URL {
        let fm = FileManager.default
        func isExecutableFile(_ url: URL) -> Bool {
            var dir: ObjCBool = false
            return fm.fileExists(atPath: url.path, isDirectory: &dir) && !dir.boolValue && fm.isExecutableFile(atPath: url.path)
        }
        if let override = ProcessInfo.processInfo.environment["LODESTAR_BINARY"], !override.isEmpty {
            let url = URL(fileURLWithPath: override)
            guard isExecutableFile(url) else { throw IntegrationError("LODESTAR_BINARY=\(override) is not an executable file") }
            return url
        }
        var folders = [URL]()
        // On Linux the .xctest is an executable in the products folder; on macOS a bundle inside it.
        for bundle in [Bundle(for: ServerMarker.self), Bundle.main] + Bundle.allBundles {
            folders.append(bundle.bundleURL)
            folders.append(bundle.bundleURL.deletingLastPathComponent())
            if let exe = bundle.executableURL { folders.append(exe.deletingLastPathComponent()) }
        }
        if let argv0 = CommandLine.arguments.first, argv0.contains("/") {
            folders.append(URL(fileURLWithPath: argv0).deletingLastPathComponent())
        }
        for folder in folders {
            var f = folder
            // The folder itself, then its parent (a macOS .xctest bundle → the products folder).
            for _ in 0..<2 {
                let candidate = f.appendingPathComponent("lodestar")
                if isExecutableFile(candidate) { return candidate.resolvingSymlinksInPath() }
                f = f.deletingLastPathComponent()
            }
        }
        let entries = (try? fm.contentsOfDirectory(atPath: packageRoot.path)) ?? []
        let fallbacks = entries.filter { $0.hasPrefix(".build") }
            .map { packageRoot.appendingPathComponent($0).appendingPathComponent("debug/lodestar") }
            .filter(isExecutableFile)
            .sorted { modified($0) > modified($1) }
        if let newest = fallbacks.first { return newest.resolvingSymlinksInPath() }
        throw IntegrationError("cannot find the lodestar executable next to the test bundle (\(Bundle.main.bundleURL.path)) "
                               + "or under \(packageRoot.path)/.build*/debug; build it or set LODESTAR_BINARY")
    }

    private static func modified(_ url: URL) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date) ?? .distantPast
    }

    /// An executable found on PATH (and a few usual folders).
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/bin"]
        for folder in folders where !folder.isEmpty {
            let candidate = (folder as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func dig() throws -> String {
        guard let dig = which("dig") else { throw IntegrationError("dig not found on PATH (apt-get install bind9-dnsutils)") }
        return dig
    }

    /// GeoData/lodestar-sample.mmdb, or (if it has not been built) a copy compiled from the CSV into a temp file.
    static func sampleDatabase() throws -> String {
        let inTree = packageRoot.appendingPathComponent("GeoData/lodestar-sample.mmdb").path
        if FileManager.default.fileExists(atPath: inTree) { return inTree }
        let compiled = (NSTemporaryDirectory() as NSString).appendingPathComponent("lodestar-it-sample-\(getpid()).mmdb")
        if FileManager.default.fileExists(atPath: compiled) { return compiled }
        let csv = packageRoot.appendingPathComponent("GeoData/lodestar-sample.csv").path
        let r = try runCommand(lodestarBinary().path, ["geo", "compile", csv, compiled, "--build-epoch", "1764028800"], timeout: 30)
        guard r.status == 0, FileManager.default.fileExists(atPath: compiled) else {
            throw IntegrationError("lodestar geo compile failed (\(r.status)): \(r.stderr)")
        }
        return compiled
    }

    /// The repository's topology.json as a mutable JSON tree, with `dns.geoDatabase` made absolute.
    static func defaultTopology() throws -> [String: Any] {
        let data = try Data(contentsOf: packageRoot.appendingPathComponent("topology.json"))
        guard var t = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw IntegrationError("topology.json is not a JSON object")
        }
        try t.edit("dns") {
            $0["geoDatabase"] = try sampleDatabase()
            // A fixed admin port would collide between tests; the tests that use it pick a free one.
            $0["admin"] = nil
            // Gossip needs a key and fixed ports; the tests that use it (GossipTestCluster) add both.
            $0["gossip"] = nil
            // Signing needs a key file; the tests that sign (DNSSECTests) add one.
            $0["dnssec"] = nil
        }
        t["gossip"] = nil
        if var edges = t["edges"] as? [[String: Any]] {
            for i in edges.indices { edges[i]["gossip"] = nil }
            t["edges"] = edges
        }
        return t
    }
}

private final class ServerMarker {}

struct IntegrationError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension Dictionary where Key == String, Value == Any {
    /// Edits a nested JSON object in place.
    mutating func edit(_ key: String, _ body: (inout [String: Any]) throws -> Void) throws {
        guard var inner = self[key] as? [String: Any] else { throw IntegrationError("topology has no object \"\(key)\"") }
        try body(&inner)
        self[key] = inner
    }

    /// Points every origin pool (the default topology has `sample` and `sample-grpc`) at one server, keeping the
    /// pools' other settings.
    mutating func pointEveryPool(at server: String) throws {
        try edit("origins") { origins in
            for name in origins.keys {
                var pool = origins[name] as? [String: Any] ?? [:]
                pool["servers"] = [server]
                origins[name] = pool
            }
        }
    }

    /// Appends a static record to zone.records.
    mutating func addRecord(_ record: [String: Any]) throws {
        try edit("zone") { zone in
            var records = zone["records"] as? [Any] ?? []
            records.append(record)
            zone["records"] = records
        }
    }
}

// MARK: Running commands

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool
    var elapsed: TimeInterval
}

/// Runs a program to completion (killed after `timeout` seconds) and returns its exit status and output.
func runCommand(_ executable: String, _ arguments: [String], timeout: TimeInterval,
                currentDirectory: URL? = nil) throws -> CommandResult {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-it-cmd-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let outURL = folder.appendingPathComponent("stdout"), errURL = folder.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    defer {
        try? out.close()
        try? err.close()
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    if let currentDirectory { p.currentDirectoryURL = currentDirectory }
    let start = Date()
    try p.run()
    let timedOut = !waitForExit(p, timeout: timeout)
    if timedOut { stopProcess(p, grace: 1) }
    p.waitUntilExit()
    let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return CommandResult(status: p.terminationStatus, stdout: stdout, stderr: stderr, timedOut: timedOut,
                         elapsed: Date().timeIntervalSince(start))
}

/// Waits (bounded) for a process to exit; true if it did.
@discardableResult
func waitForExit(_ p: Process, timeout: TimeInterval) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(2_000) }
    return !p.isRunning
}

/// SIGTERM, then SIGKILL after `grace` seconds — only this process id.
func stopProcess(_ p: Process, grace: TimeInterval) {
    guard p.isRunning else { return }
    let pid = p.processIdentifier
    kill(pid, SIGTERM)
    if !waitForExit(p, timeout: grace) {
        kill(pid, SIGKILL)
        waitForExit(p, timeout: 5)
    }
}

// MARK: The server under test

/// One `lodestar dns` process on a free loopback port with its own temp folder (topology file and stderr log).
final class LodestarServer {
    let folder: URL
    let topologyPath: String
    let logPath: String
    private(set) var port: UInt16 = 0
    private var process: Process?
    let extraArguments: [String]

    /// Writes `topology` into a fresh temp folder; call `start()` to run it.
    init(topology: [String: Any], arguments: [String] = []) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        topologyPath = folder.appendingPathComponent("topology.json").path
        logPath = folder.appendingPathComponent("server.log").path
        extraArguments = arguments
        try writeTopology(topology)
    }

    func writeTopology(_ topology: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: topology, options: [.prettyPrinted, .sortedKeys])
        // Atomic replace, so a reload never sees half a file.
        try data.write(to: URL(fileURLWithPath: topologyPath), options: .atomic)
    }

    var pid: Int32? { process?.processIdentifier }
    var isRunning: Bool { process?.isRunning ?? false }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Starts the server and waits (≤ 10 s) until it answers a dig query; retries on another port if the port was taken.
    func start() throws {
        let binary = try IntegrationEnvironment.lodestarBinary()
        var lastError: (any Error)?
        for _ in 0..<3 {
            port = try FreePort.find()
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            let p = Process()
            p.executableURL = binary
            // "{PORT}" in extra arguments becomes the chosen port (e.g. "--listen", "[::1]:{PORT}").
            p.arguments = ["dns", "--topology", topologyPath, "--listen", "127.0.0.1:\(port)"]
                + extraArguments.map { $0.replacingOccurrences(of: "{PORT}", with: "\(port)") }
            p.standardError = logHandle
            p.standardOutput = logHandle
            p.standardInput = FileHandle.nullDevice
            p.currentDirectoryURL = folder
            try p.run()
            try? logHandle.close()
            process = p
            do {
                try waitUntilAnswering(timeout: 10)
                print("lodestar pid \(p.processIdentifier) answering on 127.0.0.1:\(port) (\(binary.path))")
                return
            } catch {
                lastError = error
                stop()
                if !log.contains("cannot listen") { break }  // only a taken port is worth another try
            }
        }
        throw lastError ?? IntegrationError("server did not start")
    }

    private func waitUntilAnswering(timeout: TimeInterval) throws {
        let dig = try IntegrationEnvironment.dig()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let p = process, p.isRunning else {
                throw IntegrationError("lodestar exited (status \(process?.terminationStatus ?? -1)) before answering; log:\n\(log)")
            }
            let r = try runCommand(dig, ["@127.0.0.1", "-p", "\(port)", "+time=1", "+tries=1", "example.test", "SOA"], timeout: 3)
            if r.status == 0, r.stdout.contains("status: NOERROR") { return }
            usleep(50_000)
        }
        throw IntegrationError("lodestar on port \(port) did not answer within \(timeout) s; log:\n\(log)")
    }

    /// Sends a signal to the server's pid (only the process this object started).
    func send(signal number: Int32) {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, number)
    }

    /// Sends SIGHUP and waits (bounded) for the log to report the reload outcome; returns the new log text.
    @discardableResult
    func reload(timeout: TimeInterval = 5) throws -> String {
        let before = log.utf8.count
        send(signal: SIGHUP)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = log
            let fresh = String(decoding: Array(text.utf8).dropFirst(before), as: UTF8.self)
            if fresh.contains("reloaded") || fresh.contains("reload refused") { return fresh }
            usleep(20_000)
        }
        throw IntegrationError("no reload outcome logged within \(timeout) s; log:\n\(log)")
    }

    /// SIGTERM, SIGKILL after 5 s; idempotent.
    func stop() {
        if let p = process { stopProcess(p, grace: 5) }
    }

    /// Stops the server and removes the temp folder.
    func cleanUp() {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }

    // MARK: dig

    /// Runs `dig @SERVER -p PORT +time=2 +tries=1 ARGS…` (SERVER 127.0.0.1 unless given) and parses its output.
    func dig(_ arguments: [String], server: String = "127.0.0.1") throws -> DigResult {
        let dig = try IntegrationEnvironment.dig()
        let r = try runCommand(dig, ["@\(server)", "-p", "\(port)", "+time=2", "+tries=1"] + arguments, timeout: 10)
        if r.timedOut { throw IntegrationError("dig \(arguments) timed out") }
        return DigResult(output: r.stdout + r.stderr, status: r.status)
    }

    /// `dig NAME TYPE ARGS…` convenience.
    func dig(_ name: String, _ type: String = "A", _ options: String...) throws -> DigResult {
        try dig([name, type] + options)
    }
}

/// A loopback port free for both UDP and TCP right now, chosen below the kernel's ephemeral range: a client socket
/// is never given it. (A port from the ephemeral range, as `bind(0)` hands out, can later be a client's source port:
/// dig, whose UDP sockets set SO_REUSEPORT as the server's do, once drew the server's own port, and its query, from
/// and to 127.0.0.1 on that port, came back to its own connected socket as if it were the answer.)
enum FreePort {
    static func find() throws -> UInt16 {
        let firstEphemeral = ephemeralRangeStart()
        let low = 10_000, high = max(low + 1_000, firstEphemeral) - 1
        for _ in 0..<200 {
            let port = UInt16(Int.random(in: low...high))
            let udp = socket(AF_INET, SocketType.datagram, 0)
            guard udp >= 0 else { throw IntegrationError("socket: errno \(errno)") }
            defer { close(udp) }
            var addr = SocketAddress.loopbackV4(port: port)
            guard SocketAddress.bind(udp, &addr) == 0 else { continue }
            let tcp = socket(AF_INET, SocketType.stream, 0)
            guard tcp >= 0 else { throw IntegrationError("socket: errno \(errno)") }
            defer { close(tcp) }
            var tcpAddr = SocketAddress.loopbackV4(port: port)
            if SocketAddress.bind(tcp, &tcpAddr) == 0 { return port }
        }
        throw IntegrationError("no free loopback port found below \(firstEphemeral)")
    }

    /// The first port of /proc/sys/net/ipv4/ip_local_port_range (32768 when it cannot be read).
    static func ephemeralRangeStart() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
              let first = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first,
              let value = Int(first), value > 11_000 else { return 32_768 }
        return value
    }
}
