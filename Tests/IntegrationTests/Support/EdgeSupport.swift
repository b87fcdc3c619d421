import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Support for the edge (HTTP reverse proxy) integration tests: the test bytes, a raw-socket HTTP/1.1 client, the
// Python origin servers (edge_origin.py) and the `lodestar edge` process, all on free loopback ports.

// MARK: Test bytes

/// The bytes edge_origin.py generates, so a test can check a body without asking the origin.
enum EdgePattern {
    /// 65521 pseudo-random bytes (LCG); `bytes(n)` repeats this block.
    static let block: [UInt8] = {
        var x: UInt32 = 12345
        var out = [UInt8](repeating: 0, count: 65521)
        for i in 0..<out.count {
            x = (x &* 1_103_515_245 &+ 12345) & 0x7FFF_FFFF
            out[i] = UInt8((x >> 16) & 0xFF)
        }
        return out
    }()

    static let line = Array("lodestar edge test line, the quick brown fox jumps over the lazy dog 0123456789\n".utf8)

    /// edge_origin.py's `pattern(n)` (what `/bytes/N` and `/stream/N` send).
    static func bytes(_ n: Int) -> Data { repeating(block, n) }

    /// edge_origin.py's `text(n)` (what `/text/N` sends and `/gzip` compresses).
    static func text(_ n: Int) -> Data { repeating(line, n) }

    private static func repeating(_ unit: [UInt8], _ n: Int) -> Data {
        var d = Data(capacity: n)
        unit.withUnsafeBufferPointer { b in
            while d.count < n {
                let k = min(b.count, n - d.count)
                d.append(UnsafeBufferPointer(rebasing: b[0..<k]))
            }
        }
        return d
    }
}

/// Command-line helpers: checksums, gunzip, the Python interpreter.
enum EdgeTools {
    /// The real interpreter behind `python3` (not a pyenv shim), so process ids are the interpreter's own.
    static let python: String? = {
        guard let shim = IntegrationEnvironment.which("python3") else { return nil }
        guard let r = try? runCommand(shim, ["-c", "import sys; print(sys.executable)"], timeout: 20), r.status == 0 else {
            return shim
        }
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return FileManager.default.isExecutableFile(atPath: path) ? path : shim
    }()

    static func requirePython() throws -> String {
        guard let python else { throw IntegrationError("python3 not found on PATH (edge tests need it for the origins)") }
        return python
    }

    static func scratchFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-edge-it-\(UUID().uuidString)")
    }

    /// Hex SHA-256 (via coreutils' sha256sum, so the test does not hash in a debug build).
    static func sha256(_ data: Data) throws -> String {
        let file = scratchFile()
        try data.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try runCommand("/usr/bin/env", ["sha256sum", file.path], timeout: 30)
        guard r.status == 0, let hex = r.stdout.split(separator: " ").first else {
            throw IntegrationError("sha256sum failed: \(r.stderr)")
        }
        return String(hex)
    }

    /// A gzip (RFC 1952) or zlib-wrapped deflate (RFC 1950, HTTP's `deflate`) body, decoded by Python's zlib.
    static func inflate(_ data: Data) throws -> Data {
        let input = scratchFile(), output = scratchFile()
        try data.write(to: input)
        defer {
            try? FileManager.default.removeItem(at: input)
            try? FileManager.default.removeItem(at: output)
        }
        let script = "import sys, zlib; sys.stdout.buffer.write(zlib.decompress(open(sys.argv[1], 'rb').read(), 47))"
        let r = try runCommand("/bin/sh", ["-c", "python3 -c \"\(script)\" '\(input.path)' > '\(output.path)'"], timeout: 30)
        guard r.status == 0 else { throw IntegrationError("inflate failed (\(r.status)): \(r.stderr)") }
        return try Data(contentsOf: output)
    }

    /// Resident set size of a process, in KiB (VmRSS of /proc/PID/status); nil when unreadable.
    static func rssKiB(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }

    /// Soft and hard RLIMIT_NOFILE of this process; raises the soft limit to `atLeast` (bounded by the hard one).
    @discardableResult
    static func raiseFileLimit(atLeast wanted: UInt64) -> (soft: UInt64, hard: UInt64) {
        var rl = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &rl) == 0 else { return (0, 0) }
        if UInt64(rl.rlim_cur) < wanted {
            var raised = rl
            raised.rlim_cur = rlim_t(min(wanted, UInt64(rl.rlim_max)))
            if setrlimit(resource, &raised) == 0 { rl = raised }
        }
        return (UInt64(rl.rlim_cur), UInt64(rl.rlim_max))
    }
}

