import Dispatch
import LodestarEdge
import LodestarTopology
import Synchronization
import XCTest

/// Per-client token buckets: burst, refill, isolation, IPv6 /64 keys and the memory bound.
final class RequestRateLimiterTests: XCTestCase {
    let second: UInt64 = 1_000_000_000
    let ms: UInt64 = 1_000_000

    func address(_ text: String) throws -> IPAddress { try XCTUnwrap(IPAddress(text)) }

    func test_burstThenDenyWithRetryAfter() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 10, burst: 20))
        let client = try address("203.0.113.7")
        let start: UInt64 = 5 * second
        for i in 0..<20 { XCTAssertEqual(limiter.take(client, now: start), .allow, "request \(i)") }
        XCTAssertEqual(limiter.take(client, now: start), .deny(retryAfterSeconds: 1))
        XCTAssertEqual(limiter.take(client, now: start + 50 * ms), .deny(retryAfterSeconds: 1), "half a token")
        XCTAssertEqual(limiter.take(client, now: start + 100 * ms), .allow, "one token after 1/rate")
        XCTAssertEqual(limiter.take(client, now: start + 100 * ms), .deny(retryAfterSeconds: 1))
    }

    func test_retryAfterIsAtLeastOneSecondAndRoundedUp() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 1, burst: 1))
        let client = try address("198.51.100.1")
        XCTAssertEqual(limiter.take(client, now: 0), .allow)
        XCTAssertEqual(limiter.take(client, now: 1), .deny(retryAfterSeconds: 1), "just under a second to go: 1")
        XCTAssertEqual(limiter.take(client, now: 999 * ms), .deny(retryAfterSeconds: 1), "1 ms to go still says 1")
        XCTAssertEqual(limiter.take(client, now: second), .allow)
    }

    func test_refillOverSimulatedTimeIsCappedAtBurst() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 100, burst: 5))
        let client = try address("2001:db8::7")
        var now: UInt64 = 0
        for _ in 0..<5 { XCTAssertEqual(limiter.take(client, now: now), .allow) }
        XCTAssertNotEqual(limiter.take(client, now: now), .allow)
        // Steady state: one request every 10 ms is exactly the rate.
        for _ in 0..<1000 {
            now += 10 * ms
            XCTAssertEqual(limiter.take(client, now: now), .allow)
        }
        XCTAssertNotEqual(limiter.take(client, now: now), .allow)
        // An hour idle refills to the burst, not beyond.
        now += 3600 * second
        var allowed = 0
        while limiter.take(client, now: now) == .allow { allowed += 1 }
        XCTAssertEqual(allowed, 5)
    }

    func test_timeGoingBackwardsAddsNothing() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 1, burst: 1))
        let client = try address("192.0.2.9")
        XCTAssertEqual(limiter.take(client, now: 10 * second), .allow)
        XCTAssertNotEqual(limiter.take(client, now: 3 * second), .allow)
        XCTAssertNotEqual(limiter.take(client, now: 10 * second + 500 * ms), .allow)
        XCTAssertEqual(limiter.take(client, now: 11 * second), .allow)
    }

    func test_clientsAreIsolated() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 1, burst: 3))
        let a = try address("203.0.113.1"), b = try address("203.0.113.2")
        for _ in 0..<3 { XCTAssertEqual(limiter.take(a, now: 0), .allow) }
        XCTAssertNotEqual(limiter.take(a, now: 0), .allow)
        for _ in 0..<3 { XCTAssertEqual(limiter.take(b, now: 0), .allow) }
        XCTAssertNotEqual(limiter.take(b, now: 0), .allow)
    }

    func test_ipv6ClientsShareTheirSlash64() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 1, burst: 2))
        XCTAssertEqual(limiter.take(try address("2001:db8:1:2::1"), now: 0), .allow)
        XCTAssertEqual(limiter.take(try address("2001:db8:1:2:ffff:ffff:ffff:fffe"), now: 0), .allow)
        XCTAssertNotEqual(limiter.take(try address("2001:db8:1:2:abcd::9"), now: 0), .allow, "same /64")
        XCTAssertEqual(limiter.take(try address("2001:db8:1:3::1"), now: 0), .allow, "next /64")
        XCTAssertEqual(limiter.take(try address("::ffff:203.0.113.1"), now: 0), .allow)
        XCTAssertEqual(limiter.take(try address("203.0.113.1"), now: 0), .allow, "IPv4 keys are whole addresses")
        XCTAssertEqual(limiter.take(try address("203.0.113.2"), now: 0), .allow)
    }

    func test_disabledAlwaysAllows() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: false, requestsPerSecond: 1, burst: 1))
        let client = try address("203.0.113.7")
        for _ in 0..<100 { XCTAssertEqual(limiter.take(client, now: 0), .allow) }
        XCTAssertEqual(limiter.clientCount, 0)
    }

    func test_memoryStaysBoundedUnderAnAddressFlood() {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 10, burst: 10),
                                         maxClients: 1600)
        var rng = FastRandom(seed: 42)
        for i in 0..<100_000 {
            let client: IPAddress = i % 2 == 0 ? .v4(UInt32.random(in: 0...UInt32.max, using: &rng))
                                                : .v6(rng.next(), rng.next())
            _ = limiter.take(client, now: UInt64(i) * 1000)
            if i % 10_000 == 0 { XCTAssertLessThanOrEqual(limiter.clientCount, 1600) }
        }
        XCTAssertLessThanOrEqual(limiter.clientCount, 1600)
        XCTAssertGreaterThan(limiter.clientCount, 800, "pruning keeps the table reasonably full")
    }

    func test_pruningForgetsIdleClientsBeforeLimitedOnes() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 1, burst: 2),
                                         maxClients: 16 * 64)
        // Fill the table with clients that will be idle (full buckets again) 5 s later.
        for i in 0..<5000 { _ = limiter.take(.v4(0x0A00_0000 + UInt32(i)), now: 0) }
        let abuser = try address("203.0.113.66")
        let t = 5 * second
        XCTAssertEqual(limiter.take(abuser, now: t), .allow)
        XCTAssertEqual(limiter.take(abuser, now: t), .allow)
        XCTAssertNotEqual(limiter.take(abuser, now: t), .allow)
        // New clients push the table over its bound: idle entries go, the limited abuser stays limited.
        for i in 0..<100 { _ = limiter.take(.v4(0xC0A8_0000 + UInt32(i)), now: t) }
        XCTAssertNotEqual(limiter.take(abuser, now: t), .allow)
    }

    func test_concurrentTakesAreCountedExactly() throws {
        let limiter = RequestRateLimiter(settings: RequestRateLimitSettings(enabled: true, requestsPerSecond: 1, burst: 1000))
        let client = try address("203.0.113.5")
        let allowed = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            var mine = 0
            for _ in 0..<500 where limiter.take(client, now: 0) == .allow { mine += 1 }
            allowed.add(mine)
        }
        XCTAssertEqual(allowed.value, 1000, "exactly the burst across threads")
    }
}

/// A thread-safe tally for concurrency tests.
final class Counter: Sendable {
    private let total = Mutex(0)

    func add(_ n: Int) { total.withLock { $0 += n } }

    var value: Int { total.withLock { $0 } }
}
