import Foundation
import LodestarTopology
import XCTest

/// EDNS Client Subnet (RFC 7871): the subnet picks the edge, the scope says how far the answer holds.
/// `scope` in the cases is the length of the GeoIP network in GeoData/lodestar-sample.csv as compiled into the MMDB
/// tree (capped at the source prefix): the compiled answer engine merges neighbouring networks that get the same
/// answer, so the scope it returns may be wider (shorter) — but never narrower, and every address inside it must get
/// the same answer, which each check verifies by asking for random addresses inside the returned scope.
final class ClientSubnetTests: IntegrationTestCase {
    struct Case {
        var subnet: String
        var edge: String
        var scope: Int
        var why: String
        /// The narrowest the scope may be (when a wider one would cover a different answer next door).
        var atLeast = 0
    }

    private func check(_ server: LodestarServer, _ cases: [Case], extra: [String] = [],
                       file: StaticString = #filePath, line: UInt = #line) throws {
        for c in cases {
            let r = try server.dig(extra + ["www.example.test", "A", "+subnet=\(c.subnet)"])
            XCTAssertEqual(r.status, "NOERROR", "\(c.subnet)\n\(r)", file: file, line: line)
            XCTAssertEqual(r.answers("A").map(\.data), [c.edge], "\(c.subnet) (\(c.why)) → edge\n\(r)", file: file, line: line)
            XCTAssertEqual(r.answers("A").first?.ttl, 30, file: file, line: line)
            guard let ecs = r.clientSubnet else { XCTFail("no CLIENT-SUBNET\n\(r)", file: file, line: line); continue }
            XCTAssertEqual("\(ecs.address)/\(ecs.source)", c.subnet, "ECS address/source echoed\n\(r)", file: file, line: line)
            XCTAssertLessThanOrEqual(ecs.scope, c.scope, "ECS scope for \(c.subnet) narrower than its network\n\(r)", file: file, line: line)
            XCTAssertGreaterThanOrEqual(ecs.scope, c.atLeast, "ECS scope for \(c.subnet)\n\(r)", file: file, line: line)
            // Where the scope is the source prefix itself the answer was capped to what the client disclosed; below
            // it the server claims a wider network, and every address there must get this answer.
            guard ecs.scope > 0, ecs.scope < ecs.source, extra.isEmpty, let base = IPAddress(String(ecs.address)) else { continue }
            for _ in 0..<3 {
                let other = Self.randomAddress(inside: base, length: ecs.scope)
                let o = try server.dig(["www.example.test", "A", "+subnet=\(other)/\(other.isIPv4 ? 32 : 128)"])
                XCTAssertEqual(o.answers("A").map(\.data), [c.edge],
                               "\(other) lies inside \(c.subnet)'s scope /\(ecs.scope) but is answered otherwise\n\(o)", file: file, line: line)
            }
        }
    }

    /// A random address inside `base`/`length`.
    static func randomAddress(inside base: IPAddress, length: Int) -> IPAddress {
        switch base {
        case .v4(let v):
            let host: UInt32 = length >= 32 ? 0 : ~UInt32(0) >> length
            return .v4((v & ~host) | (UInt32.random(in: 0...UInt32.max) & host))
        case .v6(let hi, let lo):
            let mask = length == 0 ? UInt128(0) : ~UInt128(0) << (128 - min(length, 128))
            let a = UInt128(hi) << 64 | UInt128(lo)
            let r = UInt128(UInt64.random(in: 0...UInt64.max)) << 64 | UInt128(UInt64.random(in: 0...UInt64.max))
            let b = (a & mask) | (r & ~mask)
            return .v6(UInt64(truncatingIfNeeded: b >> 64), UInt64(truncatingIfNeeded: b))
        }
    }

