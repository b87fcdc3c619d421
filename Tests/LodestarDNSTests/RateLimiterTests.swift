import LodestarDNS
import LodestarTopology
import XCTest

/// Response rate limiting as NSD/Knot do it: token buckets per client prefix and response class, with slip.
final class RateLimiterTests: XCTestCase {
    let settings = RateLimitSettings(enabled: true, responsesPerSecond: 5, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56)
    let qname = DNSName("www.example.test")!

    func test_limitsToRatePerPrefixThenSlipsEverySecond() {
        var rrl = ResponseRateLimiter(settings: settings, seed: 1)
        let client = IPAddress("203.0.113.7")!
        let decisions = (0..<9).map { _ in rrl.decide(client: client, kind: .answer, qname: qname, now: 100) }
        XCTAssertEqual(Array(decisions.prefix(5)), Array(repeating: .send, count: 5))
        XCTAssertEqual(Array(decisions.suffix(4)), [.drop, .slip, .drop, .slip])
    }

    func test_sameSlash24SharesABucket() {
        var rrl = ResponseRateLimiter(settings: settings, seed: 1)
        for i in 0..<5 { XCTAssertEqual(rrl.decide(client: IPAddress("203.0.113.\(i)")!, kind: .answer, qname: qname, now: 0), .send) }
        XCTAssertNotEqual(rrl.decide(client: IPAddress("203.0.113.99")!, kind: .answer, qname: qname, now: 0), .send)
        XCTAssertEqual(rrl.decide(client: IPAddress("203.0.114.1")!, kind: .answer, qname: qname, now: 0), .send)
    }

    func test_tokensRefillWithTime() {
        var rrl = ResponseRateLimiter(settings: settings, seed: 1)
        let client = IPAddress("203.0.113.7")!
        for _ in 0..<5 { _ = rrl.decide(client: client, kind: .answer, qname: qname, now: 10) }
        XCTAssertNotEqual(rrl.decide(client: client, kind: .answer, qname: qname, now: 10), .send)
        XCTAssertEqual(rrl.decide(client: client, kind: .answer, qname: qname, now: 10.5), .send, "half a second refills 2.5 tokens")
    }

    func test_anOlderClockReadingRefillsNothing() {
        var rrl = ResponseRateLimiter(settings: settings, seed: 1)
        let client = IPAddress("203.0.113.7")!
        for _ in 0..<5 { _ = rrl.decide(client: client, kind: .answer, qname: qname, now: 10) }
        XCTAssertNotEqual(rrl.decide(client: client, kind: .answer, qname: qname, now: 9.9), .send, "time went back")
        XCTAssertEqual(rrl.decide(client: client, kind: .answer, qname: qname, now: 10.5), .send)
    }

    func test_millisecondClockWrapsWithoutAFreeRefill() {
        var rrl = ResponseRateLimiter(settings: settings, seed: 1)
        let client = IPAddress("203.0.113.7")!
        // 2^32 ms is 4,294,967.296 s: the bucket's clock wraps between these two readings, half a second apart.
        for _ in 0..<5 { _ = rrl.decide(client: client, kind: .answer, qname: qname, now: 4_294_967.0) }
        XCTAssertNotEqual(rrl.decide(client: client, kind: .answer, qname: qname, now: 4_294_967.0), .send)
        let after = (0..<4).map { _ in rrl.decide(client: client, kind: .answer, qname: qname, now: 4_294_967.5) }
        XCTAssertEqual(after.filter { $0 == .send }.count, 2, "half a second across the wrap refills 2.5 tokens: \(after)")
    }

    func test_nxdomainsShareOneBucketWhateverTheName() {
        var rrl = ResponseRateLimiter(settings: settings, seed: 1)
        let client = IPAddress("203.0.113.7")!
        for i in 0..<5 {
            XCTAssertEqual(rrl.decide(client: client, kind: .nxdomain, qname: DNSName("r\(i).example.test")!, now: 0), .send)
        }
        XCTAssertNotEqual(rrl.decide(client: client, kind: .nxdomain, qname: DNSName("r99.example.test")!, now: 0), .send)
        XCTAssertEqual(rrl.decide(client: client, kind: .answer, qname: qname, now: 0), .send, "positive answers have their own bucket")
    }

    func test_loopbackExemptAndDisabledSendsAll() {
        var rrl = ResponseRateLimiter(settings: settings, seed: 1)
        for _ in 0..<50 { XCTAssertEqual(rrl.decide(client: IPAddress("127.0.0.1")!, kind: .answer, qname: qname, now: 0), .send) }
        var off = ResponseRateLimiter(settings: RateLimitSettings(enabled: false), seed: 1)
        for _ in 0..<50 { XCTAssertEqual(off.decide(client: IPAddress("203.0.113.7")!, kind: .answer, qname: qname, now: 0), .send) }
    }

    func test_slipZeroDropsEverything() {
        var s = settings
        s.slip = 0
        var rrl = ResponseRateLimiter(settings: s, seed: 1)
        let client = IPAddress("2001:db8::1")!
        for _ in 0..<5 { _ = rrl.decide(client: client, kind: .answer, qname: qname, now: 0) }
        for _ in 0..<6 { XCTAssertEqual(rrl.decide(client: client, kind: .answer, qname: qname, now: 0), .drop) }
    }

    func test_slipResponseIsEmptyAndTruncated() throws {
        let authority = try Fixture.authority()
        var rng = FastRandom(seed: 2)
        let response = try XCTUnwrap(authority.respond(to: Fixture.query("www.example.test", edns: nil), from: IPAddress("8.8.8.8")!,
                                                       transport: .udp, random: &rng))
        let slip = try DNSMessage(decoding: Authority.slipResponse(for: response.bytes))
        XCTAssertTrue(slip.header.truncated)
        XCTAssertTrue(slip.answers.isEmpty)
        XCTAssertEqual(slip.questions.count, 1)
    }
}
