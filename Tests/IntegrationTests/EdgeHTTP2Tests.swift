import Foundation
import XCTest

/// HTTP/2 to clients (issue 15 item 2): h2c with prior knowledge beside HTTP/1.1 on one cleartext listener, h2 by ALPN
/// on TLS, the same exchange core (routing, cache, headers) per stream, h2load without errors, and the attack defences
/// tested with a raw client (PyPI `h2`) while a second client keeps being served.
final class EdgeHTTP2Tests: EdgeTestCase {
    private func curl(_ arguments: [String]) throws -> CommandResult {
        guard let curl = IntegrationEnvironment.which("curl") else { throw IntegrationError("curl not found") }
        return try runCommand(curl, ["-sS", "--max-time", "10"] + arguments, timeout: 15, currentDirectory: workFolder)
    }

    /// An edge whose cleartext listener takes HTTP/1.1 and h2c; `/cache/` is a caching route.
    private func startH2CEdge(proxy: [String: Any] = [:], originDelayMs: Int = 0) throws -> (EdgeNode, EdgeOrigin) {
        let origin = try startOrigin("o1", delayMs: originDelayMs)
        let edge = try startEdge(pools: ["web": pool([origin])],
                                 routes: [route(pathPrefix: "/cache/", extra: ["cache": ["enabled": true]]), route()],
                                 proxy: proxy) { t in
            Self.acceptH2C(&t)
        }
        return (edge, origin)
    }

