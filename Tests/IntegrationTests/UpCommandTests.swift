import Foundation
import XCTest

/// `lodestar up`: the DNS server, the three edges and the sample origin of the default topology in one process.
final class UpCommandTests: XCTestCase {
    /// The default topology on free loopback ports, written to a new folder (removed at the end of the test).
    private func prepare() throws -> (path: String, folder: URL, dnsPort: UInt16, edgePort: UInt16, admins: [UInt16]) {
        let dnsPort = try FreePort.find(), edgePort = try FreePort.find(), originPort = try FreePort.find()
        var topology = try IntegrationEnvironment.defaultTopology()
        // As shipped, the zone signs with no key file configured: `up` makes one for the run.
        try topology.edit("dns") { $0["listen"] = ["127.0.0.1:\(dnsPort)"]; $0["dnssec"] = ["keys": [Any]()] }
        var edges = topology["edges"] as? [[String: Any]] ?? []
        var admins: [UInt16] = []
        for i in edges.indices {
            let address = (edges[i]["addresses"] as? [String])?.first ?? "127.0.0.1"
            edges[i]["listen"] = ["\(address):\(edgePort)"]
            admins.append(try FreePort.find())
            edges[i]["admin"] = "127.0.0.1:\(admins[i])"
        }
        topology["edges"] = edges
        try topology.pointEveryPool(at: "127.0.0.1:\(originPort)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-up-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("topology.json").path
        try JSONSerialization.data(withJSONObject: topology).write(to: URL(fileURLWithPath: path))
        return (path, folder, dnsPort, edgePort, admins)
    }

    /// Starts `executable` with its output in `log`; stopped at the end of the test. Returns it and a reader of the log.
    private func launch(_ executable: URL, _ arguments: [String], log: URL) throws -> (Process, () -> String) {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        try? handle.close()
        addTeardownBlock { if p.isRunning { stopProcess(p, grace: 2) } }
        return (p, { (try? String(contentsOf: log, encoding: .utf8)) ?? "" })
    }

    func test_upServesDigAndCurlThroughTheChosenEdgeAndStopsOnSIGINT() throws {
        let binary = try IntegrationEnvironment.lodestarBinary()
        let dig = try IntegrationEnvironment.dig()
        let (path, folder, dnsPort, edgePort, _) = try prepare()
        let (p, output) = try launch(binary, ["up", "--topology", path], log: folder.appendingPathComponent("up.log"))

        // DNS: an EU client is sent to the eu-central edge.
        var answer = ""
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let r = try runCommand(dig, ["@127.0.0.1", "-p", "\(dnsPort)", "+short", "+time=1", "+tries=1",
                                         "www.example.test", "+subnet=81.2.69.0/24"], timeout: 5)
            answer = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if answer == "127.0.2.1" { break }
            usleep(200_000)
        }
        XCTAssertEqual(answer, "127.0.2.1", "dig through lodestar up\n\(output())")

        // HTTP: curl through the chosen edge reaches the sample origin.
        let curl = try runCommand("/usr/bin/curl", ["-s", "--max-time", "5", "--resolve", "www.example.test:\(edgePort):\(answer)",
                                                    "http://www.example.test:\(edgePort)/"], timeout: 10)
        XCTAssertTrue(curl.stdout.contains("Served by origin"), "curl body: \(curl.stdout)\n\(output())")
        XCTAssertTrue(curl.stdout.contains("Via: 1.1 edge-eu-central"), "curl body: \(curl.stdout)")

        // The default route caches: the second fetch of a cacheable path is a HIT, an uncacheable one never is.
        func fetch(_ path: String) throws -> String {
            try runCommand("/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", "--max-time", "5", "--resolve",
                                             "www.example.test:\(edgePort):\(answer)", "http://www.example.test:\(edgePort)\(path)"],
                           timeout: 10).stdout
        }
        XCTAssertTrue(try fetch("/static/app.css").contains("X-Cache: MISS"))
        let second = try fetch("/static/app.css")
        XCTAssertTrue(second.contains("X-Cache: HIT"), "second fetch of a cacheable path:\n\(second)")
        XCTAssertTrue(second.contains("Age: "), second)
        _ = try fetch("/api/time")
        XCTAssertTrue(try fetch("/api/time").contains("X-Cache: MISS"), "no-store is never a hit")

