import Foundation
import LodestarTopology
import XCTest

/// Topology decoding: every error names the file, the JSON path and the rule.
final class TopologyDecodingTests: XCTestCase {
    /// A small valid topology; tests patch it with `mutate`.
    nonisolated(unsafe) static let base: [String: Any] = [
        "zone": [
            "name": "example.test",
            "soa": ["primary": "ns1.example.test", "contact": "hostmaster.example.test", "serial": 1],
            "nameservers": [["name": "ns1.example.test", "addresses": ["127.0.0.1"]]],
            "records": [["name": "mail", "type": "A", "value": "127.0.0.25"]],
        ],
        "regions": [
            ["id": "us-east", "latitude": 39.0, "longitude": -77.5],
            ["id": "eu-central", "latitude": 50.1, "longitude": 8.7],
        ],
        "edges": [
            ["id": "e1", "region": "us-east", "addresses": ["127.0.1.1"]],
            ["id": "e2", "region": "eu-central", "addresses": ["127.0.2.1"]],
        ],
        "services": ["www": ["edges": ["e1", "e2"]]],
        "dns": ["nodeId": "n1", "listen": ["127.0.0.1:5300"], "geoDatabase": "geo.mmdb"],
    ]

    func decode(_ mutate: (inout [String: Any]) -> Void = { _ in }) throws -> Topology {
        var doc = Self.base
        mutate(&doc)
        return try decodeTopology(doc)
    }

    /// Decodes expecting failure and returns the issues as printed lines.
    func issues(_ mutate: (inout [String: Any]) -> Void, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        var doc = Self.base
        mutate(&doc)
        return topologyIssues(doc, file: file, line: line)
    }

    func edit(_ doc: inout [String: Any], _ key: String, _ f: (inout [String: Any]) -> Void) {
        var sub = doc[key] as? [String: Any] ?? [:]
        f(&sub)
        doc[key] = sub
    }

    func test_validTopologyDecodesWithDefaults() throws {
        let t = try decode()
        XCTAssertEqual(t.zone.name, "example.test")
        XCTAssertEqual(t.zone.records.first?.name, "mail.example.test")
        XCTAssertEqual(t.services.first?.fqdn, "www.example.test")
        XCTAssertEqual(t.services.first?.answerCount, 1)
        XCTAssertEqual(t.services.first?.ttlSeconds, 30)
        XCTAssertEqual(t.dns.maxUDPPayload, 1232)
        XCTAssertEqual(t.zone.soa.minimumSeconds, 60)
        XCTAssertEqual(t.edges.first?.weight, 100)
    }

