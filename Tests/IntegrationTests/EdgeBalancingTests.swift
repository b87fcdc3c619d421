import Foundation
import XCTest

/// Load-balancing policies, failover when an origin dies under load, 503 when none is left, recovery by health checks.
final class EdgeBalancingTests: EdgeTestCase {
    /// Sequential GETs on one keep-alive connection; the X-Origin of each answer (or "status N" / "error …").
    private static func originsOf(port: UInt16, targets: [String]) -> [String] {
        var out = [String]()
        var connection: EdgeConnection?
        for target in targets {
            do {
                if connection == nil { connection = try EdgeConnection(port: port) }
                try connection!.send(EdgeRequest.make("GET", target))
                let r = try connection!.readResponse(timeout: 10)
                out.append(r.status == 200 ? (r.origin ?? "no X-Origin") : "status \(r.status)")
                if r.header("Connection")?.lowercased() == "close" { connection = nil }
            } catch {
                out.append("error \(error)")
                connection = nil
            }
        }
        return out
    }

    private static func tally(_ names: [String]) -> [String: Int] {
        names.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    /// Weighted round robin, weights 1 and 3, 400 requests over two connections: 100 / 300 (±2).
    func test_roundRobin_weightedDistribution() throws {
        let origins = try startOrigins(["w1", "w3"])
        let edge = try startEdge(pools: ["web": pool(origins, weights: [1, 3], balance: "round-robin")], routes: [route()])
        let results = EdgeCollector<[String]>()
        let port = edge.port
        XCTAssertTrue(edgeRunThreads(2) { _ in
            results.append(Self.originsOf(port: port, targets: Array(repeating: "/echo", count: 200)))
        })
        let counts = Self.tally(results.all.flatMap { $0 })
        print("EDGE-FIGURES: round robin weights 1:3 over 400 requests: \(counts)")
        XCTAssertEqual(counts.values.reduce(0, +), 400)
        XCTAssertEqual(Double(counts["w1"] ?? 0), 100, accuracy: 2, "weight 1: \(counts)")
        XCTAssertEqual(Double(counts["w3"] ?? 0), 300, accuracy: 2, "weight 3: \(counts)")
    }

    /// Least connections with a slow (300 ms) and a fast origin: the fast one takes most of 40 concurrent requests.
    func test_leastConnections_prefersTheFastOrigin() throws {
        let slow = try startOrigin("slow", delayMs: 300)
        let fast = try startOrigin("fast")
        let edge = try startEdge(pools: ["web": pool([slow, fast], balance: "least-connections")], routes: [route()])
        // Warm-up: one request each way so the first burst does not measure connection setup only.
        _ = Self.originsOf(port: edge.port, targets: ["/echo", "/echo"])
        let port = edge.port
        let results = EdgeCollector<String>()
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchGroup()
        go.enter()
        let threads = edgeStartThreads(40) { i in
            do {
                let c = try EdgeConnection(port: port)
                ready.signal()
                go.wait()
                // Spread over 200 ms (< the slow origin's 300 ms): all 40 are in flight together, yet answers of the
                // fast origin can come back between arrivals — which is what least-connections reacts to. (Forty in
                // the same millisecond would split evenly under any least-connections implementation.)
                usleep(UInt32(i) * 5_000)
                try c.send(EdgeRequest.make("GET", "/echo"))
                let r = try c.readResponse(timeout: 10)
                results.append(r.status == 200 ? (r.origin ?? "?") : "status \(r.status)")
            } catch {
                ready.signal()
                results.append("error \(error)")
            }
        }
        // Every client connected first, then all 40 requests at once.
        for _ in 0..<40 { _ = ready.wait(timeout: .now() + 10) }
        go.leave()
        XCTAssertEqual(threads.wait(timeout: .now() + 30), .success, "clients did not finish")
        let counts = Self.tally(results.all)
        print("EDGE-FIGURES: least-connections, 40 concurrent requests, slow (300 ms) vs fast: \(counts)")
        XCTAssertEqual(results.all.count, 40, "\(counts)")
        XCTAssertGreaterThanOrEqual(counts["fast"] ?? 0, 32, "the fast origin should take clearly most: \(counts)")
        XCTAssertEqual((counts["fast"] ?? 0) + (counts["slow"] ?? 0), 40, "all answered: \(counts)")
    }

    /// Consistent hash: a URI sticks to one origin; 300 URIs spread 15–55 % per origin; when one origin dies only its
    /// URIs move.
    func test_consistentHash_stickySpreadAndMinimalMovement() throws {
        let origins = try startOrigins(["h1", "h2", "h3"])
        let edge = try startEdge(pools: ["web": pool(origins, balance: "consistent-hash", extra: [
            "healthCheck": ["path": "/healthz", "intervalMs": 200, "timeoutMs": 200, "rise": 2, "fall": 1],
        ])], routes: [route()])
        let uris = (0..<300).map { "/item/\($0)?v=\($0 * 7919)" }
        let first = Self.originsOf(port: edge.port, targets: uris)
        let second = Self.originsOf(port: edge.port, targets: uris)
        XCTAssertEqual(first, second, "the same URI must land on the same origin")
        let counts = Self.tally(first)
        print("EDGE-FIGURES: consistent-hash spread of 300 URIs over 3 origins: \(counts)")
        for o in origins {
            let share = Double(counts[o.name] ?? 0) / 300
            XCTAssertTrue((0.15...0.55).contains(share), "\(o.name) got \(Int(share * 100)) %: \(counts)")
        }

        origins[1].kill()
        let killed = origins[1].name
        let after = Self.originsOf(port: edge.port, targets: uris)
        var moved = 0, wronglyMoved = [String]()
        for (i, uri) in uris.enumerated() {
            if first[i] == killed {
                moved += 1
                XCTAssertTrue(after[i] == origins[0].name || after[i] == origins[2].name, "\(uri) after the kill: \(after[i])")
            } else if after[i] != first[i] {
                wronglyMoved.append("\(uri): \(first[i]) -> \(after[i])")
            }
        }
        print("EDGE-FIGURES: consistent-hash after killing \(killed): \(moved) URIs moved, \(wronglyMoved.count) others moved; now \(Self.tally(after))")
        XCTAssertEqual(wronglyMoved, [], "only the killed origin's URIs may move")
        // Once the health check has noticed, the mapping stays as it is.
        _ = eventually(timeout: 3) { (try? edge.serverStatus(address: origins[1].address)) == "down" }
        XCTAssertEqual(Self.originsOf(port: edge.port, targets: uris), after, "stable after the origin is marked down")
    }

    /// An origin SIGKILLed under continuous keep-alive GET load: no request fails, /status shows it down or ejected,
    /// and the edge stops trying it.
    func test_originKilledUnderLoad_noFailedRequests() throws {
        let origins = try startOrigins(["k1", "k2", "k3"])
        let victim = origins[1]
        let edge = try startEdge(pools: ["web": pool(origins, balance: "round-robin", extra: [
            "healthCheck": ["path": "/healthz", "intervalMs": 300, "timeoutMs": 300, "rise": 2, "fall": 2],
            "passive": ["failures": 3, "ejectMs": 5000, "maxEjectedPercent": 50],
            "retries": 2,
        ])], routes: [route()])
        let port = edge.port
        let results = EdgeCollector<(Date, String)>()
        let started = EdgeCollector<Int>()
        let stop = EdgeFlag()
        // Two clients, each sequential GETs on keep-alive connections, until told to stop (at least 300 each).
        let done = DispatchGroup()
        for t in 0..<2 {
            done.enter()
            Thread {
                var n = 0
                var connection: EdgeConnection?
                while n < 300 || !stop.isSet {
                    do {
                        if connection == nil { connection = try EdgeConnection(port: port) }
                        try connection!.send(EdgeRequest.make("GET", "/echo?t=\(t)&n=\(n)"))
                        let r = try connection!.readResponse(timeout: 10)
                        results.append((Date(), r.status == 200 ? (r.origin ?? "?") : "status \(r.status): \(r.text)"))
                        if r.header("Connection")?.lowercased() == "close" { connection = nil }
                    } catch {
                        results.append((Date(), "error \(error)"))
                        connection = nil
                    }
                    n += 1
                    if n == 100 { started.append(t) }
                    if n > 5000 { break }
                }
                done.leave()
            }.start()
        }
        // Kill once both clients are well into their run.
        _ = eventually(timeout: 20) { started.all.count == 2 }
        victim.kill()
        let killedAt = Date()
        print("killed origin \(victim.name) (\(victim.address)) after \(results.all.count) requests")
        let noticed = eventually(timeout: 10) {
            let s = (try? edge.serverStatus(address: victim.address)) ?? nil
            return s == "down" || s == "ejected"
        }
        let statusAfter = try edge.serverStatus(address: victim.address)
        // Let the load run on for a while with the victim out, then measure "no more traffic" to it.
        usleep(300_000)
        let failuresBefore = try edge.stat("upstream_connect_failures") + edge.stat("upstream_errors")
        let countBefore = results.all.count
        _ = eventually(timeout: 20) { results.all.count >= countBefore + 200 }
        let failuresAfter = try edge.stat("upstream_connect_failures") + edge.stat("upstream_errors")
        stop.set()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "clients did not finish")

        let all = results.all
        let failed = all.filter { !["k1", "k2", "k3"].contains($0.1) }
        let afterKill = all.filter { $0.0 > killedAt }
        let lateVictim = all.filter { $0.0 > killedAt.addingTimeInterval(0.05) && $0.1 == victim.name }
        print("EDGE-FIGURES: origin killed under load: \(all.count) requests (\(afterKill.count) after the kill), "
              + "\(failed.count) failed, status \(statusAfter ?? "nil") after \(noticed.map { String(format: "%.2f s", $0) } ?? "never"), "
              + "upstream failures during the last 200 requests: \(failuresAfter - failuresBefore), distribution \(Self.tally(all.map(\.1)))")
        XCTAssertGreaterThanOrEqual(all.count, 600)
        XCTAssertEqual(failed.count, 0, "failed requests: \(failed.prefix(10).map(\.1))")
        XCTAssertNotNil(noticed, "the killed origin never showed down/ejected in /status")
        XCTAssertTrue(statusAfter == "down" || statusAfter == "ejected", "status of the killed origin: \(statusAfter ?? "nil")")
        XCTAssertEqual(lateVictim.count, 0, "answers from a dead origin?")
        XCTAssertEqual(failuresAfter, failuresBefore,
                       "the edge kept trying the dead origin after marking it (connect failures/errors grew)")
        XCTAssertGreaterThan(afterKill.count, 200)
    }

