import Foundation
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import XCTest

@testable import LodestarAdmin
@testable import LodestarProxy

/// The edge admin endpoint's answers without sockets: the token guard, purge parsing, drain/reload hooks, cache keys
/// from URLs.
final class AdminAnswerTests: XCTestCase {
    static let topologyJSON = """
    {
      "zone": {"name": "example.test", "soa": {"primary": "ns1.example.test", "contact": "hostmaster.example.test", "serial": 1},
               "nameservers": [{"name": "ns1.example.test", "addresses": ["127.0.0.1"]}]},
      "regions": [{"id": "r", "latitude": 0, "longitude": 0}],
      "edges": [{"id": "e1", "region": "r", "addresses": ["127.0.0.1"], "listen": ["127.0.0.1:8080"]}],
      "services": {"www": {"edges": ["e1"]}},
      "dns": {"nodeId": "d", "listen": ["127.0.0.1:5300"], "geoDatabase": "x.mmdb"},
      "origins": {"web": {"servers": ["127.0.0.1:9001"]}},
      "routes": [{"hosts": ["www.example.test"], "pathPrefix": "/", "pool": "web"}]
    }
    """
    private var servers: [EdgeServer] = []

    override func tearDown() async throws {
        for s in servers { await s.shutdown(grace: .zero) }
        servers = []
    }

    /// An edge that is built but never started (no socket), with a cache or none.
    func server(caching: Bool) throws -> EdgeServer {
        let t = try Topology.decode(Data(Self.topologyJSON.utf8), file: "t.json")
        let server = try EdgeServer(topology: t, edgeId: "e1", threads: 1, logger: Logger(label: "test"))
        servers.append(server)
        server.shared.cache = caching
            ? try EdgeCache(settings: CacheSettings(memoryBytes: 1 << 20), edgeId: "e1", logger: server.shared.logger) : nil
        return server
    }

    /// The answer to one request, through the guard of a listener at `listener` with `token`, sending `bearer`.
    func ask(_ method: HTTPMethod, _ uri: String, _ server: EdgeServer, hooks: AdminHooks = AdminHooks(),
             listener: String = "127.0.0.1:9101", token: String? = nil, bearer: String? = nil) -> (Int, String) {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        if let bearer { head.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        let guardian = AdminGuard(listener: ListenAddress(listener)!, token: token)
        if let refused = guardian.refusal(head, path: AdminHTTP.path(uri), allocator: ByteBufferAllocator()) {
            return (Int(refused.status.code), String(buffer: refused.body))
        }
        let r = EdgeAdmin.answer(head, server: server, hooks: hooks, allocator: ByteBufferAllocator())
        return (Int(r.status.code), String(buffer: r.body))
    }

    func test_purgeNeedsPOSTAndAURL() throws {
        let s = try server(caching: true)
        XCTAssertEqual(ask(.GET, "/cache/purge?url=http://www.example.test/a", s).0, 405)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s).0, 200)
        XCTAssertEqual(ask(.POST, "/cache/purge", s).0, 400)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", try server(caching: false)).0, 404,
                       "an edge whose routes do not cache has nothing to purge")
    }

    func test_offLoopbackEverythingButProbesNeedsTheBearerToken() throws {
        let s = try server(caching: true)
        let token = "0123456789abcdef0123"
        for uri in ["/status", "/metrics"] {
            XCTAssertEqual(ask(.GET, uri, s, listener: "192.0.2.10:9101", token: token).0, 401, uri)
            XCTAssertEqual(ask(.GET, uri, s, listener: "192.0.2.10:9101", token: token, bearer: "wrong-token-0123456").0, 401, uri)
            XCTAssertEqual(ask(.GET, uri, s, listener: "192.0.2.10:9101", token: token, bearer: token).0, 200, uri)
        }
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s, listener: "192.0.2.10:9101", token: token).0, 401)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s, listener: "192.0.2.10:9101", token: token,
                           bearer: token).0, 200)
        // Load balancers and probes call these without a token.
        XCTAssertEqual(ask(.GET, "/healthz", s, listener: "192.0.2.10:9101", token: token).0, 200)
        XCTAssertEqual(ask(.GET, "/readyz", s, listener: "192.0.2.10:9101", token: token).0, 200)
        // No token configured off loopback (the topology refuses that; the guard still fails closed).
        XCTAssertEqual(ask(.GET, "/status", s, listener: "192.0.2.10:9101").0, 401)
    }

    func test_onLoopbackReadsAreOpenAndChangesNeedTheTokenWhenOneIsSet() throws {
        let s = try server(caching: true)
        let token = "0123456789abcdef0123"
        XCTAssertEqual(ask(.GET, "/status", s, token: token).0, 200)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s, token: token).0, 401)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s, token: token, bearer: token).0, 200)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s).0, 200, "no token set: loopback is trusted")
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s, listener: "[::1]:9101", token: token).0, 401)
    }

    func test_drainAndReloadNeedTheirHooks() throws {
        let s = try server(caching: false)
        XCTAssertEqual(ask(.POST, "/drain", s).0, 501, "an edge without gossip cannot tell DNS about a drain")
        XCTAssertEqual(ask(.POST, "/reload", s).0, 501)
        XCTAssertEqual(ask(.GET, "/drain", s).0, 405)
        var hooks = AdminHooks()
        nonisolated(unsafe) var drained: [(Bool, String)] = []
        hooks.drain = { on, reason in
            drained.append((on, reason))
            return "{}"
        }
        hooks.ready = { drained.last?.0 != true }
        hooks.reload = { (false, "bad file") }
        XCTAssertEqual(ask(.GET, "/readyz", s, hooks: hooks).0, 200)
        XCTAssertEqual(ask(.POST, "/drain?reason=kernel%20upgrade", s, hooks: hooks).0, 200)
        XCTAssertEqual(drained.last?.0, true)
        XCTAssertEqual(drained.last?.1, "kernel upgrade")
        XCTAssertEqual(ask(.GET, "/readyz", s, hooks: hooks).0, 503, "a draining edge is not ready")
        XCTAssertEqual(ask(.POST, "/undrain", s, hooks: hooks).0, 200)
        XCTAssertEqual(drained.last?.0, false)
        XCTAssertEqual(ask(.POST, "/reload", s, hooks: hooks).0, 422)
    }

    func test_bearerComparison() {
        XCTAssertTrue(AdminGuard.constantTimeEqual("abc", "abc"))
        XCTAssertFalse(AdminGuard.constantTimeEqual("abc", "abd"))
        XCTAssertFalse(AdminGuard.constantTimeEqual("abc", "abcd"))
        XCTAssertFalse(AdminGuard.constantTimeEqual("", "a"))
    }

    func test_purgeKeysFromURLs() {
        XCTAssertEqual(EdgeCache.key(url: "http://WWW.Example.test:8080/a?b=1"), "www.example.test/a?b=1")
        XCTAssertEqual(EdgeCache.key(url: "https://www.example.test/"), "www.example.test/")
        XCTAssertEqual(EdgeCache.key(url: "www.example.test/x"), "www.example.test/x")
        XCTAssertEqual(EdgeCache.key(url: "[::1]:80/x"), "[::1]/x")
        XCTAssertNil(EdgeCache.key(url: "http://www.example.test"), "no path")
        XCTAssertNil(EdgeCache.key(url: "/only-a-path"))
        XCTAssertEqual(EdgeAdmin.jsonString("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"")
    }
}
