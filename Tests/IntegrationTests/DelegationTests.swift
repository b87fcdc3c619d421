import Foundation
import XCTest

/// Zone cuts and CNAMEs leaving the zone or pointing nowhere (static records added to the temp topology).
final class DelegationTests: IntegrationTestCase {
    private func startWithDelegations() throws -> LodestarServer {
        try startServer { t in
            try t.addRecord(["name": "sub", "type": "NS", "value": "ns.sub.example.test"])
            try t.addRecord(["name": "ns.sub", "type": "A", "value": "127.0.0.53"])
            try t.addRecord(["name": "away", "type": "NS", "value": "ns.elsewhere.net"])
            try t.addRecord(["name": "ext", "type": "CNAME", "value": "www.example.com."])
            try t.addRecord(["name": "dangling", "type": "CNAME", "value": "nothere.example.test."])
        }
    }

    func test_queryBelowZoneCutGetsReferral_RFC1034_4_3_2() throws {
        let server = try startWithDelegations()
        for name in ["x.sub.example.test", "sub.example.test", "ns.sub.example.test"] {
            let r = try server.dig(name, "A")
            assertStatus(r, "NOERROR")
            // Not authoritative below the cut: no AA, no answer, NS in authority, glue in additional.
            assertFlags(r, lacks: ["aa"])
            XCTAssertEqual(r.answer.count, 0, "\(name)\n\(r)")
            XCTAssertEqual(r.authority.map(\.type), ["NS"], "\(name)\n\(r)")
            XCTAssertEqual(r.authority.first?.name, "sub.example.test.", "\(r)")
            XCTAssertEqual(r.authority.first?.data, "ns.sub.example.test.", "\(r)")
            XCTAssertEqual(r.additional.filter { $0.type == "A" }.map(\.data), ["127.0.0.53"], "glue\n\(r)")
        }
        // An out-of-zone name server has no glue.
        let away = try server.dig("www.away.example.test", "A")
        assertFlags(away, lacks: ["aa"])
        XCTAssertEqual(away.authority.map(\.data), ["ns.elsewhere.net."], "\(away)")
        XCTAssertTrue(away.additional.isEmpty, "\(away)")
        // Names beside the cut are still answered authoritatively.
        let www = try server.dig("www.example.test", "A")
        assertFlags(www, has: ["aa"])
    }

    func test_cnameLeavingZoneIsNotChased_RFC1034_4_3_2() throws {
        let server = try startWithDelegations()
        let r = try server.dig("ext.example.test", "A")
        assertStatus(r, "NOERROR")
        assertFlags(r, has: ["aa"])
        XCTAssertEqual(r.answer.map(\.type), ["CNAME"], "\(r)")
        XCTAssertEqual(r.answer.first?.data, "www.example.com.", "\(r)")
        XCTAssertTrue(r.authority.isEmpty, "\(r)")
    }

    func test_cnameToMissingNameIsNXDOMAINWithCNAME_RFC6604_3() throws {
        let server = try startWithDelegations()
        let r = try server.dig("dangling.example.test", "A")
        // The RCODE describes the last name in the chain; the CNAME stays in the answer.
        assertStatus(r, "NXDOMAIN")
        assertFlags(r, has: ["aa"])
        XCTAssertEqual(r.answer.map(\.type), ["CNAME"], "\(r)")
        assertNegativeSOA(r)
    }
}
