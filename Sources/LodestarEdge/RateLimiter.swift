import LodestarTopology
import Synchronization

/// Whether a request may go ahead under the per-client rate limit.
public enum RateDecision: Sendable, Equatable {
    case allow
    /// Refused (429); the client may try again after this many seconds (at least 1).
    case deny(retryAfterSeconds: Int)
}

/// Per-client token buckets (IPv4 address, IPv6 /64), shared by every event loop.
///
/// Buckets live in 16 mutex-protected shards chosen by the key's (process-seeded) hash. A shard holding
/// `maxClients / 16` clients first forgets idle clients (bucket full again), then arbitrary ones, down to three quarters
/// of that, so memory stays bounded under an address-spraying flood and pruning cost is amortised.
public final class RequestRateLimiter: Sendable {
    /// One client's bucket: tokens in billionths (so refill is `elapsed ns × tokens/s`, exact integers).
    struct Bucket: Sendable {
        var tokens: UInt64
        var last: UInt64
    }

    /// One lock and its share of the clients.
    final class Shard: Sendable {
        let buckets: Mutex<[IPAddress: Bucket]>

        init() { buckets = Mutex([:]) }
    }

    static let shardCount = 16
    /// Billionths of a token per token.
    static let unit: UInt64 = 1_000_000_000
    /// Largest rate and burst honoured (keeps the fixed-point arithmetic far from overflow).
    static let maxSetting = 1 << 30

    public let settings: RequestRateLimitSettings
    private let shards: [Shard]
    /// Tokens per second = billionths of a token per nanosecond.
    private let rate: UInt64
    /// Bucket size in billionths of a token.
    private let capacity: UInt64
    /// Nanoseconds from empty to full.
    private let fillNanos: UInt64
    private let shardLimit: Int
    private let shardLowWater: Int

    /// Rate and burst below 1 count as 1; `maxClients` is spread over 16 shards (at least one client each).
    public init(settings: RequestRateLimitSettings, maxClients: Int = 100_000) {
        self.settings = settings
        shards = (0..<Self.shardCount).map { _ in Shard() }
        rate = UInt64(min(max(1, settings.requestsPerSecond), Self.maxSetting))
        capacity = UInt64(min(max(1, settings.burst), Self.maxSetting)) * Self.unit
        fillNanos = (capacity + rate - 1) / rate
        shardLimit = max(1, maxClients / Self.shardCount)
        shardLowWater = shardLimit * 3 / 4
    }

    /// Takes one token from `client`'s bucket at time `now` (nanoseconds, any monotonic origin).
    public func take(_ client: IPAddress, now: UInt64) -> RateDecision {
        guard settings.enabled else { return .allow }
        let key = Self.key(for: client)
        let shard = shards[key.hashValue & (Self.shardCount - 1)]
        return shard.buckets.withLock { buckets in
            if buckets.count >= shardLimit && buckets[key] == nil {
                prune(&buckets, now: now)
            }
            return spend(&buckets[key, default: Bucket(tokens: capacity, last: now)], now: now)
        }
    }

    /// Clients currently tracked (for tests and metrics).
    public var clientCount: Int {
        shards.reduce(0) { sum, shard in sum + shard.buckets.withLock { $0.count } }
    }

    /// The bucket key: the IPv4 address, or the IPv6 /64 (one subscriber's usual allocation).
    static func key(for client: IPAddress) -> IPAddress {
        switch client {
        case .v4: return client
        case .v6(let hi, _): return .v6(hi, 0)
        }
    }

    /// Refills `bucket` up to `now` and takes a token if there is one.
    private func spend(_ bucket: inout Bucket, now: UInt64) -> RateDecision {
        refill(&bucket, now: now)
        if bucket.tokens >= Self.unit {
            bucket.tokens -= Self.unit
            return .allow
        }
        let deficit = Self.unit - bucket.tokens
        let nanos = (deficit + rate - 1) / rate
        let seconds = (nanos + Self.unit - 1) / Self.unit
        return .deny(retryAfterSeconds: Int(max(1, min(seconds, UInt64(Int32.max)))))
    }

    /// Adds the tokens earned since the bucket was last touched; time running backwards adds nothing.
    private func refill(_ bucket: inout Bucket, now: UInt64) {
        guard now > bucket.last else { return }
        let elapsed = now - bucket.last
        if elapsed >= fillNanos {
            bucket.tokens = capacity
        } else {
            bucket.tokens = min(capacity, bucket.tokens + elapsed * rate)
        }
        bucket.last = now
    }

    /// True when the bucket would be full at `now`: the client has been idle long enough to forget.
    private func isIdle(_ bucket: Bucket, now: UInt64) -> Bool {
        var b = bucket
        refill(&b, now: now)
        return b.tokens >= capacity
    }

    /// Shrinks a full shard to its low-water mark: idle clients first, then arbitrary ones.
    private func prune(_ buckets: inout [IPAddress: Bucket], now: UInt64) {
        buckets = buckets.filter { !isIdle($0.value, now: now) }
        let excess = buckets.count - shardLowWater
        if excess > 0 {
            for key in Array(buckets.keys.prefix(excess)) { buckets[key] = nil }
        }
    }
}
