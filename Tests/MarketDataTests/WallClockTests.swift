import MarketData
import Testing

@Suite("Wall clock")
struct WallClockTests {
    @Test("epoch timestamps in seconds, milliseconds, microseconds and nanoseconds all read as milliseconds")
    func units() {
        #expect(WallClock.milliseconds(fromEpochTimestamp: 1_746_171_226) == 1_746_171_226_000)
        #expect(WallClock.milliseconds(fromEpochTimestamp: 1_746_171_226_123) == 1_746_171_226_123)
        #expect(WallClock.milliseconds(fromEpochTimestamp: 1_746_171_226_123_456) == 1_746_171_226_123)
        #expect(WallClock.milliseconds(fromEpochTimestamp: 1_795_737_969_836_123_457) == 1_795_737_969_836)
        #expect(WallClock.milliseconds(fromEpochTimestamp: .max) == Int64.max / 1_000_000)
    }

    @Test("a timestamp of zero or below is no date: no milliseconds, and no trap", arguments: [0, -1, -9_223_372_036_854_775, Int64.min])
    func notADate(timestamp: Int64) {
        #expect(WallClock.milliseconds(fromEpochTimestamp: timestamp) == nil)
    }

    @Test(
        "a Double converts to Int64 clamped, NaN as zero",
        arguments: [(1e300, Int64.max), (-1e300, Int64.min), (.nan, 0), (-2.9, -2), (9.223372036854775807e18, Int64.max)]
    )
    func saturating(value: Double, expected: Int64) {
        #expect(Int64(saturating: value) == expected)
    }
}
