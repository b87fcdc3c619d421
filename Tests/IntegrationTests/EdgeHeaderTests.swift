import Foundation
import XCTest

/// Header handling between client and origin: hop-by-hop fields, X-Forwarded-*, Via, request ids, route rules, and no
/// origin address ever shown to a client.
final class EdgeHeaderTests: EdgeTestCase {
    private let requestRules: [String: Any] = ["set": ["X-Edge-Route": "main"], "remove": ["X-Internal"]]
    private let responseRules: [String: Any] = ["set": ["X-Served-By": "lodestar"], "remove": ["X-Powered-By"]]

    /// The main route ("/") and an "/expose" route with exposeOriginServer, both with the header rules.
    private func startHeaderEdge() throws -> (EdgeNode, EdgeOrigin) {
        let origin = try startOrigin("o1")
        let rules: [String: Any] = ["requestHeaders": requestRules, "responseHeaders": responseRules]
        var expose = rules
        expose["exposeOriginServer"] = true
        var main = rules
        main["exposeOriginServer"] = false
        let edge = try startEdge(pools: ["web": pool([origin])],
                                 routes: [route(extra: main), route(pathPrefix: "/expose", extra: expose)])
        return (edge, origin)
    }

    /// Client hop-by-hop fields never reach the origin; the origin's never reach the client; Server only with
    /// exposeOriginServer.
    func test_headers_hopByHopRemovedBothWays() throws {
        let (edge, _) = try startHeaderEdge()
        let c = try EdgeConnection(port: edge.port)
        try c.send(EdgeRequest.make("GET", "/echo", headers: [
            ("Connection", "X-Foo"), ("X-Foo", "1"), ("Keep-Alive", "5"), ("TE", "trailers"), ("Upgrade", "h2c"),
            ("Proxy-Connection", "keep-alive"), ("X-Kept-Request", "yes"),
        ]))
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, "\(r)")
        for name in ["Connection", "X-Foo", "Keep-Alive", "TE", "Upgrade", "Proxy-Connection"] {
            XCTAssertEqual(r.echoed(name), [], "origin must not see \(name): \(r.echoedHeaders)")
        }
        XCTAssertEqual(r.echoed("X-Kept-Request"), ["yes"], "an ordinary header passes")

        try c.send(EdgeRequest.make("GET", "/reply-headers"))
        let reply = try c.readResponse()
        XCTAssertEqual(reply.status, 200, "\(reply)")
        XCTAssertFalse(reply.has("Server"), "Server hidden: \(reply.rawHead)")
        XCTAssertFalse(reply.has("X-Secret"), "field named by the origin's Connection: \(reply.rawHead)")
        XCTAssertFalse(reply.has("X-Powered-By"), "removed by the route: \(reply.rawHead)")
        XCTAssertFalse(reply.has("Keep-Alive"), "\(reply.rawHead)")
        XCTAssertFalse(reply.has("Proxy-Connection"), "\(reply.rawHead)")
        XCTAssertFalse(reply.values("Connection").contains { $0.lowercased().contains("x-secret") }, "\(reply.rawHead)")
        XCTAssertEqual(reply.header("X-Kept"), "yes", "ordinary response header passes: \(reply.rawHead)")
        XCTAssertEqual(reply.header("X-Served-By"), "lodestar", "\(reply.rawHead)")

