import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The three regions on Linux network namespaces (Scripts/regions): each region's client resolves from its own
/// 198.18.N.100 address, which GeoIP places in the region's city, and is served by its region's edge; a SIGKILL'd
/// edge leaves the answers within the 2 s failover target and comes back when restarted, as does a region cut off the
/// network; nothing is left behind.
/// Needs root and working `ip netns` (skipped otherwise), plus iproute2, dig and curl.
final class RegionSimulationTests: XCTestCase {
    static let regions = [("us-east", 1), ("eu-central", 2), ("ap-southeast", 3)]

    func lsimNamespaces() -> [String] {
        guard let r = try? runCommand("/usr/bin/env", ["ip", "netns", "list"], timeout: 10), r.status == 0 else { return [] }
        return r.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.hasPrefix("lsim-") }
    }

    func test_failoverScenarioAcrossNamespaces() throws {
        #if !os(Linux)
        throw XCTSkip("network namespaces are Linux only")
        #else
        guard geteuid() == 0 else { throw XCTSkip("Scripts/regions needs root (network namespaces); running as uid \(geteuid())") }
        guard IntegrationEnvironment.which("ip") != nil else { throw XCTSkip("ip not found (apt-get install iproute2)") }
        let probe = try runCommand("/usr/bin/env", ["ip", "netns", "list"], timeout: 10)
        guard probe.status == 0 else {
            throw XCTSkip("ip netns does not work here (status \(probe.status)): \(probe.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        _ = try IntegrationEnvironment.dig()
        guard IntegrationEnvironment.which("curl") != nil else { throw XCTSkip("curl not found (apt-get install curl)") }
        XCTAssertEqual(lsimNamespaces(), [], "lsim- namespaces exist before the run (a crashed run? Scripts/regions --cleanup)")

        let root = IntegrationEnvironment.packageRoot
        let script = root.appendingPathComponent("Scripts/regions").path
        let scenario = root.appendingPathComponent("Scripts/scenarios/failover.txt").path
        let binary = try IntegrationEnvironment.lodestarBinary().path
        let r = try runCommand(script, ["--scenario", scenario, "--lodestar", binary], timeout: 120, currentDirectory: root)
        let output = r.stdout + r.stderr
        print("---- Scripts/regions (status \(r.status), \(String(format: "%.1f", r.elapsed)) s) ----\n\(output)---- end ----")

        XCTAssertFalse(r.timedOut, "Scripts/regions did not finish within 120 s")
        XCTAssertEqual(r.status, 0, "Scripts/regions failed")
        let out = ScenarioOutput(output)
        let has = out.has
        for (region, n) in Self.regions {
            XCTAssertTrue(has("PASS", "resolve \(region): client 198.18.\(n).100 → www.example.test = 198.18.\(n).10"),
                          "no PASS line for \(region)'s client getting its own edge")
            XCTAssertTrue(has("PASS", "fetch \(region) / via 198.18.\(n).10: HTTP 200, Via: 1.1 edge-\(region)"),
                          "no PASS line for \(region)'s client fetching through its edge")
        }
        XCTAssertTrue(has("PASS", "resolve eu-central: client 198.18.2.100 → www.example.test = 198.18.1.10"),
                      "Frankfurt was not sent to the next nearest region (us-east) while its edge was down")
        XCTAssertFalse(out.failed, "a step failed")
        // Inter-region delay is there (netem, or NFQUEUE and Scripts/nfq-delay.py on kernels without netem), so every
        // client's measured RTT ranks its own region's edge first and the DNS answer agrees.
        XCTAssertFalse(has("latency:", "SKIPPED"), "no inter-region delay")
        XCTAssertTrue(has("latency", "client eu-central"), "no latency line")
        for (region, n) in Self.regions {
            XCTAssertTrue(has("PASS", "rtt \(region): the answered edge 198.18.\(n).10 has the smallest RTT"),
                          "\(region): the answered edge is not the nearest by RTT")
        }

        // The failover figure: "FIGURE eu-central: SIGKILL of edge-eu-central → client … answered 198.18.1.10 after X s".
        let figure = try XCTUnwrap(out.lines.first { $0.hasPrefix("FIGURE eu-central: SIGKILL of edge-eu-central") },
                                   "no failover figure")
        let failover = try XCTUnwrap(ScenarioOutput.seconds(figure), "cannot read the failover time in: \(figure)")
        XCTAssertTrue(figure.contains("answered 198.18.1.10"), figure)
        // The 2 s target is a distribution (SWIMSimulationTests, p99 under 2 s); one sample gets half a second of slack.
        XCTAssertLessThanOrEqual(failover, 2.5, "failover target is 2 s, one sample")

        // A whole region cut off (its edge's link to the router down): its users move away and come back.
        XCTAssertTrue(has("FIGURE", "eu-central: cut-off of eu-central → client 198.18.2.100 answered 198.18.1.10"),
                      "Frankfurt's users were not moved away from a cut-off site")
        XCTAssertTrue(has("FIGURE", "eu-central: reconnection of eu-central → client 198.18.2.100 answered 198.18.2.10"),
                      "Frankfurt's users did not come back after the site was reconnected")

        XCTAssertTrue(has("teardown:", "no lsim- namespace left"), "no teardown check line")
        XCTAssertEqual(lsimNamespaces(), [], "lsim- namespaces left after the run")

        out.printFigures(tag: "regions")
        #endif
    }
}
