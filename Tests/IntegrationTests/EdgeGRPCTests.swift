import Foundation
import XCTest

/// gRPC through the edge (issue 15 item 3): a real grpcio client and server (Tests/IntegrationTests/grpc), the client
/// speaking h2c to the edge and the edge speaking h2c (or h2 over TLS) to the origin. Unary, server streaming and
/// bidirectional streaming pass; statuses and custom trailers come back; `grpc-timeout` is a deadline; failures the
/// edge makes are gRPC statuses, including an origin killed mid-stream.
final class EdgeGRPCTests: EdgeTestCase {
    private func startGRPCOrigin(name: String = "o1", tls: (cert: String, key: String)? = nil) throws -> (ScriptProcess, UInt16) {
        try requirePythonModules(["grpc", "google.protobuf"])
        let port = try freePort()
        var args = ["--port", "\(port)", "--name", name]
        if let tls { args += ["--cert", tls.cert, "--key", tls.key] }
        let origin = try ScriptProcess(python: "grpc/grpc_origin.py", args, folder: workFolder, name: "grpc-origin-\(name)")
        addTeardownBlock { origin.stop() }
        try origin.waitFor("ready", timeout: 20)
        return (origin, port)
    }

    /// An edge whose listener takes h2c, in front of the given pool.
    private func startGRPCEdge(pool: [String: Any], threads: Int = 2) throws -> EdgeNode {
        try startEdge(pools: ["grpc": pool], routes: [route(pool: "grpc")], proxy: ["threads": threads]) { t in
            Self.acceptH2C(&t)
        }
    }

    private func call(_ edge: EdgeNode, _ mode: String, timeout: TimeInterval = 60) throws -> [String: Any] {
        try runPythonJSON("grpc/grpc_client.py", ["127.0.0.1:\(edge.port)", mode], timeout: timeout)
    }

    func test_unaryAndStreamingCallsPassOverH2C() throws {
        let (_, port) = try startGRPCOrigin()
        let edge = try startGRPCEdge(pool: ["servers": ["127.0.0.1:\(port)"], "protocol": "h2c"])
        let unary = try call(edge, "unary")
        XCTAssertEqual(unary["code"] as? String, "OK", "\(unary)")
        XCTAssertEqual(unary["origin"] as? String, "o1")
        XCTAssertEqual(unary["payload_ok"] as? Bool, true)
        let keys = unary["metadata_keys"] as? [String] ?? []
        XCTAssertTrue(keys.contains("x-forwarded-for") && keys.contains("via") && keys.contains("x-lodestar-test"), "\(keys)")
        let server = try call(edge, "server-stream")
        XCTAssertEqual(server["code"] as? String, "OK", "\(server)")
        XCTAssertEqual(server["received"] as? Int, 50)
        XCTAssertEqual(server["in_order"] as? Bool, true)
        let bidi = try call(edge, "bidi")
        XCTAssertEqual(bidi["code"] as? String, "OK", "\(bidi)")
        XCTAssertEqual(bidi["received"] as? Int, 200)
        XCTAssertEqual(bidi["in_order"] as? Bool, true)
        // Statuses and custom trailers of a trailers-only answer come back as trailers.
        let fail = try call(edge, "fail")
        XCTAssertEqual(fail["code"] as? String, "NOT_FOUND", "\(fail)")
        XCTAssertEqual(fail["details"] as? String, "no such thing")
        XCTAssertEqual(fail["trailing_keys"] as? [String], ["x-lodestar-trailer"])
        // grpc-timeout is a deadline: 0.5 s against a 3 s call.
        let deadline = try call(edge, "deadline")
        XCTAssertEqual(deadline["code"] as? String, "DEADLINE_EXCEEDED", "\(deadline)")
        XCTAssertLessThan(deadline["elapsed_s"] as? Double ?? 99, 2)
        XCTAssertTrue(edge.log.contains("status=200"), "access-log lines for the calls")
    }

