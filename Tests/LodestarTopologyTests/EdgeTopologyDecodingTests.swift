import Foundation
import LodestarTopology
import XCTest

/// The edge sections of a topology: listeners, origins, routes and proxy settings.
final class EdgeTopologyDecodingTests: XCTestCase {
    /// The base topology of `TopologyDecodingTests` with one edge listener, a pool and a route.
    static func document() -> [String: Any] {
        var doc = TopologyDecodingTests.base
        doc["edges"] = [
            ["id": "e1", "region": "us-east", "addresses": ["127.0.1.1"],
             "listen": ["127.0.1.1:8080",
                        ["address": "127.0.1.1:8443",
                         "tls": ["certificates": [["cert": "a.pem", "key": "a.key", "serverNames": ["A.example.test", "*.b.example.test"]]]]],
                        ["address": "127.0.1.1:8081", "proxyProtocol": true]],
             "admin": "127.0.0.1:9100"],
            ["id": "e2", "region": "eu-central", "addresses": ["127.0.2.1"]],
        ]
        doc["origins"] = ["web": ["servers": ["127.0.0.1:9001", ["address": "127.0.0.1:9002", "weight": 3]],
                                  "balance": "consistent-hash", "healthCheck": ["path": "/healthz", "rise": 1]]]
        doc["routes"] = [["hosts": ["www.example.test", "*.example.test"], "pathPrefix": "/api", "pool": "web",
                          "requestHeaders": ["set": ["X-Edge": "1"], "remove": ["Cookie"]],
                          "deny": [["methods": ["trace"]], ["path": "/admin*"], ["header": "User-Agent", "value": "*bot*"]]]]
        doc["proxy"] = ["threads": 2, "limits": ["maxBodyBytes": 1024, "headerTimeoutMs": 500, "sendTimeoutMs": 15000],
                        "rateLimit": ["requestsPerSecond": 5, "burst": 10], "compression": ["enabled": false]]
        return doc
    }

    func decode(_ mutate: (inout [String: Any]) -> Void = { _ in }) throws -> Topology {
        var doc = Self.document()
        mutate(&doc)
        return try decodeTopology(doc)
    }

    /// Decodes expecting failure and returns the issues as printed lines.
    func issues(_ mutate: (inout [String: Any]) -> Void, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        var doc = Self.document()
        mutate(&doc)
        return topologyIssues(doc, file: file, line: line)
    }

    func test_edgeSectionsDecode() throws {
        let t = try decode()
        let e1 = try XCTUnwrap(t.edge("e1"))
        XCTAssertEqual(e1.listen.map(\.address.description), ["127.0.1.1:8080", "127.0.1.1:8443", "127.0.1.1:8081"])
        XCTAssertNil(e1.listen[0].tls)
        XCTAssertEqual(e1.listen[1].tls?.certificates.first?.serverNames, ["a.example.test", "*.b.example.test"])
        XCTAssertEqual(e1.listen[1].tls?.minimumVersion, .tls12)
        XCTAssertTrue(e1.listen[2].proxyProtocol)
        XCTAssertEqual(e1.admin?.description, "127.0.0.1:9100")
        XCTAssertEqual(t.edge("e2")?.listen, [])

        let pool = try XCTUnwrap(t.pool("web"))
        XCTAssertEqual(pool.servers.map(\.weight), [1, 3])
        XCTAssertEqual(pool.balance, .consistentHash)
        XCTAssertEqual(pool.healthCheck?.path, "/healthz")
        XCTAssertEqual(pool.healthCheck?.rise, 1)
        XCTAssertEqual(pool.healthCheck?.fall, 3, "default fall")
        XCTAssertEqual(pool.passive, PassiveHealthSettings(), "passive defaults")
        XCTAssertEqual(pool.retries, 2)

        let route = try XCTUnwrap(t.routes.first)
        XCTAssertEqual(route.hosts, ["www.example.test", "*.example.test"])
        XCTAssertEqual(route.pathPrefix, "/api")
        XCTAssertEqual(route.requestHeaders.set, [HeaderField(name: "X-Edge", value: "1")])
        XCTAssertEqual(route.deny.first?.methods, ["TRACE"], "methods upper-cased")
        XCTAssertEqual(route.deny.last?.value, "*bot*")
        XCTAssertFalse(route.exposeOriginServer)

        XCTAssertEqual(t.proxy.threads, 2)
        XCTAssertEqual(t.proxy.limits.maxBodyBytes, 1024)
        XCTAssertEqual(t.proxy.limits.headerTimeoutMs, 500)
        XCTAssertEqual(t.proxy.limits.sendTimeoutMs, 15000)
        XCTAssertEqual(t.proxy.limits.maxHeaderCount, 100, "default")
        XCTAssertTrue(t.proxy.rateLimit.enabled, "a rateLimit section turns limiting on unless it says otherwise")
        XCTAssertEqual(t.proxy.rateLimit.burst, 10)
        XCTAssertFalse(t.proxy.compression.enabled)
        XCTAssertEqual(t.proxy.compression.level, 6, "zlib's default level")
        let fast = try decode { $0["proxy"] = ["compression": ["level": 1]] }
        XCTAssertEqual(fast.proxy.compression.level, 1)
    }

