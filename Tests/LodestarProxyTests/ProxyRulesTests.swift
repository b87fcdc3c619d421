import Foundation
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import LodestarProxy

/// The edge's request-path rules without sockets: routing, header rewriting, redirects, SNI names, gzip choice.
final class ProxyRulesTests: XCTestCase {
    static let topologyJSON = """
    {
      "zone": {"name": "example.test", "soa": {"primary": "ns1.example.test", "contact": "hostmaster.example.test", "serial": 1},
               "nameservers": [{"name": "ns1.example.test", "addresses": ["127.0.0.1"]}]},
      "regions": [{"id": "r", "latitude": 0, "longitude": 0}],
      "edges": [{"id": "e1", "region": "r", "addresses": ["127.0.0.1"], "listen": ["127.0.0.1:8080"]}],
      "services": {"www": {"edges": ["e1"]}},
      "dns": {"nodeId": "d", "listen": ["127.0.0.1:5300"], "geoDatabase": "x.mmdb"},
      "origins": {"web": {"servers": ["127.0.0.1:9001"]}, "api": {"servers": ["127.0.0.1:9002"]},
                  "static": {"servers": ["127.0.0.1:9003"]}},
      "routes": [
        {"hosts": ["www.example.test"], "pathPrefix": "/", "pool": "web",
         "requestHeaders": {"set": {"X-Edge": "1"}, "remove": ["Cookie"]},
         "responseHeaders": {"set": {"X-Served-By": "edge"}, "remove": ["X-Powered-By"]}},
        {"hosts": ["www.example.test"], "pathPrefix": "/api/", "pool": "api", "exposeOriginServer": true},
        {"hosts": ["*.example.test"], "pathPrefix": "/", "pool": "static"},
        {"hosts": ["*"], "pathPrefix": "/static/", "pool": "static"}
      ]
    }
    """

    func config() throws -> EdgeConfig {
        let t = try Topology.decode(Data(Self.topologyJSON.utf8), file: "t.json")
        return try EdgeConfig(topology: t, edgeId: "e1")
    }

    func pool(_ c: EdgeConfig, _ host: String, _ path: String) -> String? {
        c.route(host: Substring(host), path: Substring(path)).map { c.pools[$0.poolIndex].pool.name }
    }

    func test_routeIsTheLongestPrefixAmongMatchingHosts() throws {
        let c = try config()
        XCTAssertEqual(pool(c, "www.example.test", "/"), "web")
        XCTAssertEqual(pool(c, "www.example.test", "/api/v1"), "api")
        XCTAssertEqual(pool(c, "www.example.test", "/apix"), "web", "a prefix is matched as written")
        XCTAssertEqual(pool(c, "img.example.test", "/a"), "static", "*.suffix matches a subdomain")
        XCTAssertNil(pool(c, "example.test", "/a"), "*.example.test does not match the apex")
        XCTAssertEqual(pool(c, "other.test", "/static/x"), "static", "* matches any host")
        XCTAssertNil(pool(c, "other.test", "/x"))
    }

    func test_upstreamRequestDropsHopByHopAndAddsForwardingFields() throws {
        let c = try config()
        let route = try XCTUnwrap(c.route(host: "www.example.test", path: "/"))
        var headers = HTTPHeaders()
        for (n, v) in [("Host", "www.example.test"), ("Connection", "keep-alive, X-Private"), ("X-Private", "1"),
                       ("Keep-Alive", "5"), ("TE", "trailers"), ("Upgrade", "h2c"), ("Proxy-Connection", "x"),
                       ("Expect", "100-continue"), ("X-Forwarded-For", "203.0.113.1"), ("Via", "1.0 upstream-proxy"),
                       ("X-Request-ID", "client-id"), ("Cookie", "secret"), ("Transfer-Encoding", "chunked"),
                       ("Accept", "*/*")] {
            headers.add(name: n, value: v)
        }
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/p", headers: headers)
        let up = HeaderRewriter.upstreamRequest(head, route: route, config: c, client: "198.51.100.7", scheme: "https",
                                                requestId: "rid-1", framing: .chunked)
        for gone in ["Connection", "X-Private", "Keep-Alive", "TE", "Upgrade", "Proxy-Connection", "Expect", "Cookie"] {
            XCTAssertFalse(up.headers.contains(name: gone), "\(gone) must not reach the origin")
        }
        XCTAssertEqual(up.headers["X-Forwarded-For"], ["203.0.113.1, 198.51.100.7"])
        XCTAssertEqual(up.headers["X-Forwarded-Proto"], ["https"])
        XCTAssertEqual(up.headers["X-Forwarded-Host"], ["www.example.test"])
        XCTAssertEqual(up.headers["Via"], ["1.0 upstream-proxy, 1.1 e1"])
        XCTAssertEqual(up.headers["X-Request-ID"], ["rid-1"], "the edge's id replaces the client's")
        XCTAssertEqual(up.headers["Transfer-Encoding"], ["chunked"], "framing is the edge's own")
        XCTAssertEqual(up.headers["X-Edge"], ["1"])
        XCTAssertEqual(up.headers["Accept"], ["*/*"])
        XCTAssertEqual(up.version, .http1_1)

        let empty = HTTPRequestHead(version: .http1_0, method: .POST, uri: "/p", headers: ["Host": "www.example.test"])
        let framed = HeaderRewriter.upstreamRequest(empty, route: route, config: c, client: "::1", scheme: "http",
                                                    requestId: "rid-2", framing: .none)
        XCTAssertEqual(framed.headers["Content-Length"], ["0"], "a bodiless POST says so")
        XCTAssertEqual(framed.version, .http1_1, "origins are spoken to in HTTP/1.1")
    }

