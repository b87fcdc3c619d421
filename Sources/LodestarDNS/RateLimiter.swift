import LodestarTopology

/// The bucket key of a response for response rate limiting: a keyed hash of the client's prefix and the response
/// class (positive answers per query name; NXDOMAIN, errors and refusals per client prefix only, so random-subdomain
/// floods share one bucket). Computed outside any lock; one seed per server, so clients cannot aim at a bucket.
public struct RateLimitKey: Sendable {
    public let settings: RateLimitSettings
    let seed: Int

    public init(settings: RateLimitSettings, seed: Int = Int.random(in: Int.min...Int.max)) {
        self.settings = settings
        self.seed = seed
    }

    /// Whether responses to `client` are limited at all (limiting on, and not a loopback client when those are exempt).
    public func limits(_ client: IPAddress) -> Bool {
        settings.enabled && !(settings.exemptLoopback && client.isLoopback)
    }

    /// The key of one response to `client`.
    public func key(client: IPAddress, kind: ResponseKind, qname: DNSName) -> UInt64 {
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
        return UInt64(bitPattern: Int64(h.finalize()))
    }
}

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

    /// 16 bytes, four to a cache line: a 32-bit tag of the key (never 0, so an empty slot matches no key), the tokens,
    /// the last refill in milliseconds (wrapping; differences are taken modulo 2^32) and the responses limited so far.
    struct Bucket {
        var tag: UInt32 = 0
        var tokens: Float = 0
        var lastMillis: UInt32 = 0
        var limited: UInt32 = 0
    }

    public var settings: RateLimitSettings { keys.settings }
    let keys: RateLimitKey
    private var table: [Bucket]
    private let mask: Int

    /// `tableSize` is rounded up to a power of two.
    public init(settings: RateLimitSettings, tableSize: Int = 1 << 16, seed: Int = Int.random(in: Int.min...Int.max)) {
        self.init(keys: RateLimitKey(settings: settings, seed: seed), tableSize: tableSize)
    }

    /// A table of `tableSize` buckets (rounded up to a power of two) for keys made by `keys`.
    public init(keys: RateLimitKey, tableSize: Int) {
        self.keys = keys
        var size = 1
        while size < max(16, tableSize) { size <<= 1 }
        table = Array(repeating: Bucket(), count: size)
        mask = size - 1
    }

    /// Decides for one response to `client` at time `now` (seconds, any monotonic origin).
    public mutating func decide(client: IPAddress, kind: ResponseKind, qname: DNSName, now: Double) -> Decision {
        guard keys.limits(client) else { return .send }
        return decide(key: keys.key(client: client, kind: kind, qname: qname), now: now)
    }

    /// Decides for one response whose bucket key is `key` (from `RateLimitKey`) at time `now` (seconds).
    public mutating func decide(key: UInt64, now: Double) -> Decision {
        let index = Int(truncatingIfNeeded: key) & mask
        let tag = UInt32(truncatingIfNeeded: key >> 32) | 1
        let millis = UInt32(truncatingIfNeeded: Int64(max(0, now) * 1000))
        let rate = Float(settings.responsesPerSecond)
        var b = table[index]
        if b.tag != tag {
            b = Bucket(tag: tag, tokens: rate, lastMillis: millis, limited: 0)
        } else {
            // Callers on several threads read their clocks before taking the lock: a slightly older `now` than the
            // bucket's (a "negative" difference) refills nothing and leaves the bucket's time where it is.
            let difference = millis &- b.lastMillis
            if difference < UInt32.max / 2 {
                b.tokens = min(rate, b.tokens + Float(difference) / 1000 * rate)
                b.lastMillis = millis
            }
        }
        let decision: Decision
        if b.tokens >= 1 {
            b.tokens -= 1
            decision = .send
        } else {
            b.limited &+= 1
            decision = settings.slip > 0 && b.limited % UInt32(clamping: settings.slip) == 0 ? .slip : .drop
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
