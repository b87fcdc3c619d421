import Foundation

/// Lifeguard §3.2 local-health-aware suspicion: the timeout shrinks as independent confirmations arrive.
public enum SWIMSuspicion {
    /// memberlist `suspicion`: max(min, max − (max − min)·log(C+1)/log(K+1)); K < 1 gives `min`.
    public static func timeout(min: Duration, max: Duration, confirmations: Int, expected: Int) -> Duration {
        .nanoseconds(timeoutNanoseconds(min: min.swimNanoseconds, max: max.swimNanoseconds,
                                        confirmations: confirmations, expected: expected))
    }

    static func timeoutNanoseconds(min: Int64, max: Int64, confirmations: Int, expected: Int) -> Int64 {
        guard expected >= 1, max > min else { return min }
        let fraction = log(Double(Swift.max(0, confirmations) + 1)) / log(Double(expected + 1))
        let raw = Double(max) - Double(max - min) * fraction
        return Swift.max(min, Int64(raw.rounded(.down)))
    }
}

/// One running suspicion timer of this node (Lifeguard §3.2).
struct SuspicionTimer: Sendable {
    let startedAt: Int64
    let expected: Int
    let minimum: Int64
    let maximum: Int64
    /// The first suspector plus every independent confirmer.
    var suspectors: Set<SWIMNodeID>
    /// Who raised the suspicion (carried on buddy pings and full syncs).
    let firstSuspector: SWIMNodeID
    private(set) var deadline: Int64
    /// Halfway to the longest timeout this node pings the suspect once itself, so a missed refutation is caught.
    let recheckAt: Int64
    var recheckSent = false

    init(origin: SWIMNodeID, startedAt: Int64, expected: Int, minimum: Int64, maximum: Int64) {
        self.startedAt = startedAt
        self.expected = expected
        self.minimum = minimum
        self.maximum = maximum
        self.suspectors = [origin]
        self.firstSuspector = origin
        self.recheckAt = startedAt + maximum / 2
        self.deadline = startedAt + SWIMSuspicion.timeoutNanoseconds(min: minimum, max: maximum, confirmations: 0, expected: expected)
    }

    /// How many checks of the suspect this node has sent before its verdict (see `SWIMInstance.onTick`).
    private(set) var checks = 0
    /// A check is out or done: confirmations no longer move the deadline.
    var verifying: Bool { checks > 0 }

    /// Holds the verdict until `deadline` while this node's own check of the suspect runs.
    mutating func check(until deadline: Int64) {
        checks += 1
        self.deadline = deadline
    }

    /// Records an independent confirmation; returns false if `origin` already counted.
    mutating func confirm(_ origin: SWIMNodeID) -> Bool {
        guard suspectors.insert(origin).inserted else { return false }
        guard !verifying else { return true }
        deadline = startedAt + SWIMSuspicion.timeoutNanoseconds(
            min: minimum, max: maximum, confirmations: suspectors.count - 1, expected: expected)
        return true
    }
}

extension Duration {
    /// Whole nanoseconds (saturating is unnecessary for protocol-scale durations).
    var swimNanoseconds: Int64 {
        let c = components
        return c.seconds &* 1_000_000_000 &+ c.attoseconds / 1_000_000_000
    }
}
