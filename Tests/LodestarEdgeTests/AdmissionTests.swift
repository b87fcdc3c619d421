import LodestarEdge
import LodestarTopology
import XCTest

/// The admission phase as a pure function: each rule with the status, counter kind and connection handling it gives,
/// and route selection by the route table (same answers as the linear scan it replaced, at any table size).
final class AdmissionTests: XCTestCase {
    typealias Fields = [(name: String, value: String)]

    private func admission(routes: [Route], limits: ProxyLimits = ProxyLimits(), rate: RequestRateLimitSettings? = nil,
                           maxTunnels: Int = 10) -> Admission {
        Admission(limits: limits, routes: RouteTable(routes.map { ($0.hosts, $0.pathPrefix) }),
                  rules: routes.map { Admission.RouteRules(deny: DenyMatcher($0.deny), upgrade: $0.upgrade) },
                  rateLimiter: rate.map { RequestRateLimiter(settings: $0) }, maxTunnels: maxTunnels)
    }

    private func request(_ method: String = "GET", _ target: String = "/", host: String? = "www.example.test",
                         _ extra: Fields = [], http10: Bool = false, http2: Bool = false, client: IPAddress? = nil,
                         now: UInt64 = 1_000_000_000, tunnels: Int = 0) -> AdmissionRequest {
        let fields: Fields = (host.map { [(name: "Host", value: $0)] } ?? []) + extra
        return AdmissionRequest(method: method, target: target, isHTTP10: http10, isHTTP2: http2, fields: fields,
                                fieldCount: fields.count, client: client, now: now, openTunnels: tunnels)
    }

    private let web = Route(hosts: ["*"], pool: "web")

    private func rejection(_ v: Admission.Verdict, file: StaticString = #filePath, line: UInt = #line) -> Rejection? {
        if case .reject(let r) = v { return r }
        XCTFail("admitted: \(v)", file: file, line: line)
        return nil
    }

    private func admitted(_ v: Admission.Verdict, file: StaticString = #filePath, line: UInt = #line) -> Admitted? {
        if case .proceed(let a) = v { return a }
        XCTFail("rejected: \(v)", file: file, line: line)
        return nil
    }

    func test_smugglingFramingIsRefusedFirstAndCloses_RFC9112_6_1() {
        let a = admission(routes: [web])
        let r = rejection(a.admit(request("POST", "/", [("Content-Length", "5"), ("Transfer-Encoding", "chunked")])))
        XCTAssertEqual(r?.status, 400)
        XCTAssertEqual(r?.close, true)
        XCTAssertEqual(r?.kind, .protocolError)
        XCTAssertTrue(r?.body.contains("framing") ?? false)
    }

    func test_limitsGive414And431() {
        let a = admission(routes: [web], limits: ProxyLimits(maxRequestLineBytes: 256, maxHeaderBytes: 1024, maxHeaderCount: 8))
        XCTAssertEqual(rejection(a.admit(request("GET", "/" + String(repeating: "a", count: 300))))?.status, 414)
        let many: Fields = (0..<9).map { (name: "X-\($0)", value: "v") }
        XCTAssertEqual(rejection(a.admit(request("GET", "/", many)))?.status, 431)
        XCTAssertEqual(rejection(a.admit(request("GET", "/", [("X-Big", String(repeating: "b", count: 1100))])))?.status, 431)
    }

    func test_exactlyOneHostOnHTTP11_RFC9112_3_2() {
        let a = admission(routes: [web])
        XCTAssertEqual(rejection(a.admit(request(host: nil)))?.status, 400)
        XCTAssertEqual(rejection(a.admit(request("GET", "/", [("Host", "other.test")])))?.status, 400, "two Hosts")
        XCTAssertNotNil(admitted(a.admit(request(host: nil, http10: true))), "HTTP/1.0 may omit Host")
    }

