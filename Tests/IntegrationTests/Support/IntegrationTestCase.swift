import Foundation
import XCTest

/// Base class: starts real `lodestar dns` processes on free ports and always stops them in tearDown.
class IntegrationTestCase: XCTestCase {
    private var servers = [LodestarServer]()

    /// The EU, US and AP edge addresses of the default topology.
    static let us = "127.0.1.1", eu = "127.0.2.1", ap = "127.0.3.1"

    /// The topology every test starts from: topology.json with an absolute GeoIP path and a 2 s TCP idle timeout.
    func baseTopology() throws -> [String: Any] {
        var t = try IntegrationEnvironment.defaultTopology()
        try t.edit("dns") { $0["tcpIdleTimeoutSeconds"] = 2 }
        return t
    }

    /// Writes the (edited) topology into a temp folder, starts the server and waits until it answers.
    @discardableResult
    func startServer(arguments: [String] = [], edit: (inout [String: Any]) throws -> Void = { _ in }) throws -> LodestarServer {
        _ = try IntegrationEnvironment.dig()
        var topology = try baseTopology()
        try edit(&topology)
        let server = try LodestarServer(topology: topology, arguments: arguments)
        servers.append(server)
        try server.start()
        return server
    }

    override func tearDown() {
        let failed = (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0
        for server in servers {
            server.stop()
            if failed {
                print("---- lodestar log (\(server.logPath)) ----\n\(server.log)---- end of log ----")
            }
            server.cleanUp()
        }
        servers = []
        super.tearDown()
    }

    // MARK: Assertions on dig results

    func assertStatus(_ r: DigResult, _ status: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, status, "status\n\(r)", file: file, line: line)
    }

    func assertFlags(_ r: DigResult, has: [String] = [], lacks: [String] = [], file: StaticString = #filePath, line: UInt = #line) {
        for f in has { XCTAssertTrue(r.flags.contains(f), "flag \(f) missing in \(r.flags.sorted())\n\(r)", file: file, line: line) }
        for f in lacks { XCTAssertFalse(r.flags.contains(f), "flag \(f) unexpectedly set\n\(r)", file: file, line: line) }
    }

    /// Exactly one A record with this address (and optionally TTL).
    func assertSingleA(_ r: DigResult, _ address: String, ttl: Int? = nil, owner: String? = nil,
                       file: StaticString = #filePath, line: UInt = #line) {
        let a = r.answers("A")
        XCTAssertEqual(a.map(\.data), [address], "A records\n\(r)", file: file, line: line)
        if let ttl, let first = a.first { XCTAssertEqual(first.ttl, ttl, "TTL\n\(r)", file: file, line: line) }
        if let owner, let first = a.first { XCTAssertEqual(first.name, owner, "owner\n\(r)", file: file, line: line) }
    }

    /// Response ECS option: address/source as sent, and the scope.
    func assertSubnet(_ r: DigResult, _ subnet: String, scope: Int, file: StaticString = #filePath, line: UInt = #line) {
        guard let ecs = r.clientSubnet else { return XCTFail("no CLIENT-SUBNET in response\n\(r)", file: file, line: line) }
        XCTAssertEqual("\(ecs.address)/\(ecs.source)", subnet, "ECS address/source echoed\n\(r)", file: file, line: line)
        XCTAssertEqual(ecs.scope, scope, "ECS scope for \(subnet)\n\(r)", file: file, line: line)
    }

    /// The negative-answer SOA in authority with the RFC 2308 §3 TTL (min of SOA TTL and minimum: 60).
    func assertNegativeSOA(_ r: DigResult, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.authority.count, 1, "authority\n\(r)", file: file, line: line)
        guard let soa = r.authority.first else { return }
        XCTAssertEqual(soa.type, "SOA", file: file, line: line)
        XCTAssertEqual(soa.name.lowercased(), "example.test.", file: file, line: line)
        XCTAssertEqual(soa.ttl, 60, "negative TTL = min(SOA TTL 3600, minimum 60)\n\(r)", file: file, line: line)
        XCTAssertTrue(soa.data.hasPrefix("ns1.example.test. hostmaster.example.test. 2026112501 "), soa.data, file: file, line: line)
    }
}