    /// `curl --http2-prior-knowledge` and plain HTTP/1.1 on the same port, told apart by the preface; the request
    /// reaches the origin as HTTP/1.1 with the edge's headers; a cached object is a HIT over h2.
    func test_h2cPriorKnowledgeAndHTTP1ShareTheListener() throws {
        let (edge, _) = try startH2CEdge()
        let h2 = try curl(["--http2-prior-knowledge", "-H", "Host: www.example.test", "-w", "\n%{http_version}",
                           "http://127.0.0.1:\(edge.port)/echo?p=h2"])
        XCTAssertEqual(h2.status, 0, h2.stderr)
        let lines = h2.stdout.split(separator: "\n")
        XCTAssertEqual(lines.last, "2", "HTTP/2 was used: \(h2.stdout)")
        let echo = (try? JSONSerialization.jsonObject(with: Data(lines.dropLast().joined(separator: "\n").utf8))) as? [String: Any]
        XCTAssertEqual(echo?["path"] as? String, "/echo?p=h2", h2.stdout)
        XCTAssertEqual(echo?["version"] as? String, "HTTP/1.1", "the origin is spoken to in HTTP/1.1: \(h2.stdout)")
        let headers = (echo?["headers"] as? [[String]] ?? []).map { ($0[0].lowercased(), $0[1]) }
        XCTAssertTrue(headers.contains { $0.0 == "host" && $0.1 == "www.example.test" }, ":authority became Host: \(headers)")
        XCTAssertTrue(headers.contains { $0.0 == "x-forwarded-for" }, "\(headers)")
        let h1 = try curl(["--http1.1", "-H", "Host: www.example.test", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                           "http://127.0.0.1:\(edge.port)/echo"])
        XCTAssertEqual(h1.stdout, "1.1 200", h1.stderr)
        var cacheHeaders = [String]()
        for _ in 0..<2 {
            let r = try curl(["--http2-prior-knowledge", "-H", "Host: www.example.test", "-D", "-", "-o", "/dev/null",
                              "http://127.0.0.1:\(edge.port)/cache/h2?cc=max-age%3D60"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.hasPrefix("HTTP/2 200"), r.stdout)
            XCTAssertFalse(r.stdout.lowercased().contains("connection:"), "no connection-specific field in h2: \(r.stdout)")
            cacheHeaders.append(r.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-cache:") }.map(String.init) ?? "-")
        }
        XCTAssertEqual(cacheHeaders, ["x-cache: MISS", "x-cache: HIT"], "cache over h2")
        let metrics = try EdgeHTTP.get(port: edge.ports.admin, "/metrics", host: "admin").text
        XCTAssertTrue(metrics.contains("lodestar_edge_http2_connections_total{edge=\"e1\"} 3"),
                      "\(metrics.split(separator: "\n").filter { $0.contains("http2") })")
    }

    /// A client that finishes and closes its HTTP/2 connection is not kept waiting for the idle timeout: the edge
    /// closes its side at once (the listener allows half-closure, so the client's FIN arrives as an event; left alone
    /// such connections sat in CLOSE-WAIT for a minute).
    func test_aClosedClientConnectionIsClosedAtOnce() throws {
        let (edge, _) = try startH2CEdge()
        let open = { (try edge.status()["stats"] as? [String: Any])?["connections"] as? Int ?? -1 }
        let before = try open()  // (the start-up probe's connection may still be open)
        for _ in 0..<3 {
            let r = try curl(["--http2-prior-knowledge", "-H", "Host: www.example.test", "-o", "/dev/null",
                              "http://127.0.0.1:\(edge.port)/bytes/10"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let took = try eventually(timeout: 5) { try open() <= before }
        let left = try open()
        XCTAssertNotNil(took, "open client connections after the clients left: \(left), before them \(before)")
    }

    /// A connection that never opens a stream is closed at the idle timeout (`proxy.http2.idleTimeoutMs`) with a GOAWAY,
    /// over h2c (the preface sniffed on a shared listener) and over TLS (h2 by ALPN), and so is one whose client
    /// acknowledges nothing (swift-nio-http2's connection manager, used before, waited for a PING's acknowledgement and
    /// kept it until the grace period ended; and it never started its idle timer until a first stream had closed:
    /// such a connection was held until shutdown).
    func test_aConnectionWithoutStreamsIsClosedAtTheIdleTimeout() throws {
        try makeCertificate(key: "a.key", cert: "a.pem", commonName: "a.example.test", san: "DNS:a.example.test")
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()], proxy: ["http2": ["idleTimeoutMs": 1000, "gracefulShutdownMs": 1500]],
                                 tls: ["certificates": [["cert": "a.pem", "key": "a.key", "serverNames": ["a.example.test"]]]]) { t in
            Self.acceptH2C(&t)
        }
        guard let tls = edge.ports.tls else { throw IntegrationError("no TLS port") }
        let cafile = workFolder.appendingPathComponent("a.pem").path
        let cases: [(String, UInt16, [String], ClosedRange<Double>)] = [
            ("h2c", edge.port, [], 0.8...2.5),
            ("h2 over TLS", tls, ["--tls", "a.example.test", cafile], 0.8...2.5),
            // A client that acknowledges nothing: the GOAWAY asks for no acknowledgement, closed the same.
            ("h2c, no acknowledgements", edge.port, ["--no-ack"], 0.8...2.5),
        ]
        for (name, port, extra, expected) in cases {
            let r = try runPythonJSON("h2_idle.py", ["\(port)", "--wait", "6"] + extra, timeout: 20)
            print("h2 idle, \(name): \(r)")
            XCTAssertEqual(r["protocol"] as? String, port == tls ? "h2" : "h2c", name)
            let after = r["closed_after"] as? Double
            XCTAssertNotNil(after, "\(name): still open 6 s after the preface (idleTimeoutMs 1000): \(r)")
            if let after { XCTAssertTrue(expected.contains(after), "\(name): closed after \(after) s, expected \(expected): \(r)") }
            XCTAssertEqual(r["goaway"] as? Bool, true, "\(name): no GOAWAY before the close: \(r)")
        }
    }

    /// A stream whose request never ends: a GET whose HEADERS do not end the stream is answered and reset a second after
    /// its answer has left (RFC 9113 §8.1), a POST whose body stops is answered 408 at `bodyTimeoutMs` and reset, with
    /// or without a content-length; once the clients have gone, no connection is left open. Before the fix the GET's
    /// stream waited for the client's END_STREAM for ever, and the connection with it, even after the client had closed
    /// its socket (the edge's stats still counted both connections open).
    func test_aStreamWhoseRequestNeverEndsIsAnsweredAndReset() throws {
        let (edge, _) = try startH2CEdge(proxy: ["limits": ["bodyTimeoutMs": 1000]])
        let cases: [([String], ClosedRange<Double>)] = [
            (["--get", "/bytes/10", "--unfinished"], 0.9...3),
            (["--post", "/echo", "--length", "100"], 0.9...3),
            (["--post", "/echo"], 0.9...3),
        ]
        for (args, expected) in cases {
            let r = try runPythonJSON("h2_idle.py", ["\(edge.port)", "--wait", "5"] + args, timeout: 20)
            print("h2 unfinished request \(args.joined(separator: " ")): \(r)")
            XCTAssertNotNil(r["answered_after"] as? Double, "\(args): no answer: \(r)")
            let reset = r["reset_after"] as? Double
            XCTAssertNotNil(reset, "\(args): the stream was not reset within 5 s: \(r)")
            if let reset { XCTAssertTrue(expected.contains(reset), "\(args): reset after \(reset) s, expected \(expected)") }
        }
        let open = { (try edge.status()["stats"] as? [String: Any])?["connections"] as? Int ?? -1 }
        XCTAssertNotNil(eventually(timeout: 3) { (try? open()) == 0 }, "connections left open after the clients went: \((try? open()) ?? -1)")
    }

    /// A TLS listener offers h2 and http/1.1 by ALPN: curl --http2 gets HTTP/2, --http1.1 gets HTTP/1.1.
    func test_tlsListenerNegotiatesH2ByALPN() throws {
        try makeCertificate(key: "a.key", cert: "a.pem", commonName: "a.example.test", san: "DNS:a.example.test")
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()],
                                 tls: ["certificates": [["cert": "a.pem", "key": "a.key", "serverNames": ["a.example.test"]]]])
        guard let port = edge.ports.tls else { throw IntegrationError("no TLS port") }
        for (flag, want) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let c = try curl([flag, "--cacert", "a.pem", "--resolve", "a.example.test:\(port):127.0.0.1", "-o", "/dev/null",
                              "-w", "%{http_version} %{http_code}", "https://a.example.test:\(port)/echo"])
            XCTAssertEqual(c.stdout, "\(want) 200", "\(flag): \(c.stderr)")
        }
    }

