/// nginx's smooth weighted round robin: over any window the picks interleave in proportion to the weights
/// (weights 5, 1, 1 give a a b a c a a), instead of bursts of the heavy server.
///
/// Not thread-safe by itself: keep one per event loop (or behind a lock). Weights are clamped to 1...1_000_000.
public struct SmoothWeightedRoundRobin: Sendable {
    /// The configured weights.
    public let weights: [Int]
    /// nginx `current_weight` of each server.
    private var current: [Int]

    public init(weights: [Int]) {
        self.weights = weights.map { min(max(1, $0), 1_000_000) }
        current = Array(repeating: 0, count: weights.count)
    }

    /// The next server among those available; unavailable servers keep their current weight. Nil when none is available.
    public mutating func next(isAvailable: (Int) -> Bool) -> Int? {
        var total = 0
        var best = -1
        var bestCurrent = Int.min
        for i in weights.indices where isAvailable(i) {
            current[i] += weights[i]
            total += weights[i]
            if current[i] > bestCurrent {
                best = i
                bestCurrent = current[i]
            }
        }
        guard best >= 0 else { return nil }
        current[best] -= total
        return best
    }
}

/// Consistent hash ring (ketama-like): server `i` owns `weight × pointsPerWeight` points at `KeyHash("i-p")`;
/// a key goes to the owner of the first point at or after its hash, walking on past unavailable servers.
/// Marking a server unavailable moves only that server's keys.
///
/// Weights are first divided by their greatest common divisor (1000, 1000 places the same points as 1, 1), and a ring
/// that would still exceed `maxPoints` is scaled down proportionally, so build time and memory stay bounded.
public struct HashRing: Sendable {
    /// Most points on one ring (about 3 MB).
    public static let maxPoints = 1 << 18

    /// Point hashes, ascending.
    private let points: [UInt64]
    /// The server owning each point.
    private let owners: [Int32]
    /// Servers on the ring.
    public let serverCount: Int

    /// Weights below 1 count as 1; `pointsPerWeight` below 1 counts as 1.
    public init(weights: [Int], pointsPerWeight: Int = 160) {
        let perWeight = max(1, pointsPerWeight)
        let clamped = weights.map { max(1, min($0, Int(Int32.max))) }
        let divisor = clamped.reduce(0, Self.gcd)
        var counts = clamped.map { ($0 / max(1, divisor)).multipliedReportingOverflow(by: perWeight) }
            .map { $0.overflow ? Int.max : $0.partialValue }
        let total = counts.reduce(0) { $0.addingReportingOverflow($1).overflow ? Int.max : $0 + $1 }
        if total > Self.maxPoints {
            let scale = Double(Self.maxPoints) / Double(total)
            counts = counts.map { max(1, Int(Double($0) * scale)) }
        }
        var ring: [(hash: UInt64, owner: Int32)] = []
        ring.reserveCapacity(counts.reduce(0, +))
        for (server, count) in counts.enumerated() {
            for point in 0..<count {
                ring.append((Self.pointHash(server: server, point: point), Int32(truncatingIfNeeded: server)))
            }
        }
        ring.sort { $0.hash != $1.hash ? $0.hash < $1.hash : $0.owner < $1.owner }
        points = ring.map(\.hash)
        owners = ring.map(\.owner)
        serverCount = weights.count
    }

    /// Greatest common divisor (gcd(0, b) = b).
    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }

    /// `KeyHash.hash("\(server)-\(point)")`, without building the string.
    static func pointHash(server: Int, point: Int) -> UInt64 {
        var h = KeyHash.Accumulator()
        h.appendDecimal(server)
        h.append(UInt8(ascii: "-"))
        h.appendDecimal(point)
        return h.finish()
    }

    /// The server for a key hash: the first available owner clockwise from `hash`; nil when none is available.
    public func lookup(_ hash: UInt64, isAvailable: (Int) -> Bool) -> Int? {
        let n = points.count
        guard n > 0 else { return nil }
        // First point >= hash (binary search); past the end wraps to 0.
        var lo = 0, hi = n
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if points[mid] < hash { lo = mid + 1 } else { hi = mid }
        }
        var index = lo == n ? 0 : lo
        var rejected: UInt64 = 0  // bitmap of unavailable servers seen (servers 0..<64), for an early stop
        var rejectedCount = 0
        var lastRejected = -1
        for _ in 0..<n {
            let owner = Int(owners[index])
            if owner != lastRejected {
                let bit: UInt64 = owner < 64 ? 1 << UInt64(owner) : 0
                if bit == 0 || rejected & bit == 0 {
                    if isAvailable(owner) { return owner }
                    rejected |= bit
                    if bit != 0 { rejectedCount += 1 }
                    if rejectedCount == serverCount { return nil }
                }
                lastRejected = owner
            }
            index += 1
            if index == n { index = 0 }
        }
        return nil
    }
}

/// Least connections: the available server with the fewest requests in flight per unit of weight.
public enum LeastConnections {
    /// Minimises `inFlight(i) / weight(i)` (compared cross-multiplied, exactly); among equals the first found scanning
    /// from `start`, so a caller that rotates `start` spreads ties. Weights below 1 count as 1. Nil when none is available.
    public static func pick(weights: [Int], inFlight: (Int) -> Int, isAvailable: (Int) -> Bool, start: Int) -> Int? {
        let n = weights.count
        guard n > 0 else { return nil }
        var i = start % n
        if i < 0 { i += n }
        var best = -1
        var bestLoad = 0, bestWeight = 1
        for _ in 0..<n {
            if isAvailable(i) {
                let load = max(0, inFlight(i))
                let weight = max(1, weights[i])
                // load / weight < bestLoad / bestWeight  ⇔  load × bestWeight < bestLoad × weight (full width: no overflow)
                if best < 0 || compare(load.multipliedFullWidth(by: bestWeight), bestLoad.multipliedFullWidth(by: weight)) {
                    best = i
                    bestLoad = load
                    bestWeight = weight
                }
            }
            i += 1
            if i == n { i = 0 }
        }
        return best >= 0 ? best : nil
    }

    /// a < b for double-width products.
    private static func compare(_ a: (high: Int, low: UInt), _ b: (high: Int, low: UInt)) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }
}

/// A well-mixed, run-to-run stable 64-bit hash (FNV-1a, then the splitmix64 finaliser) for hash-ring keys.
public enum KeyHash {
    /// Incremental form of `hash`.
    public struct Accumulator: Sendable {
        private var state: UInt64 = 0xCBF2_9CE4_8422_2325

        public init() {}

        /// Feeds one byte.
        @inline(__always)
        public mutating func append(_ byte: UInt8) {
            state = (state ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }

        /// Feeds the decimal digits of a non-negative integer (negative values feed a `-` first).
        public mutating func appendDecimal(_ value: Int) {
            if value < 0 { append(UInt8(ascii: "-")) }
            var v = value.magnitude
            var divisor: UInt = 1
            while v / divisor >= 10 { divisor *= 10 }
            while divisor > 0 {
                append(UInt8(truncatingIfNeeded: v / divisor) &+ 0x30)
                v %= divisor
                divisor /= 10
            }
        }

        /// The finished hash.
        public func finish() -> UInt64 {
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Hash of a byte sequence.
    public static func hash(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var h = Accumulator()
        for b in bytes { h.append(b) }
        return h.finish()
    }

    /// Hash of a string's UTF-8 bytes.
    public static func hash(_ s: String) -> UInt64 {
        hash(s.utf8)
    }
}