    func test_sectionsAreOptional() throws {
        let t = try Topology.decode(JSONSerialization.data(withJSONObject: TopologyDecodingTests.base), file: "t.json")
        XCTAssertEqual(t.pools, [])
        XCTAssertEqual(t.routes, [])
        XCTAssertEqual(t.proxy, ProxySettings())
        XCTAssertFalse(t.proxy.rateLimit.enabled)
        XCTAssertTrue(t.proxy.passThrough, "the pass-through lane is on unless turned off")
    }

    func test_badEdgeSectionsNameFileFieldAndReason() {
        let found = issues { doc in
            var edges = doc["edges"] as? [[String: Any]] ?? []
            edges[0]["listen"] = ["127.0.1.1", ["address": "127.0.1.1:8443", "tls": ["certificates": [], "minVersion": "1.0"]]]
            edges[1]["admin"] = "localhost:9"
            doc["edges"] = edges
            doc["origins"] = ["web": ["servers": [], "balance": "random"], "bad name!": ["servers": ["127.0.0.1:1"]]]
            doc["routes"] = [["hosts": [], "pathPrefix": "api", "pool": "nope", "deny": [[:]]]]
            doc["proxy"] = ["limits": ["maxHeaderCount": 1, "sendTimeoutMs": 50], "requestIdHeader": "X Bad", "color": "red", "passThrough": "yes",
                            "compression": ["level": 10]]
        }
        let expected = [
            "t.json: edges[0].listen[0]: \"127.0.1.1\" is not ADDRESS:PORT or [ADDRESS]:PORT",
            "t.json: edges[0].listen[1].tls.certificates: TLS needs at least one certificate",
            "t.json: edges[0].listen[1].tls.minVersion: \"1.0\" is not one of 1.2, 1.3 (older TLS is not offered)",
            "t.json: edges[1].admin: \"localhost:9\" is not ADDRESS:PORT or [ADDRESS]:PORT",
            "t.json: origins.web.servers: a pool needs at least one server",
            "t.json: origins.web.balance: \"random\" is not one of round-robin, least-connections, consistent-hash",
            "t.json: routes[0].hosts: a route needs at least one host (\"*\" for any)",
            "t.json: routes[0].pathPrefix: a path prefix starts with \"/\"",
            "t.json: routes[0].pool: unknown origin pool \"nope\"",
            "t.json: routes[0].deny[0]: a deny rule needs methods, path or header",
            "t.json: proxy.color: unknown field (allowed: accessLog, cache, compression, http2, limits, passThrough, rateLimit, requestIdHeader, resolver, threads, tunnels)",
            "t.json: proxy.limits.maxHeaderCount: 1 is out of range 8...10000",
            "t.json: proxy.limits.sendTimeoutMs: 50 is out of range 100...3600000",
            "t.json: proxy.requestIdHeader: \"X Bad\" is not a header name",
            "t.json: proxy.passThrough: expected true or false",
            "t.json: proxy.compression.level: 10 is out of range 1...9",
        ]
        for line in expected {
            XCTAssertTrue(found.contains(line), "missing: \(line)\nall issues:\n\(found.joined(separator: "\n"))")
        }
        XCTAssertTrue(found.contains { $0.hasPrefix("t.json: origins.bad name!") }, "\(found)")
    }