    /// h2load with 10 connections of 10 streams each: every request succeeds.
    func test_h2loadCompletesWithoutErrors() throws {
        guard let h2load = IntegrationEnvironment.which("h2load") else { throw IntegrationError("h2load not found (nghttp2-client)") }
        let (edge, _) = try startH2CEdge(proxy: ["accessLog": false])
        let r = try runCommand(h2load, ["-n", "20000", "-c", "10", "-m", "10", "-H", "Host: www.example.test",
                                        "http://127.0.0.1:\(edge.port)/cache/load?cc=max-age%3D600"], timeout: 240)
        let summary = r.stdout.split(separator: "\n").first { $0.hasPrefix("requests:") }.map(String.init) ?? r.stdout
        print("h2load: \(summary)")
        XCTAssertTrue(summary.contains("20000 succeeded, 0 failed, 0 errored, 0 timeout"), "\(r.stdout)\n\(r.stderr)")
    }

    /// Each attack ends its connection (GOAWAY, ENHANCE_YOUR_CALM for the floods, then the socket closes) while a
    /// second client's requests all succeed with p99 under 100 ms, and the edge's memory stays bounded.
    func test_attacksEndTheAttackersConnectionAndSpareOthers() throws {
        try requirePythonModules(["h2", "hpack", "hyperframe"])
        let (edge, _) = try startH2CEdge(proxy: ["accessLog": false])
        guard let pid = edge.pid, let rssBefore = EdgeTools.rssKiB(pid: pid) else { throw IntegrationError("no edge pid") }
        var peak = rssBefore
        for attack in ["rapid-reset", "continuation", "settings", "ping", "hpack-bomb", "malformed"] {
            let r = try runPythonJSON("h2_attacks.py", ["\(edge.port)", "www.example.test", attack, "--seconds", "4"], timeout: 60)
            print("h2 attack \(attack): \(r)")
            let goaway = r["goaway"] as? Int
            if attack == "hpack-bomb" {
                // The decoded header list passes maxHeaderListBytes: the connection ends (COMPRESSION_ERROR or
                // PROTOCOL_ERROR) or the stream is refused; the request never reaches the origin.
                XCTAssertTrue(goaway != nil || (r["reset_streams"] as? Int ?? 0) > 0 || (r["status"] as? String) == "431", "\(r)")
            } else if attack == "continuation" {
                XCTAssertNotNil(goaway, "\(attack): no GOAWAY: \(r)")
            } else {
                XCTAssertEqual(goaway, 11, "\(attack): GOAWAY ENHANCE_YOUR_CALM: \(r)")
            }
            if goaway != nil { XCTAssertEqual(r["closed"] as? Bool, true, "\(attack): the edge closed the connection: \(r)") }
            XCTAssertEqual(r["victim_failed"] as? Int, 0, "\(attack): the other client failed: \(r)")
            XCTAssertGreaterThan(r["victim_ok"] as? Int ?? 0, 20, "\(attack): \(r)")
            XCTAssertLessThan(r["victim_p99_ms"] as? Double ?? 1e9, 100, "\(attack): the other client's p99: \(r)")
            peak = max(peak, EdgeTools.rssKiB(pid: pid) ?? 0)
        }
        print("edge RSS: \(rssBefore) KiB before, \(peak) KiB at most during the attacks")
        XCTAssertLessThan(peak - rssBefore, 64 * 1024, "RSS grew by more than 64 MiB")
        XCTAssertTrue(edge.isRunning)
    }

