import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The three regions in real Docker containers (Scripts/regions --containers): the script starts dockerd when none
/// runs, builds the image without a registry, brings up a router, the DNS node, the origin, an edge and a client per
/// region at the topology's addresses, adds inter-region latency with NFQUEUE and runs the failover scenario: each
/// client is answered with and served by its own region's edge, the nearest by measured RTT; `docker kill` of an edge
/// and a region cut off the network (`docker network disconnect`) move its users away and back; `docker-compose down`
/// leaves nothing behind. Skipped only when no Docker engine can run here, with the reason.
final class RegionContainerTests: XCTestCase {
    static let regions = [("us-east", 1), ("eu-central", 2), ("ap-southeast", 3)]

    func test_failoverScenarioInContainers() throws {
        #if !os(Linux)
        throw XCTSkip("the container scenario runs on Linux")
        #else
        guard geteuid() == 0 else { throw XCTSkip("Scripts/regions --containers needs root (Docker, nsenter); uid \(geteuid())") }
        let root = IntegrationEnvironment.packageRoot
        let script = root.appendingPathComponent("Scripts/regions").path
        let binary = try IntegrationEnvironment.lodestarBinary().path
        // The first run on a machine makes the base image with debootstrap (about 35 s here).
        let r = try runCommand(script, ["--containers", "--lodestar", binary], timeout: 420, currentDirectory: root)
        let output = r.stdout + r.stderr
        print("---- Scripts/regions --containers (status \(r.status), \(String(format: "%.1f", r.elapsed)) s) ----\n\(output)---- end ----")
        if r.status == 3, let why = output.split(separator: "\n").first(where: { $0.contains("no Docker engine") }) {
            throw XCTSkip(String(why))
        }
        XCTAssertFalse(r.timedOut, "the container scenario did not finish within 420 s")
        XCTAssertEqual(r.status, 0, "the container scenario failed")
        let out = ScenarioOutput(output)
        let line = out.line, seconds = ScenarioOutput.seconds
        for (region, n) in Self.regions {
            XCTAssertNotNil(line("PASS", "resolve \(region): client 198.18.\(n).200 → www.example.test = 198.18.\(n).10"),
                            "\(region)'s client was not answered with its own edge")
            XCTAssertNotNil(line("PASS", "fetch \(region) / via 198.18.\(n).10: HTTP 200, Via: 1.1 edge-\(region)"),
                            "\(region)'s client was not served by its own edge")
            XCTAssertNotNil(line("PASS", "rtt \(region): the answered edge 198.18.\(n).10 has the smallest RTT"),
                            "\(region): the answered edge is not the nearest by measured RTT")
        }
        XCTAssertNil(line("latency:", "SKIPPED"), "no inter-region delay")
        XCTAssertFalse(out.failed, "a step failed")

        let killed = line("FIGURE", "eu-central: SIGKILL of edge-eu-central → client 198.18.2.200 answered 198.18.1.10")
        let failover = try XCTUnwrap(seconds(killed), "no failover figure after docker kill")
        // The 2 s target is a distribution (SWIMSimulationTests, p99 under 2 s); one sample gets half a second of slack.
        XCTAssertLessThanOrEqual(failover, 2.5, "docker kill: failover target is 2 s, one sample")
        XCTAssertNotNil(line("FIGURE", "eu-central: restart of edge-eu-central → client 198.18.2.200 answered 198.18.2.10"),
                        "docker start did not bring Frankfurt's users back")
        let cut = line("FIGURE", "eu-central: cut-off of eu-central → client 198.18.2.200 answered 198.18.1.10")
        let cutSeconds = try XCTUnwrap(seconds(cut), "Frankfurt's users were not moved away from a cut-off site")
        XCTAssertLessThanOrEqual(cutSeconds, 2.5, "a cut-off site is detected like a dead edge")
        XCTAssertNotNil(line("FIGURE", "eu-central: reconnection of eu-central → client 198.18.2.200 answered 198.18.2.10"),
                        "Frankfurt's users did not come back after the site was reconnected")
        XCTAssertNotNil(line("teardown:", "left no lsim container, network or app image"), "docker-compose down left something behind")

        out.printFigures(tag: "containers", extra: ["image:"])
        #endif
    }
}
