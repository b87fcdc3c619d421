import Foundation
import XCTest

/// Operator-facing behaviour: `--down`, SIGHUP reload, `lodestar check`.
final class OperationsTests: IntegrationTestCase {
    func test_downEdgeFlagMovesClientsToNextNearestEdge() throws {
        let server = try startServer(arguments: ["--down", "edge-eu-central"])
        // London: Frankfurt is down; Ashburn (~5 900 km) is nearer than Singapore (~10 900 km).
        let ecs = try server.dig("www.example.test", "A", "+subnet=81.2.69.0/24")
        assertStatus(ecs, "NOERROR")
        XCTAssertEqual(ecs.answers("A").map(\.data), [Self.us], "EU edge down → US\n\(ecs)")
        XCTAssertFalse(ecs.answer.contains { $0.data == Self.eu }, "\(ecs)")
        // A client in Frankfurt itself (source 127.0.2.1) also gets the next-nearest edge.
        let source = try server.dig(["-b", Self.eu, "www.example.test", "A"])
        XCTAssertEqual(source.answers("A").map(\.data), [Self.us], "\(source)")
        // Other regions are unaffected.
        let ap = try server.dig("www.example.test", "A", "+subnet=133.1.2.0/24")
        XCTAssertEqual(ap.answers("A").map(\.data), [Self.ap], "\(ap)")
        XCTAssertTrue(server.log.contains("edge-eu-central"), "the log names the down edge\n\(server.log)")
    }

