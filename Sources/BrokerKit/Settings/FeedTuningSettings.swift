import MarketData
import NIOCore

/// The `[brokers.<name>]` keys every supervised broker feed reads on top of its broker's
/// defaults (spec §0.3, §0.4), so a deployment (or a test) can tune reconnects, stall detection
/// and batching without code:
///
/// | key | meaning |
/// |---|---|
/// | `reconnect_initial_delay_ms` | delay before the first reconnect attempt |
/// | `reconnect_multiplier` | growth of each delay over the previous (≥ 1) |
/// | `reconnect_max_delay_ms` | cap on any delay |
/// | `reconnect_max_attempts` | attempts before the feed reports `failed` (0: fail at the first drop) |
/// | `stall_timeout_s` | silence while subscribed that forces a reconnect; 0 disables the check |
/// | `subscribe_batch_ms` | how long subscription changes are collected into one broker message |
/// | `max_connections` | broker connections the feed may open (1 to the broker's limit) |
/// | `max_instruments_per_connection` | instruments one connection carries (1 to the broker's limit) |
///
/// Silence is checked every `stall_timeout_s / 3` (at most every 30 s), so a stall is noticed
/// within a third of the timeout after it is due.
package enum FeedTuningSettings {
    /// A day: a feed silent for longer while subscribed is not streaming, whatever the market.
    static let longestStallTimeout: Double = 86_400

    package static let keys = [
        "reconnect_initial_delay_ms", "reconnect_multiplier", "reconnect_max_delay_ms", "reconnect_max_attempts", "stall_timeout_s",
        "subscribe_batch_ms", "max_connections", "max_instruments_per_connection",
    ]

    /// The supervision settings: `defaults` with any of the keys above that `settings` sets.
    package static func supervision(
        _ settings: BrokerSettings,
        broker: String,
        defaults: FeedSupervisorStateMachine.Configuration
    ) throws(BrokerConfigurationError) -> FeedSupervisorStateMachine.Configuration {
        let base = defaults.reconnect
        let initial = try milliseconds(settings, "reconnect_initial_delay_ms", broker: broker, default: base.initialDelay)
        let maximum = try milliseconds(settings, "reconnect_max_delay_ms", broker: broker, default: max(base.maximumDelay, initial))
        guard maximum >= initial else {
            throw BrokerConfigurationError("[brokers.\(broker)] reconnect_max_delay_ms must be at least reconnect_initial_delay_ms")
        }
        let multiplier = try settings.double("reconnect_multiplier", broker: broker, default: base.multiplier)
        guard multiplier >= 1 else { throw BrokerConfigurationError("[brokers.\(broker)] reconnect_multiplier must be 1 or more, got \(multiplier)") }
        let attempts = try settings.double("reconnect_max_attempts", broker: broker, default: Double(base.maximumAttempts))
        guard attempts >= 0, attempts == attempts.rounded(), attempts <= 1_000_000 else {
            throw BrokerConfigurationError("[brokers.\(broker)] reconnect_max_attempts must be a whole number from 0, got \(attempts)")
        }
        let reconnect = ReconnectPolicy(
            initialDelay: initial,
            multiplier: multiplier,
            maximumDelay: maximum,
            maximumAttempts: Int(attempts),
            jitter: base.jitter
        )
        guard settings["stall_timeout_s"] != nil else {
            return FeedSupervisorStateMachine.Configuration(
                reconnect: reconnect,
                stallTimeout: defaults.stallTimeout,
                stallCheckInterval: defaults.stallCheckInterval
            )
        }
        let seconds = try settings.double("stall_timeout_s", broker: broker, default: 0)
        guard seconds >= 0, seconds <= Self.longestStallTimeout else {
            throw BrokerConfigurationError(
                "[brokers.\(broker)] stall_timeout_s must be from 0 (no check) to \(Int(Self.longestStallTimeout)) seconds, got \(settings["stall_timeout_s"] ?? "")"
            )
        }
        guard seconds > 0 else { return FeedSupervisorStateMachine.Configuration(reconnect: reconnect, stallTimeout: nil) }
        let timeout = TimeAmount.nanoseconds(Int64(saturating: seconds * 1e9))
        return FeedSupervisorStateMachine.Configuration(
            reconnect: reconnect,
            stallTimeout: timeout,
            stallCheckInterval: min(.seconds(30), .nanoseconds(max(1_000_000, timeout.nanoseconds / 3)))
        )
    }

    /// The batching settings: `defaults` with `subscribe_batch_ms` when set.
    package static func batching(
        _ settings: BrokerSettings,
        broker: String,
        defaults: SubscriptionBatcher.Configuration
    ) throws(BrokerConfigurationError) -> SubscriptionBatcher.Configuration {
        SubscriptionBatcher.Configuration(
            window: try milliseconds(settings, "subscribe_batch_ms", broker: broker, default: defaults.window),
            maximumInstrumentsPerMessage: defaults.maximumInstrumentsPerMessage
        )
    }

    /// The connection pool's limits: the broker's own (`brokerLimits`, the defaults) or lower
    /// ones from `max_connections` and `max_instruments_per_connection`. A value above the
    /// broker's limit is an error rather than clamped: the broker would refuse the connection or
    /// the subscriptions, and the feed would fail later with a less clear message.
    package static func connectionPool(
        _ settings: BrokerSettings,
        broker: String,
        brokerLimits: ConnectionPoolLimits
    ) throws(BrokerConfigurationError) -> ConnectionPoolLimits {
        ConnectionPoolLimits(
            maximumConnections: try count(settings, "max_connections", broker: broker, limit: brokerLimits.maximumConnections),
            maximumInstrumentsPerConnection: try count(
                settings,
                "max_instruments_per_connection",
                broker: broker,
                limit: brokerLimits.maximumInstrumentsPerConnection
            )
        )
    }

    private static func count(_ settings: BrokerSettings, _ key: String, broker: String, limit: Int) throws(BrokerConfigurationError) -> Int {
        let value = try settings.double(key, broker: broker, default: Double(limit))
        guard value >= 1, value <= Double(limit), value == value.rounded() else {
            throw BrokerConfigurationError(
                "[brokers.\(broker)] \(key) must be a whole number from 1 to \(limit) (\(broker)'s limit), got \(settings[key] ?? "")"
            )
        }
        return Int(value)
    }

    private static func milliseconds(
        _ settings: BrokerSettings,
        _ key: String,
        broker: String,
        default defaultValue: TimeAmount
    ) throws(BrokerConfigurationError) -> TimeAmount {
        guard settings[key] != nil else { return defaultValue }
        let value = try settings.double(key, broker: broker, default: 0)
        guard value >= 0, value <= 86_400_000 else {
            throw BrokerConfigurationError("[brokers.\(broker)] \(key) must be from 0 to 86400000 milliseconds, got \(value)")
        }
        return .nanoseconds(Int64(value * 1e6))
    }
}
