import Foundation
import XCTest

/// `lodestar edge` refuses a bad topology: non-zero exit, and the message names the file, the JSON path and the reason.
final class EdgeTopologyTests: EdgeTestCase {
    /// Writes a topology (after `edit`) and runs `lodestar edge` on it, expecting it to exit by itself.
    private func runEdge(node: String = "e1", _ edit: (inout [String: Any]) throws -> Void) throws -> (CommandResult, String) {
        let origin = "127.0.0.1:\(try freePort())"
        var topology = edgeTopology(listen: ["127.0.0.1:\(try freePort())"], admin: try freePort(),
                                    pools: ["web": ["servers": [origin]]], routes: [route(pool: "web")])
        try edit(&topology)
        let path = workFolder.appendingPathComponent("bad-\(UUID().uuidString.prefix(6)).json").path
        let data = try JSONSerialization.data(withJSONObject: topology, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
        let r = try runCommand(try IntegrationEnvironment.lodestarBinary().path, ["edge", "--topology", path, "--node", node],
                               timeout: 10, currentDirectory: workFolder)
        print("lodestar edge on \(path) exited \(r.status)\(r.timedOut ? " (timed out)" : ""): \(r.stderr)\(r.stdout)")
        XCTAssertFalse(r.timedOut, "lodestar edge kept running on a bad topology")
        XCTAssertNotEqual(r.status, 0, "exit status")
        return (r, path)
    }

    private func setEdge(_ t: inout [String: Any], _ key: String, _ value: Any) {
        var edges = t["edges"] as? [[String: Any]] ?? []
        edges[0][key] = value
        t["edges"] = edges
    }

    func test_badTopology_unknownPoolInRoute() throws {
        let (r, path) = try runEdge { t in t["routes"] = [self.route(pool: "nope")] }
        let out = r.stderr + r.stdout
        XCTAssertTrue(out.contains(path), "file: \(out)")
        XCTAssertTrue(out.contains("routes[0].pool"), "JSON path: \(out)")
        XCTAssertTrue(out.contains("unknown origin pool") && out.contains("nope"), "reason: \(out)")
    }

    func test_badTopology_badListenAddress() throws {
        let (r, path) = try runEdge { t in self.setEdge(&t, "listen", ["127.0.0.1"]) }
        let out = r.stderr + r.stdout
        XCTAssertTrue(out.contains(path), "file: \(out)")
        XCTAssertTrue(out.contains("edges[0].listen[0]"), "JSON path: \(out)")
        XCTAssertTrue(out.contains("not ADDRESS:PORT"), "reason: \(out)")

        let (r2, path2) = try runEdge { t in self.setEdge(&t, "listen", ["300.1.2.3:80"]) }
        let out2 = r2.stderr + r2.stdout
        XCTAssertTrue(out2.contains(path2) && out2.contains("edges[0].listen[0]"), "file and path: \(out2)")

        // Well-formed but not bindable here (TEST-NET address): refused at start, naming the address.
        let (r3, path3) = try runEdge { t in self.setEdge(&t, "listen", ["192.0.2.1:8080"]) }
        let out3 = r3.stderr + r3.stdout
        XCTAssertTrue(out3.contains(path3), "file: \(out3)")
        XCTAssertTrue(out3.contains("192.0.2.1:8080") && out3.contains("cannot listen"), "reason: \(out3)")
        XCTAssertTrue(out3.contains(path3) && out3.contains("edges[0].listen[0]"), "file and path: \(out3)")
        print("EDGE-FIGURES: unbindable listen address message: \(out3.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    func test_badTopology_unknownNode() throws {
        let (r, path) = try runEdge(node: "zz") { _ in }
        let out = r.stderr + r.stdout
        XCTAssertTrue(out.contains(path), "file: \(out)")
        XCTAssertTrue(out.contains("\"zz\""), "names the node: \(out)")
        XCTAssertTrue(out.contains("edges"), "JSON path (edges): \(out)")
        XCTAssertTrue(out.contains("no edge"), "reason: \(out)")
    }
}
