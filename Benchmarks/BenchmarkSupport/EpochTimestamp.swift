/// Turns a tick's `data.timestamp` into epoch nanoseconds whatever its unit: the injector writes
/// nanoseconds, the agent's simulator and OpenAlgo's adapters milliseconds, some feeds seconds or
/// microseconds. Present-day epoch values differ by a factor of 1000 per unit, so the magnitude
/// tells them apart (seconds below 10^11, milliseconds below 10^14, microseconds below 10^17).
public enum EpochTimestamp {
    public static func nanoseconds(from value: Int64) -> Int64 {
        switch value {
        case ..<100_000_000_000: return value &* 1_000_000_000
        case ..<100_000_000_000_000: return value &* 1_000_000
        case ..<100_000_000_000_000_000: return value &* 1_000
        default: return value
        }
    }
}
