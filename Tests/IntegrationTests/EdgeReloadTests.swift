import Foundation
import XCTest

/// SIGHUP on `lodestar edge`: a good topology takes effect for new requests, a bad one is refused and the running
/// configuration kept.
final class EdgeReloadTests: EdgeTestCase {
    func test_sighupAppliesAGoodTopologyAndRefusesABadOne() throws {
        let a = try startOrigin("a")
        let b = try startOrigin("b")
        var topology: [String: Any] = [:]
        let edge = try startEdge(pools: ["web": pool([a])], routes: [route(pool: "web")]) { topology = $0 }
        let pid = try XCTUnwrap(edge.pid)
        let before = try EdgeHTTP.get(port: edge.port, "/echo")
        XCTAssertEqual(before.origin, "a", "\(before)")

        // Good: the route now goes to pool "other" (origin b), with a response header rule.
        var good = topology
        good["origins"] = ["web": pool([a]), "other": pool([b])]
        good["routes"] = [route(pool: "other", extra: ["responseHeaders": ["set": ["X-Reloaded": "yes"]]])]
        try JSONSerialization.data(withJSONObject: good).write(to: URL(fileURLWithPath: edge.topologyPath), options: .atomic)
        kill(pid, SIGHUP)
        let moved = eventually(timeout: 5) { (try? EdgeHTTP.get(port: edge.port, "/echo"))?.origin == "b" }
        XCTAssertNotNil(moved, "requests did not move to the new pool after SIGHUP\n\(edge.log)")
        let after = try EdgeHTTP.get(port: edge.port, "/echo")
        XCTAssertEqual(after.header("X-Reloaded"), "yes", "\(after)")
        XCTAssertTrue(edge.log.contains("reloaded"), edge.log)

        // Bad: a route naming a pool that does not exist. Refused with file, path and reason; b keeps serving.
        var bad = good
        bad["routes"] = [route(pool: "nope")]
        try JSONSerialization.data(withJSONObject: bad).write(to: URL(fileURLWithPath: edge.topologyPath), options: .atomic)
        kill(pid, SIGHUP)
        let refused = eventually(timeout: 5) { edge.log.contains("reload refused") }
        XCTAssertNotNil(refused, "no refusal logged\n\(edge.log)")
        // The log line is logfmt: the quotes around the pool name are escaped inside the quoted message.
        XCTAssertTrue(edge.log.contains("\(edge.topologyPath): routes[0].pool: unknown origin pool \\\"nope\\\""), edge.log)
        for _ in 0..<5 {
            let r = try EdgeHTTP.get(port: edge.port, "/echo")
            XCTAssertEqual(r.status, 200, "\(r)")
            XCTAssertEqual(r.origin, "b", "the running configuration must stay after a refused reload\n\(r)")
        }
        XCTAssertTrue(edge.isRunning)
    }
}