// MARK: HTTP messages

/// One HTTP response as read off the wire.
struct EdgeReply: CustomStringConvertible, Sendable {
    var version: String
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: Data
    var rawHead: String
    /// The trailer section's field lines of a chunked body, as sent.
    var trailers: [String] = []

    /// First value of a header (case-insensitive name).
    func header(_ name: String) -> String? { values(name).first }

    func values(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    func has(_ name: String) -> Bool { !values(name).isEmpty }

    var text: String { String(decoding: body, as: UTF8.self) }

    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }

    /// Request headers the origin reported in an /echo answer.
    var echoedHeaders: [(String, String)] {
        guard let list = json?["headers"] as? [[String]] else { return [] }
        return list.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
    }

    /// Values of one request header as the origin saw it.
    func echoed(_ name: String) -> [String] {
        echoedHeaders.filter { $0.0.caseInsensitiveCompare(name) == .orderedSame }.map(\.1)
    }

    var origin: String? { header("X-Origin") }

    var description: String {
        let preview = body.count <= 600 ? text : String(decoding: body.prefix(600), as: UTF8.self) + "… (\(body.count) bytes)"
        return rawHead + "\r\n\r\n" + preview
    }
}

/// How a connection ended.
enum EdgeCloseKind: String, Sendable {
    case eof
    case reset
}

/// Builds raw requests.
enum EdgeRequest {
    static func make(_ method: String = "GET", _ target: String, host: String? = "www.example.test", version: String = "HTTP/1.1",
                     headers: [(String, String)] = [], body: Data? = nil, chunked: Bool = false, chunkSize: Int = 65536) -> Data {
        var head = "\(method) \(target) \(version)\r\n"
        if let host { head += "Host: \(host)\r\n" }
        for (n, v) in headers { head += "\(n): \(v)\r\n" }
        var out = Data()
        if let body {
            if chunked {
                head += "Transfer-Encoding: chunked\r\n\r\n"
                out.append(Data(head.utf8))
                var offset = 0
                while offset < body.count {
                    let k = min(chunkSize, body.count - offset)
                    out.append(Data(String(k, radix: 16).utf8) + Data("\r\n".utf8))
                    out.append(body.subdata(in: offset..<(offset + k)))
                    out.append(Data("\r\n".utf8))
                    offset += k
                }
                out.append(Data("0\r\n\r\n".utf8))
                return out
            }
            head += "Content-Length: \(body.count)\r\n\r\n"
            out.append(Data(head.utf8))
            out.append(body)
            return out
        }
        head += "\r\n"
        return Data(head.utf8)
    }
}

private func rawSend(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) -> Int {
    #if canImport(Glibc)
    return send(fd, p, n, Int32(MSG_NOSIGNAL))
    #else
    return send(fd, p, n, 0)
    #endif
}

/// A blocking TCP connection to a loopback port with a tiny HTTP/1.1 response reader (Content-Length, chunked or
/// read-to-close bodies, interim 1xx answers returned one by one). One thread may send while another reads; the
/// reading side is not thread-safe.
final class EdgeConnection: @unchecked Sendable {
    let fd: Int32
    private var buffer = [UInt8]()
    private var position = 0
    /// recv target, allocated once (filling a fresh array per read is slow in a debug build).
    private var scratch = [UInt8](repeating: 0, count: 256 * 1024)

