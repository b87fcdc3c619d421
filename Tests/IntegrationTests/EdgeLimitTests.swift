import Foundation
import XCTest

/// Request limits (request line, header count and size, body size, head timeout) and many slow connections.
final class EdgeLimitTests: EdgeTestCase {
    private func startLimitedEdge(limits: [String: Any] = [:]) throws -> (EdgeNode, EdgeOrigin) {
        let origin = try startOrigin("o1")
        var l: [String: Any] = ["maxRequestLineBytes": 8192, "maxHeaderBytes": 32768, "maxHeaderCount": 100]
        for (k, v) in limits { l[k] = v }
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()], proxy: ["limits": l],
                                 environment: ["SWIFT_BACKTRACE": "enable=no"])
        return (edge, origin)
    }

    /// A request target longer than maxRequestLineBytes: 414 (400 or 431 accepted, printed), closed, not forwarded.
    func test_limits_requestLineTooLong() throws {
        let (edge, origin) = try startLimitedEdge()
        let c = try EdgeConnection(port: edge.port)
        try c.send(EdgeRequest.make("GET", "/echo?" + String(repeating: "a", count: 9000)))
        let status = assertRefusedAndClosed(c, statuses: [400, 414, 431], "9000-byte request target")
        print("EDGE-FIGURES: request line over maxRequestLineBytes -> \(status.map(String.init) ?? "no answer")")
        XCTAssertEqual(try origin.count(), 0)
        // Just under the limit passes.
        let fine = try EdgeHTTP.get(port: edge.port, "/echo?" + String(repeating: "b", count: 8000))
        XCTAssertEqual(fine.status, 200, "8 KB target under the limit: \(fine.status)")
        XCTAssertTrue(edge.isRunning, "the edge died")
    }

    /// More header fields than maxHeaderCount: 431, closed, not forwarded.
    func test_limits_tooManyHeaderFields() throws {
        let (edge, origin) = try startLimitedEdge()
        let c = try EdgeConnection(port: edge.port)
        try c.send(EdgeRequest.make("GET", "/echo", headers: (0..<120).map { ("X-Field-\($0)", "v") }))
        _ = assertRefusedAndClosed(c, statuses: [431], "120 header fields (limit 100)")
        XCTAssertEqual(try origin.count(), 0)
        XCTAssertTrue(edge.isRunning, "the edge died")
        if !edge.isRunning { try edge.start() }
        let fine = try EdgeHTTP.get(port: edge.port, "/echo", headers: (0..<50).map { ("X-Field-\($0)", "v") })
        XCTAssertEqual(fine.status, 200, "50 fields pass: \(fine.status)")
    }

    /// A header section bigger than maxHeaderBytes (one huge field, or many fields that add up): 431, closed, not
    /// forwarded.
    func test_limits_headerSectionTooBig() throws {
        let (edge, origin) = try startLimitedEdge()
        let cases: [(String, [(String, String)])] = [
            ("one 40 KB field", [("X-Big", String(repeating: "x", count: 40_000))]),
            ("nine 4000 B fields (36 KB in all)", (0..<9).map { ("X-Part-\($0)", String(repeating: "y", count: 4000)) }),
        ]
        for (label, headers) in cases {
            if !edge.isRunning { try edge.start() }
            let c = try EdgeConnection(port: edge.port)
            try c.send(EdgeRequest.make("GET", "/echo", headers: headers))
            _ = assertRefusedAndClosed(c, statuses: [431], "\(label) (maxHeaderBytes 32768)")
            XCTAssertEqual(try origin.count(), 0, "\(label): forwarded to the origin")
            try origin.resetCount()
        }
        XCTAssertTrue(edge.isRunning, "the edge died")
    }

    /// Bodies over maxBodyBytes (1 MiB here): a Content-Length over the limit gets 413 before anything is forwarded; a
    /// chunked body that grows over it gets 413 (or a close if an answer had started).
    func test_limits_bodyTooLarge() throws {
        let (edge, origin) = try startLimitedEdge(limits: ["maxBodyBytes": 1 << 20])
        do {
            let c = try EdgeConnection(port: edge.port)
            try c.send("POST /echo HTTP/1.1\r\nHost: www.example.test\r\nContent-Length: \(2 << 20)\r\n\r\n")
            _ = c.trySend(EdgePattern.bytes(64 * 1024))
            _ = assertRefusedAndClosed(c, statuses: [413], "Content-Length 2 MiB over a 1 MiB limit")
            XCTAssertEqual(try origin.count(), 0, "the origin must not see an over-limit request")
        }
        do {
            // Exactly at the limit passes.
            let r = try EdgeHTTP.request(port: edge.port, "POST", "/echo", body: EdgePattern.bytes(1 << 20))
            XCTAssertEqual(r.status, 200, "1 MiB body at the limit: \(r.status)")
            XCTAssertEqual(r.json?["length"] as? Int, 1 << 20)
            try origin.resetCount()
        }
        do {
            let c = try EdgeConnection(port: edge.port)
            let body = EdgeRequest.make("POST", "/echo", body: EdgePattern.bytes(2 << 20), chunked: true, chunkSize: 64 * 1024)
            let sender = edgeStartThreads(1) { _ in _ = c.trySend(body) }
            var status: Int?
            var closed: EdgeCloseKind?
            do {
                let r = try c.readResponse(timeout: 10)
                status = r.status
                closed = c.waitForClose(timeout: 3)?.kind
            } catch {
                closed = c.waitForClose(timeout: 1)?.kind ?? .eof
                status = nil
            }
            _ = sender.wait(timeout: .now() + 10)
            print("EDGE-FIGURES: chunked body over maxBodyBytes -> status \(status.map(String.init) ?? "none"), connection \(closed?.rawValue ?? "open")")
            XCTAssertTrue(status == 413 || (status == nil && closed != nil), "chunked body over the limit: status \(status.map(String.init) ?? "none")")
            XCTAssertNotNil(closed, "the edge must close the connection after refusing the body")
            let seen = try origin.counters()
            print("origin saw \(seen.count) request(s) while the chunked body streamed (it cannot complete)")
        }
        XCTAssertTrue(edge.isRunning, "the edge died")
    }

    /// Slowloris: a head sent byte by byte with headerTimeoutMs 1000 gets a 408 and the connection closes within ~1–2.5 s.
    func test_limits_slowHeadTimesOutWith408() throws {
        let (edge, origin) = try startLimitedEdge(limits: ["headerTimeoutMs": 1000])
        let c = try EdgeConnection(port: edge.port)
        let head = Array("GET /echo HTTP/1.1\r\nHost: www.example.test\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "z"), count: 100)
        let start = Date()
        var answer = [UInt8]()
        var closedKind: EdgeCloseKind?
        var sent = 0
        while Date().timeIntervalSince(start) < 5 {
            if sent < head.count {
                if !c.trySend(Data([head[sent]])) { break }
                sent += 1
            }
            let got = c.readSome(timeout: 0.1)
            answer += got.bytes
            if let k = got.closed { closedKind = k; break }
        }
        if closedKind == nil, let k = c.waitForClose(timeout: 2) { closedKind = k.kind; answer += k.extra }
        let elapsed = Date().timeIntervalSince(start)
        let text = String(decoding: answer, as: UTF8.self)
        print(String(format: "EDGE-FIGURES: slowloris (headerTimeoutMs 1000): %d bytes sent, answer %@, closed (%@) after %.2f s",
                     sent, text.split(separator: "\r\n").first.map { String($0).debugDescription } ?? "none",
                     closedKind?.rawValue ?? "no", elapsed))
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 408"), "expected a 408 answer, got \(text.debugDescription)")
        XCTAssertNotNil(closedKind, "the connection stayed open")
        XCTAssertGreaterThanOrEqual(elapsed, 0.9, "closed before the head timeout")
        XCTAssertLessThanOrEqual(elapsed, 2.5, "closed too late")
        XCTAssertEqual(try origin.count(), 0)
        XCTAssertTrue(edge.isRunning, "the edge died")
    }

    /// 500 connections trickling a partial head (a byte every ~200 ms) do not slow a normal client: 50 GETs all answer
    /// with p99 and max under 100 ms.
    func test_limits_500SlowConnectionsDoNotDelayOthers() throws {
        let limits = EdgeTools.raiseFileLimit(atLeast: 4096)
        print("RLIMIT_NOFILE of the test process (inherited by the edge): soft \(limits.soft), hard \(limits.hard)")
        let (edge, origin) = try startLimitedEdge(limits: ["headerTimeoutMs": 20_000])
        let count = 500
        var slow = [EdgeConnection]()
        for i in 0..<count {
            let c = try EdgeConnection(port: edge.port)
            try c.send("GET /echo?slow=\(i) HTTP/1.1\r\nHost: www.example.test\r\nX-Trickle: ")
            slow.append(c)
        }
        let held = slow
        let stop = EdgeFlag()
        let lost = EdgeCollector<Int>()
        let rounds = EdgeCollector<Int>()
        let trickler = edgeStartThreads(1) { _ in
            var alive = Array(repeating: true, count: held.count)
            var round = 0
            while !stop.isSet {
                let roundStart = Date()
                for (i, c) in held.enumerated() where alive[i] {
                    if !c.trySend(Data("a".utf8)) {
                        alive[i] = false
                        lost.append(i)
                    }
                }
                round += 1
                let left = 0.2 - Date().timeIntervalSince(roundStart)
                if left > 0 { usleep(UInt32(left * 1_000_000)) }
            }
            rounds.append(round)
        }
        // Let the trickle run for a second before measuring.
        usleep(1_000_000)
        var latencies = [Double]()
        var failures = [String]()
        for i in 0..<50 {
            let t0 = Date()
            do {
                let r = try EdgeHTTP.get(port: edge.port, "/echo?normal=\(i)", timeout: 5)
                if r.status != 200 { failures.append("GET \(i): \(r.status)") }
            } catch {
                failures.append("GET \(i): \(error)")
            }
            latencies.append(Date().timeIntervalSince(t0) * 1000)
            usleep(20_000)
        }
        stop.set()
        _ = trickler.wait(timeout: .now() + 10)
        let p50 = edgePercentile(latencies, 50), p99 = edgePercentile(latencies, 99), maxLatency = latencies.max() ?? .nan
        let rss = edge.rssKiB ?? 0
        print(String(format: "EDGE-FIGURES: 500 slow connections (%d trickle rounds, %d closed by the edge): 50 GETs p50 %.1f ms, "
                     + "p99 %.1f ms, max %.1f ms, %d failed; edge RSS %.1f MiB",
                     rounds.all.first ?? 0, lost.all.count, p50, p99, maxLatency, failures.count, Double(rss) / 1024))
        XCTAssertEqual(failures, [], "every normal GET must answer")
        XCTAssertLessThan(p99, 100, "p99 latency")
        XCTAssertLessThan(maxLatency, 100, "max latency")
        XCTAssertEqual(lost.all.count, 0, "slow connections were closed before the 20 s head timeout")
        XCTAssertEqual(try origin.count(), 50, "only the normal GETs reached the origin")
        XCTAssertTrue(edge.isRunning, "the edge died")
        slow.removeAll()
    }

    /// Clients that connect and send nothing, or the first bytes of a preamble, then leave or fall silent, on every
    /// kind of listener: HTTP/1.1, HTTP/1.1 with h2c, h2c alone, TLS with ALPN, TLS for HTTP/1.1 alone, PROXY
    /// protocol. One that left is
    /// closed at once (well before the head timeout) and a silent one by headerTimeoutMs; the open-connection gauge
    /// returns to where it was. (The h2c listener, the default one of `make run`, held both until shutdown: nothing
    /// watched a connection before the preface told its protocol.)
    func test_limits_silentOrVanishedClientsAreClosedOnEveryListener() throws {
        try makeCertificate(key: "a.key", cert: "a.pem", commonName: "a.example.test", san: "DNS:a.example.test")
        let origin = try startOrigin("o1")
        let (both, h2cOnly, tls1) = (try freePort(), try freePort(), try freePort())
        let certificates: [String: Any] = ["certificates": [["cert": "a.pem", "key": "a.key", "serverNames": ["a.example.test"]]]]
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()], proxy: ["limits": ["headerTimeoutMs": 1000]],
                                 tls: certificates, proxyProtocol: true) { t in
            var edges = t["edges"] as? [[String: Any]] ?? []
            var listen = edges.first?["listen"] as? [Any] ?? []
            listen.append(["address": "127.0.0.1:\(both)", "protocols": ["http/1.1", "h2c"]])
            listen.append(["address": "127.0.0.1:\(h2cOnly)", "protocols": ["h2c"]])
            listen.append(["address": "127.0.0.1:\(tls1)", "tls": certificates, "protocols": ["http/1.1"]])
            if !edges.isEmpty { edges[0]["listen"] = listen }
            t["edges"] = edges
        }
        guard let tls = edge.ports.tls, let proxy = edge.ports.proxy else { throw IntegrationError("no TLS or PROXY port") }
        let open = { (try edge.status()["stats"] as? [String: Any])?["connections"] as? Int ?? -1 }
        usleep(300_000)  // the start-up probe's connection has gone
        let before = try open()
        let listeners: [(String, UInt16, String)] = [
            ("http/1.1", edge.port, "GET / HT"), ("http/1.1+h2c", both, "PRI * HTTP/2.0\r\n"), ("h2c", h2cOnly, "PRI * HT"),
            ("tls", tls, "\u{16}\u{03}\u{01}\u{00}"), ("tls http/1.1", tls1, "\u{16}\u{03}\u{01}\u{00}"),
            ("proxy", proxy, "PROXY TCP4 "),
        ]
        // The silent ones first, all at once: each must be closed within the head timeout and a tick or two.
        let silentStart = Date()
        var silent = [(String, EdgeConnection)]()
        for (name, port, partial) in listeners {
            silent.append(("\(name) silent", try EdgeConnection(port: port)))
            let c = try EdgeConnection(port: port)
            try c.send(partial)
            silent.append(("\(name) partial then silent", c))
        }
        // Those that leave: closed at once.
        for (name, port, partial) in listeners {
            for sent in ["", partial] {
                let c = try EdgeConnection(port: port)
                if !sent.isEmpty { try c.send(sent) }
                c.shutdownWrite()
                let t0 = Date()
                let closed = c.waitForClose(timeout: 0.8)
                XCTAssertNotNil(closed, "\(name), \(sent.isEmpty ? "nothing" : "a partial preamble") sent, then the client left: "
                                + "still open after 0.8 s")
                if closed != nil { print(String(format: "%@ (%d bytes, then left): closed after %.0f ms", name, sent.utf8.count,
                                                Date().timeIntervalSince(t0) * 1000)) }
            }
        }
        for (name, c) in silent {
            let closed = c.waitForClose(timeout: max(0.1, 4 - Date().timeIntervalSince(silentStart)))
            XCTAssertNotNil(closed, "\(name): still open 4 s after connecting (headerTimeoutMs 1000)")
            if closed != nil { print(String(format: "%@: closed %.2f s after connecting", name, Date().timeIntervalSince(silentStart))) }
        }
        let back = eventually(timeout: 2) { (try? open()) ?? -1 <= before }
        XCTAssertNotNil(back, "open connections \((try? open()) ?? -1), before the clients \(before)")
        XCTAssertTrue(edge.isRunning, "the edge died")
    }

    /// A client that asks for a large answer and then takes none of it (its receive window stays shut) is cut off once
    /// it has taken nothing for `sendTimeoutMs`, and the origin connection with it: over HTTP/1.1 its connection is
    /// closed, over h2c its stream is reset (a stream whose window is never reopened); through the lanes and the full
    /// path (`/expose/` is a caching route). Before, the edge held the client and the origin connection, and the
    /// answer's buffers, for as long as the client liked: the origin timeout does not count while the edge itself holds
    /// the origin's reads back.
    func test_limits_aClientThatTakesNothingIsCutOffAtTheSendTimeout() throws {
        let sendTimeoutMs = 2000
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin], extra: ["responseTimeoutMs": 1000])],
                                 routes: [route(pathPrefix: "/expose/", extra: ["cache": ["enabled": true]]), route()],
                                 proxy: ["limits": ["sendTimeoutMs": sendTimeoutMs]]) { t in Self.acceptH2C(&t) }
        let open = { (try edge.status()["stats"] as? [String: Any])?["connections"] as? Int ?? -1 }
        usleep(300_000)
        let before = try open()
        var held = [EdgeConnection]()
        for target in ["/bytes/30000000", "/expose/bytes/30000001"] {
            let c = try EdgeConnection(port: edge.port, receiveBuffer: 4096)
            held.append(c)
            try c.send("GET \(target) HTTP/1.1\r\nHost: www.example.test\r\n\r\n")
            let closed = eventually(timeout: 8) { (try? open()) ?? 99 <= before }
            print("HTTP/1.1 \(target), a client that reads nothing (sendTimeoutMs \(sendTimeoutMs)): "
                  + (closed.map { String(format: "closed after %.1f s", $0) } ?? "open after 8 s"))
            XCTAssertNotNil(closed, "\(target): still open 8 s after its last read")
        }
        for target in ["/bytes/30000002", "/expose/bytes/30000003"] {
            let r = try runPythonJSON("h2_idle.py", ["\(edge.port)", "--wait", "8", "--no-ack", "--get", target], timeout: 20)
            print("h2c \(target), a client that opens no window (sendTimeoutMs \(sendTimeoutMs)): \(r)")
            XCTAssertNotNil(r["reset_after"] as? Double, "h2c \(target): the stream was not reset within 8 s: \(r)")
        }
        let stats = try edge.status()["stats"] as? [String: Any]
        XCTAssertEqual(stats?["pass_through"] as? Int, 2, "the lanes took /bytes/, the full path /expose/: \(stats ?? [:])")
        // A slow reader that keeps taking bytes is not cut off: 10 MB (more than the kernel buffers) read 2.5 MB at a time
        // with pauses of 1.5 s, so the edge's side stops being writable between bursts for longer, in all, than the
        // send timeout.
        for target in ["/bytes/10000000", "/expose/bytes/10000001"] {
            let r = try slowRead(port: edge.port, target: target, total: 10_000_000)
            print("HTTP/1.1 \(target), a slow reader: \(r.summary)")
            XCTAssertGreaterThan(r.received, 10_000_000, "\(target): the whole answer reached the slow reader")
            XCTAssertNil(r.closed, "\(target): the slow reader's connection was closed")
            XCTAssertGreaterThan(r.seconds, 3, "\(target): the reader was slow (longer than the send timeout)")
        }
        // Over h2c, through the connection's lane: the stream's held DATA bytes hold the origin's reads and let them go
        // again as the client's window updates let the frames leave; a reader slower than the send timeout gets it all.
        try slowH2Read(port: edge.port, target: "/bytes/10000002", bytes: 10_000_002, longerThan: 2.5,
                       what: "h2c /bytes/10000002 through the lane")
        let after = try edge.status()["stats"] as? [String: Any]
        XCTAssertEqual(after?["pass_through"] as? Int, 4, "the lanes took every /bytes/ request: \(after ?? [:])")
        XCTAssertTrue(edge.isRunning, "the edge died")
        withExtendedLifetime(held) {}
    }

    /// A cache HIT is written whole at once: a slow reader still takes it for longer than the keep-alive timeout. The
    /// connection is idle only once the answer has left (before, the keep-alive timeout counted from when the HIT was
    /// queued and cut the download off); a client that stops taking it is still bounded by the send timeout — over
    /// HTTP/1.1 and over h2c, where a slow reader also keeps it.
    func test_limits_aSlowReaderOfALargeCacheHitGetsAllOfIt() throws {
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route(extra: ["cache": ["enabled": true]])],
                                 proxy: ["limits": ["keepAliveTimeoutMs": 1000, "sendTimeoutMs": 2500],
                                         "cache": ["maxObjectBytes": 33554432]]) { t in Self.acceptH2C(&t) }
        let target = "/cache/big?cc=max-age%3D600&n=10000000"
        let miss = try EdgeHTTP.get(port: edge.port, target, timeout: 30)
        XCTAssertEqual(miss.body.count, 10_000_000)
        let r = try slowRead(port: edge.port, target: target, total: 10_000_000)
        print("HTTP/1.1 cache HIT of 10 MB, a slow reader (keepAliveTimeoutMs 1000): \(r.summary)")
        // (It may close once the kernel holds the rest of the answer and the keep-alive timeout passes: after the last byte.)
        XCTAssertGreaterThan(r.received, 10_000_000, "the whole HIT reached the slow reader")
        XCTAssertGreaterThan(r.seconds, 3, "the reader was slow (longer than the keep-alive timeout)")
        // One that takes nothing of the HIT is closed by the send timeout.
        let stalled = try EdgeConnection(port: edge.port, receiveBuffer: 4096)
        try stalled.send("GET \(target) HTTP/1.1\r\nHost: www.example.test\r\n\r\n")
        let open = { (try edge.status()["stats"] as? [String: Any])?["connections"] as? Int ?? -1 }
        let closed = eventually(timeout: 8) { (try? open()) ?? 99 == 0 }
        print("HTTP/1.1 cache HIT of 10 MB, a client that reads nothing (sendTimeoutMs 2500): "
              + (closed.map { String(format: "closed after %.1f s", $0) } ?? "open after 8 s"))
        XCTAssertNotNil(closed, "a client that takes nothing of a HIT is closed by the send timeout")
        withExtendedLifetime(stalled) {}
        // Over h2c: a stream that never opens its window has the HIT reset at the send timeout; curl limited to 2 MB/s
        // (longer than the send timeout for the HIT; the stream's writability comes back with each window update) gets
        // all of it.
        let r2 = try runPythonJSON("h2_idle.py", ["\(edge.port)", "--wait", "8", "--no-ack", "--get", target], timeout: 20)
        print("h2c cache HIT of 10 MB, a client that opens no window (sendTimeoutMs 2500): \(r2)")
        XCTAssertNotNil(r2["reset_after"] as? Double, "h2c: the stalled HIT stream was not reset: \(r2)")
        try slowH2Read(port: edge.port, target: target, bytes: 10_000_000, longerThan: 2.6, what: "h2c cache HIT of 10 MB")
    }

    /// `curl --http2-prior-knowledge --limit-rate 2M` of `target`: it must get all `bytes` over HTTP/2 and take longer
    /// than `longerThan` seconds (a send timeout it must outlast).
    private func slowH2Read(port: UInt16, target: String, bytes: Int, longerThan: Double, what: String) throws {
        guard let curl = IntegrationEnvironment.which("curl") else { throw IntegrationError("curl not found") }
        let c = try runCommand(curl, ["-sS", "--http2-prior-knowledge", "--limit-rate", "2M", "-o", "/dev/null",
                                      "-w", "%{http_version} %{size_download} %{time_total}", "-H", "Host: www.example.test",
                                      "http://127.0.0.1:\(port)\(target)"], timeout: 60)
        print("\(what), curl --limit-rate 2M: \(c.stdout) \(c.stderr)")
        let fields = c.stdout.split(separator: " ")
        XCTAssertEqual(fields.count, 3, c.stdout + c.stderr)
        guard fields.count == 3 else { return }
        XCTAssertEqual(fields[0], "2")
        XCTAssertEqual(fields[1], "\(bytes)", "\(what): the slow h2 reader got the whole answer")
        XCTAssertGreaterThan(Double(fields[2]) ?? 0, longerThan, "\(what): slower than the send timeout")
    }

    /// Reads `target`'s answer (`total` body bytes) 2.5 MB at a time with pauses of 1.5 s (10 MB is more than the
    /// kernel buffers, so the edge's side stops being writable between bursts).
    private func slowRead(port: UInt16, target: String, total: Int) throws
        -> (received: Int, bursts: Int, closed: EdgeCloseKind?, seconds: Double, summary: String) {
        let c = try EdgeConnection(port: port, receiveBuffer: 4096)
        try c.send("GET \(target) HTTP/1.1\r\nHost: www.example.test\r\n\r\n")
        var received = 0, bursts = 0, closed: EdgeCloseKind?
        var buffer = [UInt8](repeating: 0, count: 65536)
        let t0 = Date()
        while received < total && closed == nil && Date().timeIntervalSince(t0) < 60 {
            var burst = 0
            while burst < 2_500_000 && closed == nil {
                var pfd = pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 2000) > 0 else { break }
                let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { closed = n == 0 ? .eof : .reset } else { burst += n }
            }
            received += burst
            bursts += 1
            if received < total { usleep(1_500_000) }
        }
        let seconds = Date().timeIntervalSince(t0)
        let summary = String(format: "%d bytes in %d bursts over %.1f s, %@", received, bursts, seconds,
                             closed.map { "closed (\($0))" } ?? "still open")
        return (received, bursts, closed, seconds, summary)
    }
}
