/// A small, fast PRNG (SplitMix64) for per-query choices such as weighted edge order, and the seeded generator
/// every test and simulation uses (same seed, same sequence); not for secrets.
public struct FastRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64 = UInt64.random(in: 0...UInt64.max)) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