    /// Servers by name, the resolver settings, and what is refused about them.
    func test_originNamesAndResolver() throws {
        var doc = TopologyDecodingTests.base
        doc["origins"] = ["app": ["servers": ["App.Internal.:8443", ["address": "10.0.0.1:80", "weight": 3]],
                                  "resolveIntervalMs": 5000, "resolveFamily": "any"]]
        doc["proxy"] = ["resolver": ["nameservers": ["127.0.0.1:5353", "::1"], "timeoutMs": 300, "attempts": 2]]
        let t = try Topology.decode(JSONSerialization.data(withJSONObject: doc), file: "t.json")
        let pool = try XCTUnwrap(t.pools.first)
        XCTAssertEqual(pool.servers.map(\.target), [.name("app.internal", port: 8443), .address(ListenAddress("10.0.0.1:80")!)])
        XCTAssertEqual(pool.servers.map(\.weight), [1, 3])
        XCTAssertEqual(pool.resolveIntervalMs, 5000)
        XCTAssertEqual(pool.resolveFamily, .any)
        XCTAssertEqual(t.proxy.resolver.nameservers.map(\.description), ["127.0.0.1:5353", "[::1]:53"])
        XCTAssertEqual(t.proxy.resolver.timeoutMs, 300)
        XCTAssertEqual(t.proxy.resolver.attempts, 2)

        let found = issues { doc in
            doc["origins"] = ["a": ["servers": ["app.internal", "bad_name!:80", "app.internal:0", "app.internal:80", "app.internal:80"],
                                    "resolveFamily": "ipv5"]]
            doc["proxy"] = ["resolver": ["nameservers": ["resolver.internal"], "minTTLSeconds": 10, "maxTTLSeconds": 5]]
        }
        for line in [
            "t.json: origins.a.servers[0]: \"app.internal\" is not ADDRESS:PORT, [ADDRESS]:PORT or NAME:PORT",
            "t.json: origins.a.servers[1]: \"bad_name!\" has a character other than letters, digits, '-' or '_'",
            "t.json: origins.a.servers[2]: \"app.internal:0\" is not ADDRESS:PORT, [ADDRESS]:PORT or NAME:PORT",
            "t.json: origins.a.servers: server app.internal:80 listed twice",
            "t.json: origins.a.resolveFamily: \"ipv5\" is not one of ipv4-preferred, ipv4, ipv6, any",
            "t.json: proxy.resolver.nameservers[0]: \"resolver.internal\" is not ADDRESS, ADDRESS:PORT or [ADDRESS]:PORT",
        ] {
            XCTAssertTrue(found.contains(line), "missing: \(line)\nall issues:\n\(found.joined(separator: "\n"))")
        }
    }

    func test_listenAddressUsedTwiceIsRefused() {
        let found = issues { doc in
            var edges = doc["edges"] as? [[String: Any]] ?? []
            edges[1]["listen"] = ["127.0.1.1:8080"]
            doc["edges"] = edges
        }
        XCTAssertTrue(found.contains("t.json: edges: 127.0.1.1:8080 is used by both e1 and e2"), "\(found)")
    }

