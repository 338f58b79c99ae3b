import Logging
import NIOCore

/// A broker's settings: the keys of its `[brokers.<name>]` table in `agent.toml`, after
/// `OPENALGO_BROKER_<NAME>_<KEY>` environment overrides, as text.
public struct BrokerSettings: Sendable, Equatable {
    public var values: [String: String]

    public init(_ values: [String: String] = [:]) {
        self.values = values
    }

    public subscript(key: String) -> String? { self.values[key] }

    /// A numeric setting, or an error naming the key and the bad value.
    public func double(_ key: String, broker: String, default defaultValue: Double) throws(BrokerConfigurationError) -> Double {
        guard let text = self.values[key] else { return defaultValue }
        guard let value = Double(text), value.isFinite else {
            throw BrokerConfigurationError("[brokers.\(broker)] \(key) must be a number, got '\(text)'")
        }
        return value
    }
}

/// A broker name or setting the agent cannot use; the message says what to change.
public struct BrokerConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}

/// Builds adapters by broker name.
public enum BrokerRegistry {
    /// The brokers this build can stream from, as `get_supported_brokers` lists them.
    public static let supportedBrokers = ["simulator"]

    /// The registry's name for `name` (any case, aliases allowed), or `nil` for an unknown broker.
    public static func canonicalName(_ name: String) -> String? {
        let lowered = name.lowercased()
        return self.supportedBrokers.contains(lowered) ? lowered : nil
    }

    /// Creates the adapter for `name` (case-insensitive).
    ///
    /// - Parameter eventLoop: where the adapter runs its timers and I/O; not the hub's loop, so that a
    ///   busy feed and a busy fan-out use both cores.
    public static func makeAdapter(
        named name: String,
        settings: BrokerSettings,
        eventLoop: any EventLoop,
        logger: Logger
    ) throws(BrokerConfigurationError) -> any BrokerAdapter {
        switch name.lowercased() {
        case "simulator":
            return SimulatorFeed(configuration: try SimulatorConfiguration(settings), eventLoop: eventLoop, logger: logger)
        default:
            throw BrokerConfigurationError(
                "unknown broker '\(name)'; known brokers: \(self.supportedBrokers.joined(separator: ", "))"
            )
        }
    }
}