    init(port: UInt16, address: String = "127.0.0.1", receiveBuffer: Int? = nil) throws {
        fd = socket(AF_INET, SocketType.stream, 0)
        guard fd >= 0 else { throw IntegrationError("socket: errno \(errno)") }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var sendTimeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer.map(Int32.init) {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var remote = SocketAddress.loopbackV4(port: port, address: address)
        guard SocketAddress.connect(fd, &remote) == 0 else {
            let e = errno
            close(fd)
            throw IntegrationError("connect 127.0.0.1:\(port): errno \(e)")
        }
    }

    deinit { close(fd) }

    func send(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = rawSend(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw IntegrationError("send: errno \(errno)") }
                offset += n
            }
        }
    }

    func send(_ text: String) throws { try send(Data(text.utf8)) }

    /// Sends without throwing; false when the peer is gone (EPIPE, ECONNRESET) or the send timed out.
    func trySend(_ data: Data) -> Bool { (try? send(data)) != nil }

    /// Half-closes the sending side.
    func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }

    private func waitReadable(until deadline: Date) -> Bool {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { return false }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&pfd, 1, Int32(min(left, 120) * 1000) + 1)
        return rc > 0
    }

    /// Reads more bytes into the buffer. Returns false on EOF; throws on reset or timeout.
    private func fill(until deadline: Date) throws -> Bool {
        guard waitReadable(until: deadline) else { throw IntegrationError("timed out waiting for data") }
        if position > 0 && position == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            position = 0
        } else if position > (1 << 20) {
            buffer.removeFirst(position)
            position = 0
        }
        let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            let e = errno
            if e == EINTR || e == EAGAIN { return true }
            throw IntegrationError(e == ECONNRESET ? "connection reset by peer" : "recv: errno \(e)")
        }
        if n > 0 { scratch.withUnsafeBytes { buffer.append(contentsOf: $0.prefix(n)) } }
        return n > 0
    }

    private var available: Int { buffer.count - position }

    private func take(_ n: Int) -> [UInt8] {
        let out = Array(buffer[position..<(position + n)])
        position += n
        return out
    }

    /// Bytes up to (not including) `delimiter`, which is consumed; nil on EOF first.
    private func read(until delimiter: [UInt8], deadline: Date, limit: Int = 1 << 20) throws -> [UInt8]? {
        // Bytes after `position` already searched (relative, as `fill` may move the buffer).
        var searched = 0
        while true {
            if available >= delimiter.count {
                let last = buffer.count - delimiter.count
                var i = position + searched
                while i <= last {
                    if buffer[i] == delimiter[0] {
                        var match = true
                        for j in 1..<delimiter.count where buffer[i + j] != delimiter[j] { match = false; break }
                        if match {
                            let out = Array(buffer[position..<i])
                            position = i + delimiter.count
                            return out
                        }
                    }
                    i += 1
                }
                searched = last + 1 - position
            }
            guard available < limit else { throw IntegrationError("no \(delimiter) within \(limit) bytes") }
            guard try fill(until: deadline) else { return nil }
        }
    }

    private func readExactly(_ n: Int, deadline: Date) throws -> [UInt8] {
        while available < n {
            guard try fill(until: deadline) else { throw IntegrationError("connection closed with \(n - available) body bytes missing") }
        }
        return take(n)
    }

    /// Reads one response (a 1xx interim answer is returned on its own). `bodyless`: the request was HEAD.
    func readResponse(timeout: TimeInterval = 10, bodyless: Bool = false) throws -> EdgeReply {
        let deadline = Date().addingTimeInterval(timeout)
        guard let headBytes = try read(until: Array("\r\n\r\n".utf8), deadline: deadline) else {
            throw IntegrationError("connection closed before a response head (\(available) bytes pending)")
        }
        let head = String(decoding: headBytes, as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw IntegrationError("bad status line: \(lines[0].debugDescription)")
        }
        var headers = [(name: String, value: String)]()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var reply = EdgeReply(version: statusParts[0], status: status, reason: statusParts.count > 2 ? statusParts[2] : "",
                              headers: headers, body: Data(), rawHead: head)
        if status < 200 || status == 204 || status == 304 || bodyless { return reply }
        if reply.values("Transfer-Encoding").contains(where: { $0.lowercased().contains("chunked") }) {
            var body = Data()
            while true {
                guard let sizeLine = try read(until: Array("\r\n".utf8), deadline: deadline) else {
                    throw IntegrationError("connection closed inside a chunked body")
                }
                let sizeText = String(decoding: sizeLine, as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw IntegrationError("bad chunk size line \(sizeText.debugDescription)")
                }
                if size == 0 {
                    while let trailer = try read(until: Array("\r\n".utf8), deadline: deadline), !trailer.isEmpty {
                        reply.trailers.append(String(decoding: trailer, as: UTF8.self))
                    }
                    break
                }
                body.append(contentsOf: try readExactly(size, deadline: deadline))
                _ = try readExactly(2, deadline: deadline)
            }
            reply.body = body
        } else if let lengthText = reply.header("Content-Length"), let length = Int(lengthText) {
            reply.body = Data(try readExactly(length, deadline: deadline))
        } else {
            var body = Data()
            while try fill(until: deadline) {}
            body.append(contentsOf: take(available))
            reply.body = body
        }
        return reply
    }

    /// Reads (and returns) whatever arrives until the peer closes; nil when it is still open after `timeout`.
    func waitForClose(timeout: TimeInterval) -> (kind: EdgeCloseKind, extra: [UInt8])? {
        let deadline = Date().addingTimeInterval(timeout)
        var extra = take(available)
        while true {
            do {
                guard try fill(until: deadline) else { return (.eof, extra) }
                extra += take(available)
            } catch let e as IntegrationError {
                if e.description.contains("reset") { return (.reset, extra) }
                return nil
            } catch {
                return nil
            }
        }
    }

    /// Whatever bytes arrive within `timeout` (stops early at EOF); for peeking at an answer that may not be HTTP.
    func readSome(timeout: TimeInterval) -> (bytes: [UInt8], closed: EdgeCloseKind?) {
        let deadline = Date().addingTimeInterval(timeout)
        var out = take(available)
        while Date() < deadline {
            do {
                guard try fill(until: deadline) else { return (out, .eof) }
                out += take(available)
            } catch let e as IntegrationError {
                return (out, e.description.contains("reset") ? .reset : nil)
            } catch {
                return (out, nil)
            }
        }
        return (out, nil)
    }
}

