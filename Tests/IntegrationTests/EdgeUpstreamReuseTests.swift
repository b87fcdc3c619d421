import Foundation
import XCTest

/// Pooled (keep-alive) upstream connections that the origin closes: a request that meets one is sent again on a fresh
/// connection when that is safe, and the origin's own `Keep-Alive: timeout` keeps the edge from meeting one at all.
final class EdgeUpstreamReuseTests: EdgeTestCase {
    /// The cache-tests suite's case: a PUT (with a body) on a pooled connection the origin closed succeeds, its body
    /// whole; a POST in the same place is not sent twice (502).
    func test_requestOnPooledConnectionTheOriginClosed_isSentAgainWhenIdempotent() throws {
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()])
        let body = EdgePattern.bytes(20_000)
        let sha = try EdgeTools.sha256(body)
        let c = try EdgeConnection(port: edge.port)
        for i in 0..<3 {
            try c.send(EdgeRequest.make("PUT", "/fragile/echo", body: body))
            let r = try c.readResponse(timeout: 10)
            XCTAssertEqual(r.status, 200, "PUT \(i): \(r)")
            XCTAssertEqual(r.json?["sha256"] as? String, sha, "PUT \(i) reached the origin whole")
        }
        // The first PUT opened the connection; each later one met a pooled connection the origin then closed, and went
        // again on a new one: 1 + 2 × 2 requests seen.
        let seen = try origin.counters()
        XCTAssertEqual(seen.count, 5, seen.requests.joined(separator: "\n"))

        try c.send(EdgeRequest.make("POST", "/fragile/echo", body: body))
        let post = try c.readResponse(timeout: 10)
        XCTAssertEqual(post.status, 502, "a POST may have been acted on: not sent again: \(post)")
        XCTAssertEqual(try origin.count(), 6)
    }

    /// An origin that says `Keep-Alive: timeout=1` gets a new connection after a second of quiet; without it the
    /// pooled connection is used again.
    func test_originKeepAliveTimeoutIsHonoured() throws {
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()])
        let c = try EdgeConnection(port: edge.port)
        func get(_ target: String) throws {
            try c.send(EdgeRequest.make("GET", target))
            let r = try c.readResponse(timeout: 10)
            XCTAssertEqual(r.status, 200, "\(target): \(r)")
        }
        try get("/echo")
        let first = try origin.connections()
        Thread.sleep(forTimeInterval: 1.2)
        try get("/keepalive/1/echo")
        XCTAssertEqual(try origin.connections(), first, "no hint yet: the pooled connection is used after 1.2 s")
        Thread.sleep(forTimeInterval: 1.2)
        try get("/echo")
        XCTAssertEqual(try origin.connections(), first + 1, "after timeout=1 and 1.2 s of quiet the edge connects anew")
        XCTAssertEqual(try origin.count(), 3)
    }
}