    func test_ecsSubnetSelectsEdgeAndScopeIsGeoNetworkLength_RFC7871_7_2_1() throws {
        let server = try startServer()
        try check(server, [
            Case(subnet: "81.2.69.0/24", edge: Self.eu, scope: 24, why: "London, 81.2.69.0/24"),
            Case(subnet: "85.214.3.0/24", edge: Self.eu, scope: 16, why: "Berlin, 85.214.0.0/16"),
            Case(subnet: "8.8.8.0/24", edge: Self.us, scope: 24, why: "Mountain View, 8.8.8.0/24"),
            // 4.0.0.0/9 (Chicago) has 4.2.2.0/24 (Denver) carved out of it, so in the MMDB tree the address
            // 4.1.0.0 sits in the /15 node 4.0.0.0/15 — the widest network that holds only Chicago data.
            Case(subnet: "4.1.0.0/24", edge: Self.us, scope: 15, why: "Chicago, 4.0.0.0/9 minus 4.2.2.0/24"),
            Case(subnet: "133.1.2.0/24", edge: Self.ap, scope: 8, why: "Tokyo, 133.0.0.0/8"),
            Case(subnet: "1.128.5.0/24", edge: Self.ap, scope: 11, why: "Sydney, 1.128.0.0/11"),
        ])
    }

    func test_ecsIPv6SubnetScopeIsNetworkLength_RFC7871_7_2_1() throws {
        let server = try startServer()
        try check(server, [
            Case(subnet: "2404:6800:1::/48", edge: Self.ap, scope: 32, why: "Singapore, 2404:6800::/32"),
            Case(subnet: "2a00:1450:4001:5::/64", edge: Self.eu, scope: 48, why: "Frankfurt, 2a00:1450:4001::/48"),
            Case(subnet: "2001:4860:1::/48", edge: Self.us, scope: 32, why: "Mountain View, 2001:4860::/32"),
        ])
    }

    func test_ecsScopeNeverExceedsSourcePrefix_RFC7871_7_2_1() throws {
        let server = try startServer()
        try check(server, [
            // The source prefix is shorter than the GeoIP network; the network address still lies inside it.
            Case(subnet: "8.8.8.0/21", edge: Self.us, scope: 21, why: "8.8.8.0/24 network, /21 source"),
            Case(subnet: "85.214.0.0/15", edge: Self.eu, scope: 15, why: "85.214.0.0/16 network, /15 source"),
            Case(subnet: "2404:6800::/24", edge: Self.ap, scope: 24, why: "2404:6800::/32 network, /24 source"),
        ])
        // A /32 source inside a /24 network: the scope is at most the network's length.
        try check(server, [Case(subnet: "81.2.69.5/32", edge: Self.eu, scope: 24, why: "81.2.69.0/24 network, /32 source")])
    }

    func test_ecsZeroSourcePrefixFallsBackToSourceAddress_RFC7871_7_1_2() throws {
        let server = try startServer()
        // SOURCE PREFIX-LENGTH 0: the resolver discloses nothing; the source address decides, and the scope is 0.
        try check(server, [Case(subnet: "0.0.0.0/0", edge: Self.eu, scope: 0, why: "source 127.0.2.1")], extra: ["-b", Self.eu])
        try check(server, [Case(subnet: "0.0.0.0/0", edge: Self.ap, scope: 0, why: "source 127.0.3.1")], extra: ["-b", Self.ap])
        try check(server, [Case(subnet: "0.0.0.0/0", edge: Self.us, scope: 0, why: "source 127.0.0.1: fallback")])
        // A non-empty subnet wins over the source address.
        try check(server, [Case(subnet: "81.2.69.0/24", edge: Self.eu, scope: 24, why: "ECS London from Singapore source")],
                  extra: ["-b", Self.ap])
    }

    func test_ecsOverridePrefixWinsWithItsLength() throws {
        let server = try startServer()
        // 198.51.100.0/24 is not in the GeoIP data but the service pins it to ap-southeast.
        try check(server, [Case(subnet: "198.51.100.0/24", edge: Self.ap, scope: 24, why: "override", atLeast: 24)])
    }

