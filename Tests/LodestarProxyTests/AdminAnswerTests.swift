import Foundation
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import XCTest

@testable import LodestarProxy

/// The admin endpoint's answers without sockets: purge parsing, its loopback-only guard, cache keys from URLs.
final class AdminAnswerTests: XCTestCase {
    func shared(caching: Bool) throws -> EdgeShared {
        let t = try Topology.decode(Data(ProxyRulesTests.topologyJSON.utf8), file: "t.json")
        let shared = EdgeShared(config: EdgeConfig(topology: t, edgeId: "e1"), logger: Logger(label: "test"))
        if caching { shared.cache = try EdgeCache(settings: CacheSettings(memoryBytes: 1 << 20), edgeId: "e1", logger: shared.logger) }
        return shared
    }

    func ask(_ method: HTTPMethod, _ uri: String, _ shared: EdgeShared, allowMutations: Bool = true) -> (Int, String) {
        let r = AdminServer.answer(HTTPRequestHead(version: .http1_1, method: method, uri: uri), shared: shared,
                                   allocator: ByteBufferAllocator(), allowMutations: allowMutations)
        return (Int(r.status.code), String(buffer: r.body))
    }

    func test_purgeIsRefusedOffLoopbackAndNeedsPOST() throws {
        let s = try shared(caching: true)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s, allowMutations: false).0, 403)
        XCTAssertEqual(ask(.DELETE, "/cache/purge?url=http://www.example.test/a", s, allowMutations: false).0, 403)
        XCTAssertEqual(ask(.GET, "/cache/purge?url=http://www.example.test/a", s).0, 405)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", s).0, 200)
        XCTAssertEqual(ask(.POST, "/cache/purge", s).0, 400)
        XCTAssertEqual(ask(.POST, "/cache/purge?url=http://www.example.test/a", try shared(caching: false)).0, 404,
                       "an edge whose routes do not cache has nothing to purge")
        // Reading stays allowed everywhere.
        XCTAssertEqual(ask(.GET, "/status", s, allowMutations: false).0, 200)
    }

    func test_purgeKeysFromURLs() {
        XCTAssertEqual(EdgeCache.key(url: "http://WWW.Example.test:8080/a?b=1"), "www.example.test/a?b=1")
        XCTAssertEqual(EdgeCache.key(url: "https://www.example.test/"), "www.example.test/")
        XCTAssertEqual(EdgeCache.key(url: "www.example.test/x"), "www.example.test/x")
        XCTAssertEqual(EdgeCache.key(url: "[::1]:80/x"), "[::1]/x")
        XCTAssertNil(EdgeCache.key(url: "http://www.example.test"), "no path")
        XCTAssertNil(EdgeCache.key(url: "/only-a-path"))
        XCTAssertEqual(AdminServer.jsonString("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"")
    }
}
