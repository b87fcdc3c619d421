import Foundation
import LodestarTopology
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Robustness ("fuzz") test of the edge: a few thousand seeded mutations of valid requests (and of PROXY protocol
/// headers) against one edge with compression on, deny and header rules and small limits, on fresh connections, on
/// keep-alive connections one after another, sent whole or in pieces, followed by a half-close or a client reset; plus
/// incomplete requests held open past the edge's timeouts. Some inputs make the test origin misbehave (it answers
/// /status/N with status N and copies ?type= unescaped into its Content-Type line).
///
/// The standard: the process never dies, every answer is a well-formed status line with a code in 100–599, the edge
/// itself never answers 500 (or another 5xx than 502/503/504), incomplete requests get a 408 or a close, ordinary
/// requests keep working throughout (checked every 200 inputs), and no connection is left open at the end.
///
/// Deterministic in what it sends: `EDGE_FUZZ_SEED` (hex, default 10DE57A5) and `EDGE_FUZZ_INPUTS` (default 5000)
/// choose the inputs; `EDGE_FUZZ_VERBOSE=1` prints examples of each outcome. If the edge dies (or stops forwarding),
/// the inputs of that batch are replayed one by one on a second edge (backtrace off, so a crash shows at once); the
/// first that breaks it is shrunk and printed as a Python bytes literal, next to the fatal error line and the crashed
/// thread's frames from the first edge's log.
final class EdgeRobustnessTests: EdgeTestCase {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["EDGE_FUZZ_SEED"].flatMap { UInt64($0, radix: 16) } ?? 0x10DE_57A5
    static let inputCount: Int = ProcessInfo.processInfo.environment["EDGE_FUZZ_INPUTS"].flatMap { Int($0) } ?? 5000
    static let clientThreads = 8
    static let batchSize = 200
    /// How long a reply may take before the input counts as a timeout (the edge waits for more, as it should).
    static let replyTimeout: TimeInterval = 0.3
    /// After a complete answer on a connection left open: how long to wait for more (a pipelined second answer).
    static let settleTime: TimeInterval = 0.05

    /// The edge's topology: compression on, rate limit off, small limits, a route with deny and header rules, a first
    /// listener that takes HTTP/1.1 and h2c told apart by the preface (as `make run`'s edges do: every input passes
    /// the preface sniffer first), and a second listener that expects a PROXY protocol header.
    private func startFuzzEdge(origin: EdgeOrigin, environment: [String: String]) throws -> EdgeNode {
        let deny: [[String: Any]] = [["methods": ["TRACE"]], ["path": "/admin*"], ["header": "User-Agent", "value": "*sqlmap*"]]
        let main: [String: Any] = [
            "deny": deny,
            "requestHeaders": ["set": ["X-Edge-Route": "main"], "remove": ["X-Internal"]],
            "responseHeaders": ["set": ["X-Served-By": "lodestar"], "remove": ["X-Powered-By"]],
        ]
        let api: [String: Any] = [
            "deny": [["methods": ["DELETE", "PUT"]]],
            "requestHeaders": ["set": ["X-Edge-Route": "api"]],
            "responseHeaders": ["remove": ["X-Kept"]],
        ]
        let limits: [String: Any] = ["headerTimeoutMs": 2000, "maxHeaderBytes": 8192, "maxBodyBytes": 65536,
                                     "maxRequestLineBytes": 4096, "maxHeaderCount": 64, "bodyTimeoutMs": 3000]
        return try startEdge(
            // Passive ejection off: the origin answers unknown methods with 501, and an ejected origin (503s) is not what
            // this test looks for.
            pools: ["web": pool([origin], extra: ["passive": ["failures": 0], "responseTimeoutMs": 5000])],
            routes: [route(hosts: ["api.example.test"], pathPrefix: "/api", extra: api), route(extra: main)],
            proxy: ["compression": ["enabled": true, "minBytes": 256], "rateLimit": ["enabled": false], "limits": limits],
            proxyProtocol: true, environment: environment) { t in Self.acceptH2C(&t) }
    }

    /// Backtraces in the log (crashed thread only, fast symbolication) so a crash can be traced to a line.
    static let backtraceEnvironment = ["SWIFT_BACKTRACE": "enable=yes,interactive=no,color=no,threads=crashed,registers=none,"
                                           + "images=none,symbolicate=fast,output-to=stderr"]

    func test_robustness_mutatedRequestsNeverCrashOrMisbehave() throws {
        let started = Date()
        let origin = try startOrigin("o1")
        let edge = try startFuzzEdge(origin: origin, environment: Self.backtraceEnvironment)
        guard let proxyPort = edge.ports.proxy else { throw IntegrationError("no PROXY protocol port") }

        var generator = FuzzGenerator(seed: Self.seed)
        let units = generator.units(inputs: Self.inputCount)
        var inputsById = [Int: FuzzCase]()
        for u in units { for c in u.cases { inputsById[c.id] = c } }
        let batches = FuzzGenerator.batches(units, size: Self.batchSize)
        let total = units.reduce(0) { $0 + $1.cases.count }
        print(String(format: "robustness: seed %llx, %d inputs in %d units (%d keep-alive sequences), %d batches, %d client threads",
                     Self.seed, total, units.count, units.filter(\.keepAlive).count, batches.count, Self.clientThreads))

        let slowCases = generator.slowCases(count: 48)
        for c in slowCases { inputsById[c.id] = c }
        let slowResults = EdgeCollector<FuzzResult>()
        let slowPorts = FuzzPorts(plain: edge.port, proxy: proxyPort)
        let slowThread = edgeStartThreads(1) { _ in
            for r in Self.runSlow(slowCases, ports: slowPorts, roundSize: 12) { slowResults.append(r) }
        }
        // Also on an early exit: the thread ends within ~20 s (4 rounds of 5 s).
        defer { _ = slowThread.wait(timeout: .now() + 30) }

        var results = [FuzzResult]()
        var crashes = [String]()
        var healthFailures = [String]()
        var healthChecks = 0

        for (b, batch) in batches.enumerated() {
            let ports = FuzzPorts(plain: edge.port, proxy: proxyPort)
            let batchResults = Self.run(batch, ports: ports, threads: Self.clientThreads)
            results += batchResults
            // The edge must still be there and still forward an ordinary request (on each of its event loops).
            let failure = Self.forwardingProblem(port: edge.port, timeout: 5)
            let healthy = failure == nil
            let why = failure ?? ""
            healthChecks += 1
            if !healthy && edge.isRunning {
                // A crashing process lingers while its backtrace is written: give it time to go.
                _ = eventually(timeout: 15) { !edge.isRunning }
            }
            let alive = edge.isRunning && edge.pid.map { kill($0, 0) == 0 } == true
            if alive && healthy { continue }
            let inputs = batch.flatMap(\.cases).count
            if !alive {
                let crash = EdgeCrashReport(log: edge.log)
                crashes.append("batch \(b) (\(inputs) inputs): \(crash.fatalLine ?? "(no fatal error line)")")
                XCTFail("the edge process died during batch \(b): \(crash.fatalLine ?? "(no fatal error line in the log)")\n"
                        + crash.frames.prefix(15).joined(separator: "\n"))
            } else {
                healthFailures.append("after batch \(b): \(why)")
                XCTFail("after batch \(b) an ordinary GET through the edge failed (the process still runs): \(why)")
            }
            if crashes.count + healthFailures.count == 1 {
                // The replay edge writes its own topology.json into the test folder: keep this edge's.
                let topology = try Data(contentsOf: URL(fileURLWithPath: edge.topologyPath))
                try minimize(batch: batch, origin: origin)
                try topology.write(to: URL(fileURLWithPath: edge.topologyPath))
            }
            // Go on with a fresh edge (a live but broken one is stopped first).
            if alive { edge.stop() }
            guard Self.restart(edge) else {
                XCTFail("the edge did not start again after batch \(b); stopping")
                break
            }
        }

        if slowThread.wait(timeout: .now() + 60) != .success { XCTFail("the slow-connection thread did not finish") }
        results += slowResults.all

        // Outcome classes and status codes.
        var byClass = [String: Int]()
        var byStatus = [Int: Int]()
        var failures = [String]()
        var originFiveXX = 0
        var switching = [String]()
        for r in results {
            byClass[(r.slow ? "slow:" : "") + r.outcome.rawValue, default: 0] += 1
            for reply in r.replies {
                byStatus[reply.status, default: 0] += 1
                let input = inputsById[r.caseId]
                let shown = "input #\(r.caseId) [\(input?.label ?? "?")] \(FuzzText.escaped(input?.bytes ?? []))"
                if reply.status == 101 {
                    // Not a failure by the rules above, but the edge does not upgrade connections: a 101 it passes on
                    // leaves the client thinking the connection changed protocol while the edge keeps parsing HTTP.
                    switching.append("\(shown)\nreply: \(FuzzText.escaped(reply.head))")
                }
                if !(100...599).contains(reply.status) {
                    // Also when the origin said it: RFC 9110 §15 makes such a code invalid, to be treated as a 5xx.
                    failures.append("status \(reply.status) outside 100–599\(reply.isFromOrigin ? " (the origin's, passed on)" : "") for "
                                    + "\(shown)\nreply: \(FuzzText.escaped(reply.head))")
                } else if reply.status == 500 {
                    failures.append("500 for \(shown)\nreply: \(FuzzText.escaped(reply.head + reply.bodyPrefix))")
                } else if reply.status >= 500 && ![502, 503, 504].contains(reply.status) {
                    // The origin (Python's http.server) answers unknown methods with 501 and its own HTML page; that
                    // is the origin's answer passed through, not the edge's.
                    if reply.isFromOrigin {
                        originFiveXX += 1
                    } else {
                        failures.append("edge-made \(reply.status) for \(shown)\nreply: \(FuzzText.escaped(reply.head + reply.bodyPrefix))")
                    }
                }
            }
            if let problem = r.problem {
                let input = inputsById[r.caseId]
                failures.append("\(problem) for input #\(r.caseId) [\(input?.label ?? "?")] \(FuzzText.escaped(input?.bytes ?? []))\n"
                                + "reply bytes: \(FuzzText.escaped(r.replyPrefix))")
            }
        }
        if ProcessInfo.processInfo.environment["EDGE_FUZZ_VERBOSE"] != nil {
            // A few examples of every outcome class and status code.
            var shown = [String: Int]()
            for r in results {
                let keys = ["class " + (r.slow ? "slow:" : "") + r.outcome.rawValue] + r.replies.map { "status \($0.status)" }
                for k in keys where shown[k, default: 0] < 3 {
                    shown[k, default: 0] += 1
                    let input = inputsById[r.caseId]
                    print("EXAMPLE \(k): #\(r.caseId) [\(input?.label ?? "?")] \(FuzzText.escaped(input?.bytes ?? [], limit: 300))\n"
                          + "  -> \(FuzzText.escaped(r.replyPrefix, limit: 300))")
                }
            }
        }
        if let example = switching.first {
            print("ROBUSTNESS NOTE: \(switching.count) answer(s) were 101 Switching Protocols (the origin's, passed on), e.g. \(example)")
        }
        for f in failures.prefix(25) { print("ROBUSTNESS FAILURE: \(f)") }
        if failures.count > 25 { print("… and \(failures.count - 25) more") }
        XCTAssertEqual(failures.count, 0, "answers that break the standard (printed above with their inputs)")

        // Still running (by pid), still forwarding, nothing left open.
        XCTAssertTrue(edge.isRunning, "the edge is not running at the end")
        if let pid = edge.pid { XCTAssertEqual(kill(pid, 0), 0, "edge pid \(pid) is gone") }
        let final = try? EdgeHTTP.get(port: edge.port, "/text/64", timeout: 5)
        XCTAssertEqual(final?.status, 200, "a GET after the run: \(final.map { "\($0)" } ?? "no answer")")
        XCTAssertEqual(final?.body, EdgePattern.text(64), "the origin's body after the run")
        var proxied: EdgeReply?
        if let c = try? EdgeConnection(port: proxyPort) {
            _ = c.trySend(Data("PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n".utf8)
                          + EdgeRequest.make("GET", "/echo?final=1", headers: [("Connection", "close")]))
            proxied = try? c.readResponse(timeout: 5)
        }
        XCTAssertEqual(proxied?.status, 200, "PROXY listener after the run: \(proxied.map { "\($0)" } ?? "no answer")")
        XCTAssertEqual(proxied?.echoed("X-Forwarded-For"), ["203.0.113.9"])

        var openConnections = -1
        var statusJSON = false
        let settled = eventually(timeout: 6) {
            guard let s = try? edge.status(), let stats = s["stats"] as? [String: Any], let open = stats["connections"] as? Int
            else { return false }
            statusJSON = true
            openConnections = open
            return open <= 2
        }
        XCTAssertTrue(statusJSON, "/status did not answer parseable JSON with stats.connections")
        XCTAssertNotNil(settled, "/status still shows \(openConnections) open client connections 6 s after the run")
        let stats = (try? edge.status())?["stats"] as? [String: Any] ?? [:]

        let elapsed = Date().timeIntervalSince(started)
        let classText = byClass.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let statusText = byStatus.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
        print(String(format: "EDGE-FIGURES: robustness seed %llx: %d inputs (%d plain, %d PROXY listener; %d on keep-alive connections; "
                     + "%d incomplete ones held %.0f s) "
                     + "in %.1f s; outcomes %@; statuses %@; origin-made 5xx %d; 101 passed on %d; %d health checks (4 GETs each), %d failed; crashes %d; "
                     + "edge protocol_errors %@, timeouts %@, requests %@; open connections at end %d",
                     Self.seed, results.count, results.filter { $0.listener == .plain }.count, results.filter { $0.listener == .proxy }.count,
                     results.filter(\.keepAlive).count, slowCases.count, Self.slowHold, elapsed, classText, statusText, originFiveXX, switching.count, healthChecks,
                     healthFailures.count, crashes.count, "\(stats["protocol_errors"] ?? "?")", "\(stats["timeouts"] ?? "?")",
                     "\(stats["requests"] ?? "?")", openConnections))
        XCTAssertEqual(crashes, [], "the edge crashed")

        // What the edge logged besides access lines: counts per level and the distinct warning/error messages.
        var levels = [String: Int]()
        var messages = [String: Int]()
        for line in edge.log.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 3)
            guard words.count >= 3 else { continue }
            let level = String(words[1])
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else { continue }
            levels[level, default: 0] += 1
            if ["warning", "error", "critical"].contains(level) {
                let text = line.components(separatedBy: "] ").last.map { String($0.prefix(80)) } ?? String(line.prefix(80))
                messages["\(level): \(text)", default: 0] += 1
            }
        }
        print("robustness: edge log lines per level: \(levels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
              + (messages.isEmpty ? "" : "; " + messages.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: "; ")))
    }

    /// Nil when ordinary GETs through the edge answer 200 with the origin's body; else what went wrong. Four GETs on
    /// fresh connections, so each of the edge's two event loops gets some (connections are handed out in turn).
    static func forwardingProblem(port: UInt16, timeout: TimeInterval) -> String? {
        for i in 0..<4 {
            do {
                let r = try EdgeHTTP.get(port: port, "/text/64?probe=\(i)", timeout: timeout)
                if r.status != 200 || r.body != EdgePattern.text(64) {
                    return "GET /text/64: status \(r.status), \(r.body.count) body bytes: \(r)"
                }
            } catch {
                return "GET /text/64 (probe \(i + 1) of 4): \(error)"
            }
        }
        return nil
    }

    /// Starts a dead edge again on its ports; a port can stay busy for a moment after a crash, so it tries for ~10 s.
    static func restart(_ edge: EdgeNode) -> Bool {
        for _ in 0..<20 {
            if edge.isRunning { return true }
            if (try? edge.start()) != nil { return true }
            usleep(500_000)
        }
        return edge.isRunning
    }

    // MARK: Running inputs

    struct FuzzPorts: Sendable {
        var plain: UInt16
        var proxy: UInt16
        func port(_ l: FuzzListener) -> UInt16 { l == .plain ? plain : proxy }
    }

    /// Runs the units on `threads` client threads; every input gets one result.
    static func run(_ units: [FuzzUnit], ports: FuzzPorts, threads: Int) -> [FuzzResult] {
        let collector = EdgeCollector<FuzzResult>()
        let next = FuzzCounter()
        let ok = edgeRunThreads(threads, timeout: 120) { _ in
            while let i = next.take(below: units.count) {
                for r in runUnit(units[i], ports: ports) { collector.append(r) }
            }
        }
        if !ok { print("robustness: client threads did not finish within 120 s") }
        return collector.all.sorted { $0.caseId < $1.caseId }
    }

    /// One unit: each case on a fresh connection, or all on one keep-alive connection (a new one when it closes).
    static func runUnit(_ unit: FuzzUnit, ports: FuzzPorts) -> [FuzzResult] {
        var out = [FuzzResult]()
        var conn: EdgeConnection?
        for c in unit.cases {
            if conn == nil || !unit.keepAlive {
                conn = nil
                do {
                    conn = try EdgeConnection(port: ports.port(c.listener))
                } catch {
                    out.append(FuzzResult(caseId: c.id, listener: c.listener, keepAlive: unit.keepAlive, outcome: .connectFailed,
                                          replies: [], problem: nil, replyPrefix: []))
                    continue
                }
            }
            guard let connection = conn else { continue }
            let r = exchange(c, on: connection, keepAlive: unit.keepAlive)
            out.append(r)
            if [.answeredClosed, .silentClose, .reset, .malformed, .aborted].contains(r.outcome) { conn = nil }
        }
        return out
    }

    /// Sends one input and classifies what comes back.
    static func exchange(_ c: FuzzCase, on conn: EdgeConnection, keepAlive: Bool) -> FuzzResult {
        var from = 0
        for cut in c.cuts + [c.bytes.count] where cut > from && cut <= c.bytes.count {
            if from > 0 { usleep(c.cuts.count > 1 ? 1_000 : 5_000) }
            _ = conn.trySend(Data(c.bytes[from..<cut]))
            from = cut
        }
        if let ms = c.abortAfterMs {
            // The client gives up: a reset while the edge may be forwarding or answering.
            if ms > 0 { usleep(UInt32(ms) * 1000) }
            var lingerOff = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(conn.fd, SOL_SOCKET, SO_LINGER, &lingerOff, socklen_t(MemoryLayout<linger>.size))
            _ = shutdown(conn.fd, Int32(SHUT_RDWR))
            return FuzzResult(caseId: c.id, listener: c.listener, keepAlive: keepAlive, outcome: .aborted, replies: [],
                              problem: nil, replyPrefix: [])
        }
        if c.halfClose { conn.shutdownWrite() }
        let (bytes, end) = collect(conn.fd, timeout: replyTimeout, settle: settleTime, headRequest: c.mayBeHead)
        return classify(c, bytes: bytes, end: end, keepAlive: keepAlive)
    }

    /// What came back for one input: outcome class, the responses in it, and a problem if the bytes are not HTTP.
    static func classify(_ c: FuzzCase, bytes: [UInt8], end: ReadEnd, keepAlive: Bool, slow: Bool = false) -> FuzzResult {
        let parsed = ReplyParser.parse(bytes, atEOF: end == .eof || end == .reset, headRequest: c.mayBeHead)
        let outcome: FuzzOutcome
        var problem: String?
        if let bad = parsed.malformed {
            outcome = .malformed
            problem = "malformed reply (\(bad))"
        } else if bytes.isEmpty {
            outcome = end == .eof ? .silentClose : end == .reset ? .reset : .timeout
        } else if parsed.replies.isEmpty {
            outcome = .answeredPartial
        } else {
            switch end {
            case .eof, .reset: outcome = parsed.complete ? .answeredClosed : .answeredPartial
            case .settled: outcome = .answeredOpen
            case .timeout: outcome = parsed.complete ? .answeredOpen : .answeredPartial
            }
        }
        if slow && outcome == .timeout {
            problem = "no answer and still open \(slowHold) s after an incomplete request (headerTimeoutMs 2000, bodyTimeoutMs 3000)"
        }
        return FuzzResult(caseId: c.id, listener: c.listener, keepAlive: keepAlive, outcome: outcome, replies: parsed.replies,
                          problem: problem, replyPrefix: Array(bytes.prefix(400)), slow: slow)
    }

    /// How long incomplete requests are held open before the edge must have answered (408) or closed.
    static let slowHold: TimeInterval = 5

    /// Incomplete requests (and PROXY headers), `roundSize` connections at a time, each held open for `slowHold`
    /// seconds: the edge must answer 408 or close every one of them (slowloris guard), also through the compressor.
    static func runSlow(_ cases: [FuzzCase], ports: FuzzPorts, roundSize: Int) -> [FuzzResult] {
        var out = [FuzzResult]()
        var i = 0
        while i < cases.count {
            let round = Array(cases[i..<min(cases.count, i + roundSize)])
            i += roundSize
            var open = [(FuzzCase, EdgeConnection)]()
            for c in round {
                guard let conn = try? EdgeConnection(port: ports.port(c.listener)) else {
                    out.append(FuzzResult(caseId: c.id, listener: c.listener, keepAlive: false, outcome: .connectFailed, replies: [],
                                          problem: nil, replyPrefix: [], slow: true))
                    continue
                }
                _ = conn.trySend(Data(c.bytes))
                open.append((c, conn))
            }
            let deadline = Date().addingTimeInterval(slowHold)
            for (c, conn) in open {
                let (bytes, end) = collect(conn.fd, timeout: max(0.05, deadline.timeIntervalSinceNow), settle: settleTime,
                                           headRequest: c.mayBeHead)
                out.append(classify(c, bytes: bytes, end: end, keepAlive: false, slow: true))
            }
        }
        return out
    }

    enum ReadEnd { case eof, reset, timeout, settled }

    /// Reads until the peer closes, `timeout` passes, or a complete answer was followed by `settle` of quiet.
    static func collect(_ fd: Int32, timeout: TimeInterval, settle: TimeInterval, headRequest: Bool) -> ([UInt8], ReadEnd) {
        let deadline = Date().addingTimeInterval(timeout)
        var bytes = [UInt8]()
        var scratch = [UInt8](repeating: 0, count: 65536)
        var complete = false
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return (bytes, .timeout) }
            let wait = complete ? min(settle, left) : left
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&pfd, 1, Int32(max(1, (wait * 1000).rounded(.up))))
            if rc < 0 {
                if errno == EINTR { continue }
                return (bytes, .reset)
            }
            if rc == 0 {
                if complete { return (bytes, .settled) }
                continue
            }
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return (bytes, .eof) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return (bytes, .reset)
            }
            bytes += scratch[0..<n]
            let p = ReplyParser.parse(bytes, atEOF: false, headRequest: headRequest)
            if p.malformed != nil { return (bytes, .settled) }
            complete = p.complete
        }
    }

    // MARK: Shrinking a crash

    /// Replays the inputs of the batch the edge died (or stopped forwarding) in, one at a time, on a second edge with the
    /// backtracer off; shrinks the first input that breaks it and prints it.
    private func minimize(batch: [FuzzUnit], origin: EdgeOrigin) throws {
        let replay = try startFuzzEdge(origin: origin, environment: ["SWIFT_BACKTRACE": "enable=no"])
        guard let proxyPort = replay.ports.proxy else { return }
        let ports = FuzzPorts(plain: replay.port, proxy: proxyPort)
        let deadline = Date().addingTimeInterval(60)

        /// After an input: true when the replay edge died or no longer forwards a GET (then it is started afresh).
        func broken() -> Bool {
            var bad = eventually(timeout: 0.25) { !replay.isRunning } != nil
            if !bad {
                bad = Self.forwardingProblem(port: replay.port, timeout: 1.5) != nil
                if bad { replay.stop() }
            }
            if bad { _ = Self.restart(replay) }
            return bad
        }
        /// True when sending `c` (on a fresh connection) breaks the replay edge.
        func kills(_ c: FuzzCase) -> Bool {
            if !replay.isRunning { _ = Self.restart(replay) }
            if let conn = try? EdgeConnection(port: ports.port(c.listener)) {
                _ = Self.exchange(c, on: conn, keepAlive: false)
            }
            return broken()
        }
        func killsUnit(_ u: FuzzUnit) -> Bool {
            if !replay.isRunning { _ = Self.restart(replay) }
            _ = Self.runUnit(u, ports: ports)
            return broken()
        }

        var culprit: FuzzCase?
        search: for unit in batch {
            if Date() > deadline { break }
            if unit.keepAlive {
                guard killsUnit(unit) else { continue }
                for (k, var c) in unit.cases.enumerated() {
                    // Alone, a later input of a PROXY-listener sequence goes to the plain listener (its PROXY header
                    // came with the first input).
                    if k > 0 && c.listener == .proxy { c.listener = .plain }
                    if kills(c) {
                        culprit = c
                        break search
                    }
                }
                print("ROBUSTNESS: keep-alive sequence \(unit.cases.map(\.id)) breaks the edge, none of its inputs alone:\n"
                      + unit.cases.map { "  #\($0.id) [\($0.label)] \(FuzzText.python($0.bytes))" }.joined(separator: "\n"))
                replay.stop()
                return
            } else if kills(unit.cases[0]) {
                culprit = unit.cases[0]
                break
            }
        }
        guard let found = culprit else {
            replay.stop()
            print("ROBUSTNESS: no single input of the batch breaks the edge on its own (a race between connections?)")
            return
        }
        print("ROBUSTNESS: input #\(found.id) [\(found.label)] breaks the edge on its own (\(found.bytes.count) bytes): "
              + FuzzText.python(found.bytes))
        // Shrink: drop ever smaller pieces while the input still kills the edge.
        var current = found
        current.cuts = []
        current.abortAfterMs = nil
        if !kills(current) { current = found }
        var chunk = max(1, current.bytes.count / 2)
        var tries = 0
        while chunk >= 1 && tries < 150 && Date() < deadline {
            var i = 0
            while i < current.bytes.count && tries < 150 && Date() < deadline {
                var candidate = current
                candidate.bytes.removeSubrange(i..<min(current.bytes.count, i + chunk))
                candidate.cuts = candidate.cuts.filter { $0 < candidate.bytes.count }
                tries += 1
                if !candidate.bytes.isEmpty && kills(candidate) { current = candidate } else { i += chunk }
            }
            if chunk == 1 { break }
            chunk /= 2
        }
        let crash = EdgeCrashReport(log: replay.log)
        replay.stop()
        print("ROBUSTNESS: smallest input found (\(current.bytes.count) bytes, \(tries) tries, listener \(current.listener), "
              + "sent in pieces ending at \(current.cuts), half-close \(current.halfClose), abort \(current.abortAfterMs.map { "after \($0) ms" } ?? "no")): "
              + FuzzText.python(current.bytes) + "\n"
              + "ROBUSTNESS: replay edge's fatal error: \(crash.fatalLine ?? "(none in the log: it hung or stopped forwarding)")")
    }
}

