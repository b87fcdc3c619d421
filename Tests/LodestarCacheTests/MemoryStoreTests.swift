import Dispatch
import Foundation
import LodestarCache
import NIOCore
import LodestarTopology
import XCTest


/// A response with a body of `size` bytes and optional extra headers.
private func response(
    size: Int, headers: HTTPFields = [], vary: HTTPFields = [], time: Int64 = 1000
) -> CachedResponse {
    let buffer = ByteBuffer(repeating: 0x61, count: size)
    return CachedResponse(
        status: 200, headers: headers, body: size == 0 ? [] : [buffer], requestTime: time, responseTime: time,
        varyRequestHeaders: vary)
}

/// Tests for the in-memory LRU response store.
final class MemoryStoreTests: XCTestCase {
    /// The body text of a stored response.
    private func text(_ r: CachedResponse?) -> String? {
        guard let r else { return nil }
        var out = ""
        for var b in r.body { out += b.readString(length: b.readableBytes) ?? "" }
        return out
    }

    func testCostAndInfo() {
        let r = CachedResponse(
            status: 203, headers: [("Vary", "Accept")], body: [ByteBuffer(string: "abc"), ByteBuffer(string: "de")],
            requestTime: 5, responseTime: 7, varyRequestHeaders: [("Accept", "x")])
        XCTAssertEqual(r.bodyBytes, 5)
        XCTAssertEqual(r.cost, 5 + (4 + 6 + 4) + (6 + 1 + 4) + CachedResponse.entryOverhead)
        XCTAssertEqual(r.info.status, 203)
        XCTAssertEqual(r.info.requestTime, 5)
        XCTAssertEqual(r.info.responseTime, 7)
    }

    func testStoreLookupHitAndMissCounts() {
        let store = MemoryStore(capacityBytes: 10_000, maxObjectBytes: 5_000)
        XCTAssertNil(store.lookup(key: "GET a/x", requestHeaders: []))
        XCTAssertTrue(store.store(key: "GET a/x", response: response(size: 10)))
        XCTAssertEqual(store.lookup(key: "GET a/x", requestHeaders: [])?.bodyBytes, 10)
        XCTAssertNotNil(store.lookup(key: "GET a/x", requestHeaders: [("Accept", "*/*")]))
        XCTAssertNil(store.lookup(key: "GET a/y", requestHeaders: []))
        let s = store.stats
        XCTAssertEqual(s.hits, 2)
        XCTAssertEqual(s.misses, 2)
        XCTAssertEqual(s.stores, 1)
        XCTAssertEqual(s.entries, 1)
        XCTAssertEqual(s.bytes, response(size: 10).cost)
        XCTAssertEqual(s.capacityBytes, 10_000)
    }

    func testVaryVariantsKeptApart() {
        let store = MemoryStore(capacityBytes: 100_000, maxObjectBytes: 50_000)
        let vary: HTTPFields = [("Vary", "Accept-Encoding")]
        var gz = response(size: 3, headers: vary + [("Content-Encoding", "gzip")], vary: [("Accept-Encoding", "gzip")])
        gz.body = [ByteBuffer(string: "gzz")]
        var id = response(size: 5, headers: vary, vary: [("Accept-Encoding", "identity")])
        id.body = [ByteBuffer(string: "plain")]
        XCTAssertTrue(store.store(key: "k", response: gz))
        XCTAssertTrue(store.store(key: "k", response: id))
        XCTAssertEqual(store.stats.entries, 2)
        XCTAssertEqual(text(store.lookup(key: "k", requestHeaders: [("accept-encoding", "GZIP")])), "gzz")
        XCTAssertEqual(text(store.lookup(key: "k", requestHeaders: [("Accept-Encoding", "identity")])), "plain")
        XCTAssertNil(store.lookup(key: "k", requestHeaders: [("Accept-Encoding", "br")]))
        XCTAssertNil(store.lookup(key: "k", requestHeaders: []))
        XCTAssertEqual(store.stats.hits, 2)
        XCTAssertEqual(store.stats.misses, 2)
    }

    func testVaryStarRefused() {
        let store = MemoryStore(capacityBytes: 100_000, maxObjectBytes: 50_000)
        XCTAssertFalse(store.store(key: "k", response: response(size: 1, headers: [("Vary", "Accept, *")])))
        XCTAssertEqual(store.stats, MemoryStoreStats(capacityBytes: 100_000))
        XCTAssertNil(store.lookup(key: "k", requestHeaders: []))
    }

