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

    /// SIGHUP with a changed `listen`: the added address accepts, the removed one stops accepting while the request
    /// it was serving completes (with `Connection: close`), and an address that cannot be bound refuses the whole
    /// reload with the listener's path and reason while the running listeners go on.
    func test_sighupOpensAddedListenersAndClosesRemovedOnesAfterTheirRequests() throws {
        let origin = try startOrigin("slow", delayMs: 1500)
        var topology: [String: Any] = [:]
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()]) { topology = $0 }
        let pid = try XCTUnwrap(edge.pid)
        let old = edge.port
        let added = try freePort()
        func writeListen(_ listen: [String]) throws {
            var t = topology
            var edges = try XCTUnwrap(t["edges"] as? [[String: Any]])
            edges[0]["listen"] = listen
            t["edges"] = edges
            try JSONSerialization.data(withJSONObject: t).write(to: URL(fileURLWithPath: edge.topologyPath), options: .atomic)
        }

        let inFlight = try EdgeConnection(port: old)
        try inFlight.send(EdgeRequest.make("GET", "/echo"))
        usleep(300_000)  // the request is at the (slow) origin
        try writeListen(["127.0.0.1:\(added)"])
        kill(pid, SIGHUP)
        let answer = try inFlight.readResponse(timeout: 10)
        XCTAssertEqual(answer.status, 200, "the request in flight on the removed listener completes: \(answer)")
        XCTAssertEqual(answer.header("Connection")?.lowercased(), "close", "\(answer)")
        XCTAssertNotNil(inFlight.waitForClose(timeout: 5), "the removed listener's connection closes after its answer")
        XCTAssertNotNil(eventually(timeout: 5) { (try? EdgeConnection(port: old)) == nil },
                        "the removed address stops accepting\n\(edge.log)")
        let fresh = try EdgeHTTP.get(port: added, "/echo")
        XCTAssertEqual(fresh.status, 200, "the added address serves: \(fresh)")
        XCTAssertTrue(edge.log.contains("added=1") && edge.log.contains("removed=1"), edge.log)

        // An address already in use (another process listens there): the reload is refused whole.
        let busy = try startOrigin("busy")
        try writeListen(["127.0.0.1:\(added)", "127.0.0.1:\(busy.port)"])
        kill(pid, SIGHUP)
        XCTAssertNotNil(eventually(timeout: 5) {
            edge.log.contains("edges[0].listen[1]: cannot listen on 127.0.0.1:\(busy.port): Address already in use")
        }, edge.log)
        XCTAssertEqual(try EdgeHTTP.get(port: added, "/echo").status, 200)
        XCTAssertTrue(edge.isRunning)
    }
}