/// One-shot requests on fresh connections (usable from any thread: only values cross).
enum EdgeHTTP {
    static func request(port: UInt16, _ method: String = "GET", _ target: String, host: String? = "www.example.test",
                        headers: [(String, String)] = [], body: Data? = nil, chunked: Bool = false,
                        timeout: TimeInterval = 15) throws -> EdgeReply {
        let c = try EdgeConnection(port: port)
        try c.send(EdgeRequest.make(method, target, host: host, headers: headers + [("Connection", "close")], body: body,
                                    chunked: chunked))
        var reply = try c.readResponse(timeout: timeout, bodyless: method == "HEAD")
        while reply.status < 200 { reply = try c.readResponse(timeout: timeout, bodyless: method == "HEAD") }
        return reply
    }

    static func get(port: UInt16, _ target: String, host: String? = "www.example.test", headers: [(String, String)] = [],
                    timeout: TimeInterval = 15) throws -> EdgeReply {
        try request(port: port, "GET", target, host: host, headers: headers, timeout: timeout)
    }
}

/// Results gathered from several threads.
final class EdgeCollector<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items = [T]()

    func append(_ item: T) {
        lock.lock()
        items.append(item)
        lock.unlock()
    }

    var all: [T] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}

/// A flag several threads read and one sets.
final class EdgeFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