    func test_knownHeadersAreToldApartInAnyCase() {
        // RFC 9110 §7.6.1's connection fields, with the de-facto Keep-Alive and Proxy-Connection.
        let hopByHop = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                        "proxy-authorization", "proxy-authenticate"]
        for name in hopByHop {
            XCTAssertTrue(KnownHeader(name).isHopByHop, name)
            XCTAssertEqual(KnownHeader(name), name == "te" ? .te : .hopByHop, name)
            XCTAssertEqual(KnownHeader(name.uppercased()), name == "te" ? .te : .hopByHop, name.uppercased())
        }
        let named: [(String, KnownHeader)] = [
            ("Expect", .expect), ("Content-Length", .contentLength), ("X-Forwarded-For", .xForwardedFor),
            ("x-forwarded-PROTO", .xForwardedProto), ("X-Forwarded-Host", .xForwardedHost), ("VIA", .via), ("Host", .host),
            ("Server", .server), ("Location", .location), ("Content-Location", .contentLocation),
        ]
        for (name, kind) in named { XCTAssertEqual(KnownHeader(name), kind, name) }
        // Same lengths as known names, other letters; and names a byte longer or shorter.
        for name in ["tf", "vie", "hosts", "hos", "expecT1", "servel", "trailez", "locatioN_", "connectioN", "keep_alive",
                     "content-lengtx", "x-forwarded-fox", "proxy-connectiom", "transfer-encodinf", "cookie", "", "ü"] {
            XCTAssertEqual(KnownHeader(name), name == "connectioN" ? .hopByHop : .other, name)
        }
    }

    func test_clientResponseHidesTheOrigin() throws {
        let c = try config()
        let web = try XCTUnwrap(c.route(host: "www.example.test", path: "/"))
        let api = try XCTUnwrap(c.route(host: "www.example.test", path: "/api/x"))
        var headers = HTTPHeaders()
        for (n, v) in [("Server", "secret/1.0"), ("Connection", "X-Secret"), ("X-Secret", "1"), ("X-Powered-By", "php"),
                       ("Via", "1.1 origin-cache"), ("Transfer-Encoding", "chunked"),
                       ("Location", "http://127.0.0.1:9001/next?a=1"), ("Content-Type", "text/plain")] {
            headers.add(name: n, value: v)
        }
        let head = HTTPResponseHead(version: .http1_1, status: .found, headers: headers)
        let out = HeaderRewriter.clientResponse(head, route: web, config: c, requestId: "rid", clientVersion: .http1_1,
                                                keepAlive: false, origin: "127.0.0.1:9001", publicBase: "https://www.example.test")
        for gone in ["Server", "X-Secret", "X-Powered-By", "Transfer-Encoding"] {
            XCTAssertFalse(out.headers.contains(name: gone), "\(gone) must not reach the client")
        }
        XCTAssertEqual(out.headers["Location"], ["https://www.example.test/next?a=1"])
        XCTAssertEqual(out.headers["Via"], ["1.1 origin-cache, 1.1 e1"])
        XCTAssertEqual(out.headers["Connection"], ["close"])
        XCTAssertEqual(out.headers["X-Served-By"], ["edge"])
        XCTAssertEqual(out.headers["X-Request-ID"], ["rid"])

        let exposed = HeaderRewriter.clientResponse(head, route: api, config: c, requestId: "rid", clientVersion: .http1_0,
                                                    keepAlive: true)
        XCTAssertEqual(exposed.headers["Server"], ["secret/1.0"], "exposeOriginServer passes Server")
        XCTAssertEqual(exposed.headers["Connection"], ["keep-alive"], "an HTTP/1.0 client is told the connection stays")
        XCTAssertEqual(exposed.version, .http1_0)
    }

    func test_onlyRedirectsToTheOriginItselfAreRewritten() {
        let base = "http://www.example.test:8080"
        XCTAssertEqual(HeaderRewriter.rewriteOriginURL("http://127.0.0.1:9001/a", origin: "127.0.0.1:9001", publicBase: base),
                       base + "/a")
        XCTAssertEqual(HeaderRewriter.rewriteOriginURL("HTTP://127.0.0.1:9001", origin: "127.0.0.1:9001", publicBase: base), base)
        XCTAssertEqual(HeaderRewriter.rewriteOriginURL("http://10.0.0.5/x", origin: "10.0.0.5:80", publicBase: base), base + "/x",
                       "the scheme's default port may be left out")
        XCTAssertEqual(HeaderRewriter.rewriteOriginURL("https://[::1]:9443/x", origin: "[::1]:9443", publicBase: base), base + "/x")
        XCTAssertNil(HeaderRewriter.rewriteOriginURL("http://127.0.0.1:9002/a", origin: "127.0.0.1:9001", publicBase: base))
        XCTAssertNil(HeaderRewriter.rewriteOriginURL("http://elsewhere.example/a", origin: "127.0.0.1:9001", publicBase: base))
        XCTAssertNil(HeaderRewriter.rewriteOriginURL("/relative", origin: "127.0.0.1:9001", publicBase: base))
    }

    func test_targetsHostsAndNames() {
        XCTAssertEqual(Admission.splitAbsoluteForm("http://WWW.example.test:8080/a?b").map { [$0.0, $0.1] },
                       ["WWW.example.test:8080", "/a?b"])
        XCTAssertEqual(Admission.splitAbsoluteForm("https://h?q").map { [$0.0, $0.1] }, ["h", "/?q"])
        XCTAssertNil(Admission.splitAbsoluteForm("/plain"))
        XCTAssertNil(Admission.splitAbsoluteForm("http://user@h/"), "userinfo is refused")
        XCTAssertEqual(Admission.hostWithoutPort("WWW.Example.Test:8080"), "www.example.test")
        XCTAssertEqual(Admission.hostWithoutPort("[::1]:8080"), "[::1]")
        XCTAssertEqual(Admission.hostWithoutPort("plain"), "plain")
        XCTAssertEqual(Admission.hostWithoutPort("Plain"), "plain")
        XCTAssertEqual(Admission.hostWithoutPort("a.test:"), "a.test")
        XCTAssertEqual(Admission.hostWithoutPort("[::1]"), "[::1]")
        XCTAssertEqual(Admission.hostWithoutPort("[FE80::1]:443"), "[fe80::1]")
        XCTAssertEqual(Admission.hostWithoutPort("A-Very-Long-Host-Name.Example.Test"), "a-very-long-host-name.example.test")
        XCTAssertEqual(Admission.hostWithoutPort(""), "")
        XCTAssertTrue(EdgeServer.serverName("a.b.example.test", matchesAny: ["*.b.example.test"]))
        XCTAssertFalse(EdgeServer.serverName("x.a.b.example.test", matchesAny: ["*.b.example.test"]), "one label only")
        XCTAssertFalse(EdgeServer.serverName("b.example.test", matchesAny: ["*.b.example.test"]))
        XCTAssertTrue(HeaderRewriter.isAcceptableRequestId("req-1.a_b:c"))
        XCTAssertFalse(HeaderRewriter.isAcceptableRequestId("has space"))
        XCTAssertFalse(HeaderRewriter.isAcceptableRequestId(String(repeating: "a", count: 129)))
        XCTAssertFalse(HeaderRewriter.isAcceptableRequestId(""))
    }

    /// The one compression rule (the full path and the lanes): nothing, `Vary` alone, or compress.
    /// Generated request ids: the edge's random prefix, "-", a counter in lower-case hex, one more each time.
    func test_requestIdsArePrefixDashCounter() throws {
        let t = try Topology.decode(Data(Self.topologyJSON.utf8), file: "t.json")
        let shared = EdgeShared(config: try EdgeConfig(topology: t, edgeId: "e1"), logger: Logger(label: "test"))
        var counters: [UInt64] = []
        var prefixes: Set<Substring> = []
        for _ in 0..<40 {
            let id = shared.makeRequestId()
            let parts = id.split(separator: "-")
            XCTAssertEqual(parts.count, 2, id)
            let hex: (UInt8) -> Bool = { c in (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || c == 45 }
            XCTAssertTrue(id.utf8.allSatisfy(hex), id)
            guard let prefix = parts.first, let counter = parts.last.flatMap({ UInt64($0, radix: 16) }) else { continue }
            prefixes.insert(prefix)
            counters.append(counter)
        }
        XCTAssertEqual(prefixes.count, 1)
        XCTAssertEqual(counters, Array(1...40), "counts from 1, through 0x10 and 0x20 (more digits)")
    }

    /// The common status lines written whole are the ones the general path writes.
    func test_commonStatusLinesAreTheGeneralOnes() {
        for status in [200, 204, 206, 301, 302, 304, 404] {
            let line = WireHead.commonStatusLine(status).map { "\($0)" }
            XCTAssertEqual(line, "HTTP/1.1 \(status) \(HTTPResponseStatus(statusCode: status).reasonPhrase)\r\n")
        }
        XCTAssertNil(WireHead.commonStatusLine(418))
        var head = WireHead(allocator: ByteBufferAllocator(), capacity: 64)
        head.statusLine(418)
        XCTAssertEqual(String(buffer: head.buffer), "HTTP/1.1 418 I'm a teapot\r\n")
    }

    /// A loop's spare head buffer: its storage is written into again once nothing else holds it, never while
    /// something does (a write still waiting in the channel keeps its bytes).
    func test_theSpareHeadBufferIsReusedOnlyWhenFree() throws {
        let t = try Topology.decode(Data(Self.topologyJSON.utf8), file: "t.json")
        let state = LoopState(config: try EdgeConfig(topology: t, edgeId: "e1"), eventLoop: EmbeddedEventLoop(), cache: nil)
        func address(_ b: ByteBuffer) -> UInt { b.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) } }
        var first = WireHead(loop: state, capacity: 100)
        first.statusLine(200)
        state.keep(head: first.buffer)
        let firstAddress = address(first.buffer)
        first = WireHead(allocator: ByteBufferAllocator(), capacity: 1)  // the "channel" is done with it
        var second = WireHead(loop: state, capacity: 100)
        XCTAssertEqual(address(second.buffer), firstAddress, "the same storage, written into again")
        XCTAssertEqual(second.buffer.readableBytes, 0)
        second.statusLine(404)
        let inFlight = second.buffer  // a write not done yet
        state.keep(head: second.buffer)
        var third = WireHead(loop: state, capacity: 100)
        third.statusLine(304)
        XCTAssertNotEqual(address(third.buffer), address(inFlight))
        XCTAssertEqual(String(buffer: inFlight), "HTTP/1.1 404 Not Found\r\n", "the waiting write keeps its bytes")
        state.keep(head: ByteBufferAllocator().buffer(capacity: LoopState.spareHeadLimit + 1))
        XCTAssertLessThanOrEqual(WireHead(loop: state, capacity: 10).buffer.capacity, LoopState.spareHeadLimit,
                                 "a large buffer is not kept")
    }

    func test_gzipOnlyWhatIsWorthIt() {
        let settings = CompressionSettings(enabled: true, minBytes: 1024)
        func decide(_ type: String?, length: Int64? = nil, encoded: Bool = false, noTransform: Bool = false,
                    status: Int = 200, accepts: Bool = true) -> CompressionDecision {
            EdgeServer.compression(status: status, CompressionFacts(contentType: type, encoded: encoded, length: length,
                                                                    noTransform: noTransform),
                                   accepts: accepts, settings: settings)
        }
        XCTAssertEqual(decide("text/html; charset=utf-8", length: 5000), .compress)
        XCTAssertEqual(decide("text/html"), .compress, "an unsized answer")
        XCTAssertEqual(decide("Application/JSON"), .compress, "media types compare without case")
        XCTAssertEqual(decide("text/html", length: 100), .varyOnly, "too small: not compressed, but it could be")
        XCTAssertEqual(decide("text/html", noTransform: true), .varyOnly)
        XCTAssertEqual(decide("text/html", length: 5000, accepts: false), .varyOnly, "the client takes no coding")
        XCTAssertEqual(decide("image/png", length: 5000), .none, "not compressible")
        XCTAssertEqual(decide(nil, length: 5000), .none, "no type")
        XCTAssertEqual(decide("text/html", encoded: true), .none, "already encoded")
        for status in [101, 204, 206, 304] { XCTAssertEqual(decide("text/html", status: status), .none, "\(status)") }
        XCTAssertTrue(EdgeServer.variesOnEncoding(["Origin", "accept-encoding"]))
        XCTAssertTrue(EdgeServer.variesOnEncoding(["*"]))
        XCTAssertFalse(EdgeServer.variesOnEncoding(["Origin"]))
    }
}
