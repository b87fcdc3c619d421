import Foundation
import XCTest

/// A real recursive resolver in front, as users reach Lodestar: a private unbound on loopback forwards (stub-zone) the
/// zone to a signed `lodestar dns` in a gossip cluster with its three edges, sends ECS for its clients (subnetcache)
/// and validates with the DS from `lodestar dnssec ds` as its only trust anchor. Between them a relay counts the
/// queries unbound sends and forges the answers for one name.
final class UnboundTests: EdgeTestCase {
    static let london = "81.2.69.0/24", tokyo = "133.1.2.0/24"

    private struct Resolver {
        let port: UInt16
        let process: Process
    }

    private func startUnbound(upstream: UInt16, ds: String) throws -> Resolver {
        guard let unbound = IntegrationEnvironment.which("unbound") ?? ["/usr/sbin/unbound"].first(where: {
            FileManager.default.isExecutableFile(atPath: $0)
        }) else { throw XCTSkip("unbound is not installed (make deps installs it)") }
        let port = try freePort()
        let conf = workFolder.appendingPathComponent("unbound.conf")
        let text = """
        server:
          interface: 127.0.0.1@\(port)
          port: \(port)
          do-daemonize: no
          chroot: ""
          username: ""
          directory: "\(workFolder.path)"
          pidfile: ""
          use-syslog: no
          logfile: ""
          verbosity: 1
          num-threads: 1
          access-control: 127.0.0.0/8 allow
          do-not-query-localhost: no
          module-config: "subnetcache validator iterator"
          send-client-subnet: 127.0.0.1
          max-client-subnet-ipv4: 24
          local-zone: "test." nodefault
          trust-anchor: "\(ds)"
          qname-minimisation: no
          prefetch: no
          val-log-level: 2
        stub-zone:
          name: "example.test"
          stub-addr: 127.0.0.1@\(upstream)

        """
        try Data(text.utf8).write(to: conf)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: unbound)
        p.arguments = ["-d", "-c", conf.path]
        let log = workFolder.appendingPathComponent("unbound.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        try? handle.close()
        addTeardownBlock { stopProcess(p, grace: 2) }
        let dig = try IntegrationEnvironment.dig()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard p.isRunning else { throw IntegrationError("unbound exited: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")") }
            let r = try runCommand(dig, ["@127.0.0.1", "-p", "\(port)", "+time=1", "+tries=1", "example.test", "SOA"], timeout: 3)
            if r.stdout.contains("status: NOERROR") { return Resolver(port: port, process: p) }
            usleep(100_000)
        }
        throw IntegrationError("unbound did not answer: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    private func ask(_ r: Resolver, _ name: String, _ type: String = "A", subnet: String? = nil) throws -> DigResult {
        let dig = try IntegrationEnvironment.dig()
        let args = ["@127.0.0.1", "-p", "\(r.port)", "+time=3", "+tries=1", "+dnssec", name, type] + (subnet.map { ["+subnet=\($0)"] } ?? [])
        let out = try runCommand(dig, args, timeout: 10)
        return DigResult(output: out.stdout + out.stderr, status: out.status)
    }

    private func addresses(_ d: DigResult) -> [String] { d.answer.filter { $0.type == "A" }.map(\.data) }

    /// On a failure, what unbound said (validation failures at val-log-level 2) and what the relay saw.
    override func tearDown() {
        let failed = (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0
        if failed {
            let folder = workFolder
            for name in ["unbound.log", "upstream-queries.log", "relay.log"] {
                let text = (try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)) ?? ""
                print("---- \(name) ----\n\(text.suffix(20_000))---- end of \(name) ----")
            }
        }
        super.tearDown()
    }

    func test_unboundInFrontValidatesFollowsScopesAndMovesAfterAKill() throws {
        let lodestar = try IntegrationEnvironment.lodestarBinary().path
        let keygen = try runCommand(lodestar, ["dnssec", "keygen", "--zone", "example.test", "--directory", workFolder.path],
                                    timeout: 20)
        let keyFile = try XCTUnwrap(keygen.stdout.split(separator: "\n").first(where: { $0.hasSuffix(".private") }).map(String.init),
                                    keygen.stdout + keygen.stderr)
        let dsOut = try runCommand(lodestar, ["dnssec", "ds", "--key", keyFile, "--zone", "example.test"], timeout: 20)
        let ds = dsOut.stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: " IN DS ", with: " DS ")
        XCTAssertTrue(ds.hasPrefix("example.test. DS "), dsOut.stdout + dsOut.stderr)

        let c = try startCluster(probeIntervalMs: 300) { t in
            try t.edit("dns") { $0["dnssec"] = ["keys": [keyFile]] }
            try t.edit("services") { services in
                var www = services["www"] as? [String: Any] ?? [:]
                www["ttl"] = 2
                services["www"] = www
            }
        }
        let proxyLog = workFolder.appendingPathComponent("upstream-queries.log").path
        _ = FileManager.default.createFile(atPath: proxyLog, contents: nil)
        let relayPort = try freePort()
        let relay = try ScriptProcess(python: "dns_tamper_proxy.py", ["\(relayPort)", "\(c.dns.port)", proxyLog, "mail.example.test"],
                                      folder: workFolder, name: "relay")
        addTeardownBlock { relay.stop() }
        try relay.waitFor("ready", timeout: 10)
        let resolver = try startUnbound(upstream: relayPort, ds: ds)
        func upstream(_ name: String, subnet: String? = nil) -> Int {
            let lines = ((try? String(contentsOfFile: proxyLog, encoding: .utf8)) ?? "").split(separator: "\n")
            return lines.filter { line in line.hasPrefix(name + ". A ") && (subnet.map { line.hasSuffix(" " + $0) } ?? true) }.count
        }

        // Nearest edges through unbound, validated (AD).
        let london = try ask(resolver, "www.example.test", subnet: Self.london)
        XCTAssertEqual(addresses(london), ["127.0.2.1"], london.output)
        XCTAssertTrue(london.flags.contains("ad"), "AD on the geo answer: \(london.output)")
        let tokyo = try ask(resolver, "www.example.test", subnet: Self.tokyo)
        XCTAssertEqual(addresses(tokyo), ["127.0.3.1"], tokyo.output)
        XCTAssertTrue(tokyo.flags.contains("ad"), tokyo.output)
        // At least once: a slow first (signing) answer may make unbound send the query again.
        XCTAssertGreaterThanOrEqual(upstream("www.example.test", subnet: "133.1.2.0/24"), 1, "unbound sent the client's subnet on")

        // Denials validate too.
        let nx = try ask(resolver, "no-such-name.example.test")
        XCTAssertTrue(nx.flags.contains("ad") && ["NXDOMAIN", "NOERROR"].contains(nx.status ?? ""), nx.output)
        XCTAssertTrue(nx.answer.filter { $0.type == "A" }.isEmpty, nx.output)
        let nodata = try ask(resolver, "www.example.test", "TXT")
        XCTAssertTrue(nodata.flags.contains("ad") && nodata.status == "NOERROR" && nodata.answer.filter { $0.type == "TXT" }.isEmpty,
                      nodata.output)
        // A forged answer (address changed after signing) is rejected.
        let forged = try ask(resolver, "mail.example.test")
        XCTAssertEqual(forged.status, "SERVFAIL", "a tampered answer must not validate: \(forged.output)")
        XCTAssertTrue(addresses(try c.dns.dig("mail.example.test")).contains("127.0.0.25"), "the server itself answers")

        // unbound's cache: reused inside the answer's ECS scope (133.0.0.0/8), asked again outside it (81.2.69.0/24).
        let before = upstream("www.example.test")
        XCTAssertEqual(addresses(try ask(resolver, "www.example.test", subnet: "133.5.0.0/24")), ["127.0.3.1"])
        XCTAssertEqual(upstream("www.example.test"), before, "133.5.0.0/24 lies in the /8 scope of the cached answer")
        XCTAssertEqual(addresses(try ask(resolver, "www.example.test", subnet: "81.2.70.0/24")), ["127.0.1.1"])
        let outside = upstream("www.example.test")
        XCTAssertGreaterThan(outside, before, "81.2.70.0/24 is outside the /24 scope: asked again")

        // 5,000 random public /24s: how often unbound answers from its cache.
        let spray = try runPythonJSON("ecs_spray.py", ["\(resolver.port)", "www.example.test", "5000", "7"], timeout: 120)
        let sent = upstream("www.example.test") - outside
        let subnets = spray["subnets"] as? Int ?? 0
        print("RESOLVER-FIGURES 5,000 random /24s through unbound: \(subnets - sent) answered from its cache, \(sent) asked of "
              + "lodestar (\(spray))")
        XCTAssertEqual(spray["failed"] as? Int, 0, "\(spray)")
        XCTAssertGreaterThan(subnets - sent, 4_000, "merged scopes let unbound reuse answers")

        // The London edge is killed: once the TTL (2 s) passes, London moves to the next nearest edge, still validated.
        XCTAssertEqual(addresses(try ask(resolver, "www.example.test", subnet: Self.london)), ["127.0.2.1"])
        let eu = try XCTUnwrap(c.edges["edge-eu-central"]?.pid)
        kill(eu, SIGKILL)
        let killed = Date()
        var moved: DigResult?
        while Date().timeIntervalSince(killed) < 8 {
            let d = try ask(resolver, "www.example.test", subnet: Self.london)
            if addresses(d) != ["127.0.2.1"] { moved = d; break }
            usleep(100_000)
        }
        let after = try XCTUnwrap(moved, "London still sent to the killed edge after 8 s")
        let seconds = Date().timeIntervalSince(killed)
        print("RESOLVER-FIGURES London moved through unbound \(String(format: "%.2f", seconds)) s after the kill to \(addresses(after))")
        XCTAssertEqual(addresses(after), ["127.0.1.1"], after.output)
        XCTAssertTrue(after.flags.contains("ad"), after.output)
        XCTAssertLessThanOrEqual(seconds, 2.5 + 2 + 1, "failover (≤ 2.5 s) plus the 2 s TTL, with a second to spare")
    }
}
