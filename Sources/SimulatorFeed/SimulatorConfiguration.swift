import BrokerKit

/// Settings of the simulator feed (`[brokers.simulator]` in `agent.toml`).
package struct SimulatorConfiguration: Sendable, Equatable {
    /// Ticks per second per subscribed instrument; fractions allowed (0.5 is one tick every 2 s).
    package var ticksPerSecond: Double
    /// Mixed into every instrument's seed; the same seed replays the same prices.
    package var seed: UInt64

    package static let maximumTicksPerSecond = 100_000.0

    package init(ticksPerSecond: Double = 2, seed: UInt64 = 0) {
        self.ticksPerSecond = ticksPerSecond
        self.seed = seed
    }

    /// Reads `ticks_per_second` and `seed`.
    package init(_ settings: BrokerSettings) throws(BrokerConfigurationError) {
        self.init()
        self.ticksPerSecond = try settings.double("ticks_per_second", broker: "simulator", default: 2)
        guard self.ticksPerSecond > 0, self.ticksPerSecond <= Self.maximumTicksPerSecond else {
            throw BrokerConfigurationError(
                "[brokers.simulator] ticks_per_second must be above 0 and at most \(Int(Self.maximumTicksPerSecond)), got \(self.ticksPerSecond)"
            )
        }
        if let text = settings["seed"] {
            guard let seed = UInt64(text) else {
                throw BrokerConfigurationError("[brokers.simulator] seed must be a non-negative integer, got '\(text)'")
            }
            self.seed = seed
        }
    }
}