    func test_declaredBodyOverTheLimitIs413WithLingeringClose() {
        let a = admission(routes: [web], limits: ProxyLimits(maxBodyBytes: 100))
        let r = rejection(a.admit(request("POST", "/", [("Content-Length", "101")])))
        XCTAssertEqual(r?.status, 413)
        XCTAssertEqual(r?.linger, true)
        XCTAssertEqual(admitted(a.admit(request("POST", "/", [("Content-Length", "100")])))?.framing, .length(100))
    }

    func test_rateLimitGives429WithRetryAfterPerClient() {
        let a = admission(routes: [web], rate: RequestRateLimitSettings(enabled: true, requestsPerSecond: 1, burst: 2))
        let client = IPAddress("192.0.2.1")
        XCTAssertNotNil(admitted(a.admit(request(client: client))))
        XCTAssertNotNil(admitted(a.admit(request(client: client))))
        let r = rejection(a.admit(request(client: client)))
        XCTAssertEqual(r?.status, 429)
        XCTAssertEqual(r?.kind, .rateLimited)
        XCTAssertEqual(r?.retryAfter, 1)
        XCTAssertEqual(r?.close, false, "a bodiless request keeps its connection")
        XCTAssertNotNil(admitted(a.admit(request(client: IPAddress("192.0.2.2")))), "another client has its own bucket")
    }

    func test_noRouteIs404AndDenyRulesAre403() {
        let a = admission(routes: [Route(hosts: ["www.example.test"], pool: "web",
                                         deny: [DenyRule(methods: ["TRACE"]), DenyRule(path: "/admin/*")])])
        XCTAssertEqual(rejection(a.admit(request(host: "other.test")))?.status, 404)
        XCTAssertEqual(rejection(a.admit(request("TRACE")))?.kind, .denied)
        XCTAssertEqual(rejection(a.admit(request("GET", "/admin/x")))?.status, 403)
        XCTAssertEqual(admitted(a.admit(request("GET", "/admin")))?.route, 0)
    }

    func test_hostIsMatchedWithoutPortAndCase() {
        let a = admission(routes: [Route(hosts: ["www.example.test"], pool: "web")])
        XCTAssertEqual(admitted(a.admit(request(host: "WWW.Example.Test:8080")))?.host, "www.example.test")
        XCTAssertEqual(Admission.hostWithoutPort("[::1]:443"), "[::1]")
    }

    func test_expectContinueOnlyWithABody() {
        let a = admission(routes: [web])
        XCTAssertEqual(admitted(a.admit(request("POST", "/", [("Content-Length", "3"), ("Expect", "100-continue")])))?.expectContinue, true)
        XCTAssertEqual(admitted(a.admit(request("GET", "/", [("Expect", "100-continue")])))?.expectContinue, false)
    }

    func test_upgradesFollowTheRoute_RFC9110_7_8() {
        let ws: Fields = [("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket")]
        let open = admission(routes: [web])
        XCTAssertEqual(admitted(open.admit(request("GET", "/", ws)))?.upgrade?.protocols, ["websocket"])
        let closed = admission(routes: [Route(hosts: ["*"], pool: "web", upgrade: [])])
        XCTAssertEqual(rejection(closed.admit(request("GET", "/", ws)))?.status, 403)
        let h2c: Fields = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQAAP__")]
        let ignored = admitted(open.admit(request("GET", "/", h2c)))
        XCTAssertNil(ignored?.upgrade)
        XCTAssertEqual(ignored?.closeAfter, true, "Upgrade: h2c is answered as HTTP/1.1, then the connection closes")
        XCTAssertNil(admitted(open.admit(request("GET", "/", [("Upgrade", "websocket")])))?.upgrade, "no Connection: upgrade")
        XCTAssertEqual(rejection(open.admit(request("GET", "/", ws, tunnels: 10)))?.status, 503, "tunnel cap")
        XCTAssertNil(admitted(open.admit(request("GET", "/", ws, http2: true)))?.upgrade, "no Upgrade in HTTP/2")
    }

