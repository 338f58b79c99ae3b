/// A small, fast, seedable generator (SplitMix64): quality is ample for a price simulation, and a
/// seed repeats a run exactly (the simulator's `seed`, tests' random input and backoff jitter). In
/// the kit so that the simulator and every target's tests share one.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) {
        self.state = seed
    }

    package mutating func next() -> UInt64 {
        self.state &+= 0x9e37_79b9_7f4a_7c15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A uniform value in [0, 1).
    package mutating func nextUnit() -> Double {
        Double(self.next() >> 11) * 0x1.0p-53
    }
}