        try c.send(EdgeRequest.make("GET", "/expose/reply-headers"))
        let exposed = try c.readResponse()
        XCTAssertEqual(exposed.status, 200, "\(exposed)")
        XCTAssertEqual(exposed.header("Server"), "secret-origin/1.0", "exposeOriginServer: true lets Server through: \(exposed.rawHead)")
        XCTAssertFalse(exposed.has("X-Secret"), "\(exposed.rawHead)")
    }

    /// X-Forwarded-For (appended), X-Forwarded-Proto, X-Forwarded-Host, Via both ways.
    func test_headers_forwardedAndVia() throws {
        let (edge, _) = try startHeaderEdge()
        let c = try EdgeConnection(port: edge.port)
        try c.send(EdgeRequest.make("GET", "/echo", host: "www.example.test:8080"))
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, "\(r)")
        XCTAssertEqual(r.echoed("X-Forwarded-For"), ["127.0.0.1"], "\(r.echoedHeaders)")
        XCTAssertEqual(r.echoed("X-Forwarded-Proto"), ["http"], "\(r.echoedHeaders)")
        XCTAssertEqual(r.echoed("X-Forwarded-Host"), ["www.example.test:8080"], "\(r.echoedHeaders)")
        XCTAssertEqual(r.echoed("Via"), ["1.1 e1"], "\(r.echoedHeaders)")
        XCTAssertEqual(r.echoed("Host"), ["www.example.test:8080"], "Host passes unchanged")
        XCTAssertEqual(r.values("Via"), ["1.1 e1"], "response Via: \(r.rawHead)")

        // Incoming X-Forwarded-For and Via are appended to; spoofed X-Forwarded-Proto/Host are replaced.
        try c.send(EdgeRequest.make("GET", "/echo", headers: [
            ("X-Forwarded-For", "198.51.100.9"), ("Via", "1.0 proxy-a"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
        ]))
        let chained = try c.readResponse()
        XCTAssertEqual(chained.echoed("X-Forwarded-For"), ["198.51.100.9, 127.0.0.1"], "\(chained.echoedHeaders)")
        XCTAssertEqual(chained.echoed("Via"), ["1.0 proxy-a, 1.1 e1"], "\(chained.echoedHeaders)")
        XCTAssertEqual(chained.echoed("X-Forwarded-Proto"), ["http"], "client cannot claim https: \(chained.echoedHeaders)")
        XCTAssertEqual(chained.echoed("X-Forwarded-Host"), ["www.example.test"], "\(chained.echoedHeaders)")
    }

    /// A sane X-Request-ID passes through and is echoed; a missing or unacceptable one is replaced by a generated id
    /// that the origin and the client both see.
    func test_headers_requestId() throws {
        let (edge, _) = try startHeaderEdge()
        let c = try EdgeConnection(port: edge.port)
        try c.send(EdgeRequest.make("GET", "/echo", headers: [("X-Request-ID", "req-abc.123:x_y")]))
        let given = try c.readResponse()
        XCTAssertEqual(given.echoed("X-Request-ID"), ["req-abc.123:x_y"], "passed through: \(given.echoedHeaders)")
        XCTAssertEqual(given.header("X-Request-ID"), "req-abc.123:x_y", "echoed to the client: \(given.rawHead)")

        var generated = Set<String>()
        for (label, headers) in [("none", [(String, String)]()), ("spaces", [("X-Request-ID", "bad id with spaces")]),
                                 ("too long", [("X-Request-ID", String(repeating: "a", count: 300))]),
                                 ("quote", [("X-Request-ID", "x\"y")])] {
            try c.send(EdgeRequest.make("GET", "/echo", headers: headers))
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200, "\(label): \(r)")
            let seen = r.echoed("X-Request-ID")
            XCTAssertEqual(seen.count, 1, "\(label): origin sees one request id: \(r.echoedHeaders)")
            let id = r.header("X-Request-ID") ?? ""
            XCTAssertFalse(id.isEmpty, "\(label): response carries a request id: \(r.rawHead)")
            XCTAssertEqual(seen.first, id, "\(label): the origin's and the client's ids agree")
            XCTAssertNotEqual(id, headers.first?.1, "\(label): an unacceptable id is replaced")
            XCTAssertTrue(id.utf8.count <= 128 && !id.contains(" "), "\(label): generated id looks sane: \(id)")
            generated.insert(id)
        }
        XCTAssertEqual(generated.count, 4, "generated ids are unique: \(generated)")
    }

    /// Route rules: request set replaces a client's value, remove drops; response set/remove.
    func test_headers_routeSetAndRemoveRules() throws {
        let (edge, _) = try startHeaderEdge()
        let c = try EdgeConnection(port: edge.port)
        try c.send(EdgeRequest.make("GET", "/echo", headers: [("X-Edge-Route", "spoofed"), ("X-Internal", "secret")]))
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, "\(r)")
        XCTAssertEqual(r.echoed("X-Edge-Route"), ["main"], "set replaces: \(r.echoedHeaders)")
        XCTAssertEqual(r.echoed("X-Internal"), [], "removed: \(r.echoedHeaders)")
        XCTAssertEqual(r.values("X-Served-By"), ["lodestar"], "\(r.rawHead)")
        XCTAssertFalse(r.has("X-Powered-By"), "\(r.rawHead)")
        XCTAssertEqual(r.header("X-Origin"), "o1", "other origin headers pass")
    }

    /// No response header (and no error body) names an origin server, whatever the outcome: 200, 502, 503, 504.
    func test_headers_originAddressNeverShown() throws {
        let live = try startOrigin("o1")
        let slow = try startOrigin("slow", delayMs: 1500)
        let deadPort = try freePort()  // nothing listens there
        let downPort = try freePort()
        let edge = try startEdge(
            pools: [
                "web": pool([live]),
                "dead": ["servers": ["127.0.0.1:\(deadPort)"], "retries": 1, "connectTimeoutMs": 500],
                "down": ["servers": ["127.0.0.1:\(downPort)"],
                         "healthCheck": ["path": "/healthz", "intervalMs": 200, "timeoutMs": 200, "rise": 1, "fall": 1]],
                "slow": ["servers": [slow.address], "responseTimeoutMs": 300],
            ],
            routes: [route(pool: "web", hosts: ["www.example.test"]), route(pool: "dead", hosts: ["dead.example.test"]),
                     route(pool: "down", hosts: ["down.example.test"]), route(pool: "slow", hosts: ["slow.example.test"])])
        _ = eventually(timeout: 3) { (try? edge.serverStatus(pool: "down", address: "127.0.0.1:\(downPort)")) == "down" }

        func check(_ r: EdgeReply, _ label: String, ports: [UInt16]) {
            for (name, value) in r.headers {
                for p in ports {
                    XCTAssertFalse(value.contains("127.0.0.1:\(p)") || value.contains(":\(p)"),
                                   "\(label): header \(name): \(value) names an origin")
                }
            }
            if r.status >= 500 {
                for p in ports {
                    XCTAssertFalse(r.text.contains("\(p)"), "\(label): error body names origin port \(p): \(r.text)")
                }
                XCTAssertFalse(r.text.contains("127.0.0.1"), "\(label): error body names an origin address: \(r.text)")
            }
        }
        let ok = try EdgeHTTP.get(port: edge.port, "/bytes/10", host: "www.example.test")
        XCTAssertEqual(ok.status, 200, "\(ok)")
        check(ok, "200", ports: [live.port])

        let bad = try EdgeHTTP.get(port: edge.port, "/echo", host: "dead.example.test")
        XCTAssertEqual(bad.status, 502, "unreachable origin: \(bad)")
        check(bad, "502", ports: [deadPort])

        let unavailable = try EdgeHTTP.get(port: edge.port, "/echo", host: "down.example.test")
        XCTAssertEqual(unavailable.status, 503, "pool with no healthy server: \(unavailable)")
        check(unavailable, "503", ports: [downPort])

        let timedOut = try EdgeHTTP.get(port: edge.port, "/echo", host: "slow.example.test")
        XCTAssertEqual(timedOut.status, 504, "origin slower than responseTimeoutMs: \(timedOut)")
        check(timedOut, "504", ports: [slow.port])

        // A redirect to the origin's own address is rewritten to the name the client used (nginx's proxy_redirect).
        let redirect = try EdgeHTTP.get(port: edge.port, "/redirect", host: "www.example.test")
        XCTAssertEqual(redirect.status, 302, "\(redirect)")
        XCTAssertEqual(redirect.header("Location"), "http://www.example.test/target?x=1", "\(redirect)")
        XCTAssertEqual(redirect.header("Content-Location"), "http://www.example.test/here", "\(redirect)")
        XCTAssertEqual(redirect.header("Link"), "<http://elsewhere.example/>; rel=next", "other URLs are left alone")
        check(redirect, "302", ports: [live.port])

        // A 5xx from the origin itself passes through (it is the origin's own body) without edge-added addresses.
        let fromOrigin = try EdgeHTTP.get(port: edge.port, "/status/500", host: "www.example.test")
        XCTAssertEqual(fromOrigin.status, 500, "\(fromOrigin)")
        for (name, value) in fromOrigin.headers {
            XCTAssertFalse(value.contains(":\(live.port)"), "origin 500: header \(name): \(value)")
        }
    }
}