// MARK: Inputs

enum FuzzListener: String, Sendable { case plain, proxy }

/// One input: bytes for one listener, sent in one write (or in pieces cut at `cuts`, 1–5 ms apart), optionally followed
/// by a half-close, or by a reset from the client after `abortAfterMs`.
struct FuzzCase: Sendable {
    var id: Int
    var listener: FuzzListener
    var bytes: [UInt8]
    var cuts: [Int] = []
    var halfClose: Bool
    var abortAfterMs: Int?
    var label: String

    /// The input holds a HEAD request (its answer has a Content-Length but no body).
    var mayBeHead: Bool { ReplyParser.find(bytes, Array("HEAD ".utf8), from: 0) != nil }
}

/// Inputs on fresh connections (one each) or one keep-alive connection for all.
struct FuzzUnit: Sendable {
    var cases: [FuzzCase]
    var keepAlive: Bool
}

enum FuzzOutcome: String, Sendable {
    case answeredClosed = "answered+closed"
    case answeredOpen = "answered+open"
    case answeredPartial = "partial-answer"
    case silentClose = "silent-close"
    case reset
    case timeout
    case malformed
    case connectFailed = "connect-failed"
    /// The client reset the connection itself (`abortAfterMs`); what came back is not looked at.
    case aborted = "client-abort"
}

