import Foundation
@testable import LodestarDNSServer
import LodestarDNS
import LodestarGeo
import LodestarMetrics
import LodestarSelection
import LodestarTopology
import Logging
import NIOCore
import Synchronization
import XCTest

/// The UDP worker without a socket: it answers through the fast path, the packet cache and the full path, and its
/// per-thread accounting adds up — queries and ECS counts exactly, answers per edge exactly, and the decision
/// table's country breakdown (sampled one in 16 under heavy load) standing for all of them.
final class UDPAnswererTests: XCTestCase {
    func worker() throws -> (UDPAnswerer, DNSMetrics, DNSServerStats, MetricsHub) {
        let topology = try Fixture.topology()
        let db = try FastPathTests.database()
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        let box = AuthorityBox(Authority(topology: topology, geo: db, health: StaticHealthView(), engine: engine))
        let stats = DNSServerStats()
        let hub = MetricsHub()
        let metrics = DNSMetrics(hub: hub, stats: stats)
        let answerer = UDPAnswerer(box: box, stats: stats, limiter: SharedRateLimiter(settings: RateLimitSettings()),
                                   cacheEntries: 1024, metrics: metrics, logger: Logger(label: "test"), queryLogSample: 0)
        return (answerer, metrics, stats, hub)
    }

    func ask(_ w: inout UDPAnswerer, _ packet: [UInt8], from client: String = "9.9.9.9") -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: UDPSocketLoop.slotSize)
        let n = packet.withUnsafeBytes { p in
            out.withUnsafeMutableBytes { o in w.answer(p, from: IPAddress(client)!, start: .now(), into: o) }
        }
        return n.map { Array(out.prefix($0)) }
    }

    /// A health change (an edge drained, say) shows in the very next batch's answers, on the socket loop's batch path
    /// and one datagram at a time alike: the snapshot is retaken when a batch begins, not after it.
    func test_aHealthChangeShowsInTheNextBatch() throws {
        let topology = try Fixture.topology()
        let db = try FastPathTests.database()
        let view = LiveHealthView()
        let box = AuthorityBox(Authority(topology: topology, geo: db, health: view,
                                         engine: try AnswerEngine.compile(database: db, topology: topology)))
        var w = UDPAnswerer(box: box, stats: DNSServerStats(), limiter: SharedRateLimiter(settings: RateLimitSettings()),
                            cacheEntries: 0, metrics: DNSMetrics(hub: MetricsHub(), stats: DNSServerStats()),
                            logger: Logger(label: "test"), queryLogSample: 0)
        let query = Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs("8.8.8.0/24")]))
        func batch() throws -> [String] {
            let context = w.beginBatch()
            var slot = query + [UInt8](repeating: 0, count: UDPSocketLoop.slotSize - query.count)
            let n = try XCTUnwrap(slot.withUnsafeMutableBytes { s -> Int? in
                let packet = UnsafeRawBufferPointer(rebasing: s[0..<query.count])
                let plan = w.prepare(packet, from: IPAddress("9.9.9.9")!, in: context)
                return w.answer(packet, from: IPAddress("9.9.9.9")!, start: .now(), into: s, prepared: plan, in: context)
            })
            w.endOfBatch(force: false, elapsed: .microseconds(10))
            return try DNSMessage(decoding: Array(slot.prefix(n))).answerAddresses
        }
        XCTAssertEqual(try batch(), ["127.0.1.1"])
        _ = view.update(["edge-us": .down, "edge-eu": .healthy, "edge-ap": .healthy])
        XCTAssertEqual(try batch(), ["127.0.2.1"], "the first batch after the change answers with it")
        _ = view.update(["edge-us": .healthy, "edge-eu": .healthy, "edge-ap": .healthy])
        XCTAssertEqual(try XCTUnwrap(ask(&w, query)).count, try XCTUnwrap(ask(&w, query)).count)
        XCTAssertEqual(try DNSMessage(decoding: try XCTUnwrap(ask(&w, query))).answerAddresses, ["127.0.1.1"],
                       "one datagram at a time sees it too")
    }

    /// Query counts per series stay exact when types and rcodes mix (more series than the per-loop cache holds, so
    /// series replace each other between and within batches), on the fast path, the full path and the packet cache.
    func test_mixedTypesAndRcodesAreCountedExactly() throws {
        var (w, _, _, hub) = try worker()
        let names = ["www.example.test", "mail.example.test", "example.test", "nothere.example.test", "v6only.example.test",
                     "example.org"]
        let types: [UInt16] = [RRType.a, RRType.aaaa, RRType.mx, RRType.ns, RRType.soa, RRType.txt, 257, 99, 100]
        var expected: [String: Int] = [:]
        var raw = Set<[UInt16]>()  // the cache's keys: types 99 and 100 are two, counted under one "other" label
        var generator = SystemRandomNumberGenerator()
        for i in 0..<3_000 {
            let name = names[Int.random(in: 0..<names.count, using: &generator)]
            let type = types[Int.random(in: 0..<types.count, using: &generator)]
            let q = Fixture.query(name, type, id: UInt16(truncatingIfNeeded: i), edns: i % 3 == 0 ? nil : (1232, 0, []))
            let reply = try XCTUnwrap(ask(&w, q), "\(name) \(type)")
            let rcode = UInt16(reply[3] & 0x0F)
            raw.insert([type, rcode])
            expected["qtype=\"\(DNSMetrics.typeName(type))\",rcode=\"\(DNSMetrics.rcodeName(rcode))\"", default: 0] += 1
            if Int.random(in: 0..<8, using: &generator) == 0 { w.endOfBatch(force: false, elapsed: .microseconds(50)) }
        }
        w.endOfBatch(force: true, elapsed: .microseconds(50))
        XCTAssertGreaterThan(raw.count, 16, "more series than the cache holds: \(expected.keys.sorted())")
        let lines = hub.exposition().split(separator: "\n").filter { $0.hasPrefix("lodestar_dns_queries_total{transport=\"udp\"") }
        for (series, count) in expected {
            XCTAssertTrue(lines.contains { $0.hasSuffix("\(series)} \(count)") }, "\(series) \(count): \(lines)")
        }
        XCTAssertEqual(lines.count, expected.count, "\(lines)")
    }

    func test_answersEveryPathAndCountsExactly() throws {
        var (w, metrics, stats, hub) = try worker()
        let subnets = ["81.2.69.0/24", "8.8.8.0/24", "133.1.0.0/16", "85.214.0.0/16", "177.1.2.0/24"]
        var sent = 0
        // Heavy load: 20,000 fast answers in quick batches of 32, from five subnets on three continents.
        for i in 0..<20_000 {
            let q = Fixture.query("www.example.test", id: UInt16(truncatingIfNeeded: i), edns: (1232, 0, [Fixture.ecs(subnets[i % 5])]))
            let reply = try XCTUnwrap(ask(&w, q))
            XCTAssertEqual(reply.prefix(2), q.prefix(2))
            sent += 1
            if i % 32 == 31 { w.endOfBatch(force: false, elapsed: .microseconds(50)) }
        }
        // A static name in lower case (the fast path's precompiled answer, no cache), the full path (the same name in
        // another spelling, twice: the second from the packet cache) and a datagram that is no query.
        let lower = try XCTUnwrap(ask(&w, Fixture.query("mail.example.test", edns: nil)))
        XCTAssertEqual(stats.cacheHits.load(ordering: .relaxed), 0)
        let mail = Fixture.query("Mail.Example.Test", edns: nil)
        let first = try XCTUnwrap(ask(&w, mail)), second = try XCTUnwrap(ask(&w, mail))
        XCTAssertEqual(first, second)
        XCTAssertEqual(try DNSMessage(decoding: first).answerAddresses, ["127.0.0.25"])
        XCTAssertEqual(try DNSMessage(decoding: lower).answerAddresses, ["127.0.0.25"])
        XCTAssertNil(ask(&w, [1, 2, 3]))
        w.endOfBatch(force: true, elapsed: .microseconds(50))

        XCTAssertEqual(stats.udpQueries.load(ordering: .relaxed), sent + 4)
        XCTAssertEqual(stats.cacheHits.load(ordering: .relaxed), 1)
        let byEdge = metrics.decisions.byEdge()
        XCTAssertEqual(byEdge.values.reduce(0, +), sent, "answers per edge are exact: \(byEdge)")
        let top = metrics.decisions.top(50)
        let sampled = top.reduce(0) { $0 + $1.1 }
        // The first 100 ms window is light (every answer located), then one in 64 stands for 64.
        XCTAssertEqual(Double(sampled), Double(sent), accuracy: Double(sent) * 0.05, "the country breakdown stands for every answer: \(top)")
        XCTAssertTrue(Set(top.map(\.0.country)).isSuperset(of: ["GB", "US", "JP", "DE", "BR"]), "\(top)")
        let text = hub.exposition()
        XCTAssertTrue(text.contains("lodestar_dns_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"NOERROR\"} \(sent + 3)"),
                      text.split(separator: "\n").filter { $0.contains("queries_total") }.joined(separator: "\n"))
        XCTAssertTrue(text.contains("lodestar_dns_client_subnet_total{ecs=\"present\"} \(sent)"))
        // Every answered query's time, each batch's 50 us standing for each query of it (the last batch's 3 with them).
        let answered = sent + 3
        XCTAssertTrue(text.contains("# TYPE lodestar_dns_response_duration_seconds histogram\n"), text)
        XCTAssertTrue(text.contains("lodestar_dns_response_duration_seconds_bucket{transport=\"udp\",le=\"0.000025\"} 0\n"), text)
        XCTAssertTrue(text.contains("lodestar_dns_response_duration_seconds_bucket{transport=\"udp\",le=\"0.00005\"} \(answered)\n"), text)
        XCTAssertTrue(text.contains("lodestar_dns_response_duration_seconds_bucket{transport=\"udp\",le=\"+Inf\"} \(answered)\n"), text)
        XCTAssertTrue(text.contains("lodestar_dns_response_duration_seconds_count{transport=\"udp\"} \(answered)\n"), text)
        XCTAssertTrue(text.contains("lodestar_dns_response_duration_seconds_sum{transport=\"udp\"} 1.00015\n"), text)
        XCTAssertTrue(text.contains("lodestar_dns_response_duration_seconds_count{transport=\"tcp\"} 0\n"), text)
    }

    /// The socket loop's passes over a batch (`beginBatch`, then `prepare` reads and prefetches every query, a second
    /// prefetch, then `answer`) give the bytes one datagram at a time gives; and a reload is honoured: a batch is
    /// answered wholly with the authority it began with (its plans name services by their place in that authority's
    /// table, so a reload between its passes must not reach them), and the next batch with the new one.
    func test_preparedAnswersMatchAndAReloadIsHonouredBatchByBatch() throws {
        let topology = try Fixture.topology()
        let db = try FastPathTests.database()
        let engine = try AnswerEngine.compile(database: db, topology: topology)
        let box = AuthorityBox(Authority(topology: topology, geo: db, health: StaticHealthView(), engine: engine))
        func worker() -> UDPAnswerer {
            UDPAnswerer(box: box, stats: DNSServerStats(), limiter: SharedRateLimiter(settings: RateLimitSettings()),
                        cacheEntries: 0, metrics: DNSMetrics(hub: MetricsHub(), stats: DNSServerStats()),
                        logger: Logger(label: "test"), queryLogSample: 0)
        }
        let queries: [[UInt8]] = ["81.2.69.0/24", "8.8.8.0/24", "133.1.0.0/16", "2a00:1450::/32"].map {
            Fixture.query("www.example.test", edns: (1232, 0, [Fixture.ecs($0)]))
        } + [Fixture.query("www.example.test", RRType.aaaa, edns: nil), Fixture.query("mail.example.test", edns: nil), [1, 2, 3]]
        let client = IPAddress("9.9.9.9")!
        /// One datagram at a time, or as the socket loop does, one batch of all (with a reload between its passes).
        func run(_ w: inout UDPAnswerer, batched: Bool, reloadBetween: Authority? = nil) -> [[UInt8]?] {
            var slots = queries.map { $0 + [UInt8](repeating: 0, count: UDPSocketLoop.slotSize - $0.count) }
            func packet(_ i: Int, _ s: UnsafeMutableRawBufferPointer) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: s[0..<queries[i].count])
            }
            guard batched else {
                return queries.indices.map { i in
                    slots[i].withUnsafeMutableBytes { s in w.answer(packet(i, s), from: client, start: .now(), into: s) }
                        .map { Array(slots[i].prefix($0)) }
                }
            }
            let context = w.beginBatch()
            let plans = queries.indices.map { i in slots[i].withUnsafeMutableBytes { w.prepare(packet(i, $0), from: client, in: context) } }
            for plan in plans { w.prefetchAgain(plan, in: context) }
            if let reloadBetween { box.replace(with: reloadBetween) }
            return queries.indices.map { i in
                slots[i].withUnsafeMutableBytes { s in
                    w.answer(packet(i, s), from: client, start: .now(), into: s, prepared: plans[i], in: context)
                }.map { Array(slots[i].prefix($0)) }
            }
        }
        var single = worker(), batches = worker()
        let expected = run(&single, batched: false)
        XCTAssertEqual(run(&batches, batched: true), expected)
        XCTAssertEqual(expected.compactMap { $0 }.count, queries.count - 1)  // all but the datagram that is no query
        // Between a batch's passes the zone is reloaded without `www` (renamed `web`; the other services stay): that
        // batch is answered as it began, `www` from `www`'s edges (not from whichever service took its place in the
        // new table); the next batch's queries for `www` are answered NXDOMAIN, as a fresh worker answers them.
        let renamed = try Topology.decode(Data(Fixture.topologyJSON.replacingOccurrences(of: "\"www\": {", with: "\"web\": {").utf8),
                                          file: "renamed.json")
        let reloaded = Authority(topology: renamed, geo: db, health: StaticHealthView(),
                                 engine: try AnswerEngine.compile(database: db, topology: renamed))
        XCTAssertEqual(run(&batches, batched: true, reloadBetween: reloaded), expected)
        let afterReload = run(&batches, batched: true)
        XCTAssertEqual(try DNSMessage(decoding: try XCTUnwrap(afterReload[0])).header.rcode, 3)
        var fresh = worker()
        XCTAssertEqual(afterReload, run(&fresh, batched: false))
    }

    /// The loop on a real loopback socket: a query is answered, a datagram longer than a slot is dropped and counted
    /// (not answered from its first 4,096 bytes), and the loop goes on answering; stop() ends the thread.
    func test_socketLoopAnswersDropsOversizeDatagramsAndStops() async throws {
        let (answerer, _, stats, _) = try worker()
        let loop = try UDPSocketLoop(host: "127.0.0.1", port: 0)
        loop.start(answerer: answerer, logger: Logger(label: "test"))
        let port = try XCTUnwrap(loop.local.port)
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var wait = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        let server = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        func send(_ bytes: [UInt8]) {
            _ = bytes.withUnsafeBytes { b in server.withSockAddr { sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t($1)) } }
        }
        func receive() -> [UInt8]? {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return n > 0 ? Array(buffer.prefix(n)) : nil
        }
        let query = Fixture.query("www.example.test", id: 0x0101, edns: (1232, 0, [Fixture.ecs("8.8.8.0/24")]))
        send(query)
        let first = try XCTUnwrap(receive(), "no answer from the loop")
        XCTAssertEqual(try DNSMessage(decoding: first).answerAddresses, ["127.0.1.1"])
        // The same query padded far past a slot: the kernel truncates it to 4,096 bytes and says so; it must not be
        // answered as if the first 4,096 bytes were the query.
        send(query + [UInt8](repeating: 0, count: 6_000))
        send(Fixture.query("www.example.test", id: 0x0202, edns: nil))
        let second = try XCTUnwrap(receive(), "the loop stopped answering after an oversize datagram")
        XCTAssertEqual(Array(second.prefix(2)), [0x02, 0x02], "the reply after the oversize datagram is to the next query")
        // The loop adds a batch's counts after sending it: wait for them briefly.
        for _ in 0..<100 where stats.udpQueries.load(ordering: .relaxed) < 3 { usleep(10_000) }
        XCTAssertEqual(stats.dropped.load(ordering: .relaxed), 1)
        XCTAssertEqual(stats.udpQueries.load(ordering: .relaxed), 3)
        let started = Date()
        await loop.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "stop() ends the thread within its idle wake")
    }
}

