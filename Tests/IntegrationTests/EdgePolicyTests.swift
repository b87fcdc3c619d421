import Foundation
import XCTest

/// Per-client rate limiting (429 + Retry-After) and a route's deny rules (403).
final class EdgePolicyTests: EdgeTestCase {
    /// requestsPerSecond 5, burst 5: of 20 rapid requests the first 5 pass, later ones get 429 with Retry-After ≥ 1;
    /// after waiting, requests pass again.
    func test_rateLimit_burstThen429WithRetryAfter() throws {
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()],
                                 proxy: ["rateLimit": ["enabled": true, "requestsPerSecond": 5, "burst": 5]])
        let c = try EdgeConnection(port: edge.port)
        var statuses = [Int]()
        var retryAfter = [Int]()
        let start = Date()
        for i in 0..<20 {
            try c.send(EdgeRequest.make("GET", "/echo?i=\(i)"))
            let r = try c.readResponse()
            statuses.append(r.status)
            if r.status == 429 {
                let value = r.header("Retry-After").flatMap { Int($0) }
                XCTAssertNotNil(value, "429 without a numeric Retry-After: \(r.rawHead)")
                XCTAssertGreaterThanOrEqual(value ?? 0, 1, "Retry-After: \(r.rawHead)")
                retryAfter.append(value ?? 0)
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        let passed = statuses.filter { $0 == 200 }.count
        print(String(format: "EDGE-FIGURES: rate limit 5/s burst 5: 20 requests in %.3f s -> %@ (Retry-After %@)", elapsed,
                     statuses.map(String.init).joined(separator: " "), retryAfter.map(String.init).joined(separator: ",")))
        XCTAssertEqual(Array(statuses.prefix(5)), [200, 200, 200, 200, 200], "the burst passes")
        XCTAssertTrue((5...7).contains(passed), "about 5 of 20 rapid requests pass: \(statuses)")
        XCTAssertEqual(Array(statuses.suffix(10)), Array(repeating: 429, count: 10), "later ones are limited: \(statuses)")
        XCTAssertTrue(Set(statuses).isSubset(of: [200, 429]), "\(statuses)")
        XCTAssertEqual(try origin.count(), passed, "a 429 never reaches the origin")

        usleep(UInt32(max(1, retryAfter.max() ?? 1)) * 1_000_000 + 200_000)
        try c.send(EdgeRequest.make("GET", "/echo?after=wait"))
        let again = try c.readResponse()
        XCTAssertEqual(again.status, 200, "after waiting Retry-After: \(again)")
        // The bucket refilled only by what the wait earned: another burst is limited again.
        var burst = [Int]()
        for _ in 0..<8 {
            try c.send(EdgeRequest.make("GET", "/echo"))
            burst.append(try c.readResponse().status)
        }
        XCTAssertTrue(burst.contains(429), "limited again after another burst: \(burst)")
    }

    /// Deny rules: TRACE, /admin*, a sqlmap User-Agent → 403 without reaching the origin; everything else passes.
    func test_denyRules_forbiddenRequestsGet403() throws {
        let origin = try startOrigin("o1")
        let deny: [[String: Any]] = [["methods": ["TRACE"]], ["path": "/admin*"], ["header": "User-Agent", "value": "*sqlmap*"]]
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route(extra: ["deny": deny])])
        // A fresh connection per request: a refused request with a body closes its connection.
        let denied: [(String, String, [(String, String)])] = [
            ("TRACE", "/echo", []),
            ("GET", "/admin", []),
            ("GET", "/admin/users?x=1", []),
            ("POST", "/administrator", []),
            ("GET", "/echo", [("User-Agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")]),
            ("GET", "/echo", [("User-Agent", "Mozilla/5.0 SQLMap")]),
        ]
        for (method, target, headers) in denied {
            let r = try EdgeHTTP.request(port: edge.port, method, target, headers: headers,
                                         body: method == "POST" ? Data("x=1".utf8) : nil)
            XCTAssertEqual(r.status, 403, "\(method) \(target) \(headers): \(r)")
        }
        let allowed: [(String, String, [(String, String)])] = [
            ("GET", "/echo", [("User-Agent", "curl/8.0")]),
            ("GET", "/public/admin", []),
            ("POST", "/echo", []),
            ("OPTIONS", "/echo", []),
        ]
        for (method, target, headers) in allowed {
            let r = try EdgeHTTP.request(port: edge.port, method, target, headers: headers,
                                         body: method == "POST" ? Data("x=1".utf8) : nil)
            XCTAssertEqual(r.status, 200, "\(method) \(target) \(headers): \(r)")
        }
        let seen = try origin.counters()
        XCTAssertEqual(seen.count, allowed.count, "only allowed requests reach the origin: \(seen.requests)")
        XCTAssertFalse(seen.requests.contains { $0.hasPrefix("TRACE") || $0.contains(" /admin") }, "\(seen.requests)")
        XCTAssertEqual(try edge.stat("denied"), denied.count)
    }
}