/// Starts `body(i)` for i in 0..<count on `count` real threads; the group is left when all have returned.
func edgeStartThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> DispatchGroup {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let t = Thread {
            body(i)
            group.leave()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    return group
}

/// Runs `body(i)` for i in 0..<count on `count` real threads at once; waits (bounded) for all of them.
func edgeRunThreads(_ count: Int, timeout: TimeInterval = 60, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    edgeStartThreads(count, body).wait(timeout: .now() + timeout) == .success
}

/// Percentile (0…100) of a list of numbers, nearest rank.
func edgePercentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

// MARK: Origins

private func posixKill(_ pid: Int32, _ signal: Int32) { _ = kill(pid, signal) }

/// One edge_origin.py process on a loopback port.
final class EdgeOrigin {
    let name: String
    let port: UInt16
    let delayMs: Int
    let logPath: String
    /// The loopback address it listens on, and its TLS certificate and key (HTTPS when set).
    let host: String
    let tls: (cert: String, key: String)?
    /// With `tls`: the CA file a client certificate must chain to (mutual TLS), if any.
    let clientCA: String?
    private var process: Process?

    init(name: String, port: UInt16, delayMs: Int, folder: URL, host: String = "127.0.0.1", tls: (cert: String, key: String)? = nil,
         clientCA: String? = nil) {
        self.name = name
        self.clientCA = clientCA
        self.port = port
        self.delayMs = delayMs
        self.host = host
        self.tls = tls
        self.logPath = folder.appendingPathComponent("origin-\(name).log").path
    }

    var address: String { "\(host):\(port)" }
    var pid: Int32? { process?.processIdentifier }
    var isRunning: Bool { process?.isRunning ?? false }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Starts (or restarts, on the same port) and waits until the port accepts connections.
    func start(timeout: TimeInterval = 10) throws {
        let python = try EdgeTools.requirePython()
        let script = IntegrationEnvironment.testsFolder.appendingPathComponent("edge_origin.py").path
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        logHandle.seekToEndOfFile()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, "--port", "\(port)", "--name", name, "--delay-ms", "\(delayMs)", "--host", host]
            + (tls.map { ["--tls-cert", $0.cert, "--tls-key", $0.key] } ?? [])
            + (clientCA.map { ["--tls-client-ca", $0] } ?? [])
        p.standardOutput = logHandle
        p.standardError = logHandle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        try? logHandle.close()
        process = p
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard p.isRunning else { throw IntegrationError("origin \(name) exited (\(p.terminationStatus)); log:\n\(log)") }
            if (try? EdgeConnection(port: port, address: host)) != nil { return }
            usleep(20_000)
        }
        throw IntegrationError("origin \(name) did not accept on port \(port) within \(timeout) s; log:\n\(log)")
    }

    /// SIGKILL (only this origin's pid) and wait for it to go.
    func kill() {
        guard let p = process, p.isRunning else { return }
        posixKill(p.processIdentifier, SIGKILL)
        waitForExit(p, timeout: 5)
    }

    func stop() {
        if let p = process { stopProcess(p, grace: 2) }
    }

    /// Requests the origin has answered (health checks and /count excluded), asked directly.
    func counters() throws -> (count: Int, requests: [String]) {
        let r = try EdgeHTTP.get(port: port, "/count", host: "origin.test")
        guard let j = r.json, let count = j["count"] as? Int else { throw IntegrationError("bad /count answer: \(r)") }
        return (count, j["requests"] as? [String] ?? [])
    }

    func count() throws -> Int { try counters().count }

    /// Connections that carried counted requests (health checks and /count excluded).
    func connections() throws -> Int {
        let r = try EdgeHTTP.get(port: port, "/count", host: "origin.test")
        guard let n = r.json?["connections"] as? Int else { throw IntegrationError("bad /count answer: \(r)") }
        return n
    }

    func resetCount() throws { _ = try EdgeHTTP.get(port: port, "/reset", host: "origin.test") }
}

// MARK: The edge under test

/// The listener ports of one edge.
struct EdgePorts: Sendable {
    var http: UInt16
    var admin: UInt16
    var tls: UInt16?
    var proxy: UInt16?
}

