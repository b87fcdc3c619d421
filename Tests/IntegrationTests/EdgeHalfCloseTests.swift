import Foundation
import XCTest

/// Clients that shut their sending side after the request (`nc -q`, some scripts) still get their answers.
final class EdgeHalfCloseTests: EdgeTestCase {
    func test_halfClosedClientGetsEveryCompleteRequestAnswered() throws {
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route(pool: "web")])

        // One request, then the write side shut: answered, then closed by the edge.
        let one = try EdgeConnection(port: edge.port)
        try one.send(EdgeRequest.make("GET", "/echo"))
        one.shutdownWrite()
        let reply = try one.readResponse(timeout: 5)
        XCTAssertEqual(reply.status, 200, "\(reply)")
        XCTAssertEqual(reply.origin, "o1", "\(reply)")
        XCTAssertNotNil(one.waitForClose(timeout: 3), "the edge should close after answering a half-closed client")

        // Two pipelined requests, then the write side shut: both answered in order.
        let two = try EdgeConnection(port: edge.port)
        try two.send(EdgeRequest.make("GET", "/echo?n=1") + EdgeRequest.make("GET", "/echo?n=2"))
        two.shutdownWrite()
        let first = try two.readResponse(timeout: 5)
        let second = try two.readResponse(timeout: 5)
        XCTAssertEqual([first.status, second.status], [200, 200])
        XCTAssertEqual(first.json?["path"] as? String, "/echo?n=1", "\(first)")
        XCTAssertEqual(second.json?["path"] as? String, "/echo?n=2", "\(second)")
        XCTAssertNotNil(two.waitForClose(timeout: 3))

        // An idle connection shut by the client is closed, and the edge keeps serving.
        let idle = try EdgeConnection(port: edge.port)
        idle.shutdownWrite()
        XCTAssertNotNil(idle.waitForClose(timeout: 3))
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, "/echo").status, 200)
    }
}