    func test_downFileMarksEdgeDownAndUpWithinSeconds() throws {
        let downFile = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-down-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: downFile) }
        try Data("# operator maintenance list\n".utf8).write(to: downFile)
        let server = try startServer { t in try t.edit("dns") { $0["downFile"] = downFile.path } }
        // Warm the packet cache with the EU answer, then mark the EU edge down: the cached answer must go.
        for _ in 0..<3 {
            XCTAssertEqual(try server.dig("www.example.test", "A", "+subnet=81.2.69.0/24").answers("A").map(\.data), [Self.eu])
        }
        try Data("edge-eu-central   # maintenance\n".utf8).write(to: downFile, options: .atomic)
        let start = Date()
        var answer = [String]()
        while Date().timeIntervalSince(start) < 5 {
            answer = try server.dig("www.example.test", "A", "+subnet=81.2.69.0/24").answers("A").map(\.data)
            if answer == [Self.us] { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertEqual(answer, [Self.us], "EU edge listed in the down file → next-nearest edge")
        XCTAssertLessThan(Date().timeIntervalSince(start), 3, "the down file is polled every second")
        try Data().write(to: downFile, options: .atomic)
        let back = Date()
        while Date().timeIntervalSince(back) < 5 {
            answer = try server.dig("www.example.test", "A", "+subnet=81.2.69.0/24").answers("A").map(\.data)
            if answer == [Self.eu] { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertEqual(answer, [Self.eu], "emptied down file → EU edge answers again")
    }

    func test_sighupReopensAReplacedGeoIPDatabase() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-geo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let db = folder.appendingPathComponent("geo.mmdb").path
        try FileManager.default.copyItem(atPath: try IntegrationEnvironment.sampleDatabase(), toPath: db)
        let server = try startServer { t in try t.edit("dns") { $0["geoDatabase"] = db } }
        XCTAssertEqual(try server.dig("www.example.test", "A", "+subnet=81.2.69.0/24").answers("A").map(\.data), [Self.eu])
        // The operator ships new data in which 81.2.69.0/24 sits in Singapore, replacing the file, then sends SIGHUP.
        let csv = folder.appendingPathComponent("moved.csv").path
        try Data("81.2.69.0/24,1.35,103.82,SG,AS,Singapore\n".utf8).write(to: URL(fileURLWithPath: csv))
        let fresh = folder.appendingPathComponent("new.mmdb").path
        let compiled = try runCommand(IntegrationEnvironment.lodestarBinary().path, ["geo", "compile", csv, fresh], timeout: 30)
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        XCTAssertEqual(rename(fresh, db), 0)
        let log = try server.reload()
        XCTAssertTrue(log.contains("reloaded"), log)
        XCTAssertEqual(try server.dig("www.example.test", "A", "+subnet=81.2.69.0/24").answers("A").map(\.data), [Self.ap],
                       "the reload reads the new database, not the old mapping")
    }

    func test_downFlagWithUnknownEdgeRefusesToStart() throws {
        var topology = try baseTopology()
        topology["$comment"] = "unknown --down edge"
        let server = try LodestarServer(topology: topology, arguments: ["--down", "edge-nowhere"])
        defer { server.cleanUp() }
        XCTAssertThrowsError(try server.start()) { error in
            XCTAssertTrue(String(describing: error).contains("edge-nowhere"), "\(error)")
        }
        XCTAssertFalse(server.isRunning)
    }

    func test_sighupReloadAppliesNewTopology() throws {
        var topology = try baseTopology()
        let server = try startServer()
        let before = try server.dig("www.example.test", "A")
        assertSingleA(before, Self.us, ttl: 30)
        // TTL 45 and a new static record.
        try topology.edit("services") { services in
            var www = services["www"] as? [String: Any] ?? [:]
            www["ttl"] = 45
            services["www"] = www
        }
        try topology.addRecord(["name": "fresh", "type": "A", "value": "127.0.0.99"])
        try server.writeTopology(topology)
        let log = try server.reload()
        XCTAssertTrue(log.contains("reloaded"), log)
        let after = try server.dig("www.example.test", "A")
        assertSingleA(after, Self.us, ttl: 45)
        let fresh = try server.dig("fresh.example.test", "A")
        XCTAssertEqual(fresh.answers("A").map(\.data), ["127.0.0.99"], "\(fresh)")
        XCTAssertTrue(server.isRunning)
    }

    func test_sighupWithBrokenTopologyKeepsServingOldConfiguration() throws {
        var topology = try baseTopology()
        let server = try startServer()
        // A change that would be visible (TTL 45) plus an unknown field that makes the file invalid.
        try topology.edit("services") { services in
            var www = services["www"] as? [String: Any] ?? [:]
            www["ttl"] = 45
            services["www"] = www
        }
        try topology.edit("dns") { $0["bogusField"] = true }
        try server.writeTopology(topology)
        let log = try server.reload()
        XCTAssertTrue(log.contains("reload refused"), "refusal logged\n\(log)")
        XCTAssertTrue(log.contains(server.topologyPath), "the log names the file\n\(log)")
        XCTAssertTrue(log.contains("dns.bogusField"), "the log names the field\n\(log)")
        XCTAssertFalse(log.contains("reloaded"), log)
        XCTAssertTrue(server.isRunning, "server exited after a bad reload")
        let r = try server.dig("www.example.test", "A")
        assertSingleA(r, Self.us, ttl: 30)  // old configuration

        // Fixing the file and reloading again works.
        topology["dns"] = (topology["dns"] as? [String: Any])?.filter { $0.key != "bogusField" }
        try server.writeTopology(topology)
        XCTAssertTrue(try server.reload().contains("reloaded"))
        assertSingleA(try server.dig("www.example.test", "A"), Self.us, ttl: 45)
    }

    func test_checkReportsEveryProblemWithFileAndPath() throws {
        var topology = try baseTopology()
        try topology.edit("dns") { $0["bogusField"] = 1 }
        try topology.edit("services") { services in
            var www = services["www"] as? [String: Any] ?? [:]
            www["edges"] = ["edge-us-east", "edge-nowhere"]
            services["www"] = www
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-it-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("broken.json").path
        try JSONSerialization.data(withJSONObject: topology, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: file))

        let r = try runCommand(IntegrationEnvironment.lodestarBinary().path, ["check", file], timeout: 20)
        XCTAssertEqual(r.status, 1, "exit status\n\(r.stdout)\n\(r.stderr)")
        let lines = (r.stdout + r.stderr).split(separator: "\n").map(String.init)
        let problems = lines.filter { !$0.hasSuffix("error(s)") }
        XCTAssertFalse(problems.isEmpty, "no problem lines")
        for line in problems {
            // FILE: JSON.PATH: reason
            let parts = line.components(separatedBy: ": ")
            XCTAssertGreaterThanOrEqual(parts.count, 3, "not FILE: PATH: reason — \(line)")
            XCTAssertEqual(parts.first, file, line)
        }
        XCTAssertTrue(problems.contains { $0.hasPrefix("\(file): dns.bogusField: ") && $0.contains("unknown field") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.hasPrefix("\(file): services.www.edges[1]: ") && $0.contains("edge-nowhere") }, "\(problems)")
    }

    /// BUG (server): `{}` reports only the first missing top-level field ("zone"), not all five.
    func test_checkReportsEveryMissingTopLevelField() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-it-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("empty.json").path
        try Data("{}".utf8).write(to: URL(fileURLWithPath: file))
        let r = try runCommand(IntegrationEnvironment.lodestarBinary().path, ["check", file], timeout: 20)
        XCTAssertEqual(r.status, 1)
        // `lodestar check` promises every problem (CheckCommand, Topology.load): each missing section is one.
        for field in ["zone", "regions", "edges", "services", "dns"] {
            XCTAssertTrue(r.stderr.contains("\(file): \(field): missing required field"),
                          "no line for missing \(field):\n\(r.stderr)")
        }
    }

    func test_checkAcceptsDefaultTopology() throws {
        let binary = try IntegrationEnvironment.lodestarBinary().path
        let root = IntegrationEnvironment.packageRoot
        let inTree = root.appendingPathComponent("GeoData/lodestar-sample.mmdb").path
        if FileManager.default.fileExists(atPath: inTree) {
            // The repository's own topology.json, as an operator would run it.
            let r = try runCommand(binary, ["check", "topology.json"], timeout: 20, currentDirectory: root)
            XCTAssertEqual(r.status, 0, "\(r.stdout)\n\(r.stderr)")
            XCTAssertTrue(r.stdout.contains("topology.json: OK"), r.stdout)
        }
        // The test topology (absolute GeoIP path) passes too.
        let server = try LodestarServer(topology: try baseTopology())
        defer { server.cleanUp() }
        let r = try runCommand(binary, ["check", server.topologyPath], timeout: 20)
        XCTAssertEqual(r.status, 0, "\(r.stdout)\n\(r.stderr)")
        XCTAssertTrue(r.stdout.contains("OK"), r.stdout)
    }
}