        let text = output()
        for row in ["origin  origin-1", "dns ", "edge-us-east", "edge-eu-central", "edge-ap-southeast", "Try:"] {
            XCTAssertTrue(text.contains(row), "the table lacks \(row):\n\(text)")
        }

        // DNSSEC: the greeting prints the run key's DS; dig +dnssec shows the RRSIG and delv validates against that DS.
        let dsLine = try XCTUnwrap(text.split(separator: "\n").first { $0.contains(" IN DS ") }, "no DS in the greeting:\n\(text)")
        let ds = dsLine.split(separator: " ").map(String.init)
        XCTAssertEqual(ds.count, 7, String(dsLine))
        let signed = try runCommand(dig, ["@127.0.0.1", "-p", "\(dnsPort)", "+dnssec", "+time=1", "+tries=1", "www.example.test"], timeout: 5)
        XCTAssertTrue(signed.stdout.contains("RRSIG"), signed.stdout)
        if let delv = IntegrationEnvironment.which("delv"), ds.count == 7 {
            let anchor = folder.appendingPathComponent("anchor.conf")
            try Data("trust-anchors { \"example.test.\" static-ds \(ds[3]) \(ds[4]) 2 \"\(ds[6])\"; };\n".utf8).write(to: anchor)
            let v = try runCommand(delv, ["@127.0.0.1", "-p", "\(dnsPort)", "-a", anchor.path, "+root=example.test", "www.example.test"],
                                   timeout: 15)
            XCTAssertTrue(v.stdout.contains("; fully validated"), v.stdout + v.stderr)
        }

        kill(p.processIdentifier, SIGINT)
        XCTAssertTrue(waitForExit(p, timeout: 10), "lodestar up did not stop on SIGINT\n\(output())")
        XCTAssertEqual(p.terminationStatus, 0, output())
    }

    /// As a user without privileges (nobody, no capabilities), as a packaged service runs: every TCP listener accepts
    /// (setting a socket option that needs CAP_NET_ADMIN on accepted sockets once made every connection fail there).
    func test_upServesAsAnUnprivilegedUser() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to drop to nobody") }
        guard let setpriv = IntegrationEnvironment.which("setpriv") else { throw XCTSkip("setpriv (util-linux) not found") }
        let binary = try IntegrationEnvironment.lodestarBinary()
        let dig = try IntegrationEnvironment.dig()
        let (path, folder, dnsPort, edgePort, admins) = try prepare()
        chmod(folder.path, 0o777)  // the drain state file is written beside the topology
        let (p, output) = try launch(URL(fileURLWithPath: setpriv),
                                     ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                                      binary.path, "up", "--topology", path],
                                     log: folder.appendingPathComponent("up.log"))
        var answer = ""
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline, answer.isEmpty {
            let r = try runCommand(dig, ["@127.0.0.1", "-p", "\(dnsPort)", "+short", "+time=1", "+tries=1", "www.example.test"], timeout: 5)
            let text = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            answer = text.split(separator: ".").count == 4 && !text.contains(" ") ? text : ""
            if answer.isEmpty { usleep(200_000) }
        }
        XCTAssertFalse(answer.isEmpty, "no UDP answer\n\(output())")
        guard !answer.isEmpty else { return }
        let tcp = try runCommand(dig, ["@127.0.0.1", "-p", "\(dnsPort)", "+tcp", "+short", "+time=2", "+tries=1", "www.example.test"], timeout: 5)
        XCTAssertEqual(tcp.stdout.trimmingCharacters(in: .whitespacesAndNewlines), answer, "DNS over TCP as nobody\n\(output())")
        let curl = try runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--resolve",
                                                    "www.example.test:\(edgePort):\(answer)", "http://www.example.test:\(edgePort)/"], timeout: 10)
        XCTAssertEqual(curl.stdout, "200", "the edge as nobody\n\(output())")
        let admin = try runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                                                     "http://127.0.0.1:\(admins[0])/healthz"], timeout: 10)
        XCTAssertEqual(admin.stdout, "200", "the admin endpoint as nobody\n\(output())")
        let status = try String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8)
        XCTAssertTrue(status.contains("Uid:\t65534"), "not running as nobody:\n\(status)")
    }
}