    func test_absoluteFormTargetIsSplit_RFC9112_3_2_2() {
        XCTAssertEqual(Admission.splitAbsoluteForm("http://a.test:81/p?q").map { [$0.authority, $0.target] }, ["a.test:81", "/p?q"])
        XCTAssertEqual(Admission.splitAbsoluteForm("HTTPS://a.test").map { [$0.authority, $0.target] }, ["a.test", "/"])
        XCTAssertNil(Admission.splitAbsoluteForm("/p"))
        XCTAssertNil(Admission.splitAbsoluteForm("http://user@a.test/"), "userinfo is refused")
    }

    func test_connectIsRefused() {
        XCTAssertEqual(rejection(admission(routes: [web]).admit(request("CONNECT", "a.test:443")))?.status, 405)
    }

    // MARK: Route table

    /// The linear scan the table replaced: among routes whose hosts match, the longest prefix, then the first.
    private func linear(_ routes: [(hosts: [String], pathPrefix: String)], host: String, path: String) -> Int? {
        var best: Int?
        for (i, r) in routes.enumerated() where path.hasPrefix(r.pathPrefix) {
            let hostOK = r.hosts.contains { p in
                p == "*" || p == host || (p.hasPrefix("*.") && host.count > p.count - 1 && host.hasSuffix(p.dropFirst()))
            }
            guard hostOK else { continue }
            if best == nil || r.pathPrefix.count > routes[best!].pathPrefix.count { best = i }
        }
        return best
    }

    func test_routeTableMatchesExactWildcardAndAny() {
        let routes: [(hosts: [String], pathPrefix: String)] = [
            (["www.example.test"], "/"), (["*.example.test"], "/api/"), (["www.example.test"], "/api/v2/"),
            (["*.b.example.test"], "/"), (["www.example.test", "*.example.test"], "/api/"), (["*"], "/"),
        ]
        let table = RouteTable(routes)
        let cases: [(String, String, Int?)] = [
            ("www.example.test", "/", 0), ("www.example.test", "/api/x", 1), ("www.example.test", "/api/v2/x", 2),
            ("a.example.test", "/api/", 1), ("example.test", "/api/", 5), ("x.b.example.test", "/", 3),
            ("b.example.test", "/", 5), ("other.test", "/zzz", 5),
        ]
        for (host, path, want) in cases {
            XCTAssertEqual(table.lookup(host: Substring(host), path: Substring(path)), want, "\(host)\(path)")
            XCTAssertEqual(want, linear(routes, host: host, path: path), "the linear scan agrees for \(host)\(path)")
        }
        XCTAssertNil(RouteTable([(["www.example.test"], "/")]).lookup(host: "other.test", path: "/"))
    }

    /// Random tables and requests: the table always picks what the linear scan picks.
    func test_routeTableAgreesWithTheLinearScan() {
        var rng = SystemRandomNumberGenerator()
        let labels = ["a", "b", "c", "example", "test"]
        func name() -> String { (0..<Int.random(in: 1...3, using: &rng)).map { _ in labels.randomElement(using: &rng)! }.joined(separator: ".") }
        let prefixes = ["/", "/a", "/a/", "/a/b", "/b", "/ab"]
        for _ in 0..<200 {
            let routes: [(hosts: [String], pathPrefix: String)] = (0..<Int.random(in: 1...12, using: &rng)).map { _ in
                let hosts = (0..<Int.random(in: 1...2, using: &rng)).map { _ -> String in
                    switch Int.random(in: 0..<5, using: &rng) {
                    case 0: return "*"
                    case 1, 2: return "*." + name()
                    default: return name()
                    }
                }
                return (hosts, prefixes.randomElement(using: &rng)!)
            }
            let table = RouteTable(routes)
            for _ in 0..<20 {
                let host = name(), path = prefixes.randomElement(using: &rng)! + "x"
                XCTAssertEqual(table.lookup(host: Substring(host), path: Substring(path)), linear(routes, host: host, path: path),
                               "\(routes) \(host)\(path)")
            }
        }
    }
}
