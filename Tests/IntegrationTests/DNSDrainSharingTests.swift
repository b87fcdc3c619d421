import Foundation
import XCTest

/// Two DNS nodes and three edges in one gossip cluster (real processes): an operator drain asked of either DNS node
/// holds on both (the answers and `/status`, with who set it and when), survives a restart (the state file), and an
/// undrain on the other node ends it everywhere.
final class DNSDrainSharingTests: EdgeTestCase {
    static let london = "+subnet=81.2.69.0/24"

    func admin(_ port: UInt16, _ target: String, method: String = "GET") throws -> EdgeReply {
        try EdgeHTTP.request(port: port, method, target, host: "admin")
    }

    func londonAnswer(_ dns: LodestarServer) -> String {
        (try? dns.dig(["+short", "www.example.test", Self.london]).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
    }

    func drains(_ port: UInt16) -> [[String: Any]] {
        ((try? admin(port, "/status").json)?["drains"] as? [[String: Any]]) ?? []
    }

    func test_drainOnOneDNSNodeHoldsOnTheOtherAndAcrossARestart() throws {
        let admin2 = try freePort(), gossip2 = try freePort()
        let c = try startCluster(probeIntervalMs: 300) { t in
            try t.edit("dns") { $0["nodes"] = [["nodeId": "dns-2", "gossip": "127.0.0.1:\(gossip2)", "admin": "127.0.0.1:\(admin2)"]] }
        }
        let topology = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: c.dns.topologyPath)))
                                     as? [String: Any])
        let dns2 = try LodestarServer(topology: topology, arguments: ["--node", "dns-2"])
        addTeardownBlock { dns2.cleanUp() }
        try FileManager.default.copyItem(atPath: c.dns.folder.appendingPathComponent("gossip.key").path,
                                         toPath: dns2.folder.appendingPathComponent("gossip.key").path)
        try dns2.start()
        for dns in [c.dns, dns2] {
            XCTAssertNotNil(eventually(timeout: 10) { self.londonAnswer(dns) == "127.0.2.1" }, "London → eu-central\n\(dns.log)")
        }

        // Drained on the first node: the second node's answers follow, and its /status names the drain and its origin.
        let r = try admin(c.dnsAdmin, "/drain?edge=edge-eu-central&reason=kernel%20upgrade", method: "POST")
        XCTAssertEqual(r.status, 200, "\(r)")
        let start = Date()
        let moved = eventually(timeout: 5) { self.londonAnswer(dns2) != "127.0.2.1" }
        print("DRAIN-FIGURES the second DNS node followed a drain set on the first in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        XCTAssertNotNil(moved, "dns-2 still answers the drained edge\n\(dns2.log)")
        XCTAssertEqual(londonAnswer(dns2), "127.0.1.1")
        let seen = drains(admin2)
        XCTAssertEqual(seen.count, 1, "\(seen)")
        XCTAssertEqual(seen.first?["target"] as? String, "edge:edge-eu-central")
        XCTAssertEqual(seen.first?["reason"] as? String, "kernel upgrade")
        XCTAssertEqual(seen.first?["setBy"] as? String, "dns-local-1")
        XCTAssertEqual(seen.first?["since"] as? String, drains(c.dnsAdmin).first?["since"] as? String, "the same drain on both")

        // The second node restarts: the drain is back from its state file before any gossip.
        dns2.stop()
        try dns2.start()
        XCTAssertEqual(londonAnswer(dns2), "127.0.1.1", "the drain survived the restart\n\(dns2.log)")
        XCTAssertTrue(dns2.log.contains("operator drains restored"), dns2.log)
        XCTAssertNotNil(eventually(timeout: 5) { self.drains(admin2).count == 1 })

        // Undrained on the second node: the first follows.
        XCTAssertEqual(try admin(admin2, "/undrain?edge=edge-eu-central", method: "POST").status, 200)
        XCTAssertNotNil(eventually(timeout: 5) { self.londonAnswer(c.dns) == "127.0.2.1" }, "dns-1 still drains\n\(c.dns.log)")
        XCTAssertTrue(drains(c.dnsAdmin).isEmpty)
        XCTAssertEqual(londonAnswer(dns2), "127.0.2.1")
    }
}