    /// Header sections RFC 9113 §8.2–8.3 calls malformed reset their stream with PROTOCOL_ERROR, whether the lane
    /// or the full path (a body) would take it; the connection goes on, and well-formed ones (`te: trailers`,
    /// trailers after a body) are answered.
    func test_malformedHeaderSectionsResetTheirStreamOnly() throws {
        try requirePythonModules(["h2"])
        let (edge, _) = try startH2CEdge(proxy: ["accessLog": false])
        let r = try runPythonJSON("h2_malformed.py", ["\(edge.port)", "www.example.test"], timeout: 90)
        print("h2 malformed: \(r)")
        for name in ["upper-case-name", "connection", "transfer-encoding", "te-gzip", "cr-in-value", "nul-in-value",
                     "space-in-path", "pseudo-after-regular", "missing-path", "repeated-method", "unknown-pseudo",
                     "status-in-request", "empty-path", "body-upper-case-name", "pseudo-in-trailers"] {
            XCTAssertEqual(r[name] as? String, "reset:1", "\(name): \(r)")
        }
        for name in ["te-trailers", "good-post-trailers", "after"] {
            XCTAssertEqual(r[name] as? String, "status:200", "\(name): \(r)")
        }
        XCTAssertTrue(r["goaway"] is NSNull, "no GOAWAY: \(r)")
        XCTAssertTrue(edge.isRunning)
    }

    /// What `h2_graceful.py` saw: GOAWAY NO_ERROR first, and its stream in flight answered 200 with a body, ended.
    private func assertGracefulGoaway(_ client: ScriptProcess, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(client.waitForEnd(timeout: 15), client.output, file: file, line: line)
        let r = client.lastJSON() ?? [:]
        print("\(label): \(r)")
        XCTAssertEqual((r["goaway"] as? [Int])?.first, 0, "\(label): GOAWAY NO_ERROR: \(client.output)", file: file, line: line)
        XCTAssertEqual(r["status"] as? String, "200", "\(label): the stream in flight was answered: \(client.output)",
                       file: file, line: line)
        XCTAssertEqual(r["ended"] as? Bool, true, client.output, file: file, line: line)
        XCTAssertGreaterThan(r["body_bytes"] as? Int ?? 0, 0, client.output, file: file, line: line)
    }

    /// SIGTERM: the HTTP/2 connection gets a graceful GOAWAY (NO_ERROR) and the request in flight still completes.
    func test_sigtermSendsGoawayAndFinishesTheStreamInFlight() throws {
        try requirePythonModules(["hpack", "hyperframe"])
        let (edge, _) = try startH2CEdge(originDelayMs: 1500)
        try sigtermWithAStreamInFlight(edge, port: edge.port, label: "h2 graceful shutdown")
    }

    /// An h2c client on `port` sends a slow request; once it is at the origin the edge gets SIGTERM: the client sees a
    /// graceful GOAWAY and its answer, and the edge exits once its streams are done.
    private func sigtermWithAStreamInFlight(_ edge: EdgeNode, port: UInt16, label: String,
                                            file: StaticString = #filePath, line: UInt = #line) throws {
        guard let pid = edge.pid else { throw IntegrationError("no edge pid") }
        let client = try ScriptProcess(python: "h2_graceful.py", ["\(port)", "www.example.test", "/echo?slow=1"],
                                       folder: workFolder, name: "h2-graceful-\(port)")
        addTeardownBlock { client.stop() }
        try client.waitFor("sent", timeout: 10)
        usleep(300_000)  // the request is at the origin
        kill(pid, SIGTERM)
        assertGracefulGoaway(client, label, file: file, line: line)
        XCTAssertNotNil(eventually(timeout: 8) { !edge.isRunning }, "the edge exits once its streams are done",
                        file: file, line: line)
    }

