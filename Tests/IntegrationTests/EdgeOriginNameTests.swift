import Foundation
import XCTest

/// Origin servers given by name (`"app.origins.example.test:PORT"`), reached over verified TLS: the name is looked up
/// in a real DNS server (`lodestar dns` serving the records), every address it has becomes a server, traffic follows
/// a changed record, and a name the certificate does not carry is refused with the reason in the log.
final class EdgeOriginNameTests: EdgeTestCase {
    static let name = "app.origins.example.test"

    private func zone(_ addresses: [String]) throws -> [String: Any] {
        var t = try IntegrationEnvironment.defaultTopology()
        for a in addresses { try t.addRecord(["name": "app.origins", "type": "A", "ttl": 1, "value": a]) }
        return t
    }

    /// X-Origin of `count` requests on fresh connections.
    private func origins(_ edge: EdgeNode, _ count: Int) -> [String] {
        (0..<count).map { _ in (try? EdgeHTTP.get(port: edge.port, "/echo")).map { $0.origin ?? "status \($0.status)" } ?? "error" }
    }

    func test_tlsOriginByName_followsTheRecordAndVerifiesTheName() throws {
        try makeCertificate(key: "o.key", cert: "o.pem", commonName: Self.name, san: "DNS:\(Self.name)")
        let port = try freePort()
        _ = try startOrigin("a", host: "127.0.0.1", port: port, tls: ("o.pem", "o.key"))
        _ = try startOrigin("b", host: "127.0.0.2", port: port, tls: ("o.pem", "o.key"))
        let dns = try LodestarServer(topology: try zone(["127.0.0.1"]))
        addTeardownBlock { dns.cleanUp() }
        try dns.start()
        let resolver: [String: Any] = ["nameservers": ["127.0.0.1:\(dns.port)"]]
        let pool: [String: Any] = ["servers": ["\(Self.name):\(port)"], "tls": ["caFile": "o.pem"], "retries": 0]
        let edge = try startEdge(pools: ["web": pool], routes: [route()], proxy: ["resolver": resolver])

        let first = try EdgeHTTP.get(port: edge.port, "/echo")
        XCTAssertEqual(first.status, 200, "\(first)\n\(edge.log)")
        XCTAssertEqual(first.origin, "a")
        XCTAssertEqual(try edge.serverStatus(address: "\(Self.name):\(port) (127.0.0.1)"), "healthy")

        // The record moves: traffic follows within the TTL (1 s) and a lookup.
        try dns.writeTopology(try zone(["127.0.0.2"]))
        try dns.reload()
        let moved = eventually(timeout: 10) { origins(edge, 1) == ["b"] }
        XCTAssertNotNil(moved, "traffic did not follow the record\n\(edge.log)")
        XCTAssertEqual(Set(origins(edge, 6)), ["b"])
        XCTAssertTrue(edge.log.contains("origin addresses changed"), edge.log)

        // Two records: two servers, each taking its share.
        try dns.writeTopology(try zone(["127.0.0.1", "127.0.0.2"]))
        try dns.reload()
        XCTAssertNotNil(eventually(timeout: 10) { Set(origins(edge, 4)) == ["a", "b"] }, "both addresses serve\n\(edge.log)")

        // A name the certificate does not carry: 502, and the log says why.
        var wrongPool = pool
        wrongPool["tls"] = ["caFile": "o.pem", "serverName": "other.origins.example.test"]
        let wrong = try startEdge(pools: ["web": wrongPool], routes: [route()], proxy: ["resolver": resolver])
        let refused = try EdgeHTTP.get(port: wrong.port, "/echo")
        XCTAssertEqual(refused.status, 502, "\(refused)")
        XCTAssertNotNil(eventually(timeout: 5) {
            wrong.log.contains("origin connect failed") && wrong.log.contains("failedToValidateHostname")
        }, wrong.log)
    }

    /// A name that cannot be resolved leaves its pool without servers (503), and the edge still starts and serves
    /// its other pools; names in /etc/hosts (`localhost`) need no DNS.
    func test_unresolvableNameAndHostsFile() throws {
        let origin = try startOrigin("local")
        let dns = try LodestarServer(topology: try zone([]))
        addTeardownBlock { dns.cleanUp() }
        try dns.start()
        let resolver: [String: Any] = ["nameservers": ["127.0.0.1:\(dns.port)"], "timeoutMs": 200, "attempts": 1]
        let edge = try startEdge(
            pools: ["web": ["servers": ["localhost:\(origin.port)"], "resolveFamily": "ipv4"],
                    "gone": ["servers": ["missing.origins.example.test:80"]]],
            routes: [route(pool: "web", pathPrefix: "/"), route(pool: "gone", pathPrefix: "/gone/")],
            proxy: ["resolver": resolver])
        let ok = try EdgeHTTP.get(port: edge.port, "/echo")
        XCTAssertEqual(ok.status, 200, "\(ok)\n\(edge.log)")
        XCTAssertEqual(ok.origin, "local")
        let gone = try EdgeHTTP.get(port: edge.port, "/gone/x")
        XCTAssertEqual(gone.status, 503, "\(gone)")
    }

    /// Mutual TLS: an origin that requires a client certificate is served when the pool presents one
    /// (`clientCertificate`/`clientKey`), and a pool without one gets 502 with the origin's refusal in the log.
    func test_clientCertificateForMutualTLS() throws {
        try makeCertificate(key: "o.key", cert: "o.pem", commonName: "localhost", san: "DNS:localhost")
        try makeCertificate(key: "c.key", cert: "c.pem", commonName: "edge-client", san: "DNS:edge-client")
        let port = try freePort()
        _ = try startOrigin("mtls", host: "127.0.0.1", port: port, tls: ("o.pem", "o.key"), clientCA: "c.pem")
        let tls: [String: Any] = ["caFile": "o.pem", "clientCertificate": "c.pem", "clientKey": "c.key"]
        let withCert = try startEdge(
            pools: ["web": ["servers": ["localhost:\(port)"], "resolveFamily": "ipv4", "tls": tls, "retries": 0]],
            routes: [route()])
        let ok = try EdgeHTTP.get(port: withCert.port, "/echo")
        XCTAssertEqual(ok.status, 200, "\(ok)\n\(withCert.log)")
        XCTAssertEqual(ok.origin, "mtls")

        let without = try startEdge(
            pools: ["web": ["servers": ["localhost:\(port)"], "resolveFamily": "ipv4", "tls": ["caFile": "o.pem"], "retries": 0]],
            routes: [route()])
        let refused = try EdgeHTTP.get(port: without.port, "/echo")
        XCTAssertEqual(refused.status, 502, "no client certificate: \(refused)")
        XCTAssertNotNil(eventually(timeout: 5) { without.log.contains("origin closed before answering") && without.log.contains("ALERT_CERTIFICATE_REQUIRED") },
                        "the log says the origin wanted a certificate\n\(without.log)")
    }
}