    func test_defaultTopologyFileIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let t = try Topology.load(path: root.appendingPathComponent("topology.json").path)
        XCTAssertEqual(t.zone.name, "example.test")
        XCTAssertEqual(Set(t.regions.map(\.id)), ["us-east", "eu-central", "ap-southeast"])
        XCTAssertEqual(t.services.map(\.fqdn), ["www.example.test"])
        XCTAssertTrue(t.dns.geoDatabase.hasPrefix(root.path), "relative geoDatabase is resolved against the topology's folder")
    }

    func test_unknownFieldNamesPathAndAllowedFields() {
        let lines = issues { doc in edit(&doc, "dns") { $0["listn"] = ["127.0.0.1:1"] } }
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].hasPrefix("t.json: dns.listn: unknown field"), lines[0])
    }

    func test_adminListenerOffLoopbackNeedsTheAdminSection() throws {
        let lines = issues { doc in edit(&doc, "dns") { $0["admin"] = "0.0.0.0:9110" } }
        XCTAssertTrue(lines.contains("t.json: dns.admin: an admin listener off loopback needs the top-level \"admin\" section (a bearer token)"),
                      "\(lines)")
        let t = try decode { doc in
            self.edit(&doc, "dns") { $0["admin"] = "0.0.0.0:9110" }
            doc["admin"] = ["tokenFile": "admin.token"]
        }
        XCTAssertEqual(t.admin?.tokenFile, "admin.token")
        XCTAssertNoThrow(try decode { doc in self.edit(&doc, "dns") { $0["admin"] = "[::1]:9110" } }, "loopback needs no token")
        let badEnv = issues { doc in doc["admin"] = ["tokenEnvironment": "lower-case"] }
        XCTAssertTrue(badEnv.contains("t.json: admin.tokenEnvironment: \"lower-case\" is not an environment variable name (A-Z, 0-9, _)"),
                      "\(badEnv)")
    }

    func test_adminTokenIsReadAndChecked() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-token-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("0123456789abcdef01\nignored\n".utf8).write(to: file)
        XCTAssertEqual(try AdminSettings(tokenFile: file.path).token(), "0123456789abcdef01")
        XCTAssertEqual(try AdminSettings(tokenEnvironment: "T").token(environment: ["T": "abcdefghijklmnopq"]), "abcdefghijklmnopq")
        XCTAssertThrowsError(try AdminSettings(tokenEnvironment: "T").token(environment: ["T": "short"]))
        XCTAssertThrowsError(try AdminSettings(tokenEnvironment: "T").token(environment: [:]))
        XCTAssertThrowsError(try AdminSettings(tokenFile: "/nonexistent/token").token())
    }

    func test_badIPAddress() {
        let lines = issues { doc in
            doc["edges"] = [["id": "e1", "region": "us-east", "addresses": ["127.0.1.300"]],
                            ["id": "e2", "region": "eu-central", "addresses": ["127.0.2.1"]]]
        }
        XCTAssertTrue(lines.contains("t.json: edges[0].addresses[0]: \"127.0.1.300\" is not an IPv4 or IPv6 address"), "\(lines)")
    }

    func test_duplicateEdgeId() {
        let lines = issues { doc in
            doc["edges"] = [["id": "e1", "region": "us-east", "addresses": ["127.0.1.1"]],
                            ["id": "e1", "region": "eu-central", "addresses": ["127.0.2.1"]]]
        }
        XCTAssertTrue(lines.contains("t.json: edges[1].id: duplicate edge id \"e1\""), "\(lines)")
    }

    func test_edgeInUnknownRegion() {
        let lines = issues { doc in
            doc["edges"] = [["id": "e1", "region": "eu-west", "addresses": ["127.0.1.1"]],
                            ["id": "e2", "region": "eu-central", "addresses": ["127.0.2.1"]]]
        }
        XCTAssertTrue(lines.contains("t.json: edges[0].region: unknown region \"eu-west\""), "\(lines)")
    }

    func test_ttlOutOfRange() {
        let lines = issues { doc in doc["services"] = ["www": ["edges": ["e1"], "ttl": 999_999_999]] }
        XCTAssertTrue(lines.contains("t.json: services.www.ttl: 999999999 is out of range 0...604800"), "\(lines)")
        let neg = issues { doc in doc["services"] = ["www": ["edges": ["e1"], "ttl": -1]] }
        XCTAssertTrue(neg.contains("t.json: services.www.ttl: -1 is out of range 0...604800"), "\(neg)")
    }

    func test_serviceWithNoEdges() {
        let lines = issues { doc in doc["services"] = ["www": ["edges": [String]()]] }
        XCTAssertTrue(lines.contains("t.json: services.www.edges: a service needs at least one edge"), "\(lines)")
    }

    func test_serviceWithUnknownEdgeAndAnswerCountRange() {
        let lines = issues { doc in doc["services"] = ["www": ["edges": ["e1", "e9"], "answerCount": 9]] }
        XCTAssertTrue(lines.contains("t.json: services.www.edges[1]: unknown edge \"e9\""), "\(lines)")
        XCTAssertTrue(lines.contains("t.json: services.www.answerCount: 9 is out of range 1...8"), "\(lines)")
    }

    func test_everyErrorIsReportedNotJustTheFirst() {
        let lines = issues { doc in
            doc["edges"] = [["id": "e1", "region": "nowhere", "addresses": ["x"]],
                            ["id": "e2", "region": "eu-central", "addresses": ["127.0.2.1"], "wieght": 3]]
            edit(&doc, "dns") { $0["maxUDPPayload"] = 100 }
        }
        XCTAssertGreaterThanOrEqual(lines.count, 4, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("t.json: edges[1].wieght: unknown field") }, "\(lines)")
        XCTAssertTrue(lines.contains("t.json: dns.maxUDPPayload: 100 is out of range 512...4096"), "\(lines)")
    }

    func test_booleanIsNotANumberAndNumberIsNotABoolean() {
        let a = issues { doc in doc["services"] = ["www": ["edges": ["e1"], "ttl": true]] }
        XCTAssertTrue(a.contains("t.json: services.www.ttl: expected an integer"), "\(a)")
        let b = issues { doc in doc["services"] = ["www": ["edges": ["e1"], "failClosed": 1]] }
        XCTAssertTrue(b.contains("t.json: services.www.failClosed: expected true or false"), "\(b)")
    }

    func test_missingRequiredSection() {
        let lines = issues { doc in doc["dns"] = nil }
        XCTAssertEqual(lines, ["t.json: dns: missing required field"])
    }

    func test_invalidJSONSaysSo() {
        XCTAssertThrowsError(try Topology.decode(Data("{\"zone\": ".utf8), file: "t.json")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("t.json: not valid JSON"), text)
        }
    }

    /// `lodestar check` refuses CNAME loops and names each cycle once (a self-loop, a pair reached through a chain,
    /// a cycle of three); a chain that ends, or leaves the zone, is fine.
    func test_cnameLoopsAreRefusedAndNamed() {
        let lines = issues { doc in
            edit(&doc, "zone") {
                $0["records"] = [["name": "self", "type": "CNAME", "value": "self.example.test."],
                                 ["name": "into", "type": "CNAME", "value": "loop2.example.test."],
                                 ["name": "loop1", "type": "CNAME", "value": "loop2.example.test."],
                                 ["name": "loop2", "type": "CNAME", "value": "LOOP1.example.test."],
                                 ["name": "c", "type": "CNAME", "value": "a.example.test."],
                                 ["name": "a", "type": "CNAME", "value": "b.example.test."],
                                 ["name": "b", "type": "CNAME", "value": "c.example.test."],
                                 ["name": "ok", "type": "CNAME", "value": "www.example.test."],
                                 ["name": "away", "type": "CNAME", "value": "www.example.com."]]
            }
        }
        let loops = lines.filter { $0.contains("CNAME loop") }
        XCTAssertEqual(loops, [
            "t.json: zone.records: CNAME loop: a.example.test → b.example.test → c.example.test → a.example.test",
            "t.json: zone.records: CNAME loop: loop1.example.test → loop2.example.test → loop1.example.test",
            "t.json: zone.records: CNAME loop: self.example.test → self.example.test",
        ], "\(lines)")
    }

    /// `dns.nodes`: more DNS nodes of the zone; `--node` picks one (its id and addresses, the rest as peers); every
    /// DNS node with a gossip address is a gossip member; ids must differ.
    func test_dnsNodesAndTheirSelection() throws {
        let t = try decode { doc in
            doc["gossip"] = ["keyEnvironment": "LODESTAR_GOSSIP_KEY"]
            edit(&doc, "dns") {
                $0["gossip"] = "127.0.0.1:7946"
                $0["nodes"] = [["nodeId": "dns-2", "gossip": "127.0.0.2:7946", "admin": "127.0.0.1:9101", "stateFile": "s2.json"]]
            }
        }
        XCTAssertEqual(t.dns.nodes.map(\.nodeId), ["dns-2"])
        let two = try XCTUnwrap(t.selectingDNSNode("dns-2"))
        XCTAssertEqual(two.dns.nodeId, "dns-2")
        XCTAssertEqual(two.dns.gossip?.description, "127.0.0.2:7946")
        XCTAssertEqual(two.dns.admin?.description, "127.0.0.1:9101")
        XCTAssertEqual(two.dns.listen, t.dns.listen, "listen falls back to the first node's")
        XCTAssertEqual(two.dns.nodes.map(\.nodeId), [t.dns.nodeId], "the first node becomes a peer")
        XCTAssertEqual(Set(two.gossipMembers.filter { !$0.isEdge }.map(\.id)), Set(t.gossipMembers.filter { !$0.isEdge }.map(\.id)))
        XCTAssertNil(t.selectingDNSNode("dns-9"))
        let lines = issues { doc in edit(&doc, "dns") { $0["nodes"] = [["nodeId": "dns-2"], ["nodeId": "dns-2"]] } }
        XCTAssertTrue(lines.contains { $0.contains("dns.nodes[1]") && $0.contains("used by another DNS node") }, "\(lines)")
    }

    func test_recordChecks_RFC1034_3_6_2() {
        let lines = issues { doc in
            edit(&doc, "zone") {
                $0["records"] = [["name": "x", "type": "CNAME", "value": "www.example.test."],
                                 ["name": "x", "type": "A", "value": "127.0.0.9"],
                                 ["name": "y", "type": "A", "value": "::1"],
                                 ["name": "z", "type": "MX", "value": "ten mail"],
                                 ["name": "w", "type": "SRV", "value": "x"],
                                 ["name": "bad..name", "type": "A", "value": "127.0.0.1"]]
            }
        }
        XCTAssertTrue(lines.contains("t.json: zone.records: x.example.test has a CNAME and other records (RFC 1034 §3.6.2)"), "\(lines)")
        XCTAssertTrue(lines.contains("t.json: zone.records[2].value: an A record needs an IPv4 address"), "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("t.json: zone.records[3].value: an MX value is") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("t.json: zone.records[4].type: unsupported record type \"SRV\"") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("t.json: zone.records[5].name:") }, "\(lines)")
    }

    func test_inZoneNameServerNeedsGlue() {
        let lines = issues { doc in edit(&doc, "zone") { $0["nameservers"] = [["name": "ns1.example.test"]] } }
        XCTAssertTrue(lines.contains { $0.hasPrefix("t.json: zone.nameservers[0]: name server ns1.example.test is inside the zone") }, "\(lines)")
    }

    func test_serviceAndStaticRecordCollide() {
        let lines = issues { doc in
            edit(&doc, "zone") { $0["records"] = [["name": "www", "type": "A", "value": "127.0.0.9"]] }
        }
        XCTAssertTrue(lines.contains("t.json: services.www: www.example.test is both a service and a static record"), "\(lines)")
    }

    func test_listenAddressForms() {
        XCTAssertEqual(ListenAddress("127.0.0.1:53")?.port, 53)
        XCTAssertEqual(ListenAddress("[::1]:5300")?.host, IPAddress("::1"))
        XCTAssertNil(ListenAddress("::1:53"))
        XCTAssertNil(ListenAddress("127.0.0.1:70000"))
        XCTAssertNil(ListenAddress("localhost:53"))
        let lines = issues { doc in edit(&doc, "dns") { $0["listen"] = ["localhost:53"] } }
        XCTAssertTrue(lines.contains("t.json: dns.listen[0]: \"localhost:53\" is not ADDRESS:PORT or [ADDRESS]:PORT"), "\(lines)")
    }

    func test_overridesSortedMostSpecificFirst() throws {
        let t = try decode { doc in
            doc["services"] = ["www": ["edges": ["e1", "e2"],
                                       "overrides": [["prefix": "10.0.0.0/8", "region": "us-east"],
                                                     ["prefix": "10.1.0.0/16", "region": "eu-central"]]]]
        }
        XCTAssertEqual(t.services.first?.overrides.map(\.prefix.length), [16, 8])
        let bad = issues { doc in
            doc["services"] = ["www": ["edges": ["e1"], "overrides": [["prefix": "10.0.0.0/33", "region": "us-east"]]]]
        }
        XCTAssertTrue(bad.contains("t.json: services.www.overrides[0].prefix: \"10.0.0.0/33\" is not a CIDR prefix"), "\(bad)")
    }
}