struct FuzzResult: Sendable {
    var caseId: Int
    var listener: FuzzListener
    var keepAlive: Bool
    var outcome: FuzzOutcome
    var replies: [ParsedReply]
    var problem: String?
    var replyPrefix: [UInt8]
    /// Held open past the edge's timeouts (`runSlow`).
    var slow = false
}

final class FuzzCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

/// The seeded input generator: a corpus of valid requests and PROXY headers, and mutations of them.
struct FuzzGenerator {
    var rng: FastRandom
    private var nextId = 0

    init(seed: UInt64) { rng = FastRandom(seed: seed) }

    static let host = "Host: www.example.test\r\n"

    /// Valid requests (each alone is answered normally, or refused on purpose: deny rules, limits).
    static let corpus: [(name: String, text: String)] = {
        let h = host
        let body70k = String(repeating: "z", count: 70_000)
        return [
            ("get", "GET /echo HTTP/1.1\r\n\(h)User-Agent: fuzz/1.0\r\nAccept: */*\r\n\r\n"),
            ("get-gzip", "GET /text/4096 HTTP/1.1\r\n\(h)Accept-Encoding: gzip, deflate\r\n\r\n"),
            ("get-json-gzip", "GET /echo?x=1&y=%20z HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\nX-Internal: secret\r\n\r\n"),
            ("post-cl", "POST /echo HTTP/1.1\r\n\(h)Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nhello=world&x=1"),
            ("post-chunked", "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nAccept-Encoding: gzip\r\n\r\n"
                + "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"),
            ("post-chunked-trailers", "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                + "a\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"),
            ("pipelined-get-get", "GET /echo?n=1 HTTP/1.1\r\n\(h)\r\nGET /text/2048 HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n"),
            ("pipelined-post-get", "POST /echo HTTP/1.1\r\n\(h)Content-Length: 3\r\n\r\nabcGET /echo?n=2 HTTP/1.1\r\n\(h)\r\n"),
            ("http10", "GET /text/2048 HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n"),
            ("http10-keepalive", "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\(h)\r\n"),
            ("absolute-form", "GET http://www.example.test/echo?abs=1 HTTP/1.1\r\nHost: other.example\r\n\r\n"),
            ("absolute-form-api", "GET http://api.example.test:8080/api/v1?x HTTP/1.1\r\nHost: api.example.test\r\n\r\n"),
            ("expect-continue", "POST /echo HTTP/1.1\r\n\(h)Expect: 100-continue\r\nContent-Length: 11\r\n\r\nhello world"),
            ("expect-continue-chunked", "PUT /echo HTTP/1.1\r\n\(h)Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "3\r\nabc\r\n0\r\n\r\n"),
            ("head-gzip", "HEAD /text/4096 HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n"),
            ("deny-path", "GET /admin/users HTTP/1.1\r\n\(h)\r\n"),
            ("deny-trace", "TRACE /echo HTTP/1.1\r\n\(h)\r\n"),
            ("deny-ua", "GET /echo HTTP/1.1\r\n\(h)User-Agent: sqlmap/1.7\r\n\r\n"),
            ("api-put", "PUT /api/item HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 2\r\n\r\n{}"),
            ("api-get", "GET /api/item?id=7 HTTP/1.1\r\nHost: API.Example.Test:443\r\nAccept-Encoding: gzip\r\n\r\n"),
            ("options-star", "OPTIONS * HTTP/1.1\r\n\(h)\r\n"),
            ("delete", "DELETE /echo HTTP/1.1\r\n\(h)Content-Length: 0\r\n\r\n"),
            ("connection-close", "GET /text/1024 HTTP/1.1\r\n\(h)Connection: close\r\nAccept-Encoding: gzip\r\n\r\n"),
            ("reply-headers", "GET /reply-headers HTTP/1.1\r\n\(h)Connection: X-Foo\r\nX-Foo: 1\r\nTE: trailers\r\n\r\n"),
            ("upgrade", "GET /echo HTTP/1.1\r\n\(h)Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
            ("websocket", "GET /chat HTTP/1.1\r\n\(h)Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                + "Sec-WebSocket-Version: 13\r\n\r\n"),
            ("forwarded", "GET /echo HTTP/1.1\r\n\(h)X-Forwarded-For: 198.51.100.1\r\nVia: 1.0 a\r\nX-Request-ID: abc-123\r\n"
                + "X-Forwarded-Proto: https\r\n\r\n"),
            ("get-chunked-empty", "GET /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("big-chunk", "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n200\r\n" + String(repeating: "q", count: 512)
                + "\r\n0\r\n\r\n"),
            ("cl-over-limit", "POST /echo HTTP/1.1\r\n\(h)Content-Length: 70000\r\n\r\nonly a little"),
            ("chunked-over-limit", "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n11170\r\n\(body70k)\r\n0\r\n\r\n"),
            ("header-over-limit", "GET /echo HTTP/1.1\r\n\(h)X-Big: \(String(repeating: "b", count: 9000))\r\n\r\n"),
            ("utf8-target", "GET /caf\u{E9}/\u{1F600}?q=\u{FF} HTTP/1.1\r\n\(h)X-Utf8: gr\u{FC}\u{DF}e\r\n\r\n"),
            ("many-headers", "GET /echo HTTP/1.1\r\n\(h)" + (0..<40).map { "X-H\($0): v\($0)\r\n" }.joined() + "\r\n"),
            ("bytes", "GET /bytes/3000?type=text/html HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n"),
            ("stream-chunked", "GET /stream/5000?chunked=1 HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n"),
            ("gzip-origin", "GET /gzip?n=3000 HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n"),
            ("no-host", "GET /echo HTTP/1.1\r\nAccept: */*\r\n\r\n"),
            ("pipeline-12", (0..<12).map { i in
                ["GET /text/\(300 * (i + 1)) HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n",
                 "HEAD /text/2000 HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n",
                 "POST /echo?i=\(i) HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                 "GET /admin HTTP/1.1\r\n\(h)\r\n"][i % 4]
            }.joined()),
            ("big-gzip-stream", "GET /text/300000 HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n"),
            ("big-chunked-stream", "GET /stream/400000?chunked=1&type=text/plain HTTP/1.1\r\n\(h)Accept-Encoding: gzip\r\n\r\n"),
            ("http10-stream", "GET /stream/100000?chunked=1 HTTP/1.0\r\n\(h)Accept-Encoding: gzip\r\n\r\n"),
            ("post-then-close", "POST /echo HTTP/1.1\r\n\(h)Content-Length: 4\r\nConnection: close\r\n\r\nbodyGET /echo HTTP/1.1\r\n\(h)\r\n"),
            ("denied-with-body", "POST /admin/x HTTP/1.1\r\n\(h)Content-Length: 10\r\n\r\n0123456789GET /echo HTTP/1.1\r\n\(h)\r\n"),
            ("connect", "CONNECT www.example.test:443 HTTP/1.1\r\n\(h)\r\n"),
        ]
    }()

    static let methods = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH", "PROPFIND", "MKCOL",
                          "PURGE", "LOCK", "M-SEARCH", "SOURCE", "QUERY", "REPORT", "get", "Get", "G ET", "GET\u{0}", "",
                          "XYZZY", "PRI", "GETT", "POSTPOST", "\u{FF}GET", "GET/", "*", "-"]
    static let versions = ["HTTP/0.9", "HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/2.0", "HTTP/2", "HTTP/3", "HTTP/1.1 ", "http/1.1",
                           "HTTP/11", "HTTP/1.10", "HTTP/9.9", "HTTP/", "", "HTTP/1.1\u{0}", "HTTP/1.", "HTTP/01.1", "HTTP/1.1x",
                           "HTTPS/1.1", "HTTP/1.1\t", "HTTP/-1.1", "HTTP/1.9"]
    static let targets = ["*", "/", "//", "http://", "http://@/", "http://[::1]:80/", "https://www.example.test", "http://www.example.test?x",
                          "/%00", "/..%2f..%2fetc/passwd", "/\u{80}", "?", "", "/admin", "HTTP://WWW.EXAMPLE.TEST/echo",
                          "http://x:99999999/", "http:///x", "http://www.example.test:/", "http://a@b/", "/api", "/api/../admin",
                          "/status/abc", "/echo#frag", "/echo?%", "\\", "/a b", "http://" + String(repeating: "h", count: 300) + "/",
                          "/text/999999999999999999999", "/bytes/-1", "/stream/abc"]
    static let originStatuses = ["100", "101", "102", "103", "199", "200", "204", "205", "206", "299", "304", "399", "418", "499",
                                 "502", "503", "504", "600", "999", "099", "0", "1000", "20", "abc"]
    static let originTypes = [
        "text/plain%0d%0aContent-Length:%200%0d%0a%0d%0aHTTP/1.1%20200%20OK%0d%0aContent-Length:%205%0d%0a%0d%0aEVIL!",
        "text/plain%0d%0a%0d%0aHTTP/1.1%20200%20OK%0d%0aX-Smuggled:%201%0d%0aContent-Length:%205%0d%0a%0d%0aEVIL!",
        "text/plain%0d%0aTransfer-Encoding:%20chunked", "text/plain%0d%0aContent-Length:%2099999", "text/plain%0d%0aContent-Length:%20-1",
        "text/plain%0d%0aContent-Length:%203", "%00", "%ff%fe", "text/html%0d%0aContent-Encoding:%20gzip", "text/plain%0d%0aConnection:%20close",
        "text/plain%0d%0aVary:%20*", "text/plain%0d%0aCache-Control:%20no-transform", "text/plain%0d%0aX-Big:%20" + String(repeating: "a", count: 9000),
        "text/plain;%20charset=utf-8", "application/json", "text/plain%0d%0a%20folded", "text/plain%0d%0aTransfer-Encoding:%20gzip,%20chunked",
        "text/plain%0d%0aUpgrade:%20h2c%0d%0aConnection:%20upgrade", "text/plain%0aX-Bare-LF:%201", "text/plain%0dX-Bare-CR:%201",
    ]
    static let hosts = ["", ":", "[", "[::1", "www.example.test:", "WWW.EXAMPLE.TEST", "a..b", "\u{FF}", "x:y:z", "[::1]:80",
                        "api.example.test", "*.example.test", "www.example.test:99999", "www.example.test:-1", " www.example.test",
                        "www.example.test, other", "[]", "[::1]]", ".", "-"]
    static let headerLines = [
        "Content-Length: -1", "Content-Length: 99999999999999999999", "Content-Length: 0x10", "Content-Length: 1,1",
        "Content-Length:", "Content-Length: 5", "Content-Length: 65537", "Content-Length:  3 ", "Transfer-Encoding: chunked",
        "Transfer-Encoding: identity", "Transfer-Encoding: chunked, identity", "Transfer-Encoding: CHUNKED", "Transfer-Encoding:",
        "Host:", "Host: www.example.test", "Host: api.example.test", "Expect: 100-continue", "Expect: 200-ok",
        "Connection: close, upgrade", "Connection: keep-alive, te, host", "Connection: content-length", "Connection: transfer-encoding",
        "Accept-Encoding: gzip;q=0, *", "Accept-Encoding: *", "Accept-Encoding: gzip;q=abc", "Accept-Encoding: " + String(repeating: "gzip,", count: 200),
        "X-Request-ID: \u{7F}\u{1}", "X-Request-ID: " + String(repeating: "r", count: 500), ":", ": v", " leading: v", "Name\u{0}: v",
        "Content-Type: text/plain", "Trailer: Content-Length", "TE: chunked", "Upgrade: h2c", "Keep-Alive: timeout=1",
        "X-Internal: 1", "X-Forwarded-For: " + String(repeating: "1.2.3.4, ", count: 100), "Via: \u{FF}\u{FE}", "Range: bytes=0-1",
        "If-None-Match: *", "Cache-Control: no-transform", "User-Agent: SQLMAP", "Cookie: " + String(repeating: "a=b; ", count: 300),
        "X-Long: " + String(repeating: "L", count: 4000), "\tfolded: x", "X-Tab:\tv\t", "X-Empty:",
    ]
    static let chunkSizes = ["FFFFFFFFFFFFFFFF", "-1", "100000000", "7fffffffffffffff", "0x10", "+5", " 5", "5 ", "", "18446744073709551616",
                             "ffffffffffffffffff", "0000000000000000000005", "g", "0", "00", "1", "10000", "12345678901234567890",
                             "8000000000000000", "\u{FF}"]
    static let chunkExtensions = [";", ";a=b", ";a=\"b\"", ";a=\"b", ";\r", String(repeating: ";x", count: 3000), "; a = b ", ";\u{0}",
                                  ";=", ";a=\"\\\"\""]
    static let specialBytes: [UInt8] = [0x0D, 0x0A, 0x00, 0x20, 0x09, 0x3A, 0x7F, 0x80, 0xC0, 0xFF, 0x3B, 0x2C, 0x22, 0x5C, 0x0B, 0x0C]
    static let specialRuns = ["\r\n", "\n", "\r", "\r\n\r\n", " ", "\t", "\r\n ", "\n\n", "\0\r\n", "\r\r\n"]

    mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func pick<T>(_ a: [T]) -> T { a[int(0...(a.count - 1))] }
    mutating func position(in b: [UInt8]) -> Int { b.isEmpty ? 0 : int(0...b.count) }

    mutating func makeId() -> Int {
        nextId += 1
        return nextId
    }

    /// Units worth `inputs` inputs: ~70 % fresh plain connections, ~22 % fresh PROXY-listener connections, the rest
    /// keep-alive sequences of 3–8 inputs (a quarter of those on the PROXY listener, after one valid PROXY header); about
    /// a third of all inputs end up on keep-alive connections.
    mutating func units(inputs: Int) -> [FuzzUnit] {
        var out = [FuzzUnit]()
        var count = 0
        while count < inputs {
            let roll = int(0...99)
            if roll < 70 {
                out.append(FuzzUnit(cases: [plainCase()], keepAlive: false))
                count += 1
            } else if roll < 92 {
                out.append(FuzzUnit(cases: [proxyCase()], keepAlive: false))
                count += 1
            } else {
                let n = min(int(3...8), max(1, inputs - count))
                let onProxy = chance(0.25)
                var cases = [FuzzCase]()
                for k in 0..<n {
                    var c = plainCase(allowHalfClose: k == n - 1)
                    if onProxy {
                        c.listener = .proxy
                        if k == 0 {
                            c.bytes = validProxyHeader() + c.bytes
                            c.label = "valid PROXY + " + c.label
                            c.cuts = []
                        }
                    }
                    c.label = "keep-alive \(k + 1)/\(n): " + c.label
                    cases.append(c)
                }
                out.append(FuzzUnit(cases: cases, keepAlive: true))
                count += n
            }
        }
        return out
    }

    /// Incomplete inputs: a strict prefix of a request (mutated or not), or a PROXY header cut short, or a valid PROXY
    /// header and a request cut short.
    mutating func slowCases(count: Int) -> [FuzzCase] {
        (0..<count).map { _ in
            var base = Array(pick(Self.corpus.filter { !$0.name.hasPrefix("pipelined") }).text.utf8)
            var label = "incomplete"
            if chance(0.3) { label += " " + mutate(&base) }
            let cut = int(1...max(1, base.count - 1))
            var bytes = Array(base.prefix(cut))
            label += " cut@\(cut)"
            var listener = FuzzListener.plain
            if chance(0.3) {
                listener = .proxy
                let header = validProxyHeader()
                if chance(0.5) {
                    let hcut = int(1...(header.count - 1))
                    bytes = Array(header.prefix(hcut))
                    label = "PROXY header cut@\(hcut)"
                } else {
                    bytes = header + bytes
                    label = "valid PROXY + " + label
                }
            }
            return FuzzCase(id: makeId(), listener: listener, bytes: bytes, halfClose: false, label: "slow: " + label)
        }
    }

    /// Consecutive units holding about `size` inputs each.
    static func batches(_ units: [FuzzUnit], size: Int) -> [[FuzzUnit]] {
        var out = [[FuzzUnit]]()
        var current = [FuzzUnit]()
        var n = 0
        for u in units {
            current.append(u)
            n += u.cases.count
            if n >= size {
                out.append(current)
                current = []
                n = 0
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// A mutated request (or, now and then, garbage) for the plain listener.
    mutating func plainCase(allowHalfClose: Bool = true) -> FuzzCase {
        let (bytes, label) = mutatedRequest()
        var c = FuzzCase(id: makeId(), listener: .plain, bytes: bytes, halfClose: false, label: label)
        cutAndClose(&c, allowClose: allowHalfClose, within: bytes.count)
        return c
    }

    /// Now and then: send in pieces (one cut, 5 ms apart, or a trickle of up to 12 pieces, 1 ms apart; cuts mostly in the
    /// first `within` bytes), then half-close, or reset the connection from the client side soon after sending.
    mutating func cutAndClose(_ c: inout FuzzCase, allowClose: Bool, within: Int) {
        let n = c.bytes.count
        if n > 1 {
            let roll = int(0...99)
            if roll < 10 {
                c.cuts = [int(1...max(1, min(n - 1, within)))]
            } else if roll < 16 {
                c.cuts = Array(Set((0..<int(2...12)).map { _ in int(1...max(1, min(n - 1, within))) })).sorted()
            }
            if !c.cuts.isEmpty { c.label += " (pieces \(c.cuts))" }
        }
        guard allowClose else { return }
        let roll = int(0...99)
        if roll < 25 {
            c.halfClose = true
            c.label += " (half-close)"
        } else if roll < 31 {
            c.abortAfterMs = pick([0, 0, 1, 2, 5, 10, 20])
            c.label += " (client reset after \(c.abortAfterMs!) ms)"
        }
    }

    /// A request with 1–4 mutations, a splice of two requests, or random garbage.
    mutating func mutatedRequest() -> ([UInt8], String) {
        let roll = int(0...99)
        if roll < 4 {
            let n = int(1...600)
            return ((0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }, "random \(n) bytes")
        }
        if roll < 7 {
            let alphabet = Array("GETPOST /HTTP1.:\r\n abcxyz0123456789-".utf8)
            let n = int(1...400)
            return ((0..<n).map { _ in alphabet[int(0...(alphabet.count - 1))] }, "random text \(n) bytes")
        }
        if roll < 11 {
            let a = pick(Self.corpus), b = pick(Self.corpus)
            let ab = Array(a.text.utf8), bb = Array(b.text.utf8)
            let cut = position(in: ab), from = position(in: bb)
            return (Array(ab[0..<cut]) + Array(bb[from...]), "splice \(a.name)[..<\(cut)] + \(b.name)[\(from)...]")
        }
        let base = pick(Self.corpus)
        var bytes = Array(base.text.utf8)
        var ops = [String]()
        if roll < 15 {
            return (bytes, base.name + " (unmutated)")
        }
        let count = pick([1, 1, 1, 1, 1, 2, 2, 2, 3, 4])
        for _ in 0..<count {
            ops.append(mutate(&bytes))
        }
        return (bytes, base.name + ": " + ops.joined(separator: ", "))
    }

    /// One mutation in place; returns its name.
    mutating func mutate(_ b: inout [UInt8]) -> String {
        switch int(0...23) {
        case 0:
            guard !b.isEmpty else { return "noop" }
            let i = int(0...(b.count - 1))
            b[i] = UInt8.random(in: 0...255, using: &rng)
            return "byte@\(i)"
        case 1:
            guard !b.isEmpty else { return "noop" }
            let i = int(0...(b.count - 1))
            b[i] ^= 1 << UInt8(int(0...7))
            return "bitflip@\(i)"
        case 2, 3:
            let i = position(in: b)
            let x = pick(Self.specialBytes)
            b.insert(x, at: i)
            return String(format: "insert 0x%02X@%d", x, i)
        case 4:
            let i = position(in: b)
            let s = pick(Self.specialRuns)
            b.insert(contentsOf: Array(s.utf8), at: i)
            return "insert \(s.debugDescription)@\(i)"
        case 5:
            guard !b.isEmpty else { return "noop" }
            let i = int(0...(b.count - 1))
            let n = min(b.count - i, int(1...16))
            b.removeSubrange(i..<(i + n))
            return "delete \(n)@\(i)"
        case 6:
            let i = position(in: b)
            b.removeSubrange(i...)
            return "truncate@\(i)"
        case 7:
            return duplicateHeaderLine(&b)
        case 8:
            return swapHeaderLines(&b)
        case 9:
            guard b.count > 2 else { return "noop" }
            let i = int(0...(b.count - 2))
            let n = min(b.count - i, int(1...64))
            let piece = Array(b[i..<(i + n)])
            let at = position(in: b)
            b.insert(contentsOf: piece, at: at)
            return "dup \(n)@\(i)->\(at)"
        case 10:
            return replaceChunkSize(&b)
        case 11:
            return addChunkExtension(&b)
        case 12:
            let n = pick([100, 1000, 4000, 5000, 8200, 9000, 12_000])
            let at = headEnd(b).map { int(0...$0) } ?? position(in: b)
            b.insert(contentsOf: [UInt8](repeating: UInt8(ascii: pick(["A", "%", " ", "/", ":", "a"])), count: n), at: at)
            return "overlong \(n)@\(at)"
        case 13:
            return replaceRequestLineToken(&b, index: 0, with: pick(Self.methods), name: "method")
        case 14:
            return replaceRequestLineToken(&b, index: 2, with: pick(Self.versions), name: "version")
        case 15:
            return replaceRequestLineToken(&b, index: 1, with: pick(Self.targets), name: "target")
        case 16:
            return insertHeaderLine(&b, pick(Self.headerLines))
        case 17:
            return insertHeaderLine(&b, "Host: " + pick(Self.hosts))
        case 18:
            let before = b.count
            b.removeAll { $0 == 0x0D }
            return "bare LF (\(before - b.count) CR removed)"
        case 19:
            return deleteHeaderLine(&b)
        case 21:
            // The test origin answers /status/N with status N: odd statuses from the origin (never a 5xx here, those
            // would be the origin's own).
            return replaceRequestLineToken(&b, index: 1, with: "/status/" + pick(Self.originStatuses), name: "origin status")
        case 22:
            // The test origin copies ?type= into its Content-Type line unescaped: malformed, split or extra origin
            // response headers.
            let target = pick(["/text/40", "/text/3000", "/bytes/500", "/echo"]) + "?type=" + pick(Self.originTypes)
            return replaceRequestLineToken(&b, index: 1, with: target, name: "origin header")
        case 20:
            // A pipelined second request, itself possibly mangled.
            var second = Array(pick(Self.corpus).text.utf8)
            let op = chance(0.5) ? mutate(&second) : "intact"
            b += second
            return "append request (\(op))"
        default:
            let i = position(in: b)
            let s = pick([":", ": ", " :", "\r\n:", "\r\n\r\n", "HTTP/1.1", "0\r\n\r\n", "\r\nContent-Length: 1\r\n", "\r\nTransfer-Encoding: chunked\r\n"])
            b.insert(contentsOf: Array(s.utf8), at: i)
            return "insert \(s.debugDescription)@\(i)"
        }
    }

    /// Offset of the blank line ending the head (the index of its "\r\n\r\n"), if any.
    func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 0x0D && b[i + 1] == 0x0A && b[i + 2] == 0x0D && b[i + 3] == 0x0A { return i }
        return nil
    }

    /// Ranges of the header lines (without their CRLF), between the request line and the blank line.
    func headerLineRanges(_ b: [UInt8]) -> [Range<Int>] {
        guard let end = headEnd(b) else { return [] }
        var starts = [Int]()
        var i = 0
        while i + 1 < end + 2 {
            if b[i] == 0x0D && b[i + 1] == 0x0A { starts.append(i + 2) }
            i += 1
        }
        var out = [Range<Int>]()
        for (k, s) in starts.enumerated() {
            let e = k + 1 < starts.count ? starts[k + 1] - 2 : end
            if s < e { out.append(s..<e) }
        }
        return out
    }

    mutating func duplicateHeaderLine(_ b: inout [UInt8]) -> String {
        let lines = headerLineRanges(b)
        guard !lines.isEmpty else { return "noop" }
        let r = pick(lines)
        b.insert(contentsOf: Array(b[r]) + [0x0D, 0x0A], at: r.lowerBound)
        return "dup header \(String(decoding: b[r.lowerBound..<min(r.upperBound, r.lowerBound + 24)], as: UTF8.self).debugDescription)"
    }

    mutating func deleteHeaderLine(_ b: inout [UInt8]) -> String {
        let lines = headerLineRanges(b)
        guard !lines.isEmpty else { return "noop" }
        let r = pick(lines)
        let name = String(decoding: b[r.lowerBound..<min(r.upperBound, r.lowerBound + 20)], as: UTF8.self)
        b.removeSubrange(r.lowerBound..<min(b.count, r.upperBound + 2))
        return "drop header \(name.debugDescription)"
    }

    mutating func swapHeaderLines(_ b: inout [UInt8]) -> String {
        let lines = headerLineRanges(b)
        guard lines.count >= 2 else { return "noop" }
        let x = int(0...(lines.count - 2))
        let r1 = lines[x], r2 = lines[x + 1]
        let a = Array(b[r1]), c = Array(b[r2])
        b.replaceSubrange(r1.lowerBound..<r2.upperBound, with: c + [0x0D, 0x0A] + a)
        return "swap headers \(x),\(x + 1)"
    }

    mutating func insertHeaderLine(_ b: inout [UInt8], _ line: String) -> String {
        let lines = headerLineRanges(b)
        let at: Int
        if let r = lines.isEmpty ? nil : pick(lines) {
            at = r.lowerBound
        } else if let end = headEnd(b) {
            at = end + 2
        } else {
            b += Array((line + "\r\n").utf8)
            return "append header \(String(line.prefix(30)).debugDescription)"
        }
        b.insert(contentsOf: Array((line + "\r\n").utf8), at: at)
        return "header \(String(line.prefix(30)).debugDescription)"
    }

    /// Replaces the method (0), target (1) or version (2) of the request line.
    mutating func replaceRequestLineToken(_ b: inout [UInt8], index: Int, with value: String, name: String) -> String {
        guard let lineEnd = b.firstIndex(of: 0x0D) ?? b.firstIndex(of: 0x0A) else { return "noop" }
        guard let s1 = b[0..<lineEnd].firstIndex(of: 0x20) else { return "noop" }
        let s2 = b[(s1 + 1)..<lineEnd].lastIndex(of: 0x20) ?? lineEnd
        let range: Range<Int>
        switch index {
        case 0: range = 0..<s1
        case 1: range = (s1 + 1)..<max(s1 + 1, s2)
        default: range = min(s2 + 1, lineEnd)..<lineEnd
        }
        b.replaceSubrange(range, with: Array(value.utf8))
        return "\(name) \(String(value.prefix(30)).debugDescription)"
    }

    /// Chunk-size lines (hex digits, maybe an extension) after the head.
    func chunkSizeLines(_ b: [UInt8]) -> [Range<Int>] {
        guard let end = headEnd(b) else { return [] }
        var out = [Range<Int>]()
        var start = end + 4
        var i = start
        while i + 1 < b.count {
            if b[i] == 0x0D && b[i + 1] == 0x0A {
                var j = start
                while j < i, let c = Optional(b[j]), (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66) { j += 1 }
                if j > start && (j == i || b[j] == 0x3B) { out.append(start..<j) }
                start = i + 2
                i += 2
                continue
            }
            i += 1
        }
        return out
    }

    mutating func replaceChunkSize(_ b: inout [UInt8]) -> String {
        let lines = chunkSizeLines(b)
        guard !lines.isEmpty else { return "noop" }
        let r = pick(lines)
        let v = pick(Self.chunkSizes)
        b.replaceSubrange(r, with: Array(v.utf8))
        return "chunk size \(v.debugDescription)"
    }

    mutating func addChunkExtension(_ b: inout [UInt8]) -> String {
        let lines = chunkSizeLines(b)
        guard !lines.isEmpty else { return "noop" }
        let r = pick(lines)
        let e = pick(Self.chunkExtensions)
        b.insert(contentsOf: Array(e.utf8), at: r.upperBound)
        return "chunk ext \(String(e.prefix(12)).debugDescription)"
    }

    // MARK: PROXY protocol

    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    static func v2(command: UInt8 = 0x21, family: UInt8, payload: [UInt8], length: Int? = nil) -> [UInt8] {
        let n = length ?? payload.count
        return v2Signature + [command, family, UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + payload
    }

    static let v1Headers = ["PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", "PROXY TCP6 2001:db8::1 ::1 5555 443\r\n",
                            "PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
                            "PROXY TCP6 ::ffff:198.51.100.2 ::1 1 65535\r\n", "PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n"]

    /// A valid v1 or v2 header.
    mutating func validProxyHeader() -> [UInt8] {
        switch int(0...5) {
        case 0, 1: return Array(pick(Self.v1Headers).utf8)
        case 2: return Self.v2(family: 0x11, payload: [203, 0, 113, 8, 127, 0, 0, 1, 0x15, 0xB3, 0, 80])
        case 3: return Self.v2(family: 0x21, payload: [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
                               + [UInt8](repeating: 0, count: 15) + [1, 0x15, 0xB3, 0x01, 0xBB])
        case 4: return Self.v2(command: 0x20, family: 0x00, payload: [])
        default:
            // TCP4 with TLVs: ALPN, authority, CRC32C, NOOP, unique id, SSL with a sub-TLV.
            var tlv = [UInt8]()
            tlv += [0x01, 0, 2] + Array("h2".utf8)
            tlv += [0x02, 0, 16] + Array("www.example.test".utf8)
            tlv += [0x03, 0, 4, 1, 2, 3, 4]
            tlv += [0x04, 0, 3, 0, 0, 0]
            tlv += [0x05, 0, 8] + Array("uniqueid".utf8)
            tlv += [0x20, 0, 12, 0x01, 0, 0, 0, 0, 0x21, 0, 4] + Array("TLS1".utf8)
            return Self.v2(family: 0x11, payload: [198, 51, 100, 9, 127, 0, 0, 1, 0x30, 0x39, 0, 80] + tlv)
        }
    }

    /// An input for the PROXY protocol listener.
    mutating func proxyCase() -> FuzzCase {
        var header = validProxyHeader()
        var label = header.first == 0x50 ? "v1" : "v2"
        let roll = int(0...99)
        var request = Array(pick(Self.corpus).text.utf8)
        if roll < 55 {
            label += " " + mutateProxy(&header) + " + valid request"
        } else if roll < 80 {
            let (r, l) = mutatedRequest()
            request = r
            label += " valid + " + l
        } else if roll < 90 {
            label += " " + mutateProxy(&header)
            let (r, l) = mutatedRequest()
            request = r
            label += " + " + l
        } else {
            header = []
            let (r, l) = mutatedRequest()
            request = r
            label = "no PROXY header + " + l
        }
        let bytes = header + request
        var c = FuzzCase(id: makeId(), listener: .proxy, bytes: bytes, halfClose: false, label: label)
        cutAndClose(&c, allowClose: true, within: header.isEmpty ? bytes.count : min(bytes.count, header.count + 40))
        return c
    }

    mutating func mutateProxy(_ h: inout [UInt8]) -> String {
        let isV1 = h.first == 0x50
        var ops = [String]()
        for _ in 0..<int(1...3) {
            switch int(0...11) {
            case 0:
                guard !h.isEmpty else { continue }
                let i = int(0...(h.count - 1))
                h[i] = UInt8.random(in: 0...255, using: &rng)
                ops.append("byte@\(i)")
            case 1:
                let i = int(0...h.count)
                h.removeSubrange(i...)
                ops.append("truncate@\(i)")
            case 2:
                let i = int(0...h.count)
                h.insert(pick(Self.specialBytes), at: i)
                ops.append("insert@\(i)")
            case 3 where isV1:
                let fields = ["256.1.1.1", "1.2.3", "01.2.3.4", "::ffff:1.2.3.4", "0", "99999", "-1", "", "::", ":::",
                              "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", "1.2.3.4.5", "65536", "00080", String(repeating: "9", count: 60)]
                var parts = h.split(separator: 0x20, omittingEmptySubsequences: false).map(Array.init)
                guard parts.count > 1 else { continue }
                let k = int(1...(parts.count - 1))
                let v = pick(fields)
                let keepsCRLF = parts[k].suffix(2) == [0x0D, 0x0A]
                parts[k] = Array(v.utf8) + (keepsCRLF ? [0x0D, 0x0A] : [])
                h = Array(parts.joined(separator: [0x20]))
                ops.append("field\(k)=\(v.debugDescription)")
            case 4 where isV1:
                let crlf = h.count >= 2 && h.suffix(2) == [0x0D, 0x0A]
                if crlf { h.removeLast(2) }
                let pad = int(60...200)
                h += [UInt8](repeating: 0x20, count: pad) + (crlf ? [0x0D, 0x0A] : [])
                ops.append("overlong +\(pad)")
            case 5 where isV1:
                h = Array(String(decoding: h, as: UTF8.self).replacingOccurrences(of: "PROXY", with: pick(["proxy", "PROXY  ", "PROX", "PROXYY"])).utf8)
                ops.append("keyword")
            case 6 where isV1:
                h.removeAll { $0 == 0x0D }
                ops.append("LF only")
            case 7 where !isV1 && h.count >= 16:
                let n = pick([0, 1, 11, 12, 13, 35, 36, 215, 216, 4096, 4097, 0xFFFF, h.count - 16 + 1, max(0, h.count - 17)])
                h[14] = UInt8((n >> 8) & 0xFF)
                h[15] = UInt8(n & 0xFF)
                ops.append("v2 length \(n)")
            case 8 where !isV1 && h.count >= 14:
                h[12] = pick([0x20, 0x21, 0x22, 0x2F, 0x11, 0x31, 0x00, 0xFF, UInt8.random(in: 0...255, using: &rng)])
                ops.append(String(format: "v2 ver/cmd 0x%02X", h[12]))
            case 9 where !isV1 && h.count >= 14:
                h[13] = pick([0x00, 0x10, 0x11, 0x12, 0x13, 0x21, 0x22, 0x31, 0x32, 0x41, 0xFF, UInt8.random(in: 0...255, using: &rng)])
                ops.append(String(format: "v2 family 0x%02X", h[13]))
            case 10 where !isV1:
                let n = int(1...300)
                h += (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if h.count >= 16 {
                    let len = h.count - 16
                    h[14] = UInt8((len >> 8) & 0xFF)
                    h[15] = UInt8(len & 0xFF)
                }
                ops.append("v2 +\(n) TLV bytes")
            default:
                // Two headers, or the v1/v2 forms mixed.
                let other = validProxyHeader()
                h = chance(0.5) ? h + other : Array(other.prefix(int(0...other.count))) + h
                ops.append("two headers")
            }
        }
        return ops.isEmpty ? "intact" : ops.joined(separator: ", ")
    }
}

// MARK: Reading answers

/// One response found in what the edge sent.
struct ParsedReply: Sendable {
    var status: Int
    var head: [UInt8]
    var bodyPrefix: [UInt8]

    /// The origin's own answer passed through: edge_origin.py's (X-Origin), or Python http.server's error page
    /// (send_error: `text/html;charset=utf-8`, e.g. 501 for a method it has no handler for). The edge's own answers are
    /// `text/plain; charset=utf-8` without X-Origin.
    var isFromOrigin: Bool {
        let lines = String(decoding: head, as: UTF8.self).lowercased().components(separatedBy: "\r\n")
        return lines.contains { $0.hasPrefix("x-origin:") }
            || lines.contains { $0.hasPrefix("content-type:") && $0.contains("text/html;charset=utf-8") }
    }
}

/// A tolerant parser of a stream of HTTP/1.x responses (interim 1xx, Content-Length, chunked, read-to-close bodies).
enum ReplyParser {
    struct Result {
        var replies: [ParsedReply] = []
        /// At least one final response, and nothing partial after the last.
        var complete = false
        var malformed: String?
    }

    static func find(_ b: [UInt8], _ pattern: [UInt8], from: Int) -> Int? {
        guard b.count >= pattern.count, from <= b.count - pattern.count else { return nil }
        var i = from
        while i <= b.count - pattern.count {
            if b[i] == pattern[0] {
                var ok = true
                for j in 1..<pattern.count where b[i + j] != pattern[j] { ok = false; break }
                if ok { return i }
            }
            i += 1
        }
        return nil
    }

    static let crlf: [UInt8] = [0x0D, 0x0A]
    static let blank: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
    static let httpPrefix = Array("HTTP/".utf8)

    enum StatusCheck { case ok(Int), bad(String) }

    /// Checks the status line `HTTP/1.x DDD[ reason]`; returns the code or a reason it is not one.
    static func statusCode(_ line: ArraySlice<UInt8>) -> StatusCheck {
        let l = Array(line)
        guard l.count >= 12 else { return .bad("status line too short") }
        guard Array(l[0..<7]) == Array("HTTP/1.".utf8), l[7] == 0x30 || l[7] == 0x31, l[8] == 0x20 else {
            return .bad("not an HTTP/1.0 or HTTP/1.1 status line")
        }
        let digits = l[9..<12]
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return .bad("status code is not 3 digits") }
        guard l.count == 12 || l[12] == 0x20 else { return .bad("status code not followed by a space") }
        return .ok(digits.reduce(0) { $0 * 10 + Int($1 - 0x30) })
    }

    /// Parses what arrived so far. `headRequest`: the input holds a HEAD request, so an answer may have a
    /// Content-Length or chunked framing but no body; the stream is read both ways and the reading that fits is kept.
    static func parse(_ b: [UInt8], atEOF: Bool, headRequest: Bool = false) -> Result {
        let plain = parse(b, atEOF: atEOF, bodylessHint: false)
        guard headRequest, plain.malformed != nil || !plain.complete else { return plain }
        let bodyless = parse(b, atEOF: atEOF, bodylessHint: true)
        return bodyless.malformed == nil ? bodyless : plain
    }

    /// `bodylessHint`: an answer followed by nothing, or at once by another status line, has no body (HEAD).
    private static func parse(_ b: [UInt8], atEOF: Bool, bodylessHint: Bool) -> Result {
        var r = Result()
        var pos = 0
        var sawFinal = false
        while pos < b.count {
            // A response must start here.
            let prefixLength = min(httpPrefix.count, b.count - pos)
            guard Array(b[pos..<(pos + prefixLength)]) == Array(httpPrefix.prefix(prefixLength)) else {
                r.malformed = r.replies.isEmpty ? "reply does not start with HTTP/" : "bytes after a complete response"
                return r
            }
            guard let lineEnd = find(b, crlf, from: pos) else {
                if atEOF { r.malformed = "connection closed inside a status line" }
                return r
            }
            guard case .ok(let status) = statusCode(b[pos..<lineEnd]) else {
                if case .bad(let why) = statusCode(b[pos..<lineEnd]) { r.malformed = why }
                return r
            }
            guard let headEnd = find(b, blank, from: lineEnd) else {
                r.complete = false
                return r
            }
            let head = Array(b[pos..<headEnd])
            var contentLength: Int?
            var chunked = false
            for line in String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if name == "content-length" { contentLength = Int(value) }
                if name == "transfer-encoding" && value.lowercased().contains("chunked") { chunked = true }
            }
            var body = headEnd + 4
            var reply = ParsedReply(status: status, head: head, bodyPrefix: [])
            if status < 200 || status == 204 || status == 304 {
                r.replies.append(reply)
                pos = body
                if status >= 200 { sawFinal = true }
                r.complete = sawFinal
                continue
            }
            sawFinal = true
            let nextHere = b.count - body >= 5 && Array(b[body..<(body + 5)]) == httpPrefix
            if bodylessHint && (body == b.count || nextHere) {
                r.replies.append(reply)
                pos = body
                r.complete = true
                continue
            }
            if chunked {
                var cursor = body
                var done = false
                var bodyBytes = [UInt8]()
                while true {
                    guard let e = find(b, crlf, from: cursor) else { break }
                    let sizeText = String(decoding: b[cursor..<e], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
                    guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                        r.malformed = "bad chunk size line in a response: \(sizeText.debugDescription)"
                        return r
                    }
                    if size == 0 {
                        // Trailers up to the blank line.
                        var t = e + 2
                        var ended = false
                        while let te = find(b, crlf, from: t) {
                            if te == t { ended = true; t += 2; break }
                            t = te + 2
                        }
                        if ended { cursor = t; done = true }
                        break
                    }
                    guard e + 2 + size + 2 <= b.count else { break }
                    if bodyBytes.count < 600 { bodyBytes += b[(e + 2)..<min(e + 2 + size, e + 2 + 600)] }
                    cursor = e + 2 + size + 2
                }
                reply.bodyPrefix = Array(bodyBytes.prefix(600))
                r.replies.append(reply)
                guard done else { r.complete = false; return r }
                pos = cursor
            } else if let n = contentLength {
                // A HEAD answer has a Content-Length but no body: the next response may start right after its head.
                let bodyThenNext = body + n == b.count || (body + n < b.count && b[body + n] == UInt8(ascii: "H"))
                if n > 0 && nextHere && !(body + n <= b.count && bodyThenNext) {
                    // Bodyless (HEAD).
                } else if body + n <= b.count {
                    reply.bodyPrefix = Array(b[body..<min(body + n, body + 600)])
                    body += n
                } else {
                    reply.bodyPrefix = Array(b[body..<min(b.count, body + 600)])
                    r.replies.append(reply)
                    r.complete = false
                    return r
                }
                r.replies.append(reply)
                pos = body
            } else {
                // Read to close.
                reply.bodyPrefix = Array(b[body..<min(b.count, body + 600)])
                r.replies.append(reply)
                r.complete = atEOF
                return r
            }
            r.complete = true
        }
        r.complete = sawFinal && r.complete
        return r
    }
}

// MARK: Printing

enum FuzzText {
    /// Bytes as a readable escaped string; runs of one byte longer than 16 are shortened to `<'A' x 9000>`.
    static func escaped(_ bytes: [UInt8], limit: Int = 1500) -> String {
        var s = "\""
        var i = 0
        var shown = 0
        while i < bytes.count && shown < limit {
            var run = 1
            while i + run < bytes.count && bytes[i + run] == bytes[i] { run += 1 }
            if run > 16 {
                s += "<\(escapeByte(bytes[i])) x \(run)>"
                i += run
                shown += 12
                continue
            }
            s += escapeByte(bytes[i])
            i += 1
            shown += 1
        }
        s += "\""
        if i < bytes.count { s += "… (\(bytes.count) bytes in all)" }
        return s
    }

    static func escapeByte(_ b: UInt8) -> String {
        switch b {
        case 0x0D: return "\\r"
        case 0x0A: return "\\n"
        case 0x09: return "\\t"
        case 0x5C: return "\\\\"
        case 0x22: return "\\\""
        case 0x20...0x7E: return String(UnicodeScalar(b))
        default: return String(format: "\\x%02x", b)
        }
    }

    /// A Python bytes literal of the whole input (for replaying by hand).
    static func python(_ bytes: [UInt8]) -> String {
        "b\"" + bytes.map(escapeByte).joined() + "\""
    }
}

/// The fatal error line and the crashed thread's frames from an edge log with a Swift backtrace.
struct EdgeCrashReport {
    var fatalLine: String?
    var frames: [String]

    init(log: String) {
        let lines = log.components(separatedBy: "\n")
        let fatal = lines.last { $0.contains("Fatal error") || $0.contains("fatal error") || $0.contains("Precondition failed")
            || $0.contains("Assertion failed") }
        let crashed = lines.last { $0.contains("Program crashed") || $0.contains("💣") }
        let both = [fatal, crashed].compactMap { $0?.trimmingCharacters(in: .whitespaces) }
        fatalLine = both.isEmpty ? nil : both.joined(separator: " / ")
        var frames = [String]()
        if let start = lines.lastIndex(where: { $0.contains("crashed:") }) {
            for l in lines[(start + 1)...] {
                if l.trimmingCharacters(in: .whitespaces).isEmpty && !frames.isEmpty { break }
                if !l.trimmingCharacters(in: .whitespaces).isEmpty { frames.append(l) }
                if frames.count >= 30 { break }
            }
        }
        self.frames = frames
    }
}
