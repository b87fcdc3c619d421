import Foundation
import XCTest

/// The HTTP/1.1 pass-through lane against the full HTTP/1.1 path: two edges over the same origin, one with
/// `proxy.passThrough` on (the default) and one with it off, asked the same requests on keep-alive connections. Every
/// answer must be the same — status, body, and every header but the per-request ones — and the lane must really
/// have answered them (its counter in /status).
final class EdgePassThroughTests: EdgeTestCase {
    /// Requests the lane takes: different origin framings (length, chunked in pieces, a body ended by the origin's
    /// close is not among the origin's endpoints), an interim 103, HEAD, 204/404 statuses, a redirect to the origin,
    /// hop-by-hop fields both ways, the origin's own Keep-Alive timeout.
    private let laneRequests: [(method: String, target: String, headers: [(String, String)])] = [
        ("GET", "/echo?x=1", [("X-Forwarded-For", "198.51.100.9"), ("Via", "1.0 client-proxy"), ("X-Internal", "drop me"),
                              ("Cookie", "a=b"), ("Accept", "*/*"), ("X-Request-ID", "plain-id-1")]),
        ("GET", "/bytes/1000", []),
        ("GET", "/bytes/300000", []),
        ("GET", "/stream/2500000?chunked=1", []),
        ("GET", "/stream/1500000", []),
        ("GET", "/stream/3000?chunked=1&trailer=1", []),
        ("HEAD", "/bytes/4096", []),
        ("GET", "/status/204", []),
        ("GET", "/status/304", []),
        ("GET", "/status/404", []),
        ("GET", "/status/503", []),
        ("GET", "/redirect", []),
        ("GET", "/reply-headers", [("Connection", "X-Foo"), ("X-Foo", "1")]),
        ("GET", "/interim?code=103", []),
        ("GET", "/keepalive/5/bytes/10", []),
        ("GET", "/gzip", []),
        ("DELETE", "/echo", []),
    ]

    /// Both edges' cleartext listeners also take h2c.
    private func startPair() throws -> (lane: EdgeNode, full: EdgeNode) {
        let origin = try startOrigin("o1")
        let rules: [String: Any] = ["requestHeaders": ["set": ["X-Edge-Route": "main"], "remove": ["X-Internal"]],
                                    "responseHeaders": ["set": ["X-Served-By": "lodestar"], "remove": ["X-Powered-By"]]]
        let lane = try startEdge(pools: ["web": pool([origin])], routes: [route(extra: rules)]) { Self.acceptH2C(&$0) }
        let full = try startEdge(pools: ["web": pool([origin])], routes: [route(extra: rules)],
                                 proxy: ["passThrough": false]) { Self.acceptH2C(&$0) }
        return (lane, full)
    }