/// Address parsing and prefix arithmetic.
final class IPAddressTests: XCTestCase {
    func test_parsesAndPrints() {
        XCTAssertEqual(IPAddress("81.2.69.1")?.description, "81.2.69.1")
        XCTAssertEqual(IPAddress("2001:DB8::1")?.description, "2001:db8::1")
        XCTAssertNil(IPAddress("1.2.3"))
        XCTAssertNil(IPAddress(""))
        XCTAssertNil(IPAddress("::g"))
        XCTAssertEqual(IPAddress(bytes: [1, 2, 3, 4]), .v4(0x0102_0304))
        XCTAssertNil(IPAddress(bytes: [1, 2, 3]))
    }

    func test_maskingAndContainment() {
        let p = IPPrefix("81.2.69.77/24")
        XCTAssertEqual(p?.description, "81.2.69.0/24")
        XCTAssertTrue(p?.contains(IPAddress("81.2.69.200")!) ?? false)
        XCTAssertFalse(p?.contains(IPAddress("81.2.70.1")!) ?? true)
        XCTAssertEqual(IPPrefix("2001:db8:1:2::/33")?.description, "2001:db8::/33")
        XCTAssertEqual(IPAddress("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")?.masked(to: 72).description, "2001:db8:ffff:ffff:ff00::")
        XCTAssertEqual(IPAddress("1.2.3.4")?.masked(to: 0), .v4(0))
        XCTAssertNil(IPPrefix("1.2.3.4/x"))
        XCTAssertNil(IPPrefix("1.2.3.4/-1"))
    }

    func test_loopbackIncludesMappedIPv4() {
        XCTAssertTrue(IPAddress("127.9.9.9")!.isLoopback)
        XCTAssertTrue(IPAddress("::1")!.isLoopback)
        XCTAssertTrue(IPAddress("::ffff:127.0.0.1")!.isLoopback)
        XCTAssertFalse(IPAddress("128.0.0.1")!.isLoopback)
    }
}
