import Foundation
import XCTest

/// The shared cache (RFC 9111) through `lodestar edge`, against the scripted origin's `/cache/` endpoint, which counts
/// the requests it answers per path and numbers its answers (`serial=K`), so a test can tell a stored body from a
/// new one.
final class EdgeCacheTests: EdgeTestCase {
    /// A caching route (grace off unless given).
    func cachingRoute(grace: Int = 0) -> [String: Any] {
        route(pool: "web", extra: ["cache": ["enabled": true, "graceSeconds": grace]])
    }

    /// One edge with a caching route in front of `origin`.
    func startCachingEdge(_ origin: EdgeOrigin, grace: Int = 0, cache: [String: Any] = [:],
                          poolExtra: [String: Any] = [:]) throws -> EdgeNode {
        var settings: [String: Any] = ["memoryBytes": 64 << 20]
        for (k, v) in cache { settings[k] = v }
        return try startEdge(pools: ["web": pool([origin], extra: poolExtra)], routes: [cachingRoute(grace: grace)],
                             proxy: ["cache": settings])
    }

    /// How many requests for paths starting with `prefix` the origin answered.
    func originCount(_ origin: EdgeOrigin, _ prefix: String) throws -> Int {
        try origin.counters().requests.filter { $0.hasPrefix("GET \(prefix)") || $0.hasPrefix("HEAD \(prefix)") }.count
    }

    /// The `serial=K` an answer of the origin's /cache/ endpoint carries.
    func serial(_ r: EdgeReply) -> Int? {
        guard let range = r.text.range(of: "serial=") else { return nil }
        return Int(r.text[range.upperBound...].prefix { $0.isNumber })
    }

    /// The edge's cache counters from /status.
    func cacheStatus(_ edge: EdgeNode) throws -> [String: Any] {
        try XCTUnwrap(try edge.status()["cache"] as? [String: Any], "no cache object in /status")
    }

    // MARK: Hits, misses, Age