    /// One request over h2c (curl, prior knowledge): the status line and fields as curl prints them, normalized as
    /// above, and the body's length and sum.
    private func askH2(_ edge: EdgeNode, _ method: String, _ target: String, headers: [(String, String)],
                       decode: Bool = false) throws -> String {
        guard let curl = IntegrationEnvironment.which("curl") else { throw IntegrationError("curl not found") }
        var args = ["-sS", "--max-time", "20", "--http2-prior-knowledge", "-D", "-", "-o", "body.bin", "-H", "Host: www.example.test"]
        // curl asks for every coding it knows and decodes the answer (the compressed bytes may differ: each read
        // from the origin is flushed through the encoder, and the two edges' reads need not fall alike).
        if decode { args.append("--compressed") }
        for (n, v) in headers { args += ["-H", "\(n): \(v)"] }
        args += method == "HEAD" ? ["-I"] : ["-X", method]
        args.append("http://127.0.0.1:\(edge.port)\(target)")
        let r = try runCommand(curl, args, timeout: 30, currentDirectory: workFolder)
        guard r.status == 0 else { throw IntegrationError("curl \(target): \(r.stderr)") }
        // (With -I curl writes the head to the body file too.)
        let body = method == "HEAD" ? Data() : (try? Data(contentsOf: workFolder.appendingPathComponent("body.bin"))) ?? Data()
        let skip: Set<String> = ["date", "x-request-id", "last-modified"]
        var lines = r.stdout.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let status = lines.isEmpty ? "" : lines.removeFirst()
        var fields = lines.filter { line in !skip.contains(line.split(separator: ":").first.map { $0.lowercased() } ?? "") }
        if decode && fields.contains(where: { $0.hasPrefix("content-encoding:") }) {
            fields.removeAll { $0.hasPrefix("content-length:") }
        }
        var summary = "\(body.count) bytes, sum \(body.reduce(0) { ($0 &* 31) &+ Int($1) })"
        if var json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] {
            json["seconds"] = nil
            json["headers"] = (json["headers"] as? [[String]])?.filter { $0.first?.lowercased() != "x-request-id" }
            fields.removeAll { $0.hasPrefix("content-length:") }
            summary = String(decoding: (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
        }
        return status + "\n" + fields.sorted().joined(separator: "\n").replacingOccurrences(of: ":\(edge.port)", with: ":PORT")
            + "\n\n" + summary.replacingOccurrences(of: ":\(edge.port)", with: ":PORT")
    }

    /// HTTP/2 streams: the same answers from the stream lane (HEADERS and DATA frames straight from the origin's
    /// bytes) and from the full path (swift-nio-http2's HTTP/1 codec and `ProxyHandler`).
    func test_passThrough_http2StreamsAnswerAsTheFullPathDoes() throws {
        let (lane, full) = try startPair()
        // Not here: /interim (curl -D prints the 103 too; covered over HTTP/1.1). /status/204 is: its origin sends a
        // Content-Length (and a body) with the 204, which the full path once passed on, so swift-nio-http2 reset the
        // stream for ending short of it.
        let requests = laneRequests.filter { !$0.target.hasPrefix("/interim") }
        for r in requests {
            let a = try askH2(lane, r.method, r.target, headers: r.headers.filter { $0.0 != "Connection" && $0.0 != "X-Foo" })
            let b = try askH2(full, r.method, r.target, headers: r.headers.filter { $0.0 != "Connection" && $0.0 != "X-Foo" })
            if a != b {
                let xs = Set(a.split(separator: "\n")), ys = Set(b.split(separator: "\n"))
                XCTFail("\(r.method) \(r.target): lane only \(xs.subtracting(ys)), full path only \(ys.subtracting(xs))")
            }
            XCTAssertTrue(a.hasPrefix("HTTP/2 "), a)
        }
        XCTAssertEqual(try passThroughCount(lane), requests.count, "every stream took the lane")
        XCTAssertEqual(try passThroughCount(full), 0)
        // The origin's chunked trailers end the stream as a HEADERS frame, without the connection-specific field.
        let trailed = try askH2(lane, "GET", "/stream/3000?chunked=1&trailer=1", headers: [])
        XCTAssertTrue(trailed.contains("server-timing: total;dur=3000"), trailed)
        XCTAssertFalse(trailed.contains("close-not"), trailed)
        // A stream with a body goes the full way, on the lane's edge too.
        let post = try askH2(lane, "POST", "/echo", headers: [("Content-Type", "text/plain")])
        XCTAssertTrue(post.hasPrefix("HTTP/2 200"), post)
        XCTAssertEqual(try passThroughCount(lane), requests.count + 1, "the POST did not take the lane")
    }

    /// An answer with what differs per request taken out: the request id and dates (and the origin's echo of them).
    private func normalized(_ r: EdgeReply, port: UInt16) -> String {
        let skip: Set<String> = ["date", "x-request-id", "last-modified"]
        var fields = r.headers.filter { !skip.contains($0.name.lowercased()) }
            .map { "\($0.name.lowercased()): \($0.value)" }.sorted()
        var body = r.text
        if var json = r.json {
            fields.removeAll { $0.hasPrefix("content-length:") }  // the echo's length follows its timing field
            // The origin echoes the request: its id and the edge's own port differ between the two edges.
            json["seconds"] = nil
            if let headers = json["headers"] as? [[String]] {
                json["headers"] = headers.filter { $0.first?.lowercased() != "x-request-id" }
                    .map { $0.map { $0.replacingOccurrences(of: ":\(port)", with: ":PORT") } }
            }
            body = (try? String(decoding: JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self)) ?? body
        } else if r.body.count > 4096 {
            body = "\(r.body.count) bytes, sum \(r.body.reduce(0) { ($0 &* 31) &+ Int($1) })"
        }
        return "\(r.status) \(r.reason)\n" + fields.joined(separator: "\n").replacingOccurrences(of: ":\(port)", with: ":PORT")
            + "\n\n" + body + r.trailers.map { "\ntrailer \($0)" }.joined()
    }

    private func ask(_ edge: EdgeNode, _ requests: [(method: String, target: String, headers: [(String, String)])],
                     host: String = "www.example.test") throws -> [String] {
        let c = try EdgeConnection(port: edge.port)
        var out: [String] = []
        for r in requests {
            try c.send(EdgeRequest.make(r.method, r.target, host: host, headers: r.headers))
            var reply = try c.readResponse(timeout: 20, bodyless: r.method == "HEAD")
            while reply.status < 200 {  // interim answers, then the final one
                out.append(normalized(reply, port: edge.port))
                reply = try c.readResponse(timeout: 20, bodyless: r.method == "HEAD")
            }
            out.append(normalized(reply, port: edge.port))
        }
        return out
    }

    private func passThroughCount(_ edge: EdgeNode) throws -> Int {
        (try edge.status()["stats"] as? [String: Any])?["pass_through"] as? Int ?? -1
    }

    func test_passThrough_answersAsTheFullPathDoes() throws {
        let (lane, full) = try startPair()
        let a = try ask(lane, laneRequests)
        let b = try ask(full, laneRequests)
        XCTAssertEqual(a.count, laneRequests.count + 1, "one interim answer besides the final ones")
        XCTAssertEqual(a.count, b.count)
        for (x, y) in zip(a, b) where x != y {
            let xs = Set(x.split(separator: "\n")), ys = Set(y.split(separator: "\n"))
            XCTFail("\(x.prefix(12)): the lane and the full path differ: lane only \(xs.subtracting(ys)), full path only \(ys.subtracting(xs))")
        }
        XCTAssertTrue(a[0].contains("198.51.100.9, 127.0.0.1"), "the origin saw the forwarding fields: \(a[0])")
        XCTAssertTrue(a.contains { $0.hasPrefix("302") && $0.contains("location: http://www.example.test/target") },
                      "a redirect to the origin is renamed: \(a)")
        XCTAssertTrue(a.contains { $0.hasPrefix("103") }, "the interim answer is relayed")
        XCTAssertTrue(a[3].contains("transfer-encoding: chunked"), a[3])
        XCTAssertEqual(try passThroughCount(lane), laneRequests.count, "every request took the lane")
        XCTAssertEqual(try passThroughCount(full), 0)
    }

    /// Requests that ask for a coding, on an edge that compresses (the default): compressible answers of every origin
    /// framing, answers too short, of another type, already encoded, for HEAD; gzip, deflate, q-values.
    private let codingRequests: [(method: String, target: String, headers: [(String, String)])] = [
        ("GET", "/text/4096", [("Accept-Encoding", "gzip")]),
        ("GET", "/text/4096", [("Accept-Encoding", "deflate")]),
        ("GET", "/text/4096", [("Accept-Encoding", "gzip;q=0, deflate;q=0.5")]),
        ("GET", "/text/4096", [("Accept-Encoding", "br")]),
        ("GET", "/text/4096", [("Accept-Encoding", "gzip, deflate, br, zstd")]),
        ("GET", "/text/512", [("Accept-Encoding", "gzip")]),
        ("GET", "/stream/300000?chunked=1&type=text/plain", [("Accept-Encoding", "gzip")]),
        ("GET", "/stream/200000?type=text/plain", [("Accept-Encoding", "gzip")]),
        ("GET", "/stream/5000?chunked=1&trailer=1&type=text/plain", [("Accept-Encoding", "gzip")]),
        ("GET", "/bytes/4096?type=image/png", [("Accept-Encoding", "gzip")]),
        ("GET", "/gzip", [("Accept-Encoding", "gzip")]),
        ("HEAD", "/text/4096", [("Accept-Encoding", "gzip")]),
        ("GET", "/status/404", [("Accept-Encoding", "gzip")]),
    ]

    /// An answer compared by what it means: every field but the per-request ones, the body decoded (its compressed
    /// bytes may differ, see `askH2`).
    private func decoded(_ r: EdgeReply, port: UInt16) throws -> String {
        let skip: Set<String> = ["date", "x-request-id", "last-modified"]
        let coded = r.header("Content-Encoding") != nil
        let fields = r.headers.filter { !skip.contains($0.name.lowercased()) }
            .map { "\($0.name.lowercased()): \($0.value)" }.sorted()
        let body = coded ? try EdgeTools.inflate(r.body) : r.body
        return "\(r.status)\n" + fields.joined(separator: "\n").replacingOccurrences(of: ":\(port)", with: ":PORT")
            + "\n\n\(body.count) bytes, sum \(body.reduce(0) { ($0 &* 31) &+ Int($1) })"
            + r.trailers.map { "\ntrailer \($0)" }.joined()
    }

    /// The lanes compress as the full path does (the same coding, fields and decoded bytes), over HTTP/1.1 and h2c,
    /// and they take these requests (a browser always asks for a coding).
    func test_passThrough_compressesAsTheFullPathDoes() throws {
        let (lane, full) = try startPair()
        var h1: [[String]] = []
        for edge in [lane, full] {
            let c = try EdgeConnection(port: edge.port)
            var out: [String] = []
            for r in codingRequests {
                try c.send(EdgeRequest.make(r.method, r.target, host: "www.example.test", headers: r.headers))
                out.append(try decoded(try c.readResponse(timeout: 20, bodyless: r.method == "HEAD"), port: edge.port))
            }
            h1.append(out)
        }
        for (i, (x, y)) in zip(h1[0], h1[1]).enumerated() where x != y {
            XCTFail("\(codingRequests[i].target) \(codingRequests[i].headers): lane\n\(x)\nfull path\n\(y)")
        }
        XCTAssertTrue(h1[0][0].contains("content-encoding: gzip"), h1[0][0])
        XCTAssertTrue(h1[0][1].contains("content-encoding: deflate"), h1[0][1])
        XCTAssertTrue(h1[0][2].contains("content-encoding: deflate"), h1[0][2])
        XCTAssertFalse(h1[0][3].contains("content-encoding"), h1[0][3])
        XCTAssertTrue(h1[0][6].contains("content-encoding: gzip") && h1[0][6].contains("300000 bytes"), h1[0][6])
        XCTAssertTrue(h1[0][7].contains("content-encoding: gzip") && h1[0][7].contains("200000 bytes"), h1[0][7])
        XCTAssertTrue(h1[0][8].contains("content-encoding: gzip") && h1[0][8].contains("5000 bytes")
                      && h1[0][8].contains("trailer Server-Timing: total;dur=5000"), "the trailers follow the compressed body: \(h1[0][8])")
        XCTAssertTrue(h1[1][8].contains("trailer Server-Timing: total;dur=5000"), "the full path keeps them too: \(h1[1][8])")
        XCTAssertEqual(try passThroughCount(lane), codingRequests.count, "the lane took every request")
        // Over h2c, curl asking for every coding it knows and decoding the answers.
        let streams = codingRequests.filter { $0.method == "GET" }
        for r in streams {
            let a = try askH2(lane, r.method, r.target, headers: [], decode: true)
            let b = try askH2(full, r.method, r.target, headers: [], decode: true)
            if r.target.contains("trailer=1") { XCTAssertTrue(a.contains("server-timing: total;dur=5000"), a) }
            if a != b {
                let xs = Set(a.split(separator: "\n")), ys = Set(b.split(separator: "\n"))
                XCTFail("h2 \(r.target): lane only \(xs.subtracting(ys)), full path only \(ys.subtracting(xs))")
            }
        }
        XCTAssertEqual(try passThroughCount(lane), codingRequests.count + streams.count, "every stream took the lane")
        XCTAssertEqual(try passThroughCount(full), 0)
    }

    /// A request the lane does not take moves its connection to the full path; answers stay the same, and what
    /// follows on that connection goes the full way.
    func test_passThrough_stepsAsideMidConnection() throws {
        let (lane, full) = try startPair()
        let mixed: [(method: String, target: String, headers: [(String, String)])] = [
            ("GET", "/bytes/100", []),
            ("GET", "/echo", [("Expect", "100-continue"), ("Content-Length", "0")]),  // a body framing: the full path
            ("GET", "/bytes/200", []),
        ]
        let a = try ask(lane, mixed)
        let b = try ask(full, mixed)
        XCTAssertEqual(a, b)
        XCTAssertEqual(try passThroughCount(lane), 1, "only the first request took the lane")
        // Refused requests come from the full path too, with the lane's verdict, on a fresh connection.
        let c = try EdgeConnection(port: lane.port)
        try c.send(EdgeRequest.make("GET", "/x", host: nil))
        let refused = try c.readResponse()
        XCTAssertEqual(refused.status, 400, "\(refused)")
        XCTAssertTrue(refused.text.contains("exactly one Host header"), "\(refused)")
        XCTAssertEqual(try passThroughCount(lane), 1)
    }
}