    func testReplacingVariantKeepsBytesExact() {
        let store = MemoryStore(capacityBytes: 100_000, maxObjectBytes: 50_000)
        let vary: HTTPFields = [("Vary", "Accept-Encoding")]
        let other = response(size: 7, headers: vary, vary: [("Accept-Encoding", "br")])
        XCTAssertTrue(store.store(key: "k", response: other))
        XCTAssertTrue(store.store(key: "k", response: response(size: 100, headers: vary, vary: [("Accept-Encoding", "gzip")])))
        let replacement = response(size: 40, headers: vary, vary: [("Accept-Encoding", "GZIP")], time: 2000)
        XCTAssertTrue(store.store(key: "k", response: replacement))
        let s = store.stats
        XCTAssertEqual(s.entries, 2)
        XCTAssertEqual(s.bytes, other.cost + replacement.cost)
        XCTAssertEqual(s.stores, 3)
        XCTAssertEqual(s.evictions, 0)
        XCTAssertEqual(store.lookup(key: "k", requestHeaders: [("Accept-Encoding", "gzip")])?.bodyBytes, 40)
    }

    func testNewerResponseWinsWhenSeveralMatch() {
        let store = MemoryStore(capacityBytes: 100_000, maxObjectBytes: 50_000)
        XCTAssertTrue(store.store(key: "k", response: response(size: 1, time: 10)))
        let newer = response(size: 2, headers: [("Vary", "Accept")], vary: [("Accept", "a")], time: 20)
        XCTAssertTrue(store.store(key: "k", response: newer))
        XCTAssertEqual(store.lookup(key: "k", requestHeaders: [("Accept", "a")])?.bodyBytes, 2)
        XCTAssertEqual(store.lookup(key: "k", requestHeaders: [("Accept", "b")])?.bodyBytes, 1)
    }

    func testLRUOrder() {
        let unit = response(size: 100).cost
        let store = MemoryStore(capacityBytes: unit * 3, maxObjectBytes: unit * 3)
        XCTAssertTrue(store.store(key: "A", response: response(size: 100)))
        XCTAssertTrue(store.store(key: "B", response: response(size: 100)))
        XCTAssertTrue(store.store(key: "C", response: response(size: 100)))
        XCTAssertNotNil(store.lookup(key: "A", requestHeaders: []))
        XCTAssertTrue(store.store(key: "D", response: response(size: 100)))
        XCTAssertNil(store.lookup(key: "B", requestHeaders: []))
        XCTAssertNotNil(store.lookup(key: "A", requestHeaders: []))
        XCTAssertTrue(store.store(key: "E", response: response(size: 100)))
        XCTAssertNil(store.lookup(key: "C", requestHeaders: []))
        XCTAssertNotNil(store.lookup(key: "A", requestHeaders: []))
        XCTAssertNotNil(store.lookup(key: "D", requestHeaders: []))
        XCTAssertNotNil(store.lookup(key: "E", requestHeaders: []))
        let s = store.stats
        XCTAssertEqual(s.evictions, 2)
        XCTAssertEqual(s.entries, 3)
        XCTAssertEqual(s.bytes, unit * 3)
    }

    func testCapacityNeverExceededUnderRandomInserts() {
        var rng = FastRandom(seed: 42)
        let capacity = 50_000
        let store = MemoryStore(capacityBytes: capacity, maxObjectBytes: 20_000)
        var expectedStores = 0
        for i in 0..<3_000 {
            let size = Int.random(in: 0..<25_000, using: &rng)
            let key = "k\(Int.random(in: 0..<200, using: &rng))"
            let vary: HTTPFields = Int.random(in: 0..<2, using: &rng) == 0 ? [] : [("Vary", "Accept-Encoding")]
            let r = response(size: size, headers: vary, vary: [("Accept-Encoding", ["gzip", "br", "identity"][Int.random(in: 0..<3, using: &rng)])])
            let stored = store.store(key: key, response: r)
            XCTAssertEqual(stored, r.cost <= 20_000, "insert \(i)")
            if stored { expectedStores += 1 }
            if Int.random(in: 0..<4, using: &rng) == 0 { _ = store.lookup(key: "k\(Int.random(in: 0..<200, using: &rng))", requestHeaders: []) }
            let s = store.stats
            XCTAssertLessThanOrEqual(s.bytes, capacity)
            XCTAssertGreaterThanOrEqual(s.entries, 0)
            if s.bytes > capacity { break }
        }
        XCTAssertEqual(store.stats.stores, expectedStores)
        XCTAssertGreaterThan(store.stats.evictions, 0)
        // Purging everything brings the accounting back to exactly zero.
        store.purge(prefix: "")
        XCTAssertEqual(store.stats.bytes, 0)
        XCTAssertEqual(store.stats.entries, 0)
    }

    func testObjectOverMaxNotStored() {
        let store = MemoryStore(capacityBytes: 10_000, maxObjectBytes: 1_000)
        XCTAssertFalse(store.store(key: "big", response: response(size: 1_000)))
        XCTAssertTrue(store.store(key: "ok", response: response(size: 500)))
        let small = MemoryStore(capacityBytes: 500, maxObjectBytes: 10_000)
        XCTAssertFalse(small.store(key: "cap", response: response(size: 400)))
        XCTAssertEqual(store.stats.entries, 1)
        XCTAssertEqual(store.stats.stores, 1)
        XCTAssertEqual(small.stats.entries, 0)
    }