    /// SIGTERM of an edge with two listeners: a client of the second one gets the graceful GOAWAY too (the shutdown
    /// tells every open connection, not only those of the first listener) and its stream in flight completes.
    func test_sigtermSendsGoawayOnEveryListener() throws {
        try requirePythonModules(["hpack", "hyperframe"])
        let origin = try startOrigin("o1", delayMs: 1500)
        let second = try freePort()
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()]) { t in
            Self.acceptH2C(&t)
            var edges = t["edges"] as? [[String: Any]] ?? []
            var listen = edges.first?["listen"] as? [Any] ?? []
            listen.append(["address": "127.0.0.1:\(second)", "protocols": ["http/1.1", "h2c"]])
            if !edges.isEmpty { edges[0]["listen"] = listen }
            t["edges"] = edges
        }
        try sigtermWithAStreamInFlight(edge, port: second, label: "h2 graceful shutdown, second listener")
    }

    /// A drain through the admin API (the edge keeps serving while DNS moves users away) sends HTTP/2 clients a
    /// graceful GOAWAY, so they reconnect (and re-resolve) for their next requests; the stream in flight completes.
    func test_drainSendsGoawayToHTTP2Clients() throws {
        try requirePythonModules(["hpack", "hyperframe"])
        let c = try startCluster(probeIntervalMs: 500) { topology in
            var edges = topology["edges"] as? [[String: Any]] ?? []
            for i in edges.indices {
                var listen = edges[i]["listen"] as? [Any] ?? []
                if listen.count > 1, let own = listen[1] as? String {
                    listen[1] = ["address": own, "protocols": ["http/1.1", "h2c"]]
                }
                edges[i]["listen"] = listen
            }
            topology["edges"] = edges
        }
        let eu = try XCTUnwrap(c.edges["edge-eu-central"])
        let client = try ScriptProcess(python: "h2_graceful.py", ["\(eu.ports.http)", "www.example.test",
                                                                  "/cache/slow?ms=1500&cc=no-store"],
                                       folder: workFolder, name: "h2-drain")
        addTeardownBlock { client.stop() }
        try client.waitFor("sent", timeout: 10)
        usleep(300_000)
        let drained = try EdgeHTTP.request(port: eu.ports.admin, "POST", "/drain?reason=test", host: "admin")
        XCTAssertEqual(drained.status, 200, "\(drained)")
        assertGracefulGoaway(client, "h2 drain")
        XCTAssertTrue(eu.isRunning, "a drain keeps the edge running")
    }

    /// Active health checks speak HTTP/2 to an h2c pool: the sample origin (`lodestar origin`, which takes h2c) is
    /// healthy by its `/healthz`, and down once it is killed.
    func test_healthChecksSpeakHTTP2ToH2CPools() throws {
        let port = try freePort()
        let origin = Process()
        origin.executableURL = try IntegrationEnvironment.lodestarBinary()
        origin.arguments = ["origin", "--listen", "127.0.0.1:\(port)", "--name", "h2c-origin"]
        origin.standardOutput = FileHandle.nullDevice
        origin.standardError = FileHandle.nullDevice
        try origin.run()
        addTeardownBlock { stopProcess(origin, grace: 2) }
        XCTAssertNotNil(eventually(timeout: 10) { (try? EdgeConnection(port: port)) != nil })
        let check: [String: Any] = ["path": "/healthz", "intervalMs": 200, "timeoutMs": 500, "rise": 1, "fall": 1]
        let edge = try startEdge(pools: ["web": ["servers": ["127.0.0.1:\(port)"], "protocol": "h2c", "healthCheck": check]],
                                 routes: [route()])
        let address = "127.0.0.1:\(port)"
        XCTAssertNotNil(eventually(timeout: 5) { (try? edge.serverStatus(address: address)) == "healthy" }, edge.log)
        // Healthy for a while (not a first answer by chance): still healthy after several probes, and requests pass.
        usleep(1_000_000)
        XCTAssertEqual(try edge.serverStatus(address: address), "healthy")
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, "/healthz").status, 200)
        kill(origin.processIdentifier, SIGKILL)
        XCTAssertNotNil(eventually(timeout: 5) { (try? edge.serverStatus(address: address)) == "down" }, edge.log)
    }
}