/// One `lodestar edge` process with its own topology file and log in the test's folder.
final class EdgeNode {
    let folder: URL
    let topologyPath: String
    let logPath: String
    let ports: EdgePorts
    let listenerCount: Int
    /// Extra environment for the process (e.g. SWIFT_BACKTRACE).
    let environment: [String: String]
    private var process: Process?

    init(folder: URL, topology: [String: Any], ports: EdgePorts, name: String = "topology.json",
         environment: [String: String] = [:]) throws {
        self.folder = folder
        self.environment = environment
        self.ports = ports
        self.topologyPath = folder.appendingPathComponent(name).path
        self.logPath = folder.appendingPathComponent("edge-\(UUID().uuidString.prefix(8)).log").path
        self.listenerCount = ((topology["edges"] as? [[String: Any]])?.first?["listen"] as? [Any])?.count ?? 1
        let data = try JSONSerialization.data(withJSONObject: topology, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: topologyPath))
    }

    var pid: Int32? { process?.processIdentifier }
    var isRunning: Bool { process?.isRunning ?? false }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var port: UInt16 { ports.http }

    /// Starts `lodestar edge --topology FILE --node e1` and waits until every listener and the admin port are up.
    /// A restart (after a stop or crash) appends to the same log.
    func start(node: String = "e1", timeout: TimeInterval = 15) throws {
        let binary = try IntegrationEnvironment.lodestarBinary()
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let offset = logHandle.seekToEndOfFile()
        if offset > 0 { logHandle.write(Data("---- edge restarted ----\n".utf8)) }
        let p = Process()
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        p.executableURL = binary
        p.arguments = ["edge", "--topology", topologyPath, "--node", node]
        p.standardOutput = logHandle
        p.standardError = logHandle
        p.standardInput = FileHandle.nullDevice
        p.currentDirectoryURL = folder
        try p.run()
        try? logHandle.close()
        process = p
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard p.isRunning else {
                throw IntegrationError("lodestar edge exited (status \(p.terminationStatus)) before listening; log:\n\(log)")
            }
            let text = String(decoding: Data(log.utf8).dropFirst(Int(offset)), as: UTF8.self)
            let listening = text.components(separatedBy: "edge listening").count - 1
            if listening >= listenerCount, text.contains("admin listening"),
               (try? EdgeConnection(port: ports.http)) != nil, (try? EdgeConnection(port: ports.admin)) != nil {
                print("lodestar edge pid \(p.processIdentifier) on http 127.0.0.1:\(ports.http), admin :\(ports.admin)"
                      + (ports.tls.map { ", tls :\($0)" } ?? "") + (ports.proxy.map { ", proxy-protocol :\($0)" } ?? "")
                      + " (\(binary.path))")
                return
            }
            usleep(20_000)
        }
        throw IntegrationError("lodestar edge did not listen within \(timeout) s; log:\n\(log)")
    }

    /// SIGTERM, SIGKILL after 5 s (only this process id).
    func stop() {
        if let p = process { stopProcess(p, grace: 5) }
    }

    var rssKiB: Int? { pid.flatMap(EdgeTools.rssKiB) }

    /// The admin endpoint's /healthz answer.
    func healthz() throws -> EdgeReply { try EdgeHTTP.get(port: ports.admin, "/healthz", host: "admin") }

    /// The admin endpoint's /status JSON.
    func status() throws -> [String: Any] {
        let r = try EdgeHTTP.get(port: ports.admin, "/status", host: "admin")
        guard r.status == 200, let j = r.json else { throw IntegrationError("bad /status answer: \(r)") }
        return j
    }

    /// The status (`healthy`, `down`, `ejected`) /status gives for one origin server.
    func serverStatus(pool: String = "web", address: String) throws -> String? {
        let pools = try status()["pools"] as? [[String: Any]] ?? []
        guard let p = pools.first(where: { $0["name"] as? String == pool }) else { return nil }
        let servers = p["servers"] as? [[String: Any]] ?? []
        return servers.first { $0["address"] as? String == address }?["status"] as? String
    }

    /// One counter of /status `stats`.
    func stat(_ name: String) throws -> Int {
        let stats = try status()["stats"] as? [String: Any] ?? [:]
        guard let v = stats[name] as? Int else { throw IntegrationError("no stat \(name) in \(stats)") }
        return v
    }
}