    /// Several origins: calls are balanced per request over one multiplexed connection each.
    func test_callsAreBalancedPerRequestOverH2Origins() throws {
        let (_, p1) = try startGRPCOrigin(name: "a")
        let (_, p2) = try startGRPCOrigin(name: "b")
        // One event loop: each loop balances on its own, and each call is a new client connection.
        let edge = try startGRPCEdge(pool: ["servers": ["127.0.0.1:\(p1)", "127.0.0.1:\(p2)"], "protocol": "h2c"], threads: 1)
        var seen = [String: Int]()
        for _ in 0..<6 {
            let r = try call(edge, "unary")
            XCTAssertEqual(r["code"] as? String, "OK", "\(r)")
            seen[r["origin"] as? String ?? "-", default: 0] += 1
        }
        XCTAssertEqual(seen, ["a": 3, "b": 3], "round robin per call")
    }

    /// Failures the edge makes are gRPC statuses in trailers, never an HTML or text page: an origin killed mid-stream
    /// (UNAVAILABLE, at once), then no origin at all (UNAVAILABLE).
    func test_edgeFailuresAreGRPCStatuses() throws {
        let (origin, port) = try startGRPCOrigin()
        let edge = try startGRPCEdge(pool: ["servers": ["127.0.0.1:\(port)"], "protocol": "h2c", "retries": 0])
        let client = try ScriptProcess(python: "grpc/grpc_client.py", ["127.0.0.1:\(edge.port)", "stream-hold"],
                                       folder: workFolder, name: "grpc-hold")
        addTeardownBlock { client.stop() }
        try client.waitFor("\"first\": true", timeout: 20)
        origin.kill()
        XCTAssertTrue(client.waitForEnd(timeout: 15), "the client was not told: \(client.output)")
        let held = client.lastJSON() ?? [:]
        XCTAssertEqual(held["code"] as? String, "UNAVAILABLE", "\(client.output)")
        XCTAssertEqual(held["details"] as? String, "origin closed mid-response", "the edge's trailers: \(client.output)")
        let gone = try call(edge, "unavailable")
        XCTAssertEqual(gone["code"] as? String, "UNAVAILABLE", "\(gone)")
        XCTAssertTrue(["origin unreachable", "no healthy origin server"].contains(gone["details"] as? String ?? ""), "\(gone)")
    }

    /// `protocol: h2` reaches a TLS origin by ALPN, verifying its certificate against `caFile` for `serverName`; a
    /// wrong name fails verification (UNAVAILABLE) with the reason in the edge's log.
    func test_h2OriginOverVerifiedTLS() throws {
        try makeCertificate(key: "o.key", cert: "o.pem", commonName: "origin.internal", san: "DNS:origin.internal")
        let cert = workFolder.appendingPathComponent("o.pem").path, key = workFolder.appendingPathComponent("o.key").path
        let (_, port) = try startGRPCOrigin(tls: (cert, key))
        let edge = try startGRPCEdge(pool: ["servers": ["127.0.0.1:\(port)"], "protocol": "h2",
                                            "tls": ["caFile": "o.pem", "serverName": "origin.internal"]])
        let ok = try call(edge, "unary")
        XCTAssertEqual(ok["code"] as? String, "OK", "\(ok)")
        let wrong = try startGRPCEdge(pool: ["servers": ["127.0.0.1:\(port)"], "protocol": "h2", "retries": 0,
                                             "tls": ["caFile": "o.pem", "serverName": "other.internal"]])
        let refused = try call(wrong, "unary")
        XCTAssertEqual(refused["code"] as? String, "UNAVAILABLE", "\(refused)")
        XCTAssertNotNil(eventually(timeout: 5) {
            wrong.log.contains("origin connect failed") && wrong.log.contains("failedToValidateHostname")
        }, "the log says why: \(wrong.log)")
    }
}
