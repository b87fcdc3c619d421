import Foundation
import XCTest

/// WebSocket through the edge (issue 15 item 4): a real client and server (PyPI `websockets`), the upgrade forwarded
/// and the connection relayed as a tunnel after the origin's 101.
final class EdgeWebSocketTests: EdgeTestCase {
    private func startWebSocketOrigin() throws -> (ScriptProcess, UInt16) {
        try requirePythonModules(["websockets"])
        let port = try freePort()
        let origin = try ScriptProcess(python: "ws_origin.py", ["--port", "\(port)"], folder: workFolder, name: "ws-origin")
        addTeardownBlock { origin.stop() }
        try origin.waitFor("ready", timeout: 15)
        return (origin, port)
    }

    private func pool(port: UInt16) -> [String: Any] { ["servers": ["127.0.0.1:\(port)"]] }

    /// 10,000 echoed messages, a 1 MiB message, ping/pong and the close handshake, all through the edge; the origin sees
    /// the client's handshake headers (Sec-WebSocket-Key, Upgrade) and the edge's X-Forwarded-For; one access-log
    /// line and the metrics record the tunnel's bytes.
    func test_webSocketEchoThroughTheEdge() throws {
        let (_, originPort) = try startWebSocketOrigin()
        let edge = try startEdge(pools: ["web": pool(port: originPort)], routes: [route()])
        let r = try runPythonJSON("ws_client.py", ["echo", "ws://127.0.0.1:\(edge.port)/headers", "www.example.test"], timeout: 120)
        XCTAssertEqual(r["echoed"] as? Int, 10_000, "\(r)")
        XCTAssertEqual(r["big"] as? Int, 1 << 20, "the 1 MiB message came back whole: \(r)")
        XCTAssertNotNil(r["pong_ms"] as? Double, "ping answered: \(r)")
        XCTAssertEqual(r["close_code"] as? Int, 1000, "close handshake: \(r)")
        XCTAssertEqual(r["close_rcvd"] as? Int, 1000, "the origin's close frame reached the client: \(r)")
        let headers = (r["headers"] as? [[String]] ?? []).map { ($0.first?.lowercased() ?? "", $0.last ?? "") }
        XCTAssertTrue(headers.contains { $0.0 == "sec-websocket-key" }, "\(headers)")
        XCTAssertTrue(headers.contains { $0.0 == "upgrade" && $0.1.lowercased() == "websocket" }, "\(headers)")
        XCTAssertTrue(headers.contains { $0.0 == "x-forwarded-for" && $0.1 == "127.0.0.1" }, "\(headers)")
        let logged = eventually(timeout: 5) { edge.log.contains("status=101") && edge.log.contains("tunnel closed after") }
        XCTAssertNotNil(logged, "one access-log line for the tunnel:\n\(edge.log.suffix(2000))")
        let metrics = try EdgeHTTP.get(port: edge.ports.admin, "/metrics", host: "admin").text
        let bytes = metrics.split(separator: "\n").filter { $0.hasPrefix("lodestar_edge_tunnel_bytes_total") }
        XCTAssertTrue(bytes.contains { $0.contains("client_to_origin") && (Double($0.split(separator: " ").last ?? "") ?? 0) > 1_048_576 },
                      "tunnel bytes in the metrics: \(bytes)")
        XCTAssertTrue(metrics.contains("lodestar_edge_tunnels_total{edge=\"e1\"} 1"), "\(metrics.split(separator: "\n").filter { $0.contains("tunnels_total") })")
        // Plain requests still work on the same edge.
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, "/plain").status, 426, "the websockets origin answers 426 to plain HTTP")
    }

    /// A route that does not list `websocket` in `upgrade` refuses the handshake with 403; the origin never sees it.
    func test_upgradeRefusedOnARouteThatDoesNotAllowIt() throws {
        let (_, originPort) = try startWebSocketOrigin()
        let edge = try startEdge(pools: ["web": pool(port: originPort)],
                                 routes: [route(pathPrefix: "/closed", extra: ["upgrade": []]), route()])
        let refused = try runPythonJSON("ws_client.py", ["refused", "ws://127.0.0.1:\(edge.port)/closed", "www.example.test"], timeout: 30)
        XCTAssertEqual(refused["status"] as? Int, 403, "\(refused)")
        let open = try runPythonJSON("ws_client.py", ["refused", "ws://127.0.0.1:\(edge.port)/open", "www.example.test"], timeout: 30)
        XCTAssertEqual(open["status"] as? Int, 101, "the other route allows it: \(open)")
    }

    /// An origin killed mid-connection ends the client's connection at once (no hang until a timeout).
    func test_originDyingMidConnectionEndsTheClientConnection() throws {
        let (origin, originPort) = try startWebSocketOrigin()
        let edge = try startEdge(pools: ["web": pool(port: originPort)], routes: [route()])
        let client = try ScriptProcess(python: "ws_client.py", ["hold", "ws://127.0.0.1:\(edge.port)/", "www.example.test"],
                                       folder: workFolder, name: "ws-hold")
        addTeardownBlock { client.stop() }
        try client.waitFor("open", timeout: 20)
        origin.kill()
        XCTAssertTrue(client.waitForEnd(timeout: 15), "the client was not told: \(client.output)")
        let r = client.lastJSON() ?? [:]
        XCTAssertLessThan(r["ended_after_s"] as? Double ?? 99, 5, "\(client.output)")
        XCTAssertEqual(r["code"] as? Int, 1006, "abnormal closure, as the origin vanished: \(client.output)")
    }

    /// WebSocket over HTTP/2 (RFC 8441): the edge announces SETTINGS_ENABLE_CONNECT_PROTOCOL on its h2c listener, an
    /// extended CONNECT reaches the HTTP/1.1 origin as an upgrade, 100 messages echo as the stream's DATA, and the
    /// close handshake ends the stream.
    func test_webSocketOverHTTP2ExtendedConnect() throws {
        try requirePythonModules(["hpack", "hyperframe"])
        let (_, originPort) = try startWebSocketOrigin()
        let edge = try startEdge(pools: ["web": pool(port: originPort)], routes: [route()]) { t in
            Self.acceptH2C(&t)
        }
        let r = try runPythonJSON("h2_websocket.py", ["\(edge.port)", "www.example.test", "/chat", "100"], timeout: 60)
        XCTAssertEqual(r["enable_connect_protocol"] as? Int, 1, "\(r)")
        XCTAssertEqual(r["status"] as? String, "200", "\(r)")
        XCTAssertEqual(r["echoed"] as? Int, 100, "\(r)")
        XCTAssertEqual(r["close_code"] as? Int, 1000, "\(r)")
        XCTAssertEqual(r["stream_ended"] as? Bool, true, "\(r)")
        XCTAssertNotNil(eventually(timeout: 5) { edge.log.contains("tunnel closed after") }, edge.log)
    }
}
