import Dispatch
@testable import LodestarDNSServer
import LodestarDNS
import LodestarTopology
import Synchronization
import XCTest

/// The rate limiter the UDP threads share: one set of buckets in shards, however many threads ask at once.
final class SharedRateLimiterTests: XCTestCase {
    let settings = RateLimitSettings(enabled: true, responsesPerSecond: 5, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56)
    let qname = DNSName("www.example.test")!

    func test_threadsAskingAtOnceShareEachBucket() {
        // Keys that share a slot take it over from each other (as in NSD and Knot), which would let more through: 16
        // prefixes in 65,536 slots per shard make that about one run in 10,000 (the hash seed changes every run).
        let limiter = SharedRateLimiter(settings: settings, tableSize: 1 << 20)
        let clients = (0..<16).map { IPAddress("198.51.\($0).7")! }
        let sends = Atomic<Int>(0)
        let qname = self.qname
        // 4 threads × 16 prefixes × 20 answers in the same second: each prefix's bucket lets 5 through in all.
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<20 {
                for client in clients where limiter.decide(client: client, kind: .answer, qname: qname, now: 50) == .send {
                    sends.add(1, ordering: .relaxed)
                }
            }
        }
        XCTAssertEqual(sends.load(ordering: .relaxed), 16 * 5)
    }

    func test_keysSpreadOverTheShards() {
        let keys = RateLimitKey(settings: settings, seed: 7)
        var used = Set<UInt64>()
        for i in 0..<256 {
            let key = keys.key(client: IPAddress("198.51.\(i).7")!, kind: .answer, qname: qname)
            used.insert(key >> 60 & UInt64(SharedRateLimiter.shardCount - 1))
        }
        XCTAssertEqual(used.count, SharedRateLimiter.shardCount)
    }

    func test_loopbackExemptAndDisabledSendAll() {
        let limiter = SharedRateLimiter(settings: settings)
        for _ in 0..<50 {
            XCTAssertEqual(limiter.decide(client: IPAddress("127.0.0.1")!, kind: .answer, qname: qname, now: 0), .send)
        }
        let off = SharedRateLimiter(settings: RateLimitSettings(enabled: false))
        for _ in 0..<50 {
            XCTAssertEqual(off.decide(client: IPAddress("203.0.113.7")!, kind: .answer, qname: qname, now: 0), .send)
        }
    }
}
