/// Every SWIM and Lifeguard knob in one value, each with a default (SWIM §4, Lifeguard §3).
///
/// Defaults are tuned for a LAN/WAN cluster of up to a few hundred members with a 500 ms protocol
/// period; the deterministic simulation in `LodestarGossipTests` measures them.
public struct SWIMSettings: Sendable, Hashable {
    /// SWIM §3.1 protocol period T': one member is probed per period. Scaled by the local health multiplier (Lifeguard §3.1). Default 500 ms.
    public var probeInterval: Duration = .milliseconds(500)

    /// SWIM §3.1: how long to wait for the target's direct ack before asking `indirectProbeCount` others. Scaled by the LHM. Default 150 ms.
    public var pingTimeout: Duration = .milliseconds(150)

    /// SWIM §3.1 ping-req: how long a relay waits for the target's ack before answering nack (Lifeguard §3.1). Scaled by the relay's LHM.
    /// Should stay below `probeInterval − pingTimeout` so the nack reaches the prober inside its period. Default 200 ms.
    public var indirectPingTimeout: Duration = .milliseconds(200)

    /// SWIM §3.1: number k of members asked to probe the target indirectly. Default 3.
    public var indirectProbeCount: Int = 3

    /// Lifeguard §3.2 (memberlist `suspicion`): suspicion timeout once `suspicionConfirmationsExpected` independent confirmations arrived. Default 2 s.
    public var suspicionTimeoutMin: Duration = .seconds(2)

    /// Lifeguard §3.2: suspicion timeout with no independent confirmation; also the bound after which every suspect is declared dead. Default 10 s.
    public var suspicionTimeoutMax: Duration = .seconds(10)

    /// Lifeguard §3.2: K, the number of independent confirmations that shrink the timeout to the minimum
    /// (capped at live members − 2). Timeout = max(min, max − (max − min)·log(C+1)/log(K+1)). Default 3.
    public var suspicionConfirmationsExpected: Int = 3

    /// SWIM §4.1: λ; an update is piggybacked at most λ·⌈log10(n+1)⌉ times (memberlist's retransmit limit).
    /// Default 6 (memberlist: 4): with 4, at 10 % loss about one member in a thousand missed a refutation's epidemic.
    public var gossipRetransmitMultiplier: Int = 6

    /// SWIM §4.1: at most this many gossip updates ride on one message, so packets stay small. Default 6.
    public var maxGossipPerMessage: Int = 6

    /// memberlist push-pull: interval of the full-state exchange with one random live member (anti-entropy). Default 30 s.
    public var fullSyncInterval: Duration = .seconds(30)

    /// Lifeguard §3.1: cap S of the local health multiplier; intervals and timeouts are scaled by LHM ∈ 1…S. Default 8.
    public var localHealthMaxMultiplier: Int = 8

    /// How many random live members receive the `left` announcement directly on `leave` (it is also piggybacked). Default 3.
    public var leaveFanout: Int = 3

    /// Lodestar addition: how many random live members a node tells directly, on a ping of their own, when its own
    /// probe raises a suspicion, confirms one, or its verdict declares a member dead (it is also piggybacked as usual).
    /// A crash then gathers its confirmations and reaches every member within a round trip instead of a protocol period
    /// or two. 0 leaves it all to piggybacking (memberlist's behaviour). Default 3.
    public var verdictFanout: Int = 3

    /// All defaults.
    public init() {}
}