    func test_certificatePathsResolveAgainstTheTopologyFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-topo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("t.json").path
        try JSONSerialization.data(withJSONObject: Self.document()).write(to: URL(fileURLWithPath: path))
        let t = try Topology.load(path: path)
        XCTAssertEqual(t.edge("e1")?.listen[1].tls?.certificates.first?.certificatePath, folder.appendingPathComponent("a.pem").path)
        XCTAssertEqual(t.edge("e1")?.listen[1].tls?.certificates.first?.keyPath, folder.appendingPathComponent("a.key").path)
    }

    func test_cacheSettingsDecodeWithDefaults() throws {
        let plain = try decode()
        XCTAssertEqual(plain.routes[0].cache, RouteCacheSettings(), "a route caches only when it says so")
        XCTAssertFalse(plain.routes[0].cache.enabled)
        XCTAssertEqual(plain.proxy.cache, CacheSettings())
        XCTAssertNil(plain.proxy.cache.diskPath, "memory only by default")

        let t = try decode { doc in
            var routes = doc["routes"] as? [[String: Any]] ?? []
            routes[0]["cache"] = ["graceSeconds": 120]
            routes.append(["hosts": ["*"], "pool": "web", "cache": ["enabled": false]])
            doc["routes"] = routes
            doc["proxy"] = ["cache": ["memoryBytes": 1_048_576, "maxObjectBytes": 65_536, "lockTimeoutMs": 250,
                                      "disk": ["path": "/var/cache/lodestar", "maxBytes": 10_485_760]]]
        }
        XCTAssertEqual(t.routes[0].cache, RouteCacheSettings(enabled: true, graceSeconds: 120), "an object turns the cache on")
        XCTAssertEqual(t.routes[1].cache.enabled, false)
        XCTAssertEqual(t.proxy.cache, CacheSettings(memoryBytes: 1_048_576, maxObjectBytes: 65_536, lockTimeoutMs: 250,
                                                    diskPath: "/var/cache/lodestar", diskBytes: 10_485_760))
    }

    func test_badCacheSettingsNameFieldAndReason() {
        let found = issues { doc in
            var routes = doc["routes"] as? [[String: Any]] ?? []
            routes[0]["cache"] = ["enabled": "yes", "graceSeconds": -1, "ttl": 5]
            doc["routes"] = routes
            doc["proxy"] = ["cache": ["memoryBytes": -5, "lockTimeoutMs": 3_600_000, "disk": ["maxBytes": 1]]]
        }
        let expected = [
            "t.json: routes[0].cache.ttl: unknown field (allowed: enabled, graceSeconds)",
            "t.json: routes[0].cache.graceSeconds: -1 is out of range 0...31536000",
            "t.json: proxy.cache.memoryBytes: -5 is out of range 0...1099511627776",
            "t.json: proxy.cache.lockTimeoutMs: 3600000 is out of range 0...600000",
            "t.json: proxy.cache.disk.path: missing required field",
        ]
        for line in expected {
            XCTAssertTrue(found.contains(line), "missing: \(line)\nall issues:\n\(found.joined(separator: "\n"))")
        }
        XCTAssertTrue(found.contains { $0.hasPrefix("t.json: routes[0].cache.enabled:") }, "\(found)")
    }

    func test_diskCachePathResolvesAgainstTheTopologyFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-topo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("t.json").path
        var doc = Self.document()
        doc["proxy"] = ["cache": ["disk": ["path": "cache"]]]
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try Topology.load(path: path).proxy.cache.diskPath, folder.appendingPathComponent("cache").path)
    }

    func test_gossipSectionAndMemberAddressesDecode() throws {
        let t = try decode { doc in
            var edges = doc["edges"] as? [[String: Any]] ?? []
            edges[0]["gossip"] = "127.0.1.1:7946"
            edges[0]["capacity"] = 20000
            edges[1]["gossip"] = "127.0.2.1:7946"
            doc["edges"] = edges
            var dns = doc["dns"] as? [String: Any] ?? [:]
            dns["gossip"] = "127.0.0.1:7945"
            doc["dns"] = dns
            doc["gossip"] = ["keyFile": "/etc/lodestar/gossip.key", "probeIntervalMs": 200, "overloadWatermark": 0.75,
                             "drainSeconds": 12]
        }
        XCTAssertEqual(t.gossip, GossipSettings(keyFile: "/etc/lodestar/gossip.key", probeIntervalMs: 200, overloadWatermark: 0.75,
                                                drainSeconds: 12))
        XCTAssertEqual(t.gossipMembers.map(\.id), ["e1", "e2", t.dns.nodeId])
        XCTAssertEqual(t.gossipMembers.map(\.isEdge), [true, true, false])
        XCTAssertEqual(t.edge("e1")?.capacity, 20000)
        XCTAssertEqual(t.drainSeconds, 12)
        let plain = try decode()
        XCTAssertNil(plain.gossip, "no gossip unless the section is there")
        XCTAssertEqual(plain.gossipMembers, [])
        XCTAssertEqual(plain.drainSeconds, Int(plain.services.map(\.ttlSeconds).max() ?? 30) + 5)
    }

    func test_badGossipSettingsNameFieldAndReason() {
        let withoutSection = issues { doc in
            var edges = doc["edges"] as? [[String: Any]] ?? []
            edges[0]["gossip"] = "127.0.1.1:7946"
            doc["edges"] = edges
        }
        XCTAssertTrue(withoutSection.contains("t.json: edges[0].gossip: gossip needs the top-level \"gossip\" section (its key)"),
                      "\(withoutSection)")
        let found = issues { doc in
            var edges = doc["edges"] as? [[String: Any]] ?? []
            edges[0]["gossip"] = "127.0.1.1:7946"
            edges[1]["gossip"] = "127.0.1.1:7946"
            doc["edges"] = edges
            var dns = doc["dns"] as? [String: Any] ?? [:]
            dns["gossip"] = "nowhere"
            doc["dns"] = dns
            doc["gossip"] = ["keyEnvironment": "lower case", "probeIntervalMs": 5, "overloadWatermark": 0, "extra": 1]
        }
        for line in [
            "t.json: edges[1].gossip: 127.0.1.1:7946 is also the gossip address of e1",
            "t.json: dns.gossip: \"nowhere\" is not ADDRESS:PORT or [ADDRESS]:PORT",
            "t.json: gossip.keyEnvironment: \"lower case\" is not an environment variable name (A-Z, 0-9, _)",
            "t.json: gossip.probeIntervalMs: 5 is out of range 50...10000",
            "t.json: gossip.extra: unknown field (allowed: drainSeconds, keyEnvironment, keyFile, overloadWatermark, probeIntervalMs)",
        ] {
            XCTAssertTrue(found.contains(line), "missing: \(line)\nall issues:\n\(found.joined(separator: "\n"))")
        }
        XCTAssertTrue(found.contains { $0.hasPrefix("t.json: gossip.overloadWatermark:") }, "\(found)")
        let badCapacity = issues { doc in
            var edges = doc["edges"] as? [[String: Any]] ?? []
            edges[1]["capacity"] = -1
            doc["edges"] = edges
        }
        XCTAssertTrue(badCapacity.contains("t.json: edges[1].capacity: -1 is out of range 0...100000000"), "\(badCapacity)")
    }
}