    func test_ecsScopeDoesNotCoverMoreSpecificOverride_RFC7871_7_2_1() throws {
        let server = try startServer()
        // The neighbour of the override is unlocated (fallback us-east). A scope shorter than 24 would make a resolver
        // cache this US answer for the override's /24 too, so the scope must be at least 24 (and at most the source's 24).
        try check(server, [Case(subnet: "198.51.101.0/24", edge: Self.us, scope: 24, why: "next to the override", atLeast: 24)])
    }

    func test_ecsUnknownSubnetUsesFallbackRegion() throws {
        let server = try startServer()
        let r = try server.dig("www.example.test", "A", "+subnet=192.0.2.0/24")
        assertStatus(r, "NOERROR")
        XCTAssertEqual(r.answers("A").map(\.data), [Self.us], "unlocated → fallbackRegion us-east\n\(r)")
        guard let ecs = r.clientSubnet else { return XCTFail("no ECS in the response\n\(r)") }
        XCTAssertEqual("\(ecs.address)/\(ecs.source)", "192.0.2.0/24")
        XCTAssertLessThanOrEqual(ecs.scope, 24, "\(r)")
        let v6 = try server.dig("www.example.test", "A", "+subnet=2001:db8::/32")
        XCTAssertEqual(v6.answers("A").map(\.data), [Self.us], "\(v6)")
    }

    func test_ecsStaticAndNegativeAnswersHaveScopeZero_RFC7871_7_2_1() throws {
        let server = try startServer()
        let mail = try server.dig("mail.example.test", "A", "+subnet=81.2.69.0/24")
        XCTAssertEqual(mail.answers("A").map(\.data), ["127.0.0.25"], "\(mail)")
        assertSubnet(mail, "81.2.69.0/24", scope: 0)
        let nx = try server.dig("nope.example.test", "A", "+subnet=81.2.69.0/24")
        assertStatus(nx, "NXDOMAIN")
        assertSubnet(nx, "81.2.69.0/24", scope: 0)
    }

    func test_noECSInQueryMeansNoECSInReply_RFC7871_7_2_2() throws {
        let server = try startServer()
        let r = try server.dig("www.example.test", "A")
        XCTAssertTrue(r.hasOPT, "\(r)")
        XCTAssertNil(r.clientSubnet, "ECS option in reply to a query without one\n\(r)")
        XCTAssertFalse(r.output.contains("CLIENT-SUBNET"), "\(r)")
    }

    func test_ecsWithNonZeroScopeInQueryIsFORMERR_RFC7871_6() throws {
        let server = try startServer()
        let udp = try UDPClient(port: server.port)
        // FAMILY 1, SOURCE 24, SCOPE 5 (must be 0 in queries), 81.2.69.
        let ecs: [UInt8] = [0, 1, 24, 5, 81, 2, 69]
        let query = DNSPacket.query(id: 0x7871, name: "www.example.test", opt: DNSPacket.opt(options: [(8, ecs)]))
        let reply = try XCTUnwrap(udp.exchange(query), "no reply")
        let h = try XCTUnwrap(ResponseHeader(reply))
        XCTAssertEqual(h.id, 0x7871)
        XCTAssertEqual(h.rcode, 1, "FORMERR expected: \(h)")
        XCTAssertEqual(h.an, 0)
        // A well-formed one is answered.
        let good = DNSPacket.query(id: 0x7872, name: "www.example.test", opt: DNSPacket.opt(options: [(8, [0, 1, 24, 0, 81, 2, 69])]))
        let ok = try XCTUnwrap(ResponseHeader(XCTUnwrap(udp.exchange(good))))
        XCTAssertEqual(ok.rcode, 0, "\(ok)")
        XCTAssertEqual(ok.an, 1, "\(ok)")
    }
}
