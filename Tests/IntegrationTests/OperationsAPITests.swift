import Foundation
import XCTest

/// Issue 7 on the real binaries: Prometheus metrics on every role checked by promtool, reload under dnsperf load,
/// drains through the admin API (edge and DNS node), the bearer token, `lodestar ctl`, structured and query logs.
final class OperationsAPITests: EdgeTestCase {
    static let london = "+subnet=81.2.69.0/24"

    // MARK: Helpers

    /// Runs `promtool check metrics` on `text`; returns its exit status and output.
    func promtool(_ text: String) throws -> (Int32, String) {
        guard let promtool = IntegrationEnvironment.which("promtool") else {
            throw XCTSkip("promtool is not installed (Debian: prometheus)")
        }
        let file = workFolder.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        try Data(text.utf8).write(to: file)
        let r = try runCommand("/bin/sh", ["-c", "\(promtool) check metrics < \(file.path)"], timeout: 30)
        return (r.status, r.stdout + r.stderr)
    }

    /// The value of the first sample whose line starts with `prefix` (name and labels as rendered), nil if none.
    func sample(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            if let v = line.split(separator: " ").last.flatMap({ Double($0) }) { return v }
        }
        return nil
    }

    /// Sum of every sample of `name` whose labels contain all of `labels`.
    func sum(_ text: String, _ name: String, _ labels: [String] = []) -> Double {
        text.split(separator: "\n").filter { line in
            (line.hasPrefix(name + "{") || line.hasPrefix(name + " ")) && labels.allSatisfy { line.contains($0) }
        }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    func admin(_ port: UInt16, _ target: String, method: String = "GET", token: String? = nil) throws -> EdgeReply {
        try EdgeHTTP.request(port: port, method, target, host: "admin",
                             headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    func ctl(_ arguments: [String], folder: URL) throws -> CommandResult {
        try runCommand(IntegrationEnvironment.lodestarBinary().path, ["ctl"] + arguments, timeout: 20, currentDirectory: folder)
    }

    func answer(_ c: Cluster) -> String {
        (try? c.dns.dig(["+short", "www.example.test", Self.london]).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
    }

    /// Polls the London answer every 10 ms until `condition` holds; seconds taken, nil after `timeout`.
    func until(_ c: Cluster, timeout: TimeInterval, _ condition: (String) -> Bool) -> TimeInterval? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if condition(answer(c)) { return Date().timeIntervalSince(start) }
            usleep(10_000)
        }
        return nil
    }

    // MARK: Metrics

    func test_promtoolPassesOnTheMetricsOfEveryRole() throws {
        let c = try startCluster(probeIntervalMs: 300)
        // Traffic of every kind: UDP with and without ECS, TCP, NXDOMAIN, a malformed packet, HTTP through an edge.
        XCTAssertNotNil(until(c, timeout: 5) { $0 == "127.0.2.1" })
        for _ in 0..<5 { _ = try c.dns.dig("www.example.test", "A", Self.london) }
        _ = try c.dns.dig("www.example.test", "AAAA")
        _ = try c.dns.dig("www.example.test", "A", "+tcp")
        _ = try c.dns.dig("nope.example.test", "A")
        let udp = socket(AF_INET, SocketType.datagram, 0)
        var to = SocketAddress.loopbackV4(port: c.dns.port)
        let junk: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x05]
        _ = withUnsafePointer(to: &to) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udp, junk, junk.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(udp)
        let eu = try XCTUnwrap(c.edges["edge-eu-central"])
        for _ in 0..<3 { XCTAssertEqual(try EdgeHTTP.get(port: eu.port, "/").status, 200) }
        XCTAssertEqual(try EdgeHTTP.get(port: eu.port, "/static/app.css").status, 200)
        usleep(1_500_000)  // a few gossip rounds

        let dnsText = try admin(c.dnsAdmin, "/metrics").text
        let (dnsStatus, dnsOut) = try promtool(dnsText)
        XCTAssertEqual(dnsStatus, 0, "promtool on the DNS node's /metrics:\n\(dnsOut)")
        XCTAssertGreaterThanOrEqual(sum(dnsText, "lodestar_dns_queries_total", ["transport=\"udp\"", "qtype=\"A\"", "rcode=\"NOERROR\""]), 5)
        XCTAssertGreaterThanOrEqual(sum(dnsText, "lodestar_dns_queries_total", ["transport=\"tcp\""]), 1)
        XCTAssertGreaterThanOrEqual(sum(dnsText, "lodestar_dns_queries_total", ["rcode=\"NXDOMAIN\""]), 1)
        XCTAssertGreaterThanOrEqual(sum(dnsText, "lodestar_dns_answers_total", ["edge=\"edge-eu-central\"", "region=\"eu-central\""]), 5)
        XCTAssertGreaterThanOrEqual(sum(dnsText, "lodestar_dns_client_subnet_total", ["ecs=\"present\""]), 5)
        XCTAssertGreaterThanOrEqual(sum(dnsText, "lodestar_dns_client_subnet_total", ["ecs=\"absent\""]), 1)
        XCTAssertGreaterThanOrEqual(sum(dnsText, "lodestar_dns_malformed_total"), 1, "the truncated packet")
        XCTAssertGreaterThanOrEqual(sum(dnsText, "lodestar_dns_response_duration_seconds_count"), 8)
        XCTAssertEqual(sum(dnsText, "lodestar_gossip_members", ["state=\"alive\""]), 4, "DNS node and three edges")
        XCTAssertGreaterThan(sum(dnsText, "lodestar_gossip_probes_total"), 0)
        XCTAssertGreaterThan(sum(dnsText, "lodestar_gossip_bytes_total", ["direction=\"in\""]), 0)
        XCTAssertNotNil(sample(dnsText, "lodestar_gossip_dropped_total{member=\"dns-local-1\",reason=\"authentication\"}"))
        XCTAssertEqual(sample(dnsText, "lodestar_dns_edge_state{edge=\"edge-eu-central\",state=\"healthy\"}"), 1)
        XCTAssertNotNil(sample(dnsText, "lodestar_config_loaded_timestamp_seconds{role=\"dns\"}"))

        let edgeText = try admin(eu.ports.admin, "/metrics").text
        let (edgeStatus, edgeOut) = try promtool(edgeText)
        XCTAssertEqual(edgeStatus, 0, "promtool on the edge's /metrics:\n\(edgeOut)")
        XCTAssertGreaterThanOrEqual(sum(edgeText, "lodestar_edge_responses_total", ["edge=\"edge-eu-central\"", "code=\"200\""]), 4)
        XCTAssertGreaterThanOrEqual(sum(edgeText, "lodestar_edge_upstream_duration_seconds_count"), 1)
        XCTAssertEqual(sum(edgeText, "lodestar_edge_origin_up", ["pool=\"sample\""]), 1, "the one origin of the sample pool is up")
        XCTAssertGreaterThanOrEqual(sum(edgeText, "lodestar_edge_cache_requests_total", ["result=\"miss\""]), 1)
        XCTAssertNotNil(sample(edgeText, "lodestar_edge_tls_handshakes_total{edge=\"edge-eu-central\",result=\"ok\"}"))
        XCTAssertNotNil(sample(edgeText, "lodestar_edge_rejected_total{edge=\"edge-eu-central\",reason=\"rate_limited\"}"))
        XCTAssertEqual(sum(edgeText, "lodestar_gossip_members", ["state=\"alive\""]), 4)
        print("OPS-FIGURES promtool dns=\(dnsStatus) (\(dnsText.split(separator: "\n").count) lines) edge=\(edgeStatus) "
              + "(\(edgeText.split(separator: "\n").count) lines)")
    }

    // MARK: Reload under load

    func test_reloadUnderDnsperfLoadLosesNoQueryAndRefusesBadFiles() throws {
        guard let dnsperf = IntegrationEnvironment.which("dnsperf") else { throw XCTSkip("dnsperf is not installed") }
        let adminPort = try freePort()
        let base = try IntegrationEnvironment.defaultTopology()
        func generation(_ n: Int) throws -> [String: Any] {
            var t = base
            try t.edit("dns") { $0["admin"] = "127.0.0.1:\(adminPort)" }
            try t.addRecord(["name": "generation", "type": "TXT", "ttl": 5, "value": "gen-\(n)"])
            return t
        }
        let server = try LodestarServer(topology: try generation(0))
        addTeardownBlock { server.cleanUp() }
        try server.start()
        func version() throws -> String {
            try server.dig(["+short", "config.lodestar", "CH", "TXT"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func gen() throws -> String {
            try server.dig(["+short", "generation.example.test", "TXT"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        XCTAssertEqual(try gen(), "\"gen-0\"")

        let queries = workFolder.appendingPathComponent("queries.txt")
        try Data("www.example.test A\nexample.test SOA\ngeneration.example.test TXT\nwww.example.test AAAA\n".utf8).write(to: queries)
        let load = Process()
        load.executableURL = URL(fileURLWithPath: dnsperf)
        load.arguments = ["-s", "127.0.0.1", "-p", "\(server.port)", "-d", queries.path, "-l", "20", "-Q", "3000", "-c", "4", "-t", "2"]
        let out = Pipe()
        load.standardOutput = out
        load.standardError = out
        try load.run()
        addTeardownBlock { if load.isRunning { load.terminate() } }
        let reader = DispatchQueue(label: "dnsperf-output")
        nonisolated(unsafe) var perfText = ""
        let readDone = DispatchSemaphore(value: 0)
        reader.async {
            perfText = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            readDone.signal()
        }

        var taken = 0, refused = 0, lastGeneration = 0
        var versions = [try version()]
        for i in 1...10 {
            usleep(1_400_000)
            let invalid = i % 3 == 0
            if invalid {
                // Refused files of two kinds: not JSON at all, and JSON naming an edge that does not exist.
                if i % 2 == 0 {
                    try Data("{ \"zone\": ".utf8).write(to: URL(fileURLWithPath: server.topologyPath), options: .atomic)
                } else {
                    var bad = try generation(i)
                    try bad.edit("services") { s in
                        guard var www = s["www"] as? [String: Any] else { return }
                        www["edges"] = ["edge-nowhere"]
                        s["www"] = www
                    }
                    try server.writeTopology(bad)
                }
            } else {
                try server.writeTopology(try generation(i))
            }
            // Alternate the two ways in: SIGHUP and `lodestar ctl reload` (the admin API).
            let outcome: String
            if i % 2 == 1 {
                outcome = try server.reload()
            } else {
                // --admin: with a broken file ctl could not read the address from it (it says so); the server is asked anyway.
                let r = try ctl(["reload", "--admin", "127.0.0.1:\(adminPort)"], folder: server.folder)
                outcome = r.stdout + r.stderr
                XCTAssertEqual(r.status, invalid ? 1 : 0, outcome)
            }
            let now = try version()
            if invalid {
                refused += 1
                XCTAssertTrue(outcome.contains("refused"), "reload \(i) of a bad file must be refused: \(outcome)")
                XCTAssertEqual(now, versions.last, "a refused reload keeps the running configuration")
                XCTAssertEqual(try gen(), "\"gen-\(lastGeneration)\"", "answers still come from the last good file")
                let status = try XCTUnwrap(try admin(adminPort, "/status").json)
                let last = try XCTUnwrap((status["config"] as? [String: Any])?["lastReload"] as? [String: Any])
                XCTAssertEqual(last["ok"] as? Bool, false)
                XCTAssertFalse((last["error"] as? String ?? "").isEmpty, "/status says why: \(last)")
            } else {
                taken += 1
                XCTAssertFalse(outcome.contains("refused"), outcome)
                XCTAssertNotEqual(now, versions.last, "a taken reload shows a new version in CH TXT config.lodestar")
                XCTAssertEqual(try gen(), "\"gen-\(i)\"", "answers switch to the new configuration")
                lastGeneration = i
                versions.append(now)
            }
        }
        load.waitUntilExit()
        readDone.wait()
        func figure(_ label: String) -> Int? {
            guard let line = perfText.split(separator: "\n").first(where: { $0.contains(label) }) else { return nil }
            return line.split(separator: ":").dropFirst().first?.split(separator: " ").first.flatMap { Int($0) }
        }
        let sent = try XCTUnwrap(figure("Queries sent:"), perfText)
        let completed = try XCTUnwrap(figure("Queries completed:"), perfText)
        let lost = try XCTUnwrap(figure("Queries lost:"), perfText)
        XCTAssertGreaterThan(sent, 20_000, perfText)
        XCTAssertEqual(lost, 0, perfText)
        XCTAssertEqual(completed, sent, perfText)
        XCTAssertEqual(taken, 7)
        XCTAssertEqual(refused, 3)
        XCTAssertTrue(server.isRunning)
        let metrics = try admin(adminPort, "/metrics").text
        XCTAssertEqual(sample(metrics, "lodestar_config_reloads_total{role=\"dns\",result=\"ok\"}"), 7)
        XCTAssertEqual(sample(metrics, "lodestar_config_reloads_total{role=\"dns\",result=\"refused\"}"), 3)
        XCTAssertFalse(server.log.contains("msg=query"), "the query log is off by default")
        print("OPS-FIGURES reload-under-load sent=\(sent) completed=\(completed) lost=\(lost) reloads taken=\(taken) refused=\(refused) "
              + "versions=\(versions.count)")
    }

    // MARK: Drains

    func test_drainThroughTheEdgesAdminAPILeavesAnswersWithinOneGossipPeriod() throws {
        let period = 500
        let c = try startCluster(probeIntervalMs: period)
        let eu = try XCTUnwrap(c.edges["edge-eu-central"])
        XCTAssertNotNil(until(c, timeout: 5) { $0 == "127.0.2.1" }, "London should get eu-central\n\(c.dns.log)")
        XCTAssertNotNil(eventually(timeout: 5) { c.dns.log.contains("edge health changed") || (try? self.admin(c.dnsAdmin, "/status").json)
            .flatMap { ($0["gossip"] as? [String: Any])?["members"] as? [[String: Any]] }?.count == 4 })
        usleep(1_000_000)

        let r = try ctl(["--edge", "edge-eu-central", "drain", "--reason", "kernel upgrade", "--topology", eu.topologyPath],
                        folder: workFolder)
        let start = Date()
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let moved = until(c, timeout: 5) { $0 != "127.0.2.1" }
        let seconds = try XCTUnwrap(moved, "DNS still answers the drained edge after 5 s\n\(c.dns.log)")
        let total = Date().timeIntervalSince(start)
        XCTAssertEqual(answer(c), "127.0.1.1")
        XCTAssertLessThanOrEqual(total, Double(period) / 1000, "one gossip period is \(period) ms; took \(total) s")
        XCTAssertEqual(try admin(eu.ports.admin, "/readyz").status, 503, "a draining edge is not ready")
        let edgeStatus = try XCTUnwrap(try admin(eu.ports.admin, "/status").json)
        XCTAssertEqual((edgeStatus["drain"] as? [String: Any])?["reason"] as? String, "kernel upgrade")
        let dnsStatus = try XCTUnwrap(try admin(c.dnsAdmin, "/status").json)
        let details = dnsStatus["edgeDetails"] as? [[String: Any]] ?? []
        let why = details.first { $0["id"] as? String == "edge-eu-central" }?["why"] as? [String] ?? []
        XCTAssertTrue(why.contains { $0.contains("draining") }, "DNS /status says why: \(why)")
        XCTAssertEqual((dnsStatus["edges"] as? [String: String])?["edge-eu-central"], "down")

        // Undrain: the edge comes back as quickly.
        let back = try ctl(["--edge", "edge-eu-central", "undrain", "--topology", eu.topologyPath], folder: workFolder)
        XCTAssertEqual(back.status, 0, back.stdout + back.stderr)
        let returned = try XCTUnwrap(until(c, timeout: 5) { $0 == "127.0.2.1" }, "undrained edge never came back")
        XCTAssertEqual(try admin(eu.ports.admin, "/readyz").status, 200)
        print("OPS-FIGURES edge-admin-drain answer moved after \(String(format: "%.3f", seconds)) s "
              + "(\(String(format: "%.3f", total)) s incl. ctl), back after \(String(format: "%.3f", returned)) s, period \(period) ms")
    }

    func test_operatorDrainOnTheDNSNodeByEdgeAndByRegion() throws {
        let adminPort = try freePort()
        let server = try startServer { t in try t.edit("dns") { $0["admin"] = "127.0.0.1:\(adminPort)" } }
        func london() throws -> [String] { try server.dig("www.example.test", "A", Self.london).answers("A").map(\.data) }
        XCTAssertEqual(try london(), [Self.eu])
        let drained = try ctl(["drain", "--target-edge", "edge-eu-central", "--reason", "maintenance", "--topology", server.topologyPath],
                              folder: server.folder)
        XCTAssertEqual(drained.status, 0, drained.stdout + drained.stderr)
        XCTAssertEqual(try london(), [Self.us], "a drain on the DNS node applies to the next answer")
        let status = try XCTUnwrap(try admin(adminPort, "/status").json)
        let details = status["edgeDetails"] as? [[String: Any]] ?? []
        let why = details.first { $0["id"] as? String == "edge-eu-central" }?["why"] as? [String] ?? []
        XCTAssertTrue(why.contains { $0.contains("drained through the admin API") && $0.contains("maintenance") }, "\(why)")
        // A whole region, then undrain both.
        XCTAssertEqual(try ctl(["drain", "--region", "us-east", "--topology", server.topologyPath], folder: server.folder).status, 0)
        XCTAssertEqual(try london(), [Self.ap], "eu-central and us-east drained → ap-southeast")
        XCTAssertEqual(try admin(adminPort, "/drain?edge=edge-nowhere", method: "POST").status, 400)
        XCTAssertEqual(try admin(adminPort, "/drain", method: "POST").status, 400)
        XCTAssertEqual(try ctl(["undrain", "--region", "us-east", "--topology", server.topologyPath], folder: server.folder).status, 0)
        XCTAssertEqual(try ctl(["undrain", "--target-edge", "edge-eu-central", "--topology", server.topologyPath], folder: server.folder).status, 0)
        XCTAssertEqual(try london(), [Self.eu])
    }

    // MARK: Token, ctl, logs

    func test_bearerTokenGuardsChangesAndCtlSendsIt() throws {
        let adminPort = try freePort()
        let token = "s3cr3t-token-\(UUID().uuidString.prefix(8))"
        let server = try startServer { t in
            try t.edit("dns") { $0["admin"] = "127.0.0.1:\(adminPort)" }
            t["admin"] = ["tokenFile": "admin.token"]
        } before: { folder in
            try Data((token + "\n").utf8).write(to: folder.appendingPathComponent("admin.token"))
        }
        XCTAssertEqual(try admin(adminPort, "/status").status, 200, "reads on loopback are open")
        XCTAssertEqual(try admin(adminPort, "/reload", method: "POST").status, 401)
        XCTAssertEqual(try admin(adminPort, "/reload", method: "POST", token: "not-the-token-at-all").status, 401)
        XCTAssertEqual(try admin(adminPort, "/reload", method: "POST", token: token).status, 200)
        let r = try ctl(["drain", "--target-edge", "edge-eu-central", "--topology", server.topologyPath], folder: server.folder)
        XCTAssertEqual(r.status, 0, "ctl reads the token from the topology's admin section: \(r.stdout)\(r.stderr)")
        let wrong = workFolder.appendingPathComponent("wrong.token")
        try Data("wrong-token-0123456789\n".utf8).write(to: wrong)
        let refused = try ctl(["reload", "--topology", server.topologyPath, "--token-file", wrong.path], folder: server.folder)
        XCTAssertEqual(refused.status, 3, "401 → exit 3: \(refused.stdout)\(refused.stderr)")

        // Off loopback without a token the topology is refused, with the file, field and reason.
        var open = try IntegrationEnvironment.defaultTopology()
        try open.edit("dns") { $0["admin"] = "0.0.0.0:\(adminPort)" }
        let file = workFolder.appendingPathComponent("open.json")
        try JSONSerialization.data(withJSONObject: open).write(to: file)
        let check = try runCommand(IntegrationEnvironment.lodestarBinary().path, ["check", file.path], timeout: 20)
        XCTAssertNotEqual(check.status, 0)
        XCTAssertTrue(check.stderr.contains("\(file.path): dns.admin: an admin listener off loopback needs the top-level \"admin\" section"),
                      check.stderr)
    }

    func test_jsonLogsAndASampledQueryLog() throws {
        let server = try startServer(arguments: ["--log-format", "json", "--query-log-sample", "10"])
        guard let dnsperf = IntegrationEnvironment.which("dnsperf") else { throw XCTSkip("dnsperf is not installed") }
        let queries = workFolder.appendingPathComponent("q.txt")
        try Data("www.example.test A\n".utf8).write(to: queries)
        let r = try runCommand(dnsperf, ["-s", "127.0.0.1", "-p", "\(server.port)", "-d", queries.path, "-n", "200", "-c", "1"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stdout)
        usleep(300_000)
        var queryLines = 0
        for line in server.log.split(separator: "\n") where line.hasPrefix("{") {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            for key in ["ts", "level", "logger", "msg"] { XCTAssertNotNil(object[key], "\(key) in \(line)") }
            if object["msg"] as? String == "query" {
                queryLines += 1
                XCTAssertEqual(object["qname"] as? String, "www.example.test.")
                XCTAssertEqual(object["qtype"] as? String, "A")
                XCTAssertEqual(object["rcode"] as? String, "NOERROR")
            }
        }
        // 200 queries plus the start-up probe, one in ten logged per event loop.
        XCTAssertTrue((15...25).contains(queryLines), "sampled query lines: \(queryLines)\n\(server.log.suffix(2000))")
        XCTAssertFalse(server.log.split(separator: "\n").contains { !$0.hasPrefix("{") && !$0.hasPrefix("lodestar") && !$0.isEmpty },
                       "every log line is JSON:\n\(server.log.prefix(2000))")
        print("OPS-FIGURES query-log lines=\(queryLines) of 201 queries at 1 in 10")
    }
}

extension OperationsAPITests {
    static let eu = "127.0.2.1", us = "127.0.1.1", ap = "127.0.3.1"

    /// A `lodestar dns` on the default topology (edited), with `before` run on its folder before it starts.
    func startServer(arguments: [String] = [], edit: (inout [String: Any]) throws -> Void,
                     before: (URL) throws -> Void = { _ in }) throws -> LodestarServer {
        var topology = try IntegrationEnvironment.defaultTopology()
        try edit(&topology)
        let server = try LodestarServer(topology: topology, arguments: arguments)
        addTeardownBlock { server.cleanUp() }
        try before(server.folder)
        try server.start()
        return server
    }

    func startServer(arguments: [String]) throws -> LodestarServer {
        try startServer(arguments: arguments, edit: { _ in })
    }
}