    func testPurgeByKeyAndPrefix() {
        let store = MemoryStore(capacityBytes: 1_000_000, maxObjectBytes: 100_000)
        let vary: HTTPFields = [("Vary", "Accept-Encoding")]
        for enc in ["gzip", "br", "identity"] {
            store.store(key: "GET a.example/x", response: response(size: 10, headers: vary, vary: [("Accept-Encoding", enc)]))
        }
        store.store(key: "GET a.example/y", response: response(size: 10))
        store.store(key: "GET a.example/z", response: response(size: 10))
        store.store(key: "GET b.example/x", response: response(size: 10))
        XCTAssertEqual(store.stats.entries, 6)
        XCTAssertEqual(store.purge(key: "GET a.example/x"), 3)
        XCTAssertEqual(store.purge(key: "GET a.example/x"), 0)
        XCTAssertEqual(store.purge(prefix: "GET a.example/"), 2)
        XCTAssertEqual(store.purge(prefix: "GET c."), 0)
        let s = store.stats
        XCTAssertEqual(s.entries, 1)
        XCTAssertEqual(s.bytes, response(size: 10).cost)
        XCTAssertEqual(s.purges, 5)
        XCTAssertNotNil(store.lookup(key: "GET b.example/x", requestHeaders: []))
        XCTAssertNil(store.lookup(key: "GET a.example/y", requestHeaders: []))
    }

    func testUpdateRecomputesCostAndCanEvict() {
        let unit = response(size: 100).cost
        let store = MemoryStore(capacityBytes: unit * 3, maxObjectBytes: unit * 2)
        store.store(key: "A", response: response(size: 100))
        store.store(key: "B", response: response(size: 100))
        store.store(key: "C", response: response(size: 100))
        XCTAssertFalse(store.update(key: "missing", requestHeaders: []) { _ in })
        // A 304 merge adds a header: cost grows, and the LRU entry (A is being updated, so B) goes.
        let ok = store.update(key: "A", requestHeaders: []) { r in
            r.headers.append((name: "X-Pad", value: String(repeating: "p", count: 50)))
            r.responseTime = 2000
        }
        XCTAssertTrue(ok)
        var s = store.stats
        XCTAssertEqual(s.entries, 2)
        XCTAssertEqual(s.evictions, 1)
        XCTAssertEqual(s.bytes, unit * 2 + 50 + 5 + 4)
        XCTAssertEqual(store.lookup(key: "A", requestHeaders: [])?.responseTime, 2000)
        XCTAssertNil(store.lookup(key: "B", requestHeaders: []))
        // Growing past maxObjectBytes drops the entry.
        XCTAssertFalse(store.update(key: "C", requestHeaders: []) { r in
            r.body.append(ByteBuffer(repeating: 0, count: unit * 2))
        })
        s = store.stats
        XCTAssertEqual(s.entries, 1)
        XCTAssertEqual(s.bytes, unit + 50 + 5 + 4)
        XCTAssertNil(store.lookup(key: "C", requestHeaders: []))
    }

    func testConcurrentMixedOperations() {
        let store = MemoryStore(capacityBytes: 200_000, maxObjectBytes: 20_000)
        let deadline = Date().addingTimeInterval(0.5)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            var rng = FastRandom(seed: UInt64(t) &+ 1)
            while Date() < deadline {
                let key = "k\(Int.random(in: 0..<64, using: &rng))"
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<4:
                    let r = response(
                        size: Int.random(in: 0..<15_000, using: &rng), headers: [("Vary", "Accept-Encoding")],
                        vary: [("Accept-Encoding", Int.random(in: 0..<2, using: &rng) == 0 ? "gzip" : "br")])
                    store.store(key: key, response: r)
                case 4..<8:
                    _ = store.lookup(key: key, requestHeaders: [("Accept-Encoding", "gzip")])
                case 8:
                    _ = store.update(key: key, requestHeaders: [("Accept-Encoding", "br")]) { $0.responseTime += 1 }
                default:
                    if Int.random(in: 0..<4, using: &rng) == 0 { store.purge(prefix: "k1") } else { store.purge(key: key) }
                }
                let s = store.stats
                XCTAssertLessThanOrEqual(s.bytes, s.capacityBytes)
                XCTAssertGreaterThanOrEqual(s.entries, 0)
            }
        }
        let s = store.stats
        XCTAssertLessThanOrEqual(s.bytes, 200_000)
        XCTAssertGreaterThan(s.hits + s.misses, 0)
        XCTAssertGreaterThan(s.stores, 0)
        store.purge(prefix: "")
        XCTAssertEqual(store.stats.bytes, 0)
        XCTAssertEqual(store.stats.entries, 0)
    }
}