    func test_rfc9111_4_freshHitMakesNoOriginRequest() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        let target = "/cache/fresh?cc=max-age=60&etag=v1&n=2048"
        let first = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(first.status, 200, "\(first)")
        XCTAssertEqual(first.header("X-Cache"), "MISS", "\(first)")
        var ages = [Int]()
        for _ in 0..<5 {
            let r = try EdgeHTTP.get(port: edge.port, target)
            XCTAssertEqual(r.status, 200, "\(r)")
            XCTAssertEqual(r.header("X-Cache"), "HIT", "\(r)")
            XCTAssertEqual(r.body, first.body, "a hit must carry the stored body")
            XCTAssertEqual(r.header("ETag"), "\"v1\"")
            XCTAssertEqual(r.header("Content-Length"), "2048")
            XCTAssertNil(r.header("Server"), "the origin's Server header stays hidden on hits too")
            ages.append(try XCTUnwrap(r.header("Age").flatMap { Int($0) }, "a hit carries Age (RFC 9111 §5.1)\n\(r)"))
        }
        XCTAssertEqual(try originCount(origin, "/cache/fresh"), 1, "five fresh hits must make no origin request")
        // Age grows with time in the cache (RFC 9111 §4.2.3).
        sleep(2)
        let later = try EdgeHTTP.get(port: edge.port, target)
        let age = try XCTUnwrap(later.header("Age").flatMap { Int($0) })
        XCTAssertGreaterThanOrEqual(age, 2, "\(later)")
        XCTAssertLessThanOrEqual(age, 4, "\(later)")
        // HEAD is answered from the stored GET response, without a body.
        let head = try EdgeHTTP.request(port: edge.port, "HEAD", target)
        XCTAssertEqual(head.header("X-Cache"), "HIT", "\(head)")
        XCTAssertEqual(head.header("Content-Length"), "2048", "\(head)")
        XCTAssertEqual(head.body.count, 0)
        XCTAssertEqual(try originCount(origin, "/cache/fresh"), 1)
        let stats = try cacheStatus(edge)
        XCTAssertEqual(stats["hits"] as? Int, 7, "\(stats)")
        XCTAssertEqual(stats["misses"] as? Int, 1, "\(stats)")
        print("EDGE-FIGURES: fresh hits: 1 miss then 7 hits, origin requests 1, ages \(ages) then \(age) after 2 s; "
              + "hit ratio \(stats["hitRatio"] ?? "-")")
    }

    func test_rfc9111_3_notStorableResponsesAreNotServedFromCache() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        // no-store, private, no explicit freshness on a non-heuristic status, a request with Authorization.
        let cases: [(String, [(String, String)])] = [
            ("/cache/ns?cc=no-store", []),
            ("/cache/pv?cc=private,max-age=60", []),
            ("/cache/st?status=201", []),
            ("/cache/au?cc=max-age=60", [("Authorization", "Basic dTpw")]),
        ]
        for (target, headers) in cases {
            let a = try EdgeHTTP.get(port: edge.port, target, headers: headers)
            let b = try EdgeHTTP.get(port: edge.port, target, headers: headers)
            XCTAssertEqual(b.header("X-Cache"), "MISS", "\(target)\n\(b)")
            XCTAssertEqual(serial(a).map { $0 + 1 }, serial(b), "\(target): the second answer must be new\n\(b)")
        }
        // The same URL with public and an Authorization request is stored (RFC 9111 §3.5).
        _ = try EdgeHTTP.get(port: edge.port, "/cache/pub?cc=public,max-age=60", headers: [("Authorization", "Basic dTpw")])
        let hit = try EdgeHTTP.get(port: edge.port, "/cache/pub?cc=public,max-age=60", headers: [("Authorization", "Basic dTpw")])
        XCTAssertEqual(hit.header("X-Cache"), "HIT", "\(hit)")
    }

    func test_rfc9111_5_2_1_requestDirectives() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        let target = "/cache/rd?cc=max-age=60&etag=r"
        _ = try EdgeHTTP.get(port: edge.port, target)
        // no-cache in the request: revalidated with the origin (RFC 9111 §5.2.1.4).
        let nc = try EdgeHTTP.get(port: edge.port, target, headers: [("Cache-Control", "no-cache")])
        XCTAssertEqual(nc.header("X-Cache"), "REVALIDATED", "\(nc)")
        // max-age=0 once the stored response is a second old: the same (§5.2.1.1).
        usleep(1_100_000)
        let ma = try EdgeHTTP.get(port: edge.port, target, headers: [("Cache-Control", "max-age=0")])
        XCTAssertEqual(ma.header("X-Cache"), "REVALIDATED", "\(ma)")
        // only-if-cached: a stored response is used, a missing one gives 504 (§5.2.1.7).
        let oic = try EdgeHTTP.get(port: edge.port, target, headers: [("Cache-Control", "only-if-cached")])
        XCTAssertEqual(oic.header("X-Cache"), "HIT", "\(oic)")
        let none = try EdgeHTTP.get(port: edge.port, "/cache/absent", headers: [("Cache-Control", "only-if-cached")])
        XCTAssertEqual(none.status, 504, "\(none)")
        XCTAssertEqual(try originCount(origin, "/cache/absent"), 0)
        XCTAssertEqual(try originCount(origin, "/cache/rd"), 3)
    }

    // MARK: Coalescing

    func test_hundredConcurrentMissesMakeOneOriginRequest() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        let target = "/cache/crowd?cc=max-age=60&ms=800&n=4096"
        let port = edge.port
        let replies = EdgeCollector<EdgeReply>()
        let failures = EdgeCollector<String>()
        let started = Date()
        XCTAssertTrue(edgeRunThreads(100, timeout: 30) { _ in
            do { replies.append(try EdgeHTTP.get(port: port, target)) } catch { failures.append("\(error)") }
        })
        let seconds = Date().timeIntervalSince(started)
        XCTAssertEqual(failures.all, [])
        let all = replies.all
        XCTAssertEqual(all.count, 100)
        XCTAssertEqual(all.filter { $0.status == 200 }.count, 100)
        XCTAssertEqual(Set(all.map { serial($0) ?? -1 }), [1], "every client must get the one origin answer")
        XCTAssertEqual(try originCount(origin, "/cache/crowd"), 1, "100 concurrent misses must make one origin request")
        let labels = Dictionary(grouping: all, by: { $0.header("X-Cache") ?? "-" }).mapValues(\.count)
        XCTAssertEqual(labels["MISS"], 1, "\(labels)")
        let stats = try cacheStatus(edge)
        print("EDGE-FIGURES: coalescing: 100 concurrent misses, origin requests 1, answers \(labels), "
              + "coalesced \(stats["coalesced"] ?? "-"), wall \(String(format: "%.2f", seconds)) s (origin takes 0.8 s)")

        // A non-storable answer releases the waiters to the origin at once: 20 concurrent requests, 20 origin
        // requests, in about one origin delay each rather than one after another.
        let t2 = Date()
        let more = EdgeCollector<Int>()
        XCTAssertTrue(edgeRunThreads(20, timeout: 30) { _ in
            more.append((try? EdgeHTTP.get(port: port, "/cache/private?cc=no-store&ms=400"))?.status ?? 0)
        })
        let s2 = Date().timeIntervalSince(t2)
        XCTAssertEqual(more.all.filter { $0 == 200 }.count, 20)
        XCTAssertEqual(try originCount(origin, "/cache/private"), 20)
        XCTAssertLessThan(s2, 4.0, "waiters of a non-storable answer must not be served one by one")
        print("EDGE-FIGURES: coalescing, non-storable: 20 concurrent, origin requests 20, wall \(String(format: "%.2f", s2)) s")
    }

    // MARK: Validation

    func test_rfc9111_4_3_revalidationWith304ServesTheStoredBody() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        // max-age=2: the cache's clock has whole seconds, so a freshened entry may already be 1 s old at once.
        let target = "/cache/val?cc=max-age=2&etag=e1&n=3000"
        let first = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(serial(first), 1)
        usleep(3_200_000)
        let second = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(second.status, 200, "\(second)")
        XCTAssertEqual(second.header("X-Cache"), "REVALIDATED", "\(second)")
        XCTAssertEqual(second.body, first.body, "the 304 must be answered with the stored body")
        XCTAssertEqual(try originCount(origin, "/cache/val"), 2, "one conditional request")
        // The 304 freshened the stored response (RFC 9111 §4.3.4): the next request is a hit.
        let third = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(third.header("X-Cache"), "HIT", "\(third)")
        XCTAssertEqual(try originCount(origin, "/cache/val"), 2)

        // A client's own conditional is answered from the cache (RFC 9111 §4.3.2), without asking the origin.
        let before = try originCount(origin, "/cache/val")
        let cond = try EdgeHTTP.get(port: edge.port, target, headers: [("If-None-Match", "\"e1\"")])
        XCTAssertEqual(cond.status, 304, "\(cond)")
        XCTAssertEqual(cond.header("X-Cache"), "HIT")
        XCTAssertEqual(cond.body.count, 0)
        let other = try EdgeHTTP.get(port: edge.port, target, headers: [("If-None-Match", "\"nope\"")])
        XCTAssertEqual(other.status, 200, "\(other)")
        XCTAssertEqual(try originCount(origin, "/cache/val"), before)
        // Last-Modified validation: If-Modified-Since goes to the origin, which answers 304.
        let lm = "/cache/lm?cc=max-age=1&lm=3600"
        _ = try EdgeHTTP.get(port: edge.port, lm)
        usleep(2_200_000)
        let lm2 = try EdgeHTTP.get(port: edge.port, lm)
        XCTAssertEqual(lm2.header("X-Cache"), "REVALIDATED", "\(lm2)")
        XCTAssertEqual(serial(lm2), 1, "\(lm2)")

        // On a miss, the client's conditional is not forwarded: the full answer is stored, the client gets its 304.
        let missCond = try EdgeHTTP.get(port: edge.port, "/cache/mc?cc=max-age=60&etag=m", headers: [("If-None-Match", "\"m\"")])
        XCTAssertEqual(missCond.status, 304, "\(missCond)")
        let full = try EdgeHTTP.get(port: edge.port, "/cache/mc?cc=max-age=60&etag=m")
        XCTAssertEqual(full.header("X-Cache"), "HIT", "\(full)")
        XCTAssertEqual(serial(full), 1)
    }

    /// The cache keeps the origin's bytes; each answer is compressed for its client as it leaves (a HIT too), and a
    /// client that asks for no coding gets the stored bytes with their length.
    func test_storedAnswersAreCompressedPerClient() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        let target = "/cache/text?cc=max-age=60&n=6000"
        let miss = try EdgeHTTP.get(port: edge.port, target, headers: [("Accept-Encoding", "gzip")])
        let hit = try EdgeHTTP.get(port: edge.port, target, headers: [("Accept-Encoding", "deflate")])
        let plain = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(miss.header("X-Cache"), "MISS", "\(miss)")
        XCTAssertEqual(hit.header("X-Cache"), "HIT", "\(hit)")
        XCTAssertEqual(plain.header("X-Cache"), "HIT", "\(plain)")
        XCTAssertEqual(miss.header("Content-Encoding"), "gzip", "\(miss.rawHead)")
        XCTAssertEqual(hit.header("Content-Encoding"), "deflate", "\(hit.rawHead)")
        XCTAssertNil(plain.header("Content-Encoding"), "\(plain.rawHead)")
        XCTAssertEqual(plain.header("Content-Length"), "6000", "the stored bytes, with their length")
        XCTAssertNil(hit.header("Content-Length"), "a compressed HIT goes chunked: \(hit.rawHead)")
        for r in [miss, hit, plain] { XCTAssertEqual(r.header("Vary"), "Accept-Encoding", "\(r.rawHead)") }
        XCTAssertLessThan(hit.body.count, 1000)
        XCTAssertEqual(try EdgeTools.inflate(miss.body), plain.body)
        XCTAssertEqual(try EdgeTools.inflate(hit.body), plain.body, "the HIT decodes to the stored bytes")
        XCTAssertEqual(try originCount(origin, "/cache/text"), 1)
    }

    func test_rfc9111_4_1_varyKeepsVariantsApart() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        let target = "/cache/vary?cc=max-age=60&vary=Accept-Encoding"
        var seen = [String: Int]()
        for encoding in ["gzip", "br", "identity"] {
            let r = try EdgeHTTP.get(port: edge.port, target, headers: [("Accept-Encoding", encoding)])
            XCTAssertEqual(r.header("X-Cache"), "MISS", "\(encoding)\n\(r)")
            XCTAssertTrue(r.text.contains("vary=\(encoding);"), "\(r)")
            seen[encoding] = serial(r)
        }
        for encoding in ["br", "gzip", "identity", "gzip"] {
            let r = try EdgeHTTP.get(port: edge.port, target, headers: [("Accept-Encoding", encoding)])
            XCTAssertEqual(r.header("X-Cache"), "HIT", "\(encoding)\n\(r)")
            XCTAssertEqual(serial(r), seen[encoding], "\(encoding) must get its own variant\n\(r)")
            XCTAssertTrue(r.text.contains("vary=\(encoding);"), "\(r)")
        }
        // A request without the field is a variant of its own.
        let bare = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(bare.header("X-Cache"), "MISS", "\(bare)")
        XCTAssertEqual(try originCount(origin, "/cache/vary"), 4)
        // Vary: * is never served from the cache (RFC 9111 §4.1).
        _ = try EdgeHTTP.get(port: edge.port, "/cache/star?cc=max-age=60&vary=*")
        let star = try EdgeHTTP.get(port: edge.port, "/cache/star?cc=max-age=60&vary=*")
        XCTAssertEqual(star.header("X-Cache"), "MISS", "\(star)")
    }

    // MARK: Stale

    func test_rfc5861_staleIfErrorAndGraceServeStaleWhenTheOriginIsDown() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin, grace: 0, poolExtra: ["passive": ["failures": 1]])
        let sie = "/cache/sie?cc=max-age=1,stale-if-error=60"
        let plain = "/cache/plain?cc=max-age=1"
        let must = "/cache/must?cc=max-age=1,must-revalidate,stale-if-error=60"
        let stored = try EdgeHTTP.get(port: edge.port, sie)
        _ = try EdgeHTTP.get(port: edge.port, plain)
        _ = try EdgeHTTP.get(port: edge.port, must)
        origin.kill()
        usleep(1_500_000)
        for _ in 0..<3 {  // connect refused first, then "no healthy origin" once ejected: both serve stale
            let r = try EdgeHTTP.get(port: edge.port, sie)
            XCTAssertEqual(r.status, 200, "\(r)")
            XCTAssertEqual(r.header("X-Cache"), "STALE", "\(r)")
            XCTAssertEqual(r.body, stored.body)
        }
        let p = try EdgeHTTP.get(port: edge.port, plain)
        XCTAssertGreaterThanOrEqual(p.status, 500, "without stale-if-error or grace a stale response is not served\n\(p)")
        let m = try EdgeHTTP.get(port: edge.port, must)
        XCTAssertGreaterThanOrEqual(m.status, 500, "must-revalidate forbids serving stale (RFC 9111 §4.2.4)\n\(m)")
        print("EDGE-FIGURES: stale-if-error: origin killed, 3/3 answers STALE 200 with the stored body; "
              + "no directive: \(p.status); must-revalidate: \(m.status)")
    }

    func test_routeGraceServesStaleOnOrigin5xxAndWhenDown() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin, grace: 30)
        let target = "/cache/grace?cc=max-age=1"
        let stored = try EdgeHTTP.get(port: edge.port, target)
        let noGrace = "/cache/nograce?cc=max-age=1,proxy-revalidate"
        _ = try EdgeHTTP.get(port: edge.port, noGrace)
        usleep(1_500_000)
        // The origin answers 500: the route's grace serves the stored response.
        _ = try EdgeHTTP.get(port: origin.port, "/cache-fail?on=1", host: "origin.test")
        let r = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(r.status, 200, "\(r)")
        XCTAssertEqual(r.header("X-Cache"), "STALE", "\(r)")
        XCTAssertEqual(r.body, stored.body)
        let forbidden = try EdgeHTTP.get(port: edge.port, noGrace)
        XCTAssertEqual(forbidden.status, 500, "grace never overrides proxy-revalidate\n\(forbidden)")
        // The origin is down: the same.
        origin.kill()
        let down = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(down.header("X-Cache"), "STALE", "\(down)")
        XCTAssertEqual(down.body, stored.body)
    }

    func test_rfc5861_staleWhileRevalidateRefreshesOnceInTheBackground() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        // max-age=3: the refreshed response (0.6 s in coming, Date at its start) must still be fresh when stored.
        let target = "/cache/swr?cc=max-age=3,stale-while-revalidate=30&ms=600"
        _ = try EdgeHTTP.get(port: edge.port, target)
        usleep(3_500_000)
        let replies = EdgeCollector<(EdgeReply, TimeInterval)>()
        let port = edge.port
        XCTAssertTrue(edgeRunThreads(10, timeout: 20) { _ in
            let t = Date()
            if let r = try? EdgeHTTP.get(port: port, target) { replies.append((r, Date().timeIntervalSince(t))) }
        })
        XCTAssertEqual(replies.all.count, 10)
        for (r, seconds) in replies.all {
            XCTAssertEqual(r.header("X-Cache"), "STALE", "\(r)")
            XCTAssertEqual(serial(r), 1)
            XCTAssertLessThan(seconds, 0.5, "a stale-while-revalidate answer must not wait for the origin (0.6 s)")
        }
        // The refresh takes the origin's 0.6 s; then the new response is stored and served fresh.
        var after: EdgeReply?
        let refreshed = eventually(timeout: 5) {
            after = try? EdgeHTTP.get(port: edge.port, target)
            return after?.header("X-Cache") == "HIT"
        }
        XCTAssertNotNil(refreshed, "the background refresh should store a fresh response\n\(String(describing: after))")
        XCTAssertEqual(after.flatMap(serial), 2, "the refreshed response is stored")
        XCTAssertEqual(try originCount(origin, "/cache/swr"), 2, "ten stale answers, one refresh")
    }

    // MARK: Storage

    func test_memoryBoundHeldWhileTenTimesCapacityIsRequested() throws {
        let origin = try startOrigin("o")
        let capacity = 4 << 20
        let objectSize = 32 << 10
        let edge = try startCachingEdge(origin, cache: ["memoryBytes": capacity])
        let pid = try XCTUnwrap(edge.pid)
        _ = try EdgeHTTP.get(port: edge.port, "/cache/warm?cc=max-age=600")
        let rssBefore = try XCTUnwrap(EdgeTools.rssKiB(pid: pid))
        let objects = 10 * capacity / objectSize  // 1,280 distinct objects, 40 MiB
        let maxSeen = EdgeCollector<Int>()
        let port = edge.port
        XCTAssertTrue(edgeRunThreads(8, timeout: 120) { t in
            for i in stride(from: t, to: objects, by: 8) {
                _ = try? EdgeHTTP.get(port: port, "/cache/obj\(i)?cc=max-age=600&n=\(objectSize)")
            }
        })
        for _ in 0..<3 {
            if let bytes = try cacheStatus(edge)["memory"].flatMap({ ($0 as? [String: Any])?["bytes"] as? Int }) { maxSeen.append(bytes) }
        }
        let stats = try cacheStatus(edge)
        let memory = try XCTUnwrap(stats["memory"] as? [String: Any])
        let bytes = try XCTUnwrap(memory["bytes"] as? Int)
        let evictions = try XCTUnwrap(memory["evictions"] as? Int)
        XCTAssertLessThanOrEqual(bytes, capacity, "\(memory)")
        XCTAssertGreaterThan(bytes, capacity / 2, "the cache should be full\n\(memory)")
        XCTAssertGreaterThan(evictions, objects / 2, "\(memory)")
        let rssAfter = try XCTUnwrap(EdgeTools.rssKiB(pid: pid))
        // The objects requested total 40 MiB; the store may hold 4 MiB. Allocator slack aside, RSS must stay far
        // below what keeping everything would cost.
        XCTAssertLessThan(rssAfter - rssBefore, 24 * 1024, "RSS grew \(rssAfter - rssBefore) KiB")
        // The oldest objects were evicted (LRU), the newest are still there.
        let oldest = try EdgeHTTP.get(port: edge.port, "/cache/obj0?cc=max-age=600&n=\(objectSize)")
        XCTAssertEqual(oldest.header("X-Cache"), "MISS")
        // (With 8 threads a lagging one may store 128 objects after another's last, so "newest" is one stored now.)
        _ = try EdgeHTTP.get(port: edge.port, "/cache/newest?cc=max-age=600&n=\(objectSize)")
        let newest = try EdgeHTTP.get(port: edge.port, "/cache/newest?cc=max-age=600&n=\(objectSize)")
        XCTAssertEqual(newest.header("X-Cache"), "HIT")
        print("EDGE-FIGURES: memory bound: \(objects) distinct 32 KiB objects (\((objects * objectSize) >> 20) MiB) through a "
              + "\(capacity >> 20) MiB cache: stored bytes \(bytes) ≤ \(capacity), entries \(memory["entries"] ?? "-"), "
              + "evictions \(evictions); edge RSS \(rssBefore / 1024) → \(rssAfter / 1024) MiB")
    }

    func test_largeObjectsStreamWhileStoredAndOversizeOnesPassThrough() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin, cache: ["maxObjectBytes": 1 << 20])
        let small = "/cache/big1?cc=max-age=60&n=900000"
        let a = try EdgeHTTP.get(port: edge.port, small)
        XCTAssertEqual(a.body.count, 900_000)
        let b = try EdgeHTTP.get(port: edge.port, small)
        XCTAssertEqual(b.header("X-Cache"), "HIT")
        XCTAssertEqual(b.body, a.body)
        let large = "/cache/big2?cc=max-age=60&n=3000000"
        for _ in 0..<2 {
            let r = try EdgeHTTP.get(port: edge.port, large)
            XCTAssertEqual(r.body.count, 3_000_000, "an object over the limit is passed through whole")
            XCTAssertEqual(r.header("X-Cache"), "MISS")
        }
        XCTAssertEqual(try originCount(origin, "/cache/big2"), 2, "an object over maxObjectBytes is not stored")
        XCTAssertGreaterThanOrEqual(try cacheStatus(edge)["tooLarge"] as? Int ?? 0, 2)
    }

    func test_largeHitsSentFromTheBodyFileAreByteIdenticalAndSurviveAPurgeMidTransfer() throws {
        let origin = try startOrigin("o")
        // Without gzip, hits of bodies of 32 KiB and more leave through sendfile from the body's memory file.
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [cachingRoute()],
                                 proxy: ["compression": ["enabled": false], "cache": ["memoryBytes": 64 << 20]])
        let target = "/cache/zero-copy?cc=max-age=60&n=300000&pattern=1"
        let first = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(first.body.count, 300_000)
        let header = first.body.prefix { $0 != UInt8(ascii: ";") }.count + 1  // "serial=K path=P vary=V;"
        let port = edge.port
        let bodies = EdgeCollector<Data>()
        // Concurrent hits, with the entry purged (its memory file released) while some are in flight; refills
        // differ from the first answer only in the serial number of the header line.
        let group = edgeStartThreads(8) { _ in
            for _ in 0..<20 { if let r = try? EdgeHTTP.get(port: port, target) { bodies.append(r.body) } }
        }
        for _ in 0..<5 {  // purges while hits are in flight (their memory files released under them)
            usleep(20_000)
            _ = try EdgeHTTP.request(port: edge.ports.admin, "POST", "/cache/purge?prefix=http://www.example.test/cache/zero-copy",
                                     host: "admin")
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(bodies.all.count, 160)
        let tail = first.body.suffix(from: first.body.startIndex + header)
        for body in bodies.all {
            XCTAssertEqual(body.count, 300_000)
            XCTAssertEqual(body.suffix(tail.count), tail, "every hit must carry the stored body byte for byte")
        }
        _ = try EdgeHTTP.get(port: edge.port, target)  // refills it if the last purge came after the last hit
        let stored = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(stored.header("X-Cache"), "HIT")
        let part = try EdgeHTTP.get(port: edge.port, target, headers: [("Range", "bytes=150000-150099")])
        XCTAssertEqual(part.status, 206, part.rawHead)
        XCTAssertEqual(part.header("Content-Range"), "bytes 150000-150099/300000")
        XCTAssertEqual(part.body, stored.body.subdata(in: 150_000..<150_100), "a range is read from the right offset of the file")
        XCTAssertTrue(edge.isRunning)
    }

    // MARK: Invalidation and purge

    func test_rfc9111_4_4_unsafeMethodsInvalidateAndThePurgeAPIRemoves() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        let target = "/cache/inv?cc=max-age=60"
        _ = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, target).header("X-Cache"), "HIT")
        let post = try EdgeHTTP.request(port: edge.port, "POST", target, body: Data("x".utf8))
        XCTAssertEqual(post.header("X-Cache"), "BYPASS", "\(post)")
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, target).header("X-Cache"), "MISS", "a POST with a 2xx invalidates")
        // Any method is forwarded as written (M-SEARCH keeps its hyphen), and a successful unsafe one invalidates too.
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, target).header("X-Cache"), "HIT")
        let search = try EdgeHTTP.request(port: edge.port, "M-SEARCH", target, body: Data("x".utf8))
        XCTAssertEqual(search.status, 200, "\(search)")
        XCTAssertEqual(try origin.counters().requests.last, "M-SEARCH \(target) HTTP/1.1", "the origin saw the method as sent")
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, target).header("X-Cache"), "MISS", "an M-SEARCH with a 2xx invalidates")

        // Purge by URL and by prefix, on the admin listener.
        for i in 0..<3 { _ = try EdgeHTTP.get(port: edge.port, "/cache/dir/f\(i)?cc=max-age=60") }
        let one = try EdgeHTTP.request(port: edge.ports.admin, "POST",
                                       "/cache/purge?url=http%3A%2F%2Fwww.example.test%2Fcache%2Fdir%2Ff0%3Fcc%3Dmax-age%3D60",
                                       host: "admin")
        XCTAssertEqual(one.status, 200, "\(one)")
        XCTAssertEqual(one.json?["purged"] as? Int, 1, "\(one)")
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, "/cache/dir/f0?cc=max-age=60").header("X-Cache"), "MISS")
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, "/cache/dir/f1?cc=max-age=60").header("X-Cache"), "HIT")
        let prefix = try EdgeHTTP.request(port: edge.ports.admin, "POST", "/cache/purge?prefix=http://www.example.test/cache/dir/",
                                          host: "admin")
        XCTAssertEqual(prefix.json?["purged"] as? Int, 3, "\(prefix)")
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, "/cache/dir/f2?cc=max-age=60").header("X-Cache"), "MISS")
        let bad = try EdgeHTTP.request(port: edge.ports.admin, "POST", "/cache/purge?what=1", host: "admin")
        XCTAssertEqual(bad.status, 400)
        let get = try EdgeHTTP.get(port: edge.ports.admin, "/cache/purge?url=x", host: "admin")
        XCTAssertEqual(get.status, 405, "purging takes POST")
    }

    func test_rfc9110_14_rangeRequestsAreAnsweredFromCompleteStoredResponses() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        let target = "/cache/range?cc=max-age=60&etag=r&n=1000"
        let whole = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(whole.body.count, 1000)
        let part = try EdgeHTTP.get(port: edge.port, target, headers: [("Range", "bytes=0-3")])
        XCTAssertEqual(part.status, 206, "\(part)")
        XCTAssertEqual(part.header("X-Cache"), "HIT")
        XCTAssertEqual(part.header("Content-Range"), "bytes 0-3/1000")
        XCTAssertEqual(part.body, whole.body.prefix(4))
        let suffix = try EdgeHTTP.get(port: edge.port, target, headers: [("Range", "bytes=-10")])
        XCTAssertEqual(suffix.header("Content-Range"), "bytes 990-999/1000")
        XCTAssertEqual(suffix.body, whole.body.suffix(10))
        let beyond = try EdgeHTTP.get(port: edge.port, target, headers: [("Range", "bytes=5000-")])
        XCTAssertEqual(beyond.status, 416, "\(beyond)")
        XCTAssertEqual(beyond.header("Content-Range"), "bytes */1000")
        let stale = try EdgeHTTP.get(port: edge.port, target, headers: [("Range", "bytes=0-3"), ("If-Range", "\"other\"")])
        XCTAssertEqual(stale.status, 200, "a failed If-Range gets the whole representation")
        XCTAssertEqual(stale.body.count, 1000)
        XCTAssertEqual(try originCount(origin, "/cache/range"), 1, "every range came from the stored response")
        // Nothing stored: the Range request goes to the origin as it is, and its answer is not stored.
        let miss = try EdgeHTTP.get(port: edge.port, "/cache/norange?cc=max-age=60", headers: [("Range", "bytes=0-3")])
        XCTAssertEqual(miss.header("X-Cache"), "BYPASS", "\(miss)")
        XCTAssertEqual(try EdgeHTTP.get(port: edge.port, "/cache/norange?cc=max-age=60").header("X-Cache"), "MISS")
    }

    // MARK: Disk tier

    func test_diskTierSurvivesARestartAndDropsCorruptEntries() throws {
        let origin = try startOrigin("o")
        let dir = workFolder.appendingPathComponent("cache-disk").path
        let edge = try startCachingEdge(origin, cache: ["disk": ["path": dir, "maxBytes": 64 << 20]])
        let targets = (0..<4).map { "/cache/disk\($0)?cc=max-age=600&n=5000" }
        var bodies = [Data]()
        for t in targets { bodies.append(try EdgeHTTP.get(port: edge.port, t).body) }
        let written = eventually(timeout: 5) {
            ((try? self.cacheStatus(edge))?["disk"] as? [String: Any])?["entries"] as? Int == targets.count
        }
        XCTAssertNotNil(written, "the disk tier should hold \(targets.count) entries: \(String(describing: try? cacheStatus(edge)))")
        edge.stop()

        // Corrupt one file: flip a byte in the middle.
        let files = try FileManager.default.subpathsOfDirectory(atPath: dir).map { dir + "/" + $0 }
            .filter { path in
                var isDir: ObjCBool = false
                return !(path as NSString).lastPathComponent.hasPrefix(".")
                    && FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
            }
        XCTAssertEqual(files.count, targets.count, "\(files)")
        let victim = try XCTUnwrap(files.first)
        var data = try Data(contentsOf: URL(fileURLWithPath: victim))
        data[data.count / 2] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: victim))
        // And a stray file of garbage.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: dir + "/e1/zz-stray"))

        try edge.start()
        let before = try originCount(origin, "/cache/disk")
        var labels = [String]()
        for (i, t) in targets.enumerated() {
            let r = try EdgeHTTP.get(port: edge.port, t)
            labels.append(r.header("X-Cache") ?? "-")
            XCTAssertEqual(r.status, 200)
            if r.header("X-Cache") == "HIT" { XCTAssertEqual(r.body, bodies[i], "a disk hit must carry the stored body") }
        }
        XCTAssertEqual(labels.filter { $0 == "HIT" }.count, targets.count - 1, "\(labels)")
        XCTAssertEqual(labels.filter { $0 == "MISS" }.count, 1, "the corrupt entry is dropped and fetched again: \(labels)")
        XCTAssertEqual(try originCount(origin, "/cache/disk") - before, 1)
        let disk = try XCTUnwrap(try cacheStatus(edge)["disk"] as? [String: Any])
        XCTAssertGreaterThanOrEqual(disk["corruptDropped"] as? Int ?? 0, 1, "\(disk)")
        XCTAssertTrue(edge.isRunning)
        print("EDGE-FIGURES: disk tier: 4 objects, restart, 1 file corrupted: \(labels), corruptDropped \(disk["corruptDropped"] ?? "-")")
    }

    // MARK: Interim responses

    func test_rfc9110_15_2_interimResponsesAreRelayedAndNeverStored() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        let c = try EdgeConnection(port: edge.port)
        try c.send(EdgeRequest.make("GET", "/interim?code=103"))
        let early = try c.readResponse()
        XCTAssertEqual(early.status, 103, "\(early)")
        XCTAssertEqual(early.header("Link"), "</style.css>; rel=preload")
        let final = try c.readResponse()
        XCTAssertEqual(final.status, 200, "\(final)")
        XCTAssertEqual(final.text, "final\n")
        // The stored response is the final one; a hit sends no interim response.
        let c2 = try EdgeConnection(port: edge.port)
        try c2.send(EdgeRequest.make("GET", "/interim?code=103"))
        let hit = try c2.readResponse()
        XCTAssertEqual(hit.status, 200, "\(hit)")
        XCTAssertEqual(hit.header("X-Cache"), "HIT")
        // HTTP/1.0 clients never get an interim response.
        let c3 = try EdgeConnection(port: edge.port)
        try c3.send(EdgeRequest.make("GET", "/interim?code=103&v=10", version: "HTTP/1.0"))
        XCTAssertEqual(try c3.readResponse().status, 200)
    }

    // MARK: Metrics

    func test_metricsPublishTheCacheCountersAndHitRatio() throws {
        let origin = try startOrigin("o")
        let edge = try startCachingEdge(origin)
        for _ in 0..<4 { _ = try EdgeHTTP.get(port: edge.port, "/cache/m?cc=max-age=60") }
        let r = try EdgeHTTP.get(port: edge.ports.admin, "/metrics", host: "admin")
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") ?? false, "\(r)")
        let lines = Set(r.text.split(separator: "\n").map(String.init))
        for expected in ["lodestar_edge_cache_requests_total{edge=\"e1\",result=\"hit\"} 3",
                         "lodestar_edge_cache_requests_total{edge=\"e1\",result=\"miss\"} 1",
                         "lodestar_edge_cache_hit_ratio{edge=\"e1\"} 0.75",
                         "lodestar_edge_cache_entries{edge=\"e1\",tier=\"memory\"} 1.0",
                         "lodestar_edge_requests_total{edge=\"e1\"} 4"] {
            XCTAssertTrue(lines.contains(expected), "missing \(expected) in\n\(r.text)")
        }
        XCTAssertEqual(try cacheStatus(edge)["hitRatio"] as? Double, 0.75)
        // promtool (Debian's prometheus package) checks the format when it is installed.
        if let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: promtool)
            p.arguments = ["check", "metrics"]
            let input = Pipe()
            let output = Pipe()
            p.standardInput = input
            p.standardOutput = output
            p.standardError = output
            try p.run()
            input.fileHandleForWriting.write(r.body)
            try input.fileHandleForWriting.close()
            p.waitUntilExit()
            let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertEqual(p.terminationStatus, 0, "promtool check metrics: \(said)")
        } else {
            print("promtool not installed: the metrics format was checked by the line assertions only")
        }
    }

    // MARK: Reload

    func test_reloadKeepsTheCacheUnlessItsSettingsChange() throws {
        let origin = try startOrigin("o")
        var topology: [String: Any] = [:]
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [cachingRoute()],
                                 proxy: ["cache": ["memoryBytes": 8 << 20]]) { topology = $0 }
        let pid = try XCTUnwrap(edge.pid)
        let target = "/cache/kept?cc=max-age=600"
        _ = try EdgeHTTP.get(port: edge.port, target)

        // Same cache settings, another response header rule: the stored entry survives.
        var same = topology
        same["routes"] = [route(pool: "web", extra: ["cache": ["enabled": true], "responseHeaders": ["set": ["X-Gen": "2"]]])]
        try JSONSerialization.data(withJSONObject: same).write(to: URL(fileURLWithPath: edge.topologyPath), options: .atomic)
        kill(pid, SIGHUP)
        XCTAssertNotNil(eventually(timeout: 5) { (try? EdgeHTTP.get(port: edge.port, "/echo"))?.header("X-Gen") == "2" })
        let kept = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(kept.header("X-Cache"), "HIT", "a reload with the same cache settings keeps the cache\n\(kept)")
        XCTAssertEqual(kept.header("X-Gen"), "2", "the new route's rules apply to hits")

        // Another memory bound: the cache starts empty.
        var changed = same
        var proxy = changed["proxy"] as? [String: Any] ?? [:]
        proxy["cache"] = ["memoryBytes": 4 << 20]
        changed["proxy"] = proxy
        try JSONSerialization.data(withJSONObject: changed).write(to: URL(fileURLWithPath: edge.topologyPath), options: .atomic)
        kill(pid, SIGHUP)
        XCTAssertNotNil(eventually(timeout: 5) { edge.log.contains("cache settings changed") })
        let fresh = try EdgeHTTP.get(port: edge.port, target)
        XCTAssertEqual(fresh.header("X-Cache"), "MISS", "\(fresh)")
        let capacity = (try cacheStatus(edge)["memory"] as? [String: Any])?["capacityBytes"] as? Int
        XCTAssertEqual(capacity, 4 << 20)
    }
}
