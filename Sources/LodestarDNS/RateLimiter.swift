import LodestarTopology

/// Response rate limiting in the manner of NSD and Knot RRL: a token bucket per (client prefix, response class),
/// in a fixed table (no allocation per query; colliding keys take the slot over). Time comes in as a parameter.
public struct ResponseRateLimiter: Sendable {
    /// What to do with a response.
    public enum Decision: Sendable, Equatable {
        /// Send it as built.
        case send
        /// Send nothing.
        case drop
        /// Send an empty truncated (TC=1) response so a real client retries over TCP.
        case slip
    }

    struct Bucket {
        var key: Int = 0
        var tokens: Double = 0
        var lastSeconds: Double = 0
        var limited: Int = 0
    }

    public let settings: RateLimitSettings
    private var table: [Bucket]
    private let mask: Int
    private let seed: Int

    /// `tableSize` is rounded up to a power of two.
    public init(settings: RateLimitSettings, tableSize: Int = 1 << 16, seed: Int = Int.random(in: Int.min...Int.max)) {
        self.settings = settings
        var size = 1
        while size < max(16, tableSize) { size <<= 1 }
        table = Array(repeating: Bucket(), count: size)
        mask = size - 1
        self.seed = seed
    }

    /// Decides for one response to `client` at time `now` (seconds, any monotonic origin).
    /// Positive answers are bucketed per query name; NXDOMAIN, errors and refusals per client prefix only,
    /// so random-subdomain floods share one bucket.
    public mutating func decide(client: IPAddress, kind: ResponseKind, qname: DNSName, now: Double) -> Decision {
        guard settings.enabled else { return .send }
        if settings.exemptLoopback && client.isLoopback { return .send }
        let prefix = client.masked(to: client.isIPv4 ? settings.ipv4PrefixLength : settings.ipv6PrefixLength)
        var h = Hasher()
        h.combine(seed)
        h.combine(prefix)
        switch kind {
        case .answer, .nodata, .referral:
            h.combine(0)
            h.combine(qname)
        case .nxdomain:
            h.combine(1)
        case .refused, .error:
            h.combine(2)
        }
        let key = h.finalize()
        let index = key & mask
        let rate = Double(settings.responsesPerSecond)
        var b = table[index]
        if b.key != key {
            b = Bucket(key: key, tokens: rate, lastSeconds: now, limited: 0)
        } else {
            let elapsed = max(0, now - b.lastSeconds)
            b.tokens = min(rate, b.tokens + elapsed * rate)
            b.lastSeconds = now
        }
        let decision: Decision
        if b.tokens >= 1 {
            b.tokens -= 1
            decision = .send
        } else {
            b.limited += 1
            decision = settings.slip > 0 && b.limited % settings.slip == 0 ? .slip : .drop
        }
        table[index] = b
        return decision
    }
}

extension Authority {
    /// The empty TC=1 reply sent instead of a rate-limited response on a slip (header and question only).
    public static func slipResponse(for bytes: [UInt8]) -> [UInt8] {
        guard let msg = try? DNSMessage(decoding: bytes) else { return bytes }
        var cut = DNSMessage(header: msg.header, questions: msg.questions)
        cut.header.truncated = true
        return cut.encoded()
    }
}