// MARK: Base class

/// Base class of the edge tests: origins and edges on free ports in a temp folder, all stopped (by pid) in tearDown;
/// on failure the edge's log is printed.
class EdgeTestCase: XCTestCase {
    private(set) var workFolder: URL = FileManager.default.temporaryDirectory
    private var edges = [EdgeNode]()
    private var origins = [EdgeOrigin]()
    private var usedPorts = Set<UInt16>()

    override func setUpWithError() throws {
        try super.setUpWithError()
        signal(SIGPIPE, SIG_IGN)
        _ = try EdgeTools.requirePython()
        workFolder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-edge-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: workFolder, withIntermediateDirectories: true)
        edges = []
        origins = []
        usedPorts = []
    }

    override func tearDown() {
        let failed = (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0
        for edge in edges {
            edge.stop()
            if failed {
                let log = edge.log
                let shown = log.utf8.count > 60_000 ? "… " + String(log.suffix(60_000)) : log
                print("---- lodestar edge log (\(edge.logPath)) ----\n\(shown)---- end of log ----")
            }
        }
        for origin in origins {
            origin.stop()
            if failed, !origin.log.isEmpty { print("---- origin \(origin.name) log ----\n\(origin.log)---- end ----") }
        }
        edges = []
        origins = []
        try? FileManager.default.removeItem(at: workFolder)
        super.tearDown()
    }

    /// A free loopback port not handed out before in this test.
    func freePort() throws -> UInt16 {
        for _ in 0..<20 {
            let p = try FreePort.find()
            if usedPorts.insert(p).inserted { return p }
        }
        throw IntegrationError("no fresh free port")
    }

    @discardableResult
    func startOrigin(_ name: String, delayMs: Int = 0) throws -> EdgeOrigin {
        let o = EdgeOrigin(name: name, port: try freePort(), delayMs: delayMs, folder: workFolder)
        origins.append(o)
        try o.start()
        return o
    }

    func startOrigins(_ names: [String]) throws -> [EdgeOrigin] { try names.map { try startOrigin($0) } }

    /// An origin on another loopback address and/or behind TLS (`tls`: certificate and key files in the test folder).
    /// `clientCA`: the origin requires a client certificate from this CA file (mutual TLS).
    func startOrigin(_ name: String, host: String, port: UInt16, tls: (cert: String, key: String)? = nil,
                     clientCA: String? = nil) throws -> EdgeOrigin {
        let files = tls.map { (workFolder.appendingPathComponent($0.cert).path, workFolder.appendingPathComponent($0.key).path) }
        let o = EdgeOrigin(name: name, port: port, delayMs: 0, folder: workFolder, host: host, tls: files,
                           clientCA: clientCA.map { workFolder.appendingPathComponent($0).path })
        origins.append(o)
        try o.start()
        return o
    }

    /// A pool object for the topology.
    func pool(_ servers: [EdgeOrigin], weights: [Int]? = nil, balance: String = "round-robin",
              extra: [String: Any] = [:]) -> [String: Any] {
        var list = [Any]()
        for (i, o) in servers.enumerated() {
            if let w = weights?[i] { list.append(["address": o.address, "weight": w]) } else { list.append(o.address) }
        }
        var p: [String: Any] = ["servers": list, "balance": balance]
        for (k, v) in extra { p[k] = v }
        return p
    }

    /// A route object for the topology.
    func route(pool: String = "web", hosts: [String] = ["*"], pathPrefix: String = "/", extra: [String: Any] = [:]) -> [String: Any] {
        var r: [String: Any] = ["hosts": hosts, "pathPrefix": pathPrefix, "pool": pool]
        for (k, v) in extra { r[k] = v }
        return r
    }

    /// The whole topology of a one-edge test setup (zone/regions/services/dns are the required minimum).
    func edgeTopology(listen: [Any], admin: UInt16, pools: [String: Any], routes: [[String: Any]],
                      proxy: [String: Any] = [:]) -> [String: Any] {
        var proxySection: [String: Any] = ["threads": 2, "accessLog": true]
        for (k, v) in proxy { proxySection[k] = v }
        return [
            "zone": ["name": "example.test",
                     "soa": ["primary": "ns1.example.test", "contact": "hostmaster.example.test", "serial": 1],
                     "nameservers": [["name": "ns1.example.test", "addresses": ["127.0.0.1"]]]],
            "regions": [["id": "local", "latitude": 0, "longitude": 0]],
            "edges": [["id": "e1", "region": "local", "addresses": ["127.0.0.1"], "listen": listen,
                       "admin": "127.0.0.1:\(admin)"]],
            "services": ["www": ["edges": ["e1"]]],
            "dns": ["nodeId": "d1", "listen": ["127.0.0.1:1"], "geoDatabase": "/dev/null"],
            "origins": pools,
            "routes": routes,
            "proxy": proxySection,
        ]
    }

    /// Writes the topology and starts an edge: plain HTTP always, plus a TLS listener (`tls` settings object) and a
    /// PROXY protocol listener when asked. `edit` may change the topology last.
    @discardableResult
    func startEdge(pools: [String: Any], routes: [[String: Any]], proxy: [String: Any] = [:], tls: [String: Any]? = nil,
                   proxyProtocol: Bool = false, environment: [String: String] = [:], edit: (inout [String: Any]) throws -> Void = { _ in }) throws -> EdgeNode {
        var ports = EdgePorts(http: try freePort(), admin: try freePort())
        var listen: [Any] = ["127.0.0.1:\(ports.http)"]
        if let tls {
            let p = try freePort()
            ports.tls = p
            listen.append(["address": "127.0.0.1:\(p)", "tls": tls])
        }
        if proxyProtocol {
            let p = try freePort()
            ports.proxy = p
            listen.append(["address": "127.0.0.1:\(p)", "proxyProtocol": true])
        }
        var topology = edgeTopology(listen: listen, admin: ports.admin, pools: pools, routes: routes, proxy: proxy)
        try edit(&topology)
        let edge = try EdgeNode(folder: workFolder, topology: topology, ports: ports, environment: environment)
        edges.append(edge)
        try edge.start()
        return edge
    }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes; returns the seconds it took, nil on timeout.
    @discardableResult
    func eventually(timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> TimeInterval? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if try condition() { return Date().timeIntervalSince(start) }
            usleep(50_000)
        }
        return try condition() ? Date().timeIntervalSince(start) : nil
    }

    /// Asserts a raw exchange ended with the given status (one of `statuses`) and the edge closing the connection.
    func assertRefusedAndClosed(_ c: EdgeConnection, statuses: Set<Int>, _ label: String,
                                file: StaticString = #filePath, line: UInt = #line) -> Int? {
        let reply: EdgeReply
        do {
            reply = try c.readResponse(timeout: 5)
        } catch {
            XCTFail("\(label): no response (\(error))", file: file, line: line)
            return nil
        }
        XCTAssertTrue(statuses.contains(reply.status), "\(label): status \(reply.status), wanted one of \(statuses.sorted())\n\(reply)",
                      file: file, line: line)
        let closed = c.waitForClose(timeout: 3)
        XCTAssertNotNil(closed, "\(label): the edge kept the connection open after \(reply.status)", file: file, line: line)
        if let closed, !closed.extra.isEmpty {
            XCTFail("\(label): \(closed.extra.count) more bytes after the response: "
                    + String(decoding: closed.extra.prefix(200), as: UTF8.self).debugDescription, file: file, line: line)
        }
        return reply.status
    }
}