    /// All origins down: 503 and /healthz 503 "degraded"; an origin restarted on its port is used again within a few
    /// health-check intervals.
    func test_allOriginsDown_503_thenRecovery() throws {
        let origins = try startOrigins(["d1", "d2"])
        let interval = 300
        let edge = try startEdge(pools: ["web": pool(origins, extra: [
            "healthCheck": ["path": "/healthz", "intervalMs": interval, "timeoutMs": 300, "rise": 2, "fall": 2],
        ])], routes: [route()])
        XCTAssertEqual(try edge.healthz().status, 200)
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, "/echo").status, 200)

        for o in origins { o.kill() }
        let degradedAfter = eventually(timeout: 10) { (try? edge.healthz().status) == 503 }
        XCTAssertNotNil(degradedAfter, "/healthz never turned 503")
        let health = try edge.healthz()
        XCTAssertEqual(health.status, 503, "\(health)")
        XCTAssertEqual(health.text.trimmingCharacters(in: .whitespacesAndNewlines), "degraded", "\(health)")
        let status = try edge.status()
        XCTAssertEqual(status["state"] as? String, "degraded", "\(status)")
        let r = try EdgeHTTP.get(port: edge.port, "/echo")
        XCTAssertEqual(r.status, 503, "all origins down: \(r)")
        for o in origins { XCTAssertFalse(r.text.contains("\(o.port)"), "503 body names an origin: \(r.text)") }

        let restarted = Date()
        try origins[0].start()
        let back = eventually(timeout: 10) { (try? EdgeHTTP.get(port: edge.port, "/echo").status) == 200 }
        print("EDGE-FIGURES: all down -> /healthz 503 after \(degradedAfter.map { String(format: "%.2f s", $0) } ?? "never"); "
              + "restarted origin serving again after \(String(format: "%.2f s", Date().timeIntervalSince(restarted))) "
              + "(interval \(interval) ms, rise 2)")
        XCTAssertNotNil(back, "the restarted origin was not used again within 10 s")
        XCTAssertLessThan(Date().timeIntervalSince(restarted), Double(interval) * 6 / 1000 + 1, "back within a few intervals")
        let again = try EdgeHTTP.get(port: edge.port, "/echo")
        XCTAssertEqual(again.status, 200)
        XCTAssertEqual(again.origin, origins[0].name)
        XCTAssertEqual(try edge.healthz().status, 200, "healthy again once one server is back")
        XCTAssertEqual(try edge.serverStatus(address: origins[0].address), "healthy")
    }
}
