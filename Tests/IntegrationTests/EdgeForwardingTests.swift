import Foundation
import XCTest

/// The edge forwards bodies intact in both directions (Content-Length and chunked, up to 1 GiB streamed in bounded
/// memory), speaks HTTP/1.0, Connection: close, Expect: 100-continue and pipelining, and gzips what is worth it.
final class EdgeForwardingTests: EdgeTestCase {
    private func startPlainEdge(proxy: [String: Any] = [:], poolExtra: [String: Any] = [:]) throws -> (EdgeNode, EdgeOrigin) {
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin], extra: poolExtra)], routes: [route()], proxy: proxy)
        return (edge, origin)
    }

    // MARK: Bodies

    /// GET and POST with bodies of 0 B, 1 KiB and 10 MiB, sent with Content-Length and chunked: the origin receives
    /// every byte (length and SHA-256 it reports), with the framing the client used.
    func test_forwarding_requestBodies_contentLengthAndChunked() throws {
        let (edge, _) = try startPlainEdge()
        let c = try EdgeConnection(port: edge.port)
        // A bodiless GET first.
        try c.send(EdgeRequest.make("GET", "/echo"))
        let plain = try c.readResponse()
        XCTAssertEqual(plain.status, 200, "\(plain)")
        XCTAssertEqual(plain.json?["length"] as? Int, 0)
        XCTAssertEqual(plain.json?["method"] as? String, "GET")
        for size in [0, 1024, 10 << 20] {
            let body = EdgePattern.bytes(size)
            let sha = try EdgeTools.sha256(body)
            for method in ["GET", "POST"] {
                for chunked in [false, true] {
                    let label = "\(method) \(size) B \(chunked ? "chunked" : "Content-Length")"
                    let started = Date()
                    try c.send(EdgeRequest.make(method, "/echo?case=\(size)", body: body, chunked: chunked, chunkSize: 100_000))
                    let r = try c.readResponse(timeout: 60)
                    XCTAssertEqual(r.status, 200, "\(label): \(r)")
                    guard let j = r.json else { XCTFail("\(label): no JSON from the origin: \(r)"); continue }
                    XCTAssertEqual(j["method"] as? String, method, label)
                    XCTAssertEqual(j["length"] as? Int, size, "\(label): length the origin received")
                    XCTAssertEqual(j["sha256"] as? String, sha, "\(label): SHA-256 of what the origin received")
                    if chunked {
                        XCTAssertEqual(r.echoed("Transfer-Encoding").map { $0.lowercased() }, ["chunked"], "\(label): framing upstream")
                        XCTAssertEqual(r.echoed("Content-Length"), [], "\(label): no Content-Length with chunked upstream")
                    } else {
                        XCTAssertEqual(r.echoed("Content-Length"), ["\(size)"], "\(label): framing upstream")
                        XCTAssertEqual(r.echoed("Transfer-Encoding"), [], label)
                    }
                    if size == 10 << 20 {
                        print(String(format: "EDGE-FIGURES: %@ relayed in %.3f s", label, Date().timeIntervalSince(started)))
                    }
                }
            }
        }
    }

    /// Response bodies of 0 B, 1 KiB and 10 MiB (Content-Length and chunked from the origin) arrive byte for byte.
    func test_forwarding_responseBodies_intact() throws {
        let (edge, _) = try startPlainEdge()
        let c = try EdgeConnection(port: edge.port)
        for size in [0, 1024, 10 << 20] {
            let expected = EdgePattern.bytes(size)
            let sha = try EdgeTools.sha256(expected)
            for target in ["/bytes/\(size)", "/stream/\(size)?chunked=1"] {
                try c.send(EdgeRequest.make("GET", target))
                let r = try c.readResponse(timeout: 60)
                XCTAssertEqual(r.status, 200, "\(target): \(r)")
                XCTAssertEqual(r.body.count, size, "\(target): body length")
                if r.body != expected {
                    XCTFail("\(target): body differs from the origin's (sha256 \(try EdgeTools.sha256(r.body)) != \(sha))")
                }
            }
        }
        // HEAD: the head only, the length of the GET.
        try c.send(EdgeRequest.make("HEAD", "/bytes/1024"))
        let head = try c.readResponse(bodyless: true)
        XCTAssertEqual(head.status, 200, "\(head)")
        XCTAssertEqual(head.header("Content-Length"), "1024", "\(head)")
        // The connection is still in sync after the HEAD.
        try c.send(EdgeRequest.make("GET", "/bytes/7"))
        let after = try c.readResponse()
        XCTAssertEqual(after.body, EdgePattern.bytes(7), "\(after)")
    }

    // MARK: Streaming

    /// Runs edge_client.py against the edge while sampling the edge's VmRSS every ~50 ms; returns the client's JSON.
    private func streamThroughEdge(_ edge: EdgeNode, mode: String, size: Int, pauseMs: Int, timeout: TimeInterval = 120)
        throws -> (result: [String: Any], maxRSSKiB: Int, baseRSSKiB: Int, seconds: Double) {
        let python = try EdgeTools.requirePython()
        let script = IntegrationEnvironment.testsFolder.appendingPathComponent("edge_client.py").path
        let outPath = workFolder.appendingPathComponent("client-\(mode).out")
        _ = FileManager.default.createFile(atPath: outPath.path, contents: nil)
        let out = try FileHandle(forWritingTo: outPath)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, mode, "--port", "\(edge.port)", "--size", "\(size)", "--pause-ms", "\(pauseMs)"]
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        let base = edge.rssKiB ?? 0
        var maxRSS = base
        let start = Date()
        try p.run()
        try? out.close()
        defer { if p.isRunning { stopProcess(p, grace: 1) } }
        while p.isRunning && Date().timeIntervalSince(start) < timeout {
            if let rss = edge.rssKiB { maxRSS = max(maxRSS, rss) }
            usleep(50_000)
        }
        let seconds = Date().timeIntervalSince(start)
        let text = (try? String(contentsOf: outPath, encoding: .utf8)) ?? ""
        guard !p.isRunning else {
            throw IntegrationError("\(mode) of \(size) bytes took more than \(timeout) s (max RSS \(maxRSS / 1024) MiB); output: \(text)")
        }
        let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }).map(String.init) ?? ""
        let json = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? ["raw": text]
        XCTAssertEqual(p.terminationStatus, 0, "edge_client.py \(mode) failed: \(text)")
        return (json, maxRSS, base, seconds)
    }

    /// A 1 GiB request body streams through the edge (client generates, origin counts and checksums) in < 64 MiB RSS,
    /// although the origin stops reading for 1.5 s at the start (the edge must push back on the client, not buffer).
    func test_streaming_1GiBRequestBody_boundedMemory() throws {
        let (edge, _) = try startPlainEdge(proxy: ["accessLog": false])
        let size = 1 << 30
        let s = try streamThroughEdge(edge, mode: "upload", size: size, pauseMs: 1500)
        let mib = Double(size) / 1_048_576
        print(String(format: "EDGE-FIGURES: 1 GiB request body (origin stalls 1.5 s): status %@, %@ bytes, crc32 %@ (expected %@), %.1f s, %.1f MiB/s, "
                     + "edge RSS before %.1f MiB, max %.1f MiB",
                     "\(s.result["status"] ?? "?")", "\(s.result["bytes"] ?? "?")", "\(s.result["crc32"] ?? "?")",
                     "\(s.result["expected_crc32"] ?? "?")", s.seconds, mib / s.seconds,
                     Double(s.baseRSSKiB) / 1024, Double(s.maxRSSKiB) / 1024))
        XCTAssertEqual(s.result["status"] as? Int, 200, "\(s.result)")
        XCTAssertEqual(s.result["bytes"] as? Int, size, "bytes the origin received: \(s.result)")
        XCTAssertEqual(s.result["crc32"] as? String, s.result["expected_crc32"] as? String, "checksum: \(s.result)")
        XCTAssertLessThan(s.maxRSSKiB, 64 * 1024, "edge max RSS \(s.maxRSSKiB) KiB while relaying 1 GiB upstream")
    }

    /// A 1 GiB response body streams through the edge to a client checking every byte, in < 64 MiB RSS, although the
    /// client stops reading for 1.5 s after the head (the edge must stop reading the origin, not buffer).
    func test_streaming_1GiBResponseBody_boundedMemory() throws {
        let (edge, _) = try startPlainEdge(proxy: ["accessLog": false])
        let size = 1 << 30
        let s = try streamThroughEdge(edge, mode: "download", size: size, pauseMs: 1500)
        let mib = Double(size) / 1_048_576
        print(String(format: "EDGE-FIGURES: 1 GiB response body (client stalls 1.5 s): status %@, %@ bytes, crc32 %@ (expected %@), %.1f s, %.1f MiB/s, "
                     + "edge RSS before %.1f MiB, max %.1f MiB",
                     "\(s.result["status"] ?? "?")", "\(s.result["bytes"] ?? "?")", "\(s.result["crc32"] ?? "?")",
                     "\(s.result["expected_crc32"] ?? "?")", s.seconds, mib / s.seconds,
                     Double(s.baseRSSKiB) / 1024, Double(s.maxRSSKiB) / 1024))
        XCTAssertEqual(s.result["status"] as? Int, 200, "\(s.result)")
        XCTAssertEqual(s.result["bytes"] as? Int, size, "bytes the client received: \(s.result)")
        XCTAssertEqual(s.result["crc32"] as? String, s.result["expected_crc32"] as? String, "checksum: \(s.result)")
        XCTAssertLessThan(s.maxRSSKiB, 64 * 1024, "edge max RSS \(s.maxRSSKiB) KiB while relaying 1 GiB downstream")
    }

    // MARK: HTTP versions and connection handling

    /// An HTTP/1.0 client gets an HTTP/1.0 answer with the right body, and the edge closes afterwards (no keep-alive
    /// asked); an unsized (chunked) origin answer reaches it unchunked, delimited by the close.
    func test_http10Client_getsHTTP10Answers() throws {
        let (edge, _) = try startPlainEdge()
        do {
            let c = try EdgeConnection(port: edge.port)
            try c.send("GET /bytes/1024 HTTP/1.0\r\nHost: www.example.test\r\n\r\n")
            let r = try c.readResponse()
            XCTAssertEqual(r.version, "HTTP/1.0", "\(r)")
            XCTAssertEqual(r.status, 200, "\(r)")
            XCTAssertEqual(r.body, EdgePattern.bytes(1024), "body")
            XCTAssertNotNil(c.waitForClose(timeout: 3), "HTTP/1.0 without keep-alive: the edge closes after the answer")
        }
        do {
            // No Host at all is legal in HTTP/1.0.
            let c = try EdgeConnection(port: edge.port)
            try c.send("GET /echo HTTP/1.0\r\n\r\n")
            let r = try c.readResponse()
            XCTAssertEqual(r.version, "HTTP/1.0", "\(r)")
            XCTAssertEqual(r.status, 200, "HTTP/1.0 without Host: \(r)")
            XCTAssertNotNil(c.waitForClose(timeout: 3))
        }
        do {
            let c = try EdgeConnection(port: edge.port)
            try c.send("GET /stream/5000?chunked=1 HTTP/1.0\r\nHost: www.example.test\r\n\r\n")
            let r = try c.readResponse()
            XCTAssertEqual(r.version, "HTTP/1.0", "\(r)")
            XCTAssertEqual(r.status, 200, "\(r)")
            XCTAssertFalse(r.values("Transfer-Encoding").contains { $0.lowercased().contains("chunked") }, "no chunked to HTTP/1.0: \(r)")
            XCTAssertEqual(r.body, EdgePattern.bytes(5000), "body (read to close) must be the bytes without chunk framing")
        }
        do {
            // HTTP/1.0 keep-alive, when asked for and the length is known.
            let c = try EdgeConnection(port: edge.port)
            try c.send("GET /bytes/10 HTTP/1.0\r\nHost: www.example.test\r\nConnection: keep-alive\r\n\r\n")
            let first = try c.readResponse()
            XCTAssertEqual(first.version, "HTTP/1.0")
            XCTAssertEqual(first.body, EdgePattern.bytes(10))
            XCTAssertEqual(first.header("Connection")?.lowercased(), "keep-alive", "\(first)")
            try c.send("GET /bytes/20 HTTP/1.0\r\nHost: www.example.test\r\nConnection: keep-alive\r\n\r\n")
            let second = try c.readResponse()
            XCTAssertEqual(second.body, EdgePattern.bytes(20), "\(second)")
        }
        // curl -0 agrees.
        let r = try runCommand("/usr/bin/env", ["curl", "-0", "-sS", "-D", "-", "-H", "Host: www.example.test",
                                                "http://127.0.0.1:\(edge.port)/echo"], timeout: 10)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("HTTP/1.0 200"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\"version\": \"HTTP/1.1\""), "the edge speaks HTTP/1.1 upstream: \(r.stdout)")
    }

    /// `Connection: close` from the client: the answer says so and the edge closes the connection after it.
    func test_connectionClose_edgeClosesAfterResponse() throws {
        let (edge, _) = try startPlainEdge()
        let c = try EdgeConnection(port: edge.port)
        try c.send(EdgeRequest.make("GET", "/bytes/100", headers: [("Connection", "close")]))
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, "\(r)")
        XCTAssertEqual(r.body, EdgePattern.bytes(100))
        XCTAssertEqual(r.header("Connection")?.lowercased(), "close", "\(r)")
        let closed = c.waitForClose(timeout: 3)
        XCTAssertNotNil(closed, "the edge must close after answering a Connection: close request")
        XCTAssertEqual(closed?.extra.count ?? 0, 0)
        // Without it, the connection stays open for the next request.
        let k = try EdgeConnection(port: edge.port)
        for i in 0..<3 {
            try k.send(EdgeRequest.make("GET", "/bytes/\(i + 1)"))
            XCTAssertEqual(try k.readResponse().body, EdgePattern.bytes(i + 1))
        }
    }

    /// `Expect: 100-continue`: the client gets `HTTP/1.1 100 Continue` before sending the body, then the final answer.
    func test_expect100Continue_interimBeforeBody() throws {
        let (edge, origin) = try startPlainEdge()
        let body = EdgePattern.bytes(4096)
        let sha = try EdgeTools.sha256(body)
        let c = try EdgeConnection(port: edge.port)
        try c.send("POST /echo HTTP/1.1\r\nHost: www.example.test\r\nContent-Length: \(body.count)\r\nExpect: 100-continue\r\n\r\n")
        let interim = try c.readResponse(timeout: 3)
        XCTAssertEqual(interim.status, 100, "first answer must be the interim one: \(interim)")
        XCTAssertEqual(interim.version, "HTTP/1.1", "\(interim)")
        try c.send(body)
        let final = try c.readResponse(timeout: 10)
        XCTAssertEqual(final.status, 200, "\(final)")
        XCTAssertEqual(final.json?["length"] as? Int, body.count)
        XCTAssertEqual(final.json?["sha256"] as? String, sha)
        XCTAssertEqual(final.echoed("Expect"), [], "the edge answers Expect itself")
        XCTAssertEqual(try origin.count(), 1)
    }

    /// Three requests in one write: three answers, in order.
    func test_pipelining_threeRequestsInOneWrite() throws {
        let (edge, _) = try startPlainEdge()
        let c = try EdgeConnection(port: edge.port)
        var batch = Data()
        for i in 1...3 { batch.append(EdgeRequest.make("GET", "/echo?n=\(i)")) }
        try c.send(batch)
        for i in 1...3 {
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200, "answer \(i): \(r)")
            XCTAssertEqual(r.json?["path"] as? String, "/echo?n=\(i)", "answer \(i) out of order: \(r)")
        }
        // A pipelined batch with bodies too.
        var withBodies = Data()
        for i in 1...3 { withBodies.append(EdgeRequest.make("POST", "/echo?p=\(i)", body: EdgePattern.bytes(i * 1000))) }
        try c.send(withBodies)
        for i in 1...3 {
            let r = try c.readResponse()
            XCTAssertEqual(r.json?["path"] as? String, "/echo?p=\(i)", "\(r)")
            XCTAssertEqual(r.json?["length"] as? Int, i * 1000, "\(r)")
        }
    }

    // MARK: Compression

    /// gzip for a 4 KiB text/plain answer when asked; not for small answers, image/png, already-encoded answers or
    /// clients that did not ask.
    func test_gzip_compressesOnlyWhatIsWorthIt() throws {
        let (edge, _) = try startPlainEdge(proxy: ["compression": ["enabled": true, "minBytes": 1024, "types": ["text/*", "application/json"]]])
        let c = try EdgeConnection(port: edge.port)
        let gz = [("Accept-Encoding", "gzip")]

        try c.send(EdgeRequest.make("GET", "/text/4096", headers: gz))
        let big = try c.readResponse()
        XCTAssertEqual(big.status, 200, "\(big)")
        XCTAssertEqual(big.header("Content-Encoding"), "gzip", "4 KiB text/plain with Accept-Encoding: gzip: \(big.rawHead)")
        if big.header("Content-Encoding") == "gzip" {
            XCTAssertLessThan(big.body.count, 4096, "compressed size")
            XCTAssertEqual(try EdgeTools.inflate(big.body), EdgePattern.text(4096), "decompresses to the original")
        }
        print("EDGE-FIGURES: gzip 4096 B text/plain -> \(big.body.count) B")

        try c.send(EdgeRequest.make("GET", "/text/512", headers: gz))
        let small = try c.readResponse()
        XCTAssertNil(small.header("Content-Encoding"), "512 B < minBytes stays identity: \(small.rawHead)")
        XCTAssertEqual(small.body, EdgePattern.text(512))

        try c.send(EdgeRequest.make("GET", "/bytes/4096?type=image/png", headers: gz))
        let png = try c.readResponse()
        XCTAssertNil(png.header("Content-Encoding"), "image/png is not compressed: \(png.rawHead)")
        XCTAssertEqual(png.body, EdgePattern.bytes(4096))

        try c.send(EdgeRequest.make("GET", "/gzip?n=4096", headers: gz))
        let pre = try c.readResponse()
        XCTAssertEqual(pre.values("Content-Encoding"), ["gzip"], "already gzip: passed as is: \(pre.rawHead)")
        XCTAssertEqual(try EdgeTools.inflate(pre.body), EdgePattern.text(4096), "one gunzip gives the text (not double-compressed)")

        try c.send(EdgeRequest.make("GET", "/text/4096"))
        let identity = try c.readResponse()
        XCTAssertNil(identity.header("Content-Encoding"), "no Accept-Encoding: identity: \(identity.rawHead)")
        XCTAssertEqual(identity.body, EdgePattern.text(4096))

        try c.send(EdgeRequest.make("GET", "/text/4096", headers: [("Accept-Encoding", "identity")]))
        let explicit = try c.readResponse()
        XCTAssertNil(explicit.header("Content-Encoding"), "Accept-Encoding: identity: \(explicit.rawHead)")
        XCTAssertEqual(explicit.body, EdgePattern.text(4096))
    }
}
