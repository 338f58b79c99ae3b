/// A fixed-size histogram of millisecond latencies: cheap enough to update for every tick, and
/// precise enough (powers of two) to tell a healthy feed from a lagging one.
public struct LatencySummary: Sendable, Equatable {
    /// Bucket `i` counts latencies below `2^i` ms (bucket 0: below 1 ms); the last one takes the rest.
    public private(set) var buckets = [UInt64](repeating: 0, count: 16)
    public private(set) var count: UInt64 = 0
    public private(set) var maximumMilliseconds: Int64 = 0

    public init() {}

    public mutating func record(milliseconds: Int64) {
        let value = max(0, milliseconds)
        let bucket = value == 0 ? 0 : min(Int64.bitWidth - value.leadingZeroBitCount, self.buckets.count - 1)
        self.buckets[bucket] += 1
        self.count += 1
        self.maximumMilliseconds = max(self.maximumMilliseconds, value)
    }

    /// The upper bound, in milliseconds, of the bucket holding the `quantile` (0...1) of samples.
    public func upperBound(quantile: Double) -> Int64? {
        guard self.count > 0 else { return nil }
        let target = UInt64((Double(self.count) * min(max(quantile, 0), 1)).rounded(.up))
        var seen: UInt64 = 0
        for (index, bucketCount) in self.buckets.enumerated() {
            seen += bucketCount
            if seen >= max(target, 1) {
                return index == self.buckets.count - 1 ? self.maximumMilliseconds : min(Int64(1) << index, self.maximumMilliseconds)
            }
        }
        return self.maximumMilliseconds
    }
}
